"""The render and mpr verbs, through trabecula.cli.main, as a user runs them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trabecula import Volume
from trabecula.cli import main
from trabecula.io import write_volume


def run(capsys, *args):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def bone_nrrd(tmp_path):
    a = np.full((24, 28, 32), -1000, np.int16)
    a[4:20, 6:22, 6:26] = 1400
    a[8:16, 10:18, 10:22] = 40  # a marrow cavity, seen through the cut
    return write_volume(Volume(a, (0.2, 0.1, 0.1), (-1.0, 2.0, 3.0), "HU"), tmp_path / "bone.nrrd")


def test_render_writes_a_png_of_the_requested_size(capsys, tmp_path, bone_nrrd):
    out = tmp_path / "r.png"
    code, stdout, err = run(capsys, "render", str(bone_nrrd), "-o", str(out), "--size", "60x80", "--camera", "anterior",
                            "--clip-plane", "0,1,0,0.2", "--no-shadows")
    assert code == 0, err
    img = np.asarray(Image.open(out))
    assert img.shape == (60, 80, 3)
    assert "wrote" in stdout
    # the cut face (grey, the 1400 HU wall in the bone window) is in the picture
    grey = (np.ptp(img.astype(int), axis=-1) <= 1) & (img.mean(-1) > 150)
    assert grey.sum() > 30
    # no overwrite without --force: one line, exit 2
    code, _, err = run(capsys, "render", str(bone_nrrd), "-o", str(out), "--size", "60")
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "render", str(bone_nrrd), "-o", str(out), "--size", "60", "--force", "--no-ao",
                       "--camera", "lateral", "--zoom", "1.5")
    assert code == 0, err


@pytest.mark.parametrize("args, name", [
    (["--clip-plane", "0,0"], "--clip-plane"),
    (["--clip-plane", "0,0,0"], "--clip-plane"),
    (["--clip-box", "1,1,1,0,0,0"], "clip box"),
    (["--size", "big"], "--size"),
    (["--camera", "sideways"], "camera"),
    (["--box-keep", "middle", "--clip-box", "0,0,0,1,1,1"], "--box-keep"),
])
def test_render_bad_options_name_themselves(capsys, tmp_path, bone_nrrd, args, name):
    code, _, err = run(capsys, "render", str(bone_nrrd), "-o", str(tmp_path / "x.png"), *args)
    assert code == 2
    assert name in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_render_needs_an_output(capsys, bone_nrrd):
    code, _, err = run(capsys, "render", str(bone_nrrd))
    assert code == 2 and "--output" in err


def test_render_turntable_gif_and_mp4(capsys, tmp_path, bone_nrrd):
    gif, mp4 = tmp_path / "t.gif", tmp_path / "t.mp4"
    code, _, err = run(capsys, "render", str(bone_nrrd), "--turntable", str(gif), "--frames", "4", "--size", "48",
                       "--no-shadows", "--no-ao")
    assert code == 0, err
    im = Image.open(gif)
    assert im.n_frames == 4 and im.size == (48, 48)
    frames = []
    for k in range(4):
        im.seek(k)
        frames.append(np.asarray(im.convert("RGB")).copy())
    assert not np.array_equal(frames[0], frames[1])  # the camera turned
    code, _, err = run(capsys, "render", str(bone_nrrd), "--turntable", str(mp4), "--frames", "3", "--size", "47x63",
                       "--no-shadows", "--no-ao")
    assert code == 0, err
    import imageio_ffmpeg

    n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert n_frames == 3


def test_render_color_by_a_thickness_map(capsys, tmp_path, bone_nrrd):
    from trabecula.io import read_volume

    vol = read_volume(bone_nrrd)
    m = np.where(vol.numpy() > 500, 0.3, 0.0).astype(np.float32)
    m[:, :, 16:] *= 2.0
    thick = write_volume(vol.with_data(m, units="mm"), tmp_path / "thick.nrrd")
    out = tmp_path / "c.png"
    code, _, err = run(capsys, "render", str(bone_nrrd), "-o", str(out), "--color-by", str(thick), "--size", "96",
                       "--camera", "anterior", "--no-shadows")
    assert code == 0, err
    img = np.asarray(Image.open(out)).astype(int)
    # turbo colours: some bluish (thin) and some reddish (thick) surface
    assert ((img[..., 2] - img[..., 0]) > 40).sum() > 20
    assert ((img[..., 0] - img[..., 2]) > 40).sum() > 20


def test_mpr_verb_side_by_side_with_inset(capsys, tmp_path, bone_nrrd):
    from trabecula.io import read_volume

    coarse = write_volume(read_volume(bone_nrrd).resample(0.4), tmp_path / "coarse.nrrd")
    out = tmp_path / "m.png"
    code, stdout, err = run(capsys, "mpr", str(coarse), str(bone_nrrd), "-o", str(out), "--inset", "1.2,3.4,4.5,1.0",
                            "--titles", "clinical, micro-CT", "--window", "bone", "--dpi", "60")
    assert code == 0, err
    stdout = " ".join(stdout.split())  # rich wraps long lines
    assert "2 volume(s)" in stdout and "radiological" in stdout
    w, h = Image.open(out).size
    assert h > w  # three rows (views) of two columns (volumes)
    out2 = tmp_path / "n.png"
    code, stdout, err = run(capsys, "mpr", str(bone_nrrd), "-o", str(out2), "--neurological", "--window", "400,2000",
                            "--point", "1.2,3.4,4.5", "--views", "axial", "--dpi", "60")
    assert code == 0, err
    assert "neurological" in stdout


@pytest.mark.parametrize("args, name", [
    (["--window", "pastel"], "window"),
    (["--window", "1,2,3"], "--window"),
    (["--point", "0,0,1000"], "point"),
    (["--inset", "1,2,3"], "--inset"),
    (["--titles", "a,b"], "--titles"),
    (["--views", "axial,oblique"], "views"),
])
def test_mpr_bad_options_name_themselves(capsys, tmp_path, bone_nrrd, args, name):
    code, _, err = run(capsys, "mpr", str(bone_nrrd), "-o", str(tmp_path / "x.png"), *args)
    assert code == 2, err
    assert name in err
    assert not (tmp_path / "x.png").exists()
