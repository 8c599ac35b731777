"""Escalation (催办/提级督办): reminders before a deadline, escalation at it.

A case is **reminded** (催办) once per escalation level, from ``next_reminder_at`` (the
opening of the last working day before its deadline), and **escalated** (提级督办) once its
``resolution_due_at`` is missed (the comparison of ``models.overdue``: strictly after
the deadline): to the next unit up the tree with somebody able to handle it (building,
compound, community, street, district; levels with nobody are skipped), or **referred**
to the paired agency (转结对部门, :mod:`models.referrals`, reason "time at the grassroots
ran out") when the time-limit policy of the level says ``on_expiry = refer`` or when
the district's limit has passed and the case's community has a pairing for the
category (unless that agency sent this case back). A new time limit starts at the new
level. A supervisor's deliberate move up with a reason is a report (上报). At the top (the
city, an agency, or a unit with nobody above able to handle the category) the case is
only reminded again (督办), and a new limit at that level starts so that it is reminded
again when that one passes.

Which cases: those still being worked on: ``triaged``, ``assigned``, ``escalated`` and
``in_mediation`` (whose deadline is the mediation limit, about a month, set when
mediation starts or is extended: see :func:`models.mediating.set_mediation_limit`). Not
``submitted``/``reopened`` (no limits until triage sets them), not ``agreement``,
``mediation_failed``, ``referred`` or ``follow_up`` (the case has been dealt with at its
level; follow-up has its own dates).

Idempotency: per (case, level) for reminders (``reminded_level``) and per (case,
deadline, level) for escalations: both re-read the case and check it is still due, and
the case's ``version`` check makes a concurrent writer fail at flush.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, true
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from models import breaches, clock, lifecycle, overdue, referrals
from models.access import Actor
from models.case import Case
from models.cases import get_case
from models.db import write_session
from models.deadlines import compute_deadlines
from models.enums import CaseStatus, ExpiryAction, ReferralReason, UnitLevel
from models.errors import ConflictError, GuardFailed, NotFound
from models.guards import required_masked_text
from models.routing import Directory
from models.unit import Unit

S = CaseStatus
ESCALATABLE = frozenset({S.TRIAGED, S.ASSIGNED, S.ESCALATED, S.IN_MEDIATION})
# Written as NOT IN so that the planner keeps to the (is_open, timestamp) indexes.
_NOT_DUE_STATUSES = sorted(s.value for s in CaseStatus if s.is_open and s not in ESCALATABLE)


@dataclass(frozen=True)
class DueCases:
    remind_ids: list[int]
    escalate_ids: list[int]


def _due_query(
    due_column: Any, reached: ColumnElement[bool], limit: int
) -> SelectOfScalar[int] | SelectOfScalar[None]:
    # Filter on (is_open, <time>, status) only, so each query reads just its index.
    return (
        select(Case.id)
        .where(
            col(Case.is_open) == true(),
            reached,
            col(Case.status).not_in(_NOT_DUE_STATUSES),
        )
        .order_by(due_column)
        .limit(limit)
    )


def due_reminders_query(
    now: datetime, limit: int = 10_000
) -> SelectOfScalar[int] | SelectOfScalar[None]:
    # A reminder is sent from its time on (a start, not a deadline: ``<=``).
    reminder = col(Case.next_reminder_at)
    return _due_query(reminder, reminder <= clock.ensure_utc(now), limit)


def due_escalations_query(
    now: datetime, limit: int = 10_000
) -> SelectOfScalar[int] | SelectOfScalar[None]:
    # Escalated once the resolution limit is missed, by the one overdue comparison.
    resolution = col(Case.resolution_due_at)
    return _due_query(resolution, overdue.past_clause(resolution, now), limit)


def find_due(session: Session, *, now: datetime, limit: int = 10_000) -> DueCases:
    """Open cases to remind (reminder time passed, not yet reminded at their level) and
    to escalate (deadline passed), oldest first. Reads only the ``ix_case_open_reminder``
    and ``ix_case_open_due`` indexes (which carry ``status``), up to ``now``. A reminder
    that went out clears ``next_reminder_at``, so the index alone tells which are due;
    :func:`remind_case` still checks ``reminded_level``."""
    conn = session.connection()  # Core rows: ids only, no ORM result machinery
    remind = [int(i) for i in conn.execute(due_reminders_query(now, limit)).scalars() if i]
    escalate = [int(i) for i in conn.execute(due_escalations_query(now, limit)).scalars() if i]
    return DueCases(remind_ids=remind, escalate_ids=escalate)


# --- one case ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderResult:
    case_id: int
    number: str
    unit_code: str | None
    level: int
    deadline: datetime | None


@dataclass(frozen=True)
class EscalationResult:
    case_id: int
    number: str
    outcome: Literal["escalated", "reminded_at_top"]
    from_unit: str | None
    to_unit: str | None
    level: int
    resolution_due_at: datetime | None


def _fresh(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id, populate_existing=True)
    return case if case is not None else get_case(session, case_id=case_id)


def _reminder_due(case: Case, now: datetime) -> bool:
    return (
        case.is_open
        and case.status in ESCALATABLE
        and case.next_reminder_at is not None
        and clock.ensure_utc(case.next_reminder_at) <= now
        and (case.reminded_level is None or case.reminded_level < case.escalation_level)
    )


def _remind(
    session: Session,
    case: Case,
    actor: Actor,
    now: datetime,
    deadline: datetime | None,
    unit_code: str | None,
    **more: Any,
) -> None:
    """Record a reminder (催办) at the case's level: sent, so there is no next one at
    this level; ``more`` adds what the top of the ladder says (overdue, the new limit)."""
    case.reminded_level = case.escalation_level
    case.next_reminder_at = None
    lifecycle.step_on(session, case, actor, None).record(
        "reminded",
        {
            "level": case.escalation_level,
            "deadline": deadline.isoformat() if deadline else None,
            "unit": unit_code,
            **more,
        },
        at=now,
    )


def remind_case(
    session: Session,
    *,
    case_id: int,
    now: datetime,
    actor: Actor,
    directory: Directory | None = None,
    case: Case | None = None,
) -> ReminderResult | None:
    """Remind (催办) the handling unit of a case whose reminder time has passed, once per
    escalation level; None when there is nothing to do."""
    now = clock.ensure_utc(now)
    case = case if case is not None else _fresh(session, case_id)
    if not _reminder_due(case, now):
        return None
    assert case.id is not None
    unit = _unit(session, directory, case.unit_id)
    deadline = clock.ensure_utc(case.resolution_due_at) if case.resolution_due_at else None
    _remind(session, case, actor, now, deadline, unit.code if unit else None)
    return ReminderResult(
        case.id, case.number, unit.code if unit else None, case.escalation_level, deadline
    )


def _unit(session: Session, directory: Directory | None, unit_id: int | None) -> Unit | None:
    if unit_id is None:
        return None
    if directory is not None and unit_id in directory.units:
        return directory.units[unit_id]
    return session.get(Unit, unit_id)


def escalation_target(
    directory: Directory, *, case: Case, unit: Unit, refused_by: frozenset[int] = frozenset()
) -> Unit | None:
    """Where a case goes when the limit at ``unit`` passes: the paired agency when the
    level's policy says ``refer`` (or the district's limit has passed) and the agency
    has not sent this case back (``refused_by``); else one level up; None at the top
    (nobody above is able to handle it)."""
    if unit.level in (UnitLevel.AGENCY, UnitLevel.CITY):
        return None
    place = directory.units.get(case.place_unit_id) if case.place_unit_id else None
    # The pairing belongs to the case's community (the unit may be above it by now).
    agency = directory.paired_agency(place or unit, case.category) or directory.paired_agency(
        unit, case.category
    )
    policy = directory.policy(category=case.category, priority=case.priority, level=unit.level)
    refer = policy.on_expiry == ExpiryAction.REFER or unit.level == UnitLevel.DISTRICT
    if agency is not None and agency.id not in refused_by and refer:
        return agency
    return directory.next_handling_unit_above(unit, case.category)


def escalate_case(
    session: Session,
    *,
    case_id: int,
    now: datetime,
    actor: Actor,
    expected_version: int | None = None,
    by_hand: bool = False,
    reason: str | None = None,
    directory: Directory | None = None,
    case: Case | None = None,
) -> EscalationResult | None:
    """Escalate a case whose deadline has passed (or, ``by_hand``, a supervisor's
    decision with a reason) to the next level; None when it is no longer due."""
    now = clock.ensure_utc(now)
    case = case if case is not None else _fresh(session, case_id)
    assert case.id is not None
    step = lifecycle.step_on(session, case, actor, expected_version)
    note: str | None = None
    if by_hand:
        note = required_masked_text(reason, "reason", "上报原因")
        if not case.is_open or case.status not in ESCALATABLE:
            raise GuardFailed(
                f"cannot escalate a case that is {case.status.value}",
                f"案件当前状态为「{case.status.zh}」，不能上报。",
            )
    elif not (
        case.is_open and case.status in ESCALATABLE and overdue.is_past(case.resolution_due_at, now)
    ):
        return None
    if case.unit_id is None:
        raise GuardFailed(
            f"case {case.number} has no handling unit", f"案件 {case.number} 尚无承办单位"
        )
    if not by_hand:
        # The limit passed at this unit: keep that on record before the case moves on.
        breaches.record_breaches(session, now=now, case_ids=[case.id])
    if directory is None or case.unit_id not in directory.units:
        current = session.get(Unit, case.unit_id)
        if current is None:
            raise NotFound(f"no unit {case.unit_id}", f"单位 {case.unit_id} 不存在")
        directory = Directory.load_branch(session, current)
        if case.place_unit_id and case.place_unit_id not in directory.units:
            place = session.get(Unit, case.place_unit_id)
            if place is not None:
                directory.extend_branch(session, place)
    unit = directory.unit(case.unit_id)
    target = escalation_target(directory, case=case, unit=unit)
    if target is not None and target.level == UnitLevel.AGENCY:
        refused = frozenset(referrals.returned_by(session, case_id=case.id))
        if target.id in refused:
            target = escalation_target(directory, case=case, unit=unit, refused_by=refused)
    deadline = clock.ensure_utc(case.resolution_due_at) if case.resolution_due_at else None

    if target is None:
        # The top: remind again (督办) and give the level a new limit.
        if by_hand:
            raise GuardFailed(
                f"{unit.code} is the top of the escalation ladder",
                f"{unit.name_zh}已是最高一级，不能再上报。",
            )
        policy = directory.policy(category=case.category, priority=case.priority, level=unit.level)
        limits = compute_deadlines(policy, start=now)
        case.resolution_due_at = limits.resolution_due_at
        _remind(
            session,
            case,
            actor,
            now,
            deadline,
            unit.code,
            overdue=True,
            next_deadline=limits.resolution_due_at.isoformat(),
        )
        return EscalationResult(
            case.id,
            case.number,
            "reminded_at_top",
            unit.code,
            unit.code,
            case.escalation_level,
            case.resolution_due_at,
        )

    if target.level == UnitLevel.AGENCY and not by_hand:
        return _refer_at_limit(session, case=case, unit=unit, agency=target, now=now, actor=actor)
    policy = directory.policy(category=case.category, priority=case.priority, level=target.level)
    limits = compute_deadlines(policy, start=now)
    level = case.escalation_level + 1
    case.set_handling_unit(target)
    case.escalation_level = level
    case.assignee_id = None
    case.set_time_limits(limits)
    data: dict[str, object] = {
        "from_unit": unit.code,
        "to_unit": target.code,
        "level": level,
        "deadline": deadline.isoformat() if deadline else None,
        "new_deadline": limits.resolution_due_at.isoformat(),
        "by_hand": by_hand,
    }
    if note:
        data["reason"] = note
    step.record("escalated", data, at=now)
    return EscalationResult(
        case.id, case.number, "escalated", unit.code, target.code, level, case.resolution_due_at
    )


def _refer_at_limit(
    session: Session, *, case: Case, unit: Unit, agency: Unit, now: datetime, actor: Actor
) -> EscalationResult:
    """The grassroots' time is up and the policy sends the case to the paired agency
    (转结对部门): a referral the agency signs for within a working day."""
    assert case.id is not None
    deadline = clock.ensure_utc(case.resolution_due_at) if case.resolution_due_at else None
    level = case.escalation_level + 1
    case.escalation_level = level
    case.next_reminder_at = None
    referrals.refer(
        session,
        case=case,
        reason=ReferralReason.LIMIT_PASSED,
        actor=actor,
        agency=agency,
        decided_by="rule:时限届满转结对部门 limit passed",
        extra={
            "level": level,
            "deadline": deadline.isoformat() if deadline else None,
            "to_unit": agency.code,
        },
    )
    return EscalationResult(
        case.id, case.number, "escalated", unit.code, agency.code, level, case.resolution_due_at
    )


# --- the sweep --------------------------------------------------------------------------


@dataclass
class SweepReport:
    reminded: list[tuple[str, str, int]] = field(default_factory=list)
    escalated: list[tuple[str, str, str, int]] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0

    def as_rows(self) -> list[dict[str, str | int]]:
        """Rows for a table artifact: case numbers, unit codes and levels only."""
        rows: list[dict[str, str | int]] = [
            {"case": n, "action": "催办 reminded", "from_unit": u, "to_unit": u, "level": lvl}
            for n, u, lvl in self.reminded
        ]
        rows += [
            {
                "case": n,
                "action": "提级督办 escalated" if a != b else "督办 reminded (top)",
                "from_unit": a,
                "to_unit": b,
                "level": lvl,
            }
            for n, a, b, lvl in self.escalated
        ]
        return rows


SessionFactory = Callable[[], AbstractContextManager[Session]]


def _factories(source: Engine | SessionFactory) -> tuple[SessionFactory, SessionFactory]:
    if isinstance(source, Engine):
        engine = source

        @contextmanager
        def reader() -> Iterator[Session]:
            with Session(engine, expire_on_commit=False) as session:
                yield session

        return reader, lambda: write_session(engine)
    return source, source


def _chunks(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _one(
    session: Session,
    *,
    case: Case,
    now: datetime,
    actor: Actor,
    directory: Directory,
    remind: bool,
    escalate: bool,
) -> tuple[ReminderResult | None, EscalationResult | None]:
    assert case.id is not None
    reminded = (
        remind_case(session, case_id=case.id, now=now, actor=actor, directory=directory, case=case)
        if remind
        else None
    )
    escalated = (
        escalate_case(
            session, case_id=case.id, now=now, actor=actor, directory=directory, case=case
        )
        if escalate
        else None
    )
    return reminded, escalated


def _batch(
    write: SessionFactory,
    chunk: list[int],
    *,
    now: datetime,
    actor: Actor,
    directory: Directory,
    remind_ids: set[int],
    escalate_ids: set[int],
    savepoints: bool,
) -> SweepReport:
    """One transaction. Without ``savepoints`` (the fast path) any conflict fails the
    whole batch; with them, each case is rolled back alone and counted as skipped."""
    out = SweepReport()
    results: list[tuple[ReminderResult | None, EscalationResult | None]] = []
    with write() as session:
        cases = {
            c.id: c
            for c in session.exec(
                select(Case)
                .where(col(Case.id).in_(chunk))
                .execution_options(populate_existing=True)
            ).all()
        }
        for case_id in chunk:
            case = cases.get(case_id)
            if case is None:
                out.skipped += 1
                continue

            def run(case: Case = case, case_id: int = case_id) -> None:
                results.append(
                    _one(
                        session,
                        case=case,
                        now=now,
                        actor=actor,
                        directory=directory,
                        remind=case_id in remind_ids,
                        escalate=case_id in escalate_ids,
                    )
                )

            if not savepoints:
                run()
                continue
            try:
                with session.begin_nested():
                    run()
                    session.flush()
            except (ConflictError, StaleDataError):
                out.skipped += 1
    # Committed: now it can be reported.
    for reminded, escalated in results:
        if reminded is not None:
            out.reminded.append((reminded.number, reminded.unit_code or "", reminded.level))
        if escalated is not None:
            out.escalated.append(
                (
                    escalated.number,
                    escalated.from_unit or "",
                    escalated.to_unit or "",
                    escalated.level,
                )
            )
        if reminded is None and escalated is None:
            out.skipped += 1
    return out


def sweep(
    engine_or_session_factory: Engine | SessionFactory,
    *,
    now: datetime,
    batch_size: int = 500,
    actor: Actor,
    limit: int = 10_000,
) -> SweepReport:
    """Remind and escalate every due case, ``batch_size`` cases per transaction (so the
    SQLite write lock is never held long). Units, staff, pairings and policies are read
    once per sweep. A case another sweep or a person changed meanwhile is skipped and
    counted (a batch that meets a conflict is redone case by case, each in a savepoint);
    it is picked up by the next sweep if still due."""
    started = time.perf_counter()
    now = clock.ensure_utc(now)
    read, write = _factories(engine_or_session_factory)
    with write() as session:
        # Every limit that has passed is recorded where it passed, before anything moves.
        breaches.record_breaches(session, now=now, limit=limit)
    with read() as session:
        due = find_due(session, now=now, limit=limit)
        if not (due.remind_ids or due.escalate_ids):
            return SweepReport(seconds=round(time.perf_counter() - started, 3))
        directory = Directory.load_all(session)
    report = SweepReport()
    remind_ids, escalate_ids = set(due.remind_ids), set(due.escalate_ids)
    # A case both reminded and escalated in one sweep is reminded first.
    ordered = list(dict.fromkeys([*due.remind_ids, *due.escalate_ids]))
    for chunk in _chunks(ordered, max(batch_size, 1)):
        batch = partial(
            _batch,
            write,
            chunk,
            now=now,
            actor=actor,
            directory=directory,
            remind_ids=remind_ids,
            escalate_ids=escalate_ids,
        )
        try:
            part = batch(savepoints=False)
        except (ConflictError, StaleDataError):
            part = batch(savepoints=True)
        report.reminded += part.reminded
        report.escalated += part.escalated
        report.skipped += part.skipped
    report.seconds = round(time.perf_counter() - started, 3)
    return report
