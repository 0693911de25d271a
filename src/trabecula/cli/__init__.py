"""The ``trabecula`` command line: a thin typer layer over the Python API.

One module per family of verbs; each verb parses its options, calls one library function and prints:

=====================  ==========================================================
module                 verbs
=====================  ==========================================================
:mod:`.io`             ``info``, ``convert``
:mod:`.phantom`        ``phantom``
:mod:`.scanner`        ``scanners``, ``scan``, ``recon``
:mod:`.measure`        ``measure``
:mod:`.calibrate`      ``calibrate``
:mod:`.iq`             ``iq mtf|nps|noise|cnr``
:mod:`.enhance`        ``pairs``, ``train``, ``enhance``, ``evaluate``
:mod:`.register`       ``register``, ``pair-slices``
:mod:`.render`         ``render``, ``mpr``, ``view``
:mod:`.report`         ``report``
:mod:`.studies`        ``demo``, ``twin-study``
:mod:`.readerstudy`    ``reader-study create|add-reader|serve|analyse``
=====================  ==========================================================

Shared options and parsers live in :mod:`._common`; the application and entry points in :mod:`._app`.
Heavy imports happen inside the verbs, so ``trabecula --help`` stays fast.
"""

# ruff: noqa: I001 — the verb modules register their commands on import, in the order of ``trabecula --help``
from trabecula.cli._app import app, main, run
from trabecula.cli import io, studies, phantom, scanner, measure, calibrate, iq, enhance, register, render, report, readerstudy  # noqa: F401

__all__ = ["app", "main", "run"]
