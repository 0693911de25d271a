"""Circular cone-beam geometry in trabecula's world frame, and its mapping to RTK.

Convention (the world frame of :class:`~trabecula.Volume`, mm; z is the rotation axis):

* at gantry angle θ the unit vector towards the source is e_s = (x, y) = (sin θ, cos θ), the lateral
  detector axis is e_t = (cos θ, −sin θ), the detector rows run along +z;
* the source sits at SID·e_s + δ·e_t, the flat detector's centre at −(SDD − SID)·e_s + δ·e_t, where δ is the
  gantry centre-alignment error (0 in a reconstruction, which assumes a perfect gantry);
* a point P projects to u = SDD·(P·e_t − δ)/(SID − P·e_s), v = SDD·P_z/(SID − P·e_s) (mm on the detector);
  as a 3×4 matrix on (x, y, z, 1): [U, V, W] = M·P, u = U/W, v = V/W, W = SID − P·e_s.

This is RTK's ``ThreeDCircularProjectionGeometry`` (Rit et al., J. Phys. Conf. Ser. 489 (2014) 012079) with
its axes relabelled: RTK's X is our x, RTK's Y (its rotation axis) our z, RTK's Z our y; a (z, y, x) array
is handed to RTK transposed to (y, z, x). :func:`to_rtk` builds the RTK object and a test checks that
RTK's matrices equal :meth:`ScanGeometry.matrices`.

A simulation uses only the part of the detector that the object's shadow can reach (plus a margin):
``col0``/``row0`` are the full-detector indices of the first simulated column/row, so the numbers are
exactly those of the full detector restricted to that window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from trabecula.errors import ParameterError


@dataclass(frozen=True)
class ScanGeometry:
    """One circular scan: distances (mm), angles (rad), the detector window (pitch mm, size, offset)."""

    sid: float
    sdd: float
    angles: tuple[float, ...]
    du: float
    dv: float
    n_cols: int
    n_rows: int
    u0: float  # detector u (mm) of the centre of column 0 of this window
    v0: float  # detector v (mm) of the centre of row 0 of this window
    offset: float = 0.0  # centre-alignment error δ (mm at isocentre)

    @property
    def n_views(self) -> int:
        return len(self.angles)

    @property
    def magnification(self) -> float:
        return self.sdd / self.sid

    def u_coords(self) -> np.ndarray:
        return self.u0 + np.arange(self.n_cols) * self.du

    def v_coords(self) -> np.ndarray:
        return self.v0 + np.arange(self.n_rows) * self.dv

    def matrices(self, offset: float | None = None) -> np.ndarray:
        """(n_views, 3, 4) projection matrices on world (x, y, z, 1) → (U, V, W)."""
        d = self.offset if offset is None else offset
        out = np.zeros((self.n_views, 3, 4))
        for k, th in enumerate(self.angles):
            c, s = np.cos(th), np.sin(th)
            out[k] = [[self.sdd * c, -self.sdd * s, 0.0, -self.sdd * d],
                      [0.0, 0.0, self.sdd, 0.0],
                      [-s, -c, 0.0, self.sid]]
        return out

    def source_and_detector(self, offset: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per view: source position S, detector point D0 at (u, v) = (0, 0), unit vectors e_u, e_v (world x, y, z)."""
        d = self.offset if offset is None else offset
        th = np.asarray(self.angles)
        es = np.stack([np.sin(th), np.cos(th), np.zeros_like(th)], axis=1)
        et = np.stack([np.cos(th), -np.sin(th), np.zeros_like(th)], axis=1)
        ez = np.tile([0.0, 0.0, 1.0], (len(th), 1))
        src = self.sid * es + d * et
        det0 = -(self.sdd - self.sid) * es + d * et
        return src, det0, et, ez

    def with_offset(self, offset: float) -> ScanGeometry:
        return ScanGeometry(**{**asdict(self), "offset": float(offset)})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["angles"] = [float(a) for a in self.angles]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ScanGeometry:
        keys = {"sid", "sdd", "angles", "du", "dv", "n_cols", "n_rows", "u0", "v0", "offset"}
        kw = {k: d[k] for k in keys if k in d}
        kw["angles"] = tuple(float(a) for a in kw["angles"])
        return cls(**kw)


def full_angles(views: int, start: float = 0.0) -> tuple[float, ...]:
    """``views`` equally spaced angles (rad) over a full turn."""
    return tuple(float(a) for a in start + 2 * np.pi * np.arange(views) / views)


def object_radius_and_height(shape, spacing, origin, center) -> tuple[float, float, float]:
    """Radius (mm, in the x–y plane about the rotation axis) and z range of a volume's bounding box."""
    sp = np.asarray(spacing, float)
    lo = np.asarray(origin, float) - sp / 2 - np.asarray(center, float)
    hi = lo + np.asarray(shape) * sp
    corners_xy = np.array([[x, y] for x in (lo[2], hi[2]) for y in (lo[1], hi[1])])
    radius = float(np.max(np.hypot(corners_xy[:, 0], corners_xy[:, 1])))
    return radius, float(lo[0]), float(hi[0])


def detector_window(scanner, radius: float, z_lo: float, z_hi: float, margin_px: int = 4,
                    offset: float | None = None, lateral_radius: float | None = None) -> ScanGeometry:
    """The scanner's geometry with the detector cropped to the shadow of a cylinder (radius, z range, mm,
    about the isocentre) plus ``margin_px`` pixels; raises ParameterError if the object does not fit.

    ``lateral_radius`` (≥ ``radius``) widens the columns to the shadow of a wider cylinder (a patient body
    around the object: its projections must not be truncated for the ramp filter) while the rows still
    cover only the object's height."""
    g = scanner.geometry
    sid, sdd = g.sid_mm, g.sdd_mm
    if radius >= sid * 0.9:
        raise ParameterError("phantom", f"object radius {radius:.1f} mm is too large for SID {sid} mm")
    delta = g.center_offset_mm if offset is None else offset
    r_u = radius if lateral_radius is None else max(radius, float(lateral_radius))
    if r_u >= sid * 0.9:
        raise ParameterError("body", f"body radius {r_u:.1f} mm is too large for SID {sid} mm")
    # lateral shadow: tangent rays to the circle of radius r seen from the source
    u_max = sdd * r_u / np.sqrt(sid**2 - r_u**2) + abs(delta) * g.magnification
    zmax = max(abs(z_lo), abs(z_hi))
    v_max = sdd * zmax / (sid - radius)
    c_mid = (g.detector_cols - 1) / 2.0
    r_mid = (g.detector_rows - 1) / 2.0
    c0 = int(np.floor(c_mid - u_max / g.pixel_u_mm)) - margin_px
    c1 = int(np.ceil(c_mid + u_max / g.pixel_u_mm)) + margin_px + 1
    r0 = int(np.floor(r_mid - v_max / g.pixel_v_mm)) - margin_px
    r1 = int(np.ceil(r_mid + v_max / g.pixel_v_mm)) + margin_px + 1
    if c0 < 0 or c1 > g.detector_cols:
        if r_u > radius:
            raise ParameterError("body", f"the body (radius {r_u:.1f} mm) is wider than the detector's field of view "
                                         f"({g.detector_cols * g.pixel_u_iso_mm:.1f} mm at isocentre); its projections "
                                         "would be truncated")
        raise ParameterError("phantom", f"object (radius {radius:.1f} mm) is wider than the detector's field of view "
                                        f"({g.detector_cols * g.pixel_u_iso_mm:.1f} mm at isocentre)")
    if r0 < 0 or r1 > g.detector_rows:
        raise ParameterError("phantom", f"object (z {z_lo:.1f}…{z_hi:.1f} mm) is taller than the detector covers "
                                        f"({g.detector_rows * g.pixel_v_iso_mm:.1f} mm at isocentre); crop it")
    return ScanGeometry(
        sid=sid, sdd=sdd, angles=full_angles(g.views), du=g.pixel_u_mm, dv=g.pixel_v_mm,
        n_cols=c1 - c0, n_rows=r1 - r0,
        u0=(c0 - c_mid) * g.pixel_u_mm, v0=(r0 - r_mid) * g.pixel_v_mm, offset=float(delta),
    )


# ------------------------------------------------------------------------------------------------ RTK
def to_rtk(geom: ScanGeometry, offset: float | None = None):
    """An ``rtk.ThreeDCircularProjectionGeometry`` equal to ``geom`` (angles in degrees for RTK)."""
    from itk import RTK as rtk

    d = geom.offset if offset is None else offset
    g = rtk.ThreeDCircularProjectionGeometry.New()
    for th in geom.angles:
        # RTK: AddProjection(sid, sdd, gantry°, projOffsetX, projOffsetY, outOfPlane°, inPlane°, srcOffsetX, srcOffsetY)
        g.AddProjection(float(geom.sid), float(geom.sdd), float(np.degrees(th)), float(d), 0.0, 0.0, 0.0, float(d), 0.0)
    return g


def rtk_matrices(rtk_geom) -> np.ndarray:
    """RTK's projection matrices (n, 3, 4) expressed on our (x, y, z, 1) with W = SID − P·e_s > 0."""
    import itk

    n = len(rtk_geom.GetGantryAngles())
    out = np.zeros((n, 3, 4))
    for k in range(n):
        m = np.array(itk.array_from_vnl_matrix(rtk_geom.GetMatrix(k).GetVnlMatrix().as_matrix()))
        m = m[:, [0, 2, 1, 3]]  # RTK (X, Y, Z) = our (x, z, y)
        out[k] = -m  # RTK's homogeneous scale is −W
    return out


def volume_to_rtk(array: np.ndarray, spacing, origin):
    """A (z, y, x) float32 array as an ITK image in RTK's axes (X = x, Y = z, Z = y)."""
    import itk

    a = np.ascontiguousarray(np.transpose(np.asarray(array, np.float32), (1, 0, 2)))
    img = itk.image_from_array(a)
    img.SetSpacing([float(spacing[2]), float(spacing[0]), float(spacing[1])])
    img.SetOrigin([float(origin[2]), float(origin[0]), float(origin[1])])
    return img


def volume_from_rtk(img) -> np.ndarray:
    import itk

    return np.ascontiguousarray(np.transpose(itk.array_from_image(img), (1, 0, 2)))


def projections_to_rtk(data: np.ndarray, geom: ScanGeometry):
    """(views, rows, cols) array as RTK's projection stack image (u = cols, v = rows, k = view)."""
    import itk

    img = itk.image_from_array(np.ascontiguousarray(np.asarray(data, np.float32)))
    img.SetSpacing([float(geom.du), float(geom.dv), 1.0])
    img.SetOrigin([float(geom.u0), float(geom.v0), 0.0])
    return img
