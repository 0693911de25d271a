"""Cameras: where the renderer looks from, in patient terms.

trabecula's world frame is LPS (+x patient left, +y posterior, +z superior), arrays (z, y, x).
A :class:`Camera` orbits the volume's centre (or ``center_mm``):

* ``azimuth_deg`` turns the eye about the superior axis: 0 = in front of the patient (anterior
  view, patient's left on the image right, as when facing someone), 90 = at the patient's left
  (left lateral view, anterior on the image left), 180 = behind (posterior view), 270 = at the
  patient's right;
* ``elevation_deg`` raises the eye towards the head (+) or the feet (-); ±90 looks straight down /
  up the body axis;
* ``roll_deg`` turns the picture about the viewing direction (clockwise, degrees);
* ``zoom`` scales the picture; at ``zoom=1`` the diagonal of the framed box (the renderer frames the
  box around the visible content) fills the shorter
  image side, so the whole volume is in view from any direction;
* ``fov_deg`` = 0 is a parallel (orthographic) projection — true proportions and a scale bar in mm
  anywhere in the picture; > 0 a perspective camera with that vertical field of view.

The light moves with the camera: it comes from ``light_azimuth_deg`` / ``light_elevation_deg``
relative to the viewing direction (default: from the upper left, behind the viewer's shoulder).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from trabecula.errors import ParameterError


@dataclass(frozen=True)
class Camera:
    """An orbiting camera (angles in degrees; see the module docstring for the conventions)."""

    azimuth_deg: float = 35.0
    elevation_deg: float = 25.0
    zoom: float = 1.0
    roll_deg: float = 0.0
    center_mm: tuple[float, float, float] | None = None
    fov_deg: float = 0.0
    light_azimuth_deg: float = -35.0
    light_elevation_deg: float = 40.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.zoom) and self.zoom > 0):
            raise ParameterError("camera", f"zoom must be positive, got {self.zoom}")
        if not 0.0 <= self.fov_deg < 120.0:
            raise ParameterError("camera", f"fov_deg must lie in [0, 120), got {self.fov_deg}")
        for name in ("azimuth_deg", "elevation_deg", "roll_deg", "light_azimuth_deg", "light_elevation_deg"):
            if not math.isfinite(getattr(self, name)):
                raise ParameterError("camera", f"{name} must be finite")

    def orbit(self, d_azimuth_deg: float) -> Camera:
        """The same camera turned ``d_azimuth_deg`` further about the superior axis."""
        return replace(self, azimuth_deg=self.azimuth_deg + d_azimuth_deg)


#: Named views. ``superior`` looks down the body axis with anterior at the top of the picture.
CAMERA_PRESETS: dict[str, Camera] = {
    "anterior": Camera(azimuth_deg=0.0, elevation_deg=0.0),
    "posterior": Camera(azimuth_deg=180.0, elevation_deg=0.0),
    "lateral": Camera(azimuth_deg=90.0, elevation_deg=0.0),
    "oblique": Camera(azimuth_deg=35.0, elevation_deg=25.0),
    "superior": Camera(azimuth_deg=180.0, elevation_deg=90.0),
}


def camera_preset(name: str | Camera, **changes) -> Camera:
    """A preset camera by name (``anterior``, ``posterior``, ``lateral`` (from the patient's left),
    ``oblique``, ``superior``), optionally with fields changed (``zoom=2``...). A :class:`Camera` is
    passed through (with ``changes`` applied)."""
    if isinstance(name, Camera):
        return replace(name, **changes) if changes else name
    key = str(name).lower()
    if key not in CAMERA_PRESETS:
        raise ParameterError("camera", f"unknown preset {name!r}; use one of {', '.join(CAMERA_PRESETS)}")
    cam = CAMERA_PRESETS[key]
    return replace(cam, **changes) if changes else cam


def _xyz_to_zyx(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, float)[::-1].copy()


def _orbit_frame(az_deg: float, el_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (x, y, z order) from the target to the eye, and the picture's up direction."""
    az, el = math.radians(az_deg), math.radians(el_deg)
    h = np.array([math.sin(az), -math.cos(az), 0.0])  # horizontal direction to the eye (0 → anterior, -y)
    zup = np.array([0.0, 0.0, 1.0])
    eye = math.cos(el) * h + math.sin(el) * zup
    up = -math.sin(el) * h + math.cos(el) * zup
    return eye, up


@dataclass(frozen=True)
class ViewGeometry:
    """Ray set-up of one picture, world mm in (z, y, x) order.

    Pixel (row i, column j) looks along ``forward`` (orthographic) from
    ``corner + j * pixel_mm * right - i * pixel_mm * up`` (with perspective, from ``eye`` through that
    point on the focal plane). ``pixel_mm`` is the pixel size on the focal plane (through the centre).
    """

    forward: np.ndarray
    right: np.ndarray
    up: np.ndarray
    center: np.ndarray
    eye: np.ndarray
    corner: np.ndarray
    pixel_mm: float
    shape: tuple[int, int]
    perspective: bool
    light: np.ndarray  # unit vector towards the light (z, y, x)

    def project(self, point_mm) -> tuple[float, float]:
        """(row, column) of a world point (orthographic exact; perspective through the eye)."""
        p = np.asarray(point_mm, float)
        if self.perspective:
            d = p - self.eye
            depth = float(d @ self.forward)
            focal = float((self.center - self.eye) @ self.forward)
            p = self.eye + d * (focal / depth)
        rel = p - self.corner
        return float(-(rel @ self.up) / self.pixel_mm), float((rel @ self.right) / self.pixel_mm)


def view_geometry(camera: Camera, bounds_lo: np.ndarray, bounds_hi: np.ndarray, shape: tuple[int, int]) -> ViewGeometry:
    """Rays for ``camera`` looking at the world box ``[bounds_lo, bounds_hi]`` (mm, z/y/x) in a picture of
    ``shape`` = (rows, columns) pixels."""
    h, w = shape
    lo, hi = np.asarray(bounds_lo, float), np.asarray(bounds_hi, float)
    center = (lo + hi) / 2.0 if camera.center_mm is None else np.asarray(camera.center_mm, float)
    eye_dir, up = _orbit_frame(camera.azimuth_deg, camera.elevation_deg)
    fwd = -eye_dir
    right = np.cross(fwd, up)
    if camera.roll_deg:
        r = math.radians(camera.roll_deg)
        right, up = math.cos(r) * right - math.sin(r) * up, math.sin(r) * right + math.cos(r) * up
    diag = float(np.linalg.norm(hi - lo))
    pixel = diag / camera.zoom / min(h, w)
    # light: turn the direction towards the eye by the light angles in the camera's frame
    la, le = math.radians(camera.light_azimuth_deg), math.radians(camera.light_elevation_deg)
    light = math.cos(le) * (math.cos(la) * eye_dir + math.sin(la) * right) + math.sin(le) * up
    light /= np.linalg.norm(light)
    fwd_z, right_z, up_z, light_z = (_xyz_to_zyx(v) for v in (fwd, right, up, light))
    if camera.fov_deg > 0:
        dist = (diag / camera.zoom) / 2.0 / math.tan(math.radians(camera.fov_deg) / 2.0) + diag / 2.0
        pixel = 2.0 * dist * math.tan(math.radians(camera.fov_deg) / 2.0) / min(h, w)
        eye = center - fwd_z * dist
        perspective = True
    else:
        eye = center - fwd_z * diag
        perspective = False
    corner = center - right_z * pixel * (w - 1) / 2.0 + up_z * pixel * (h - 1) / 2.0
    return ViewGeometry(fwd_z, right_z, up_z, center, eye, corner, float(pixel), (int(h), int(w)), perspective, light_z)
