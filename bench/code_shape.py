"""The shape of the code: lines of the command line and where internal imports sit.

Counts, for the package under ``SRC`` (default ``src/trabecula``, or an older tree checked out elsewhere):

* the command-line code: every ``cli.py``, ``*/cli.py`` and ``cli/*.py`` file (lines, and non-blank,
  non-comment lines);
* internal imports (``import trabecula...`` / ``from trabecula... import``): how many, and how many of them
  sit inside a function body rather than at module level;
* the start-up time of ``trabecula --help`` (median of 5 runs, the whole process) when ``--help-time`` is given.

Compare two revisions: ``--rev REV`` checks REV out into a temporary git worktree, measures its package and
removes the worktree again:

    .venv/bin/python bench/code_shape.py --help-time .venv/bin/trabecula   # this tree
    .venv/bin/python bench/code_shape.py --rev fd5b98b                      # an earlier revision
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cli_files(src: Path) -> list[Path]:
    return sorted(set(src.rglob("cli.py")) | set((src / "cli").glob("*.py")))


def line_counts(files: list[Path]) -> dict[str, int]:
    lines = code = 0
    for f in files:
        for ln in f.read_text(encoding="utf-8").splitlines():
            lines += 1
            s = ln.strip()
            code += bool(s) and not s.startswith("#")
    return {"files": len(files), "lines": lines, "code_lines": code}


def _internal(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "trabecula" and node.level == 0
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] == "trabecula" for a in node.names)
    return False


def import_placement(src: Path) -> dict[str, float]:
    total = inside = 0
    for f in src.rglob("*.py"):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        in_func: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                in_func.update(id(n) for n in ast.walk(fn) if n is not fn)
        for node in ast.walk(tree):
            if _internal(node):
                total += 1
                inside += id(node) in in_func
    return {"internal_imports": total, "inside_functions": inside,
            "inside_functions_percent": round(100.0 * inside / max(total, 1), 1)}


def help_time(exe: str, runs: int = 5) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def shape(src: Path) -> dict:
    """Command-line line counts and internal-import placement of the package at ``src``."""
    return {"src": str(src), "cli": line_counts(cli_files(src)), **import_placement(src)}


def shape_at_revision(rev: str) -> dict:
    """:func:`shape` of the package at git revision ``rev``, checked out into a temporary worktree."""
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)
        try:
            return {**shape(tree / "src" / "trabecula"), "src": f"{rev}:src/trabecula"}
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=True,
                           capture_output=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src" / "trabecula")
    ap.add_argument("--rev", help="measure this git revision instead (a temporary worktree)")
    ap.add_argument("--help-time", metavar="TRABECULA_EXE", help="also time `TRABECULA_EXE --help`")
    a = ap.parse_args(argv)
    res = shape_at_revision(a.rev) if a.rev else shape(a.src)
    if a.help_time:
        res["help_seconds_median"] = round(help_time(a.help_time), 3)
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
