"""Weight bundles (MONAI-style): ``model.pt`` (the generator's state dict) + ``manifest.json`` (SHA-256, the input
it expects, the output grid, the training config, the data it saw, evaluation numbers) + ``config.toml`` (the
training configuration, human-readable). :func:`export_bundle` turns a training checkpoint into one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from trabecula.errors import InputError
from trabecula.io import atomic_output


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        return '""'
    return json.dumps(str(v))


def to_toml(d: dict[str, Any]) -> str:
    """A flat-or-one-level-nested dict as TOML (enough for training configs)."""
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for name, t in tables:
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in t.items() if not isinstance(v, dict)]
    return "\n".join(lines) + "\n"


def pairs_digest(pairs_dir: str | Path) -> str:
    """SHA-256 of a pairs folder: of its ``manifest.json`` and every shard it lists (in the listed order)."""
    from trabecula.enhance.infer import sha256_file

    root = Path(pairs_dir)
    m = json.loads((root / "manifest.json").read_text())
    h = hashlib.sha256(sha256_file(root / "manifest.json").encode())
    for r in m["specimens"]:
        h.update(sha256_file(root / r["shard"]).encode())
    return h.hexdigest()


def pairs_training_ranges(pairs_dir: str | Path, manifest: dict, in_channels: int = 1) -> dict[str, Any]:
    """The training ranges a model learnt from a pairs folder (:func:`trabecula.enhance.protocol.training_ranges`),
    the noise yardstick measured on each training specimen's ``input`` (the canonical grid)."""
    import numpy as np

    from trabecula.enhance.protocol import noise_yardstick, training_ranges

    root = Path(pairs_dir)
    noise = []
    for r in manifest.get("specimens", []):
        if r.get("split") not in ("train", "mixed") or r.get("source") == "edge" or not r.get("protocol"):
            continue
        with np.load(root / r["shard"]) as z:
            if "input" in z:
                noise.append(noise_yardstick(z["input"]))
    return training_ranges(manifest, noise)


#: the training config's paths, recorded by their last component only (the machine's folders mean nothing
#: to a reader of the shipped weights; the pairs are identified by their SHA-256 in ``data``)
PATH_KEYS = ("data", "out", "data_manifest", "init")


def portable_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with each path in :data:`PATH_KEYS` cut to its last component (``/x/runs/pairs`` → ``pairs``;
    ``…/pairs/manifest.json`` → ``pairs/manifest.json``)."""
    out = dict(cfg)
    for k in PATH_KEYS:
        v = out.get(k)
        if isinstance(v, str) and ("/" in v or "\\" in v):
            p = Path(v)
            out[k] = f"{p.parent.name}/{p.name}" if k == "data_manifest" else p.name
    return out


def export_bundle(checkpoint: str | Path, out_dir: str | Path, evaluation: dict | None = None,
                  notes: str = "", force: bool = False) -> Path:
    """Write ``model.pt``, ``manifest.json`` and ``config.toml`` for the checkpoint's generator into ``out_dir``."""
    import torch

    from trabecula.enhance.checks import load_checkpoint, read_json
    from trabecula.enhance.infer import build_from_hparams, check_hparams, receptive_radius, sha256_file

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise InputError(checkpoint, "checkpoint not found")
    ck = load_checkpoint(checkpoint, "checkpoint")
    if not isinstance(ck, dict) or any(k not in ck for k in ("hparams", "G", "iter")):
        raise InputError(checkpoint, "is not a training checkpoint (needs hparams, G and iter)")
    run = checkpoint.parent
    cfg = read_json(run / "config.json", "run config") if (run / "config.json").exists() else {}
    dm = cfg.get("data_manifest")
    dm = dm if isinstance(dm, str) else None
    cfg = portable_config(cfg)
    hp = check_hparams(ck["hparams"], checkpoint, option="checkpoint")
    net = build_from_hparams(hp)
    try:
        net.net.load_state_dict(ck["G"])
    except (RuntimeError, TypeError, ValueError, AttributeError) as exc:
        first = " ".join(str(exc).split())
        raise InputError(checkpoint, f"weights do not fit the {hp['model']} network ({first[:200]})") from exc
    net.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "model.pt", force=force) as tmp:
        torch.save({k: v.clone() for k, v in ck["G"].items()}, tmp)
    in_sp = [float(s) for s in ck.get("input_spacing") or [0.1, 0.2, 0.2]]
    s = net.scale
    data_manifest: dict[str, Any] = {}
    ranges: dict[str, Any] = {}
    if dm and Path(dm).exists():
        m = read_json(dm, "pairs manifest")
        ranges = pairs_training_ranges(Path(dm).parent, m, hp.get("in_channels", 1))
        data_manifest = {"backend": m.get("backend"), "backend_note": m.get("backend_note"), "split_mode": m.get("split_mode"),
                         "seed": m.get("seed"), "doses_mas": m.get("doses_mas"),
                         "specimens": {sp: sum(1 for r in m["specimens"] if r["split"] == sp) for sp in ("train", "val", "test")},
                         "sources": sorted({r["source"] for r in m["specimens"]}),
                         "test_specimens": [r["id"] for r in m["specimens"] if r["split"] == "test"],
                         "sha256": pairs_digest(Path(dm).parent)}
    manifest = {
        "format": "trabecula-weights/1",
        "model": hp["model"],
        "sha256": sha256_file(out / "model.pt"),
        "parameters": int(sum(p.numel() for p in net.net.parameters())),
        "hparams": hp,
        "input": {"units": "HU", "channels": hp.get("in_channels", 1), "context_stride": int(ck.get("context_stride", 1)),
                  "spacing_mm": in_sp, "normalisation": "(HU - hu_center) / hu_scale",
                  "hu_center": hp.get("hu_center"), "hu_scale": hp.get("hu_scale"), "spacing_tolerance": 0.05},
        "output": {"units": "HU", "scale_inplane": s, "spacing_mm": [in_sp[0], in_sp[1] / s, in_sp[2] / s]},
        "receptive_radius_px": receptive_radius(net),
        "training": {"iterations": int(ck["iter"]), "seconds": round(float(ck.get("elapsed_s", 0.0)), 1),
                     "checkpoint": "best validation" if checkpoint.name == "best.pt" else checkpoint.name,
                     "config": {k: v for k, v in cfg.items() if k not in ("hparams",)}},
        "data": data_manifest,
        "training_ranges": ranges,
        "evaluation": evaluation or {},
        "notes": notes,
    }
    with atomic_output(out / "manifest.json", force=True) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1))
    toml_cfg = {k: v for k, v in cfg.items() if k not in ("hparams", "config")}
    toml_cfg["network"] = hp.get("config", {})
    with atomic_output(out / "config.toml", force=True) as tmp:
        Path(tmp).write_text(f"# training configuration of the shipped {hp['model']} weights\n" + to_toml(toml_cfg))
    return out / "manifest.json"
