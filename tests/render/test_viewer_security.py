"""The viewer's server against other web pages and bad clients (issue 20): a foreign ``Host`` (DNS rebinding)
or a missing token gets no volume; the token (URL or cookie) does; stalled connections are closed after the
timeout without piling up threads; an aborted download prints no traceback; every response carries the
security headers; the page still loads in a browser through the token URL, with no CSP violation."""

import base64
import hashlib
import http.client
import logging
import re
import socket
import struct
import threading
import time

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import ParameterError
from trabecula.render.viewer import ViewerServer

TIMEOUT = 1.0  # the servers' socket timeout here (default 30 s)
NII_MAGIC = b"n+1\x00"


@pytest.fixture(scope="module")
def srv():
    # 160³ float32: 16 MB, more than the socket buffers hold, so an aborted download is cut mid-write
    rng = np.random.default_rng(0)
    vol = Volume(rng.normal(size=(160, 160, 160)).astype(np.float32), 0.1, units="grey")
    with ViewerServer(vol, ["patient"], progress=False, timeout=TIMEOUT, workers=4) as s:
        yield s


def request(srv, path, host=None, cookie=None, method="GET"):
    """(status, headers, body) of one request; ``host`` overrides the Host header."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{srv.port}")
        if cookie is not None:
            conn.putheader("Cookie", cookie)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def tok(srv):
    return "?token=" + srv.token


VOLUME = "/volumes/volume0.nii"


@pytest.mark.parametrize("host", [
    "evil.example:{port}",             # a page whose domain was rebound to 127.0.0.1
    "evil.example",
    "127.0.0.1.evil.example:{port}",
    "localhost:{other}",               # the right name, another port
    "127.0.0.1",                       # no port (the server is not on 80)
    "127.0.0.1:{port}@evil.example",
    "",
])
def test_foreign_host_gets_421_and_no_volume_even_with_the_token(srv, host):
    h = host.format(port=srv.port, other=srv.port + 1)
    for path in (VOLUME + tok(srv), "/" + tok(srv), "/static/viewer.js" + tok(srv)):
        status, headers, body = request(srv, path, host=h, cookie=f"{srv.cookie_name}={srv.token}")
        assert status == 421, (h, path)
        assert NII_MAGIC not in body and b"patient" not in body and len(body) < 2000
        assert headers.get("Set-Cookie") is None


def test_a_request_without_host_gets_421(srv):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(f"GET {VOLUME}{tok(srv)} HTTP/1.0\r\n\r\n".encode())
        reply = _read_all(s)
    assert reply.startswith(b"HTTP/1.0 421") and NII_MAGIC not in reply


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_local_hosts_are_served(srv, host):
    status, _, body = request(srv, VOLUME + tok(srv), host=host.format(port=srv.port))
    assert status == 200 and body[344:348] == NII_MAGIC


@pytest.mark.parametrize("path", ["/", "/index.html", VOLUME, "/static/viewer.js", "/static/vendor/niivue.umd.js",
                                  "/nonexistent", "/../etc/passwd"])
@pytest.mark.parametrize("credential", ["none", "wrong token", "wrong cookie", "other port's cookie", "empty token"])
def test_without_the_token_403_and_no_data(srv, path, credential):
    cookie = None
    if credential == "wrong token":
        path += "?token=" + srv.token[:-1] + ("A" if srv.token[-1] != "A" else "B")
    elif credential == "empty token":
        path += "?token="
    elif credential == "wrong cookie":
        cookie = f"{srv.cookie_name}=x{srv.token}"
    elif credential == "other port's cookie":
        cookie = f"trabecula-view-{srv.port + 1}={srv.token}"
    status, headers, body = request(srv, path, cookie=cookie)
    assert status == 403
    assert NII_MAGIC not in body and b"patient" not in body and b"niivue" not in body.lower()
    assert headers.get("Set-Cookie") is None


def test_the_token_in_the_url_gives_200_and_a_strict_httponly_cookie(srv):
    status, headers, body = request(srv, "/" + tok(srv))
    assert status == 200 and b"patient" in body
    cookie = headers.get("Set-Cookie")
    parts = [p.strip() for p in cookie.split(";")]
    assert parts[0] == f"{srv.cookie_name}={srv.token}"
    assert "HttpOnly" in parts and "SameSite=Strict" in parts and "Path=/" in parts
    assert srv.url == f"http://127.0.0.1:{srv.port}/?token={srv.token}"
    assert len(base64.urlsafe_b64decode(srv.token + "=" * (-len(srv.token) % 4))) == 32


def test_the_cookie_alone_gives_the_page_and_the_volume(srv):
    cookie = f"other=1; {srv.cookie_name}={srv.token}; theme=dark"
    status, _, page = request(srv, "/", cookie=cookie)
    assert status == 200 and b"patient" in page
    status, headers, nii = request(srv, VOLUME, cookie=cookie)
    assert status == 200 and nii[344:348] == NII_MAGIC and len(nii) == int(headers["Content-Length"]) > 16e6
    assert headers.get("Set-Cookie") is None  # only a request with the URL token sets it


def test_tokens_differ_between_servers():
    vol = Volume(np.zeros((4, 4, 4), np.int16), 1.0, units="HU")
    with ViewerServer(vol, progress=False) as a, ViewerServer(vol, progress=False) as b:
        assert a.token != b.token and a.cookie_name != b.cookie_name
        assert request(a, "/", cookie=f"{a.cookie_name}={b.token}")[0] == 403


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"timeout": float("nan")}, {"timeout": -1}, {"workers": 0}])
def test_bad_timeout_or_workers_is_a_parameter_error(kw):
    with pytest.raises(ParameterError):
        ViewerServer(Volume(np.zeros((4, 4, 4), np.int16), 1.0), progress=False, **kw)


def _read_all(s) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: 127.0.0.1"])
def test_a_stalled_connection_is_closed_after_the_timeout(srv, sent):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10 * TIMEOUT) as s:
        t0 = time.monotonic()
        s.sendall(sent)
        assert s.recv(65536) == b""  # closed by the server, nothing served
        assert 0.5 * TIMEOUT <= time.monotonic() - t0 < 5 * TIMEOUT


def test_many_stalled_connections_hold_few_threads_and_the_server_recovers(srv):
    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=30) for _ in range(20)]
    try:
        time.sleep(0.3)
        assert threading.active_count() <= before + 1  # the 4 workers already exist; no thread per connection
        for s in socks:
            assert s.recv(1) == b""  # each closed after its timeout (or at once when the queue was full)
    finally:
        for s in socks:
            s.close()
    assert request(srv, "/" + tok(srv))[0] == 200


def test_an_aborted_download_prints_no_traceback(srv, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="trabecula.render.viewer.server")
    for _ in range(3):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(f"GET {VOLUME}{tok(srv)} HTTP/1.0\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode())
        assert s.recv(1024).startswith(b"HTTP/1.0 200")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not a clean close
        s.close()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10 and sum("went away" in r.getMessage() for r in caplog.records) < 3:
        time.sleep(0.05)
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 3 and all(r.levelno == logging.DEBUG for r in gone)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err
    assert request(srv, VOLUME + tok(srv))[0] == 200  # still serving


def test_every_response_carries_the_security_headers(srv):
    page_status, page_headers, page = request(srv, "/" + tok(srv))
    responses = [(page_status, page_headers), request(srv, VOLUME + tok(srv))[:2],
                 request(srv, "/static/vendor/niivue.umd.js" + tok(srv))[:2], request(srv, "/nope" + tok(srv))[:2],
                 request(srv, "/")[:2], request(srv, "/", host="evil.example")[:2],
                 request(srv, "/" + tok(srv), method="POST")[:2]]
    assert [st for st, _ in responses] == [200, 200, 200, 404, 403, 421, 501]
    for _, h in responses:
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["Cache-Control"] == "no-store"
        assert h["Content-Security-Policy"] == srv.csp
    csp = dict(d.strip().split(" ", 1) for d in srv.csp.split(";"))
    assert csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in csp["script-src"] and "unsafe-eval" not in csp["script-src"]
    # the page's one inline script (the start-up call) is allowed by its hash, and nothing else inline
    inline = re.findall(rb"<script>(.*?)</script>", page, re.S)
    assert len(inline) == 1 and b"trabeculaViewer.start" in inline[0]
    digest = base64.b64encode(hashlib.sha256(inline[0]).digest()).decode()
    assert csp["script-src"] == f"'self' 'sha256-{digest}'"


@pytest.mark.slow
def test_the_page_loads_in_a_browser_through_the_token_url_then_by_cookie(srv):
    from trabecula.render.viewer.browser import (
        console_entries,
        console_errors,
        start_chromium,
        stop_chromium,
        wait_for,
    )

    driver = start_chromium(1000, 800)
    try:
        driver.get(srv.base_url)  # no token, no cookie yet
        assert "patient" not in driver.page_source and "403" in driver.page_source
        console_entries(driver)  # reading the log empties it (the 403 is logged)
        driver.get(srv.url)
        wait_for(driver, "window.trabeculaViewer && trabeculaViewer.ready", what="the volume to draw")
        assert console_errors(driver) == []  # a CSP violation is logged as an error
        driver.get(srv.base_url)  # the cookie from the token URL is enough now
        wait_for(driver, "window.trabeculaViewer && trabeculaViewer.ready", what="the volume to draw (cookie)")
        assert console_errors(driver) == []
        assert srv.token not in driver.execute_script("return document.cookie;")  # HttpOnly: scripts cannot read it
    finally:
        stop_chromium(driver)
