"""CLI verbs of the report stage: ``trabecula report`` (and ``trabecula view``, the browser viewer)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from trabecula.render.viewer.cli import register as register_view

    register_view(app)
