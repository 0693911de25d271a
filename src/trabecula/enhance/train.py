"""Training: one loop for every model, on random paired patches, with periodic validation, a CSV log,
checkpoints and resume; CPU or CUDA; multi-GPU through ``torchrun`` (DistributedDataParallel).

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

Distributed: with ``WORLD_SIZE > 1`` in the environment (``torchrun --nproc_per_node N -m trabecula.cli
train ...``) each process joins the group (``nccl`` on CUDA, else ``gloo``) from the ``RANK`` /
``WORLD_SIZE`` / ``MASTER_ADDR`` / ``LOCAL_RANK`` variables, draws its own interleaved share of the patch
stream, wraps the networks in DistributedDataParallel, and only rank 0 validates, logs and writes
checkpoints.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import InputError, ParameterError


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``config.json`` in the run folder."""

    model: str
    data: str
    out: str
    iters: int = 2000
    minutes: float | None = None
    batch: int = 8
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


def _rank_world() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


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
    from trabecula.enhance.infer import _predict
    from trabecula.quality.similarity import psnr, ssim_hu, ssim_study

    was = model.training
    model.eval()
    s_study, s_hu, ps = [], [], []
    for _, x, y in slices:
        out = _predict(model, x[None], device)[0]
        s_study.append(ssim_study(out, y[0]))
        s_hu.append(ssim_hu(out, y[0]))
        ps.append(psnr(out, y[0]))
    model.train(was)
    return {"val_ssim_study": float(np.mean(s_study)), "val_ssim_hu": float(np.mean(s_hu)), "val_psnr": float(np.mean(ps))}


def train(cfg: TrainConfig, resume: bool = False, log=print) -> dict[str, Any]:
    """Train ``cfg.model`` on the pairs in ``cfg.data``; writes ``config.json``, ``log.csv``, ``last.pt``,
    ``best.pt`` under ``cfg.out``. Returns a summary (iterations, seconds, best validation scores)."""
    import torch
    import torch.nn.functional as F

    from trabecula.enhance.data import PairSet, PatchDataset, validation_slices
    from trabecula.enhance.models import MODELS, Enhancer, build_discriminator, count_parameters
    from trabecula.progress import make_progress

    if cfg.model not in MODELS:
        raise ParameterError("model", f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")
    for name in ("iters", "batch", "patch", "val_every"):
        if getattr(cfg, name) < 1:
            raise ParameterError(name, f"must be ≥ 1, got {getattr(cfg, name)}")
    spec = MODELS[cfg.model]
    rank, world, local_rank = _rank_world()
    distributed = world > 1
    if cfg.device:
        device = cfg.device
    else:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError("device", "CUDA requested but not available")
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            torch.cuda.set_device(local_rank)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    out = Path(cfg.out)
    ckpt_path = out / "last.pt"
    if rank == 0:
        if out.exists() and (out / "config.json").exists() and not resume:
            raise InputError(out, "already holds a run; pass --resume to continue it or choose another --out")
        out.mkdir(parents=True, exist_ok=True)

    pairs = PairSet.open(cfg.data)
    in_key, tgt_key = ("input_low", "input") if cfg.model == "dlr" else ("input", "target")
    ds = PatchDataset(pairs, "train", cfg.patch, spec.scale, cfg.in_channels, cfg.context_stride, in_key, tgt_key,
                      seed=cfg.seed)
    val = validation_slices(pairs, "val", cfg.val_slices, cfg.in_channels, cfg.context_stride, in_key, tgt_key) if rank == 0 else []

    model = Enhancer(cfg.model, cfg.in_channels, cfg.hu_center, cfg.hu_scale, cfg.config).to(device)
    disc = build_discriminator(cfg.model, cfg.in_channels, **cfg.config)
    if disc is not None:
        disc = disc.to(device)
    gan = disc is not None
    lr = cfg.lr or (2e-4 if gan else 1e-3)
    betas = (0.5, 0.999) if gan else (0.9, 0.999)
    opt_g = torch.optim.Adam(model.net.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=betas) if gan else None
    c = {**spec.defaults, **cfg.config}

    start_iter, elapsed0, best = 0, 0.0, -math.inf
    if cfg.init and not resume:
        from trabecula.enhance.infer import load_model

        init = load_model(cfg.init, device="cpu")
        if init.model.hparams() != model.hparams():
            raise ParameterError("init", f"{cfg.init} is a {init.model.hparams()} network; this run builds "
                                         f"{model.hparams()} (same model, channels and config needed)")
        model.net.load_state_dict(init.model.net.state_dict())
        log(f"fine-tuning from {init.source} (sha256 {init.sha256[:12]}…)")
    if resume:
        if not ckpt_path.is_file():
            raise InputError(ckpt_path, "no checkpoint to resume from")
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.net.load_state_dict(ck["G"])
        opt_g.load_state_dict(ck["opt_g"])
        if gan:
            disc.load_state_dict(ck["D"])
            opt_d.load_state_dict(ck["opt_d"])
        start_iter, elapsed0, best = int(ck["iter"]), float(ck.get("elapsed_s", 0.0)), float(ck.get("best", -math.inf))
    net_g = model
    net_d = disc
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [local_rank] if device.startswith("cuda") else None
        net_g = DDP(model, device_ids=ids)
        net_d = DDP(disc, device_ids=ids) if gan else None

    if rank == 0:
        (out / "config.json").write_text(json.dumps({**asdict(cfg), "hparams": model.hparams(),
                                                      "parameters": count_parameters(model.net),
                                                      "world_size": world, "device": device,
                                                      "data_manifest": str(Path(cfg.data).resolve() / "manifest.json"),
                                                      "split_mode": pairs.split_mode}, indent=1))
    log_path = out / "log.csv"
    fields = ["iter", "elapsed_s", "loss_g", "loss_d", "loss_l1", "val_ssim_study", "val_ssim_hu", "val_psnr", "lr"]
    if rank == 0 and not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(fields)

    def save(it: int, elapsed: float, path: Path) -> None:
        state = {"iter": it, "elapsed_s": elapsed, "best": best, "hparams": model.hparams(),
                 "G": model.net.state_dict(), "opt_g": opt_g.state_dict(),
                 "input_spacing": pairs.manifest["input_spacing"], "context_stride": cfg.context_stride}
        if gan:
            state["D"] = disc.state_dict()
            state["opt_d"] = opt_d.state_dict()
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    t0 = time.perf_counter()
    it = start_iter
    run_l = {"g": [], "d": [], "l1": []}
    higher_better = "val_psnr" if cfg.model == "dlr" else "val_ssim_study"
    summary: dict[str, Any] = {}
    model.train()
    with make_progress() as prog:
        task = prog.add_task(f"train {cfg.model}", total=cfg.iters, completed=start_iter)
        while it < cfg.iters:
            elapsed = elapsed0 + time.perf_counter() - t0
            if cfg.minutes is not None and elapsed > 60.0 * cfg.minutes:
                break
            base = it * cfg.batch * world + rank
            items = [ds[base + j * world] for j in range(cfg.batch)]
            x = torch.from_numpy(np.stack([a for a, _ in items])).to(device)
            y = torch.from_numpy(np.stack([b for _, b in items])).to(device)
            xn, yn = model.normalize(x), model.normalize(y)
            if not gan:
                pred = net_g(xn, normalized=True)
                loss = F.mse_loss(pred, yn) if cfg.model == "dlr" else F.l1_loss(pred, yn)
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                opt_g.step()
                run_l["g"].append(loss.item())
                run_l["l1"].append(F.l1_loss(pred.detach(), yn).item())
            else:
                b = xn.shape[0]
                fake = net_g(xn, normalized=True)
                cond = model.upsampled_input(xn)
                # discriminator step: real and fake pairs in one forward pass (one DDP forward per backward)
                d_all = net_d(torch.cat([torch.cat([cond, yn], 1), torch.cat([cond, fake.detach()], 1)], 0))
                d_real = [[f[:b] for f in scale] for scale in d_all]
                d_fake = [[f[b:] for f in scale] for scale in d_all]
                loss_d = 0.5 * (lsgan(d_real, 1.0) + lsgan(d_fake, 0.0))
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                # generator step
                d_fake = net_d(torch.cat([cond, fake], 1))
                l1 = F.l1_loss(fake, yn)
                loss_g = lsgan(d_fake, 1.0) + c["lambda_l1"] * l1
                if c.get("lambda_fm", 0) > 0:
                    with torch.no_grad():
                        d_real = net_d(torch.cat([cond, yn], 1))
                    loss_g = loss_g + c["lambda_fm"] * feature_matching(d_real, d_fake)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                run_l["g"].append(loss_g.item())
                run_l["d"].append(loss_d.item())
                run_l["l1"].append(l1.item())
            it += 1
            prog.advance(task)
            if rank == 0 and (it % cfg.val_every == 0 or it == cfg.iters):
                elapsed = elapsed0 + time.perf_counter() - t0
                v = validate(model, val, device) if val else {}
                row = {"iter": it, "elapsed_s": round(elapsed, 1),
                       "loss_g": float(np.mean(run_l["g"])) if run_l["g"] else "",
                       "loss_d": float(np.mean(run_l["d"])) if run_l["d"] else "",
                       "loss_l1": float(np.mean(run_l["l1"])) if run_l["l1"] else "", **v, "lr": lr}
                run_l = {"g": [], "d": [], "l1": []}
                with open(log_path, "a", newline="") as f:
                    csv.DictWriter(f, fields).writerow({k: row.get(k, "") for k in fields})
                score = v.get(higher_better, -math.inf)
                if score > best:
                    best = score
                    save(it, elapsed, out / "best.pt")
                save(it, elapsed, ckpt_path)
                log(f"iter {it}: " + ", ".join(f"{k} {val_:.4g}" for k, val_ in row.items()
                                               if isinstance(val_, float) and k != "lr"))
                summary = row
    elapsed = elapsed0 + time.perf_counter() - t0
    if rank == 0:
        if not (out / "best.pt").exists() or summary.get("iter") != it:
            v = validate(model, val, device) if val else {}
            score = v.get(higher_better, -math.inf)
            if score > best or not (out / "best.pt").exists():
                best = score
                save(it, elapsed, out / "best.pt")
            save(it, elapsed, ckpt_path)
            summary = {"iter": it, "elapsed_s": round(elapsed, 1), **v}
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return {"iterations": it, "seconds": round(elapsed, 1), "best_" + higher_better: best, "last": summary}
