"""Atomic writes: every output is written under a temporary name beside its target and renamed when
complete, so an interrupted or failed write never leaves a half-written file under the real name."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from trabecula.errors import InputError, OutputExistsError

#: when this process started (well enough: when trabecula's io was first imported); a leftover without a
#: process id that is older than this belongs to an earlier run
_RUN_STARTED = time.time()
#: ``.tmp-PID-HEX-NAME`` (this version) or ``.tmp-HEX-NAME`` (earlier ones); ``.old-`` the same
_LEFTOVER = re.compile(r"\.(?:tmp|old)-(?:(\d+)-)?[0-9a-f]{8}-(.+)")


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


def _process_gone(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill would end the process: never probe there
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # it exists (another user's) or cannot be told: keep its file
    return False


def remove_stale_leftovers(path: str | os.PathLike) -> list[Path]:
    """Remove the ``.tmp-*`` and ``.old-*`` siblings of ``path`` that a killed run left behind: those whose
    owning process (the id in the name) is gone, or, for names without an id, those older than this run.
    Another live run's temporary files are kept. Returns the paths removed."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    removed: list[Path] = []
    try:
        siblings = [q for q in parent.iterdir() if q.name.startswith((".tmp-", ".old-"))]
    except OSError:
        return removed
    for q in siblings:
        m = _LEFTOVER.fullmatch(q.name)
        if not m or m.group(2) != target.name:
            continue
        try:
            older = q.lstat().st_mtime < _RUN_STARTED
        except OSError:
            continue
        stale = _process_gone(int(m.group(1))) if m.group(1) is not None and os.name != "nt" else older
        if stale:
            _remove(q)
            removed.append(q)
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, force: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on failure delete it.

    For a folder output (``directory=True``) the temporary path is created as an empty folder. With
    ``force`` an existing target is replaced only after the new output is complete. The temporary name carries
    the process id, and leftovers of killed runs beside the same target are removed first
    (:func:`remove_stale_leftovers`).
    """
    target = check_writable(path, force)
    _make_parent(target)
    remove_stale_leftovers(target)
    name = target.name
    pid = os.getpid()
    tmp = target.with_name(f".tmp-{pid}-{uuid.uuid4().hex[:8]}-{name}")  # keeps the suffix libraries read
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
        old = target.with_name(f".old-{pid}-{uuid.uuid4().hex[:8]}-{name}")
        os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    else:
        os.replace(tmp, target)
