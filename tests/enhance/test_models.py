"""Networks: shapes and dtypes, HU in/HU out, seeded determinism, and a few steps lower the loss."""

import numpy as np
import pytest
import torch

from trabecula.enhance.models import MODELS, Enhancer, build_discriminator
from trabecula.errors import ParameterError

SMALL = {"pix2pixhd": {"ngf_global": 8, "n_blocks_global": 1, "n_blocks_local": 1, "ndf": 8},
         "pix2pix": {"ngf": 8, "ndf": 8}, "crn": {"widths": [16, 16, 8, 8, 8]}, "dlr": {"features": [4, 4, 8, 8, 8, 4]},
         "srdlr": {"features": [4, 4, 8, 8, 8, 4]}}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("k", [1, 3])
def test_output_shape_dtype_and_scale(name, k):
    torch.manual_seed(0)
    m = Enhancer(name, k, config=SMALL[name]).eval()
    x = torch.randn(2, k, 32, 48) * 300 + 300
    with torch.no_grad():
        y = m(x)
    s = MODELS[name].scale
    assert y.shape == (2, 1, s * 32, s * 48) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    d = build_discriminator(name, k, **SMALL[name])
    if MODELS[name].kind == "gan":
        outs = d(torch.randn(2, k + 1, 64, 64))
        assert len(outs) == MODELS[name].defaults["num_d"] and all(o[-1].shape[1] == 1 for o in outs)
    else:
        assert d is None


@pytest.mark.parametrize("config", [SMALL["dlr"], {"width": 8, "depth": 4}])
def test_dlr_is_residual_identity_at_zero_body(config):
    m = Enhancer("dlr", 1, config=config).eval()
    last = [mod for mod in m.net.body.modules() if isinstance(mod, torch.nn.Conv2d)][-1]
    for p in last.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(1, 1, 16, 16) * 200
    with torch.no_grad():
        assert torch.allclose(m(x), x, atol=1e-3)


def test_the_default_denoiser_is_a_monai_unet_of_a_million_parameters_or_more():
    from monai.networks.nets import BasicUNet

    from trabecula.enhance.models import count_parameters

    m = Enhancer("dlr", 3)
    assert isinstance(m.net.body, BasicUNet) and count_parameters(m.net) >= 1_000_000


def test_weights_written_before_arch_keep_their_network():
    from trabecula.enhance.models import DnCNN, EDSRLite

    assert isinstance(Enhancer("dlr", 1, config={"width": 8, "depth": 4}).net, DnCNN)
    old_sr = Enhancer("srdlr", 1, config={"width": 8, "blocks": 2})
    assert isinstance(old_sr.net, EDSRLite) and old_sr.upsample == 1
    assert Enhancer("srdlr", 1, config=SMALL["srdlr"]).upsample == 2


def test_same_seed_same_network_and_output():
    outs = []
    for _ in range(2):
        torch.manual_seed(42)
        m = Enhancer("srdlr", 3, config=SMALL["srdlr"]).eval()
        with torch.no_grad():
            outs.append(m(torch.full((1, 3, 16, 16), 250.0)))
    assert torch.equal(outs[0], outs[1])


def test_even_slice_count_refused():
    with pytest.raises(ParameterError, match="odd"):
        Enhancer("dlr", 2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dlr", "pix2pixhd"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    m = Enhancer(name, 1, config=SMALL[name]).train()
    s = MODELS[name].scale
    clean = rng.choice([20.0, 1400.0], size=(4, 1, 16, 16)).astype(np.float32)
    x = torch.from_numpy(clean + rng.normal(0, 80, clean.shape).astype(np.float32))
    y = torch.from_numpy(np.repeat(np.repeat(clean, s, 2), s, 3))
    opt = torch.optim.Adam(m.net.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        loss = torch.nn.functional.l1_loss(m(x, normalized=False) / 1000, y / 1000)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3])
