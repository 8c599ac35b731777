"""Engines and sessions for SQLite (embedded) and PostgreSQL (scale-out).

SQLite is set up for real use: WAL, foreign keys on every connection, a busy timeout,
and ``BEGIN IMMEDIATE`` for write sessions so that a read-then-write transaction takes
the write lock up front and can never deadlock against another writer.

Services only ``flush()``; the boundary (task, flow step, request) opens a session with
:func:`write_session` and it commits once at the end, or rolls back on error.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from models.errors import ConflictError
from models.settings import get_settings

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" listener issue BEGIN itself, so that it can be IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("tiaojie_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def build_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, echo=echo, **kwargs)
        _configure_sqlite(engine)
        return engine
    # PostgreSQL's JIT compiles a query once its estimated cost passes jit_above_cost. The
    # inbox's reach-and-overdue query at a million cases is estimated at 240,000 and ran
    # in 26 ms, but JIT spent 116 ms compiling 63 functions first (EXPLAIN ANALYZE on the
    # bench's kept city): these are short queries answered for people waiting on a page.
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"options": "-c jit=off"},
    )


def _private_sqlite_file(path: Any) -> None:
    """Create the database file readable by its owner only (SQLite gives its -wal and
    -shm files the same mode), whatever the process's umask."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().resolved_database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite:///") and ":memory:" not in url:
                from pathlib import Path

                _private_sqlite_file(Path(url.removeprefix("sqlite:///")))
            engine = build_engine(url)
            _engines[url] = engine
        return engine


def reset_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


# SQLite has one writer at a time, and a connection that finds the lock taken polls for
# it with sleeps of up to 100 ms (its busy handler). Writers of one process therefore
# queue on a Python lock first, which hands over at once: under concurrent requests this
# multiplies write throughput (measured in bench/). Other processes still meet the
# busy timeout. Re-entrant, so a nested write session behaves as before.
_WRITE_LOCK_WAIT_S = 30.0
_write_locks: dict[int, threading.RLock] = {}


def _write_lock(engine: Engine) -> threading.RLock | None:
    if not is_sqlite(engine):
        return None
    key = id(engine.pool)
    lock = _write_locks.get(key)
    if lock is None:
        with _lock:
            lock = _write_locks.setdefault(key, threading.RLock())
    return lock


@contextmanager
def write_session(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose transaction takes the write lock at once and commits at exit."""
    engine = engine or get_engine()
    lock = _write_lock(engine)
    # A lock not obtained in time falls through to SQLite's own busy timeout.
    locked = lock.acquire(timeout=_WRITE_LOCK_WAIT_S) if lock is not None else False
    try:
        with _session_for_write(engine) as session:
            yield session
    finally:
        if locked and lock is not None:
            lock.release()


def _for_write(engine: Engine) -> Engine:
    """The engine with the ``tiaojie_write`` option (BEGIN IMMEDIATE), made once per
    engine and kept on it (a reference cycle the garbage collector frees with it)."""
    held: Engine | None = getattr(engine, "_tiaojie_write_engine", None)
    if held is None or held.pool is not engine.pool:
        held = engine.execution_options(tiaojie_write=True)
        engine._tiaojie_write_engine = held  # type: ignore[attr-defined]
    return held


@contextmanager
def _session_for_write(engine: Engine) -> Iterator[Session]:
    with Session(_for_write(engine), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except StaleDataError as exc:
            session.rollback()
            raise ConflictError(
                "The case was changed by someone else; reload and try again.",
                "案件已被他人修改，请刷新后重试。",
            ) from exc
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(engine: Engine | None = None) -> Iterator[Session]:
    engine = engine or get_engine()
    with Session(engine, expire_on_commit=False) as session:
        yield session


# Free text is masked on every flush (numbers moved to encrypted rows): registered with
# the engine module so that every process that writes has the hook.
# Each case's deadline that counts is kept on the case at every flush (models.overdue).
from models import overdue as _overdue  # noqa: E402, F401
from models import text_numbers as _text_numbers  # noqa: E402, F401
