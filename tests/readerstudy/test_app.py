"""The web app through FastAPI's TestClient: tokens, Host check, headers, blinding, injection, resume."""

from __future__ import annotations

import io
import re
import sqlite3

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.readerstudy.conftest import FILE_STEMS, METHOD_NAMES
from trabecula.readerstudy import make_app

HOST = "127.0.0.1:8765"


@pytest.fixture
def client(small_study):
    db, readers = small_study
    app = make_app(db)
    with TestClient(app, base_url=f"http://{HOST}") as c:
        yield c, readers, db
    app.state.engine.dispose()


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_missing_or_forged_token_is_401_another_readers_is_403(client):
    c, readers, _ = client
    (r1, t1), (r2, t2), _ = readers
    for path in (f"/r/{r1}", f"/r/{r1}/state", f"/r/{r1}/images/abc"):
        assert c.get(path).status_code == 401
        assert c.get(path, headers=auth("forged" + t1[6:])).status_code == 401
        assert c.get(path, headers=auth(t2)).status_code == 403  # reader 2's token on reader 1's data
    iid = c.get(f"/r/{r1}/state", headers=auth(t1)).json()["order"][0]
    bad = c.put(f"/r/{r1}/answers/{iid}", json={"criterion": "noise", "score": 1}, headers=auth(t2))
    assert bad.status_code == 403
    assert c.get(f"/r/{r1}/state", headers=auth(t1)).json()["answers"] == {}  # nothing changed


def test_token_link_sets_an_httponly_cookie_and_leaves_the_address_bar(client):
    c, readers, _ = client
    rid, tok = readers[0]
    r = c.get(f"/r/{rid}", params={"token": tok}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/r/{rid}"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and f"Path=/r/{rid}" in cookie
    assert c.get(f"/r/{rid}").status_code == 200  # by cookie now


def test_foreign_host_is_421_and_every_response_has_the_security_headers(client):
    c, readers, _ = client
    rid, tok = readers[0]
    r = c.get(f"/r/{rid}", headers={"Host": "evil.example:8765", **auth(tok)})
    assert r.status_code == 421 and "Observer" not in r.text
    for resp in (r, c.get(f"/r/{rid}", headers=auth(tok)), c.get(f"/r/{rid}"), c.get("/static/app.js")):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp


def test_nothing_fetched_as_a_reader_unblinds(client):
    c, readers, db = client
    con = sqlite3.connect(db)
    key = dict(con.execute("select id, method from image"))
    sources = [s for (s,) in con.execute("select source from image")]
    con.close()
    secrets_ = [*METHOD_NAMES, *FILE_STEMS, *(s for s in sources), ".nii", "micro", "pix2pix", "enhanced"]
    orders = []
    for rid, tok in readers:
        pages = [c.get(f"/r/{rid}", headers=auth(tok)).text, c.get(f"/r/{rid}/state", headers=auth(tok)).text,
                 c.get("/static/app.js").text, c.get("/static/app.css").text]
        order = c.get(f"/r/{rid}/state", headers=auth(tok)).json()["order"]
        orders.append(order)
        sizes, nbytes = set(), set()
        for iid in order:
            assert re.fullmatch(r"[0-9a-f]{16}", iid)
            png = c.get(f"/r/{rid}/images/{iid}", headers=auth(tok)).content
            im = Image.open(io.BytesIO(png))
            sizes.add((im.size, im.mode))
            nbytes.add(len(png))
            assert not im.info and "exif" not in im.info
            chunks, pos = [], 8
            while pos < len(png):
                n = int.from_bytes(png[pos:pos + 4], "big")
                chunks.append(png[pos + 4:pos + 8])
                pos += 12 + n
            assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}  # no text, time, pHYs, gamma, EXIF
            pages.append(png.decode("latin-1"))
        assert sizes == {((64, 64), "L")}  # the two methods' different shapes and spacings don't show
        assert len(nbytes) == 1  # stored uncompressed: a noisier method's files are not larger
        for text in pages:
            for s in secrets_:
                assert s.lower() not in text.lower(), s
    # ordering: each reader's order is a different permutation, and methods are not in blocks
    assert len({tuple(o) for o in orders}) == 3 and all(sorted(o) == sorted(key) for o in orders)
    runs = [sum(1 for a, b in zip(o, o[1:], strict=False) if key[a] != key[b]) for o in orders]
    assert max(runs) > 1  # not all of one method, then all of the other, for every reader


def test_sql_and_html_injection_in_free_text_is_inert(small_study, tmp_path):
    from trabecula.readerstudy import add_reader

    db, _ = small_study
    evil = "<script>alert(1)</script>'); DROP TABLE answer;--"
    rid, tok = add_reader(db, evil)
    app = make_app(db)
    with TestClient(app, base_url=f"http://{HOST}") as c:
        page = c.get(f"/r/{rid}", headers=auth(tok)).text
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        iid = c.get(f"/r/{rid}/state", headers=auth(tok)).json()["order"][0]
        assert c.put(f"/r/{rid}/answers/{iid}", json={"comment": evil}, headers=auth(tok)).status_code == 200
        assert c.put(f"/r/{rid}/answers/{iid}", json={"criterion": "noise", "score": 4}, headers=auth(tok)).status_code == 200
        assert c.put(f"/r/{rid}/answers/{iid}", json={"criterion": "noise'; DROP TABLE answer;--", "score": 1},
                     headers=auth(tok)).status_code == 422
        assert c.get(f"/r/{rid}/state", headers=auth(tok)).json()["answers"][iid]["comment"] == evil
    app.state.engine.dispose()
    con = sqlite3.connect(db)
    assert {t for (t,) in con.execute("select name from sqlite_master where type='table'")} >= {"answer", "image", "reader"}
    assert con.execute("select comment from answer").fetchone()[0] == evil
    con.close()
    from trabecula.readerstudy import analyse
    from trabecula.readerstudy.analyse import html_section

    assert "<script>alert" not in html_section(analyse(db))
    from trabecula.readerstudy import write_analysis

    files = write_analysis(analyse(db), tmp_path / "analysis")
    assert set(files) == {"table2", "kendall", "means", "reader_means", "mann_whitney", "html"}
    assert "<script>alert" not in files["html"].read_text() and "Kendall" in files["html"].read_text()


def test_scores_are_validated_saved_per_click_and_resumed(client):
    c, readers, db = client
    rid, tok = readers[0]
    order = c.get(f"/r/{rid}/state", headers=auth(tok)).json()["order"]
    assert c.put(f"/r/{rid}/answers/{order[0]}", json={"criterion": "contrast", "score": 4}, headers=auth(tok)).status_code == 422
    assert c.put(f"/r/{rid}/answers/unknownimage", json={"criterion": "noise", "score": 1}, headers=auth(tok)).status_code == 404
    assert c.put(f"/r/{rid}/answers/{order[0]}", json={"criterion": "contrast", "score": 3}, headers=auth(tok)).status_code == 200
    con = sqlite3.connect(db)  # on disk at once (another connection sees it)
    assert con.execute("select contrast, noise from answer").fetchall() == [(3, None)]
    con.close()
    assert c.put(f"/r/{rid}/answers/{order[0]}", json={"criterion": "noise", "score": 2}, headers=auth(tok)).status_code == 200
    assert c.get(f"/r/{rid}/state", headers=auth(tok)).json()["answers"][order[0]]["noise"] == 2
    assert np.array_equal(c.get(f"/r/{rid}/state", headers=auth(tok)).json()["order"], order)  # same order on return
