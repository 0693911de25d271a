"""The input's protocol as a model sees it, and the training-range gate of ``enhance``."""

import numpy as np
import pytest
import torch

from trabecula.enhance.catalog import shipped_model_lines
from trabecula.enhance.infer import LoadedModel, enhance, on_model_grid
from trabecula.enhance.models import Enhancer
from trabecula.enhance.protocol import (
    describe_input,
    kernel_class,
    modelled_mtf50,
    noise_yardstick,
    out_of_range,
    ranges_line,
    training_ranges,
)
from trabecula.errors import ParameterError
from trabecula.volume import Provenance, Volume

RANGES = {"pixel_mm": [0.15, 0.5], "slice_thickness_mm": [0.5, 2.0], "kernels": ["hann", "standard", "shepp-logan", "bone"],
          "mtf50_lp_mm": [0.3, 1.6], "noise_sd_hu": [5.0, 400.0]}


@pytest.mark.parametrize("name, cls", [("Br38f\\3", "standard"), ("B70f", "bone"), ("B30f", "hann"), ("Hr64", "shepp-logan"),
                                       ("BONE", "bone"), ("STANDARD", "standard"), ("SOFT", "hann"), ("shepp-logan", "shepp-logan"),
                                       ("FC30", None), ("", None), (None, None)])
def test_kernel_names_fall_into_their_sharpness_class(name, cls):
    assert kernel_class(name) == cls


def test_modelled_mtf50_rises_with_a_sharper_kernel_and_a_finer_detector():
    soft = modelled_mtf50("clinical-mdct", 0.4, 1.0, "hann")
    sharp = modelled_mtf50("clinical-mdct", 0.4, 1.0, "bone")
    uhr = modelled_mtf50("clinical-uhr", 0.4, 1.0, "bone")
    assert soft < sharp < uhr


def test_the_noise_yardstick_reads_white_noise_and_scales_with_it():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 20.0, (5, 128, 128)).astype(np.float32)
    assert noise_yardstick(a) == pytest.approx(20.0, rel=0.1)
    assert noise_yardstick(3 * a) == pytest.approx(3 * noise_yardstick(a), rel=1e-3)


def _volume(spacing, kernel="B70f", thickness=None, noise=30.0, shape=(12, 64, 64)):
    rng = np.random.default_rng(1)
    extra = {"kernel": kernel}
    if thickness:
        extra["slice_thickness_mm"] = thickness
    arr = (300 + rng.normal(0, noise, shape)).astype(np.float32)
    return Volume(arr, spacing, (0, 0, 0), "HU", Provenance(source="test", extra=extra))


def test_a_volume_states_its_protocol_and_the_clinical_series_lies_outside_the_ranges():
    p = describe_input(_volume((2.0, 0.977, 0.977), "Br38f\\3", 3.0))
    assert p.pixel_mm == pytest.approx(0.977) and p.slice_thickness_mm == 3.0 and p.kernel_class == "standard"
    assert p.mtf50_lp_mm > 0 and p.noise_sd_hu > 0
    bad = out_of_range(p, RANGES)
    assert any(b.startswith("pixel") for b in bad) and any(b.startswith("slice") for b in bad)
    assert not any(b.startswith("noise") for b in bad)  # read on a grid the input does not fit: not judged
    assert "0.977" in p.line() and "Br38f" in p.line()


def test_inside_the_ranges_nothing_is_named_and_an_unknown_kernel_is_not_held_against_the_input():
    p = describe_input(_volume((0.5, 0.3, 0.3), None, 1.0))
    assert p.kernel_class is None and out_of_range(p, RANGES) == []
    loud = describe_input(_volume((0.5, 0.3, 0.3), "B70f", 1.0, noise=4000.0))
    assert any(b.startswith("noise") for b in out_of_range(loud, RANGES))


def test_training_ranges_come_from_the_pairs_protocol_ranges_and_the_measured_noise():
    man = {"protocol_ranges": {"pixel_mm": [0.15, 0.5], "slice_thickness_mm": [0.5, 2.0]},
           "specimens": [{"split": "train", "protocol": {"detector": "clinical-mdct", "pixel_mm": 0.3, "slice_thickness_mm": 1.0,
                                                         "kernel": "bone"}},
                         {"split": "test", "protocol": {"detector": "clinical-uhr", "pixel_mm": 0.15, "slice_thickness_mm": 0.5,
                                                        "kernel": "bone"}}]}
    r = training_ranges(man, [12.0, 40.0, float("nan")])
    assert r["pixel_mm"] == [0.15, 0.5] and r["noise_sd_hu"] == [12.0, 40.0]
    m50 = modelled_mtf50("clinical-mdct", 0.3, 1.0, "bone")
    assert r["mtf50_lp_mm"] == [round(m50, 3), round(m50, 3)]  # the training split only
    assert "pixel 0.15–0.5 mm" in ranges_line(r)


def _model(ranges):
    torch.manual_seed(0)
    net = Enhancer("dlr", 1, config={"width": 4, "depth": 3}).eval()
    man = {"input": {"spacing_mm": [0.1, 0.2, 0.2]}, "training_ranges": ranges}
    return LoadedModel(net, man, "0" * 64, "test.pt")


def test_enhance_refuses_outside_the_ranges_and_warns_when_allowed():
    lm = _model(RANGES)
    clinical = _volume((2.0, 0.977, 0.977), "Br38f\\3", 3.0, shape=(3, 16, 16))
    with pytest.raises(ParameterError, match="outside .* training ranges: pixel"):
        enhance(clinical, lm, device="cpu")
    with pytest.warns(UserWarning, match="outside"):
        out = enhance(clinical, lm, device="cpu", allow_out_of_range=True)
    assert out.spacing[1] == pytest.approx(0.2)  # on the canonical grid
    rec = out.provenance.extra
    assert rec["enhance_input_protocol"]["pixel_mm"] == pytest.approx(0.977) and rec["enhance_out_of_range"]


def test_inside_the_ranges_the_input_goes_to_the_canonical_grid_without_a_flag():
    lm = _model(RANGES)
    vol = _volume((0.5, 0.3, 0.3), "B70f", 1.0, shape=(4, 20, 20))
    grid, proto, bad = on_model_grid(vol, lm)
    assert bad == [] and grid.spacing == pytest.approx((0.5, 0.2, 0.2))  # a 2-D model keeps the slices
    assert proto.pixel_mm == pytest.approx(0.3)


def test_every_shipped_model_is_listed_with_what_it_was_trained_on():
    from trabecula.enhance.infer import shipped_models

    lines = shipped_model_lines()
    assert len(lines) == len(shipped_models()) and all("trained on" in ln for ln in lines)
