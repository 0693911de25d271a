"""Inference: load shipped or trained weights (SHA-256 checked), and enhance whole volumes of any size,
slice by slice, in overlapping tiles blended without seams.

Tiling (per in-plane axis, in input pixels): windows of ``tile`` pixels overlap their neighbours by
``overlap`` pixels. Of the overlap, the middle ``blend = max(2, overlap // 4)`` pixels are cross-faded
with complementary linear ramps and the outer ``(overlap − blend) / 2`` on each side (the *halo*) are
computed and discarded. When the halo is at least the network's receptive-field radius, every kept
output pixel saw exactly the context it would see in a whole-slice pass, so tiled equals untiled (to
float rounding); the default overlap is chosen that way from the model's measured receptive field
(:func:`receptive_radius`). Windows start on multiples of the network's stride product, so strided
layers line up as in the whole-slice pass; the far edge is padded by edge replication to that multiple
in both cases.

Protocol and grid: each model was trained on one canonical input grid (its manifest's ``input.spacing_mm``).
A model whose manifest records ``training_ranges`` (the twin's randomised protocols it learnt from) serves
every protocol inside them: the input's protocol is stated (:func:`trabecula.enhance.protocol.describe_input`:
pixel, slice, kernel class, modelled MTF50, measured noise), the input is resampled to the canonical grid,
and an input outside the ranges is **refused** with an error naming each value outside, unless
``allow_out_of_range=True`` (CLI ``--allow-out-of-range``), which enhances it with a warning. A model
without ranges (a user's checkpoint) keeps the plain spacing rule: an input whose in-plane spacing (and,
for 2.5D models, slice spacing) differs by more than 5 % is refused unless ``resample=True``
(``--resample``). The output is in HU on the model's output grid (in-plane spacing divided by the
model's scale), with the model, its weights' SHA-256 and the input's protocol in its provenance.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.enhance.catalog import WEIGHTS_DIR, shipped_models
from trabecula.enhance.checks import (
    check_positive_int,
    check_threads,
    load_checkpoint,
    read_json,
    resolve_device,
)
from trabecula.errors import InputError, ParameterError
from trabecula.volume import Volume

SPACING_RTOL = 0.05


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoadedModel:
    """An :class:`~trabecula.enhance.models.Enhancer` in eval mode with its manifest and weights digest."""

    model: Any
    manifest: dict = field(default_factory=dict)
    sha256: str = ""
    source: str = ""

    @property
    def name(self) -> str:
        """The network's architecture (``dlr``, ``srdlr``, ``pix2pixhd``, …): what decides its data."""
        return self.model.name

    @property
    def label(self) -> str:
        """The model as the user chose it: a shipped model's name, else the weights file;
        with the architecture when the two differ."""
        src = Path(self.source) if self.source else None
        if src is not None and src.parent.parent == WEIGHTS_DIR:
            chosen = src.parent.name
        elif src is not None:
            chosen = str(src)
        else:
            return self.name
        return chosen if chosen == self.name else f"{chosen} ({self.name})"

    @property
    def input_spacing(self) -> tuple[float, float, float] | None:
        sp = self.manifest.get("input", {}).get("spacing_mm")
        return tuple(float(s) for s in sp) if sp else None

    @property
    def context_stride(self) -> int:
        return int(self.manifest.get("input", {}).get("context_stride", 1))


def _torch():
    import torch

    return torch


def build_from_hparams(hp: dict):
    from trabecula.enhance.models import Enhancer

    return Enhancer(hp["model"], hp.get("in_channels", 1), hp.get("hu_center", 500.0), hp.get("hu_scale", 1000.0),
                    hp.get("config"))


def check_hparams(hp: Any, path: str | Path, option: str = "--model") -> dict:
    """A checkpoint's or manifest's network description (``model``, ``in_channels``, ``hu_center``, ``hu_scale``,
    ``config``) checked before anything is built: a malformed one raises :class:`InputError` naming ``path``; a
    network larger than the memory budget raises :class:`ParameterError` naming ``option`` (and the file), counted
    without allocating (:func:`trabecula.enhance.models.check_network`)."""
    from trabecula.enhance.models import MODELS, check_network, validate_config

    if not isinstance(hp, dict):
        raise InputError(path, f"its network description (hparams) must be a table, not {type(hp).__name__}")
    name = hp.get("model")
    if not isinstance(name, str) or name not in MODELS:
        raise InputError(path, f"names no known model ({str(name)[:40]!r}; known: {', '.join(MODELS)})")
    for key in ("hu_center", "hu_scale"):
        v = hp.get(key, 1.0)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or (key == "hu_scale" and v == 0):
            raise InputError(path, f"hparams {key} must be a finite number{' other than 0' if key == 'hu_scale' else ''}")
    try:
        validate_config(name, hp.get("config"), "config", hp.get("in_channels", 1))
    except ParameterError as exc:
        raise InputError(path, f"its network description is not valid ({exc})") from exc
    check_network(name, hp.get("in_channels", 1), hp.get("config"), option=option, what=f"the {name} network of {path}")
    return hp


def _check_manifest(manifest: dict, path: Path) -> None:
    """The manifest fields inference reads, checked once (else :class:`InputError` naming the manifest)."""
    inp = manifest.get("input", {})
    if not isinstance(inp, dict):
        raise InputError(path, "its 'input' must be a table")
    sp = inp.get("spacing_mm")
    if sp is not None and not (isinstance(sp, list | tuple) and len(sp) == 3 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in sp)):
        raise InputError(path, "input.spacing_mm must be three positive numbers (z, y, x mm)")
    cs = inp.get("context_stride", 1)
    if isinstance(cs, bool) or not isinstance(cs, int) or not 1 <= cs <= 1000:
        raise InputError(path, f"input.context_stride must be a whole number from 1 to 1000, got {str(cs)[:40]}")
    rr = manifest.get("receptive_radius_px")
    if rr is not None and (isinstance(rr, bool) or not isinstance(rr, int) or not 0 <= rr <= 4096):
        raise InputError(path, f"receptive_radius_px must be a whole number from 0 to 4096, got {str(rr)[:40]}")
    tr = manifest.get("training_ranges")
    if tr is not None and not isinstance(tr, dict):
        raise InputError(path, "training_ranges must be a table")


def load_model(model: str | Path, device: str | None = None) -> LoadedModel:
    """Load a shipped model by name (``dlr``, ``srdlr``, ``pix2pixhd``, …), a weights folder holding
    ``model.pt`` + ``manifest.json``, a ``model.pt`` beside its ``manifest.json``, or a training
    checkpoint (``RUN/best.pt``). A manifest's SHA-256 must match the weights file, else
    :class:`InputError` — the weights are never loaded unverified. Files are read with
    ``torch.load(weights_only=True)``; an unreadable, truncated or malformed file is an :class:`InputError`
    naming it, a network description past the memory budget a :class:`ParameterError` (``--model``) raised before
    the network is built, and an unusable ``device`` a :class:`ParameterError` (``--device``)."""
    device = resolve_device(device)
    p = Path(model)
    bare = isinstance(model, str) and "/" not in model and not model.endswith(".pt")
    if bare and not (p.is_file() or (p / "model.pt").is_file()):  # a shipped name (a same-named folder without
        # weights, e.g. a training run's folder in the working directory, does not shadow it)
        if model not in shipped_models():
            avail = ", ".join(shipped_models()) or "none"
            raise ParameterError("--model", f"no shipped model {model!r} (shipped: {avail}); or give a .pt file")
        p = WEIGHTS_DIR / model
    if p.is_dir():
        p = p / "model.pt"
    if not p.is_file():
        raise InputError(p, "weights file not found")
    try:
        digest = sha256_file(p)
    except OSError as exc:
        raise InputError(p, f"cannot read the weights ({exc.strerror or exc})") from exc
    man_path = p.parent / "manifest.json" if p.name == "model.pt" else p.with_suffix(".manifest.json")
    manifest: dict = {}
    if man_path.is_file():
        manifest = read_json(man_path, "weights manifest")
        want = manifest.get("sha256")
        if want != digest:
            raise InputError(p, f"SHA-256 {digest[:16]}… does not match its manifest ({str(want)[:16]}…); the weights are corrupt or were replaced")
    obj = load_checkpoint(p, "weights")
    if isinstance(obj, dict) and "hparams" in obj and "G" in obj:  # a training checkpoint
        hp, state = check_hparams(obj["hparams"], p), obj["G"]
        manifest = manifest or {"model": hp["model"], "input": {"spacing_mm": obj.get("input_spacing"),
                                                                "channels": hp.get("in_channels", 1),
                                                                "context_stride": obj.get("context_stride", 1)}}
    elif manifest:
        if "hparams" not in manifest:
            raise InputError(man_path, "names no network (no 'hparams')")
        hp, state = check_hparams(manifest["hparams"], man_path), obj
    else:
        raise InputError(p, "a bare state dict needs its manifest.json beside it")
    _check_manifest(manifest, man_path if man_path.is_file() else p)
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise InputError(p, "holds no state dict of tensors for the network")
    net = build_from_hparams(hp)
    try:
        net.net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, AttributeError) as exc:
        first = " ".join(str(exc).split())
        raise InputError(p, f"weights do not fit the {hp['model']} network ({first[:200]})") from exc
    net.eval().to(device)
    return LoadedModel(net, manifest, digest, str(p))


# ------------------------------------------------------------------------------------------ tiling


def receptive_radius(model, probe: int = 192, trials: int = 2, seed: int = 0) -> int:
    """Receptive-field radius of ``model`` in *input* pixels, measured: the extent of the non-zero gradient of
    the centre output pixel with respect to a random input of ``probe`` × ``probe`` pixels (max over trials)."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    m = model.model if isinstance(model, LoadedModel) else model
    dev = next(m.parameters()).device
    probe = int(math.ceil(probe / m.multiple) * m.multiple)
    r = 0
    for _ in range(trials):
        x = (torch.randn(1, m.in_channels, probe, probe, generator=g) * 400 + 300).to(dev).requires_grad_(True)
        y = m(x)
        c = y.shape[-1] // 2
        y[0, 0, c, c].backward()
        nz = torch.nonzero(x.grad.abs().sum(dim=(0, 1)) > 0)
        if len(nz):
            ci = c / m.scale
            r = max(r, int(math.ceil(max(abs(nz[:, 0].float() - ci).max().item(), abs(nz[:, 1].float() - ci).max().item()))))
    return r


def _axis_windows(n: int, tile: int, overlap: int, multiple: int) -> list[tuple[int, int, np.ndarray]]:
    """Windows ``[a, b)`` along an axis of length ``n`` and their blend weights (see the module docstring)."""
    if n <= tile:
        return [(0, n, np.ones(n, np.float32))]
    blend = max(2, overlap // 4)
    if (overlap - blend) % 2:
        blend += 1
    halo = (overlap - blend) // 2
    step = tile - overlap
    step = max(multiple, (step // multiple) * multiple)
    tile_eff = step + overlap
    out = []
    a = 0
    while True:
        b = min(a + tile_eff, n)
        p = np.arange(a, b, dtype=np.float64)
        w = np.ones(b - a)
        if a > 0:
            w = np.minimum(w, np.clip((p - (a + halo) + 0.5) / blend, 0, 1))
        if b < n:
            w = np.minimum(w, np.clip((b - halo - p - 0.5) / blend, 0, 1))
        out.append((a, b, w.astype(np.float32)))
        if b >= n:
            break
        a += step
    return out


def predict(model, batch: np.ndarray, device: str) -> np.ndarray:
    """One forward pass of an enhancement network on a batch of HU slices, without tiling.

    Parameters
    ----------
    model : Enhancer or LoadedModel
        The network (its ``multiple``, ``scale`` and ``in_channels`` are used); it is run as it is (call
        ``model.eval()`` first for inference), under ``torch.inference_mode``.
    batch : ndarray, shape (B, K, h, w)
        HU values; ``K`` is the model's input channels (adjacent slices for 2.5D models).
    device : str
        torch device the batch is moved to (the model must already be there).

    Returns
    -------
    ndarray, shape (B, s·h, s·w), float32
        The model's HU output, ``s`` its scale. The input is padded by edge replication on the far
        (bottom/right) sides to a multiple of the network's stride product and the output cropped back.
    """
    torch = _torch()
    m = model.model if isinstance(model, LoadedModel) else model
    mult, s = m.multiple, m.scale
    h, w = batch.shape[-2:]
    ph, pw = (-h) % mult, (-w) % mult
    t = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(device)
    if ph or pw:
        t = torch.nn.functional.pad(t, (0, pw, 0, ph), mode="replicate")
    with torch.inference_mode():
        y = m(t)
    return y[:, 0, : s * h, : s * w].float().cpu().numpy()


def _weights_2d(wyy: np.ndarray, wxx: np.ndarray, s: int) -> np.ndarray:
    return np.outer(np.repeat(wyy, s), np.repeat(wxx, s))


@functools.lru_cache(maxsize=64)
def _activation_bytes_cached(name: str, k: int, cfg_json: str, batch: int, h: int, w: int) -> int:
    from trabecula.enhance.models import activation_bytes

    return activation_bytes(name, k, json.loads(cfg_json), batch, h, w)


def check_tiling_memory(model, shape: tuple[int, int, int], tile: int, overlap: int, batch: int) -> int:
    """The bytes tiled enhancement of a ``shape`` (z, y, x) stack will allocate — the output and its weights on
    the model's output grid, a batch of tiles and the network's activations on it (estimated by a shape-only
    pass, :func:`~trabecula.enhance.models.activation_bytes`) — checked against the memory budget before any of
    it is allocated (:class:`ParameterError` naming ``--tile``, saying what would fit). Returns the bytes."""
    from trabecula.limits import check_memory, format_bytes, memory_budget_bytes

    m = model.model if isinstance(model, LoadedModel) else model
    s, k = m.scale, m.in_channels
    Z, H, W = (int(n) for n in shape)
    th, tw = min(H, tile), min(W, tile)
    th, tw = (int(math.ceil(n / m.multiple) * m.multiple) for n in (th, tw))
    fixed = 4 * (Z + 1) * s * s * H * W
    try:
        act = _activation_bytes_cached(m.name, k, json.dumps(m.config, sort_keys=True), 1, th, tw)
    except Exception:  # a network the shape-only pass cannot run: a rough bound (32 full-size maps per tile)
        act = 4 * 32 * (s * th) * (s * tw)
    per_tile = 4 * k * th * tw + act
    need = fixed + batch * per_tile
    budget = memory_budget_bytes()
    if need > budget:
        fits = int((budget - fixed) // per_tile) if budget > fixed else 0
        if fits < 1:
            name, hint = "--tile", (f"the output alone ({Z} × {s * H} × {s * W} float32) needs {format_bytes(fixed)}; "
                                    "crop the input" if fixed >= budget else "use a smaller --tile")
        else:
            name, hint = "--batch", f"at most --batch {fits} fits with --tile {tile}, or use a smaller --tile"
        check_memory(need, f"enhancing {Z} × {H} × {W} voxels in {th} × {tw} px tiles, {batch} per pass", name, hint)
    return need


def enhance_array(model, vol: np.ndarray, tile: int = 256, overlap: int | None = None, batch: int = 8,
                  context_stride: int | None = None, device: str | None = None, progress=None) -> np.ndarray:
    """Enhance a stack ``(z, y, x)`` of HU slices with ``model`` (an :class:`Enhancer` or
    :class:`LoadedModel`) in blended tiles; returns ``(z, s·y, s·x)`` float32 HU.

    ``overlap=None`` uses ``2 · receptive radius + blend`` (exact tiling). ``progress`` is an optional
    ``advance(n)`` callback, called once per slice.
    """
    torch = _torch()
    m = model.model if isinstance(model, LoadedModel) else model
    if context_stride is None:
        context_stride = model.context_stride if isinstance(model, LoadedModel) else 1
    device = device or str(next(m.parameters()).device)
    vol = np.asarray(vol, np.float32)
    if vol.ndim != 3:
        raise ParameterError("volume", f"expected (z, y, x), got shape {vol.shape}")
    if not np.all(np.isfinite(vol)):
        raise ParameterError("volume", "contains NaN or infinite values; fill or mask them before enhancing")
    tile = check_positive_int(tile, "--tile", minimum=8)
    batch = check_positive_int(batch, "--batch", maximum=1 << 20)
    context_stride = check_positive_int(context_stride, "context_stride")
    mult, s, k = m.multiple, m.scale, m.in_channels
    if overlap is None:
        r = receptive_radius(m)
        blend = 8
        overlap = 2 * r + blend
    overlap = check_positive_int(overlap, "--overlap", minimum=0)
    Z, H, W = vol.shape
    tile = max(int(tile), overlap + mult)
    tile = int(math.ceil(tile / mult) * mult)
    check_tiling_memory(m, vol.shape, tile, overlap, batch)
    wy, wx = _axis_windows(H, tile, overlap, mult), _axis_windows(W, tile, overlap, mult)
    out = np.zeros((Z, s * H, s * W), np.float32)
    wsum = np.zeros((s * H, s * W), np.float32)
    tiles = []  # windows and their 1-D blend weights (the 2-D weights are made per use, not stored per tile)
    for ya, yb, wyy in wy:
        for xa, xb, wxx in wx:
            wsum[s * ya:s * yb, s * xa:s * xb] += _weights_2d(wyy, wxx, s)
            tiles.append((ya, yb, xa, xb, wyy, wxx))
    half = k // 2

    def flush(items: list[tuple[int, int]]) -> None:
        if not items:
            return
        xs = []
        for z, ti in items:
            ya, yb, xa, xb = tiles[ti][:4]
            idx = np.clip(z + context_stride * np.arange(-half, half + 1), 0, Z - 1)
            xs.append(vol[idx, ya:yb, xa:xb])
        ys = predict(m, np.stack(xs), device)
        for (z, ti), y in zip(items, ys, strict=True):
            ya, yb, xa, xb, wyy, wxx = tiles[ti]
            out[z, s * ya:s * yb, s * xa:s * xb] += y * _weights_2d(wyy, wxx, s)

    queues: dict[tuple[int, int], list[tuple[int, int]]] = {}  # tiles batched by shape, across slices
    with torch.inference_mode():
        for z in range(Z):
            for ti, (ya, yb, xa, xb, _, _) in enumerate(tiles):
                q = queues.setdefault((yb - ya, xb - xa), [])
                q.append((z, ti))
                if len(q) >= batch:
                    flush(q)
                    q.clear()
            if progress is not None:
                progress(1)
        for q in queues.values():
            flush(q)
    out /= np.maximum(wsum, 1e-12)[None]
    return out


def check_spacing(vol: Volume, lm: LoadedModel, resample: bool) -> Volume:
    """Compare ``vol``'s spacing with the model's training grid; refuse, or resample with a warning."""
    want = lm.input_spacing
    if want is None:
        return vol
    k = lm.model.in_channels
    axes = (0, 1, 2) if k > 1 else (1, 2)
    bad = [a for a in axes if abs(vol.spacing[a] - want[a]) > SPACING_RTOL * want[a]]
    if not bad:
        return vol
    have = ", ".join(f"{vol.spacing[a]:g}" for a in axes)
    need = ", ".join(f"{want[a]:g}" for a in axes)
    what = "z, y, x" if k > 1 else "y, x"
    if not resample:
        raise ParameterError("spacing", f"input spacing ({what}) is ({have}) mm but {lm.label} was trained on ({need}) mm; "
                                        "resample the input first or pass --resample (resample=True)")
    new = tuple(want[a] if a in axes else vol.spacing[a] for a in range(3))
    check_resample_memory(vol, new, lm, "--resample")
    warnings.warn(f"resampling the input from ({have}) mm to the {lm.label} training grid ({need}) mm", stacklevel=3)
    return vol.resample(new)


def resampled_shape(volume: Volume, spacing) -> tuple[int, int, int]:
    """The shape :meth:`Volume.resample` gives ``volume`` on ``spacing`` (same extent), computed, not made."""
    return tuple(max(1, int(round(n * old / new))) for n, old, new in zip(volume.shape, volume.spacing, spacing,
                                                                            strict=True))


def check_resample_memory(volume: Volume, spacing, lm: LoadedModel, name: str = "--resample") -> int:
    """Bytes that resampling ``volume`` to ``spacing`` and enhancing it will allocate (the float32 input copy and
    its smoothed copy, the resampled volume, and the model's output on the ``scale``-finer grid with its blend
    weights), checked against the memory budget before any of it is allocated: past it a
    :class:`ParameterError` naming ``name`` says what size of input would fit. Returns the bytes."""
    from trabecula.limits import check_memory, format_bytes, memory_budget_bytes

    shape = resampled_shape(volume, spacing)
    s = lm.model.scale
    n_in = float(np.prod([float(n) for n in volume.shape]))
    n_new = float(np.prod([float(n) for n in shape]))
    per_new = 4 * (1 + s * s) + 4 * s * s / max(shape[0], 1)  # resampled + output (+ one slice of weights)
    need = 8 * n_in + per_new * n_new
    budget = memory_budget_bytes()
    if need > budget:
        room = (budget - 8 * n_in) / per_new
        sp = ", ".join(f"{v:g}" for v in volume.spacing)
        to = ", ".join(f"{v:g}" for v in spacing)
        hint = (f"at most {max(0, int(room)):,} voxels fit on the model's grid, this would be "
                f"{' × '.join(str(n) for n in shape)} ({int(n_new):,}); check the input spacing ({sp} mm) or crop "
                "the input" if room >= 1 else f"the input alone needs {format_bytes(8 * n_in)}; crop it")
        check_memory(need, f"resampling the input from ({sp}) mm to ({to}) mm and enhancing it", name, hint)
    return int(need)


def _central_block(volume: Volume, new_spacing, size_mm: tuple[float, float, float] = (2.0, 40.0, 40.0)) -> Volume:
    """The central block of ``volume`` (about ``size_mm``, at least 3 slices and 32 pixels of the new grid a
    side), where the noise yardstick is read: the protocol is judged without resampling the whole volume."""
    lo, hi = [], []
    for a in range(3):
        n = volume.shape[a]
        want = max(size_mm[a], (3 if a == 0 else 32) * new_spacing[a])
        k = min(n, max(1, int(np.ceil(want / volume.spacing[a]))))
        lo.append((n - k) // 2)
        hi.append((n - k) // 2 + k)
    return volume.crop((lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2]))


def on_model_grid(volume: Volume, lm: LoadedModel, resample: bool = False, allow_out_of_range: bool = False):
    """``volume`` on the model's input grid, with its stated protocol and what lies outside the training ranges.

    Returns ``(volume on the model's grid, InputProtocol, [phrases naming each value outside])``. With
    ``training_ranges`` in the manifest: resampled to the canonical grid, refused outside the ranges unless
    ``allow_out_of_range`` (then warned); without: :func:`check_spacing` (``resample``). See the module
    docstring.
    """
    from trabecula.enhance.protocol import describe_input, out_of_range

    ranges = lm.manifest.get("training_ranges")
    if not ranges:
        vol = check_spacing(volume, lm, resample)
        return vol, describe_input(volume, vol.numpy()), []
    want = lm.input_spacing or volume.spacing
    axes = (0, 1, 2) if lm.model.in_channels > 1 else (1, 2)
    new = tuple(want[a] if a in axes else volume.spacing[a] for a in range(3))
    same = all(abs(volume.spacing[a] - new[a]) <= 1e-6 * new[a] for a in range(3))
    if not same:
        block = _central_block(volume, new)
        check_resample_memory(block, new, lm, "--input-spacing")
    proto = describe_input(volume, (volume if same else block.resample(new)).numpy())
    bad = out_of_range(proto, ranges)
    if bad and not allow_out_of_range:  # refused before the whole volume is resampled
        raise ParameterError("protocol", f"the input lies outside {lm.label}'s training ranges: {'; '.join(bad)}; "
                                         "pass --allow-out-of-range (allow_out_of_range=True) to enhance it anyway")
    if not same:
        check_resample_memory(volume, new, lm, "--input-spacing")
    vol = volume if same else volume.resample(new)
    if bad:
        warnings.warn(f"enhancing outside {lm.label}'s training ranges ({'; '.join(bad)}): the output is "
                      "extrapolated; check it (--check)", stacklevel=3)
    return vol, proto, bad


def check_enhance_options(tile: int = 256, overlap: int | None = None, batch: int = 8, threads: int | None = None,
                          device: str | None = None) -> str | None:
    """The enhancement options checked before any work (each a :class:`ParameterError` naming its option):
    ``--tile`` ≥ 8, ``--overlap`` ≥ 0, ``--batch`` ≥ 1, ``--threads`` 1–1024 and, when given, ``--device``
    (returned resolved)."""
    check_positive_int(tile, "--tile", minimum=8)
    if overlap is not None:
        check_positive_int(overlap, "--overlap", minimum=0)
    check_positive_int(batch, "--batch", maximum=1 << 20)
    check_threads(threads)
    return resolve_device(device) if device is not None else None


def enhance(volume: Volume, model: str | Path | LoadedModel = "dlr", tile: int = 256, overlap: int | None = None,
            batch: int = 8, device: str | None = None, resample: bool = False, threads: int | None = None,
            progress=None, allow_out_of_range: bool = False) -> Volume:
    """Enhance a clinical CT volume (HU) with a shipped or trained model; returns the HU output Volume.

    See the module docstring for tiling, the protocol ranges and the spacing rule. NaN or infinite input
    values, non-HU units, an input outside the training ranges (without ``allow_out_of_range``) and, for a
    model without ranges, a spacing mismatch (without ``resample``) raise :class:`ParameterError`. The
    stated protocol is in the output's ``provenance.extra["enhance_input_protocol"]``.
    """
    torch = _torch()
    check_enhance_options(tile=tile, overlap=overlap, batch=batch, threads=threads)
    if threads:
        torch.set_num_threads(int(threads))
    if volume.units != "HU":
        raise ParameterError("units", f"enhancement models take HU; the input is {volume.units}")
    lm = model if isinstance(model, LoadedModel) else load_model(model, device)
    arr = volume.numpy()
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ParameterError("volume", "input contains NaN or infinite values; fill or mask them before enhancing")
    vol, proto, bad = on_model_grid(volume, lm, resample, allow_out_of_range)
    radius = lm.manifest.get("receptive_radius_px")
    if overlap is None and radius is not None:
        overlap = 2 * int(radius) + 8
    out = enhance_array(lm, vol.numpy(), tile=tile, overlap=overlap, batch=batch, device=device, progress=progress)
    s = lm.model.scale
    sp = (vol.spacing[0], vol.spacing[1] / s, vol.spacing[2] / s)
    origin = tuple(o - old / 2 + new / 2 for o, old, new in zip(vol.origin, vol.spacing, sp, strict=True))
    prov = vol.provenance.with_step(f"enhance[{lm.label}, sha256 {lm.sha256[:12]}]")
    prov.extra = {**prov.extra, "enhance_model": lm.label, "enhance_architecture": lm.name, "enhance_weights_sha256": lm.sha256,
                  "enhance_weights": lm.source, "enhance_input_protocol": proto.to_dict(),
                  "enhance_out_of_range": bad}
    return Volume(out, sp, origin, "HU", prov)
