"""The receipt by SMS (tasks/sms.py) through the gateway adapter to the local fake
gateway (api/fake_sms.py): one receipt per case, however often the step runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from api.fake_sms import FakeSmsReceiver
from models import tracking
from models.case import Case
from models.db import get_engine, reset_engines
from models.notification import Notification
from models.settings import reset_settings
from models.tables import metadata
from tasks.sms import SmsGateway, send_receipts_sync
from tests.factories import NAME, PHONE, build_city, make_case


@pytest.fixture
def cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Case]]:
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", f"sqlite:///{tmp_path / 'sms.db'}")
    reset_settings()
    reset_engines()
    engine = get_engine()
    metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as session:
        build_city(session)
        made = [make_case(session) for _ in range(3)]
        made.append(make_case(session, parties=[]))  # nobody to text
        session.commit()
    yield made
    reset_engines()


def gateway(receiver: FakeSmsReceiver, *, lose_first_answers: int = 0) -> SmsGateway:
    """The adapter on an httpx client whose transport is the fake gateway; the first
    answers can be lost on the way back (the message arrived, the sender never knew)."""
    lost = {"left": lose_first_answers}

    def handle(request: httpx.Request) -> httpx.Response:
        answer = receiver.handle(request)
        if lost["left"] > 0:
            lost["left"] -= 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return answer

    client = httpx.Client(transport=httpx.MockTransport(handle), timeout=1)
    return SmsGateway("http://sms.test/messages", key="k", client=client, sleep=lambda _s: None)


def test_one_receipt_per_case_with_only_the_number_code_and_link(cases: list[Case]) -> None:
    receiver = FakeSmsReceiver(key="k")
    ids = [c.id or 0 for c in cases]
    counts = send_receipts_sync(ids, notifier=gateway(receiver))
    assert counts == {"sent": 3, "already_sent": 0, "no_phone": 1, "failed": 0}
    assert [m["to"] for m in receiver.messages] == [PHONE] * 3
    first = receiver.messages[0]
    code = tracking.code_for(cases[0].number)
    assert first["params"] == {
        "number": cases[0].number,
        "code": code,
        "link": first["params"]["link"],
    }
    assert first["params"]["link"].endswith(f"/r/{code}")
    assert NAME not in str(receiver.messages) and "工资" not in str(receiver.messages)
    with Session(get_engine()) as session:
        rows = session.exec(select(Notification).where(Notification.kind == "receipt")).all()
    assert len(rows) == 3 and all(r.sent_at is not None for r in rows)
    assert not any(code in r.text or code[:9] in r.text for r in rows)


def test_a_retried_step_and_a_lost_answer_still_give_one_receipt(cases: list[Case]) -> None:
    receiver = FakeSmsReceiver(key="k")
    ids = [c.id or 0 for c in cases]
    # The first two answers are lost: the adapter sends again with the same key.
    send_receipts_sync(ids, notifier=gateway(receiver, lose_first_answers=2))
    # The whole step runs again (a retried task, a re-driven intake).
    again = send_receipts_sync(ids, notifier=gateway(receiver))
    assert again["sent"] == 0 and again["already_sent"] == 3
    assert receiver.posts == 5  # three receipts, two of them posted twice
    assert sorted(m["key"] for m in receiver.messages) == sorted(f"{i}:receipt" for i in ids[:3])


def test_a_gateway_that_refuses_the_key_fails_the_receipt_not_the_others(
    cases: list[Case],
) -> None:
    receiver = FakeSmsReceiver(key="another key")
    counts = send_receipts_sync([cases[0].id or 0], notifier=gateway(receiver))
    assert counts["failed"] == 1 and receiver.messages == []
    with Session(get_engine()) as session:
        row = session.exec(select(Notification)).one()
    assert row.sent_at is None and "401" in (row.last_error or "")
