"""Flow tests: ONE Prefect test harness for the whole session (it costs ~17 s to start),
with PREFECT_HOME in a temp dir, and a fresh case database file per test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="tiaojie-prefect-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")

from sqlalchemy import Engine  # noqa: E402

from models import db  # noqa: E402
from models.case import Case  # noqa: E402
from models.db import write_session  # noqa: E402
from models.enums import CaseStatus, Category  # noqa: E402
from models.settings import reset_settings  # noqa: E402
from models.tables import metadata  # noqa: E402
from tasks import notifier as notifier_module  # noqa: E402
from tests.factories import City, build_city  # noqa: E402

_db_counter = 0


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        assert url
        yield url


@pytest.fixture
def case_db(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A SQLite file of its own per test, used by every session in-process.

    All tests share one Prefect server, whose run keys and event ids are built from
    case ids and whose tags from case numbers: each test's cases get ids and numbers of
    their own (a closed placeholder row moves the id sequence on)."""
    global _db_counter
    _db_counter += 1
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", url)
    monkeypatch.setenv("TIAOJIE_CASE_NUMBER_PREFIX", f"T{_db_counter:03d}")
    reset_settings()
    db.reset_engines()
    engine = db.get_engine()
    metadata.create_all(engine)
    with write_session(engine) as session:
        placeholder = Case(
            id=_db_counter * 10_000,
            number=f"T{_db_counter:03d}-placeholder",
            category=Category.OTHER,
            description="id sequence placeholder",
            status=CaseStatus.WITHDRAWN,
            is_open=False,
            created_at=datetime(2000, 1, 1, tzinfo=UTC),
            updated_at=datetime(2000, 1, 1, tzinfo=UTC),
        )
        session.add(placeholder)
    yield engine
    db.reset_engines()


@pytest.fixture
def city(case_db: Engine) -> City:
    with write_session(case_db) as session:
        return build_city(session)


class Receiver:
    """A notification endpoint on an ``httpx.MockTransport``: counts what arrives."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.keys: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        self.requests.append(body)
        self.keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(200, json={"ok": True})

    def count(self, key: str) -> int:
        return self.keys.count(key)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recv = Receiver()
    client = httpx.Client(transport=httpx.MockTransport(recv.handle), timeout=5)
    notifier_module.set_notifier(
        notifier_module.WebhookNotifier("http://receiver.test/notify", client=client)
    )
    yield recv
    notifier_module.set_notifier(None)
    client.close()


class LoopRunner:
    """One event loop for the whole session, in a thread of its own: Prefect keeps
    clients per loop, and a loop per test would leave their sockets behind."""

    def __init__(self) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 300) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        import asyncio

        async def _shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(_shutdown(), timeout=30)
        # The loop is left running (a daemon thread ends with the process): Prefect's
        # cached API clients hold transports bound to it, and closing it under them
        # leaves sockets for the garbage collector to complain about.


@pytest.fixture(scope="session")
def aloop(prefect_server: str) -> Iterator[LoopRunner]:
    runner = LoopRunner()
    yield runner
    runner.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Prefect's API clients keep pooled sockets to the harness server that the garbage
    # collector finds unclosed; only that exact warning is ignored, and only here.
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(
                pytest.mark.filterwarnings(
                    r"ignore:Exception ignored in. <socket\.socket"
                    ":pytest.PytestUnraisableExceptionWarning"
                )
            )
            item.add_marker(
                pytest.mark.filterwarnings(
                    r"ignore:Exception ignored in. <function _SelectorTransport\.__del__"
                    ":pytest.PytestUnraisableExceptionWarning"
                )
            )
            item.add_marker(pytest.mark.filterwarnings(r"ignore:unclosed <socket:ResourceWarning"))
            item.add_marker(
                pytest.mark.filterwarnings(r"ignore:unclosed transport:ResourceWarning")
            )
