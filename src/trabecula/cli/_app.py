"""The typer application, the console and the entry points of the ``trabecula`` command line.

Every verb module of :mod:`trabecula.cli` registers its commands on :data:`app`; :func:`main` runs them
and turns user errors (:class:`trabecula.TrabeculaError`) into one line on stderr and exit code 2, with
the traceback only under ``--debug``.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Annotated

import click
import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class _State:
    debug = False
    #: warnings and log records of third-party libraries, held until the run ends: printed after a run that
    #: succeeds, dropped after an error (whose one line says what went wrong)
    held: list[str] = []  # noqa: RUF012


state = _State()

def _plain_flags(params: list) -> list:
    """Boolean flags take no value: give them an empty metavar so that no help renderer shows ``<bool>``.

    typer (0.2x) labels every option with its type, and its rich help panels print that label for flags
    too (``--force <bool>``); click's plain help leaves it out only as long as nothing switches the help to
    rich. The empty metavar is read by help only; parsing and behaviour are click's as before.
    """
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:  # typer's options are not click.Option subclasses
            p.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: click.Context) -> list:
        return _plain_flags(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: click.Context) -> list:
        return _plain_flags(super().get_params(ctx))


class Typer(typer.Typer):
    """trabecula's typer application: plain click help and flags shown as flags, for every verb registered
    on it (:data:`app`) or on a sub-application made with this class (``trabecula iq``)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("cls", _Group)
        kwargs.setdefault("rich_markup_mode", None)  # click's plain help: rich help panels cost 0.1 s of start-up
        super().__init__(**kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs):
        return super().command(name, cls=cls or _Command, **kwargs)


app = Typer(
    name="trabecula",
    help="See and measure trabecular bone microstructure with CT: scanner twin, enhancement, morphometry, rendering.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from trabecula import __version__

        out.print(f"trabecula {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", callback=_version, is_eager=True)] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
    max_memory: Annotated[str | None, typer.Option("--max-memory", help="Memory budget (e.g. 8G): work that would allocate more is refused before it starts. Default: half the machine's memory, or $TRABECULA_MAX_MEMORY.")] = None,
    anonymise_provenance: Annotated[bool, typer.Option("--anonymise-provenance", help="Keep only base names of files and folders in every written output's provenance, and drop descriptions and identifiers (SeriesDescription, PatientName …).")] = False,
) -> None:
    from trabecula.limits import set_memory_budget
    from trabecula.volume import set_anonymise_provenance

    state.debug = debug
    set_memory_budget(max_memory)
    set_anonymise_provenance(anonymise_provenance)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _print_warning(text: str) -> None:
    err.print("[yellow]warning:[/yellow] ", markup=True, highlight=False, end="")
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    """trabecula's own warnings are printed at once; third-party ones (numpy, pydicom, tifffile …) are held
    until the run ends, so that an error stays one line (they often say the same thing in other words)."""
    text = " ".join(str(message).split())
    if issubclass(category, UserWarning) and os.path.abspath(str(filename)).startswith(_PACKAGE_DIR + os.sep):
        _print_warning(text)
    elif text not in state.held:
        state.held.append(text)


class _HoldRecords(logging.Handler):
    """Holds third-party log records of level WARNING and above (see :func:`_show_warning`)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(f"{record.name}: {record.getMessage()}".split())
        except Exception:  # noqa: BLE001 — a malformed record must not break the run
            return
        if text not in state.held:
            state.held.append(text)

    def filter(self, record: logging.LogRecord) -> bool:
        """As a logger filter (for libraries that print through a stream handler of their own): hold the record
        and stop it there."""
        if record.levelno >= self.level:
            self.emit(record)
        return False


#: loggers of libraries that attach their own stream handler (nibabel's prints header fixes such as zero pixdim)
_OWN_HANDLER_LOGGERS = ("nibabel.global",)


def _error(text: str) -> None:
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 internal error, 2 user error)."""
    from trabecula.errors import TrabeculaError

    args = list(sys.argv[1:] if argv is None else argv)
    state.debug = "--debug" in args
    state.held = []
    old_show, old_last = warnings.showwarning, logging.lastResort
    hold = _HoldRecords(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(hold)
    logging.lastResort = hold  # libraries that log without a handler of their own
    for name in _OWN_HANDLER_LOGGERS:
        logging.getLogger(name).addFilter(hold)
    ok = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            app(args=args, prog_name="trabecula", standalone_mode=True)
        ok = True
    except SystemExit as exc:
        code = exc.code
        code = code if isinstance(code, int) else (0 if code is None else 1)
        ok = code == 0
        return code
    except TrabeculaError as exc:
        if state.debug:
            raise
        _error("error: " + " ".join(str(exc).split()))
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        if state.debug:
            raise
        _error(f"error: {exc.filename}: {exc.strerror}")
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except MemoryError:
        if state.debug:
            raise
        _error("error: out of memory (try a smaller crop, or a .zarr input for lazy processing)")
        return 1
    except Exception as exc:  # a bug, not a user error
        if state.debug:
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return 1
    finally:
        warnings.showwarning = old_show
        logging.lastResort = old_last
        root.removeHandler(hold)
        for name in _OWN_HANDLER_LOGGERS:
            logging.getLogger(name).removeFilter(hold)
        _end_run(ok)
    return 0


def _end_run(ok: bool) -> None:
    """Print the held third-party warnings after a run that succeeded (dropped after an error) and reset the
    process settings of the run."""
    from trabecula.volume import set_anonymise_provenance

    held, state.held = state.held, []
    if ok:
        for text in held:
            _print_warning(text)
    set_anonymise_provenance(False)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
