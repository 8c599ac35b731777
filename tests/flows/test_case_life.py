"""One case of each main category from submission to closure, on a virtual clock, with
the workflow steps run by the relay and the human steps done through the domain layer
as the API does them."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from flows.escalation import escalation
from models import workdays
from models.case import Case
from models.clock import VirtualClock
from models.db import read_session, write_session
from models.enums import (
    Category,
    FollowUpOutcome,
    OutboxState,
    PartyKind,
    PartySide,
    ResolvedAnswer,
    SatisfiedAnswer,
)
from models.event import Outbox
from models.follow_up import FollowUp, FollowUpRecord
from models.follow_ups import record_follow_up
from models.mediating import record_consent, record_session, sign_agreement
from models.mediation import AgreementCreate, SessionCreate, TermCreate
from models.notification import Notification
from models.unit import Unit
from tests.factories import City, make_case
from tests.flows.conftest import Receiver
from tests.flows.helpers import accept_and_name, drive, events_of, runs_of, verbs

pytestmark = pytest.mark.prefect

COMPLAINANT = {"side": PartySide.COMPLAINANT, "kind": PartyKind.PERSON, "name": "李四"}

CASES = {
    Category.RELOCATION: dict(
        category=Category.RELOCATION,
        description="旧城改造拆迁，补偿款迟迟未发放，安置房也没有着落。",
        place_code="BB1",
        people_affected=3,
        parties=[
            COMPLAINANT,
            {"side": PartySide.RESPONDENT, "kind": PartyKind.FIRM, "name": "江心市城建拆迁办"},
        ],
    ),
    Category.LABOUR: dict(
        category=Category.LABOUR,
        description="服装厂拖欠三名工人两个月工资，社保也没有缴纳。",
        place_code="BA1",
        people_affected=3,
        parties=[
            COMPLAINANT,
            {"side": PartySide.RESPONDENT, "kind": PartyKind.FIRM, "name": "江心市锦绣服装厂"},
        ],
    ),
    Category.ENVIRONMENT: dict(
        category=Category.ENVIRONMENT,
        description="楼下饭店油烟和噪音扰民，晚上十一点还在营业。",
        place_code="BA2",
        people_affected=2,
        parties=[
            COMPLAINANT,
            {"side": PartySide.RESPONDENT, "kind": PartyKind.FIRM, "name": "老街坊饭店"},
        ],
    ),
}

# The time limits of tests/factories.default_policies by the level of the handling unit.
RESOLUTION_DAYS = {"building": 3, "compound": 5, "community": 13}

TRANSITIONS = {
    "submitted",
    "triaged",
    "assigned",
    "mediation_started",
    "agreement_signed",
    "follow_up_due",
    "closed",
}


@pytest.mark.parametrize("category", list(CASES), ids=lambda c: c.value)
def test_case_from_submission_to_closure(
    case_db: Engine,
    city: City,
    receiver: Receiver,
    vclock: VirtualClock,
    aloop: object,
    category: Category,
) -> None:
    with write_session(case_db) as s:
        case = make_case(s, **CASES[category])
        case_id, number, submitted = case.id, case.number, case.submitted_at
    assert case_id is not None and submitted is not None

    # Intake, assignment and the assignee's notice run as Prefect flows.
    drive(aloop, case_db)
    with read_session(case_db) as s:
        case = s.get(Case, case_id)
        assert case is not None
        assert case.status.value == "assigned"
        assert case.category == category
        unit = s.get(Unit, case.unit_id)
        place = s.exec(select(Unit).where(Unit.code == CASES[category]["place_code"])).one()
        assert unit is not None
        # The lowest unit at or above the place with someone able to handle it: the
        # compound of the building (its grid worker handles every category).
        assert unit.code == place.path.strip("/").split("/")[-2]
        assignee = s.get(type(city.staff["gridA"]), case.assignee_id)
        assert assignee is not None and assignee.unit_id == unit.id
        assert case.resolution_due_at == workdays.add_working_days(
            submitted, RESOLUTION_DAYS[unit.level.value]
        )
        assert case.response_due_at == workdays.add_working_days(submitted, 1)
        assign_key = f"{case_id}:3:assigned"
    assert receiver.count(assign_key) == 1
    assert number in receiver.requests[-1]["text"]
    # The steps of ``triaged`` and ``assigned`` were done by the intake run: delivered
    # without a run of their own, the reason kept.
    with read_session(case_db) as s:
        rows = {o.verb: o for o in s.exec(select(Outbox).where(Outbox.case_id == case_id))}
    for verb in ("triaged", "assigned"):
        assert rows[verb].state == OutboxState.DELIVERED
        assert (rows[verb].last_error or "").startswith("skipped: "), rows[verb].last_error
    assert rows["submitted"].last_error is None

    # The parties consent (as the API records it): the mediation flow starts mediation.
    vclock.advance(timedelta(hours=2))
    committee = "mediatorA" if unit.code == "CPA" else "mediatorB"
    mediator = accept_and_name(case_db, city, case_id, committee)
    with write_session(case_db) as s:
        c = s.get(Case, case_id)
        assert c is not None
        record_consent(
            s, case_id=case_id, party_ids=None, actor=mediator, expected_version=c.version
        )
    drive(aloop, case_db)
    with read_session(case_db) as s:
        c = s.get(Case, case_id)
        assert c is not None and c.status.value == "in_mediation"
        assert c.mediation_due_at is not None

    # A session with minutes, then a signed agreement with one term.
    vclock.advance(timedelta(days=1))
    term_due = workdays.local_date(vclock.now()) + timedelta(days=10)
    with write_session(case_db) as s:
        c = s.get(Case, case_id)
        assert c is not None
        record_session(
            s,
            case_id=case_id,
            data=SessionCreate(
                held_at=vclock.now(),
                place="社区调解室",
                participants="双方",
                minutes="双方陈述，达成初步意向。",
            ),
            actor=mediator,
            expected_version=c.version,
        )
        sign_agreement(
            s,
            case_id=case_id,
            data=AgreementCreate(
                summary="被申请人分期履行。",
                terms=[TermCreate(text="支付第一期款项", due_on=term_due)],
            ),
            actor=mediator,
            expected_version=c.version,
        )
    drive(aloop, case_db)
    with read_session(case_db) as s:
        c = s.get(Case, case_id)
        assert c is not None and c.status.value == "follow_up"
        visits = s.exec(select(FollowUp).where(FollowUp.case_id == case_id)).all()
        assert len(visits) == 2
        first = min(v.due_at for v in visits)
        entered = c.follow_up_at
        assert entered is not None
        # The first return visit is the next working day after the agreement.
        assert workdays.local_date(first) == workdays.next_working_day(workdays.local_date(entered))

    # Return visits: the first leaves the term's visit open (waiting), the second closes.
    for _ in range(2):
        with read_session(case_db) as s:
            open_visit = s.exec(
                select(FollowUp)
                .where(FollowUp.case_id == case_id, FollowUp.done_at == None)  # noqa: E711
                .order_by(FollowUp.due_at)
            ).first()
            assert open_visit is not None
            vclock.set(max(vclock.now(), open_visit.due_at))
        # The sweep reminds the assignee of the visit now due, once however often it runs.
        aloop.run(escalation())  # type: ignore[attr-defined]
        aloop.run(escalation())  # type: ignore[attr-defined]
        assert receiver.count(f"{case_id}:visit{open_visit.id}:follow_up_due") == 1
        with write_session(case_db) as s:
            c = s.get(Case, case_id)
            assert c is not None
            record_follow_up(
                s,
                case_id=case_id,
                data=FollowUpRecord(
                    outcome=FollowUpOutcome.CARRIED_OUT,
                    resolved=ResolvedAnswer.RESOLVED,
                    satisfied=SatisfiedAnswer.SATISFIED,
                    notes="电话回访",
                ),
                actor=mediator,
                expected_version=c.version,
            )
        drive(aloop, case_db)
    with read_session(case_db) as s:
        c = s.get(Case, case_id)
        assert c is not None and c.status.value == "closed"
        assert c.closed_at is not None
        sent = s.exec(select(Notification).where(Notification.case_id == case_id)).all()
        assert all(n.sent_at is not None for n in sent)

    # One event per transition, in order.
    timeline = verbs(case_db, case_id)
    for verb in TRANSITIONS:
        assert timeline.count(verb) == 1, (verb, timeline)
    assert timeline[0] == "submitted" and timeline[-1] == "closed"
    # Every notification once at the receiver.
    assert len(receiver.keys) == len(set(receiver.keys))

    # Prefect shows the case under its number: one run per step, each completed.
    runs = aloop.run(runs_of(number))  # type: ignore[attr-defined]
    names = sorted(r.name for r in runs)
    assert f"{number} · intake" in names
    # Assignment and the assignee's notice ran inside the intake run (one process start
    # per case on a work pool); the relay found those steps done and started nothing.
    assert f"{number} · assignment" not in names
    assert names.count(f"{number} · notify") == 1  # mediation_started's notice
    assert f"{number} · mediation" in names
    assert f"{number} · follow_up" in names
    assert names.count(f"{number} · intake") == 1
    assert all(r.state_type.value == "COMPLETED" for r in runs if r.state_type)
    assert all(r.parameters == {"case_id": case_id} for r in runs)
    assert all(f"category:{category.value}" in r.tags for r in runs)

    # ... and one Prefect event per case event (redeliveries reuse the event id).
    deadline = time.monotonic() + 20
    while True:
        events = aloop.run(events_of(case_id))  # type: ignore[attr-defined]
        names_seen = [e.event for e in events]
        if len(names_seen) >= len(timeline) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(names_seen) == sorted(f"tiaojie.case.{v}" for v in timeline)
    assert all(e.resource.get("prefect.resource.name") == number for e in events)
