"""Atomic writes: every output is written under a temporary name beside its target and renamed when
complete, so an interrupted or failed write never leaves a half-written file under the real name."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from trabecula.errors import InputError, OutputExistsError


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    """Refuse to overwrite an existing output unless ``force`` (checked before any work is done)."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError(p)
    return p


def _make_parent(p: Path) -> None:
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(parent, f"cannot create output folder ({exc.strerror})") from exc


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, force: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on failure delete it.

    For a folder output (``directory=True``) the temporary path is created as an empty folder. With
    ``force`` an existing target is replaced only after the new output is complete.
    """
    target = check_writable(path, force)
    _make_parent(target)
    name = target.name
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{name}")  # keeps the suffix libraries read
    if directory:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if not tmp.exists():
        raise RuntimeError(f"writer produced nothing at {tmp}")
    if target.exists():
        if not force:
            _remove(tmp)
            raise OutputExistsError(target)
        old = target.with_name(f".old-{uuid.uuid4().hex[:8]}-{name}")
        os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    else:
        os.replace(tmp, target)
