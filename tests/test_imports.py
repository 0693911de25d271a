"""Every module of the package imports first, on its own, in a fresh interpreter (no import-order luck),
and the command line starts without loading the heavy stages."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import trabecula

#: modules that run something when imported (``python -m`` entry points)
RUNNERS = {"__main__"}


def all_modules() -> list[str]:
    names = ["trabecula"]
    for info in pkgutil.walk_packages(trabecula.__path__, "trabecula."):
        if info.name.rsplit(".", 1)[-1] not in RUNNERS:
            names.append(info.name)
    return sorted(names)


def _import_alone(name: str) -> tuple[str, int, str]:
    env = {**os.environ, "TRABECULA_NO_PROGRESS": "1"}
    r = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, env=env, timeout=300)
    return name, r.returncode, r.stderr[-2000:]


def test_the_package_has_the_expected_faces():
    mods = all_modules()
    for face in ("trabecula.cli", "trabecula.cli._common", "trabecula.pipeline.vertebra_study",
                 "trabecula.phantom.build", "trabecula.morphometry.voi"):
        assert face in mods
    assert not any(m.endswith(".cli") and m != "trabecula.cli" for m in mods)  # one home for the command line


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(_import_alone, all_modules()))
    failed = [f"{name}: {err.strip().splitlines()[-1] if err.strip() else rc}" for name, rc, err in results if rc]
    assert not failed, "\n".join(failed)


def test_every_name_on_every_package_face_resolves():
    import importlib

    for name in all_modules():
        mod = importlib.import_module(name)
        if hasattr(mod, "__path__"):  # a package: its face lists names that load on first use
            missing = [n for n in getattr(mod, "__all__", []) if not hasattr(mod, n)]
            assert not missing, f"{name}: {missing}"


def test_the_command_line_does_not_load_the_stages():
    code = ("import sys, trabecula.cli; heavy = sorted(m for m in ('numpy', 'scipy', 'numba', 'torch', "
            "'trabecula.volume', 'trabecula.scanner', 'trabecula.morphometry') if m in sys.modules); print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
