"""``torchrun --nproc-per-node 2 -m trabecula train``: two processes on the same global batch and seed train
the same networks as one process (the loss curve within floating-point noise), and a batch that two
processes cannot share is refused in one line."""

import csv
import os
import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from trabecula.enhance.models import build_discriminator, build_network

pytestmark = pytest.mark.slow

#: a small pix2pix: batch norm in the generator (made global across the processes), the GAN step (two networks
#: under DDP, the discriminator with instance norm); the plain regression step has fewer moving parts
MODEL = ["--model", "pix2pix", "--set", "ngf=8", "--set", "depth=2", "--set", "ndf=8"]
ITERS = 4


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                                              "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")}
    return {**env, "TRABECULA_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}


def _train(pairs, out, nproc: int, batch: int = 4, env: dict[str, str] | None = None):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
                if nproc > 1 else [sys.executable])
    cmd = [*launcher, "-m", "trabecula", "train", *MODEL, "--data", str(pairs), "--out", str(out), "--iters",
           str(ITERS), "--batch", str(batch), "--patch", "12", "--val-every", "1", "--threads", "1", "--seed", "5"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env or _env(), cwd=out.parent)


def _losses(out) -> dict[str, list[float]]:
    with open(out / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iter"]) for r in rows] == list(range(1, ITERS + 1))  # one row per step (--val-every 1)
    return {k: [float(r[k]) for r in rows] for k in ("loss_g", "loss_d", "loss_l1") if rows[0][k] != ""}


def _normalised_biases(net: nn.Module) -> set[str]:
    """Biases of convolutions followed directly by a batch or instance norm, and those norms' running means:
    the norm removes the bias, so its exact gradient is 0 and Adam turns the floating-point noise there into
    steps of up to ±lr on either run (different noise, different steps, no effect on the network's output
    in training; the running mean follows the bias)."""
    names = set()
    for prefix, m in net.named_modules():
        if isinstance(m, nn.Sequential):
            kids = list(m.named_children())
            for (a_name, a), (b_name, b) in zip(kids, kids[1:], strict=False):
                if isinstance(a, nn.modules.conv._ConvNd) and isinstance(b, nn.modules.batchnorm._NormBase):
                    names.add(f"{prefix}.{a_name}.bias".lstrip("."))
                    if b.track_running_stats:
                        names.add(f"{prefix}.{b_name}.running_mean".lstrip("."))
    return names


def test_two_processes_train_like_one_on_the_same_global_batch(tiny_pairs, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = _train(tiny_pairs, one, 1)
    assert r1.returncode == 0, r1.stderr
    r2 = _train(tiny_pairs, two, 2)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "on 2 processes" in r2.stdout and r2.stdout.count("trained ") == 1  # rank 0 alone prints
    assert "warning" not in (r1.stderr + r2.stdout + r2.stderr).lower()
    a, b = _losses(one), _losses(two)
    assert a.keys() == b.keys() == {"loss_g", "loss_d", "loss_l1"}
    for k in a:
        rel = [abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a[k], b[k], strict=True)]
        assert max(rel) < 1e-4, (k, a[k], b[k])
    # not an untrained constant: the loss moves over the steps far more than the tolerance
    assert max(a["loss_g"]) - min(a["loss_g"]) > 1e-2 * abs(a["loss_g"][0])

    ck1 = torch.load(one / "last.pt", weights_only=True)
    ck2 = torch.load(two / "last.pt", weights_only=True)
    assert ck1["iter"] == ck2["iter"] == ITERS
    config = ck1["hparams"]["config"]
    nets = {"G": build_network("pix2pix", 1, **config), "D": build_discriminator("pix2pix", 1, **config)}
    lr = 2e-4  # pix2pix's Adam: a step moves each weight by about lr at most
    compared = 0
    for key, net in nets.items():
        skip = _normalised_biases(net)
        assert ck1[key].keys() == ck2[key].keys() and skip <= ck1[key].keys()
        for name, w1 in ck1[key].items():
            if not w1.is_floating_point():
                assert torch.equal(w1, ck2[key][name])
                continue
            diff = w1 - ck2[key][name]
            # no weight further apart than the Adam steps floating-point noise can drive (both runs, each step)
            assert float(diff.abs().max()) < 4 * ITERS * lr, (key, name)
            if name not in skip:  # and each tensor equal to floating-point noise (measured: 2e-6 at most)
                assert float(diff.norm()) < 1e-4 * float(w1.norm()), (key, name)
                compared += 1
    assert compared >= 6


def test_a_batch_two_processes_cannot_share_is_refused_in_one_line(tiny_pairs, tmp_path, monkeypatch, capsys):
    from trabecula.cli import main

    # rank 0 of two (the check comes before the process group is joined): exit 2, one line
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    args = ["train", *MODEL, "--data", str(tiny_pairs), "--out", str(tmp_path / "rank0"), "--batch", "3", "--patch", "12"]
    assert main(args) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert cap.out == "" and len(lines) == 1, cap.err
    assert lines[0].startswith("error: --batch:") and "divisible by the 2 processes" in lines[0]
    assert not (tmp_path / "rank0").exists()
    # under torchrun the line is said once (rank 0; rank 1 leaves quietly), torchrun reports exit code 2
    r = _train(tiny_pairs, tmp_path / "run", 2, batch=3)
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert text.count("error: --batch:") == 1, text
    assert re.search(r"exitcode\s*:\s*2\b", text) and not (tmp_path / "run").exists()
