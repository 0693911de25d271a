"""The viewer's web server: what it serves, on which address, and the ``trabecula view`` verb."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import ParameterError
from trabecula.io import read_volume, write_volume
from trabecula.render.viewer import ViewerServer


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


@pytest.fixture(scope="module")
def two_volumes():
    a = np.full((20, 30, 40), -1000, np.int16)
    a[5:10, 5:10, 5:10] = 1200
    big = np.zeros((64, 64, 64), np.float32)
    return [Volume(a, (0.5, 0.4, 0.3), (1, 2, 3), units="HU"), Volume(big, 0.25, units="grey")]


def test_serves_page_assets_and_volumes_on_localhost(two_volumes, tmp_path):
    with ViewerServer(two_volumes, ["ct", "fine"], max_voxels=40_000, progress=False) as srv:
        assert srv.url.startswith("http://127.0.0.1:") and srv.port > 0 and f"?token={srv.token}" in srv.url
        status, ctype, page = _get(srv.url)
        text = page.decode()
        assert status == 200 and ctype.startswith("text/html")
        # units, shape and spacing on the page; the large volume says it was downsampled, from what
        assert "20 × 30 × 40 voxels (z, y, x)" in text and "0.5 × 0.4 × 0.3 mm" in text and "units HU" in text
        assert "downsampled for the browser (block mean, factors 2 × 2 × 2) from 64 × 64 × 64 voxels" in text
        assert text.count("downsampled for the browser") == 1
        for asset in ("static/viewer.js", "static/viewer.css", "static/vendor/niivue.umd.js"):
            status, ctype, body = _get(srv.base_url + asset + "?token=" + srv.token)
            assert status == 200 and len(body) > 500, asset
        assert "http://" not in text and "https://" not in text  # nothing from the internet
        _, _, nii = _get(srv.base_url + "volumes/volume0.nii?token=" + srv.token)
        (tmp_path / "got.nii").write_bytes(nii)
        back = read_volume(tmp_path / "got.nii")
        np.testing.assert_array_equal(back.numpy(), two_volumes[0].numpy())
        assert back.spacing == pytest.approx((0.5, 0.4, 0.3))
        with pytest.raises(urllib.error.HTTPError) as exc:
            _get(srv.base_url + "../etc/passwd?token=" + srv.token)
        assert exc.value.code == 404
    with pytest.raises(OSError):  # closed
        _get(srv.url)


def test_busy_port_is_a_parameter_error(two_volumes):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(ParameterError, match="already in use"):
            ViewerServer(two_volumes[:1], port=port, progress=False)


def test_view_verb_prints_the_url_and_serves(tmp_path):
    vol = write_volume(Volume(np.zeros((8, 8, 8), np.int16), 0.5, units="HU"), tmp_path / "v.nrrd")
    env = dict(os.environ, TRABECULA_NO_PROGRESS="1")
    launcher = "import sys; from trabecula.cli import run; sys.argv[0] = 'trabecula'; run()"  # as the console script
    proc = subprocess.Popen([sys.executable, "-c", launcher, "view", str(vol), "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = None
        t0 = time.monotonic()
        while url is None and time.monotonic() - t0 < 60:
            line = proc.stdout.readline()
            if not line:
                break
            if "serving on" in line:
                url = line.split("serving on", 1)[1].split()[0]
        if url is None:
            proc.terminate()
            pytest.fail(f"no URL printed; stderr: {proc.communicate(timeout=10)[1][-2000:]}")
        assert url.startswith("http://127.0.0.1:")
        status, _, page = _get(url)
        assert status == 200 and b"v.nrrd" in page and b"8 \xc3\x97 8 \xc3\x97 8 voxels" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)
