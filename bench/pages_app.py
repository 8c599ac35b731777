"""The app the pages section serves (``uvicorn bench.pages_app:app``): the real app
(``api.app:app``), unchanged, plus one bench-only route,
``GET /bench/plain/{name}?p=<JSON parameters>``, that runs a page's plain query
(:mod:`bench.plain_queries`) on the app's engine and answers its rows as JSON.

Through the same process, middleware and HTTP client as the pages, it is the plain
query's figure with the HTTP round trip included: a page is then compared with what
fetching just its rows costs over HTTP, next to the strict figure (the plain query in
the bench's own process)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from fastapi import Request, Response
from sqlalchemy import text

from api.app import app
from bench.plain_queries import plain_queries

__all__ = ["app"]


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


@app.get("/bench/plain/{name}", include_in_schema=False)
def plain(request: Request, name: str, p: str = "{}") -> Response:
    engine = request.app.state.engine
    sql = plain_queries(engine.dialect.name).get(name)
    if sql is None:
        return Response(status_code=404)
    with engine.connect() as con:
        rows = con.execute(text(sql), json.loads(p)).all()
    body = json.dumps([[_value(v) for v in row] for row in rows], ensure_ascii=False)
    return Response(body, media_type="application/json")
