"""Shared fixtures: an isolated TIAOJIE_HOME per test session, a fresh in-memory
database per test, and a virtual clock."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling

# Before anything imports settings: never touch a developer's ./var or real secrets.
_HOME = Path(tempfile.mkdtemp(prefix="tiaojie-test-"))
os.environ["TIAOJIE_HOME"] = str(_HOME)
os.environ.setdefault("TIAOJIE_SECRET_KEY", "test-secret-key-for-the-suite-only-0123456789")

from sqlalchemy import Engine  # noqa: E402
from sqlmodel import (  # noqa: E402
    Session,
    col,
    select,
)

from models import clock as clock_module  # noqa: E402
from models import overdue  # noqa: E402
from models.case import Case  # noqa: E402
from models.db import build_engine  # noqa: E402
from models.settings import reset_settings  # noqa: E402
from models.tables import metadata  # noqa: E402

# A Monday morning in Shanghai, away from holidays.
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 Asia/Shanghai


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = build_engine("sqlite://")
    metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s
        _check_kept_deadlines(s)


def _check_kept_deadlines(s: Session) -> None:
    """Every test that writes cases checks, at its end, that each case's kept deadline
    is the one the overdue rule gives (models.overdue): whatever wrote the case."""
    if not s.is_active:
        return  # the test left its transaction failed on purpose: nothing was written
    try:
        s.flush()
    except Exception:  # the test's own pending error, which the test asserts
        return
    stale = s.exec(select(col(Case.number)).where(overdue.stale_clause()).limit(5)).all()
    assert not stale, f"cases whose kept deadline is not the rule's: {stale}"


@pytest.fixture
def vclock() -> Iterator[clock_module.VirtualClock]:
    previous = clock_module.get_clock()
    vc = clock_module.VirtualClock(T0)
    clock_module.set_clock(vc)
    yield vc
    clock_module.set_clock(previous)


@pytest.fixture(scope="module")
def demo_city() -> Iterator[Session]:
    """The demo city loaded once per test module into an in-memory database, on a
    virtual clock at :data:`T0`."""
    from models.demo import load_demo_city

    previous = clock_module.get_clock()
    clock_module.set_clock(clock_module.VirtualClock(T0))
    eng = build_engine("sqlite://")
    metadata.create_all(eng)
    try:
        with Session(eng, expire_on_commit=False) as s:
            load_demo_city(s)
            s.commit()
            yield s
    finally:
        clock_module.set_clock(previous)
        eng.dispose()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` first, the rest in their usual order.

    ``make test`` spreads the tests over two workers (pytest-xdist, :class:`_Scopes`),
    each taking the next group as it finishes one. Started last, the groups of a few
    minutes each (the back-test, the scale-out, the unit tests on PostgreSQL) ran alone
    while the other worker had nothing left: started first, the short ones fill in."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


class _Scopes(LoadFileScheduling):
    """A test file goes to one worker, so its module fixtures are built once; the flow
    tests all go to one worker, which then starts one Prefect test server instead of two
    (~30 s each); the reliability promises, independent of each other and minutes long
    together, are shared out one by one."""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        if path.startswith("tests/flows/"):
            return "tests/flows"
        if path == "tests/reliability/test_promises.py":
            return nodeid
        return path


@pytest.hookimpl(optionalhook=True)  # pytest -p no:xdist still runs
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> _Scopes | None:
    """``--dist loadfile`` (``make test``) with the groups of :class:`_Scopes`."""
    return _Scopes(config, log) if config.getoption("dist") == "loadfile" else None
