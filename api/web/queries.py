"""Read-only look-ups for the pages: which cases a user may see, their inbox and the
details of one case. Every change goes through the domain services in ``models/``;
nothing here writes. Each page costs a fixed number of queries (no N+1): lists load
their units in one extra query, a case page loads each related table once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import or_
from sqlalchemy.orm import load_only
from sqlmodel import Session, col, select

from models import clock, extensions, helping, overdue, referrals, timeline, workdays
from models.access import Principal, find_case, reach_clause, staff_id_of
from models.case import Case
from models.cases import parties_of
from models.enums import CaseStatus, Category, Priority, UnitLevel
from models.errors import NotFound
from models.event import CaseEvent
from models.extension import Extension
from models.follow_up import FollowUp
from models.follow_ups import latest_agreement, list_follow_ups
from models.helper import CaseHelper, HelperTask
from models.mediating import list_sessions
from models.mediation import Agreement, AgreementTerm, MediationSession
from models.party import Party
from models.referral import Referral
from models.staff import Staff
from models.triage_tables import TriageSuggestion
from models.unit import Unit


def find_visible_case(session: Session, *, user: Principal, number: str) -> Case | None:
    """The case with this number if the user reaches it (:mod:`models.access`)."""
    try:
        return find_case(session, user, number)
    except NotFound:
        return None


class UnitChoice(NamedTuple):
    code: str
    name_zh: str
    name_en: str
    level: UnitLevel


def units_in_reach(
    session: Session, *, user: Principal, levels: Sequence[UnitLevel]
) -> list[UnitChoice]:
    """Units of ``levels`` in the user's subtree (all for administrators), by code."""
    statement = _units_in_reach_statement(tuple(levels), user.reach_path)
    return [UnitChoice(*row) for row in session.exec(statement)]


@lru_cache(maxsize=64)
def _units_in_reach_statement(levels: tuple[UnitLevel, ...], reach_path: str | None) -> Any:
    """Built once per subtree and kept (as ``models.metrics`` keeps its statements)."""
    columns = (col(getattr(Unit, name)) for name in UnitChoice._fields)
    q = select(*columns).where(col(Unit.level).in_(list(levels))).order_by(col(Unit.code))
    if reach_path is not None:
        q = q.where(col(Unit.path).startswith(reach_path, autoescape=True))
    return q


@dataclass(frozen=True)
class Countdown:
    """How far a deadline is, in working days on the Chinese calendar."""

    due_at: datetime
    local: str
    overdue: bool
    working_days: int
    # The limit ran out today (local date): just late, not long overdue.
    since_today: bool = False

    def text(self, lang: str) -> str:
        n = self.working_days
        if self.overdue and self.since_today:
            return "Became overdue today" if lang == "en" else "今日已超期"
        if self.overdue and n == 0:  # passed on a rest day: no working day used yet
            return "Overdue (under a working day)" if lang == "en" else "已超期（不足 1 个工作日）"
        if self.overdue:
            return f"Overdue {n} working day(s)" if lang == "en" else f"超期 {n} 个工作日"
        if n == 0:
            return "Due today" if lang == "en" else "今日到期"
        return f"{n} working day(s) left" if lang == "en" else f"剩 {n} 个工作日"


def countdown(due_at: datetime | None, *, now: datetime) -> Countdown | None:
    if due_at is None:
        return None
    due_at = clock.ensure_utc(due_at)
    today = workdays.local_date(now)
    due_day = workdays.local_date(due_at)
    if overdue.is_past(due_at, now):
        late = workdays.working_days_between(due_day, today)
        return Countdown(due_at, clock.format_local(due_at), True, late, due_day == today)
    return Countdown(
        due_at, clock.format_local(due_at), False, workdays.working_days_between(today, due_day)
    )


def case_countdown(case: Case, *, now: datetime) -> Countdown | None:
    """The countdown to the deadline that counts for the case now: the one it keeps
    (``models.overdue``), as the lists' rows read it."""
    return countdown(case.deadline_at, now=now)


# What a row of the lists shows of a case (templates/_macros.html case_section, the inbox):
# the inbox reads only these columns. Making up to 220 whole cases of some seventy columns
# was about 40 ms of its 65 ms median at a million cases (scripts/page_cpu.py --profile
# inbox); a column not here is still read, one query per case, if a template asks for it.
ROW_COLUMNS = load_only(
    *(
        getattr(Case, name)
        for name in (
            "id",
            "number",
            "category",
            "priority",
            "status",
            "confidential",
            "description",
            "is_group",
            "is_open",
            "unit_id",
            "place_unit_id",
            "deadline_at",
            "version",
        )
    )
)


@dataclass(frozen=True)
class CaseRow:
    case: Case
    unit: Unit | None
    place: Unit | None
    countdown: Countdown | None


def _rows(session: Session, cases: Sequence[Case], *, now: datetime) -> list[CaseRow]:
    ids = {c.unit_id for c in cases} | {c.place_unit_id for c in cases}
    units = load_units(session, ids)
    return [
        CaseRow(
            case=c,
            unit=units.get(c.unit_id) if c.unit_id else None,
            place=units.get(c.place_unit_id) if c.place_unit_id else None,
            countdown=case_countdown(c, now=now),  # no query for the return visits
        )
        for c in cases
    ]


def case_rows(session: Session, cases: Sequence[Case], *, now: datetime) -> list[CaseRow]:
    """Cases as the list tables show them (unit, place, countdown)."""
    return _rows(session, cases, now=now)


def load_units(session: Session, ids: Iterable[int | None]) -> dict[int, Unit]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {u.id: u for u in session.exec(select(Unit).where(col(Unit.id).in_(wanted))) if u.id}


@dataclass
class Inbox:
    mine: list[CaseRow] = field(default_factory=list)
    due_today: list[CaseRow] = field(default_factory=list)
    overdue: list[CaseRow] = field(default_factory=list)
    unit_open: list[CaseRow] = field(default_factory=list)
    referred_out: list[CaseRow] = field(default_factory=list)
    workload: helping.Workload | None = None
    assessment: list[tuple[CaseRow, TriageSuggestion | None]] = field(default_factory=list)

    @property
    def overdue_today(self) -> list[CaseRow]:
        """The overdue cases whose limit ran out today: there is still today to act."""
        return [r for r in self.overdue if r.countdown is not None and r.countdown.since_today]

    @property
    def overdue_before(self) -> list[CaseRow]:
        """The cases overdue since an earlier day (long overdue)."""
        return [r for r in self.overdue if r.countdown is None or not r.countdown.since_today]


def inbox(session: Session, *, user: Principal, now: datetime, limit: int = 50) -> Inbox:
    """My open cases; cases in my reach due today or overdue; the newest open ones."""
    cond = reach_clause(user)

    end_of_today = workdays.end_of_day(now)
    mine_q = (
        select(Case)
        .options(ROW_COLUMNS)
        .where(col(Case.is_open).is_(True))
        .where(
            or_(
                col(Case.assignee_id) == user.staff_id,
                col(Case.created_by_id) == user.staff_id,
                col(Case.liaison_id) == user.staff_id,
                col(Case.id).in_(
                    select(CaseHelper.case_id).where(CaseHelper.staff_id == user.staff_id)
                ),
            )
        )
        .order_by(col(Case.resolution_due_at).is_(None), col(Case.resolution_due_at))
        .limit(limit)
    )
    base = select(Case).options(ROW_COLUMNS).where(col(Case.is_open).is_(True))
    if cond is not None:
        base = base.where(cond)
    deadline = col(Case.deadline_at)
    due_q = (
        base.where(deadline >= now)
        .where(deadline < end_of_today)
        .order_by(deadline, col(Case.id))
        .limit(limit)
    )
    kept = overdue.deadline_for_reach()  # the reach's indexes, not the city's deadlines
    overdue_q = (
        base.where(overdue.overdue_within_reach(now)).order_by(kept, col(Case.id)).limit(limit)
    )
    recent_q = base.order_by(col(Case.created_at).desc()).limit(20)
    # Referred out of my area and not back yet: a referral is not an exit.
    referred: Sequence[Case] = []
    if user.reach_path:
        referred = session.exec(
            select(Case)
            .options(ROW_COLUMNS)
            .where(col(Case.is_open).is_(True), col(Case.status) == CaseStatus.REFERRED)
            .where(col(Case.referred_from_path).startswith(user.reach_path, autoescape=True))
            .order_by(col(Case.referred_at))
            .limit(limit)
        ).all()
    mine = session.exec(mine_q).all()
    due = session.exec(due_q).all()
    late = session.exec(overdue_q).all()
    recent = session.exec(recent_q).all()
    every = list({c.id: c for c in [*mine, *due, *late, *recent, *referred]}.values())
    rows = {r.case.id: r for r in _rows(session, every, now=now)}
    return Inbox(
        assessment=awaiting_assessment(session, user=user, now=now, limit=limit),
        mine=[rows[c.id] for c in mine],
        due_today=[rows[c.id] for c in due],
        overdue=[rows[c.id] for c in late],
        unit_open=[rows[c.id] for c in recent],
        referred_out=[rows[c.id] for c in referred],
        workload=helping.workload(session, staff_id=user.staff_id) if user.staff_id else None,
    )


@dataclass(frozen=True, slots=True)
class ListedCase:
    """What the dashboard's list shows of a case, and what its Prefect link is made of:
    read as columns, not as a whole :class:`Case` (the list is a read-only view)."""

    id: int
    number: str
    category: Category
    priority: Priority
    status: CaseStatus
    is_group: bool
    confidential: bool
    description: str
    unit_id: int | None
    place_unit_id: int | None
    is_open: bool
    created_at: datetime
    closed_at: datetime | None
    withdrawn_at: datetime | None
    merged_at: datetime | None


_LISTED = tuple(col(getattr(Case, f.name)) for f in fields(ListedCase))


@dataclass(frozen=True, slots=True)
class ListedRow:
    """A row of the dashboard's overdue list (:func:`overdue_cases`)."""

    case: ListedCase
    unit: Unit | None
    place: Unit | None
    countdown: Countdown | None


def overdue_cases(
    session: Session, *, user: Principal, now: datetime, limit: int = 100
) -> list[ListedRow]:
    """Overdue cases (``models.overdue``), oldest deadline first. Each case's deadline
    is read with it (the one it keeps, ``Case.deadline_at``, which the list is sorted by),
    and the names of the units it shows in one more statement, whatever the rows."""
    found = session.exec(_overdue_statement(user, limit), params=overdue.at(now)).all()
    units = load_units(session, (i for r in found for i in (r.unit_id, r.place_unit_id)))
    return [
        ListedRow(
            case=ListedCase(*r[:-1]),
            unit=units.get(r.unit_id) if r.unit_id else None,
            place=units.get(r.place_unit_id) if r.place_unit_id else None,
            countdown=countdown(r.deadline, now=now),
        )
        for r in found
    ]


@lru_cache(maxsize=64)
def _overdue_statement(user: Principal, limit: int) -> Any:
    """The statement of :func:`overdue_cases` for this reader, at ``overdue.NOW``: built
    once per reader and kept (building it cost more than running it)."""
    deadline: Any = col(Case.deadline_at).label("deadline")
    columns = [*_LISTED, deadline]
    q = (
        select(*columns)
        .where(overdue.overdue_clause(overdue.NOW))
        .order_by(deadline, col(Case.id))
        .limit(limit)
    )
    cond = reach_clause(user)
    return q if cond is None else q.where(cond)


@dataclass
class CaseDetail:
    case: Case
    unit: Unit | None
    place: Unit | None
    assignee: Staff | None
    parties: list[Party]
    events: list[timeline.EventRow]
    sessions: list[MediationSession]
    agreement: Agreement | None
    terms: list[AgreementTerm]
    follow_ups: list[FollowUp]
    staff_names: dict[int, str]
    referrals: list[Referral] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    helpers: list[CaseHelper] = field(default_factory=list)
    helper_tasks: list[HelperTask] = field(default_factory=list)
    unit_names: dict[int, str] = field(default_factory=dict)
    # Per event id: where the case went, to whom, which case it was linked to (zh, en).
    event_notes: dict[int, tuple[str, str]] = field(default_factory=dict)


def case_detail(session: Session, *, case: Case) -> CaseDetail:
    assert case.id is not None
    units = load_units(session, [case.unit_id, case.place_unit_id])
    parties = parties_of(session, case_id=case.id)
    events = timeline.timeline_of(session, case_id=case.id)
    # The sessions, visits and latest agreement as the case's documents read them: the
    # page hands them on (mediation.mediation_context) instead of reading them again.
    sessions = list_sessions(session, case_id=case.id)
    # A case reopened after follow-up may be settled again: show the latest agreement.
    agreement = latest_agreement(session, case_id=case.id)
    terms = (
        list(
            session.exec(
                select(AgreementTerm)
                .where(AgreementTerm.agreement_id == agreement.id)
                .order_by(col(AgreementTerm.due_on))
            )
        )
        if agreement
        else []
    )
    follow_ups = list_follow_ups(session, case_id=case.id)
    refs = referrals.referrals_of(session, case_id=case.id)
    exts = extensions.extensions_of(session, case_id=case.id)
    helpers = helping.helpers_of(session, case_id=case.id)
    tasks = helping.tasks_of(session, case_id=case.id)
    staff_ids: set[int] = {s.recorded_by_id for s in sessions if s.recorded_by_id}
    staff_ids |= {h.staff_id for h in helpers} | {t.staff_id for t in tasks}
    staff_ids |= {i for r in refs for i in (r.referred_by_id, r.signed_by_id) if i}
    staff_ids |= {i for x in exts for i in (x.requested_by_id, x.decided_by_id) if i}
    staff_ids |= {f.visitor_id for f in follow_ups if f.visitor_id}
    if case.liaison_id:
        staff_ids.add(case.liaison_id)
    ref_units = load_units(session, [i for r in refs for i in (r.from_unit_id, r.to_unit_id)])
    staff_ids |= {f.recorded_by_id for f in follow_ups if f.recorded_by_id}
    staff_ids |= {i for e in events if (i := staff_id_of(e.actor)) is not None}
    if case.assignee_id:
        staff_ids.add(case.assignee_id)
    staff = (
        {
            s.id: s
            for s in session.exec(select(Staff).where(col(Staff.id).in_(sorted(staff_ids))))
            if s.id
        }
        if staff_ids
        else {}
    )
    return CaseDetail(
        case=case,
        unit=units.get(case.unit_id) if case.unit_id else None,
        place=units.get(case.place_unit_id) if case.place_unit_id else None,
        assignee=staff.get(case.assignee_id) if case.assignee_id else None,
        parties=parties,
        events=events,
        sessions=sessions,
        agreement=agreement,
        terms=terms,
        follow_ups=follow_ups,
        staff_names={i: s.display_name for i, s in staff.items()},
        referrals=refs,
        extensions=exts,
        helpers=helpers,
        helper_tasks=tasks,
        unit_names={i: u.name_zh for i, u in ref_units.items()},
        event_notes=timeline.event_notes(
            session, events, {i: s.display_name for i, s in staff.items()}
        ),
    )


def triage_suggestion(session: Session, *, case: Case) -> TriageSuggestion | None:
    """What the classifier made of the case at triage (shown beside the person's choice)."""
    return session.get(TriageSuggestion, case.id) if case.id is not None else None


def awaiting_assessment(
    session: Session, *, user: Principal, now: datetime, limit: int = 50
) -> list[tuple[CaseRow, TriageSuggestion | None]]:
    """Cases in reach held for a person to confirm their category (研判), oldest first,
    with the classifier's top three and why."""
    query = select(Case).where(col(Case.is_open).is_(True), col(Case.held_for_assessment))
    cond = reach_clause(user)
    if cond is not None:
        query = query.where(cond)
    cases = session.exec(query.order_by(col(Case.id)).limit(limit)).all()
    rows = _rows(session, cases, now=now)
    return [(row, triage_suggestion(session, case=row.case)) for row in rows]


@dataclass(frozen=True)
class Change:
    """What happened to one of my cases since my last visit: its newest event by
    someone else, and how many there were."""

    row: CaseRow
    verb: str
    at: datetime
    count: int


def changes_since(
    session: Session, *, rows: Sequence[CaseRow], me: str, since: datetime, limit: int = 20
) -> list[Change]:
    """My cases (the inbox's ``mine``) that others moved since ``since``, newest change
    first: one statement whatever the number of cases."""
    by_id = {r.case.id: r for r in rows if r.case.id is not None}
    if not by_id:
        return []
    events = session.exec(
        select(CaseEvent.case_id, CaseEvent.verb, CaseEvent.at)
        .where(col(CaseEvent.case_id).in_(list(by_id)), col(CaseEvent.at) > since)
        .where(col(CaseEvent.actor) != me)
        .order_by(col(CaseEvent.at).desc())
        .limit(500)
    ).all()
    newest: dict[int, tuple[str, datetime]] = {}
    counts: dict[int, int] = {}
    for case_id, verb, at in events:
        newest.setdefault(case_id, (verb, at))
        counts[case_id] = counts.get(case_id, 0) + 1
    return [
        Change(by_id[case_id], verb, at, counts[case_id])
        for case_id, (verb, at) in list(newest.items())[:limit]
    ]
