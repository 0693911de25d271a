"""Large scans slab by slab: streamed cone-beam projection and FDK on dask.

A full-field ``uhr-extremity`` twin scan (1525 × 1525 × 640 voxels at 0.08 mm) does not fit in memory as one
piece; both halves of the simulation split along z, because in a circular cone-beam scan a slab of the volume
is seen only by a band of detector rows.

**Rows of a slab.** A point at height z and source depth W (distance from the source along the central ray,
SID − r ≤ W ≤ SID + r inside a cylinder of radius r about the axis) projects to v = SDD·z/W. A slab
[z_a, z_b] is therefore seen only by the rows with v between SDD·z_a/W and SDD·z_b/W at the nearest
(W = SID − r) and farthest (W = SID + r) depths — whichever bound is the extreme for the sign of z
(:func:`slab_v_range`).

**Projection** (:func:`stream_projections`). The phantom's labels are read one z slab at a time (a lazily
read ``.zarr`` phantom is never whole in memory), turned into material fractions and projected by the
Joseph projector (:func:`trabecula.scanner.project.forward_project`) into only the sub-ray rows of its band.
Path lengths are additive along a ray (the projector interpolates linearly, and each slab is padded by one
empty plane), so the sum of the slabs' path lengths is the whole phantom's; polychromatic attenuation,
focal-spot and detector blur and the noise are applied once to the sum, view chunk by view chunk in the
order :func:`trabecula.scanner.simulate.simulate_projections` uses — the streamed scan equals the in-memory
one within float tolerance for the same seed. One task is one slab × one block of views; the tasks of a
block run on the active dask scheduler (a :class:`distributed.Client` if one is given or current, else the
in-process ``sync`` scheduler, numba using every core inside each task). Projections larger than a quarter
of the memory budget (:mod:`trabecula.limits`) accumulate in a memory-mapped file.

**FDK** (:func:`stream_reconstruct`). Flat/dark correction, −log, water correction, cosine weighting and the
ramp filter are per detector row (the filter runs along the columns), so they run row block by row block
into a filtered stack (memory-mapped when large). Output z slabs are then back-projected each from only the
rows that see it (the same bound, for the reconstruction grid's radius) with
:func:`trabecula.scanner.recon.fdk_numba`; each slab is one task that writes its part of the output Zarr
(level 0; OME-Zarr where :mod:`trabecula.io.omezarr` exists, else trabecula's plain Zarr layout) as it
completes. The result equals :func:`~trabecula.scanner.recon.fdk_numba` on the whole stack.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import InputError, ParameterError
from trabecula.io import ProjectionData
from trabecula.limits import check_memory, format_bytes, memory_budget_bytes
from trabecula.progress import progress_steps
from trabecula.scanner.body import body_radius_mm
from trabecula.scanner.config import load_scanner
from trabecula.scanner.geometry import ScanGeometry, detector_window, object_radius_and_height
from trabecula.scanner.materials import mu_table
from trabecula.scanner.project import block_fractions, forward_project, subset
from trabecula.scanner.recon import (
    Grid,
    fdk_filter,
    fdk_numba,
    line_integrals,
    recon_grid,
    recon_setup,
    slice_thickness_filter,
    water_correct,
    world_origin,
)
from trabecula.scanner.sampling import (
    apply_medium,
    check_phantom_grid,
    patient_record,
    projection_factor,
    resolve_patient,
)
from trabecula.scanner.spectrum import detector_spectrum, effective_mu, to_hu, water_reference_mu
from trabecula.volume import Provenance, Volume

#: Default slab height (mm) of the streamed projection and reconstruction.
DEFAULT_SLAB_MM = 4.0


# ------------------------------------------------------------------------------------------ geometry
def slab_v_range(z_a: float, z_b: float, radius: float, sid: float, sdd: float) -> tuple[float, float]:
    """Detector v range (mm) that rays through the slab z_a ≤ z ≤ z_b (isocentre frame, mm) can reach, for
    content within ``radius`` (mm) of the rotation axis: v = SDD·z/W with SID − r ≤ W ≤ SID + r."""
    if radius >= sid:
        raise ParameterError("radius", f"object radius {radius:.1f} mm reaches the source (SID {sid} mm)")
    near, far = sid - radius, sid + radius
    v_lo = sdd * z_a / (far if z_a >= 0 else near)
    v_hi = sdd * z_b / (near if z_b >= 0 else far)
    return v_lo, v_hi


def rows_in_range(vs: np.ndarray, v_lo: float, v_hi: float) -> tuple[int, int]:
    """[start, stop) of the equally spaced, increasing detector positions ``vs`` within [v_lo, v_hi]."""
    tol = 1e-9 * max(1.0, abs(v_lo), abs(v_hi))
    start = int(np.searchsorted(vs, v_lo - tol, side="left"))
    stop = int(np.searchsorted(vs, v_hi + tol, side="right"))
    return start, max(start, stop)


def _xy_radius(lo_y: float, hi_y: float, lo_x: float, hi_x: float) -> float:
    return float(max(math.hypot(x, y) for x in (lo_x, hi_x) for y in (lo_y, hi_y)))


def _plan_slabs(n: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + step)) for a in range(0, n, step)]


# ------------------------------------------------------------------------------------------ scheduler
@contextlib.contextmanager
def dask_scheduler(scheduler: Any = None, workers: int | None = None):
    """The scheduler the streamed tasks run on, as a context: a :class:`distributed.Client` (given, or opened
    by :func:`trabecula.cluster.executor` for an address ``"tcp://host:port"`` or a local cluster of
    ``workers`` single-threaded processes), the current client if there is one, else dask's in-process
    ``"sync"`` scheduler. Yields ``(scheduler, n_workers)``; a cluster or client opened here is closed on exit.
    (dask's "threads" scheduler is not offered: numba's parallel kernels must not be entered from two threads.)"""
    from trabecula.cluster import executor, n_workers

    if isinstance(scheduler, str) and scheduler in ("sync", "synchronous", "single-threaded"):
        yield scheduler, 1
        return
    if scheduler is not None and not isinstance(scheduler, str):  # a Client
        yield scheduler, n_workers(scheduler)
        return
    if scheduler is not None or workers is not None:
        with executor(scheduler, workers) as client:
            yield client, n_workers(client)
        return
    from distributed import Client

    try:
        client = Client.current()
    except ValueError:
        yield "sync", 1
        return
    yield client, n_workers(client)


def _numba_threads(n_workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))


def _set_threads(n: int) -> None:
    import numba

    numba.set_num_threads(int(min(max(1, n), numba.config.NUMBA_NUM_THREADS)))


# ------------------------------------------------------------------------------------ spilled arrays
@dataclass(frozen=True)
class Spill:
    """A float32 array in a memory-mapped file that tasks in other processes can open."""

    path: str
    shape: tuple[int, ...]

    def open(self, mode: str = "r") -> np.ndarray:
        return np.memmap(self.path, np.float32, mode=mode, shape=self.shape)


def _store(shape, what: str, spill_dir: str | None) -> tuple[np.ndarray, Spill | None]:
    """A float32 array of ``shape``: in memory up to a quarter of the memory budget, else memory-mapped."""
    nbytes = 4.0 * float(np.prod([float(n) for n in shape]))
    if nbytes <= memory_budget_bytes() / 4:
        return np.zeros(shape, np.float32), None
    d = spill_dir or tempfile.gettempdir()
    free = shutil.disk_usage(d).free
    if nbytes > free * 0.9:
        raise ParameterError("spill_dir", f"{what} needs {format_bytes(nbytes)} on disk, {format_bytes(free)} free in "
                                          "the spill folder")
    fd, path = tempfile.mkstemp(prefix="trabecula-", suffix=".f32", dir=d)
    os.close(fd)
    sp = Spill(path, tuple(int(n) for n in shape))
    return sp.open("w+"), sp


# ------------------------------------------------------------------------------------------ phantoms
def _labels_and_materials(phantom) -> tuple[Volume, dict[int, str]]:
    """The label Volume (kept lazy) and its material map; which labels occur is checked slab by slab."""
    from trabecula.scanner.materials import PHANTOM_MATERIALS, canonical

    vol = getattr(phantom, "labels", phantom)
    if not isinstance(vol, Volume):
        raise ParameterError("phantom", f"expected a label Volume or a Phantom, got {type(phantom).__name__}")
    if vol.units != "label":
        raise ParameterError("phantom", f"a phantom is a label volume (units 'label'), got units {vol.units!r}")
    mats = vol.provenance.extra.get("materials")
    if not isinstance(mats, dict) or not mats:
        raise ParameterError("phantom", "the label volume has no provenance.extra['materials'] map (label → material)")
    out = {}
    for k, name in mats.items():
        try:
            lab = int(k)
        except (TypeError, ValueError) as exc:
            raise ParameterError("phantom", f"material map key {k!r} is not a label id") from exc
        cname = canonical(name)
        if cname not in PHANTOM_MATERIALS:
            raise ParameterError("phantom", f"material {name!r} is not a phantom material ({', '.join(PHANTOM_MATERIALS)})")
        out[lab] = cname
    if np.dtype(vol.dtype).kind not in "ub" or np.dtype(vol.dtype).itemsize > 2:
        raise ParameterError("phantom", f"labels must be unsigned 8- or 16-bit integers, got {vol.dtype}")
    return vol, out


@dataclass(frozen=True)
class _SlabJob:
    """What a projection task needs besides its labels (small, picklable)."""

    factor: tuple[int, int, int]
    fsp: tuple[float, float, float]
    forigin: tuple[float, float, float]
    proj_ids: tuple[int, ...]
    fill: tuple[tuple[int, ...], int] | None  # (air ids, medium id) or None
    known: tuple[int, ...]
    radius_mm: float | None
    xy_lo: tuple[float, float]  # phantom box corner (y, x), isocentre frame
    spacing: tuple[float, float, float]
    k: int
    projector: str
    threads: int


def _project_slab(labels, z0: int, job: _SlabJob, gsub: ScanGeometry, us: np.ndarray, vs: np.ndarray,
                  band: tuple[int, int], check: bool = True):
    """One task: the labels of slab ``z0 …`` → path lengths (views, band rows, cols, materials) of its rows,
    and (seconds reading and preparing the slab, seconds projecting). ``check``: the labels are known and
    nothing lies outside ``radius_mm`` (once per slab)."""
    t0 = time.perf_counter()
    _set_threads(job.threads)
    labels = np.asarray(labels)
    if check:
        counts = np.bincount(labels.ravel(), minlength=1)
        unknown = [int(v) for v in np.nonzero(counts)[0] if int(v) not in job.known]
        if unknown:
            raise ParameterError("phantom", f"labels {unknown} have no material in provenance.extra['materials']")
    if job.fill is not None:
        labels = np.where(np.isin(labels, job.fill[0]), labels.dtype.type(job.fill[1]), labels)
    if check and job.radius_mm is not None and job.proj_ids:
        ny, nx = labels.shape[1:]
        y = job.xy_lo[0] + (np.arange(ny) + 0.5) * job.spacing[1]
        x = job.xy_lo[1] + (np.arange(nx) + 0.5) * job.spacing[2]
        outside = np.hypot(y[:, None], x[None, :]) > job.radius_mm
        if np.isin(labels[:, outside], job.proj_ids).any():
            raise ParameterError("radius_mm", f"the phantom has material outside the radius {job.radius_mm:g} mm "
                                              "given for its content (use air outside it, and the medium air)")
    r0, r1 = band
    nm = max(1, len(job.proj_ids))
    if r1 <= r0 or not job.proj_ids:
        t = time.perf_counter() - t0
        return r0, r1, np.zeros((gsub.n_views, max(0, r1 - r0), len(us), nm), np.float32), (t, 0.0)
    fr = block_fractions(labels, list(job.proj_ids), job.factor)
    del labels
    t1 = time.perf_counter()
    origin = (job.forigin[0] + (z0 // job.factor[0]) * job.fsp[0], job.forigin[1], job.forigin[2])
    paths = forward_project(fr, job.fsp, origin, gsub, job.k, job.projector, us=us, vs=vs[r0:r1])
    return r0, r1, paths, (t1 - t0, time.perf_counter() - t1)


def _slab_band(z0: int, z1: int, job: _SlabJob, radius: float, geom: ScanGeometry, vs: np.ndarray) -> tuple[int, int]:
    """Sub-ray rows [start, stop) that can see phantom slices z0 … z1 − 1 (their fraction map, padded)."""
    fz = job.factor[0]
    nzf = -(-(z1 - z0) // fz)
    za = job.forigin[0] + (z0 // fz) * job.fsp[0]  # the slab's lower padding plane (zero beyond)
    zb = za + (nzf + 1) * job.fsp[0]  # its upper padding plane
    v_lo, v_hi = slab_v_range(za, zb, radius, geom.sid, geom.sdd)
    return rows_in_range(vs, v_lo, v_hi)


def stream_projections(phantom, scanner, mas: float | None = None, seed: int = 0, *, noise: bool = True,
                       n_flats: int = 8, n_darks: int = 8, flat_exposure: float = 20.0, center_mm=None,
                       body=None, medium: str | None = None, projector: str = "numba",
                       slab_mm: float | None = None, radius_mm: float | None = None, views_per_task: int | None = None,
                       full_detector: bool = False, scheduler: Any = None, workers: int | None = None,
                       threads: int | None = None, spill_dir: str | None = None, progress: bool = True,
                       stats: dict | None = None) -> ProjectionData:
    """:func:`~trabecula.scanner.simulate.simulate_projections`, slab by slab (see the module docstring).

    Same arguments and result (same numbers within float tolerance for the same seed), plus:

    slab_mm : slab height (mm, default 4); rounded to whole projection-grid planes
    radius_mm : the phantom's content lies within this radius (mm) of its centre axis (e.g. a cylinder that
        fills the field of view in a square box whose corners would not fit the detector); the detector
        window and the rows of each slab then follow the cylinder, and material outside it is an error
    views_per_task : views projected by one task (a multiple of the noise chunk; default: about 60 views)
    full_detector : simulate every detector row instead of the object's shadow: an object taller than the
        cone covers (a phantom as tall as the axial field of view) is then cut off at the detector's edges in
        the views where it is near the source, as on the scanner (the in-memory scan refuses it)
    scheduler, workers : see :func:`dask_scheduler`
    threads : numba threads per task (default: the cores divided among the workers)
    spill_dir : folder for memory-mapped projections when they exceed a quarter of the memory budget
    stats : a dict that receives the per-slab timings and the plan

    ``data`` is memory-mapped for large scans (see ``spill_dir``); the rows of the detector window are those
    of the object's shadow, as in the in-memory scan (every row with ``full_detector``).
    """
    from dask import delayed

    from trabecula.scanner.simulate import (
        _body_chunk,
        _chord_table,
        default_chunk_views,
        detect,
        expected_signal,
        sampled_geometry,
        sub_rays,
    )

    scanner = load_scanner(scanner)
    if mas is not None:
        if not (isinstance(mas, int | float) and math.isfinite(mas) and mas > 0):
            raise ParameterError("mas", f"must be a positive number, got {mas!r}")
        scanner = scanner.replace(exposure={"mas": float(mas)})
    if slab_mm is not None and not (isinstance(slab_mm, int | float) and math.isfinite(slab_mm) and slab_mm > 0):
        raise ParameterError("slab_mm", f"must be a positive number of mm, got {slab_mm!r}")
    if radius_mm is not None and not (isinstance(radius_mm, int | float) and math.isfinite(radius_mm) and radius_mm > 0):
        raise ParameterError("radius_mm", f"must be a positive number of mm, got {radius_mm!r}")
    if views_per_task is not None and (not isinstance(views_per_task, int) or views_per_task < 1):
        raise ParameterError("views_per_task", f"must be a positive integer, got {views_per_task!r}")
    body_, medium_ = resolve_patient(scanner, body, medium)
    vol, materials = _labels_and_materials(phantom)
    check_phantom_grid(vol, scanner)
    known = tuple(sorted(materials))
    air = tuple(lab for lab, m in materials.items() if m == "air")
    # the medium's label and the material map after filling (apply_medium decides; tiny stand-in volume)
    probe = Volume(np.zeros((1, 1, 1), np.uint8) + np.uint8(air[0] if air else known[0]), vol.spacing, vol.origin,
                   "label", vol.provenance)
    filled, materials = apply_medium(probe, materials, medium_)
    fill = (air, int(np.asarray(filled.numpy()).ravel()[0])) if (air and filled is not probe) else None
    k = scanner.simulation.oversample
    center = np.asarray(vol.center_mm if center_mm is None else center_mm, float)
    box_radius, z_lo, z_hi = object_radius_and_height(vol.shape, vol.spacing, vol.origin, center)
    radius = box_radius if radius_mm is None else min(box_radius, float(radius_mm))
    r_body = body_radius_mm(body_)
    lateral = r_body + 1.0 if body_ is not None else None
    if full_detector:
        g = scanner.geometry
        geom = replace(detector_window(scanner, radius, 0.0, 0.0, lateral_radius=lateral),
                       n_rows=g.detector_rows, v0=-(g.detector_rows - 1) / 2.0 * g.pixel_v_mm)
    else:
        try:
            geom = detector_window(scanner, radius, z_lo, z_hi, lateral_radius=lateral)
        except ParameterError as exc:
            if "taller" in str(exc):
                raise ParameterError("phantom", str(exc).split(": ", 1)[-1] + " (or simulate every detector row: "
                                     "full_detector=True, --full-detector)") from exc
            raise

    proj_ids = tuple(sorted(lab for lab, m in materials.items() if m != "air"))
    factor = projection_factor(vol.spacing, scanner)
    fsp = tuple(float(s * f) for s, f in zip(vol.spacing, factor, strict=True))
    lo = np.asarray(vol.origin) - np.asarray(vol.spacing) / 2 - center
    forigin = tuple(float(v) for v in lo + np.asarray(fsp) / 2 - np.asarray(fsp))
    mat_names = [materials[lab] for lab in proj_ids] or ["water"]
    n_ph = len(mat_names)
    body_names = [] if body_ is None else list(body_.materials)
    all_names = mat_names + [m for m in body_names if m not in mat_names]
    box = (tuple(lo), tuple(lo + np.asarray(vol.shape) * np.asarray(vol.spacing)))
    spec = detector_spectrum(scanner)
    mu = mu_table(all_names, spec.energies_kev)
    sig_w = (spec.signal_weights / (k * k)).astype(np.float64)
    var_w = (spec.variance_weights / (k * k)).astype(np.float64)
    rng = np.random.default_rng(seed) if noise else None
    us, vs = sub_rays(geom, scanner)
    nrk, nck = len(vs), len(us)
    c0, c1 = 0, nck
    table = None
    if body_ is not None:
        g = scanner.geometry
        u_ph = g.sdd_mm * radius / math.sqrt(g.sid_mm**2 - radius**2) + abs(geom.offset) * g.magnification + 2 * geom.du
        inside = np.nonzero(np.abs(us) <= u_ph)[0]
        c0, c1 = (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, 0)
        if len(body_.materials) == 1:
            table = _chord_table(mu[all_names.index(body_.materials[0])], sig_w, var_w,
                                 2.0 * body_radius_mm(body_) * 1.01 + 1.0)
    sgeom = sampled_geometry(geom, scanner)
    chunk = default_chunk_views(geom.n_views, nrk, nck, len(all_names), body_ is not None)
    if views_per_task is None:
        views_per_task = max(chunk, int(round(60 / chunk)) * chunk)
    views_per_task = max(chunk, (views_per_task // chunk) * chunk)  # whole noise chunks per task

    # slabs: whole projection-grid planes, a multiple of the block factor
    fz = factor[0]
    planes = max(1, int(round((slab_mm or DEFAULT_SLAB_MM) / fsp[0])))
    step = planes * fz
    slabs = _plan_slabs(vol.shape[0], step)
    # the rays reach the slab within the content's radius plus the fraction map's padding and interpolation
    r_rays = _xy_radius(forigin[1], forigin[1] + (-(-vol.shape[1] // factor[1]) + 1) * fsp[1],
                        forigin[2], forigin[2] + (-(-vol.shape[2] // factor[2]) + 1) * fsp[2])
    if radius_mm is not None:
        r_rays = min(r_rays, float(radius_mm) + 2.0 * max(fsp[1], fsp[2]))
    # memory: a task holds its labels, fractions and path lengths; the client one block's sums + signals
    task_bytes = (step * vol.shape[1] * vol.shape[2] * (1 + n_ph + 1)
                  + 4.0 * views_per_task * nrk * (c1 - c0) * n_ph * 2)
    block_bytes = 4.0 * views_per_task * nrk * (c1 - c0) * n_ph + 24.0 * chunk * nrk * nck
    check_memory(task_bytes + block_bytes, f"one slab of {step} slices × {views_per_task} views (streamed scan)",
                 "slab_mm", "use thinner slabs (--slab-mm) or fewer views per task")
    data, spill = _store((geom.n_views, sgeom.n_rows, sgeom.n_cols), "the projections", spill_dir)
    with dask_scheduler(scheduler, workers) as (sched, n_workers):
        job = _SlabJob(factor, fsp, forigin, proj_ids, fill, known, None if radius_mm is None else float(radius_mm),
                       (float(lo[1]), float(lo[2])), tuple(float(s) for s in vol.spacing), k, projector,
                       threads or (_numba_threads(n_workers) if not isinstance(sched, str) else (os.cpu_count() or 1)))
        bands = [_slab_band(a, b, job, r_rays, geom, vs) for a, b in slabs]
        lazy = hasattr(vol.data, "dask")
        n_blocks = int(math.ceil(geom.n_views / views_per_task))
        slab_seconds = [0.0] * len(slabs)
        prep_seconds = [0.0] * len(slabs)
        t_client = 0.0
        t_start = time.perf_counter()
        with progress_steps(f"scan {scanner.name} ({len(slabs)} slabs)", len(slabs) * n_blocks) if progress \
                else _null() as advance:
            for blk in range(n_blocks):
                vsl = slice(blk * views_per_task, min(geom.n_views, (blk + 1) * views_per_task))
                gblk = subset(geom, vsl)
                tasks = []
                for (a, b), band in zip(slabs, bands, strict=True):
                    lab = vol.data[a:b] if lazy else np.asarray(vol.data[a:b])
                    tasks.append(delayed(_project_slab, pure=True)(lab, a, job, gblk, us[c0:c1], vs, band, blk == 0))
                acc = np.zeros((gblk.n_views, nrk, c1 - c0, n_ph), np.float32)
                pending: dict[int, tuple] = {}
                nxt = 0
                for i, res in _as_completed(tasks, sched, indexed=True):  # summed in slab order: deterministic
                    pending[i] = res
                    advance(1)
                    while nxt in pending:
                        r0, r1, part, (prep, sec) = pending.pop(nxt)
                        if r1 > r0:
                            acc[:, r0:r1] += part
                        slab_seconds[nxt] += sec
                        prep_seconds[nxt] += prep
                        nxt += 1
                        del part
                tc = time.perf_counter()
                for c in range(vsl.start, vsl.stop, chunk):
                    csl = slice(c, min(vsl.stop, c + chunk))
                    gsub = subset(geom, csl)
                    paths = acc[csl.start - vsl.start:csl.stop - vsl.start]
                    if body_ is None:
                        sig, var = expected_signal(paths, mu, sig_w, var_w)
                    else:
                        sig, var = _body_chunk(None, fsp, forigin, gsub, k, projector, us, vs, (c0, c1), n_ph,
                                               bool(proj_ids), body_, box, all_names, mu, sig_w, var_w, table,
                                               ph_paths=paths)
                    shape = (gsub.n_views, nrk, nck)
                    data[csl] = detect(sig.reshape(shape).astype(np.float32), var.reshape(shape).astype(np.float32),
                                       gsub, scanner, rng, k)
                    del sig, var
                del acc
                t_client += time.perf_counter() - tc
        total = time.perf_counter() - t_start
    if spill is not None:
        data.flush()
    n_f = max(1, n_flats)
    flat_sig = np.full((n_f, nrk, nck), sig_w.sum(), np.float32)
    flat_var = np.full((n_f, nrk, nck), var_w.sum(), np.float32)
    flats = detect(flat_sig, flat_var, geom, scanner, rng, k, frames=max(1.0, flat_exposure * geom.n_views / n_f))
    d = scanner.detector
    darks = np.full((max(1, n_darks), sgeom.n_rows, sgeom.n_cols), d.dark_offset, np.float32)
    if rng is not None and d.electronic_noise > 0:
        darks += np.float32(d.electronic_noise) * rng.standard_normal(darks.shape, dtype=np.float32)
    grid = recon_grid(scanner, (0.0, 0.0, 0.0), vol.extent_mm)
    plan = {"slabs": [[int(a), int(b)] for a, b in slabs], "rows": [[int(r0), int(r1)] for r0, r1 in bands],
            "slab_seconds": [float(s) for s in slab_seconds], "slab_read_seconds": [float(s) for s in prep_seconds],
            "detect_seconds": float(t_client), "views_per_task": int(views_per_task),
            "blocks": int(n_blocks), "workers": int(n_workers), "seconds": float(total),
            "sub_rows": int(nrk), "spill_path": None if spill is None else spill.path}
    if stats is not None:
        stats.update(plan)
    geometry = {
        "scan_geometry": sgeom.to_dict(), "reading_geometry": geom.to_dict(), "scanner": scanner.to_dict(),
        "mas_per_view": scanner.mas_per_view,
        "recon_grid": {"shape": list(grid.shape), "spacing": list(grid.spacing), "origin": list(grid.origin)},
        "center_mm": [float(v) for v in center], "phantom": vol.provenance.source, "seed": int(seed),
        "noise": bool(noise), "projection_grid_mm": list(fsp), "oversample": k,
        "materials": {str(lab): materials[lab] for lab in sorted(materials)}, **patient_record(body_, medium_),
        "streamed": {"slab_slices": int(step), "slabs": len(slabs), "radius_mm": radius_mm},
    }
    return ProjectionData(data, np.asarray(geom.angles), flats, darks, (sgeom.dv, sgeom.du), geometry,
                          f"simulated:{scanner.name}")


class _null:
    def __enter__(self):
        return lambda n=1, description=None: None

    def __exit__(self, *exc):
        return False


# ----------------------------------------------------------------------------------------------- FDK
class _H5Projections:
    """Projections read row block by row block from an APS data-exchange HDF5 file (never whole)."""

    def __init__(self, path):
        import json

        import h5py

        self.path = Path(path)
        if not self.path.exists():
            raise InputError(self.path, "no such file")
        try:
            self._f = h5py.File(self.path, "r")
            ex = self._f["exchange"]
            self.data = ex["data"]
        except (OSError, KeyError) as exc:
            raise InputError(self.path, "not an APS data-exchange HDF5 file with /exchange/data") from exc
        if self.data.ndim != 3 or min(self.data.shape) == 0:
            raise InputError(self.path, f"/exchange/data must be (angles, rows, columns); got shape {self.data.shape}")
        self.flats = np.asarray(ex["data_white"], np.float32) if "data_white" in ex else None
        self.darks = np.asarray(ex["data_dark"], np.float32) if "data_dark" in ex else None
        raw = ex.attrs.get("trabecula_geometry")
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        try:
            self.geometry = json.loads(raw) if isinstance(raw, str) else {}
        except ValueError as exc:
            raise InputError(self.path, "attribute trabecula_geometry of /exchange is not JSON") from exc
        if not isinstance(self.geometry, dict):
            raise InputError(self.path, "attribute trabecula_geometry of /exchange is not a JSON object")
        self.angles = None
        if "theta" in ex:
            from trabecula.io.projections import _angles_to_rad

            units = ex["theta"].attrs.get("units")
            units = units.decode("utf-8", "replace") if isinstance(units, bytes) else units
            self.angles = _angles_to_rad(np.asarray(ex["theta"], np.float64).ravel(),
                                         units if isinstance(units, str) else None)
            if self.angles.shape != (self.data.shape[0],):
                raise InputError(self.path, f"/exchange/theta holds {self.angles.size} angles for "
                                            f"{self.data.shape[0]} projections")
        px = self.geometry.get("pixel_size_mm")
        self.pixel_size_mm = tuple(float(v) for v in px) if isinstance(px, list) and len(px) == 2 else None
        self.source = str(self.path)

    def close(self) -> None:
        self._f.close()


def _rows_block(src, r0: int, r1: int) -> ProjectionData:
    """Rows r0 … r1 − 1 of the projections, flats and darks as a small ProjectionData."""
    data = np.asarray(src.data[:, r0:r1, :], np.float32)
    flats = None if src.flats is None else np.asarray(src.flats)[:, r0:r1]
    darks = None if src.darks is None else np.asarray(src.darks)[:, r0:r1]
    angles = np.zeros(data.shape[0]) if src.angles is None else src.angles
    return ProjectionData(data, angles, flats, darks, None, {}, src.source)


def _backproject_slab(q_src, band: tuple[int, int], geom: ScanGeometry, grid: Grid, k0: int, k1: int,
                      halo: tuple[int, int], scanner, to_units, out_arr, threads: int):
    """One task: output slices k0 … k1 − 1 from detector rows band[0] … band[1] − 1 (+ z filtering halo)."""
    t0 = time.perf_counter()
    _set_threads(threads)
    r0, r1 = band
    q = q_src.open("r")[:, r0:r1] if isinstance(q_src, Spill) else q_src
    gband = replace(geom, n_rows=r1 - r0, v0=geom.v0 + r0 * geom.dv)
    h0, h1 = halo
    sub = Grid((k1 - k0 + h0 + h1, grid.shape[1], grid.shape[2]), grid.spacing,
               (grid.origin[0] + (k0 - h0) * grid.spacing[0], grid.origin[1], grid.origin[2]))
    q = np.asarray(q, np.float32)
    t1 = time.perf_counter()
    mu = fdk_numba(q, gband, sub, filtered=True)
    t_bp = time.perf_counter() - t1
    del q
    mu, _ = slice_thickness_filter(mu, scanner)
    mu = mu[h0:mu.shape[0] - h1]
    slab = to_units(mu)
    if out_arr is not None:
        out_arr[k0:k1] = slab  # whole chunks along z: slabs never share one
        slab = None
    return k0, k1, slab, (t_bp, time.perf_counter() - t0 - t_bp)


def _as_completed(tasks, sched, indexed: bool = False):
    """Results of delayed ``tasks`` as they complete (a distributed client) or one by one (local); with
    ``indexed``, as (index, result)."""
    import dask

    if isinstance(sched, str):
        for i, t in enumerate(tasks):
            r = dask.compute(t, scheduler=sched)[0]
            yield (i, r) if indexed else r
        return
    from distributed import as_completed

    futs = sched.compute(tasks)
    index = {f.key: i for i, f in enumerate(futs)}
    for fut in as_completed(futs):
        r = fut.result()
        i = index[fut.key]
        fut.release()
        yield (i, r) if indexed else r


def _slab_rows(k0: int, k1: int, grid: Grid, geom: ScanGeometry) -> tuple[int, int]:
    """Detector rows [start, stop) whose filtered values the back-projection of slices k0 … k1 − 1 reads."""
    z_a = grid.origin[0] + k0 * grid.spacing[0]
    z_b = grid.origin[0] + (k1 - 1) * grid.spacing[0]
    ny, nx = grid.shape[1:]
    radius = _xy_radius(grid.origin[1], grid.origin[1] + (ny - 1) * grid.spacing[1],
                        grid.origin[2], grid.origin[2] + (nx - 1) * grid.spacing[2])
    v_lo, v_hi = slab_v_range(z_a, z_b, min(radius, geom.sid * 0.999), geom.sid, geom.sdd)
    f_lo = (v_lo - geom.v0) / geom.dv
    f_hi = (v_hi - geom.v0) / geom.dv
    r0 = max(0, int(math.floor(f_lo)) - 1)
    r1 = min(geom.n_rows, int(math.ceil(f_hi)) + 2)
    if r1 - r0 < 2:  # the back-projector interpolates between two rows
        r0, r1 = max(0, min(r0, geom.n_rows - 2)), min(geom.n_rows, max(r0, 0) + 2)
    return r0, r1


def _z_halo(scanner, grid: Grid) -> int:
    """Slices of overlap a slab needs for the slice-thickness filter (0 when there is none)."""
    r = scanner.geometry.pixel_v_iso_mm
    t = scanner.reconstruction.slice_thickness_mm
    if t <= r * 1.05:
        return 0
    sigma = math.sqrt(t * t - r * r) / 2.3548 / scanner.reconstruction.slice_mm
    return int(4.0 * sigma + 0.5) + 1


def _create_output(path: Path, shape, spacing, origin, units: str, chunks):
    """The output array (level 0): OME-Zarr where :mod:`trabecula.io.omezarr` exists, else plain Zarr."""
    try:
        from trabecula.io.omezarr import create_ome_zarr
    except ImportError:
        create_ome_zarr = None
    if create_ome_zarr is not None:
        return create_ome_zarr(path, shape, np.float32, spacing, origin, units, chunks), "ome-zarr"
    import zarr

    return zarr.create_array(store=str(path), shape=shape, chunks=chunks, dtype=np.float32, overwrite=False), "zarr"


def _finish_output(path: Path, kind: str) -> None:
    if kind == "ome-zarr":
        from trabecula.io.omezarr import finish_ome_zarr

        finish_ome_zarr(path)


def _set_meta(path: Path, vol: Volume) -> None:
    """Store ``vol``'s units, geometry and provenance with the output (group attributes for OME-Zarr)."""
    import zarr

    from trabecula.io.formats import META_KEY, volume_meta

    node = zarr.open(str(path), mode="r+")
    if isinstance(node, zarr.Group):
        info = dict(node.attrs.get(META_KEY) or {})
        info["provenance"] = vol.provenance.to_dict()
        node.attrs[META_KEY] = info
    else:
        node.attrs[META_KEY] = volume_meta(vol)


def stream_reconstruct(proj, out: str | Path | None = None, scanner=None, *, grid: Grid | None = None,
                       kernel: str | None = None, units: str = "HU", slab_mm: float | None = None,
                       scheduler: Any = None, workers: int | None = None, threads: int | None = None,
                       spill_dir: str | None = None, force: bool = False, progress: bool = True,
                       stats: dict | None = None) -> Volume:
    """FDK (numba back-projector) of cone-beam projections, slab by slab (see the module docstring).

    ``proj`` is a :class:`ProjectionData` (its data may be a memory map) or the path of a data-exchange
    ``.h5`` file, read row block by row block. With ``out`` (a ``.zarr`` path) each output slab is written
    there as it completes and the returned Volume reads it lazily; without, the slabs are gathered in memory.
    Same numbers as :func:`trabecula.scanner.recon.reconstruct` with ``backend="numba"``."""
    from dask import delayed

    if units not in ("HU", "attenuation_per_mm"):
        raise ParameterError("units", f"use 'HU' or 'attenuation_per_mm', got {units!r}")
    if slab_mm is not None and not (isinstance(slab_mm, int | float) and math.isfinite(slab_mm) and slab_mm > 0):
        raise ParameterError("slab_mm", f"must be a positive number of mm, got {slab_mm!r}")
    src = _H5Projections(proj) if isinstance(proj, str | Path) else proj
    if "scan_geometry" not in (src.geometry or {}):
        if isinstance(src, _H5Projections):
            src.close()
        raise InputError(src.source, "no cone-beam geometry stored with the projections; for parallel-beam data "
                                     "use stream_reconstruct_parallel (trabecula recon --stream does)")
    try:
        geo_d = src.geometry or {}
        scanner, kernel, geom, grid, spec = recon_setup(geo_d, src.source, scanner, grid, kernel)
        if src.flats is None:
            raise InputError(src.source, "no flat fields (exchange/data_white); cannot normalise the projections")
        if tuple(src.data.shape) != (geom.n_views, geom.n_rows, geom.n_cols):
            raise InputError(src.source, f"projections of shape {tuple(src.data.shape)} do not match their geometry "
                                         f"({geom.n_views} × {geom.n_rows} × {geom.n_cols})")
        water = scanner.simulation.beam_hardening_correction == "water"
        mu_w = water_reference_mu(spec)
        mu_air = effective_mu("air", spec)
        nv, nr, nc = src.data.shape
        # 1. row blocks: −log, water correction, cosine weight, ramp filter (independent per row)
        q, q_spill = _store((nv, nr, nc), "the filtered projections", spill_dir)
        rows_per_block = int(max(1, min(nr, (64 * 2**20) // max(1, 4 * nv * nc))))
        check_memory(4.0 * nv * rows_per_block * nc * 6, f"a block of {rows_per_block} rows of {nv} views", "projections")
        t_start = time.perf_counter()
        n_rb = int(math.ceil(nr / rows_per_block))
        steps = ["flat/dark correction, −log"] + (["water beam-hardening linearisation"] if water else [])
        with progress_steps("filter row blocks", n_rb) if progress else _null() as advance:
            for r0 in range(0, nr, rows_per_block):
                r1 = min(nr, r0 + rows_per_block)
                p = line_integrals(_rows_block(src, r0, r1))
                if water:
                    p = water_correct(p, spec)
                q[:, r0:r1] = fdk_filter(p, replace(geom, n_rows=r1 - r0, v0=geom.v0 + r0 * geom.dv), kernel)
                advance(1)
        if q_spill is not None:
            q.flush()
        t_filter = time.perf_counter() - t_start
        # 2. output slabs, each from the rows that see it
        step = max(1, int(round((slab_mm or DEFAULT_SLAB_MM) / grid.spacing[0])))
        slabs = _plan_slabs(grid.shape[0], step)
        halo = _z_halo(scanner, grid)
        check_memory(4.0 * (step + 2 * halo) * grid.shape[1] * grid.shape[2] * 3, f"an output slab of {step} slices",
                     "slab_mm", "use thinner slabs (--slab-mm)")
        origin_w = world_origin(grid, geo_d)
        hu = (lambda m: to_hu(m, mu_w, mu_air).astype(np.float32)) if units == "HU" else (
            lambda m: np.asarray(m, np.float32))
        out_p = None if out is None else Path(out)
        z = kind = None
        if out_p is not None:
            if out_p.exists():
                if not force:
                    raise ParameterError("out", f"{out_p} exists; pass force=True (--force) to replace it")
                shutil.rmtree(out_p) if out_p.is_dir() else out_p.unlink()
            z, kind = _create_output(out_p, grid.shape, grid.spacing, origin_w, units,
                                     (step, min(grid.shape[1], 256), min(grid.shape[2], 256)))
        else:
            check_memory(4.0 * float(np.prod(grid.shape)), "the reconstruction", "out", "give an output .zarr")
        result = None if out_p is not None else np.zeros(grid.shape, np.float32)
        seconds: list[float] = []
        other_s: list[float] = []
        with dask_scheduler(scheduler, workers) as (sched, n_workers):
            threads = threads or (_numba_threads(n_workers) if not isinstance(sched, str) else (os.cpu_count() or 1))
            tasks = []
            for k0, k1 in slabs:
                h0, h1 = min(halo, k0), min(halo, grid.shape[0] - k1)
                r0, r1 = _slab_rows(k0 - h0, k1 + h1, grid, geom)
                qs = q_spill if q_spill is not None else q[:, r0:r1]
                tasks.append(delayed(_backproject_slab, pure=True)(qs, (r0, r1), geom, grid, k0, k1, (h0, h1), scanner,
                                                                   hu, z, threads))
            with progress_steps(f"FDK ({len(slabs)} slabs)", len(slabs)) if progress else _null() as advance:
                for k0, k1, slab, (sec, other) in _as_completed(tasks, sched):
                    if result is not None:
                        result[k0:k1] = slab
                    seconds.append(float(sec))
                    other_s.append(float(other))
                    advance(1)
        total = time.perf_counter() - t_start
    finally:
        if isinstance(src, _H5Projections):
            src.close()
    if q_spill is not None:
        del q
        with contextlib.suppress(OSError):
            os.unlink(q_spill.path)
    steps.append(f"FDK[numba, kernel {kernel}], streamed in {len(slabs)} slabs of {step} slices")
    if halo:
        steps.append(f"slice thickness {scanner.reconstruction.slice_thickness_mm:g} mm")
    if units == "HU":
        steps.append(f"HU (μ_water {mu_w:.5f}/mm)")
    extra = {"mu_water_per_mm": mu_w, "mu_air_per_mm": mu_air, "kernel": kernel, "backend": "numba",
             "seed": geo_d.get("seed"), "mas_per_view": geo_d.get("mas_per_view"),
             "slice_thickness_mm": float(scanner.reconstruction.slice_thickness_mm)}
    prov = Provenance(source=src.source or "simulated projections", scanner=scanner.name, steps=steps, extra=extra)
    if stats is not None:
        stats.update({"filter_seconds": t_filter, "slab_seconds": seconds, "slab_other_seconds": other_s,
                      "seconds": total, "slabs": len(slabs),
                      "workers": n_workers, "rows_per_block": rows_per_block})
    if out_p is None:
        return Volume(result, grid.spacing, origin_w, units, prov)
    _finish_output(out_p, kind)
    meta = Volume(np.zeros((1, 1, 1), np.float32), grid.spacing, origin_w, units, prov)
    _set_meta(out_p, meta)
    return _open_output(out_p, prov)


def _open_output(path: Path, prov: Provenance) -> Volume:
    from trabecula.io import read_volume

    return read_volume(path).replace(provenance=prov)


def _parallel_block(src_ref, r0: int, r1: int, angles: np.ndarray, center: float, rings: bool, ring_width: int,
                    kernel: str, pixel: float, out_arr, threads: int):
    """One task: slices r0 … r1 − 1 of a parallel-beam reconstruction (one per detector row)."""
    from trabecula.scanner.tomo import fbp_parallel, remove_rings, sinograms

    t0 = time.perf_counter()
    _set_threads(threads)
    src = _H5Projections(src_ref) if isinstance(src_ref, str) else src_ref
    try:
        block = _rows_block(src, r0, r1)
    finally:
        if isinstance(src_ref, str):
            src.close()
    block.angles = angles
    sino = sinograms(block)
    if rings:
        sino = remove_rings(sino, ring_width)
    img = fbp_parallel(sino, angles, center, kernel, pixel=pixel)
    if out_arr is None:
        return r0, r1, img, time.perf_counter() - t0
    out_arr[r0:r1] = img
    return r0, r1, None, time.perf_counter() - t0


def stream_reconstruct_parallel(proj, out: str | Path | None = None, *, center: float | str | None = "auto",
                                rings: bool = False, kernel: str = "shepp-logan", ring_width: int = 21,
                                pixel_mm: float | None = None, rows_per_task: int = 16, scheduler: Any = None,
                                workers: int | None = None, threads: int | None = None, force: bool = False,
                                progress: bool = True) -> Volume:
    """:func:`trabecula.scanner.tomo.reconstruct_parallel` row block by row block (real parallel-beam data,
    one slice per detector row): the same numbers, with the projections read a block of rows at a time.

    The centre search (``"auto"``) needs the row-mean sinogram: a first pass sums it block by block; then each
    block of ``rows_per_task`` rows is one task that filters, back-projects and writes its slices."""
    from trabecula.scanner.tomo import check_pixel_size, find_center, remove_rings, ring_metric, sinograms

    src = _H5Projections(proj) if isinstance(proj, str | Path) else proj
    try:
        nv, nr, nc = (int(n) for n in src.data.shape)
        angles = (np.linspace(0, np.pi, nv, endpoint=False) if src.angles is None
                  else np.asarray(src.angles, np.float64))
        if nv < 10:
            raise InputError(src.source, f"only {nv} projections; need at least 10 for a reconstruction")
        if float(np.ptp(angles)) < np.radians(170):
            raise InputError(src.source, f"projections cover {np.degrees(np.ptp(angles)):.1f}°; parallel-beam FBP "
                                         "needs ≥ 180°")
        if src.flats is None:
            raise InputError(src.source, "no flat fields (exchange/data_white); cannot normalise the projections")
        check_pixel_size(pixel_mm)
        px = getattr(src, "pixel_size_mm", None) or (src.geometry or {}).get("pixel_size_mm")
        if pixel_mm is None and px:
            pixel_mm = float(px[1])
        rows_per_task = int(max(1, rows_per_task))
        check_memory(4.0 * rows_per_task * (3 * nv * nc + 2 * nc * nc), f"a block of {rows_per_task} rows",
                     "rows_per_task")
        steps = ["flat/dark correction, −log"]
        extra: dict = {}
        if rings:
            steps.append(f"ring removal (column-mean detrending, width {ring_width})")
        blocks = _plan_slabs(nr, rows_per_task)
        if isinstance(center, str):
            if center != "auto":
                raise ParameterError("center", f"use 'auto' or a column number, got {center!r}")
            total = np.zeros((nv, nc), np.float64)
            with progress_steps("centre search: row-mean sinogram", len(blocks)) if progress else _null() as adv:
                for r0, r1 in blocks:
                    blk = _rows_block(src, r0, r1)
                    blk.angles = angles
                    sino = sinograms(blk)
                    if rings:
                        sino = remove_rings(sino, ring_width)
                    total += sino.sum(axis=0, dtype=np.float64)
                    adv(1)
            c = find_center((total / nr).astype(np.float32), angles)
            extra["center_search"] = "min entropy"
        elif center is None:
            c = (nc - 1) / 2.0
        else:
            c = float(center)
        extra["center_px"] = c
        steps.append(f"parallel FBP[kernel {kernel}, centre {c:.2f} px], streamed in blocks of {rows_per_task} rows")
        units = "attenuation_per_mm" if pixel_mm else "grey"
        sp = float(pixel_mm or 1.0)
        if not pixel_mm:
            extra["note"] = "detector pixel size unknown: values are μ per pixel and spacing is 1 (pixel units)"
        origin = (-(nr - 1) / 2 * sp, -(nc - 1) / 2 * sp, -(nc - 1) / 2 * sp)
        out_p = None if out is None else Path(out)
        z = kind = None
        if out_p is not None:
            if out_p.exists():
                if not force:
                    raise ParameterError("out", f"{out_p} exists; pass force=True (--force) to replace it")
                shutil.rmtree(out_p) if out_p.is_dir() else out_p.unlink()
            z, kind = _create_output(out_p, (nr, nc, nc), (sp, sp, sp), origin, units,
                                     (rows_per_task, min(nc, 256), min(nc, 256)))
            result = None
        else:
            check_memory(4.0 * nr * nc * nc, "the reconstruction", "out", "give an output .zarr")
            result = np.zeros((nr, nc, nc), np.float32)
        ref = str(src.path) if isinstance(src, _H5Projections) else src
        mid = nr // 2
        with dask_scheduler(scheduler, workers) as (sched, n_workers):
            from dask import delayed

            thr = threads or (_numba_threads(n_workers) if not isinstance(sched, str) else (os.cpu_count() or 1))
            tasks = [delayed(_parallel_block, pure=True)(ref, r0, r1, angles, c, rings, ring_width, kernel,
                                                         pixel_mm or 1.0, z, thr) for r0, r1 in blocks]
            with progress_steps(f"FBP ({len(blocks)} row blocks)", len(blocks)) if progress else _null() as adv:
                for r0, r1, img, _sec in _as_completed(tasks, sched):
                    if result is not None:
                        result[r0:r1] = img
                    adv(1)
    finally:
        if isinstance(src, _H5Projections):
            src.close()
    middle = result[mid] if result is not None else np.asarray(z[mid])
    extra["ring_metric"] = ring_metric(middle)
    prov = Provenance(source=src.source, scanner="parallel-beam", steps=steps, extra=extra)
    if out_p is None:
        return Volume(result, sp, origin, units, prov)
    _finish_output(out_p, kind)
    _set_meta(out_p, Volume(np.zeros((1, 1, 1), np.float32), sp, origin, units, prov))
    return _open_output(out_p, prov)


def stream_reconstruct_projections(proj, out: str | Path | None = None, *, kernel: str | None = None,
                                   center: float | str | None = None, rings: bool = False,
                                   pixel_mm: float | None = None, slab_mm: float | None = None, scheduler: Any = None,
                                   workers: int | None = None, force: bool = False, progress: bool = True) -> Volume:
    """:func:`trabecula.scanner.tomo.reconstruct_projections`, streamed: cone-beam FDK slab by slab
    (:func:`stream_reconstruct`) when the projections hold a ``scan_geometry``, else parallel-beam FBP row
    block by row block (:func:`stream_reconstruct_parallel`); the same options and checks."""
    from trabecula.scanner.tomo import check_pixel_size, parse_center

    check_pixel_size(pixel_mm)
    src = _H5Projections(proj) if isinstance(proj, str | Path) else proj
    try:
        cone = "scan_geometry" in (src.geometry or {})
        ncols = int(src.data.shape[2])
    finally:
        if isinstance(src, _H5Projections):
            src.close()
    if cone:
        if center is not None or rings:
            raise ParameterError("--center", "--center and --rings apply to parallel-beam data; this file is a "
                                             "simulated cone-beam scan")
        return stream_reconstruct(proj, out, kernel=kernel, slab_mm=slab_mm, scheduler=scheduler, workers=workers,
                                  force=force, progress=progress)
    c = parse_center(center)
    if c is not None and not isinstance(c, str) and not 0 <= c <= ncols - 1:
        raise ParameterError("--center", f"rotation centre {c:g} is outside the detector (columns 0…{ncols - 1})")
    return stream_reconstruct_parallel(proj, out, center="auto" if c is None else None if c == "middle" else c,
                                       rings=rings, kernel=kernel or "shepp-logan", pixel_mm=pixel_mm,
                                       scheduler=scheduler, workers=workers, force=force, progress=progress)


def stream_scan(phantom, scanner, out: str | Path, mas: float | None = None, seed: int = 0, *, kernel: str | None = None,
                noise: bool = True, body=None, medium: str | None = None, slab_mm: float | None = None,
                radius_mm: float | None = None, full_detector: bool = False, scheduler: Any = None,
                workers: int | None = None, threads: int | None = None, spill_dir: str | None = None,
                force: bool = False, progress: bool = True, stats: dict | None = None,
                keep_projections: bool = False):
    """:func:`trabecula.scanner.simulate.scan` (mode full, numba) slab by slab: streamed projection, then
    streamed FDK written to ``out`` (``.zarr``). Returns the lazily read Volume (and the projections with
    ``keep_projections``); ``stats`` receives both halves' timings (``"project"``, ``"recon"``)."""
    from trabecula.scanner.simulate import with_dose

    out_p = Path(out)
    if out_p.suffix != ".zarr":
        raise ParameterError("out", f"a streamed scan writes a .zarr folder, got {out_p.name!r}")
    if out_p.exists() and not force:
        raise ParameterError("out", f"{out_p} exists; pass force=True (--force) to replace it")
    sc = load_scanner(scanner)
    body_, medium_ = resolve_patient(sc, body, medium)
    st_p: dict = {}
    st_r: dict = {}
    with dask_scheduler(scheduler, workers) as (sched, _n):
        proj = stream_projections(phantom, sc, mas=mas, seed=seed, noise=noise, body=body_ or "NONE", medium=medium_,
                                  slab_mm=slab_mm, radius_mm=radius_mm, full_detector=full_detector, scheduler=sched,
                                  threads=threads, spill_dir=spill_dir, progress=progress, stats=st_p)
        vol = stream_reconstruct(proj, out_p, sc, kernel=kernel, slab_mm=slab_mm, scheduler=sched, threads=threads,
                                 spill_dir=spill_dir, force=force, progress=progress, stats=st_r)
    rec = patient_record(body_, medium_)
    prov = vol.provenance.with_step(f"patient body {rec['body']}, medium {medium_}")
    prov.extra.update(rec)
    vol = with_dose(vol.replace(provenance=prov), sc, body_ or "NONE", mas)
    _set_meta(out_p, vol)
    if stats is not None:
        stats.update({"project": st_p, "recon": st_r})
    if keep_projections:
        return vol, proj
    if st_p.get("spill_path"):
        del proj
        with contextlib.suppress(OSError):
            os.unlink(st_p["spill_path"])
    return vol


__all__ = ["DEFAULT_SLAB_MM", "dask_scheduler", "rows_in_range", "slab_v_range", "stream_projections",
           "stream_reconstruct", "stream_reconstruct_parallel", "stream_reconstruct_projections", "stream_scan"]
