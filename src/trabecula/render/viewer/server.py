"""The local web server behind ``trabecula view``: one page, the static assets, the volumes as NIfTI.

It listens on 127.0.0.1 only (an ephemeral port by default), serves from memory and a private temporary
folder (the volumes, written with :func:`trabecula.io.write_volume`), and never fetches anything itself.

Other web pages open in the same browser must not be able to read the volumes, so every request is checked
(see ``docs/viewer.md``, *Security*):

* **Host**: only ``127.0.0.1:PORT``, ``localhost:PORT`` and ``[::1]:PORT`` are served; any other ``Host``
  header (a DNS-rebinding page sends its own domain) gets ``421 Misdirected Request`` and no data.
* **Token**: each server draws a random token (:func:`secrets.token_urlsafe`, 32 bytes); :attr:`ViewerServer.url`
  carries it as ``?token=…``. A request with the valid token gets a cookie holding it (``HttpOnly``,
  ``SameSite=Strict``, named after the port), so the page's own follow-up requests (scripts, volumes) pass;
  any request with neither gets ``403 Forbidden`` and no data.
* **Timeouts and a bounded pool**: every connection has a socket timeout (default 30 s, per read and per
  1 MiB written); connections are handled by a fixed number of worker threads, and those beyond a bounded
  queue are closed at once — stalled clients cannot pile up threads.
* A client that goes away mid-download (broken pipe, reset, timeout) costs one debug log line, no traceback.
* Every response carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` and a ``Content-Security-Policy`` allowing
  only this server's own scripts (plus the page's one inline start-up script, by hash) and NiiVue's
  ``data:``/``blob:`` images.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import logging
import math
import queue
import re
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from trabecula.errors import ParameterError
from trabecula.render.viewer.assets import VIEWER_CSS, VIEWER_JS, require_assets
from trabecula.render.viewer.page import LAYOUTS, viewer_page
from trabecula.render.viewer.prepare import DEFAULT_MAX_VOXELS, ShownVolume, fit_to_budget
from trabecula.volume import Volume

log = logging.getLogger(__name__)

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".txt": "text/plain; charset=utf-8", ".nii": "application/octet-stream",
          ".html": "text/html; charset=utf-8"}

#: seconds a connection may stay silent (reading a request) or stalled (taking 1 MiB of a response)
DEFAULT_TIMEOUT = 30.0
#: worker threads per server, and connections that may wait for one (more are closed at once)
DEFAULT_WORKERS = 8
DEFAULT_BACKLOG = 64
_CHUNK = 1 << 20
#: a client that went away: quiet (one debug line), never a traceback
_GONE = (ConnectionError, TimeoutError)  # BrokenPipe, ConnectionReset, ConnectionAborted; socket.timeout


def _inline_script_hashes(page: bytes) -> list[str]:
    """CSP source expressions (``'sha256-…'``) for the page's inline executable scripts (no ``src``, no type)."""
    return ["'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode("ascii") + "'"
            for m in re.finditer(rb"<script>(.*?)</script>", page, re.S)]


def content_security_policy(page: bytes) -> str:
    """The viewer page's Content-Security-Policy: its own origin, the inline start-up script by hash, inline
    styles (the page's ``style`` attributes), and ``data:``/``blob:`` images (NiiVue's font and colour maps)."""
    scripts = " ".join(["'self'", *_inline_script_hashes(page)])
    return ("default-src 'self'; "
            f"script-src {scripts}; "
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; "
            "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class ViewerServer:
    """Serve one or more volumes in the NiiVue viewer on ``http://127.0.0.1:PORT/?token=…``.

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
    timeout : socket timeout in seconds for every connection (reading the request; each 1 MiB written)
    workers : threads that handle connections (at most this many at once; a bounded queue waits)

    :attr:`url` carries the access token (``?token=…``); :attr:`base_url` does not, and :attr:`token` is the
    token itself. Requests need the token (in the query, or the cookie set from it) and a local ``Host``.

    Use as a context manager, or call :meth:`start` (background thread) / :meth:`serve_forever` (blocking)
    and :meth:`close`.
    """

    def __init__(self, volumes: Volume | Sequence[Volume], names: Sequence[str] | None = None, *,
                 max_voxels: int = DEFAULT_MAX_VOXELS, port: int = 0, radiological: bool = True,
                 layout: str = "multiplanar", clip: Sequence[float] | None = None, title: str = "trabecula view",
                 progress: bool = True, timeout: float = DEFAULT_TIMEOUT, workers: int = DEFAULT_WORKERS) -> None:
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
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ParameterError("timeout", f"must be a positive number of seconds, got {timeout!r}")
        if not (isinstance(workers, int) and 1 <= workers <= 256):
            raise ParameterError("workers", f"must be 1–256, got {workers!r}")
        self.token = secrets.token_urlsafe(32)
        self.timeout = float(timeout)
        self._files: dict[str, Path] = {}
        self._thread: threading.Thread | None = None
        self._httpd = _make_server(port, self, workers)  # first: a busy port fails before any work is done
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
        self.csp = content_security_policy(self.page)
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
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/`` — without the token (a browser that has the cookie can use it)."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        """The address to open: :attr:`base_url` with ``?token=…``."""
        return f"{self.base_url}?token={self.token}"

    @property
    def cookie_name(self) -> str:
        """The cookie that carries the token (named after the port: cookies are shared across ports)."""
        return f"trabecula-view-{self.port}"

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

    # ------------------------------------------------------------------------------------------- access
    def host_allowed(self, host: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (not a rebound foreign domain)."""
        if not host:
            return False
        allowed = {f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"}
        if self.port == 80:
            allowed |= {"127.0.0.1", "localhost", "[::1]"}
        return host.strip().lower() in allowed

    def token_ok(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode("utf-8", "replace"),
                                                       self.token.encode("ascii"))

    def cookie_token(self, header: str | None) -> str | None:
        """This server's token from a ``Cookie`` header (other cookies, malformed ones, ignored)."""
        for part in (header or "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name == self.cookie_name:
                return value.strip().strip('"')
        return None

    # ------------------------------------------------------------------------------------------- content
    def resource(self, path: str) -> tuple[bytes | Path, str] | None:
        """(body or file, content type) for a request path, or ``None`` (404). Access is checked by the handler."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path in ("/", "/index.html"):
            return self.page, _TYPES[".html"]
        f = self._files.get(path)
        if f is None or not f.is_file():
            return None
        return f, _TYPES.get(f.suffix, "application/octet-stream")


def _make_server(port: int, viewer: ViewerServer, workers: int) -> _PoolServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "trabecula-view"
        sys_version = ""
        timeout = viewer.timeout  # StreamRequestHandler sets it on the socket: reads and writes time out

        def end_headers(self) -> None:
            # every response, errors included
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy", viewer.csp)
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            try:
                self._get()
            except _GONE as exc:
                self.close_connection = True
                log.debug("trabecula view: client %s went away during GET %s (%s)",
                          self.client_address[0], self.path.split("?", 1)[0], type(exc).__name__)

        def _get(self) -> None:
            if not viewer.host_allowed(self.headers.get("Host")):
                self.send_error(HTTPStatus.MISDIRECTED_REQUEST, explain="this server answers to 127.0.0.1 only")
                return
            query = parse_qs(urlsplit(self.path).query)
            url_token = (query.get("token") or [None])[0]
            set_cookie = viewer.token_ok(url_token)
            if not (set_cookie or viewer.token_ok(viewer.cookie_token(self.headers.get("Cookie")))):
                self.send_error(HTTPStatus.FORBIDDEN,
                                explain="open the URL that trabecula view printed (it carries the access token)")
                return
            res = viewer.resource(self.path)
            if res is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body, ctype = res
            if isinstance(body, Path):
                with open(body, "rb") as f:
                    size = f.seek(0, 2)
                    f.seek(0)
                    self._head(ctype, size, set_cookie)
                    while chunk := f.read(_CHUNK):
                        self.wfile.write(chunk)
            else:
                self._head(ctype, len(body), set_cookie)
                self.wfile.write(body)

        def _head(self, ctype: str, size: int, set_cookie: bool) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(size))
            if set_cookie:
                self.send_header("Set-Cookie", f"{viewer.cookie_name}={viewer.token}; Path=/; HttpOnly; SameSite=Strict")
            self.end_headers()

        def log_message(self, format, *args) -> None:  # noqa: A002 — quiet
            pass

    try:
        return _PoolServer(("127.0.0.1", port), Handler, workers=workers)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ParameterError("port", f"127.0.0.1:{port} is already in use; choose another, or 0 for a free one") from exc
        raise


class _PoolServer(HTTPServer):
    """An HTTP server whose connections are handled by a fixed number of daemon worker threads.

    Accepted connections wait in a bounded queue; when it is full, a new connection is closed at once. With the
    handler's socket timeout, stalled clients hold at most ``workers`` threads, each for at most the timeout.
    """

    allow_reuse_address = False

    def __init__(self, address, handler, *, workers: int = DEFAULT_WORKERS, backlog: int = DEFAULT_BACKLOG) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=backlog)
        self._workers: list[threading.Thread] = []
        super().__init__(address, handler)  # binds (and calls server_close if that fails)
        self._workers = [threading.Thread(target=self._work, name=f"trabecula-view-worker-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._workers:
            t.start()

    def process_request(self, request, client_address) -> None:
        try:
            self._queue.put_nowait((request, client_address))
        except queue.Full:
            log.debug("trabecula view: too many connections; closing one from %s", client_address[0])
            self.shutdown_request(request)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _GONE):
            log.debug("trabecula view: client %s went away (%s)", client_address[0], type(exc).__name__)
            return
        super().handle_error(request, client_address)  # a real bug: the traceback, as http.server prints it

    def server_close(self) -> None:
        super().server_close()
        while True:  # connections still waiting: close them
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.shutdown_request(item[0])
        for _ in self._workers:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break  # workers are daemon threads; they end with the process


def view(volumes: Volume | Sequence[Volume], names: Sequence[str] | None = None, *, open_browser: bool = True,
         **kw) -> ViewerServer:
    """Start the viewer in a background thread, optionally open it in the default browser; returns the server.

    The URL it opens (and :attr:`ViewerServer.url`) carries the access token. Call ``.close()`` on the result
    when done (or use it as a context manager).
    """
    srv = ViewerServer(volumes, names, **kw).start()
    if open_browser:
        import webbrowser

        webbrowser.open(srv.url)
    return srv
