"""The real server (uvicorn in a subprocess on 127.0.0.1): a load of 3 readers × 200 images with no lost
answer, and a kill -9 mid-study that loses nothing already acknowledged."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from trabecula.readerstudy import add_reader, create_study
from trabecula.readerstudy.criteria import CRITERIA
from trabecula.volume import Volume


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db, port):
    code = f"from trabecula.readerstudy.app import serve; serve({str(db)!r}, port={port})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start in 60 s")


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scores_for(rid: str, iid: str) -> dict[str, int]:
    """A deterministic score per (reader, image, criterion), to check every answer arrived unchanged."""
    h = int(iid[:8], 16) ^ int(rid[:8], 16)
    return {c.key: 1 + (h >> (3 * k)) % c.points for k, c in enumerate(CRITERIA)}


def make_study(tmp_path, per_method):
    rng = np.random.default_rng(0)
    vols = {m: [Volume(rng.normal(300, 100 * (k + 1), (per_method, 40, 40)).astype(np.float32), 0.1, units="HU")]
            for k, m in enumerate(("A", "B"))}
    db = tmp_path / "load.db"
    create_study(db, vols, per_method=per_method, seed=0, size=32)
    return db, [add_reader(db, f"Observer {k}") for k in (1, 2, 3)]


@pytest.mark.slow
def test_three_readers_score_200_images_each_with_no_lost_answer(tmp_path):
    db, readers = make_study(tmp_path, 100)  # 200 images
    port = free_port()
    proc = start_server(db, port)
    base = f"http://127.0.0.1:{port}"

    def score_all(reader):
        rid, tok = reader
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {tok}"
            order = s.get(f"{base}/r/{rid}/state", timeout=10).json()["order"]
            assert len(order) == 200
            for iid in order:
                for key, val in scores_for(rid, iid).items():
                    r = s.put(f"{base}/r/{rid}/answers/{iid}", json={"criterion": key, "score": val}, timeout=30)
                    assert r.status_code == 200, r.text
        return len(order)

    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(score_all, readers)) == [200, 200, 200]
        elapsed = time.monotonic() - t0
    finally:
        stop_server(proc)
    con = sqlite3.connect(db)
    rows = con.execute("select reader_id, image_id, contrast, noise, sharpness, shadow, texture from answer").fetchall()
    con.close()
    assert len(rows) == 600
    for rid, iid, *vals in rows:
        assert vals == list(scores_for(rid, iid).values())
    print(f"3000 answers in {elapsed:.1f} s")


@pytest.mark.slow
def test_killing_the_server_mid_study_loses_nothing_acknowledged(tmp_path):
    db, readers = make_study(tmp_path, 10)
    rid, tok = readers[0]
    port = free_port()
    proc = start_server(db, port)
    base = f"http://127.0.0.1:{port}"
    acked: list[tuple[str, str, int]] = []
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {tok}"
    order = s.get(f"{base}/r/{rid}/state", timeout=10).json()["order"]
    try:
        for n, iid in enumerate(order):
            for key, val in scores_for(rid, iid).items():
                if n == 12 and key == "sharpness":
                    os.kill(proc.pid, signal.SIGKILL)  # mid-image, no clean shutdown
                    proc.wait()
                try:
                    r = s.put(f"{base}/r/{rid}/answers/{iid}", json={"criterion": key, "score": val}, timeout=10)
                except requests.ConnectionError:
                    break
                if r.status_code == 200:
                    acked.append((iid, key, val))
            else:
                continue
            break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(acked) == 12 * 5 + 2  # everything up to the kill was acknowledged
    proc = start_server(db, port)  # restart: the reader resumes where they were
    try:
        state = s.get(f"{base}/r/{rid}/state", timeout=10).json()
    finally:
        stop_server(proc)
        s.close()
    for iid, key, val in acked:
        assert state["answers"][iid][key] == val
