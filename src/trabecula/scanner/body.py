"""A patient body around the specimen: an elliptic cylinder of soft tissue (with an optional fat ring) whose
line integrals are computed analytically and added to the specimen's, so that the noise and the beam
hardening of scanning through a wrist, an ankle or an abdomen come from the physics at no grid cost.

Model (the isocentre frame of the scan, mm; z is the rotation axis):

* the body is a set of nested elliptic cylinders, infinite along z, centred on the rotation axis, with
  semi-axes (a, b) along x (lateral, left–right) and y (antero-posterior); :meth:`Body.regions` lists them
  from the outside in as (material, a, b). The material of region i fills the inside of ellipse i minus the
  inside of ellipse i + 1. A ring of thickness t inside an ellipse (a, b) is bounded by the ellipse
  (a − t, b − t): its thickness is exactly t on the two axes (an offset curve of an ellipse is not an
  ellipse; the difference is below 1 mm for the sizes here);
* the specimen (the phantom's bounding box, which its own labels fill) sits at the centre and displaces the
  body: along every ray the body contributes its chord **outside** the box. With the ray
  P(t) = S + t·(Q − S), t ∈ [0, 1], the chord through an ellipse is the interval where
  (x/a)² + (y/b)² ≤ 1, the roots of A t² + B t + C = 0 with A = Dx²/a² + Dy²/b²,
  B = 2(Sx Dx/a² + Sy Dy/b²), C = Sx²/a² + Sy²/b² − 1 (only x and y enter: the cylinder is infinite
  along z, so the ray's slope along z lengthens the chord by |Q − S| / |Q − S|_xy); the box interval comes
  from the slab method; the body's path in region i is
  |D|·(|I_i| − |I_i ∩ B| − |I_{i+1}| + |I_{i+1} ∩ B|).

Named bodies (:data:`BODIES`; lateral × AP outer size):

``wrist``   60 × 40 mm soft tissue. Perimeter 159 mm, inside the range of adult wrist circumferences of the
            2012 US Army anthropometric survey (ANSUR II; Gordon et al., NATICK/TR-15/007, 2014), where the
            female and male means lie near 150 and 175 mm; the 60 mm breadth is the distal forearm at the
            radio-carpal joint, the region the S1 extremity CT images (seed ``extremity-uhr-ct.txt``, Fig. 2).
``ankle``   90 × 70 mm soft tissue at the malleoli (perimeter 252 mm; ANSUR II ankle circumference, taken
            just above the malleoli, averages about 225 mm for men, so the malleolar section is a little
            larger).
``lumbar``  320 × 240 mm with a 15 mm subcutaneous fat ring (``adipose``) around soft tissue: the adult
            abdomen at the lumbar spine. Effective diameter √(320·240) = 277 mm, close to the 32 cm CTDI body
            phantom that stands for an adult abdomen and within the adult range of AAPM Report 204 (Boone et
            al., 2011, Size-Specific Dose Estimates in pediatric and adult body CT, Table 3 and Fig. 2: adult
            effective diameters about 24–35 cm). The fat thickness is our assumption within the 10–30 mm
            range of adult subcutaneous fat at L3–L4 seen on CT.
``AxB``     a soft-tissue ellipse A × B mm (lateral × AP), e.g. ``"200x150"``.
``NONE``    no body (the specimen in air, as before).

The body's anatomy (bones, organs, air in the bowel) is not modelled: it stands for the attenuation of the
tissue the beam crosses, which sets the noise and hardens the spectrum.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from trabecula.errors import ParameterError
from trabecula.scanner.materials import canonical

#: Materials a medium may be (what fills the phantom's own box where its label is air).
MEDIA: tuple[str, ...] = ("air", "marrow", "pbs", "soft_tissue", "water")


@dataclass(frozen=True)
class Body:
    """A patient body: an elliptic cylinder along z, centred on the rotation axis.

    Attributes
    ----------
    name : str
        ``wrist``, ``ankle``, ``lumbar`` or ``"AxB"`` (mm).
    semi_axes_mm : (float, float)
        Outer semi-axes (a along x, lateral; b along y, antero-posterior), mm.
    layers : tuple of (material, thickness_mm)
        Rings from the outside in (e.g. ``(("adipose", 15.0),)``); the rest is :attr:`core`.
    core : str
        Material inside the innermost ring.
    region : str or None
        Body region for dose conversion factors: ``"extremity"`` (wrist, ankle), ``"abdomen"`` (lumbar),
        None for a user ellipse.
    """

    name: str
    semi_axes_mm: tuple[float, float]
    layers: tuple[tuple[str, float], ...] = ()
    core: str = "soft_tissue"
    region: str | None = None

    def __post_init__(self) -> None:
        a, b = self.semi_axes_mm
        if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
            raise ParameterError("body", f"semi-axes must be positive, got {self.semi_axes_mm}")
        canonical(self.core)
        t = 0.0
        for mat, th in self.layers:
            canonical(mat)
            if not (math.isfinite(th) and th > 0):
                raise ParameterError("body", f"layer thickness must be positive, got {th!r}")
            t += th
        if t >= min(a, b):
            raise ParameterError("body", f"layers ({t:g} mm) leave no core inside {2 * a:g} × {2 * b:g} mm")

    @property
    def size_mm(self) -> tuple[float, float]:
        """Outer (lateral, AP) size, mm."""
        return 2.0 * self.semi_axes_mm[0], 2.0 * self.semi_axes_mm[1]

    @property
    def effective_diameter_mm(self) -> float:
        """√(lateral · AP), the effective diameter of AAPM Report 204 (Boone et al. 2011), mm."""
        w, h = self.size_mm
        return math.sqrt(w * h)

    @property
    def materials(self) -> tuple[str, ...]:
        """The body's materials, each once, outside in."""
        out: list[str] = []
        for m, _, _ in self.regions():
            if m not in out:
                out.append(m)
        return tuple(out)

    def regions(self) -> list[tuple[str, float, float]]:
        """(material, a, b) from the outside in: region i is inside ellipse (a, b) and outside the next."""
        a, b = self.semi_axes_mm
        out = []
        for mat, th in self.layers:
            out.append((canonical(mat), a, b))
            a, b = a - th, b - th
        out.append((canonical(self.core), a, b))
        return out

    def describe(self) -> str:
        w, h = self.size_mm
        ring = "".join(f", {m} {t:g} mm" for m, t in self.layers)
        return f"{self.name} ({w:g} × {h:g} mm {self.core}{ring})"


#: The named bodies (see the module docstring for the sizes' sources).
BODIES: dict[str, Body] = {
    "wrist": Body("wrist", (30.0, 20.0), (), "soft_tissue", "extremity"),
    "ankle": Body("ankle", (45.0, 35.0), (), "soft_tissue", "extremity"),
    "lumbar": Body("lumbar", (160.0, 120.0), (("adipose", 15.0),), "soft_tissue", "abdomen"),
}

_ELLIPSE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*[xX×]\s*(\d+(?:\.\d*)?)\s*(?:mm)?\s*$")


def parse_body(spec: str | Body | None) -> Body | None:
    """A :class:`Body` from ``NONE`` (→ None), a name in :data:`BODIES` or ``"AxB"`` (mm, lateral × AP).

    Examples
    --------
    >>> parse_body("lumbar").size_mm
    (320.0, 240.0)
    >>> parse_body("200x150").semi_axes_mm
    (100.0, 75.0)
    >>> parse_body("none") is None
    True
    """
    if spec is None or isinstance(spec, Body):
        return spec
    s = str(spec).strip()
    if s.upper() in ("NONE", ""):
        return None
    if s.lower() in BODIES:
        return BODIES[s.lower()]
    m = _ELLIPSE.match(s)
    if m:
        w, h = float(m.group(1)), float(m.group(2))
        if not (5.0 <= w <= 700.0 and 5.0 <= h <= 700.0):
            raise ParameterError("body", f"ellipse {w:g} × {h:g} mm: each size must lie within 5–700 mm")
        return Body(f"{w:g}x{h:g}", (w / 2.0, h / 2.0))
    raise ParameterError("body", f"unknown body {spec!r}; use NONE, {', '.join(BODIES)} or an ellipse AxB in mm "
                                 "(lateral × AP, e.g. 200x150)")


def parse_medium(spec: str | None) -> str:
    """The canonical medium name (``air``, ``marrow``, ``pbs``, ``soft_tissue``/``soft-tissue``, ``water``)."""
    if spec is None:
        return "air"
    try:
        name = canonical(str(spec))
    except ParameterError:
        name = ""
    if name not in MEDIA:
        raise ParameterError("medium", f"unknown medium {spec!r}; use one of {', '.join(MEDIA)}")
    return name


# ------------------------------------------------------------------------------------------- chord lengths
def _ellipse_interval(sx, sy, dx, dy, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameters [t0, t1] (clipped to [0, 1]; t0 = t1 where the ray misses) inside x²/a² + y²/b² ≤ 1
    for P(t) = S + t·D in the x–y plane."""
    A = dx * dx / (a * a) + dy * dy / (b * b)
    B = 2.0 * (sx * dx / (a * a) + sy * dy / (b * b))
    C = sx * sx / (a * a) + sy * sy / (b * b) - 1.0
    disc = B * B - 4.0 * A * C
    ok = (disc > 0) & (A > 1e-300)
    root = np.sqrt(np.where(ok, disc, 0.0))
    den = np.where(ok, 2.0 * A, 1.0)
    t0 = np.clip((-B - root) / den, 0.0, 1.0)
    t1 = np.clip((-B + root) / den, 0.0, 1.0)
    t1 = np.where(ok, np.maximum(t1, t0), t0)
    return t0, t1


def _slab(s, d, lo: float, hi: float, t0, t1):
    """Intersect [t0, t1] with the parameters where lo ≤ s + t·d ≤ hi."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        ta = (lo - s) * inv
        tb = (hi - s) * inv
    par = np.abs(d) < 1e-300
    inside = (s >= lo) & (s <= hi)
    tmin = np.where(par, np.where(inside, -np.inf, np.inf), np.minimum(ta, tb))
    tmax = np.where(par, np.where(inside, np.inf, -np.inf), np.maximum(ta, tb))
    return np.maximum(t0, tmin), np.minimum(t1, tmax)


def body_path_lengths(src, dst, body: Body | str | None, box_zyx=None) -> dict[str, np.ndarray]:
    """Path length (mm) of each body material along each ray, outside the specimen's box.

    Parameters
    ----------
    src, dst : array_like (..., 3)
        Ray end points (x, y, z) in mm in the isocentre frame (the rotation axis is x = y = 0); each ray is
        the segment src → dst (source to detector point). They broadcast against each other.
    body : Body, name or None
    box_zyx : ((z0, y0, x0), (z1, y1, x1)) or None
        The specimen's bounding box (mm, isocentre frame, (z, y, x) as a Volume's axes); the body does not
        fill it. None: the body is whole.

    Returns
    -------
    dict material → array (...) of chord lengths in mm (float64); empty for no body.

    Examples
    --------
    A ray through the centre of the 60 × 40 mm wrist along x crosses 60 mm of soft tissue:

    >>> round(float(body_path_lengths([-100.0, 0, 0], [100.0, 0, 0], "wrist")["soft_tissue"]), 6)
    60.0
    """
    body = parse_body(body)
    if body is None:
        return {}
    s = np.asarray(src, float)
    q = np.asarray(dst, float)
    s, q = np.broadcast_arrays(s, q)
    d = q - s
    length = np.sqrt(np.sum(d * d, axis=-1))
    sx, sy, sz = s[..., 0], s[..., 1], s[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    box = None if box_zyx is None else (np.asarray(box_zyx[0], float), np.asarray(box_zyx[1], float))

    def outside_box(a: float, b: float) -> np.ndarray:
        t0, t1 = _ellipse_interval(sx, sy, dx, dy, a, b)
        full = t1 - t0
        if box is None:
            return full
        lo, hi = box
        u0, u1 = _slab(sx, dx, lo[2], hi[2], t0, t1)
        u0, u1 = _slab(sy, dy, lo[1], hi[1], u0, u1)
        u0, u1 = _slab(sz, dz, lo[0], hi[0], u0, u1)
        return full - np.maximum(u1 - u0, 0.0)

    return _regions_to_materials(body, outside_box, length)


def _regions_to_materials(body: Body, outside_box, length) -> dict[str, np.ndarray]:
    regs = body.regions()
    chords = [outside_box(a, b) for _, a, b in regs] + [0.0]
    out: dict[str, np.ndarray] = {}
    for i, (mat, _, _) in enumerate(regs):
        part = np.maximum(chords[i] - chords[i + 1], 0.0) * length
        out[mat] = out[mat] + part if mat in out else part
    return out


def scan_body_paths(geom, us, vs, body: Body | str | None, box_zyx=None) -> dict[str, np.ndarray]:
    """Body path lengths (mm) for every ray of a circular scan: arrays (views, len(vs), len(us)), float32.

    ``geom`` is a :class:`~trabecula.scanner.geometry.ScanGeometry` (its centre-alignment error included),
    ``us``/``vs`` the detector positions (mm) of the rays' columns and rows. Same result as
    :func:`body_path_lengths` for the source → detector-point rays; computed on the (view, column) grid, as
    only the rays' slope along z depends on the row (the source is at z = 0 and the body infinite in z)."""
    body = parse_body(body)
    if body is None:
        return {}
    src, det0, eu, ev = geom.source_and_detector()
    us = np.asarray(us, float)
    vs = np.asarray(vs, float)
    # (views, cols) in-plane ray geometry; ev = +z, so rows only change the z component
    sx, sy = src[:, 0][:, None], src[:, 1][:, None]
    dx = det0[:, 0][:, None] + us[None, :] * eu[:, 0][:, None] - sx
    dy = det0[:, 1][:, None] + us[None, :] * eu[:, 1][:, None] - sy
    dz = (det0[:, 2][:, None, None] + vs[None, :, None] * ev[:, 2][:, None, None] - src[:, 2][:, None, None])
    length = np.sqrt(dx[:, None, :] ** 2 + dy[:, None, :] ** 2 + dz**2)  # (views, rows, cols)
    box = None if box_zyx is None else (np.asarray(box_zyx[0], float), np.asarray(box_zyx[1], float))

    def outside_box(a: float, b: float) -> np.ndarray:
        t0, t1 = _ellipse_interval(sx, sy, dx, dy, a, b)
        full = (t1 - t0)[:, None, :]
        if box is None:
            return full
        lo, hi = box
        u0, u1 = _slab(sx, dx, lo[2], hi[2], t0, t1)
        u0, u1 = _slab(sy, dy, lo[1], hi[1], u0, u1)
        szb = np.broadcast_to(src[:, 2][:, None, None], dz.shape)
        u0, u1 = _slab(szb, dz, lo[0], hi[0], u0[:, None, :], u1[:, None, :])
        return full - np.maximum(u1 - u0, 0.0)

    return {m: v.astype(np.float32) for m, v in _regions_to_materials(body, outside_box, length).items()}


def body_radius_mm(body: Body | str | None) -> float:
    """Largest distance of the body's outline from the rotation axis (mm); 0 for no body."""
    body = parse_body(body)
    return 0.0 if body is None else float(max(body.semi_axes_mm))


__all__ = ["Body", "BODIES", "MEDIA", "parse_body", "parse_medium", "body_path_lengths", "scan_body_paths",
           "body_radius_mm"]
