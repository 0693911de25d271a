"""Tiled inference equals whole-slice inference; spacing, NaN, units and corrupt weights give clear errors."""

import json

import numpy as np
import pytest
import torch

from tests.enhance.test_models import SMALL
from trabecula import Volume
from trabecula.enhance.infer import (
    LoadedModel,
    enhance,
    enhance_array,
    load_model,
    receptive_radius,
    sha256_file,
)
from trabecula.enhance.models import Enhancer
from trabecula.errors import InputError, ParameterError


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dlr", "srdlr", "pix2pixhd", "pix2pix", "crn"])
def test_tiled_equals_untiled(name):
    torch.manual_seed(1)
    m = Enhancer(name, 3, config=SMALL[name]).eval()
    r = receptive_radius(m)
    tile = 2 * r + 24
    rng = np.random.default_rng(0)
    vol = (rng.normal(300, 400, (2, 61, tile + 37))).astype(np.float32)
    whole = enhance_array(m, vol, tile=4096, context_stride=2)
    tiled = enhance_array(m, vol, tile=tile, overlap=None, batch=3, context_stride=2)
    assert tiled.shape == whole.shape
    # in the network's normalised units (HU / 1000) the tiled result equals the whole-slice one within 1e-4
    assert np.max(np.abs(tiled - whole)) / m.hu_scale < 1e-4
    # and it really was tiled: a tile smaller than the slice
    assert tile < vol.shape[2]


def _bundle(tmp_path, spacing=(0.1, 0.2, 0.2)):
    torch.manual_seed(0)
    m = Enhancer("dlr", 1, config=SMALL["dlr"]).eval()
    d = tmp_path / "w"
    d.mkdir()
    torch.save(m.net.state_dict(), d / "model.pt")
    man = {"model": "dlr", "sha256": sha256_file(d / "model.pt"), "hparams": m.hparams(),
           "input": {"spacing_mm": list(spacing), "channels": 1, "context_stride": 1}}
    (d / "manifest.json").write_text(json.dumps(man))
    return d


def test_weights_verified_before_loading(tmp_path):
    d = _bundle(tmp_path)
    lm = load_model(d)
    assert isinstance(lm, LoadedModel) and lm.sha256 == sha256_file(d / "model.pt")
    man = json.loads((d / "manifest.json").read_text())
    man["sha256"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match="SHA-256"):
        load_model(d)


def test_spacing_checked_nan_and_units_refused(tmp_path):
    lm = load_model(_bundle(tmp_path))
    rng = np.random.default_rng(0)
    good = Volume(rng.normal(0, 100, (3, 20, 20)).astype(np.float32), (0.5, 0.2, 0.2), units="HU")
    out = enhance(good, lm)
    assert out.shape == good.shape and out.units == "HU" and out.spacing == good.spacing
    assert out.provenance.extra["enhance_weights_sha256"] == lm.sha256
    wrong = good.replace(spacing=(0.5, 0.5, 0.5))
    with pytest.raises(ParameterError, match="trained on"):
        enhance(wrong, lm)
    with pytest.warns(UserWarning, match="resampling"):
        res = enhance(wrong, lm, resample=True)
    assert res.spacing[1] == pytest.approx(0.2)
    bad = good.numpy().copy()
    bad[1, 3, 4] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        enhance(good.with_data(bad), lm)
    with pytest.raises(ParameterError, match="HU"):
        enhance(good.replace(units="grey"), lm)
    with pytest.raises(ParameterError, match="no shipped model"):
        load_model("no-such-model")
