"""PostgreSQL for the tests in this folder.

The server is the one named by ``TIAOJIE_TEST_PG_URL`` (CI starts a throwaway one, see
``.ci/run``); without it, a throwaway cluster is started here with ``scripts/pg-throwaway``
when ``initdb`` is on PATH, and removed at the end. With neither the tests are skipped,
except when ``CI`` is set: then they fail, so that CI can never pass without them.

Every test gets a database of its own at the newest schema: a copy (``CREATE DATABASE
... TEMPLATE``) of one database that the Alembic migrations brought there once per run,
so the migrations themselves are exercised on PostgreSQL without costing every test a
second of Alembic.
The ``engine`` and ``session`` fixtures of the whole suite are overridden here, so the
unit tests re-collected in this folder run on PostgreSQL unchanged.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from models.db import build_engine, reset_engines
from models.migrate import upgrade
from tests.pgutil import drop_database_forcing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pg-throwaway"

pytestmark = pytest.mark.postgres


def _start_throwaway() -> tuple[str, str]:
    out = subprocess.run(
        [str(SCRIPT), "start"], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    values: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = shlex.split(value)[0]
    return values["TIAOJIE_TEST_PG_URL"], values["TIAOJIE_TEST_PG_DIR"]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server the tests may create databases on."""
    url = os.environ.get("TIAOJIE_TEST_PG_URL")
    if url:
        yield url
        return
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        message = (
            "PostgreSQL tests need TIAOJIE_TEST_PG_URL or initdb/pg_ctl on PATH "
            "(.ci/run starts a throwaway server)"
        )
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set, so this is a failure, not a skip")
        pytest.skip(message)
    url, folder = _start_throwaway()
    try:
        yield url
    finally:
        subprocess.run([str(SCRIPT), "stop", folder], check=False, timeout=60)


@pytest.fixture(scope="session")
def pg_admin(pg_server_url: str) -> Iterator[Engine]:
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    yield admin
    admin.dispose()


def new_database(admin: Engine, server_url: str, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f'GRANT ALL ON DATABASE "{name}" TO CURRENT_USER'))
    url = make_url(server_url).set(database=name)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    engine.dispose()
    return url.render_as_string(hide_password=False)


def drop_database(admin: Engine, url: str) -> None:
    name = make_url(url).database
    assert name is not None
    drop_database_forcing(admin, name)


@pytest.fixture
def pg_url(pg_admin: Engine, pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    url = new_database(pg_admin, pg_server_url)
    try:
        yield url
    finally:
        reset_engines()
        drop_database(pg_admin, url)


@pytest.fixture(scope="session")
def pg_migrated_template(pg_admin: Engine, pg_server_url: str) -> Iterator[str]:
    """The name of a database the migrations brought to the newest schema, to copy."""
    url = new_database(pg_admin, pg_server_url, prefix="migrated")
    eng = build_engine(url)
    upgrade(eng)
    eng.dispose()
    try:
        yield str(make_url(url).database)
    finally:
        drop_database(pg_admin, url)


def copy_database(admin: Engine, server_url: str, template: str) -> str:
    """A new database copied from ``template``. PostgreSQL refuses to copy while a
    session is still on the template; a closed connection's backend may take a moment
    to leave, so the copy is tried again for a few seconds."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    for attempt in range(50):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            break
        except OperationalError as exc:
            if "being accessed by other users" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.1)
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def engine(pg_admin: Engine, pg_server_url: str, pg_migrated_template: str) -> Iterator[Engine]:
    """Overrides the suite's in-memory SQLite engine: PostgreSQL, migrated (a copy of the
    migrated template, see the module's docstring)."""
    url = copy_database(pg_admin, pg_server_url, pg_migrated_template)
    eng = build_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()
        reset_engines()
        drop_database(pg_admin, url)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s
