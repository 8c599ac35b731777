"""The real app on a temporary SQLite file built with the migrations (a copy of one
migrated file, tests/migrated.py) and the test city."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func
from sqlmodel import Session, SQLModel, select

from api.app import create_app
from api.security import create_token
from models.db import get_engine, write_session
from models.settings import Settings
from models.unit import Unit
from tests.factories import City, build_city
from tests.migrated import migrated_sqlite


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


class SyncASGITransport(httpx.BaseTransport):
    """httpx's ASGITransport for a synchronous ``httpx.Client``: each request runs on
    an event loop in a portal thread; app exceptions are raised, never hidden."""

    def __init__(self, app: FastAPI, portal: anyio.from_thread.BlockingPortal) -> None:
        self.portal = portal
        self.asgi = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        chunks = list(request.stream)  # type: ignore[arg-type]
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, stream=_Chunks(chunks)
        )

        async def run() -> httpx.Response:
            answer = await self.asgi.handle_async_request(forwarded)
            content = await answer.aread()
            return httpx.Response(answer.status_code, headers=answer.headers, content=content)

        return self.portal.call(run)


@dataclass
class Api:
    app: FastAPI
    client: httpx.Client
    engine: Engine
    city: City

    def token(self, username: str) -> str:
        staff = self.city.staff[username]
        unit_code = None
        if staff.unit_id is not None:
            with Session(self.engine) as s:
                unit = s.get(Unit, staff.unit_id)
                unit_code = unit.code if unit else None
        return create_token(subject=str(staff.id), role=staff.role.value, unit=unit_code)

    def headers(self, username: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}", **extra}

    def count(self, table: type[SQLModel]) -> int:
        with Session(self.engine) as s:
            return int(s.exec(select(func.count()).select_from(table)).one())

    def as_(self, username: str) -> AsUser:
        return AsUser(self, self.headers(username))


@dataclass
class AsUser:
    api: Api
    auth: dict[str, str]

    def get(self, url: str, **kw: Any) -> Any:
        return self.api.client.get(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.api.client.post(url, headers={**self.auth, **kw.pop("headers", {})}, **kw)


def make_api(**settings: Any) -> Iterator[Api]:
    folder = Path(tempfile.mkdtemp(prefix="tiaojie-api-"))
    url = migrated_sqlite(folder / "api.db")
    engine = get_engine(url)
    with write_session(engine) as session:
        city = build_city(session)
    app = create_app(Settings(database_url=url, **settings))
    with anyio.from_thread.start_blocking_portal() as portal:
        transport = SyncASGITransport(app, portal)
        with httpx.Client(transport=transport, base_url="http://testserver", timeout=30) as client:
            yield Api(app=app, client=client, engine=engine, city=city)
    engine.dispose()


@pytest.fixture
def api() -> Iterator[Api]:
    yield from make_api()


def web_cookie(api: Api, staff_id: int) -> str:
    """A signed-in page session for ``staff_id`` (recorded server-side, as at sign-in)."""
    from api.web.auth import issue_session

    with write_session(api.engine) as session:
        return issue_session(session, staff_id)[0]
