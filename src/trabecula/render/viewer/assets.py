"""The browser viewer's JavaScript: NiiVue, installed from the npm registry at set-up time.

Why npm and not a PyPI package: NiiVue (https://github.com/niivue/niivue, BSD-2-Clause) publishes on npm
a self-contained UMD bundle, ``dist/niivue.umd.js``, that defines the global ``niivue`` (the ``Niivue``
class and its enums) with no further imports, so the same file works as a ``<script src>`` on the served
page and inlined in a self-contained HTML report opened from ``file://``. The only PyPI package that ships
NiiVue, ``ipyniivue``, carries an anywidget ES module whose single export is the widget's ``render``
hook; its ``Niivue`` class is not reachable from outside, so it cannot drive a standalone page.

The version is pinned exactly in ``package.json`` and, with every dependency's hash, in
``package-lock.json`` at the repository root. The set-up (``./dev``) runs ``npm ci`` and then::

    python -m trabecula.render.viewer install-assets node_modules

which copies the bundle and its licence into ``static/vendor/`` beside this module (git-ignored). Nothing
is fetched from the internet when the viewer runs; if the bundle is missing the viewer stops with one line
saying how to install it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from trabecula.errors import InputError

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
NIIVUE_JS = VENDOR_DIR / "niivue.umd.js"
NIIVUE_LICENSE = VENDOR_DIR / "NIIVUE-LICENSE.txt"
NIIVUE_INFO = VENDOR_DIR / "niivue.json"
#: The viewer's own page script and style (tracked in git).
VIEWER_JS = STATIC_DIR / "viewer.js"
VIEWER_CSS = STATIC_DIR / "viewer.css"

#: The NiiVue version the viewer is written against (package.json pins the same).
NIIVUE_VERSION = "0.69.0"

_INSTALL_HINT = ("the browser viewer's JavaScript (NiiVue) is not installed; run ./dev once, or "
                 "`npm ci && python -m trabecula.render.viewer install-assets node_modules` in the repository")

# NiiVue is BSD-2-Clause; its npm package carries the licence only in package.json, so the text is kept here.
_BSD2 = """BSD 2-Clause License

Copyright (c) 2021, Niivue
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


def assets_installed() -> bool:
    """True when the NiiVue bundle has been installed into ``static/vendor/``."""
    return NIIVUE_JS.is_file() and NIIVUE_JS.stat().st_size > 0


def require_assets() -> Path:
    """Path of the NiiVue bundle; raises :class:`InputError` (one line, exit 2) when it is missing."""
    if not assets_installed():
        raise InputError(NIIVUE_JS, _INSTALL_HINT)
    return NIIVUE_JS


def read_asset(path: Path) -> str:
    """Text of a static asset (UTF-8)."""
    return path.read_text(encoding="utf-8")


def install_assets(node_modules: str | os.PathLike = "node_modules", dest: str | os.PathLike | None = None) -> Path:
    """Copy NiiVue's UMD bundle from an ``npm ci`` tree into ``dest`` (default ``static/vendor/``); returns its path.

    Checks that the installed package is the pinned :data:`NIIVUE_VERSION` and that the bundle is a
    self-contained UMD script (it defines the global ``niivue``). Writes atomically (temporary name, rename).
    """
    pkg = Path(node_modules) / "@niivue" / "niivue"
    src = pkg / "dist" / "niivue.umd.js"
    if not src.is_file():
        raise InputError(src, "not found; run `npm ci` in the repository root first")
    meta = json.loads((pkg / "package.json").read_text(encoding="utf-8"))
    if meta.get("version") != NIIVUE_VERSION:
        raise InputError(pkg, f"holds NiiVue {meta.get('version')}, the viewer needs {NIIVUE_VERSION} (run `npm ci`)")
    text = src.read_text(encoding="utf-8")
    if "sA.niivue" not in text[:2000] and "niivue={}" not in text[:2000]:
        raise InputError(src, "is not NiiVue's UMD bundle (no global `niivue`)")
    out = Path(dest) if dest is not None else VENDOR_DIR
    out.mkdir(parents=True, exist_ok=True)
    for target, content in ((out / NIIVUE_LICENSE.name, _BSD2),
                            (out / NIIVUE_INFO.name, json.dumps({"package": "@niivue/niivue", "version": meta["version"],
                                                      "license": meta.get("license"), "file": "dist/niivue.umd.js"},
                                                     indent=2) + "\n"),
                            (out / NIIVUE_JS.name, text)):
        tmp = target.with_name(f".tmp-{target.name}")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, target)
    return out / NIIVUE_JS.name


def main(argv: list[str] | None = None) -> int:
    """``python -m trabecula.render.viewer install-assets [NODE_MODULES]``: install the bundle, print where."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        path = install_assets(args[0] if args else "node_modules")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"installed NiiVue {NIIVUE_VERSION} → {path}")
    return 0
