"""Progress bars (rich) for long work, on stderr so stdout stays clean for tables and JSON.

Set ``TRABECULA_NO_PROGRESS=1`` to silence them (tests do).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

err_console = Console(stderr=True, highlight=False)


def _disabled() -> bool:
    return os.environ.get("TRABECULA_NO_PROGRESS", "") not in ("", "0")


def make_progress(transient: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=_disabled(),
    )


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with make_progress(transient=True) as prog:
        task = prog.add_task(description, total=total)
        for item in iterable:
            yield item
            prog.advance(task)


@contextlib.contextmanager
def progress_steps(description: str, total: int) -> Iterator:
    """Context manager yielding ``advance(n=1, description=None)`` for work that is not a plain loop."""
    with make_progress(transient=True) as prog:
        task = prog.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            if description is not None:
                prog.update(task, description=description)
            prog.advance(task, n)

        yield advance
