"""Errors a user can cause, each carrying one line that names the file or parameter at fault.

The CLI turns any :class:`TrabeculaError` into that one line on stderr and exit code 2; anything
else is a bug and keeps its traceback (shown with ``--debug``).
"""

from __future__ import annotations

import os


class TrabeculaError(Exception):
    """A problem with the user's input or settings (exit code 2 on the command line)."""


class InputError(TrabeculaError):
    """A missing, empty, corrupt or unsupported input file or folder."""

    def __init__(self, path: str | os.PathLike | None, message: str):
        self.path = None if path is None else os.fspath(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ParameterError(TrabeculaError):
    """A parameter value that is out of range, malformed or unphysical."""

    def __init__(self, name: str, message: str):
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}")


class OutputExistsError(TrabeculaError):
    """Refusing to overwrite an existing output without ``force``."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: already exists (use --force to overwrite)")
