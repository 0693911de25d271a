"""The local web server behind ``trabecula view``: one page, the static assets, the volumes as NIfTI.

It listens on 127.0.0.1 only (an ephemeral port by default), serves from memory and a private temporary
folder (the volumes, written with :func:`trabecula.io.write_volume`), and never fetches anything itself.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from trabecula.errors import ParameterError
from trabecula.render.viewer.assets import VIEWER_CSS, VIEWER_JS, require_assets
from trabecula.render.viewer.page import LAYOUTS, viewer_page
from trabecula.render.viewer.prepare import DEFAULT_MAX_VOXELS, ShownVolume, fit_to_budget
from trabecula.volume import Volume

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".txt": "text/plain; charset=utf-8", ".nii": "application/octet-stream",
          ".html": "text/html; charset=utf-8"}


class ViewerServer:
    """Serve one or more volumes in the NiiVue viewer on ``http://127.0.0.1:PORT/``.

    Parameters
    ----------
    volumes : Volume or sequence of Volume
        Shown side by side, in order, with linked cursor (world mm) and window/level (same units).
    names : labels for the panels (default: the source file names)
    max_voxels : voxel budget per volume; larger volumes are reduced (see :mod:`.prepare`) and the page says so
    port : TCP port on 127.0.0.1; 0 picks a free one
    radiological : display convention (``True``: patient's right on the screen's left, as in radiology)
    layout : ``multiplanar`` (axial, coronal, sagittal + 3-D), ``axial``, ``coronal``, ``sagittal`` or ``render``
    clip : initial 3-D clip plane (depth, azimuth°, elevation°) or ``None``

    Use as a context manager, or call :meth:`start` (background thread) / :meth:`serve_forever` (blocking)
    and :meth:`close`.
    """

    def __init__(self, volumes: Volume | Sequence[Volume], names: Sequence[str] | None = None, *,
                 max_voxels: int = DEFAULT_MAX_VOXELS, port: int = 0, radiological: bool = True,
                 layout: str = "multiplanar", clip: Sequence[float] | None = None, title: str = "trabecula view",
                 progress: bool = True) -> None:
        niivue_js = require_assets()
        vols = [volumes] if isinstance(volumes, Volume) else list(volumes)
        if not vols:
            raise ParameterError("volumes", "give at least one volume")
        if names is not None and len(names) != len(vols):
            raise ParameterError("names", f"{len(names)} names for {len(vols)} volumes")
        if layout not in LAYOUTS:
            raise ParameterError("layout", f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
        if not (isinstance(port, int) and 0 <= port <= 65535):
            raise ParameterError("port", f"must be 0 (any free port) or 1–65535, got {port!r}")
        self._files: dict[str, Path] = {}
        self._thread: threading.Thread | None = None
        self._httpd = _make_server(port, self)  # first: a busy port fails before any work is done
        self._tmp = Path(tempfile.mkdtemp(prefix="trabecula-view-"))
        try:
            from trabecula.io import write_volume

            self.shown: list[ShownVolume] = [
                fit_to_budget(v, max_voxels, name=None if names is None else names[i], progress=progress)
                for i, v in enumerate(vols)
            ]
            for i, sv in enumerate(self.shown):
                path = write_volume(sv.volume, self._tmp / f"volume{i}.nii")
                self._files[f"/volumes/volume{i}.nii"] = path
            urls = [f"volumes/volume{i}.nii" for i in range(len(self.shown))]
            self.page = viewer_page(self.shown, urls, title=title, radiological=radiological, layout=layout,
                                    clip=clip).encode("utf-8")
        except BaseException:
            self._httpd.server_close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self._files.update({
            "/static/viewer.js": VIEWER_JS, "/static/viewer.css": VIEWER_CSS,
            "/static/vendor/niivue.umd.js": niivue_js,
            "/static/vendor/NIIVUE-LICENSE.txt": niivue_js.with_name("NIIVUE-LICENSE.txt"),
        })

    # ------------------------------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> ViewerServer:
        """Serve in a background (daemon) thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="trabecula-view", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`close` is called from another thread (or Ctrl-C)."""
        self._httpd.serve_forever()

    def close(self) -> None:
        """Stop serving and delete the temporary volume files."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- content
    def resource(self, path: str) -> tuple[bytes, str] | None:
        """(body, content type) for a request path, or ``None`` (404)."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path in ("/", "/index.html"):
            return self.page, _TYPES[".html"]
        f = self._files.get(path)
        if f is None or not f.is_file():
            return None
        return f.read_bytes(), _TYPES.get(f.suffix, "application/octet-stream")


def _make_server(port: int, viewer: ViewerServer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "trabecula-view"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            res = viewer.resource(self.path)
            if res is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body, ctype = res
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # noqa: A002 — quiet
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = False

    try:
        return Server(("127.0.0.1", port), Handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ParameterError("port", f"127.0.0.1:{port} is already in use; choose another, or 0 for a free one") from exc
        raise


def view(volumes: Volume | Sequence[Volume], names: Sequence[str] | None = None, *, open_browser: bool = True,
         **kw) -> ViewerServer:
    """Start the viewer in a background thread, optionally open it in the default browser; returns the server.

    Call ``.close()`` on the result when done (or use it as a context manager).
    """
    srv = ViewerServer(volumes, names, **kw).start()
    if open_browser:
        import webbrowser

        webbrowser.open(srv.url)
    return srv
