"""Transfer functions, cameras and clip shapes: the conventions they promise."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import ParameterError
from trabecula.render import (
    CAMERA_PRESETS,
    Camera,
    ClipBox,
    ClipPlane,
    TransferFunction,
    bone_transfer_function,
    camera_preset,
    mpr_figure,
)
from trabecula.render.annotate import length_label, nice_length, scale_bar_geometry
from trabecula.render.camera import view_geometry
from trabecula.render.transfer import MU_WATER_PER_MM


def test_bone_transfer_function_in_hu():
    tf = bone_transfer_function("HU")
    rgba = tf(np.array([-1000.0, -100.0, 50.0, 250.0, 600.0, 1500.0]))
    assert rgba[0, 3] == 0 and rgba[1, 3] == 0          # air, fat: clear
    assert rgba[2, 3] == 0                              # soft tissue hidden by default (extracted specimen)
    assert 0 < rgba[3, 3] < 0.05                        # marrow / partial volume: dim
    assert rgba[3, 0] > rgba[3, 2]                      # … and red-brown
    assert 0.5 < rgba[4, 3] < 1.0                       # trabecular bone: nearly opaque
    assert rgba[5, 3] == 1.0                            # cortex: opaque
    assert rgba[5, 0] > rgba[5, 2] > 0.7                # ivory
    assert bone_transfer_function("HU", soft_tissue=0.005)(50.0)[3] == pytest.approx(0.005)
    assert tf.cut_min == 400.0 and tf.cut_window == (600.0, 2600.0)


def test_bone_transfer_function_other_units():
    hu = bone_transfer_function("HU")
    mu = bone_transfer_function("attenuation_per_mm")
    # the same material gets the same colour whichever units it is expressed in
    for h in (250.0, 600.0, 1500.0):
        np.testing.assert_allclose(mu(MU_WATER_PER_MM * (1 + h / 1000)), hu(h), atol=1e-5)
    binary = bone_transfer_function("binary")
    assert binary(0.0)[3] == 0 and binary(1.0)[3] == 1.0 and binary.cut_min == 0.5
    with pytest.raises(ParameterError, match="values"):
        bone_transfer_function("grey")
    grey = np.random.default_rng(0).normal(100, 20, 10_000)
    g = bone_transfer_function("grey", values=grey)
    assert g.units == "grey" and g.vmin < g.vmax


def test_transfer_function_validation_and_lut():
    tf = TransferFunction(((0.0, (0, 0, 0), 0.0), (10.0, (1, 1, 1), 1.0)), units="grey")
    lut = tf.lut(11)
    assert lut.shape == (11, 4) and lut[5, 3] == pytest.approx(0.5)
    with pytest.raises(ParameterError):
        TransferFunction(((1.0, (0, 0, 0), 0.0), (0.0, (1, 1, 1), 1.0)))
    with pytest.raises(ParameterError):
        TransferFunction(((0.0, (0, 0, 2), 0.0), (1.0, (1, 1, 1), 1.0)))
    with pytest.raises(ParameterError):
        TransferFunction(((0.0, (0, 0, 0), 0.0),))


def test_camera_presets_are_in_patient_terms():
    lo, hi = np.zeros(3), np.ones(3) * 10
    ant = view_geometry(camera_preset("anterior"), lo, hi, (100, 100))
    # (z, y, x): the anterior camera looks towards +y (posterior), up is +z, its right is +x (patient left)
    np.testing.assert_allclose(ant.forward, [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(ant.up, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(ant.right, [0, 0, 1], atol=1e-12)
    lat = view_geometry(camera_preset("lateral"), lo, hi, (100, 100))
    np.testing.assert_allclose(lat.forward, [0, 0, -1], atol=1e-12)  # from the patient's left
    np.testing.assert_allclose(lat.right, [0, 1, 0], atol=1e-12)     # posterior on the right
    sup = view_geometry(camera_preset("superior"), lo, hi, (100, 100))
    np.testing.assert_allclose(sup.forward, [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(sup.up, [0, -1, 0], atol=1e-12)       # anterior at the top
    # zoom 1: the framed box's diagonal spans the shorter side
    assert ant.pixel_mm * 100 == pytest.approx(np.sqrt(300))
    assert set(CAMERA_PRESETS) >= {"anterior", "lateral", "oblique", "superior"}
    assert camera_preset("oblique", zoom=2).zoom == 2
    assert Camera().orbit(90).azimuth_deg == pytest.approx(125)
    with pytest.raises(ParameterError, match="camera"):
        Camera(zoom=0)
    with pytest.raises(ParameterError, match="camera"):
        camera_preset("nadir")


def test_perspective_camera_projects_the_centre_to_the_middle():
    lo, hi = np.zeros(3), np.ones(3) * 10
    geo = view_geometry(Camera(fov_deg=30), lo, hi, (101, 101))
    r, c = geo.project(np.ones(3) * 5)
    assert geo.perspective and r == pytest.approx(50) and c == pytest.approx(50)


def test_clip_plane_and_box_keep_the_documented_side():
    plane = ClipPlane((0, 0, 2), 4.0)  # normalised: keeps x <= 2
    assert plane.normal == (0.0, 0.0, 1.0) and plane.offset_mm == pytest.approx(2.0)
    pts = np.array([[0, 0, 1.0], [0, 0, 3.0]])
    assert plane.keeps(pts).tolist() == [True, False]
    through = ClipPlane.through((1, 2, 3), (0, 1, 0))
    assert through.offset_mm == pytest.approx(2.0)
    box = ClipBox((0, 0, 0), (1, 1, 1))
    crop = ClipBox((0, 0, 0), (1, 1, 1), keep="inside")
    pts = np.array([[0.5, 0.5, 0.5], [2, 2, 2]])
    assert box.keeps(pts).tolist() == [False, True]
    assert crop.keeps(pts).tolist() == [True, False]
    with pytest.raises(ParameterError):
        ClipPlane((0, 0, 0))
    with pytest.raises(ParameterError):
        ClipBox((0, 0, 0), (1, 0, 1))
    with pytest.raises(ParameterError):
        ClipBox((0, 0, 0), (1, 1, 1), keep="both")


def test_scale_bar_lengths_are_nice_numbers():
    assert [nice_length(x) for x in (0.37, 1.0, 3.9, 7.2, 19.0)] == [0.2, 1.0, 2.0, 5.0, 10.0]
    assert [length_label(x) for x in (0.2, 5.0, 20.0)] == ["200 µm", "5 mm", "2 cm"]
    mm, px = scale_bar_geometry(0.05, 1000)
    assert mm == 10.0 and px == 200


def test_mpr_figure_marks_volumes_that_miss_the_point():
    a = Volume(np.zeros((10, 10, 10), np.int16), 1.0, (0.0, 0.0, 0.0), "HU")
    b = Volume(np.zeros((10, 10, 10), np.int16), 1.0, (50.0, 0.0, 0.0), "HU")
    fig = mpr_figure([a, b], point_mm=(5.0, 5.0, 5.0), region_mm=((0, 0, 0), (60, 10, 10)), dpi=40)
    notes = [t.get_text() for ax in fig.axes for t in ax.texts if "outside" in t.get_text()]
    assert len(notes) == 3  # the three panels of the second volume
    with pytest.raises(ParameterError, match="point"):
        mpr_figure([a, b], point_mm=(30.0, 5.0, 5.0))
