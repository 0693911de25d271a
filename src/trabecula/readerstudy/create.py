"""Make a reader study: pick slices reproducibly, render them once alike, store them blinded with the key.

Blinding (what a reader could tell an image's source by) is removed at creation, not at display:

* every image is one axial slice, windowed with the same level/width to 8 bits, cropped to its central
  square and resampled to the same ``size × size`` pixels;
* it is stored as a greyscale PNG written by Pillow with the same settings every time and no ancillary
  chunks (no text, time, physical size, gamma or EXIF): only IHDR, IDAT and IEND; uncompressed (deflate's
  stored blocks), so every image file has the same size whatever it shows;
* its id is random (:func:`secrets.token_hex`), and images are stored in a random order;
* the key (method, source file, slice index) stays in the database and is never sent to a reader.

The slices themselves are picked reproducibly: with the same inputs and ``seed`` the same slices are chosen.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlmodel import Session, select

from trabecula.errors import InputError, ParameterError
from trabecula.readerstudy import db
from trabecula.volume import WINDOW_PRESETS, Volume, window_to_uint8

#: default display: the vertebra study showed every image alike; the trabecular window, 512 px
DEFAULT_WINDOW = WINDOW_PRESETS["trabecular"]
DEFAULT_SIZE = 512


@dataclass(frozen=True)
class StudySummary:
    path: Path
    methods: dict[str, int]
    seed: int
    window: tuple[float, float]
    size: int

    def to_dict(self) -> dict:
        return {"path": str(self.path), "methods": self.methods, "seed": self.seed,
                "window": list(self.window), "size": self.size}


def pick_slices(depths: Sequence[int], n: int, seed: int, method: str = "") -> list[tuple[int, int]]:
    """``n`` distinct (volume index, z) axial slices drawn without replacement from volumes of the given
    depths, reproducibly from ``seed`` (NumPy's PCG64; the same seed and depths give the same slices)."""
    pool = [(v, z) for v, d in enumerate(depths) for z in range(d)]
    if n < 1:
        raise ParameterError("--per-method", f"must be at least 1, got {n}")
    if n > len(pool):
        raise ParameterError("--per-method", f"{method or 'a method'} has {len(pool)} slices, fewer than {n}")
    rng = np.random.default_rng([seed, len(pool)])
    idx = rng.choice(len(pool), size=n, replace=False)
    return [pool[i] for i in sorted(idx)]


def render_slice(image: np.ndarray, window: tuple[float, float], size: int) -> bytes:
    """One 2-D slice as a blinded PNG: windowed to 8 bits, central square, ``size × size`` (bilinear, with
    area averaging when shrinking), greyscale, no ancillary chunks."""
    level, width = window
    u8 = window_to_uint8(np.asarray(image, dtype=np.float32), level, width)
    h, w = u8.shape
    k = min(h, w)
    y0, x0 = (h - k) // 2, (w - k) // 2
    im = PILImage.fromarray(np.ascontiguousarray(u8[y0:y0 + k, x0:x0 + k]), mode="L")
    if k != size:
        im = im.resize((size, size), PILImage.Resampling.BOX if k > size else PILImage.Resampling.BILINEAR)
    buf = io.BytesIO()
    # stored, not deflated: the file's size depends on its dimensions only, never on its content (a noisier
    # method's images would otherwise be larger, a hint of their source)
    im.save(buf, format="PNG", compress_level=0, optimize=False)
    return buf.getvalue()


def create_study(path: str | Path, methods: Mapping[str, Sequence[Volume | str | Path]], *, per_method: int = 30,
                 seed: int = 0, window: tuple[float, float] = DEFAULT_WINDOW, size: int = DEFAULT_SIZE,
                 force: bool = False) -> StudySummary:
    """Create the study database ``path``: ``per_method`` axial slices of each method's volumes.

    ``methods`` maps a method name (the key: e.g. ``"micro-CT"``, ``"pix2pixHD"``) to its volumes or volume
    files (read with :func:`trabecula.io.read_volume`; in HU,
    all shown with the same ``window`` = (level, width)). Slices are drawn with :func:`pick_slices` from
    ``seed`` and rendered with :func:`render_slice`. The database is written under a temporary name and
    renamed when complete.
    """
    path = Path(path)
    if len(methods) < 1:
        raise ParameterError("--images", "give at least one METHOD=VOLUME")
    if not (16 <= size <= 4096):
        raise ParameterError("--size", f"must be 16..4096 pixels, got {size}")
    level, width = (float(window[0]), float(window[1]))
    if not (np.isfinite(level) and np.isfinite(width) and width > 0):
        raise ParameterError("--window", f"need a finite level and a positive width, got {window}")
    if path.exists() and not force:
        raise InputError(path, "already exists (use --force to overwrite)")
    rows: list[db.Image] = []
    counts: dict[str, int] = {}
    for method, vols in methods.items():
        if not method.strip():
            raise ParameterError("--images", "a method name is empty")
        vols = [v if isinstance(v, Volume) else _read(v) for v in vols]
        for v in vols:
            if len(v.shape) != 3:
                raise ParameterError("--images", f"{method}: need 3-D volumes, got shape {v.shape}")
        picks = pick_slices([v.shape[0] for v in vols], per_method, seed, method)
        for vi, z in picks:
            vol = vols[vi]
            png = render_slice(np.asarray(vol.data[z]), (level, width), size)
            source = str(vol.provenance.source or f"{method}[{vi}]") if hasattr(vol, "provenance") else f"{method}[{vi}]"
            rows.append(db.Image(id=secrets.token_hex(8), png=png, method=method, source=source, slice_index=int(z)))
        counts[method] = len(picks)
    secrets.SystemRandom().shuffle(rows)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    engine = db.new_study(tmp)
    try:
        with Session(engine) as s:
            for key, value in (("seed", seed), ("window", json.dumps([level, width])), ("size", size),
                               ("created", time.time()), ("methods", json.dumps(counts))):
                s.add(db.Meta(key=key, value=str(value)))
            s.add_all(rows)
            s.commit()
        with engine.connect() as conn:  # fold the WAL into the file before the rename
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        if force:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        tmp.replace(path)
    except BaseException:
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        raise
    return StudySummary(path, counts, seed, (level, width), size)


def _read(path: str | Path) -> Volume:
    from trabecula.io import read_volume

    return read_volume(path)


def add_reader(path: str | Path, name: str) -> tuple[str, str]:
    """Add a reader with their own random image order; returns ``(reader_id, token)``.

    The token (:func:`secrets.token_urlsafe`, 32 bytes) is returned once and stored only as its SHA-256.
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise ParameterError("NAME", "a reader's name must be 1..200 characters")
    engine = db.open_study(path)
    try:
        with Session(engine) as s:
            ids = list(s.exec(select(db.Image.id)))
            order = list(ids)
            secrets.SystemRandom().shuffle(order)
            reader_id = secrets.token_hex(6)
            token = secrets.token_urlsafe(32)
            s.add(db.Reader(id=reader_id, name=name, token_sha256=db.token_hash(token), order_json=json.dumps(order)))
            s.commit()
    finally:
        engine.dispose()
    return reader_id, token


def reader_link(base_url: str, reader_id: str, token: str) -> str:
    """The personal link of a reader (the token leaves the address bar on the first visit)."""
    return f"{base_url.rstrip('/')}/r/{reader_id}?token={token}"
