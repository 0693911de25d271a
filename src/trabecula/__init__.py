"""trabecula — see and measure trabecular bone microstructure with CT.

Stages (one subpackage each, data flowing one way):
``io`` → ``phantom`` → ``scanner`` → ``enhance`` → ``morphometry`` / ``quality`` → ``stats`` →
``render`` / ``report``. The one type that passes between them is :class:`trabecula.Volume`.

Every package face is lazy (PEP 562): names load on first use, so ``import trabecula`` and the command
line's ``--help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from trabecula.errors import InputError, ParameterError, TrabeculaError

__version__ = "0.1.0"

_EXPORTS = {"Volume": "trabecula.volume", "Provenance": "trabecula.volume", "UNITS": "trabecula.volume",
            "as_spacing": "trabecula.volume"}

__all__ = ["__version__", "TrabeculaError", "InputError", "ParameterError", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trabecula' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
