"""Batched notification delivery (used after an escalation sweep): each message is sent
once, recorded, and a failed send is recorded without stopping the others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models.db import get_engine, reset_engines
from models.errors import NotificationError
from models.notification import Notification
from models.settings import reset_settings
from models.tables import metadata
from tasks.notifier import Message, deliver_many
from tests.factories import build_city, make_case


class Recorder:
    """Stands in for the webhook receiver: records what arrives, refuses one key."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.got: list[str] = []

    def send(self, message: Message) -> None:
        if message.key == self.refuse:
            raise NotificationError("receiver down", "接收方不可用")
        self.got.append(message.key)


@pytest.fixture
def case_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", f"sqlite:///{tmp_path / 'n.db'}")
    reset_settings()
    reset_engines()
    engine = get_engine()
    metadata.create_all(engine)
    with Session(engine) as session:
        build_city(session)
        ids = [make_case(session).id for _ in range(3)]
        session.commit()
    yield [i for i in ids if i is not None]
    reset_engines()


def _message(case_id: int, verb: str = "reminded") -> Message:
    return Message(
        key=f"{case_id}:4:{verb}",
        case_id=case_id,
        case_number=f"N{case_id}",
        kind=verb,
        recipient_id=None,
        unit_code="CMA",
        text="【催办】案件将到期 / Reminder",
    )


def test_sends_each_message_once_and_records_it(case_ids: list[int]) -> None:
    receiver = Recorder()
    messages = [_message(i) for i in case_ids]
    assert deliver_many(messages, notifier=receiver)["sent"] == 3
    again = deliver_many(messages, notifier=receiver)
    assert again == {"sent": 0, "already_sent": 3, "failed": 0}
    assert sorted(receiver.got) == sorted(m.key for m in messages)
    with Session(get_engine()) as session:
        rows = session.exec(select(Notification)).all()
    assert len(rows) == 3
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows)


def test_a_failed_send_is_recorded_and_retried_later(case_ids: list[int]) -> None:
    messages = [_message(i) for i in case_ids]
    refused = messages[1].key
    first = deliver_many(messages, notifier=Recorder(refuse=refused))
    assert first == {"sent": 2, "already_sent": 0, "failed": 1}
    with Session(get_engine()) as session:
        row = session.exec(
            select(Notification).where(Notification.idempotency_key == refused)
        ).one()
    assert row.sent_at is None and row.last_error == "receiver down"
    retry = Recorder()
    assert deliver_many(messages, notifier=retry)["sent"] == 1
    assert retry.got == [refused]
