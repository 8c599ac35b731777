"""The receipt by SMS (tasks/sms.py) through the gateway adapter to the local fake
gateway (api/fake_sms.py): one receipt per case, however often the step runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from api.fake_sms import FakeSmsReceiver
from models import clock, lifecycle, resident_links, tracking
from models.case import Case
from models.db import get_engine, reset_engines
from models.lifecycle import Actor
from models.notification import Notification
from models.resident_tables import ResidentLink
from models.settings import reset_settings
from models.staff import Staff
from models.tables import metadata
from models.unit import Unit
from tasks.sms import (
    ASKING_CONSENT,
    SmsGateway,
    resend_failed_sync,
    return_visit_links_sync,
    send_links_sync,
    send_receipts_sync,
)
from tests.factories import NAME, PHONE, build_city, make_case
from tests.unit.test_resident import _agreed

OTHER = "13912345678"


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


def test_every_complainant_with_a_phone_gets_their_own_receipt_once(cases: list[Case]) -> None:
    """A group case: each complainant may follow it with their own phone's last four
    digits, so each is told the code (once, however often the step runs)."""
    with Session(get_engine(), expire_on_commit=False) as session:
        group = make_case(
            session,
            parties=[
                {"side": "complainant", "kind": "person", "name": NAME, "phone": PHONE},
                {"side": "complainant", "kind": "person", "name": "李四", "phone": OTHER},
                {"side": "complainant", "kind": "person", "name": "赵五"},  # no phone
            ],
        )
        session.commit()
    receiver = FakeSmsReceiver(key="k")
    for _ in range(2):
        send_receipts_sync([group.id or 0], notifier=gateway(receiver, lose_first_answers=1))
    assert sorted(m["to"] for m in receiver.messages) == sorted([PHONE, OTHER])
    assert len({m["key"] for m in receiver.messages}) == 2


def test_a_failed_receipt_is_sent_again_by_the_sweep_once(cases: list[Case]) -> None:
    down = FakeSmsReceiver(key="k")

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    client = httpx.Client(transport=httpx.MockTransport(broken), timeout=1)
    dead = SmsGateway("http://sms.test/messages", key="k", client=client, sleep=lambda _s: None)
    ids = [c.id or 0 for c in cases]
    assert send_receipts_sync(ids, notifier=dead)["failed"] == 3
    assert down.messages == []
    receiver = FakeSmsReceiver(key="k")
    again = resend_failed_sync(notifier=gateway(receiver, lose_first_answers=1))
    assert again == {"receipts_sent": 3, "links_sent": 0, "failed": 0}
    assert resend_failed_sync(notifier=gateway(receiver))["receipts_sent"] == 0
    assert sorted(m["key"] for m in receiver.messages) == sorted(f"{i}:receipt" for i in ids[:3])


def _assigned_with_phones() -> tuple[int, str]:
    with Session(get_engine(), expire_on_commit=False) as session:
        units = {u.code: u for u in session.exec(select(Unit))}
        staff = session.exec(select(Staff).where(Staff.username == "mediatorA")).one()
        case = make_case(
            session,
            parties=[
                {"side": "complainant", "kind": "person", "name": NAME, "phone": PHONE},
                {"side": "respondent", "kind": "firm", "name": "江心市恒达电子厂", "phone": OTHER},
            ],
        )
        case.unit_id, case.unit_path = units["CMA"].id, units["CMA"].path
        case.response_due_at = case.resolution_due_at = clock.now() + timedelta(days=5)
        lifecycle.apply(session, case=case, verb="triaged", actor=Actor.system())
        case.assignee_id = staff.id
        lifecycle.apply(session, case=case, verb="assigned", actor=Actor.system())
        session.commit()
        return case.id or 0, case.number


def test_each_party_gets_its_link_once_and_a_failed_one_is_sent_again(
    cases: list[Case],
) -> None:
    case_id, number = _assigned_with_phones()
    receiver = FakeSmsReceiver(key="k")
    refused = FakeSmsReceiver(key="another key")
    first = send_links_sync([case_id], purposes=ASKING_CONSENT, notifier=gateway(refused))
    assert first["failed"] == 2 and refused.messages == []
    # The sweep sends what failed; a retried step and a second sweep send nothing more.
    assert resend_failed_sync(notifier=gateway(receiver, lose_first_answers=1))["links_sent"] == 2
    send_links_sync([case_id], purposes=ASKING_CONSENT, notifier=gateway(receiver))
    resend_failed_sync(notifier=gateway(receiver))
    by_phone = {m["to"]: m["params"] for m in receiver.messages}
    assert len(receiver.messages) == 2 and set(by_phone) == {PHONE, OTHER}
    firm = by_phone[OTHER]
    assert firm["number"] == number and "/r/link/" in firm["link"] and "调解邀请" in firm["action"]
    assert tracking.code_for(number) not in str(firm) and NAME not in str(firm)
    assert by_phone[PHONE]["link"] != firm["link"]
    with Session(get_engine()) as session:
        rows = session.exec(select(Notification).where(Notification.kind == "resident_link")).all()
        assert len(rows) == 2 and all(r.sent_at is not None for r in rows)
        assert not any(firm["link"][-20:] in r.text for r in rows)  # the row keeps it masked
        assert len(session.exec(select(ResidentLink)).all()) == 2


def test_a_link_issued_but_never_sent_is_sent_by_the_sweep(cases: list[Case]) -> None:
    """The worker stopped between issuing the links and sending them: no notification
    row exists, and the sweep still finds and sends each link once."""
    case_id, _number = _assigned_with_phones()
    with Session(get_engine(), expire_on_commit=False) as session:
        case = session.get(Case, case_id)
        assert case is not None
        resident_links.issue(session, case=case, purposes=ASKING_CONSENT)
        session.commit()
    receiver = FakeSmsReceiver(key="k")
    assert resend_failed_sync(notifier=gateway(receiver))["links_sent"] == 2
    assert resend_failed_sync(notifier=gateway(receiver))["links_sent"] == 0
    assert sorted(m["to"] for m in receiver.messages) == sorted([PHONE, OTHER])


def test_a_due_return_visit_sends_the_terms_and_visit_links_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", f"sqlite:///{tmp_path / 'visit.db'}")
    reset_settings()
    reset_engines()
    metadata.create_all(get_engine())
    start = clock.now()
    with Session(get_engine(), expire_on_commit=False) as session:
        case = _agreed(session, build_city(session))  # the visit is due the next day
        session.commit()
    receiver = FakeSmsReceiver(key="k")
    assert return_visit_links_sync(notifier=gateway(receiver))["sent"] == 0  # not due yet
    previous = clock.get_clock()
    clock.set_clock(clock.VirtualClock(start + timedelta(days=2)))
    try:
        assert return_visit_links_sync(notifier=gateway(receiver))["sent"] == 2
        assert return_visit_links_sync(notifier=gateway(receiver))["sent"] == 0
    finally:
        clock.set_clock(previous)
        reset_engines()
    asked = sorted(m["params"]["action"] for m in receiver.messages)
    purposes = resident_links.PURPOSES
    assert asked == sorted([purposes["terms"].zh, purposes["visit"].zh])
    assert {m["to"] for m in receiver.messages} == {PHONE}
    assert all(case.number == m["params"]["number"] for m in receiver.messages)
