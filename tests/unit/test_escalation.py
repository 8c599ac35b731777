"""Escalation: a reminder before each deadline, escalation up the tree at it, on working
days, exactly once each however often and however concurrently the sweep runs."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models import workdays
from models.case import Case
from models.clock import VirtualClock
from models.db import build_engine, write_session
from models.enums import (
    CaseStatus,
    Category,
    ExpiryAction,
    ReferralReason,
    ReferralState,
    UnitLevel,
)
from models.errors import ConflictError, GuardFailed, ValidationError
from models.escalation import (
    due_escalations_query,
    due_reminders_query,
    escalate_case,
    find_due,
    remind_case,
    sweep,
)
from models.event import CaseEvent
from models.lifecycle import Actor
from models.policy import TimeLimitPolicy
from models.routing import assign_case
from models.tables import metadata
from models.triage import triage_case
from tests.factories import build_city, make_case
from tests.sqlite_plans import query_plan

SYSTEM = Actor.system()
SUPERVISOR = Actor(kind="staff", staff_id=1)


def local(y: int, m: int, d: int, h: int, mi: int = 0) -> datetime:
    return workdays.at_local(date(y, m, d), time(h, mi))


def timeline(session: Session, case_id: int) -> list[tuple[str, dict[str, object]]]:
    events = session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.seq))
    ).all()
    return [(e.verb, e.data) for e in events]


def new_triaged_case(session: Session, **overrides: Any) -> Case:
    base: dict[str, Any] = {"people_affected": 1}
    base.update(overrides)
    case = make_case(session, **base)
    triage_case(session, case_id=case.id or 0, actor=SYSTEM)
    return case


def test_untouched_case_climbs_the_tree_on_working_days(
    engine: Engine, vclock: VirtualClock
) -> None:
    with write_session(engine) as s:
        build_city(s)
        case = new_triaged_case(
            s, category=Category.ENVIRONMENT, description="饭店油烟扰民", parties=[]
        )
        assign_case(s, case_id=case.id or 0, actor=SYSTEM)
        case_id = case.id or 0
    assert case.unit_path == "/C/D1/S1/CMA/CPA/" and case.assignee_id is not None

    def run(at: datetime) -> tuple[list[tuple[str, int]], list[tuple[str, str, int]]]:
        vclock.set(at)
        report = sweep(engine, now=at, actor=SYSTEM)
        return (
            [(unit, level) for _, unit, level in report.reminded],
            [(a, b, level) for _, a, b, level in report.escalated],
        )

    # Compound limit: 5 working days from Mon 30 Nov -> Mon 7 Dec 18:00; reminder 09:00.
    assert run(local(2026, 12, 7, 8, 59)) == ([], [])
    assert run(local(2026, 12, 7, 9, 0)) == ([("CPA", 0)], [])
    assert run(local(2026, 12, 7, 17, 59)) == ([], [])
    assert run(local(2026, 12, 7, 18, 0)) == ([], [("CPA", "CMA", 1)])

    with Session(engine) as s:
        c = s.get(Case, case_id)
        assert c is not None
        assert c.status == CaseStatus.ESCALATED and c.assignee_id is None
        # Community level: the general 13-working-day limit, from the escalation.
        due = workdays.add_working_days(local(2026, 12, 7, 18, 0), 13)
        assert c.resolution_due_at == due
        assert c.next_reminder_at == workdays.reminder_time(due)
    remind_at = workdays.reminder_time(due)
    assert run(remind_at - timedelta(minutes=1)) == ([], [])
    assert run(remind_at) == ([("CMA", 1)], [])
    assert run(due) == ([], [("CMA", "S1", 2)])

    due = workdays.add_working_days(due, 13)
    assert run(workdays.reminder_time(due)) == ([("S1", 2)], [])
    assert run(due) == ([], [("S1", "D1", 3)])

    due = workdays.add_working_days(due, 13)
    assert run(workdays.reminder_time(due)) == ([("D1", 3)], [])
    # District: nobody higher handles cases; the case is reminded again there (督办).
    assert run(due) == ([], [("D1", "D1", 3)])
    assert run(due) == ([], [])  # and only once per limit

    with Session(engine) as s:
        verbs = [v for v, _ in timeline(s, case_id)]
        assert verbs == [
            "submitted",
            "triaged",
            "assigned",
            "reminded",
            "escalated",
            "reminded",
            "escalated",
            "reminded",
            "escalated",
            "reminded",
            "reminded",
        ]
        escalations = [d for v, d in timeline(s, case_id) if v == "escalated"]
        assert [(d["from_unit"], d["to_unit"], d["level"]) for d in escalations] == [
            ("CPA", "CMA", 1),
            ("CMA", "S1", 2),
            ("S1", "D1", 3),
        ]


def test_levels_with_nobody_are_skipped(session: Session, vclock: VirtualClock) -> None:
    city = build_city(session)
    for name in ("workerA", "mediatorA"):
        city.staff[name].away = True
    case = new_triaged_case(session, category=Category.ENVIRONMENT, description="噪音", parties=[])
    result = escalate_case(
        session, case_id=case.id or 0, now=case.resolution_due_at or vclock.now(), actor=SYSTEM
    )
    assert result is not None and (result.from_unit, result.to_unit) == ("CPA", "S1")


def test_labour_case_goes_to_the_paired_agency_after_the_district(
    session: Session, vclock: VirtualClock
) -> None:
    build_city(session)
    case = new_triaged_case(session)  # labour, in community A (paired with AG-LAB)
    path = []
    for _ in range(4):
        assert case.resolution_due_at is not None
        result = escalate_case(
            session, case_id=case.id or 0, now=case.resolution_due_at, actor=SYSTEM
        )
        assert result is not None
        path.append(result.to_unit)
    assert path == ["CMA", "S1", "D1", "AG-LAB"]
    assert case.unit_path == "/C/D1/AG-LAB/"
    # At the district's limit the case is referred to the agency, which signs for it.
    assert case.status == CaseStatus.REFERRED
    assert case.referral_reason == ReferralReason.LIMIT_PASSED
    assert case.referral_state == ReferralState.PENDING
    assert case.referred_from_path == "/C/D1/"


def test_policy_refers_to_the_paired_agency_when_the_limit_passes_not_before(
    session: Session, vclock: VirtualClock
) -> None:
    build_city(session)
    session.add(
        TimeLimitPolicy(
            name="labour at compound: 5 days, then the agency",
            category=Category.LABOUR,
            level=UnitLevel.COMPOUND,
            resolution_value=5,
            on_expiry=ExpiryAction.REFER,
        )
    )
    session.flush()
    case = make_case(session, people_affected=1)
    triage_case(session, case_id=case.id or 0, actor=SYSTEM)
    # At assignment the compound works the case: the policy is about the limit passing.
    assert assign_case(session, case_id=case.id or 0, actor=SYSTEM).outcome == "assigned"
    assert case.status == CaseStatus.ASSIGNED and case.unit_path == "/C/D1/S1/CMA/CPA/"
    assert case.resolution_due_at is not None
    early = case.resolution_due_at - timedelta(minutes=1)
    assert escalate_case(session, case_id=case.id or 0, now=early, actor=SYSTEM) is None
    # At the compound's deadline the policy sends it to the agency, not up the tree.
    result = escalate_case(session, case_id=case.id or 0, now=case.resolution_due_at, actor=SYSTEM)
    assert result is not None and (result.from_unit, result.to_unit) == ("CPA", "AG-LAB")
    assert case.status == CaseStatus.REFERRED
    assert case.referral_reason == ReferralReason.LIMIT_PASSED


def test_sweep_twice_at_the_same_moment_acts_once(engine: Engine, vclock: VirtualClock) -> None:
    with write_session(engine) as s:
        build_city(s)
        ids = [new_triaged_case(s, description=f"第{n}号楼噪音", parties=[]).id for n in range(7)]
        due = s.get(Case, ids[0])
        assert due is not None and due.resolution_due_at is not None
        deadline = due.resolution_due_at
    first = sweep(engine, now=deadline, actor=SYSTEM, batch_size=3)
    second = sweep(engine, now=deadline, actor=SYSTEM, batch_size=3)
    assert len(first.reminded) == 7 and len(first.escalated) == 7
    assert second.reminded == [] and second.escalated == [] and second.skipped == 0
    with Session(engine) as s:
        for case_id in ids:
            verbs = [v for v, _ in timeline(s, case_id or 0)]
            assert verbs.count("reminded") == 1 and verbs.count("escalated") == 1
    rows = first.as_rows()
    assert len(rows) == 14 and set(rows[0]) == {"case", "action", "from_unit", "to_unit", "level"}


@pytest.fixture
def file_engine(tmp_path: Path) -> Engine:
    eng = build_engine(f"sqlite:///{tmp_path / 'cases.db'}")
    metadata.create_all(eng)
    return eng


def test_two_sweeps_running_at_once_escalate_each_case_once(
    file_engine: Engine, vclock: VirtualClock
) -> None:
    with write_session(file_engine) as s:
        build_city(s)
        ids = [new_triaged_case(s, description=f"噪音{n}", parties=[]).id for n in range(60)]
        first = s.get(Case, ids[0])
        assert first is not None and first.resolution_due_at is not None
        deadline = first.resolution_due_at
    reports = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        reports.append(sweep(file_engine, now=deadline, actor=SYSTEM, batch_size=7))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(r.escalated) for r in reports) == 60
    assert sum(len(r.reminded) for r in reports) == 60
    with Session(file_engine) as s:
        for case_id in ids:
            verbs = [v for v, _ in timeline(s, case_id or 0)]
            assert verbs.count("reminded") == 1 and verbs.count("escalated") == 1
    file_engine.dispose()


def test_interleaved_sessions_conflict_instead_of_escalating_twice(
    file_engine: Engine, vclock: VirtualClock
) -> None:
    with write_session(file_engine) as s:
        build_city(s)
        case_id = new_triaged_case(s, description="噪音", parties=[]).id or 0
    # Session B reads the case, then session A escalates it and commits.
    b = Session(file_engine, expire_on_commit=False)
    stale = b.get(Case, case_id)
    assert stale is not None and stale.resolution_due_at is not None
    deadline, version = stale.resolution_due_at, stale.version
    b.commit()
    with write_session(file_engine) as a:
        assert escalate_case(a, case_id=case_id, now=deadline, actor=SYSTEM) is not None
    # B's stale view: with its version it gets a conflict; re-reading, nothing is due.
    with pytest.raises(ConflictError):
        escalate_case(b, case_id=case_id, now=deadline, actor=SYSTEM, expected_version=version)
    b.rollback()
    assert escalate_case(b, case_id=case_id, now=deadline, actor=SYSTEM) is None
    b.close()
    with Session(file_engine) as s:
        assert [v for v, _ in timeline(s, case_id)].count("escalated") == 1
    file_engine.dispose()


def test_find_due_lists_only_due_working_cases(session: Session, vclock: VirtualClock) -> None:
    build_city(session)
    a = new_triaged_case(session, description="噪音a", parties=[])
    b = new_triaged_case(session, description="噪音b", parties=[])
    make_case(session, description="未分拣", parties=[])  # submitted: no limits yet
    assert a.resolution_due_at is not None and a.next_reminder_at is not None
    b.status = CaseStatus.FOLLOW_UP  # (a test shortcut) follow-up has its own dates
    session.flush()
    assert find_due(session, now=a.next_reminder_at - timedelta(seconds=1)).remind_ids == []
    due = find_due(session, now=a.resolution_due_at)
    assert due.remind_ids == [a.id] and due.escalate_ids == [a.id]
    remind_case(session, case_id=a.id or 0, now=a.resolution_due_at, actor=SYSTEM)
    assert find_due(session, now=a.resolution_due_at).remind_ids == []
    assert remind_case(session, case_id=a.id or 0, now=a.resolution_due_at, actor=SYSTEM) is None


def test_due_queries_use_the_open_timestamp_indexes(session: Session) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    reminders = query_plan(session, due_reminders_query(now))
    escalations = query_plan(session, due_escalations_query(now))
    assert "ix_case_open_reminder (is_open=? AND next_reminder_at<?)" in reminders
    assert "ix_case_open_due (is_open=? AND resolution_due_at<?)" in escalations
    assert "TEMP B-TREE" not in reminders + escalations  # the index order serves ORDER BY
    # The status filter is read from the index too: no row is fetched for a due id.
    assert "COVERING INDEX" in reminders and "COVERING INDEX" in escalations


def test_escalation_by_hand_needs_a_reason(session: Session, vclock: VirtualClock) -> None:
    build_city(session)
    case = new_triaged_case(session, description="噪音", parties=[])
    with pytest.raises(ValidationError):
        escalate_case(
            session, case_id=case.id or 0, now=vclock.now(), actor=SUPERVISOR, by_hand=True
        )
    result = escalate_case(
        session,
        case_id=case.id or 0,
        now=vclock.now(),
        actor=SUPERVISOR,
        by_hand=True,
        reason="涉及多户居民，联系人13800138000，需社区协调",
        expected_version=case.version,
    )
    assert result is not None and result.to_unit == "CMA"
    data = timeline(session, case.id or 0)[-1][1]
    assert data["by_hand"] is True and "13800138000" not in str(data["reason"])
    with pytest.raises(GuardFailed):
        case.status = CaseStatus.FOLLOW_UP
        escalate_case(
            session,
            case_id=case.id or 0,
            now=vclock.now(),
            actor=SUPERVISOR,
            by_hand=True,
            reason="再次上报",
        )


def test_a_conflict_costs_only_its_own_case(
    engine: Engine, vclock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with write_session(engine) as s:
        build_city(s)
        ids = [new_triaged_case(s, description=f"噪音{n}", parties=[]).id or 0 for n in range(5)]
        first = s.get(Case, ids[0])
        assert first is not None and first.next_reminder_at is not None
        remind_at = first.next_reminder_at
    from models import escalation

    real = escalation.remind_case
    unlucky = ids[2]

    def remind_or_conflict(session: Session, **kwargs: Any) -> Any:
        # Someone else changed this case between the sweep's read and its write.
        if kwargs["case_id"] == unlucky:
            raise ConflictError("changed meanwhile")
        return real(session, **kwargs)

    monkeypatch.setattr(escalation, "remind_case", remind_or_conflict)
    report = sweep(engine, now=remind_at, actor=SYSTEM, batch_size=10)
    assert len(report.reminded) == 4 and report.skipped == 1
    with Session(engine) as s:
        counts = {i: [v for v, _ in timeline(s, i)].count("reminded") for i in ids}
    assert counts == {i: 0 if i == unlucky else 1 for i in ids}
    monkeypatch.setattr(escalation, "remind_case", real)
    again = sweep(engine, now=remind_at, actor=SYSTEM)
    assert [n for n, _, _ in again.reminded] == [f"JX-2026-{unlucky:06d}"]
