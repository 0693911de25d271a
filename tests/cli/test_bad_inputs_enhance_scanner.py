"""Bad inputs and options of the scanner and enhancement verbs (issue 20): each is refused before any work with
exit code 2 and exactly one stderr line naming the file or the option — no internal error, no hang, no
allocation past the memory budget, no bad value accepted."""

import numpy as np
import pytest
import torch

from trabecula.cli import main
from trabecula.enhance.models import Enhancer
from trabecula.io import write_volume
from trabecula.volume import Volume

TINY = {"arch": "dncnn", "width": 4, "depth": 3}


def _hu(tmp_path, name="ct.nrrd"):
    rng = np.random.default_rng(0)
    vol = Volume((rng.normal(0, 50, (8, 32, 32))).astype(np.float32), (0.1, 0.2, 0.2), units="HU")
    return write_volume(vol, tmp_path / name)


def _checkpoint(path, model="dlr", config=None, in_channels=1):
    net = Enhancer(model, in_channels, config=config or TINY)
    opt = torch.optim.Adam(net.net.parameters())
    torch.save({"iter": 2, "elapsed_s": 1.0, "best": 0.5, "hparams": net.hparams(), "G": net.net.state_dict(),
                "opt_g": opt.state_dict(), "input_spacing": [0.1, 0.2, 0.2], "context_stride": 1}, path)
    return path


def _train(tmp_path, *extra, model="dlr"):
    return ["train", "--model", model, "--data", tmp_path / "pairs", "--out", tmp_path / "run", "--iters", "2",
            "--threads", "1", *extra]


def toml_not_utf8(tmp_path, mp):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "caf\xe9"\n[exposure]\nmas = 50.0\n')
    return ["scan", tmp_path / "ph.nrrd", "--scanner", bad, "-o", tmp_path / "o.nrrd"], "bad.toml"


def toml_nested(tmp_path, mp):
    bad = tmp_path / "deep.toml"
    bad.write_text("name = " + "[" * 5000 + "]" * 5000 + "\n")
    return ["scan", tmp_path / "ph.nrrd", "--scanner", bad, "-o", tmp_path / "o.nrrd"], "deep.toml"


def enhance_cuda_absent(tmp_path, mp):
    mp.setattr(torch.cuda, "is_available", lambda: False)
    return ["enhance", _hu(tmp_path), "-o", tmp_path / "o.nrrd", "--device", "cuda"], "--device"


def train_cuda_absent(tmp_path, mp):
    mp.setattr(torch.cuda, "is_available", lambda: False)
    return _train(tmp_path, "--device", "cuda"), "--device"


def enhance_device_foo(tmp_path, mp):
    return ["enhance", _hu(tmp_path), "-o", tmp_path / "o.nrrd", "--device", "foo"], "--device"


def train_device_foo(tmp_path, mp):
    return _train(tmp_path, "--device", "foo"), "--device"


def enhance_threads_negative(tmp_path, mp):
    return ["enhance", _hu(tmp_path), "-o", tmp_path / "o.nrrd", "--threads", "-1"], "--threads"


def train_threads_negative(tmp_path, mp):
    return [*_train(tmp_path)[:-2], "--threads", "-1"], "--threads"


def weights_manifest_not_json(tmp_path, mp):
    w = tmp_path / "weights"
    w.mkdir()
    _checkpoint(w / "model.pt")
    (w / "manifest.json").write_text('{"sha256": "abc", "hparams": ')
    return ["enhance", _hu(tmp_path), "-o", tmp_path / "o.nrrd", "--model", w], "manifest.json"


def pairs_manifest_not_json(tmp_path, mp):
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "manifest.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return _train(tmp_path), "manifest.json"


def resume_truncated(tmp_path, mp):
    (tmp_path / "run").mkdir()
    raw = _checkpoint(tmp_path / "full.pt").read_bytes()
    (tmp_path / "run" / "last.pt").write_bytes(raw[: len(raw) // 2])
    return _train(tmp_path, "--resume"), "last.pt"


def resume_other_model(tmp_path, mp):
    (tmp_path / "run").mkdir()
    _checkpoint(tmp_path / "run" / "last.pt", "srdlr", {"width": 4, "blocks": 1})
    return _train(tmp_path, "--resume", "--set", "arch=dncnn", "--set", "width=4", "--set", "depth=3"), "--model"


def set_negative_width(tmp_path, mp):
    return _train(tmp_path, "--set", "arch=dncnn", "--set", "width=-4"), "--set"


def set_width_not_of_the_network(tmp_path, mp):
    return _train(tmp_path, "--set", "width=-4"), "--set"


def set_network_past_budget(tmp_path, mp):
    return ["--max-memory", "1G", *_train(tmp_path, "--set", "features=[4096,4096,4096,4096,4096,4096]")], "--set"


def checkpoint_130gb_network(tmp_path, mp):
    net = Enhancer("dlr", 1, config=TINY)
    hp = {**net.hparams(), "config": {"arch": "dncnn", "width": 20000, "depth": 10}}  # 2.9e10 parameters, 115 GB
    torch.save({"iter": 1, "hparams": hp, "G": {}, "input_spacing": [0.1, 0.2, 0.2]}, tmp_path / "big.pt")
    return ["--max-memory", "64G", "enhance", _hu(tmp_path), "-o", tmp_path / "o.nrrd", "--model",
            tmp_path / "big.pt"], "big.pt"


def resample_input_spacing_50(tmp_path, mp):
    ck = _checkpoint(tmp_path / "tiny.pt")
    return ["--max-memory", "1G", "enhance", _hu(tmp_path), "-o", tmp_path / "o.nrrd", "--model", ck, "--resample",
            "--input-spacing", "50"], "--resample"


def enhance_batch_zero(tmp_path, mp):
    return ["enhance", _hu(tmp_path), "-o", tmp_path / "o.nrrd", "--batch", "0"], "--batch"


def enhance_batch_past_budget(tmp_path, mp):
    ck = _checkpoint(tmp_path / "tiny.pt")
    return ["--max-memory", "64M", "enhance", _hu(tmp_path), "-o", tmp_path / "o.nrrd", "--model", ck,
            "--batch", "1000000"], "--batch"


def recon_pixel_size_zero(tmp_path, mp):
    return ["recon", tmp_path / "p.h5", "-o", tmp_path / "o.nrrd", "--pixel-size", "0"], "--pixel-size"


def pairs_size_past_budget(tmp_path, mp):
    return ["--max-memory", "1G", "pairs", tmp_path / "pairs", "--didsr", "none", "--shrew", "none",
            "--size", "4000"], "--size"


CASES = [toml_not_utf8, toml_nested, enhance_cuda_absent, train_cuda_absent, enhance_device_foo, train_device_foo,
         enhance_threads_negative, train_threads_negative, weights_manifest_not_json, pairs_manifest_not_json,
         resume_truncated, resume_other_model, set_negative_width, set_width_not_of_the_network,
         set_network_past_budget, checkpoint_130gb_network, resample_input_spacing_50, enhance_batch_zero,
         enhance_batch_past_budget, recon_pixel_size_zero, pairs_size_past_budget]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_is_one_line_exit_2(case, tmp_path, monkeypatch, capsys):
    argv, names = case(tmp_path, monkeypatch)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and names in lines[0], err
