"""Rendering speed and memory: trabecula's numba ray marcher against VTK's GPU volume mapper (PyVista, off-screen).

Subject: a realistic bone specimen (`trabecula.phantom.specimen.bone_specimen`): the DIDSR L1 micro-CT region
1_06219 (binary, 0.05 mm) mirrored to fill a phalanx-like cortical shell in soft tissue, HU int16 with blur
and noise. Cases:

* 512³ → 1024² with ambient occlusion and soft shadows, clipped through the middle (virtual sectioning),
  and unclipped;
* 256³ → 800², the same settings;
* ``--big``: a full extremity-CT-sized volume (640 × 1500 × 1500 int16, 2.9 GB: the 256³ specimen tiled)
  rendered at 1024² — peak resident memory against the 24 GB target.

Each measurement runs in a fresh process (``_common.measure``): set-up (transfer-function classification,
bricks, ambient occlusion) and frames are timed separately; frames turn the camera 10° each (the light moves
with the camera, so every frame recomputes the shadow volume). CPU seconds (all threads) are reported beside
wall seconds because the machine is shared: CPU s / cores is what an idle machine would need.
VTK (PyVista ``Plotter(off_screen=True)``, smart/GPU mapper on Mesa llvmpipe here) gets the same transfer
function, opacity unit distance, sample distance, shading and clip plane; it has no ambient occlusion or
shadows. A side-by-side PNG of both pictures is written next to the JSON.

    .venv/bin/python bench/bench_render.py            # 512³ and 256³ (about 10 minutes on a busy 2-core machine)
    .venv/bin/python bench/bench_render.py --big      # also the 2.9 GB volume (needs ~7 GB free memory)
    .venv/bin/python bench/bench_render.py --quick    # 128³ / 256² smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, measure, versions, write_results  # noqa: E402

DIDSR = "Segmentation-grayscale-1_06219.nrrd"
SPACING = 0.05
AZ0, EL = 35.0, 25.0
_STATE = {"az": AZ0}


def _data_dir() -> Path:
    repo = Path(__file__).resolve().parents[1]
    for c in (os.environ.get("TRABECULA_DATA"), repo.parent / "shared" / "data"):
        if c and Path(c).is_dir():
            return Path(c)
    raise SystemExit("shared data not found (set TRABECULA_DATA)")


def make_specimen(n: int, path: Path) -> Path:
    from trabecula.phantom.specimen import bone_specimen, didsr_region

    trab = didsr_region(_data_dir() / "didsr_l1_vertebra" / DIDSR, SPACING)
    vol = bone_specimen((n, n, n), SPACING, trabecular=trab, seed=0)
    np.save(path, vol.numpy())
    return path


def _volume(path: str):
    from trabecula import Volume

    return Volume(np.load(path), SPACING, (0.0, 0.0, 0.0), "HU")


def _clip(vol, clipped: bool):
    from trabecula.render import ClipPlane

    return ClipPlane.through(vol.center_mm, (0.0, 0.0, 1.0)) if clipped else None


def _camera(az: float):
    from trabecula.render import Camera

    return Camera(azimuth_deg=az, elevation_deg=EL)


# --------------------------------------------------------------------------- trabecula (child processes)
def tr_setup_args(path: str, clipped: bool):
    tr_first_call(16)  # load the compiled kernels first: not part of a set-up
    return (_volume(path), clipped)


def tr_setup(vol, clipped: bool) -> float:
    """Timed: the Renderer's set-up. Returns the CPU seconds it used."""
    from trabecula.render import Renderer

    c = time.process_time()
    Renderer(vol, clip=_clip(vol, clipped))
    return time.process_time() - c


def tr_frame_args(path: str, clipped: bool, size: int):
    from trabecula.render import Renderer

    vol = _volume(path)
    r = Renderer(vol, clip=_clip(vol, clipped))
    r.render(_camera(AZ0 - 10), size)  # warm (compiled, cached)
    return (r, size)


def tr_frame(r, size: int) -> float:
    """Timed: one frame, the camera turned 10° further each call. Returns CPU seconds."""
    c = time.process_time()
    r.render(_camera(_STATE["az"]), size)
    _STATE["az"] += 10.0
    return time.process_time() - c


def tr_first_call(n: int) -> float:
    """Timed: the first render in a fresh process (numba compile, or loading the compiled cache)."""
    from trabecula import Volume
    from trabecula.render import render_volume

    a = np.full((n, n, n), -1000, np.int16)
    a[n // 4: 3 * n // 4, n // 4: 3 * n // 4, n // 4: 3 * n // 4] = 1500
    render_volume(Volume(a, 0.1, units="HU"), size=64)
    return 0.0


def tr_image(path: str, clipped: bool, size: int, out: str) -> None:
    from trabecula.render import Renderer, save_png

    vol = _volume(path)
    img = Renderer(vol, clip=_clip(vol, clipped)).render(_camera(AZ0), size)
    save_png(img, out, force=True)


def tr_big_args(n_side: int, nz: int, tile_path: str):
    """A 2.9 GB int16 volume: the 256³ specimen tiled (set-up, not timed)."""
    from trabecula import Volume

    tile = np.load(tile_path)
    a = np.empty((nz, n_side, n_side), np.int16)
    t = tile.shape[0]
    for z in range(0, nz, t):
        for y in range(0, n_side, t):
            for x in range(0, n_side, t):
                blk = tile[: nz - z, : n_side - y, : n_side - x]
                a[z: z + blk.shape[0], y: y + blk.shape[1], x: x + blk.shape[2]] = blk
    return (Volume(a, 0.08, (0.0, 0.0, 0.0), "HU"),)


def tr_big(vol) -> dict:
    from trabecula.render import Renderer

    t0 = time.perf_counter()
    r = Renderer(vol, clip=_clip(vol, True))
    t1 = time.perf_counter()
    img = r.render(_camera(AZ0), 1024)
    t2 = time.perf_counter()
    return {"setup_s": t1 - t0, "frame_s": t2 - t1, "image": list(img.shape)}


# --------------------------------------------------------------------------------- VTK (child processes)
def _vtk_plotter(vol, clipped: bool, size: int, matched_step: bool = True):
    import pyvista as pv
    import vtk

    from trabecula.render import BACKGROUND, bone_transfer_function
    from trabecula.render.raycast import Lighting

    tf = bone_transfer_function("HU")
    light = Lighting()
    nz, ny, nx = vol.shape
    grid = pv.ImageData(dimensions=(nx, ny, nz), spacing=vol.spacing[::-1], origin=vol.origin[::-1])
    grid.point_data["hu"] = vol.numpy().ravel(order="C")
    pl = pv.Plotter(off_screen=True, window_size=(size, size))
    pl.set_background([c / 255 for c in BACKGROUND])
    actor = pl.add_volume(grid, scalars="hu", show_scalar_bar=False)
    ctf, otf = vtk.vtkColorTransferFunction(), vtk.vtkPiecewiseFunction()
    for v, rgb, a in tf.points:
        ctf.AddRGBPoint(v, *rgb)
        otf.AddPoint(v, a)
    prop = actor.GetProperty()
    prop.SetColor(ctf)
    prop.SetScalarOpacity(otf)
    prop.SetScalarOpacityUnitDistance(min(vol.spacing))
    prop.SetInterpolationTypeToLinear()
    prop.ShadeOn()
    prop.SetAmbient(light.ka)
    prop.SetDiffuse(light.kd)
    prop.SetSpecular(light.ks)
    prop.SetSpecularPower(light.shininess)
    mapper = actor.GetMapper()
    if matched_step:  # the same 0.5-voxel step as trabecula; else VTK's own (auto-adjusted) sampling
        mapper.SetAutoAdjustSampleDistances(False)
        mapper.SetSampleDistance(0.5 * min(vol.spacing))
    if clipped:
        plane = vtk.vtkPlane()
        c = vol.center_mm
        plane.SetOrigin(c[2], c[1], c[0])
        plane.SetNormal(-1.0, 0.0, 0.0)  # keep x <= centre, as ClipPlane((0, 0, 1)) does
        mapper.AddClippingPlane(plane)
    return pl


def _vtk_set_camera(pl, az: float, size: int) -> None:
    """Point VTK's camera like trabecula's: same centre, direction, up and parallel scale."""
    geo = _VTK_CACHE["renderer"].view(_camera(az), size)
    cam = pl.camera
    cam.SetFocalPoint(*geo.center[::-1])
    cam.SetPosition(*geo.eye[::-1])
    cam.SetViewUp(*geo.up[::-1])
    cam.SetParallelProjection(True)
    cam.SetParallelScale(geo.pixel_mm * size / 2.0)
    pl.renderer.ResetCameraClippingRange()


_VTK_CACHE: dict = {}


def _geometry(vol, clipped: bool) -> None:
    """trabecula's camera framing, for VTK's camera (built outside the timed calls)."""
    from trabecula.render import Renderer

    _VTK_CACHE["renderer"] = Renderer(vol, clip=_clip(vol, clipped), ambient_occlusion=False, shadows=False)


def vtk_first_args(path: str, clipped: bool, size: int):
    vol = _volume(path)
    _geometry(vol, clipped)
    return (vol, clipped, size)


def vtk_first(vol, clipped: bool, size: int) -> float:
    """Timed: building the VTK scene and its first picture (texture upload: VTK's set-up)."""

    c = time.process_time()
    pl = _vtk_plotter(vol, clipped, size)
    _vtk_set_camera(pl, AZ0, size)
    pl.render()
    pl.close()
    return time.process_time() - c


def vtk_frame_args(path: str, clipped: bool, size: int):

    vol = _volume(path)
    _geometry(vol, clipped)
    pl = _vtk_plotter(vol, clipped, size)
    _vtk_set_camera(pl, AZ0 - 10, size)
    pl.render()
    return (pl, vol, clipped, size)


def vtk_default_frame_args(path: str, clipped: bool, size: int):
    vol = _volume(path)
    _geometry(vol, clipped)
    pl = _vtk_plotter(vol, clipped, size, matched_step=False)
    _vtk_set_camera(pl, AZ0 - 10, size)
    pl.render()
    return (pl, vol, clipped, size)


def vtk_frame(pl, vol, clipped: bool, size: int) -> float:
    c = time.process_time()
    _vtk_set_camera(pl, _STATE["az"], size)
    pl.render()
    pl.screenshot(return_img=True)
    _STATE["az"] += 10.0
    return time.process_time() - c


def vtk_image(path: str, clipped: bool, size: int, out: str) -> None:
    from PIL import Image


    vol = _volume(path)
    _geometry(vol, clipped)
    pl = _vtk_plotter(vol, clipped, size)
    _vtk_set_camera(pl, AZ0, size)
    img = pl.screenshot(return_img=True)
    Image.fromarray(img).save(out)


# ----------------------------------------------------------------------------------------------- main
def _fmt(m: dict) -> str:
    if "error" in m:
        return f"error: {m['error']}"
    cpu = m.get("result")
    return f"{m['median_s']:.2f} s wall" + (f", {cpu:.2f} CPU s" if isinstance(cpu, float) and cpu > 0 else "")


def side_by_side(a_path: Path, b_path: Path, out: Path, labels=("trabecula (AO + shadows)", "VTK / PyVista")) -> Path:
    from PIL import Image, ImageDraw

    from trabecula.render.annotate import _font

    a, b = Image.open(a_path).convert("RGB"), Image.open(b_path).convert("RGB")
    w, h = a.width + b.width, max(a.height, b.height)
    canvas = Image.new("RGB", (w, h), (0, 0, 0))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    d = ImageDraw.Draw(canvas)
    f = _font(max(14, h // 40))
    d.text((10, 10), labels[0], fill=(255, 255, 255), font=f)
    d.text((a.width + 10, 10), labels[1], fill=(255, 255, 255), font=f)
    canvas.save(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="128³ at 256² only (smoke run)")
    ap.add_argument("--big", action="store_true", help="also render the 640×1500×1500 int16 volume (peak memory)")
    ap.add_argument("--repeats", type=int, default=3, help="frames timed per case (median reported)")
    ap.add_argument("--no-vtk", action="store_true", help="skip the VTK/PyVista peer")
    ap.add_argument("--big-only", action="store_true", help="only the first-call and the big-volume measurements")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_render_"))
    cases = [(128, 256, True)] if args.quick else [(512, 1024, True), (512, 1024, False), (256, 800, True)]
    if args.big_only:
        cases, args.big = [], True
    sides = sorted({n for n, _, _ in cases} | ({256} if args.big else set()))
    sides = sides or [256]
    t0 = time.perf_counter()
    vols = {}
    for n in sides:
        vols[n] = make_specimen(n, tmp / f"specimen{n}.npy")
        print(f"specimen {n}³ built ({time.perf_counter() - t0:.0f} s)")
    results: dict = {"cases": [], "first_call": {}}

    # first call: cold numba compile (empty cache dir) and cache load
    old = os.environ.get("NUMBA_CACHE_DIR")
    os.environ["NUMBA_CACHE_DIR"] = str(tmp / "numba_cache")
    results["first_call"]["cold_compile"] = measure("bench_render:tr_first_call", 32, repeats=1)
    if old is None:
        del os.environ["NUMBA_CACHE_DIR"]
    else:
        os.environ["NUMBA_CACHE_DIR"] = old
    measure("bench_render:tr_first_call", 32, repeats=1)  # make sure the project cache is filled
    results["first_call"]["cached"] = measure("bench_render:tr_first_call", 32, repeats=1)
    print("first call: cold compile", _fmt(results["first_call"]["cold_compile"]),
          "| from cache", _fmt(results["first_call"]["cached"]))

    for n, size, clipped in cases:
        path = str(vols[n])
        row = {"volume": f"{n}³ int16", "image": f"{size}²", "clipped": clipped}
        row["trabecula_setup"] = measure("bench_render:tr_setup", path, clipped, setup="bench_render:tr_setup_args",
                                         repeats=2)
        row["trabecula_frame"] = measure("bench_render:tr_frame", path, clipped, size, setup="bench_render:tr_frame_args",
                                         repeats=args.repeats)
        if not args.no_vtk:
            row["vtk_first_render"] = measure("bench_render:vtk_first", path, clipped, size,
                                              setup="bench_render:vtk_first_args", repeats=1)
            row["vtk_frame"] = measure("bench_render:vtk_frame", path, clipped, size, setup="bench_render:vtk_frame_args",
                                       repeats=args.repeats)
            if (n, size, clipped) == cases[0]:  # VTK's own sampling step (auto-adjusted), for reference
                row["vtk_frame_default_step"] = measure("bench_render:vtk_frame", path, clipped, size,
                                                        setup="bench_render:vtk_default_frame_args", repeats=1)
            tf, vf = row["trabecula_frame"], row["vtk_frame"]
            if "error" not in tf and "error" not in vf:
                row["frame_ratio_trabecula_over_vtk"] = tf["median_s"] / vf["median_s"]
        if "vtk_frame_default_step" in row:
            print(f"  VTK with its own (auto-adjusted) sampling step: frame {_fmt(row['vtk_frame_default_step'])}")
        row["load_average"] = os.getloadavg()
        results["cases"].append(row)
        print(f"{row['volume']} → {row['image']} clipped={clipped}: set-up {_fmt(row['trabecula_setup'])}; "
              f"frame {_fmt(row['trabecula_frame'])}"
              + ("" if args.no_vtk else f"; VTK first {_fmt(row['vtk_first_render'])}, frame {_fmt(row['vtk_frame'])}, "
                 f"ratio {row.get('frame_ratio_trabecula_over_vtk', float('nan')):.2f}")
              + f"  (load {row['load_average'][0]:.1f})")

    # the pictures, side by side
    RESULTS.mkdir(parents=True, exist_ok=True)
    n, size, clipped = cases[0] if cases else (256, 256, True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    a = RESULTS / f"render-trabecula-{stamp}.png"
    measure("bench_render:tr_image", str(vols[n]), clipped, size, str(a), repeats=1)
    if not args.no_vtk:
        b = RESULTS / f"render-vtk-{stamp}.png"
        measure("bench_render:vtk_image", str(vols[n]), clipped, size, str(b), repeats=1)
        if a.exists() and b.exists():
            results["side_by_side_png"] = str(side_by_side(a, b, RESULTS / f"render-side-by-side-{stamp}.png"))
            print("side by side:", results["side_by_side_png"])

    if args.big:
        m = measure("bench_render:tr_big", 1500, 640, str(vols[256]), setup="bench_render:tr_big_args", repeats=1)
        results["big"] = {"volume": "640×1500×1500 int16 (2.9 GB), clipped, 1024², AO + shadows", **m}
        if "error" not in m:
            print(f"big volume: peak RSS {m['peak_bytes'] / 2**30:.1f} GiB (volume loaded: {m['base_bytes'] / 2**30:.1f} GiB); "
                  f"set-up {m['result']['setup_s']:.1f} s, frame {m['result']['frame_s']:.1f} s")
        else:
            print("big volume:", m["error"])

    payload = {"versions": versions("numpy", "numba", "vtk", "pyvista"), "machine_detail": machine(), **results}
    print("results:", write_results("bench_render", payload))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
