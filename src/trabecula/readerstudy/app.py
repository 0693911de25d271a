"""The reader-study web app (FastAPI; :func:`serve` runs it with uvicorn).

Routes (``RID`` a reader's id, ``IID`` an image's random id):

=========================  ======================================================================
``GET /r/RID?token=T``     the personal link: a valid token is put into an ``HttpOnly``, ``SameSite=Strict``
                           cookie for ``/r/RID`` and the browser is redirected to ``/r/RID`` (the token
                           leaves the address bar and history)
``GET /r/RID``             the reader's page
``GET /r/RID/state``       the reader's own image order and own answers (JSON)
``GET /r/RID/images/IID``  one blinded PNG of the reader's study
``PUT /r/RID/answers/IID`` one score ``{"criterion": "noise", "score": 4}`` or ``{"comment": "…"}``,
                           committed before the reply
``GET /static/app.js|css`` the page's script and style (no data)
=========================  ======================================================================

Security (``docs/readerstudy.md``): a request for ``/r/RID/…`` needs a token — ``Authorization: Bearer``,
the cookie, or ``?token=`` — whose SHA-256 matches a reader: none or an unknown one gets ``401``; a valid
token of another reader gets ``403``. A ``Host`` header that is not one of the served names gets ``421``
(DNS rebinding). Every response carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` and :data:`CSP`. SQL is only ever built by
SQLAlchemy with bound parameters; free text is stored as given and shown only through ``textContent`` /
``value`` or :func:`html.escape`.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import Session, select

from trabecula.readerstudy import db
from trabecula.readerstudy.criteria import BY_KEY, CRITERIA, CRITERION_KEYS
from trabecula.readerstudy.page import APP_CSS, APP_JS, reader_page

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                    "Content-Security-Policy": CSP}


class AnswerIn(BaseModel):
    """One click: a score for one criterion, or the comment."""

    criterion: str | None = Field(default=None, max_length=32)
    score: int | None = None
    comment: str | None = Field(default=None, max_length=2000)


def _hostname(host: str | None) -> str | None:
    """The name part of a ``Host`` header (``[::1]:8765`` → ``::1``), lower case; None if malformed."""
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else None
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def served_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` names accepted: the loopback names, ``host`` itself, and for a wildcard bind
    (``0.0.0.0``/``::``) this machine's host name, FQDN and addresses; plus ``extra``."""
    names = set(LOCAL_NAMES) | {n.lower() for n in extra}
    if host in ("0.0.0.0", "::", ""):
        hn = socket.gethostname()
        names |= {hn.lower(), socket.getfqdn().lower()}
        try:
            names |= {ai[4][0] for ai in socket.getaddrinfo(hn, None)}
        except OSError:
            pass
    else:
        names.add(host.strip("[]").lower())
    return frozenset(names)


def make_app(path: str | Path, *, allowed_hosts: Iterable[str] = LOCAL_NAMES) -> FastAPI:
    """The web app over the study database ``path`` (opened here, kept open while the app lives)."""
    engine = db.open_study(path)
    info = db.meta(engine)
    size = int(info.get("size", 512))
    allowed = frozenset(h.lower() for h in allowed_hosts)
    orders: dict[str, list[str]] = {}
    orders_lock = threading.Lock()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if _hostname(request.headers.get("host")) not in allowed:
            resp: Response = Response("misdirected request\n", status_code=421, media_type="text/plain")
        else:
            resp = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            resp.headers[k] = v
        return resp

    def reader_for(request: Request, rid: str) -> db.Reader:
        """The reader ``rid`` if the request carries their token; 401 without a valid token, 403 for
        another reader's."""
        candidates = []
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:].strip())
        if request.cookies.get(f"rs_{rid}"):
            candidates.append(request.cookies[f"rs_{rid}"])
        if request.query_params.get("token"):
            candidates.append(request.query_params["token"])
        other = False
        with Session(engine) as s:
            for tok in candidates[:3]:
                if not tok or len(tok) > 200:
                    continue
                r = s.exec(select(db.Reader).where(db.Reader.token_sha256 == db.token_hash(tok))).first()
                if r is None:
                    continue
                if hmac.compare_digest(r.id, rid):
                    return r
                other = True
        if other:
            raise HTTPException(403, "this link belongs to another reader")
        raise HTTPException(401, "a valid reader token is needed (open your personal link)")

    def order_of(r: db.Reader) -> list[str]:
        with orders_lock:
            if r.id not in orders:
                orders[r.id] = json.loads(r.order_json)
            return orders[r.id]

    @app.get("/static/app.js")
    def app_js() -> Response:
        return Response(APP_JS, media_type="text/javascript; charset=utf-8")

    @app.get("/static/app.css")
    def app_css() -> Response:
        return Response(APP_CSS, media_type="text/css; charset=utf-8")

    @app.get("/r/{rid}")
    def page(request: Request, rid: str) -> Response:
        r = reader_for(request, rid)
        if request.query_params.get("token"):
            resp = RedirectResponse(f"/r/{rid}", status_code=303)
            resp.set_cookie(f"rs_{rid}", request.query_params["token"], path=f"/r/{rid}", httponly=True,
                            samesite="strict", max_age=180 * 86400)
            return resp
        return HTMLResponse(reader_page(r.name, len(order_of(r)), size))

    @app.get("/r/{rid}/state")
    def state(request: Request, rid: str) -> JSONResponse:
        r = reader_for(request, rid)
        with Session(engine) as s:
            rows = s.exec(select(db.Answer).where(db.Answer.reader_id == r.id)).all()
        answers = {a.image_id: {**{k: getattr(a, k) for k in CRITERION_KEYS}, "comment": a.comment} for a in rows}
        return JSONResponse({"order": order_of(r), "answers": answers,
                             "criteria": [{"key": c.key, "points": c.points} for c in CRITERIA]})

    @app.get("/r/{rid}/images/{iid}")
    def image(request: Request, rid: str, iid: str) -> Response:
        r = reader_for(request, rid)
        if iid not in set(order_of(r)):
            raise HTTPException(404, "no such image")
        with Session(engine) as s:
            png = s.exec(select(db.Image.png).where(db.Image.id == iid)).first()
        if png is None:
            raise HTTPException(404, "no such image")
        return Response(png, media_type="image/png")

    @app.put("/r/{rid}/answers/{iid}")
    def answer(request: Request, rid: str, iid: str, body: AnswerIn) -> JSONResponse:
        r = reader_for(request, rid)
        if iid not in set(order_of(r)):
            raise HTTPException(404, "no such image")
        values: dict = {}
        if body.criterion is not None:
            c = BY_KEY.get(body.criterion)
            if c is None:
                raise HTTPException(422, f"unknown criterion (use one of {', '.join(CRITERION_KEYS)})")
            if body.score is None or not (1 <= body.score <= c.points):
                raise HTTPException(422, f"{c.key}: score must be 1..{c.points}")
            values[c.key] = body.score
        if body.comment is not None:
            values["comment"] = body.comment
        if not values:
            raise HTTPException(422, "nothing to save")
        import time

        values["updated"] = time.time()
        stmt = insert(db.Answer).values(reader_id=r.id, image_id=iid, **values)
        stmt = stmt.on_conflict_do_update(index_elements=["reader_id", "image_id"], set_=values)
        with Session(engine) as s:
            s.exec(stmt)
            s.commit()
        return JSONResponse({"saved": True})

    app.state.engine = engine
    return app


def serve(path: str | Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          allowed_hosts: Iterable[str] = ()) -> None:
    """Serve the study with uvicorn until interrupted (one process; SQLite serialises the writes)."""
    import uvicorn

    app = make_app(path, allowed_hosts=served_names(host, allowed_hosts))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_keep_alive=30,
                limit_concurrency=200)
