"""The webhook notifier: retries what can succeed later (timeouts, 5xx, 429 with
Retry-After) within the cap, gives up on a refusal, and the delivery record makes a
redelivery send nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from models import db
from models.errors import NotificationError, NotificationRejected
from models.notification import Notification
from models.settings import reset_settings
from models.tables import metadata
from tasks.notifier import Message, WebhookNotifier, deliver
from tests.factories import build_city, make_case

MESSAGE = Message(
    key="1:3:assigned",
    case_id=1,
    case_number="JX-2026-000001",
    kind="assigned",
    recipient_id=None,
    unit_code="CMA",
    text="【派单】案件 JX-2026-000001 / Case assigned",
)


def _notifier(
    responses: list[object], sleeps: list[float], retries: int = 5
) -> tuple[WebhookNotifier, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses.pop(0)
        if isinstance(item, Exception):
            raise item
        assert isinstance(item, httpx.Response)
        return item

    client = httpx.Client(transport=httpx.MockTransport(handle))
    return WebhookNotifier(
        "http://receiver.test/n", client=client, max_retries=retries, sleep=sleeps.append
    ), seen


def test_retries_timeouts_5xx_and_429_honouring_retry_after() -> None:
    sleeps: list[float] = []
    notifier, seen = _notifier(
        [
            httpx.ConnectTimeout("slow"),
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200),
        ],
        sleeps,
    )
    notifier.send(MESSAGE)
    assert len(seen) == 4
    assert {r.headers["Idempotency-Key"] for r in seen} == {"1:3:assigned"}
    assert sleeps[2] == 7.0
    assert all(s <= 30 for s in sleeps)


def test_gives_up_after_the_cap_and_on_refusal() -> None:
    sleeps: list[float] = []
    notifier, seen = _notifier([httpx.Response(500)] * 3, sleeps, retries=2)
    with pytest.raises(NotificationError):
        notifier.send(MESSAGE)
    assert len(seen) == 3 and len(sleeps) == 2
    notifier, seen = _notifier([httpx.Response(400)], [])
    with pytest.raises(NotificationRejected):
        notifier.send(MESSAGE)
    assert len(seen) == 1


@pytest.fixture
def file_db(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", f"sqlite:///{tmp_path}/n.db")
    reset_settings()
    db.reset_engines()
    engine = db.get_engine()
    metadata.create_all(engine)
    yield engine
    db.reset_engines()


def test_a_redelivery_sends_nothing_and_a_failure_is_recorded(file_db: Engine) -> None:
    with db.write_session(file_db) as s:
        build_city(s)
        case = make_case(s)
    message = Message(**{**MESSAGE.as_json(), "case_id": case.id})
    sleeps: list[float] = []
    notifier, seen = _notifier([httpx.Response(502), httpx.Response(200)], sleeps, retries=0)
    with pytest.raises(NotificationError):
        deliver(message, notifier=notifier)
    assert deliver(message, notifier=notifier) == "sent"
    assert deliver(message, notifier=notifier) == "already_sent"
    assert len(seen) == 2
    with Session(file_db) as s:
        row = s.exec(select(Notification)).one()
        assert row.attempts == 2 and row.sent_at is not None and row.last_error is None
