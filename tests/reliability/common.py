"""What every reliability promise shares: the scale, the result row, throwaway databases
(SQLite files and, when available, PostgreSQL), the real HTTP app on a synchronous
httpx client, and a log collector.

Nothing here fakes the system under test: databases are migrated with the real
migrations, the app is :func:`api.app.create_app`, and the domain is called as the
flows and the API call it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# Before anything reads settings: never touch a developer's ./var or real secrets.
if "TIAOJIE_HOME" not in os.environ:
    os.environ["TIAOJIE_HOME"] = tempfile.mkdtemp(prefix="tiaojie-rel-")
os.environ.setdefault("TIAOJIE_SECRET_KEY", "test-secret-key-for-the-suite-only-0123456789")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="tiaojie-rel-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import anyio.from_thread
import httpx
from sqlalchemy import Engine, create_engine, make_url, text

from models import db
from models.db import write_session
from models.migrate import upgrade
from models.settings import reset_settings
from tests.factories import City, build_city
from tests.migrated import migrated_sqlite
from tests.pgutil import drop_database_forcing

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@dataclass(frozen=True)
class Scale:
    """How hard to push: ``short`` in CI, ``long`` for ``make reliability``."""

    name: str
    seed: int = 20261130

    @property
    def long(self) -> bool:
        return self.name == "long"

    def pick(self, short: T, long: T) -> T:
        return long if self.long else short


SHORT = Scale("short")
LONG = Scale("long")


@dataclass
class PromiseResult:
    """One row of docs/RELIABILITY.md."""

    promise: str
    test: str
    load: str
    faults: str
    result: dict[str, Any]
    passed: bool
    notes: list[str] = field(default_factory=list)

    def figures(self) -> str:
        return ", ".join(f"{k} {_fmt(v)}" for k, v in self.result.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


# --- databases ---------------------------------------------------------------------------


@contextlib.contextmanager
def temp_folder(prefix: str = "tiaojie-rel-") -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Database:
    url: str
    engine: Engine
    city: City

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def prepare(url: str, *, migrated: bool = False) -> Database:
    """Migrate ``url`` with the real migrations (unless it is ``migrated`` already) and
    build the test city in it."""
    engine = db.get_engine(url)
    if not migrated:
        upgrade(engine)
    with write_session(engine) as session:
        city = build_city(session)
    return Database(url=url, engine=engine, city=city)


@contextlib.contextmanager
def sqlite_database() -> Iterator[Database]:
    with temp_folder() as folder:
        # A copy of one file the migrations built once per process (tests/migrated.py).
        database = prepare(migrated_sqlite(folder / "cases.db"), migrated=True)
        try:
            yield database
        finally:
            db.reset_engines()


@contextlib.contextmanager
def use_database(url: str) -> Iterator[None]:
    """Make ``url`` the process default (what tasks and ``get_engine()`` use)."""
    previous = os.environ.get("TIAOJIE_DATABASE_URL")
    os.environ["TIAOJIE_DATABASE_URL"] = url
    reset_settings()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TIAOJIE_DATABASE_URL", None)
        else:
            os.environ["TIAOJIE_DATABASE_URL"] = previous
        reset_settings()


_pg_lock = threading.Lock()
_pg_server: dict[str, str] = {}


def pg_server_url() -> str | None:
    """A PostgreSQL server to create databases on: ``TIAOJIE_TEST_PG_URL``, else a
    throwaway cluster (``scripts/pg-throwaway``) when ``initdb`` is on PATH, else None
    (then CI fails: see :func:`require_pg`)."""
    url = os.environ.get("TIAOJIE_TEST_PG_URL")
    if url:
        return url
    with _pg_lock:
        if "url" in _pg_server:
            return _pg_server["url"]
        if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
            return None
        out = subprocess.run(
            [str(ROOT / "scripts" / "pg-throwaway"), "start"],
            check=True,
            capture_output=True,
            text=True,
            timeout=180,
        ).stdout
        for line in out.splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                _pg_server[key] = shlex.split(value)[0]
        _pg_server["url"] = _pg_server["TIAOJIE_TEST_PG_URL"]
        return _pg_server["url"]


def stop_pg_server() -> None:
    with _pg_lock:
        folder = _pg_server.pop("TIAOJIE_TEST_PG_DIR", None)
        _pg_server.clear()
    if folder:
        subprocess.run(
            [str(ROOT / "scripts" / "pg-throwaway"), "stop", folder], check=False, timeout=60
        )


def require_pg() -> str | None:
    url = pg_server_url()
    if url is None and os.environ.get("CI"):
        raise RuntimeError("CI is set but no PostgreSQL is reachable (TIAOJIE_TEST_PG_URL)")
    return url


@contextlib.contextmanager
def pg_database(server_url: str, *, migrate: bool = True) -> Iterator[Database]:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"rel_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        eng.dispose()
        yield prepare(url)
    finally:
        db.reset_engines()
        drop_database_forcing(admin, name)
        admin.dispose()


# --- the HTTP app ---------------------------------------------------------------------------


class SyncASGI(httpx.BaseTransport):
    """The real ASGI app behind a synchronous ``httpx.Client`` (requests run on one event
    loop in a portal thread; the app's sync endpoints run in its thread pool). App
    exceptions come back as the app's own 500 answer, so they can be counted."""

    def __init__(self, app: Any, portal: anyio.from_thread.BlockingPortal) -> None:
        self.portal = portal
        self.asgi = httpx.ASGITransport(
            app=app, client=("127.0.0.1", 50000), raise_app_exceptions=False
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=content
        )

        async def run() -> httpx.Response:
            answer = await self.asgi.handle_async_request(forwarded)
            body = await answer.aread()
            return httpx.Response(answer.status_code, headers=answer.headers, content=body)

        return self.portal.call(run)


@dataclass
class App:
    app: Any
    client: httpx.Client
    database: Database

    def token(self, username: str) -> str:
        from api.security import create_token
        from models.unit import Unit

        staff = self.database.city.staff[username]
        unit = next((u for u in self.database.city.units.values() if u.id == staff.unit_id), None)
        assert isinstance(unit, Unit | None)
        return create_token(
            subject=str(staff.id), role=staff.role.value, unit=unit.code if unit else None
        )

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


@contextlib.contextmanager
def http_app(database: Database, **settings: Any) -> Iterator[App]:
    from api.app import create_app
    from models.settings import Settings

    app = create_app(Settings(database_url=database.url, **settings))
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        httpx.Client(
            transport=SyncASGI(app, portal), base_url="http://testserver", timeout=60
        ) as client,
    ):
        yield App(app=app, client=client, database=database)


# --- logs ------------------------------------------------------------------------------------


class LogCollector(logging.Handler):
    """Every log record of the process, formatted with its traceback, kept in memory."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a bad format string must not hide the record
            line = f"{record.levelname} {record.name} {record.msg!r} {record.args!r}"
        with self._lock2:
            self.lines.append(line)

    def text(self) -> str:
        with self._lock2:
            return "\n".join(self.lines)


@contextlib.contextmanager
def collect_logs() -> Iterator[LogCollector]:
    collector = LogCollector()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(collector)
    root.setLevel(min(previous, logging.INFO) if previous else logging.INFO)
    try:
        yield collector
    finally:
        root.removeHandler(collector)
        root.setLevel(previous)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
