"""The reader study's SQLite database (SQLModel on SQLAlchemy): the study, its images with the key, the
readers, their answers.

One file holds everything. Readers' tokens are stored only as SHA-256 hashes; the key (which method and
source each image came from) lives in :class:`Image` columns that the web app never sends. SQLite runs in
WAL mode with ``synchronous=FULL``: every answer is committed (and on disk) before the click is acknowledged,
so killing the server loses nothing already answered.

Schema changes: :data:`SCHEMA_VERSION` is stored in :class:`Meta`; :func:`open_study` refuses a database
written by a newer schema and upgrades older ones with the steps in :data:`MIGRATIONS` (none yet).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, UniqueConstraint, event
from sqlmodel import Field, Session, SQLModel, create_engine, select

from trabecula.errors import InputError

SCHEMA_VERSION = 1
#: schema version → function(engine) upgrading a database from that version to the next
MIGRATIONS: dict[int, Callable[[Engine], None]] = {}


class Meta(SQLModel, table=True):
    """Study-wide settings, one row per key (schema version, seed, window, image size, creation time)."""

    key: str = Field(primary_key=True)
    value: str


class Image(SQLModel, table=True):
    """One rendered image. ``id`` is the random opaque id readers see; the rest is the key."""

    id: str = Field(primary_key=True)
    png: bytes
    method: str = Field(index=True)
    source: str
    slice_index: int


class Reader(SQLModel, table=True):
    """One reader: a display name, the hash of the personal token, the reader's own image order."""

    id: str = Field(primary_key=True)
    name: str
    token_sha256: str = Field(index=True, unique=True)
    order_json: str
    created: float = Field(default_factory=time.time)


class Answer(SQLModel, table=True):
    """One reader's scores of one image (a column per criterion, filled click by click) and a comment."""

    __table_args__ = (UniqueConstraint("reader_id", "image_id"),)
    id: int | None = Field(default=None, primary_key=True)
    reader_id: str = Field(foreign_key="reader.id", index=True)
    image_id: str = Field(foreign_key="image.id")
    contrast: int | None = None
    noise: int | None = None
    sharpness: int | None = None
    shadow: int | None = None
    texture: int | None = None
    comment: str = ""
    updated: float = Field(default_factory=time.time)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record) -> None:
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def new_study(path: str | Path) -> Engine:
    """Create the tables of a new study database at ``path`` (which must not exist)."""
    path = Path(path)
    engine = _engine(path)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
        s.commit()
    return engine


def open_study(path: str | Path) -> Engine:
    """Open an existing study database, checking (and if needed upgrading) its schema version."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such study database (make one with `trabecula reader-study create`)")
    engine = _engine(path)
    try:
        with Session(engine) as s:
            row = s.get(Meta, "schema_version")
    except Exception as exc:  # not SQLite, or not a study
        engine.dispose()
        raise InputError(path, f"not a reader-study database ({type(exc).__name__})") from None
    if row is None:
        engine.dispose()
        raise InputError(path, "not a reader-study database (no schema version)")
    version = int(row.value)
    if version > SCHEMA_VERSION:
        engine.dispose()
        raise InputError(path, f"written by a newer trabecula (schema {version}; this one reads ≤ {SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](engine)
        version += 1
        with Session(engine) as s:
            s.merge(Meta(key="schema_version", value=str(version)))
            s.commit()
    return engine


def meta(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        return {m.key: m.value for m in s.exec(select(Meta))}
