"""Streamed (slab-by-slab, dask) projection and FDK equal the in-memory simulation and reconstruction."""

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.scanner.config import load_scanner
from trabecula.scanner.geometry import ScanGeometry, full_angles
from trabecula.scanner.project import block_fractions, forward_project
from trabecula.scanner.recon import reconstruct
from trabecula.scanner.simulate import simulate_projections
from trabecula.scanner.stream import rows_in_range, slab_v_range, stream_projections, stream_reconstruct
from trabecula.volume import Provenance, Volume

MATERIALS = {"0": "air", "1": "bone", "2": "marrow"}


def _scanner(thickness_mm=0.3, sid_mm=60.0):
    """A strongly coned scanner (SDD 2 × SID, 24 views) with 0.5 mm elements: seconds per scan."""
    return load_scanner("uhr-extremity").replace(
        geometry={"sid_mm": sid_mm, "sdd_mm": 2 * sid_mm, "views": 24, "pixel_u_mm": 0.5, "pixel_v_mm": 0.5,
                  "detector_cols": 96, "detector_rows": 96},
        reconstruction={"voxel_mm": 0.3, "slice_mm": 0.3, "slice_thickness_mm": thickness_mm, "matrix": 64,
                        "fov_mm": 19.2, "axial_fov_mm": 19.2},
        patient={"body": "NONE", "medium": "air"})


def _phantom(seed=0, n=(40, 48, 48), sp=0.25):
    rng = np.random.default_rng(seed)
    _, y, x = np.mgrid[:n[0], :n[1], :n[2]]
    r = np.hypot(y - (n[1] - 1) / 2, x - (n[2] - 1) / 2)
    lab = np.zeros(n, np.uint8)
    lab[r < 20] = 2
    lab[(r < 20) & (rng.random(n) < 0.3)] = 1
    return Volume(lab, (sp, sp, sp), (0.0, 0.0, 0.0), "label", Provenance(source="test", extra={"materials": MATERIALS}))


@pytest.fixture(scope="module")
def scanned():
    vol, sc = _phantom(), _scanner()
    return vol, sc, simulate_projections(vol, sc, seed=3, progress=False)


def _rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def test_streamed_projection_equals_in_memory(scanned):
    vol, sc, ref = scanned
    stats = {}
    got = stream_projections(vol, sc, seed=3, slab_mm=1.0, progress=False, stats=stats)
    rows = stats["rows"]
    assert len(rows) >= 4  # several slabs ...
    assert any(b0 < a1 for (_, a1), (b0, _) in zip(rows, rows[1:], strict=False))  # ... that share detector rows
    assert all(r1 - r0 < stats["sub_rows"] for r0, r1 in rows)  # each projects into a band, not every row
    assert got.data.shape == ref.data.shape
    assert _rel(got.data, ref.data) < 1e-5  # same noise draws: same seed, same view chunks
    assert np.array_equal(got.flats, ref.flats) and np.array_equal(got.darks, ref.darks)
    assert got.geometry["scan_geometry"] == ref.geometry["scan_geometry"]
    other = stream_projections(vol, sc, seed=4, slab_mm=1.0, progress=False)
    assert _rel(other.data, ref.data) > 1e-3  # the seed matters


def test_streamed_projection_of_a_lazy_zarr_phantom_with_a_medium(tmp_path):
    from trabecula.io import read_volume, write_volume

    vol, sc = _phantom(1, n=(24, 40, 40)), _scanner()
    write_volume(vol, tmp_path / "ph.zarr")
    lazy = read_volume(tmp_path / "ph.zarr")
    assert lazy.is_lazy
    ref = simulate_projections(vol, sc, seed=0, noise=False, medium="water", progress=False)
    got = stream_projections(lazy, sc, seed=0, noise=False, medium="water", slab_mm=0.75, progress=False)
    assert _rel(got.data, ref.data) < 1e-5
    assert got.geometry["materials"] == ref.geometry["materials"]


def test_slab_rows_cover_every_ray_through_the_slab():
    """Project one slab high above the centre plane into every detector row: the rows that receive anything
    lie inside the computed band, and a band from the isocentre magnification alone would drop some."""
    sid, sdd, sp = 50.0, 100.0, 0.25
    n = 64
    lab = np.zeros((8, n, n), np.uint8)
    _, y, x = np.mgrid[:8, :n, :n]
    lab[np.hypot(y - 31.5, x - 31.5) < 30] = 1
    fr = block_fractions(lab, [1], (1, 1, 1))
    z_slab = 5.0  # the slab's lower padding plane, mm above the centre plane
    origin = (z_slab, -(n + 1) / 2 * sp, -(n + 1) / 2 * sp)
    geom = ScanGeometry(sid, sdd, full_angles(8), 0.25, 0.25, 240, 200, -0.25 * 119.5, -0.25 * 99.5)
    p = forward_project(fr, (sp, sp, sp), origin, geom, 1)
    hit = np.nonzero(p[..., 0].max(axis=(0, 2)) > 0)[0]
    vs = geom.v_coords()
    radius = float(np.hypot(*(2 * [(n + 1) / 2 * sp])))
    za, zb = z_slab, z_slab + 9 * sp
    r0, r1 = rows_in_range(vs, *slab_v_range(za, zb, radius, sid, sdd))
    assert hit.size and r0 <= hit[0] and hit[-1] < r1
    n0, n1 = rows_in_range(vs, za * sdd / sid, zb * sdd / sid)  # the magnification at the isocentre only
    assert hit[0] < n0 or hit[-1] >= n1  # a narrower band would lose rays: the check above can fail
    # and the band stays a band: not much wider than the rows that are hit (the box corners, 8 views)
    assert r1 - r0 <= 1.5 * (hit[-1] - hit[0] + 1) < geom.n_rows / 2


@pytest.mark.parametrize("thickness", [0.3, 0.9])  # 0.9 mm: a z filter that needs a halo across slabs
def test_streamed_fdk_equals_fdk_numba(scanned, thickness):
    vol, _, proj = scanned
    sc = _scanner(thickness)
    ref = reconstruct(proj, sc, backend="numba")
    stats = {}
    got = stream_reconstruct(proj, None, sc, slab_mm=0.9, progress=False, stats=stats)
    assert stats["slabs"] >= 4
    assert got.shape == ref.shape and got.origin == ref.origin and got.spacing == ref.spacing
    assert _rel(got.data, ref.data) < 1e-5


def test_streamed_fdk_writes_zarr_slab_by_slab(scanned, tmp_path):
    from trabecula.io import read_volume, write_projections

    _, sc, proj = scanned
    ref = reconstruct(proj, backend="numba")
    write_projections(proj, tmp_path / "p.h5")
    got = stream_reconstruct(tmp_path / "p.h5", tmp_path / "r.zarr", slab_mm=0.9, progress=False)
    assert got.is_lazy
    back = read_volume(tmp_path / "r.zarr")
    assert back.units == "HU" and back.spacing == ref.spacing and back.origin == pytest.approx(ref.origin)
    assert _rel(back.numpy(), ref.data) < 1e-5
    with pytest.raises(ParameterError, match="exists"):
        stream_reconstruct(tmp_path / "p.h5", tmp_path / "r.zarr", progress=False)


def test_bad_stream_arguments(scanned):
    vol, sc, _ = scanned
    with pytest.raises(ParameterError, match="slab_mm"):
        stream_projections(vol, sc, slab_mm=-1.0, progress=False)
    with pytest.raises(ParameterError, match="radius"):  # bone outside the radius that was promised
        stream_projections(vol, sc, radius_mm=2.0, progress=False)
    with pytest.raises(ParameterError, match="workers"):
        stream_projections(vol, sc, workers=0, progress=False)


@pytest.mark.slow
def test_distributed_local_cluster_equals_the_local_run(scanned, tmp_path):
    from distributed import Client, LocalCluster

    vol, sc, proj = scanned
    local = stream_projections(vol, sc, seed=3, slab_mm=1.0, progress=False)
    rec_local = stream_reconstruct(proj, None, slab_mm=0.9, progress=False)
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        dist = stream_projections(vol, sc, seed=3, slab_mm=1.0, progress=False, scheduler=client)
        rec = stream_reconstruct(proj, tmp_path / "r.zarr", slab_mm=0.9, progress=False, scheduler=client)
        rec_data = rec.numpy()
    assert _rel(dist.data, local.data) < 1e-6
    assert _rel(rec_data, rec_local.data) < 1e-6


def test_cli_scan_and_recon_stream(tmp_path, capsys):
    from trabecula.cli import main
    from trabecula.io import read_volume, write_volume

    vol = _phantom(2, n=(16, 40, 40))
    write_volume(vol, tmp_path / "ph.zarr")
    (tmp_path / "s.toml").write_text(_scanner(sid_mm=100.0).to_toml())  # the dose needs the 16 cm CTDI phantom inside
    code = main(["scan", str(tmp_path / "ph.zarr"), "--scanner", str(tmp_path / "s.toml"), "--stream",
                 "--slab-mm", "1", "--save-projections", str(tmp_path / "p.h5"), "-o", str(tmp_path / "r.zarr")])
    assert code in (0, None)
    scan = read_volume(tmp_path / "r.zarr")
    assert scan.units == "HU" and "dose" in scan.provenance.extra
    code = main(["recon", str(tmp_path / "p.h5"), "--stream", "--slab-mm", "0.6", "-o", str(tmp_path / "r2.zarr"),
                 "--png", str(tmp_path / "r2.png")])
    assert code in (0, None) and (tmp_path / "r2.png").stat().st_size > 0
    assert _rel(read_volume(tmp_path / "r2.zarr").numpy(), scan.numpy()) < 1e-5
    capsys.readouterr()
    assert main(["recon", str(tmp_path / "p.h5"), "--stream", "-o", str(tmp_path / "r3.nrrd")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]
    assert main(["recon", str(tmp_path / "p.h5"), "--slab-mm", "2", "-o", str(tmp_path / "r4.nrrd")]) == 2


def _parallel_beam(n_rows=10, n_views=60, n_cols=48, seed=0):
    """Parallel-beam counts of an off-centre disk per row (radius growing with the row), degrees in theta."""
    from trabecula.io import ProjectionData

    rng = np.random.default_rng(seed)
    th = np.linspace(0, np.pi, n_views, endpoint=False)
    c = np.arange(n_cols) - (n_cols - 1) / 2 - 1.5  # the rotation axis 1.5 columns right of the middle
    radius = np.linspace(8, 16, n_rows)
    t = c[None, :] - 5.0 * np.cos(th)[:, None]
    chord = 2 * np.sqrt(np.clip(radius[:, None, None] ** 2 - t[None] ** 2, 0, None))  # (rows, views, cols)
    data = 1000.0 * np.exp(-0.02 * np.transpose(chord, (1, 0, 2))) + 10.0
    data = rng.poisson(data).astype(np.float32)
    data[:, :, 20] *= 1.05  # a bad column: a ring
    flats = np.full((4, n_rows, n_cols), 1010.0, np.float32)
    darks = np.full((2, n_rows, n_cols), 10.0, np.float32)
    return ProjectionData(data, th, flats, darks, None, {}, "synthetic-parallel")


def test_streamed_parallel_beam_equals_reconstruct_parallel(tmp_path):
    from trabecula.io import read_volume, write_projections
    from trabecula.scanner.stream import stream_reconstruct_parallel
    from trabecula.scanner.tomo import reconstruct_parallel

    proj = _parallel_beam()
    ref = reconstruct_parallel(proj, center="auto", rings=True)
    got = stream_reconstruct_parallel(proj, None, center="auto", rings=True, rows_per_task=3, progress=False)
    assert got.provenance.extra["center_px"] == ref.provenance.extra["center_px"]  # the same search, summed by blocks
    assert got.shape == ref.shape and got.origin == ref.origin
    assert _rel(got.data, ref.data) < 1e-5
    write_projections(proj, tmp_path / "p.h5")
    z = stream_reconstruct_parallel(tmp_path / "p.h5", tmp_path / "r.zarr", center=25.0, rows_per_task=4,
                                    progress=False)
    fixed = reconstruct_parallel(proj, center=25.0, rings=False)
    assert _rel(read_volume(tmp_path / "r.zarr").numpy(), fixed.data) < 1e-5 and z.is_lazy


def test_full_detector_rows_hold_the_object_window(scanned):
    """Every detector row simulated: the rows of the object's window read what the windowed scan reads."""
    vol, sc, _ = scanned
    win = stream_projections(vol, sc, noise=False, slab_mm=2.0, progress=False)
    full = stream_projections(vol, sc, noise=False, slab_mm=2.0, full_detector=True, progress=False)
    g_w, g_f = win.geometry["scan_geometry"], full.geometry["scan_geometry"]
    assert g_f["n_rows"] == sc.geometry.detector_rows > g_w["n_rows"]
    r0 = int(round((g_w["v0"] - g_f["v0"]) / g_f["dv"]))
    assert 0 < r0 and r0 + g_w["n_rows"] < g_f["n_rows"]
    assert _rel(full.data[:, r0:r0 + g_w["n_rows"]], win.data) < 1e-5
    assert np.allclose(full.data[:, :r0 - 2], full.flats.mean(axis=0)[:r0 - 2])  # rows above see air only


def test_streamed_projection_with_a_body_equals_in_memory():
    vol, sc = _phantom(3, n=(16, 40, 40)), _scanner()
    ref = simulate_projections(vol, sc, seed=5, body="16x12", medium="soft_tissue", progress=False)
    got = stream_projections(vol, sc, seed=5, body="16x12", medium="soft_tissue", slab_mm=1.0, progress=False)
    assert got.data.shape == ref.data.shape and got.geometry["body"] == ref.geometry["body"]
    assert _rel(got.data, ref.data) < 1e-5
