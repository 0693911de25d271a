"""The enhancement networks (PyTorch), small enough to train on a CPU in hours and ship in a few MB.

Every model maps a clinical CT slice (HU; ``K`` adjacent slices as channels for 2.5D input, the centre
one being the slice enhanced) to one output slice (HU). :class:`Enhancer` wraps a network with the
intensity normalisation ``(HU − hu_center) / hu_scale`` (constants stored in the weights' manifest) and,
for the models that work on the fine grid, the ×2 bilinear up-sampling of the input that the vertebra
study did by "doubling" its MDCT images.

=============  ================================================================  ===========  =========
name           network                                                           output grid  loss
=============  ================================================================  ===========  =========
``dlr``        residual U-Net denoiser: MONAI ``BasicUNet`` (2-D, four poolings,  same         L2
               2.0 M parameters) predicting the noise, subtracted from the centre
               slice (DnCNN's residual learning, Zhang et al. 2017, on a U-Net,
               Ronneberger et al. 2015); ``arch="dncnn"`` keeps the plain
               DnCNN conv stack
``srdlr``      residual U-Net on the input bilinearly up-sampled ×2 (VDSR's      ×2 in-plane  L1
               global residual, Kim et al. 2016, on MONAI ``BasicUNet``);
               ``arch="edsr"`` keeps EDSR-lite (Lim et al. 2017: residual blocks
               without norm, pixel-shuffle ×2, Shi et al. 2016)
``pix2pixhd``  pix2pixHD (Wang et al. 2018): global generator (conv → 2 down →      ×2 in-plane  LSGAN + FM
               residual blocks → 2 up) at half resolution + one local enhancer at        + L1
               full resolution; three-scale PatchGAN discriminators (instance norm)
``pix2pix``    pix2pix (Isola et al. 2017): U-Net generator + one PatchGAN          ×2 in-plane  GAN + L1
``crn``        Cascaded refinement network (Chen & Koltun 2017): refinement modules ×2 in-plane  L1
               from 1/16 to full resolution, each fed the input at its scale
=============  ================================================================  ===========  =========

Departures from the papers, all stated: generators normalise with batch norm (running statistics at
inference), not instance norm, because instance statistics depend on the tile and would make tiled
inference differ from whole-slice inference (the discriminators, used only in training, keep instance
norm); pix2pixHD's VGG perceptual loss is replaced by an L1 term (no VGG weights are available offline);
CRN uses no layer norm (same reason as above) and an L1 instead of a perceptual regression loss.
All blocks are written here (no torchvision).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from trabecula.errors import ParameterError

# ------------------------------------------------------------------------------------------ blocks


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class ResBlock(nn.Module):
    """conv3-norm-ReLU-conv3-norm + identity (pix2pixHD / EDSR residual block; ``norm=False`` → EDSR)."""

    def __init__(self, ch: int, norm: bool = True, res_scale: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(ch, ch, 3, padding=1)]
        if norm:
            layers.append(nn.BatchNorm2d(ch))
        layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(ch, ch, 3, padding=1))
        if norm:
            layers.append(nn.BatchNorm2d(ch))
        self.body = nn.Sequential(*layers)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


def _conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _up_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


# ------------------------------------------------------------------------------------------ networks


class DnCNN(nn.Module):
    """Residual denoiser: ``out = x_centre − body(x)``; body = conv-ReLU, (depth − 2) × conv-BN-ReLU, conv."""

    def __init__(self, in_ch: int = 1, width: int = 32, depth: int = 8):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.mid = in_ch // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.mid:self.mid + 1] - self.body(x)


class ResidualUNet(nn.Module):
    """A MONAI ``BasicUNet`` (2-D; conv-norm-LeakyReLU pairs, four max-pool levels, transposed-conv
    up-sampling with skip concatenation) whose output is a residual on the centre input channel:
    ``out = x_centre + sign · UNet(x)``, ``sign = −1`` for a denoiser that predicts the noise (DnCNN's
    residual learning), ``+1`` for super-resolution on an up-sampled input (VDSR's global residual).
    Batch norm (running statistics at inference), so tiled inference equals whole-slice inference."""

    def __init__(self, in_ch: int = 1, features: tuple[int, ...] = (32, 32, 64, 128, 256, 32), sign: float = -1.0):
        super().__init__()
        from monai.networks.nets import BasicUNet

        self.body = BasicUNet(spatial_dims=2, in_channels=in_ch, out_channels=1, features=tuple(features),
                              act=("LeakyReLU", {"negative_slope": 0.1, "inplace": True}), norm=("batch", {}))
        self.mid = in_ch // 2
        self.sign = float(sign)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.mid:self.mid + 1] + self.sign * self.body(x)


class EDSRLite(nn.Module):
    """EDSR-lite ×``scale`` super-resolution: head conv, residual blocks (no norm, residual scaling 0.1),
    conv, pixel-shuffle up-sampler, tail conv; plus the bilinear-upsampled centre channel (global skip)."""

    def __init__(self, in_ch: int = 1, width: int = 32, blocks: int = 6, scale: int = 2):
        super().__init__()
        self.head = nn.Conv2d(in_ch, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width, norm=False, res_scale=0.1) for _ in range(blocks)],
                                  nn.Conv2d(width, width, 3, padding=1))
        self.up = nn.Sequential(nn.Conv2d(width, width * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        self.tail = nn.Conv2d(width, 1, 3, padding=1)
        self.scale = scale
        self.mid = in_ch // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body(h)
        skip = F.interpolate(x[:, self.mid:self.mid + 1], scale_factor=self.scale, mode="bilinear", align_corners=False)
        return skip + self.tail(self.up(h))


class GlobalGenerator(nn.Module):
    """pix2pixHD global generator: conv7 → ``n_down`` stride-2 convs → residual blocks → transposed convs.

    With ``head_only`` it returns the last feature map (ngf channels) instead of the image, as the
    local enhancer uses it.
    """

    def __init__(self, in_ch: int, ngf: int = 32, n_down: int = 2, n_blocks: int = 3):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu(in_ch, ngf, 7)]
        ch = ngf
        for _ in range(n_down):
            layers.append(_conv_bn_relu(ch, ch * 2, 3, stride=2))
            ch *= 2
        layers += [ResBlock(ch) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers.append(_up_bn_relu(ch, ch // 2))
            ch //= 2
        self.features = nn.Sequential(*layers)
        self.out = nn.Conv2d(ngf, 1, 7, padding=3)

    def forward(self, x: torch.Tensor, head_only: bool = False) -> torch.Tensor:
        f = self.features(x)
        return f if head_only else self.out(f)


class Pix2PixHDGenerator(nn.Module):
    """Coarse-to-fine generator: the global generator runs on the input down-sampled ×2 (average pool);
    one local enhancer (conv7 → stride-2 conv at ``2 ngf_local`` = the global's ``ngf``; add the global
    features; residual blocks; transposed conv; conv7) works at full resolution (Wang et al. 2018, §3.2)."""

    def __init__(self, in_ch: int = 1, ngf_global: int = 32, n_down_global: int = 2, n_blocks_global: int = 3,
                 n_blocks_local: int = 2):
        super().__init__()
        ngf_local = ngf_global // 2
        self.global_g = GlobalGenerator(in_ch, ngf_global, n_down_global, n_blocks_global)
        self.local_down = nn.Sequential(_conv_bn_relu(in_ch, ngf_local, 7), _conv_bn_relu(ngf_local, ngf_global, 3, stride=2))
        self.local_up = nn.Sequential(*[ResBlock(ngf_global) for _ in range(n_blocks_local)],
                                      _up_bn_relu(ngf_global, ngf_local), nn.Conv2d(ngf_local, 1, 7, padding=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = F.avg_pool2d(x, 2)
        g = self.global_g(coarse, head_only=True)
        return self.local_up(self.local_down(x) + g)


class UNetGenerator(nn.Module):
    """pix2pix U-Net: ``depth`` 4×4 stride-2 conv-BN-LeakyReLU encoders, transposed-conv decoders with skip
    concatenations, linear output (HU are not bounded, so no tanh)."""

    def __init__(self, in_ch: int = 1, ngf: int = 16, depth: int = 4):
        super().__init__()
        self.downs = nn.ModuleList()
        ch, chs = in_ch, []
        for k in range(depth):
            out = ngf * 2 ** min(k, 3)
            block = [nn.Conv2d(ch, out, 4, stride=2, padding=1)]
            if k > 0:
                block.append(nn.BatchNorm2d(out))
            block.append(_act())
            self.downs.append(nn.Sequential(*block))
            chs.append(out)
            ch = out
        self.ups = nn.ModuleList()
        for k in reversed(range(depth)):
            skip = chs[k - 1] if k > 0 else 0
            out = chs[k - 1] if k > 0 else ngf
            self.ups.append(nn.Sequential(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)))
            ch = out + skip
        self.out = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for d in self.downs:
            h = d(h)
            skips.append(h)
        skips.pop()
        for u in self.ups:
            h = u(h)
            if skips:
                h = torch.cat([h, skips.pop()], 1)
        return self.out(h)


class CRN(nn.Module):
    """Cascaded refinement network: module ``i`` works at 1/2^(L−i) resolution on
    ``[upsampled previous features, input average-pooled to this scale]`` with two conv3-LeakyReLU
    layers; a 1×1 conv makes the image at full resolution (Chen & Koltun 2017, without layer norm)."""

    def __init__(self, in_ch: int = 1, widths: tuple[int, ...] = (64, 64, 32, 32, 16)):
        super().__init__()
        self.levels = len(widths) - 1
        self.mods = nn.ModuleList()
        prev = 0
        for w in widths:
            self.mods.append(nn.Sequential(nn.Conv2d(prev + in_ch, w, 3, padding=1), _act(),
                                           nn.Conv2d(w, w, 3, padding=1), _act()))
            prev = w
        self.out = nn.Conv2d(prev, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = None
        for i, m in enumerate(self.mods):
            f = 2 ** (self.levels - i)
            xi = F.avg_pool2d(x, f) if f > 1 else x
            if h is not None:
                h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
                xi = torch.cat([h, xi], 1)
            h = m(xi)
        return self.out(h)


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): 4×4 convs, stride 2 ``n_layers`` times, instance norm, LeakyReLU; returns
    every layer's output (for pix2pixHD's feature-matching loss), the last being the patch logits."""

    def __init__(self, in_ch: int = 2, ndf: int = 32, n_layers: int = 3):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(in_ch, ndf, 4, stride=2, padding=2), _act())]
        ch = ndf
        for k in range(1, n_layers):
            out = min(ndf * 2**k, 256)
            layers.append(nn.Sequential(nn.Conv2d(ch, out, 4, stride=2, padding=2), nn.InstanceNorm2d(out), _act()))
            ch = out
        out = min(ch * 2, 256)
        layers.append(nn.Sequential(nn.Conv2d(ch, out, 4, stride=1, padding=2), nn.InstanceNorm2d(out), _act()))
        layers.append(nn.Sequential(nn.Conv2d(out, 1, 4, stride=1, padding=2)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the image at full, 1/2 and 1/4 resolution (pix2pixHD §3.2)."""

    def __init__(self, in_ch: int = 2, ndf: int = 32, n_layers: int = 3, num_d: int = 3):
        super().__init__()
        self.ds = nn.ModuleList([PatchDiscriminator(in_ch, ndf, n_layers) for _ in range(num_d)])

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outs = []
        for k, d in enumerate(self.ds):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs


# ------------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class ModelSpec:
    """What a model name means: its network, output scale, the grid multiple it needs, loss family, defaults."""

    name: str
    scale: int          # output pixels per input pixel, per in-plane axis
    upsample_input: int  # bilinear ×n of the (normalised) input before the network (study's "doubling")
    kind: str           # "regression" or "gan"
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


MODELS: dict[str, ModelSpec] = {
    "dlr": ModelSpec("dlr", 1, 1, "regression", {"arch": "unet", "features": [32, 32, 64, 128, 256, 32]},
                     "residual U-Net denoiser (MONAI BasicUNet), noisy → noise-free"),
    "srdlr": ModelSpec("srdlr", 2, 2, "regression", {"arch": "unet", "features": [32, 32, 64, 128, 256, 32]},
                       "residual U-Net ×2 super-resolution (MONAI BasicUNet on the up-sampled input)"),
    "pix2pixhd": ModelSpec("pix2pixhd", 2, 2, "gan", {"ngf_global": 24, "n_down_global": 2, "n_blocks_global": 3,
                                                      "n_blocks_local": 2, "ndf": 16, "num_d": 3, "n_layers_d": 3,
                                                      "lambda_fm": 10.0, "lambda_l1": 10.0},
                           "pix2pixHD: global generator + local enhancer, 3-scale PatchGAN, LSGAN + FM + L1"),
    "pix2pix": ModelSpec("pix2pix", 2, 2, "gan", {"ngf": 16, "depth": 4, "ndf": 16, "num_d": 1, "n_layers_d": 3,
                                                  "lambda_fm": 0.0, "lambda_l1": 100.0},
                         "pix2pix: U-Net + PatchGAN, LSGAN + L1"),
    "crn": ModelSpec("crn", 2, 2, "regression", {"widths": [48, 48, 32, 24, 16]}, "cascaded refinement network, L1"),
}


#: the architecture a config without ``arch`` names, told by its keys (weights written before ``arch``)
_LEGACY_ARCH = {"dlr": ("depth", "dncnn"), "srdlr": ("blocks", "edsr")}
_LEGACY_DEFAULTS = {"dncnn": {"width": 32, "depth": 8}, "edsr": {"width": 32, "blocks": 6}}


def model_config(name: str, cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's defaults with ``cfg`` over them; a ``dlr``/``srdlr`` config naming no ``arch`` but the
    plain networks' keys (``depth``, ``blocks``) selects those networks (``dncnn``, ``edsr``)."""
    if name not in MODELS:
        raise ParameterError("model", f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cfg = dict(cfg or {})
    legacy = _LEGACY_ARCH.get(name)
    if legacy and "arch" not in cfg and legacy[0] in cfg:
        cfg["arch"] = legacy[1]
    arch = cfg.get("arch", MODELS[name].defaults.get("arch"))
    base = _LEGACY_DEFAULTS.get(arch, MODELS[name].defaults) if legacy else MODELS[name].defaults
    return {**base, **cfg, **({"arch": arch} if legacy else {})}


#: Bounds of a network config (``--set``, a checkpoint's ``hparams``): no shipped or sensible network comes near
#: them; they keep a hostile file from asking for loops of a billion layers or widths past torch's integers.
MAX_WIDTH = 65536
MAX_LAYERS = 256
MAX_IN_CHANNELS = 255

#: config keys per (model, architecture) and what each must be: "width" (1…MAX_WIDTH), "layers"
#: (0…MAX_LAYERS), "widths" (a list of widths), "weight" (a finite number ≥ 0)
_GAN_KEYS = {"ndf": "width", "num_d": ("int", 1, 8), "n_layers_d": ("int", 1, 12), "lambda_fm": "weight",
             "lambda_l1": "weight"}
_CONFIG_KEYS: dict[tuple[str, str | None], dict[str, Any]] = {
    ("dlr", "unet"): {"arch": "arch", "features": ("widths", 6, 6)},
    ("dlr", "dncnn"): {"arch": "arch", "width": "width", "depth": ("int", 2, MAX_LAYERS)},
    ("srdlr", "unet"): {"arch": "arch", "features": ("widths", 6, 6)},
    ("srdlr", "edsr"): {"arch": "arch", "width": "width", "blocks": ("int", 0, MAX_LAYERS)},
    ("pix2pixhd", None): {"ngf_global": ("int", 2, MAX_WIDTH), "n_down_global": ("int", 0, 8),
                          "n_blocks_global": ("int", 0, MAX_LAYERS), "n_blocks_local": ("int", 0, MAX_LAYERS),
                          **_GAN_KEYS},
    ("pix2pix", None): {"ngf": "width", "depth": ("int", 1, 12), **_GAN_KEYS},
    ("crn", None): {"widths": ("widths", 1, 12)},
}
_ARCHS = {"dlr": ("unet", "dncnn"), "srdlr": ("unet", "edsr")}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v: Any, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate_config(name: str, cfg: dict[str, Any] | None = None, option: str = "config",
                    in_channels: int = 1) -> dict[str, Any]:
    """Check a network config (``--set`` overrides, or a checkpoint's) before anything is built: known keys for
    the model's architecture, whole-number widths and layer counts within :data:`MAX_WIDTH` and
    :data:`MAX_LAYERS`, loss weights finite and ≥ 0, an odd number of input slices. Returns
    :func:`model_config`; a bad value raises :class:`ParameterError` naming ``option`` and the key."""
    import math

    if name not in MODELS:
        raise ParameterError("model", f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if not (_is_int(in_channels) and 1 <= in_channels <= MAX_IN_CHANNELS and in_channels % 2 == 1):
        raise ParameterError("--2.5d", f"the number of input slices must be odd, 1 to {MAX_IN_CHANNELS}, got {_short(in_channels)}")
    if cfg is not None and not isinstance(cfg, dict):
        raise ParameterError(option, f"the network config must be a table of KEY=VALUE, got {type(cfg).__name__}")
    raw = dict(cfg or {})
    arch = raw.get("arch")
    if name in _ARCHS and arch is not None and arch not in _ARCHS[name]:
        raise ParameterError(option, f"arch: {name} is built as {' or '.join(_ARCHS[name])}, got {_short(arch)}")
    if name not in _ARCHS and "arch" in raw:
        raise ParameterError(option, f"arch: {name} has one architecture; drop arch")
    c = model_config(name, raw)
    keys = _CONFIG_KEYS[(name, c.get("arch") if name in _ARCHS else None)]
    unknown = sorted(str(k) for k in raw if k not in keys)
    if unknown:
        what = f"{name} ({c['arch']})" if name in _ARCHS else name
        raise ParameterError(option, f"{unknown[0][:60]}: not a setting of the {what} network; its settings are "
                                     f"{', '.join(keys)}")
    for key, rule in keys.items():
        v = c.get(key)
        if rule == "arch":
            continue
        if rule == "weight":
            if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and v >= 0):
                raise ParameterError(option, f"{key} must be a finite number ≥ 0, got {_short(v)}")
            continue
        if rule == "width":
            rule = ("int", 1, MAX_WIDTH)
        if rule[0] == "int":
            lo, hi = rule[1], rule[2]
            if not (_is_int(v) and lo <= v <= hi):
                raise ParameterError(option, f"{key} must be a whole number from {lo} to {hi}, got {_short(v)}")
        else:  # a list of widths
            lo, hi = rule[1], rule[2]
            count = f"{lo}" if lo == hi else f"{lo} to {hi}"
            if not (isinstance(v, list | tuple) and lo <= len(v) <= hi
                    and all(_is_int(w) and 1 <= w <= MAX_WIDTH for w in v)):
                raise ParameterError(option, f"{key} must be a list of {count} whole numbers from 1 to {MAX_WIDTH}, "
                                             f"got {_short(v)}")
    return c


def network_parameters(name: str, in_channels: int = 1, cfg: dict[str, Any] | None = None,
                       discriminator: bool = False) -> int:
    """Parameters of the generator (and, with ``discriminator``, of a GAN model's discriminator) for a config
    that passed :func:`validate_config`, counted without allocating: the network is laid out on torch's
    ``meta`` device (shapes only, no storage)."""
    with torch.device("meta"):
        n = count_parameters(build_network(name, in_channels, **dict(cfg or {})))
        if discriminator:
            d = build_discriminator(name, in_channels, **dict(cfg or {}))
            n += count_parameters(d) if d is not None else 0
    return n


def check_network(name: str, in_channels: int = 1, cfg: dict[str, Any] | None = None, option: str = "config",
                  training: bool = False, what: str | None = None) -> int:
    """:func:`validate_config`, then the memory the network's float32 weights need (with ``training``: the
    weights, gradients and two Adam moments of the generator and a GAN's discriminator, 4 ×) checked against the
    memory budget (:func:`trabecula.limits.check_memory`) before it is built. Returns the bytes."""
    from trabecula.limits import check_memory

    validate_config(name, cfg, option, in_channels)
    n = network_parameters(name, in_channels, cfg, discriminator=training)
    nbytes = 4 * n * (4 if training else 1)
    label = what or f"the {name} network"
    check_memory(nbytes, f"{label} ({n:,} parameters{', trained with Adam' if training else ''})", option,
                 "use fewer or narrower layers, or raise --max-memory")
    return nbytes


def activation_bytes(name: str, in_channels: int = 1, cfg: dict[str, Any] | None = None, batch: int = 1,
                     height: int = 64, width: int = 64, training: bool = False) -> int:
    """Estimated bytes of a forward pass's activations on ``batch`` inputs of ``height`` × ``width`` pixels, from
    a shape-only pass on torch's ``meta`` device (nothing allocated): training keeps every layer's output for the
    backward pass (their sum); inference holds a few at a time (4 × the largest)."""
    with torch.device("meta"):
        net = Enhancer(name, in_channels, config=dict(cfg or {}))
        sizes: list[int] = []
        hooks = [m.register_forward_hook(lambda _m, _i, o: sizes.append(o.numel() if isinstance(o, torch.Tensor) else 0))
                 for m in net.modules() if not list(m.children())]
        try:
            with torch.no_grad():
                net(torch.empty(1, in_channels, int(height), int(width)))
        finally:
            for h in hooks:
                h.remove()
    per = sum(sizes) if training else 4 * max(sizes, default=0)
    return int(4 * per * batch)


def upsample_factor(name: str, cfg: dict[str, Any] | None = None) -> int:
    """Bilinear ×n of the input before the network: the model's, except the pixel-shuffle EDSR (×1)."""
    return 1 if model_config(name, cfg).get("arch") == "edsr" else MODELS[name].upsample_input


def build_network(name: str, in_ch: int = 1, **cfg: Any) -> nn.Module:
    """The generator network for model ``name`` with ``in_ch`` input channels and config overrides."""
    c = model_config(name, cfg)
    if name == "dlr":
        if c["arch"] == "dncnn":
            return DnCNN(in_ch, c["width"], c["depth"])
        return ResidualUNet(in_ch, tuple(c["features"]), sign=-1.0)
    if name == "srdlr":
        if c["arch"] == "edsr":
            return EDSRLite(in_ch, c["width"], c["blocks"], 2)
        return ResidualUNet(in_ch, tuple(c["features"]), sign=1.0)
    if name == "pix2pixhd":
        return Pix2PixHDGenerator(in_ch, c["ngf_global"], c["n_down_global"], c["n_blocks_global"], c["n_blocks_local"])
    if name == "pix2pix":
        return UNetGenerator(in_ch, c["ngf"], c["depth"])
    return CRN(in_ch, tuple(c["widths"]))


def build_discriminator(name: str, in_ch: int = 1, **cfg: Any) -> nn.Module | None:
    """The (multi-scale) PatchGAN for a GAN model, conditioned on the up-sampled input: ``in_ch + 1`` channels."""
    spec = MODELS[name]
    if spec.kind != "gan":
        return None
    c = {**spec.defaults, **cfg}
    return MultiScaleDiscriminator(in_ch + 1, c["ndf"], c["n_layers_d"], c["num_d"])


def network_multiple(name: str, **cfg: Any) -> int:
    """Size multiple (in network-input pixels) the network needs so that strided layers line up."""
    c = model_config(name, cfg)
    if name in ("dlr", "srdlr") and c["arch"] == "unet":
        return 16
    if name == "pix2pixhd":
        return 2 * 2 ** c["n_down_global"]
    if name == "pix2pix":
        return 2 ** c["depth"]
    if name == "crn":
        return 2 ** (len(c["widths"]) - 1)
    return 1


class Enhancer(nn.Module):
    """A network plus what it needs to take HU in and give HU out.

    ``forward(x)`` takes ``(B, K, H, W)`` HU (``K`` = ``in_channels`` adjacent slices, centre slice in the
    middle) and returns ``(B, 1, scale·H, scale·W)`` HU. Normalisation: ``(HU − hu_center) / hu_scale``.
    ``multiple`` is the size multiple in *input* pixels that the network's strides need.
    """

    def __init__(self, name: str, in_channels: int = 1, hu_center: float = 500.0, hu_scale: float = 1000.0,
                 config: dict[str, Any] | None = None):
        super().__init__()
        if name not in MODELS:
            raise ParameterError("model", f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
        check_network(name, in_channels, config)
        self.name = name
        self.spec = MODELS[name]
        self.config = dict(config or {})
        self.in_channels = int(in_channels)
        self.hu_center = float(hu_center)
        self.hu_scale = float(hu_scale)
        self.net = build_network(name, in_channels, **self.config)
        self.upsample = upsample_factor(name, self.config)
        up = self.upsample
        self.multiple = max(1, network_multiple(name, **self.config) // up)
        self.scale = self.spec.scale

    def normalize(self, hu: torch.Tensor) -> torch.Tensor:
        return (hu - self.hu_center) / self.hu_scale

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.hu_scale + self.hu_center

    def forward_normalized(self, z: torch.Tensor) -> torch.Tensor:
        """The network on normalised input (training uses this; no HU conversion)."""
        if self.upsample > 1:
            z = F.interpolate(z, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        return self.net(z)

    def upsampled_input(self, z: torch.Tensor) -> torch.Tensor:
        """The normalised input on the output grid (the discriminators' condition)."""
        if self.scale > 1:
            return F.interpolate(z, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return z

    def forward(self, x: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        """HU in, HU out; with ``normalized=True`` normalised in, normalised out (training, through DDP)."""
        if normalized:
            return self.forward_normalized(x)
        return self.denormalize(self.forward_normalized(self.normalize(x)))

    def hparams(self) -> dict[str, Any]:
        return {"model": self.name, "in_channels": self.in_channels, "hu_center": self.hu_center,
                "hu_scale": self.hu_scale, "config": model_config(self.name, self.config)}


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))
