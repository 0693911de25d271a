"""Training: one loop for every model, on random paired patches, with periodic validation, a CSV log,
checkpoints and resume; CPU or CUDA; several processes or GPUs through ``torchrun`` (DistributedDataParallel).

* Regression models (``dlr``: L2; ``srdlr``, ``crn``: L1) minimise their loss with Adam (lr 1e-3).
* GAN models (``pix2pixhd``, ``pix2pix``), Adam (lr 2e-4, β = (0.5, 0.999)) for both nets. The
  generator loss is ``Σ_scales LSGAN(D(x, G(x)), 1) + λ_FM · FM + λ_L1 · ‖G(x) − y‖₁`` (Mao et al. 2017
  least squares; FM = pix2pixHD's discriminator feature matching, the L1 distance between the
  discriminator features of real and generated pairs, averaged over layers and scales); the
  discriminator loss is ``½ Σ_scales [LSGAN(D(x, y), 1) + LSGAN(D(x, G(x)), 0)]``. Discriminators see
  the input (bilinearly up-sampled to the output grid) concatenated with the output.

Item ``i`` of the patch stream is drawn from ``(seed, i)``, so a run is reproducible and ``--resume``
continues the same stream. Validation on whole held-out slices of the *validation* specimens every
``val_every`` iterations: the study SSIM, standard SSIM on HU and PSNR against the target; ``best.pt`` keeps
the checkpoint with the best validation score (study SSIM; PSNR for ``dlr``), ``last.pt`` the latest.

Several processes (``torchrun --nproc-per-node N -m trabecula train ...``; :func:`process_rank` reads the
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` variables torchrun sets): the processes join one group (``nccl`` on
CUDA, each pinned to ``cuda:LOCAL_RANK``; ``gloo`` on CPU) and the *global* batch (``batch``) is split:
process ``r`` of ``W`` takes the contiguous share ``it·batch + r·batch/W + j`` (``j < batch/W``) of exactly the
items a one-process run draws at iteration ``it``, so the union of the shares is the one-process batch
(augmentation is keyed by the item too). The networks are wrapped in DistributedDataParallel, whose
gradient average over equal shares of a per-sample-mean loss is the one-process gradient; batch norm is made
global (:func:`make_batchnorm_global`: :class:`torch.nn.SyncBatchNorm` on CUDA, our own on CPU, where
SyncBatchNorm does not run), so its statistics are those of the whole batch. The logged losses are the global
means (all-reduced). Rank 0 alone reads the resume checkpoint (and hands it to the others) and the ``init``
weights, writes the run folder, validates (on its own: the others wait at a barrier), logs and shows the
progress bar. A batch not divisible by the number of processes is refused (``--batch``). The same seed gives
the same loss curve on 1 or N processes, within floating-point noise (``tests/enhance/test_distributed_train.py``).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.enhance.checks import (
    check_positive_int,
    check_positive_number,
    check_threads,
    load_checkpoint,
    resolve_device,
)
from trabecula.enhance.data import PairSet, PatchDataset, validation_slices
from trabecula.errors import InputError, ParameterError, TrabeculaError
from trabecula.progress import make_progress
from trabecula.quality.similarity import psnr, ssim_hu, ssim_study


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``config.json`` in the run folder."""

    model: str
    data: str
    out: str
    iters: int = 2000
    minutes: float | None = None
    batch: int = 8            # the global batch: split equally among the processes under torchrun
    patch: int = 40           # input pixels (the target patch is scale × larger)
    lr: float | None = None
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    in_channels: int = 1      # 2.5D: number of adjacent input slices (odd)
    context_stride: int = 1   # 2.5D: slice step between the input slices
    val_every: int = 250
    val_slices: int = 6
    hu_center: float = 500.0
    hu_scale: float = 1000.0
    config: dict[str, Any] = field(default_factory=dict)
    init: str | None = None   # fine-tune: start the generator from these weights (shipped name, folder or .pt)


def process_rank() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` of this process: from the variables ``torchrun`` (or another launcher)
    sets, ``(0, 1, 0)`` for a plain run."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))



def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (torch elastic)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_torchelastic_launched()


def check_world(cfg: TrainConfig, world: int) -> None:
    """Refuse a global ``batch`` that the ``world`` processes cannot share equally (:class:`ParameterError`,
    ``--batch``): unequal shares would weigh the samples unequally in DDP's gradient average."""
    if world > 1 and cfg.batch % world:
        raise ParameterError("--batch", f"the global batch of {cfg.batch} patches must be divisible by the "
                                        f"{world} processes (e.g. --batch {max(world, cfg.batch // world * world)})")


def rank_threads(threads: int | None, world: int) -> int | None:
    """The torch threads of one process: ``threads`` (``None``: torch's default) on one process; on several, at
    most the machine's CPUs divided by the processes on it (``LOCAL_WORLD_SIZE``), at least 1."""
    if world <= 1:
        return threads
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    return min(threads, share) if threads else share


class _AllReduceSum:
    """A differentiable all-reduce (sum) over the process group; its gradient is the all-reduced gradient."""

    _fn = None

    @classmethod
    def apply(cls, x):
        if cls._fn is None:
            import torch
            import torch.distributed as dist

            class _Fn(torch.autograd.Function):
                @staticmethod
                def forward(ctx, t):  # noqa: ARG004
                    t = t.clone()
                    dist.all_reduce(t)
                    return t

                @staticmethod
                def backward(ctx, g):  # noqa: ARG004
                    g = g.clone()
                    dist.all_reduce(g)
                    return g

            cls._fn = _Fn
        return cls._fn.apply(x)


@functools.cache
def _global_batchnorm_class():
    import torch
    from torch import nn

    class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
        """Batch norm whose training statistics are those of the whole batch across the process group (two
        differentiable all-reduces: the sums, then the squared deviations from the global mean), so it runs
        on CPU (``gloo``) where :class:`torch.nn.SyncBatchNorm` does not. Same parameters, buffers and
        evaluation as :class:`torch.nn.BatchNorm2d`."""

        def _check_input_dim(self, x):
            if x.dim() < 2:
                raise ValueError(f"expected at least 2-D input (got {x.dim()}-D)")

        def forward(self, x):
            import torch.distributed as dist

            if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
                return super().forward(x)
            dims = [0, *range(2, x.dim())]
            shape = [1, -1] + [1] * (x.dim() - 2)
            # sums and count in float64 (exact counts, no loss over large batches), the result in x's type
            count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
            sums = _AllReduceSum.apply(torch.cat([x.sum(dims, dtype=torch.float64), count]))
            n = float(sums[-1].detach())
            mean = (sums[:-1] / n).to(x.dtype)
            xc = x - mean.view(shape)
            var = (_AllReduceSum.apply((xc * xc).sum(dims, dtype=torch.float64)) / n).to(x.dtype)
            y = xc * torch.rsqrt(var + self.eps).view(shape)
            if self.affine:
                y = y * self.weight.view(shape) + self.bias.view(shape)
            if self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked += 1
                    m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                    self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                    self.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1.0, 1.0)), alpha=m)
            return y

    return GlobalBatchNorm


def make_batchnorm_global(module, cuda: bool):
    """Every batch norm of ``module`` made global over the process group, sharing its parameters and buffers
    (so optimisers and checkpoints see the same tensors): :class:`torch.nn.SyncBatchNorm` on CUDA, else
    ``GlobalBatchNorm`` (below). Returns the module (converted in place unless it is a batch norm itself)."""
    from torch import nn

    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    cls = _global_batchnorm_class()

    def convert(m):
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm | cls):
            g = cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
            if m.affine:
                g.weight, g.bias = m.weight, m.bias
            if m.track_running_stats:
                g.running_mean, g.running_var, g.num_batches_tracked = m.running_mean, m.running_var, m.num_batches_tracked
            g.train(m.training)
            return g
        for name, child in m.named_children():
            setattr(m, name, convert(child))
        return m

    return convert(module)


def lsgan(preds: list[list[Any]], target: float):
    """Least-squares GAN loss summed over discriminator scales (last layer of each = logits)."""
    import torch

    return sum(torch.mean((p[-1] - target) ** 2) for p in preds)


def feature_matching(real: list[list[Any]], fake: list[list[Any]]):
    """pix2pixHD feature matching: mean L1 between real and fake discriminator features (all but logits),
    averaged over layers and scales."""
    import torch

    n_d = len(real)
    loss = 0.0
    for r, f in zip(real, fake, strict=True):
        n_l = len(r) - 1
        for k in range(n_l):
            loss = loss + torch.mean(torch.abs(f[k] - r[k].detach())) / (n_l * n_d)
    return loss


def validate(model, slices: list[tuple[str, np.ndarray, np.ndarray]], device: str) -> dict[str, float]:
    """Study SSIM, SSIM on HU and PSNR of whole validation slices (model in eval mode)."""
    from trabecula.enhance.infer import predict

    was = model.training
    model.eval()
    s_study, s_hu, ps = [], [], []
    for _, x, y in slices:
        out = predict(model, x[None], device)[0]
        s_study.append(ssim_study(out, y[0]))
        s_hu.append(ssim_hu(out, y[0]))
        ps.append(psnr(out, y[0]))
    model.train(was)
    return {"val_ssim_study": float(np.mean(s_study)), "val_ssim_hu": float(np.mean(s_hu)), "val_psnr": float(np.mean(ps))}


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Network config overrides ``KEY=VALUE`` (``--set``) as a dict: each value parsed as JSON when it is
    JSON (``width=48`` → 48, ``flag=true`` → True), else kept as the string. No ``=`` raises
    :class:`ParameterError` (``--set``)."""
    cfg: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise ParameterError("--set", f"expected KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            cfg[k.strip()] = json.loads(v)
        except ValueError:
            cfg[k.strip()] = v
    return cfg


LOG_FIELDS = ["iter", "elapsed_s", "loss_g", "loss_d", "loss_l1", "val_ssim_study", "val_ssim_hu", "val_psnr", "lr"]


@dataclass
class TrainRun:
    """A training run once set up (:func:`setup_run`): the networks, optimisers, data and run folder, and
    where the run stands (``start_iter``, ``elapsed0`` seconds already trained, ``best`` validation score)."""

    cfg: TrainConfig
    device: str
    rank: int
    world: int
    local_rank: int
    out: Path
    pairs: Any                # PairSet
    patches: Any              # PatchDataset
    val: list                 # whole validation slices (rank 0 only)
    model: Any                # Enhancer (unwrapped)
    disc: Any                 # discriminator or None
    opt_g: Any
    opt_d: Any
    lr: float
    loss_cfg: dict[str, Any]  # the model's defaults with the run's overrides (λ_L1, λ_FM)
    net_g: Any = None         # the model, or its DistributedDataParallel wrapper
    net_d: Any = None
    start_iter: int = 0
    elapsed0: float = 0.0
    best: float = -math.inf
    resume_checkpoint: Any = None  # ``last.pt`` read by setup_run(resume=True), used by resume_run

    @property
    def gan(self) -> bool:
        return self.disc is not None

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def checkpoint(self) -> Path:
        return self.out / "last.pt"

    @property
    def score_key(self) -> str:
        """The validation score ``best.pt`` maximises: PSNR for ``dlr``, the study SSIM otherwise."""
        return "val_psnr" if self.cfg.model == "dlr" else "val_ssim_study"


def check_config(cfg: TrainConfig) -> None:
    """Refuse, before any work, an unknown model, non-positive ``iters``, ``batch``, ``patch``, ``val_every``,
    ``val_slices`` or ``context_stride``, an even or non-positive number of input slices, a bad ``threads``,
    ``minutes`` or ``lr``, a network config that is not the model's (``--set``), and a network or batch
    whose memory (weights, gradients, Adam moments, activations: counted without allocating) is past the memory
    budget. Each a :class:`ParameterError` naming the option."""
    from trabecula.enhance.models import MODELS, activation_bytes, check_network
    from trabecula.limits import check_memory

    if cfg.model not in MODELS:
        raise ParameterError("--model", f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")
    for name in ("iters", "batch", "patch", "val_every", "val_slices"):
        check_positive_int(getattr(cfg, name), f"--{name.replace('_', '-')}", maximum=1 << 40)
    check_positive_int(cfg.context_stride, "--context-stride", maximum=1000)
    check_threads(cfg.threads)
    check_positive_number(cfg.minutes, "--minutes")
    check_positive_number(cfg.lr, "--lr")
    for name in ("hu_center", "hu_scale"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or (name == "hu_scale" and v == 0):
            raise ParameterError(name, f"must be a finite number{' other than 0' if name == 'hu_scale' else ''}, got {v!r}")
    net_bytes = check_network(cfg.model, cfg.in_channels, cfg.config, option="--set", training=True)
    if cfg.patch > 4096:
        raise ParameterError("--patch", f"must be at most 4096 pixels, got {cfg.patch}")
    s = MODELS[cfg.model].scale
    act = activation_bytes(cfg.model, cfg.in_channels, cfg.config, 1, cfg.patch, cfg.patch, training=True)
    per_patch = 2 * act + 4 * (cfg.in_channels + s * s) * cfg.patch ** 2  # forward + backward, the pair itself
    if net_bytes + cfg.batch * per_patch > memory_budget():
        fits = int((memory_budget() - net_bytes) // per_patch)
        check_memory(net_bytes + cfg.batch * per_patch, f"training {cfg.model} on {cfg.batch} patches of "
                     f"{cfg.patch} px", "--batch", f"at most --batch {fits} fits with --patch {cfg.patch}"
                     if fits >= 1 else "use a smaller --patch")


def memory_budget() -> int:
    from trabecula.limits import memory_budget_bytes

    return memory_budget_bytes()


def select_device(cfg: TrainConfig, local_rank: int, world: int = 1) -> str:
    """``cfg.device``, else ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``; on several processes a
    plain ``cuda`` is ``cuda:LOCAL_RANK`` too (each process its own GPU); anything but ``cpu``, ``cuda`` or ``cuda:N``, CUDA asked
    for but absent, or a missing CUDA device raises :class:`ParameterError` (``--device``)."""
    import torch

    device = resolve_device(cfg.device, "--device", default=f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return f"cuda:{local_rank}" if device == "cuda" and world > 1 else device


def model_hparams(cfg: TrainConfig) -> dict[str, Any]:
    """The hyper-parameters the run's generator will have (:meth:`Enhancer.hparams`), without building it."""
    from trabecula.enhance.models import model_config

    return {"model": cfg.model, "in_channels": int(cfg.in_channels), "hu_center": float(cfg.hu_center),
            "hu_scale": float(cfg.hu_scale), "config": model_config(cfg.model, cfg.config)}


def read_resume_checkpoint(cfg: TrainConfig) -> dict[str, Any]:
    """The run folder's ``last.pt`` for ``--resume``, read (``weights_only``) and checked against the run before
    anything is built: a missing, truncated or malformed checkpoint is an :class:`InputError` naming it; one of
    another model, input channels or network config a :class:`ParameterError` (``--model``, ``--2.5d`` or
    ``--set``) saying what it holds."""
    path = Path(cfg.out) / "last.pt"
    if not path.is_file():
        raise InputError(path, "no checkpoint to resume from")
    ck = load_checkpoint(path, "checkpoint")
    need = ("iter", "hparams", "G", "opt_g")
    if not isinstance(ck, dict) or any(k not in ck for k in need):
        raise InputError(path, f"is not a training checkpoint (needs {', '.join(need)})")
    hp, want = ck["hparams"], model_hparams(cfg)
    if not isinstance(hp, dict):
        raise InputError(path, "its hparams must be a table")
    if hp.get("model") != want["model"]:
        raise ParameterError("--model", f"{path} holds a {str(hp.get('model'))[:40]} run; resume it with --model "
                                        f"{str(hp.get('model'))[:40]} (or train {cfg.model} into another --out)")
    if hp.get("in_channels") != want["in_channels"]:
        raise ParameterError("--2.5d", f"{path} was trained with --2.5d {str(hp.get('in_channels'))[:20]}, "
                                       f"not {want['in_channels']}")
    if hp != want:
        raise ParameterError("--set", f"{path} holds a {cfg.model} network with config {str(hp.get('config'))[:200]}; "
                                      f"this run builds {want['config']}: pass the same --set values")
    try:
        int(ck["iter"]), float(ck.get("elapsed_s", 0.0)), float(ck.get("best", -math.inf))
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"its iteration or timing is not a number ({exc})") from exc
    return ck


class PeerStopped(TrabeculaError):
    """Raised on the other processes when rank 0 refuses the run (settings, run folder, resume checkpoint):
    rank 0 raises the error itself, so that it is said once."""


#: whether :func:`join_process_group` started the process group (so :func:`train` ends it), not the caller
_owns_group = False


def join_process_group(device: str) -> None:
    """Join the ``torchrun`` group from the environment (``nccl`` on CUDA, pinned to ``device``, i.e.
    ``cuda:LOCAL_RANK``; else ``gloo``) unless the caller already did."""
    global _owns_group
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        _owns_group = True


def leave_process_group() -> None:
    """End the process group :func:`join_process_group` started (at the end of a run, also after an error)."""
    global _owns_group
    import torch.distributed as dist

    if _owns_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _owns_group = False


def _prepare_out(cfg: TrainConfig, resume: bool) -> Any:
    """Rank 0's part of the set-up: read and check ``last.pt`` for ``--resume``, refuse a run folder that
    holds a run, make the folder. Returns the resume checkpoint (or ``None``)."""
    resume_ck = read_resume_checkpoint(cfg) if resume else None
    out = Path(cfg.out)
    if out.exists() and (out / "config.json").exists() and not resume:
        raise InputError(out, "already holds a run; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return resume_ck


def _from_rank0(prepare: Callable[[], Any], rank: int, world: int) -> Any:
    """``prepare()`` on rank 0, its result (or its refusal) handed to every process: rank 0 raises its
    error, the others :class:`PeerStopped`."""
    if world <= 1:
        return prepare()
    import torch.distributed as dist

    box: list[Any] = [None]
    error: TrabeculaError | None = None
    if rank == 0:
        try:
            box = [("ok", prepare())]
        except TrabeculaError as exc:
            error, box = exc, [("error", str(exc))]
    dist.broadcast_object_list(box, src=0)
    if error is not None:
        raise error
    status, value = box[0]
    if status == "error":
        raise PeerStopped(f"rank 0 stopped the run: {value}")
    return value


def setup_run(cfg: TrainConfig, resume: bool = False) -> TrainRun:
    """Set a run up from ``cfg``: device and process group, seeds, run folder (refused when it holds a run and
    ``resume`` is off), patch stream and validation slices, generator, discriminator (GAN models) and Adam
    optimisers (lr 2e-4, β (0.5, 0.999) for GANs; 1e-3, β (0.9, 0.999) otherwise, unless ``cfg.lr``).

    The networks are built right after seeding torch, so their initial weights follow from ``cfg.seed`` (the
    same on every process). On several processes rank 0 alone reads the resume checkpoint and makes the run
    folder, and hands the checkpoint to the others; only rank 0 loads the validation slices.
    """
    import torch

    from trabecula.enhance.models import MODELS, Enhancer, build_discriminator

    rank, world, local_rank = process_rank()
    try:
        check_config(cfg)
        check_world(cfg, world)
    except TrabeculaError as exc:  # the settings are the same on every process: rank 0 refuses them too
        if rank != 0:
            raise PeerStopped(f"rank 0 refuses the same settings: {exc}") from exc
        raise
    spec = MODELS[cfg.model]
    device = select_device(cfg, local_rank, world)
    if world > 1:
        join_process_group(device)
    resume_ck = _from_rank0(lambda: _prepare_out(cfg, resume), rank, world)
    threads = rank_threads(cfg.threads, world)
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    out = Path(cfg.out)

    pairs = PairSet.open(cfg.data)
    in_key, tgt_key = pairs.model_keys(cfg.model)
    patches = PatchDataset(pairs, "train", cfg.patch, spec.scale, cfg.in_channels, cfg.context_stride, in_key,
                           tgt_key, seed=cfg.seed)
    val = (validation_slices(pairs, "val", cfg.val_slices, cfg.in_channels, cfg.context_stride, in_key, tgt_key)
           if rank == 0 else [])

    model = Enhancer(cfg.model, cfg.in_channels, cfg.hu_center, cfg.hu_scale, cfg.config).to(device)
    disc = build_discriminator(cfg.model, cfg.in_channels, **cfg.config)
    if disc is not None:
        disc = disc.to(device)
    gan = disc is not None
    lr = cfg.lr or (2e-4 if gan else 1e-3)
    betas = (0.5, 0.999) if gan else (0.9, 0.999)
    opt_g = torch.optim.Adam(model.net.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=betas) if gan else None
    run = TrainRun(cfg, device, rank, world, local_rank, out, pairs, patches, val, model, disc, opt_g, opt_d, lr,
                   {**spec.defaults, **cfg.config}, net_g=model, net_d=disc)
    run.resume_checkpoint = resume_ck
    return run


def init_from_weights(run: TrainRun, weights: str, log: Callable[[str], None] = print) -> None:
    """Fine-tuning: load the generator's weights from ``weights`` (a shipped model name, a weights folder or a
    ``.pt``); a network of another shape (model, channels or config) raises :class:`ParameterError`."""
    from trabecula.enhance.infer import load_model

    init = load_model(weights, device="cpu")
    if init.model.hparams() != run.model.hparams():
        raise ParameterError("init", f"{weights} is a {init.model.hparams()} network; this run builds "
                                     f"{run.model.hparams()} (same model, channels and config needed)")
    run.model.net.load_state_dict(init.model.net.state_dict())
    log(f"fine-tuning from {init.source} (sha256 {init.sha256[:12]}…)")


def resume_run(run: TrainRun) -> None:
    """Continue from the run folder's ``last.pt``: networks, optimisers, iteration, training time and best
    validation score (the patch stream continues from the iteration, being drawn from ``(seed, i)``)."""
    ck = run.resume_checkpoint if run.resume_checkpoint is not None else read_resume_checkpoint(run.cfg)
    run.resume_checkpoint = None
    try:
        run.model.net.load_state_dict(ck["G"])
        run.opt_g.load_state_dict(ck["opt_g"])
        if run.gan:
            run.disc.load_state_dict(ck["D"])
            run.opt_d.load_state_dict(ck["opt_d"])
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        first = " ".join(str(exc).split())
        raise InputError(run.checkpoint, f"does not fit this run's networks ({type(exc).__name__}: {first[:200]})") from exc
    run.start_iter, run.elapsed0 = int(ck["iter"]), float(ck.get("elapsed_s", 0.0))
    run.best = float(ck.get("best", -math.inf))


def wrap_distributed(run: TrainRun) -> None:
    """Make the networks' batch norms global over the group (:func:`make_batchnorm_global`) and wrap them in
    DistributedDataParallel (one device per process on CUDA)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    cuda = run.device.startswith("cuda")
    ids = [torch.device(run.device).index] if cuda else None
    make_batchnorm_global(run.model, cuda)
    run.net_g = DDP(run.model, device_ids=ids)
    if run.gan:
        make_batchnorm_global(run.disc, cuda)
        run.net_d = DDP(run.disc, device_ids=ids)


def write_run_files(run: TrainRun) -> None:
    """``config.json`` (the config, the network's hyper-parameters and size, device, data) and the header of
    ``log.csv`` when it is new; rank 0 only."""
    from trabecula.enhance.models import count_parameters

    if run.rank != 0:
        return
    cfg = run.cfg
    (run.out / "config.json").write_text(json.dumps({**asdict(cfg), "hparams": run.model.hparams(),
                                                      "parameters": count_parameters(run.model.net),
                                                      "world_size": run.world, "torchrun": launched_by_torchrun(),
                                                      "device": run.device,
                                                      "data_manifest": str(Path(cfg.data).resolve() / "manifest.json"),
                                                      "split_mode": run.pairs.split_mode}, indent=1))
    log_path = run.out / "log.csv"
    if not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(LOG_FIELDS)


def save_checkpoint(run: TrainRun, it: int, elapsed: float, path: Path) -> None:
    """Write the run's state at iteration ``it`` to ``path`` (atomically: a temporary file, then renamed)."""
    import torch

    state = {"iter": it, "elapsed_s": elapsed, "best": run.best, "hparams": run.model.hparams(),
             "G": run.model.net.state_dict(), "opt_g": run.opt_g.state_dict(),
             "input_spacing": run.pairs.manifest["input_spacing"], "context_stride": run.cfg.context_stride}
    if run.gan:
        state["D"] = run.disc.state_dict()
        state["opt_d"] = run.opt_d.state_dict()
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def batch_items(it: int, batch: int, rank: int = 0, world: int = 1) -> range:
    """The patch-stream items process ``rank`` of ``world`` trains on at iteration ``it``: its contiguous share
    of the global batch ``it·batch … it·batch + batch − 1`` (the items a one-process run draws)."""
    share = batch // world
    start = it * batch + rank * share
    return range(start, start + share)


def next_batch(run: TrainRun, it: int):
    """Iteration ``it``'s batch ``(x, y)`` in HU on the device: this process's share of the global batch
    (:func:`batch_items`)."""
    import torch

    items = [run.patches[i] for i in batch_items(it, run.cfg.batch, run.rank, run.world)]
    x = torch.from_numpy(np.stack([a for a, _ in items])).to(run.device)
    y = torch.from_numpy(np.stack([b for _, b in items])).to(run.device)
    return x, y


def global_mean(run: TrainRun, losses: dict[str, float]) -> dict[str, float]:
    """The step's losses averaged over the processes (each a mean over an equal share of the batch, so the
    result is the loss of the whole batch); unchanged on one process."""
    if not run.distributed:
        return losses
    import torch
    import torch.distributed as dist

    keys = sorted(losses)
    t = torch.tensor([losses[k] for k in keys], dtype=torch.float64, device=run.device)
    dist.all_reduce(t)
    return {k: float(v) / run.world for k, v in zip(keys, t.tolist(), strict=True)}


def _should_stop(run: TrainRun, elapsed: float) -> bool:
    """``cfg.minutes`` spent: rank 0's clock decides for every process (they must stop at the same step)."""
    if run.cfg.minutes is None:
        return False
    stop = elapsed > 60.0 * run.cfg.minutes
    if run.distributed:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1.0 if stop else 0.0], device=run.device)
        dist.broadcast(flag, src=0)
        stop = bool(flag.item())
    return stop


def _barrier(run: TrainRun) -> None:
    if run.distributed:
        import torch.distributed as dist

        if run.device.startswith("cuda"):
            import torch

            dist.barrier(device_ids=[torch.device(run.device).index])
        else:
            dist.barrier()


def noise_normalised_mse(pred, target, noisy, floor: float = 0.01):
    """The denoiser's loss: per patch, the squared error divided by the patch's own input noise power,
    ``mean((pred − target)²) / max(mean((noisy − target)²), floor²)``, averaged over the batch (1 = the input
    returned unchanged, 0 = noise-free). The randomised protocols span three decades of noise (under 1 HU to
    hundreds): a plain MSE is dominated by the noisiest patches and teaches the network to leave low-noise
    scans worse than it found them (measured: 10.7 → 16.3 HU on a 46 mAs validation scan), and dividing by
    the noise alone lets the quietest patches (where any change is a large relative error) hold the network
    at the identity. ``floor`` (normalised units; 0.01 = 10 HU, the quietest clinical scans) bounds that
    weight: above it every noise level counts alike."""
    err = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    noise = ((noisy - target) ** 2).mean(dim=(1, 2, 3)).clamp_min(floor ** 2)
    return (err / noise).mean()


def regression_step(run: TrainRun, xn, yn) -> dict[str, float]:
    """One Adam step of a regression model on a normalised batch: :func:`noise_normalised_mse` (``dlr``)
    or L1 loss. Returns the losses (``g`` the training loss, ``l1`` the L1 distance)."""
    import torch.nn.functional as F

    pred = run.net_g(xn, normalized=True)
    if run.cfg.model == "dlr":
        centre = xn[:, xn.shape[1] // 2: xn.shape[1] // 2 + 1]
        loss = noise_normalised_mse(pred, yn, centre)
    else:
        loss = F.l1_loss(pred, yn)
    run.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    run.opt_g.step()
    return {"g": loss.item(), "l1": F.l1_loss(pred.detach(), yn).item()}


def gan_step(run: TrainRun, xn, yn) -> dict[str, float]:
    """One discriminator step then one generator step of a GAN model on a normalised batch (losses in the
    module docstring). Returns the losses (``g`` generator, ``d`` discriminator, ``l1`` the L1 term)."""
    import torch
    import torch.nn.functional as F

    c = run.loss_cfg
    b = xn.shape[0]
    fake = run.net_g(xn, normalized=True)
    cond = run.model.upsampled_input(xn)
    # discriminator step: real and fake pairs in one forward pass (one DDP forward per backward)
    d_all = run.net_d(torch.cat([torch.cat([cond, yn], 1), torch.cat([cond, fake.detach()], 1)], 0))
    d_real = [[f[:b] for f in scale] for scale in d_all]
    d_fake = [[f[b:] for f in scale] for scale in d_all]
    loss_d = 0.5 * (lsgan(d_real, 1.0) + lsgan(d_fake, 0.0))
    run.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    run.opt_d.step()
    # generator step
    d_fake = run.net_d(torch.cat([cond, fake], 1))
    l1 = F.l1_loss(fake, yn)
    loss_g = lsgan(d_fake, 1.0) + c["lambda_l1"] * l1
    if c.get("lambda_fm", 0) > 0:
        with torch.no_grad():
            d_real = run.net_d(torch.cat([cond, yn], 1))
        loss_g = loss_g + c["lambda_fm"] * feature_matching(d_real, d_fake)
    run.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    run.opt_g.step()
    return {"g": loss_g.item(), "d": loss_d.item(), "l1": l1.item()}


def _mean_or_blank(values: list[float]) -> float | str:
    return float(np.mean(values)) if values else ""


def validate_and_checkpoint(run: TrainRun, it: int, elapsed: float, losses: dict[str, list[float]],
                            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Validate at iteration ``it``, append the mean losses since the last row and the scores to ``log.csv``,
    write ``best.pt`` when the score improved and ``last.pt`` always, and log a line. Returns the row."""
    v = validate(run.model, run.val, run.device) if run.val else {}
    row = {"iter": it, "elapsed_s": round(elapsed, 1), "loss_g": _mean_or_blank(losses["g"]),
           "loss_d": _mean_or_blank(losses["d"]), "loss_l1": _mean_or_blank(losses["l1"]), **v, "lr": run.lr}
    with open(run.out / "log.csv", "a", newline="") as f:
        csv.DictWriter(f, LOG_FIELDS).writerow({k: row.get(k, "") for k in LOG_FIELDS})
    score = v.get(run.score_key, -math.inf)
    if score > run.best:
        run.best = score
        save_checkpoint(run, it, elapsed, run.out / "best.pt")
    save_checkpoint(run, it, elapsed, run.checkpoint)
    log(f"iter {it}: " + ", ".join(f"{k} {val_:.4g}" for k, val_ in row.items()
                                   if isinstance(val_, float) and k != "lr"))
    return row


def final_checkpoint(run: TrainRun, it: int, elapsed: float, last: dict[str, Any]) -> dict[str, Any]:
    """At the end of a run stopped between validations (``minutes``) or without a ``best.pt``: validate once
    more and checkpoint (``best.pt`` when better or missing, ``last.pt``). Returns the last row."""
    best_path = run.out / "best.pt"
    if best_path.exists() and last.get("iter") == it:
        return last
    v = validate(run.model, run.val, run.device) if run.val else {}
    score = v.get(run.score_key, -math.inf)
    if score > run.best or not best_path.exists():
        run.best = score
        save_checkpoint(run, it, elapsed, best_path)
    save_checkpoint(run, it, elapsed, run.checkpoint)
    return {"iter": it, "elapsed_s": round(elapsed, 1), **v}


def _empty_losses() -> dict[str, list[float]]:
    return {"g": [], "d": [], "l1": []}


def train(cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``cfg.model`` on the pairs in ``cfg.data``; writes ``config.json``, ``log.csv``, ``last.pt``,
    ``best.pt`` under ``cfg.out``. Returns a summary (iterations, seconds, best validation scores).

    The loop: :func:`setup_run`, then :func:`init_from_weights` (``cfg.init``) or :func:`resume_run`, then per
    iteration :func:`next_batch` and :func:`regression_step` or :func:`gan_step`, with
    :func:`validate_and_checkpoint` every ``val_every`` iterations and at the last, until ``cfg.iters`` or
    ``cfg.minutes``; :func:`final_checkpoint` at the end. Under ``torchrun`` every process runs this; rank 0
    alone validates, writes and calls ``log`` (the others wait at a barrier), and the process group is left at
    the end, also after an error.
    """
    try:
        return _train(cfg, resume, log)
    finally:
        leave_process_group()


def _train(cfg: TrainConfig, resume: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from rich.progress import Progress

    run = setup_run(cfg, resume)
    if cfg.init and not resume:  # rank 0 reads the weights; DistributedDataParallel hands them to the others
        _from_rank0(lambda: init_from_weights(run, cfg.init, log), run.rank, run.world)
    if resume:
        resume_run(run)
    if run.distributed:
        wrap_distributed(run)
    write_run_files(run)
    step = gan_step if run.gan else regression_step

    t0 = time.perf_counter()
    it = run.start_iter
    losses = _empty_losses()
    summary: dict[str, Any] = {}
    run.model.train()
    with make_progress() if run.rank == 0 else Progress(disable=True) as prog:
        task = prog.add_task(f"train {cfg.model}", total=cfg.iters, completed=run.start_iter)
        while it < cfg.iters:
            if _should_stop(run, run.elapsed0 + time.perf_counter() - t0):
                break
            x, y = next_batch(run, it)
            for k, v in global_mean(run, step(run, run.model.normalize(x), run.model.normalize(y))).items():
                losses[k].append(v)
            it += 1
            prog.advance(task)
            if it % cfg.val_every == 0 or it == cfg.iters:
                if run.rank == 0:
                    elapsed = run.elapsed0 + time.perf_counter() - t0
                    summary = validate_and_checkpoint(run, it, elapsed, losses, log)
                losses = _empty_losses()
                _barrier(run)
    elapsed = run.elapsed0 + time.perf_counter() - t0
    if run.rank == 0:
        summary = final_checkpoint(run, it, elapsed, summary)
    _barrier(run)
    return {"iterations": it, "seconds": round(elapsed, 1), "best_" + run.score_key: run.best, "last": summary,
            "world_size": run.world}
