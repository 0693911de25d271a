"""The training loop's pieces: ``--set`` overrides, and a resumed run that continues exactly where it stopped."""

import pytest
import torch

from trabecula.enhance.train import TrainConfig, parse_overrides, train
from trabecula.errors import ParameterError


def test_overrides_are_json_values_or_strings():
    assert parse_overrides(["width=48", "flag=true", "widths=[16, 8]", "name=abc", " k =1.5"]) == {
        "width": 48, "flag": True, "widths": [16, 8], "name": "abc", "k": 1.5}
    assert parse_overrides(None) == {} and parse_overrides(["eq=a=b"]) == {"eq": "a=b"}
    with pytest.raises(ParameterError, match="KEY=VALUE"):
        parse_overrides(["width"])


@pytest.mark.parametrize("model, config", [("srdlr", {"width": 8, "blocks": 1}),
                                           ("pix2pix", {"ngf": 8, "depth": 2, "ndf": 8})])
def test_resumed_training_is_bit_identical_to_an_uninterrupted_run(tiny_pairs, tmp_path, model, config):
    """The patch stream is drawn from (seed, i) and the checkpoint holds the networks and optimisers, so
    2 + 2 iterations with a resume give the weights of 4 in one go, to the bit (regression and GAN steps)."""

    def cfg(out, iters):
        return TrainConfig(model=model, data=str(tiny_pairs), out=str(out), iters=iters, batch=2, patch=12,
                           val_every=2, threads=1, config=config)

    train(cfg(tmp_path / "once", 4), log=lambda s: None)
    train(cfg(tmp_path / "twice", 2), log=lambda s: None)
    res = train(cfg(tmp_path / "twice", 4), resume=True, log=lambda s: None)
    assert res["iterations"] == 4
    a = torch.load(tmp_path / "once" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "twice" / "last.pt", weights_only=True)
    for net in ("G", "D") if model == "pix2pix" else ("G",):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])
    assert a["best"] == b["best"]


def test_the_denoiser_loss_weighs_every_noise_level_alike():
    import torch

    from trabecula.enhance.train import noise_normalised_mse

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 1, 16, 16, generator=g)
    sd = torch.tensor([0.02, 0.1, 0.3, 1.0]).view(4, 1, 1, 1)  # 20 HU to 1000 HU of noise
    noisy = clean + sd * torch.randn(4, 1, 16, 16, generator=g)
    assert noise_normalised_mse(noisy, clean, noisy).item() == pytest.approx(1.0)  # the input returned: 1
    assert noise_normalised_mse(clean, clean, noisy).item() == 0.0
    # halving every patch's noise scores 0.25 whatever its level; a plain MSE would see only the noisiest
    half = clean + 0.5 * (noisy - clean)
    assert noise_normalised_mse(half, clean, noisy).item() == pytest.approx(0.25, rel=1e-5)
    # below the floor (10 HU) a patch weighs as a 10 HU one: returning 1 HU of noise costs 0.01, not 1
    quiet = clean + 0.001 * torch.randn(4, 1, 16, 16, generator=g)
    assert noise_normalised_mse(quiet, clean, quiet).item() == pytest.approx(0.01, rel=0.2)
