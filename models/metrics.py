"""Supervisor figures: the three rates (三率) per unit and their ranking, overdue cases
per level, backlog per unit, recent escalations, respondent clusters and the problem of
the month. Every figure is an SQL aggregate (one scan of the cases, grouped by their
handling-unit path, rolled up into the units at the asked level whose materialised path
is a prefix of it), and no output carries personal data:
units, case numbers, categories, counts, firms' names and masked person names only.

Definitions (cases created in ``[since, until)``, merged duplicates left out):

* **response rate** = cases first answered by staff (``first_response_at``, else the
  assignment time) no later than ``response_due_at``, over cases;
* **resolution rate** = cases closed with an agreement or settled without mediation,
  or referred to arbitration, court or an agency, over cases;
* **satisfaction rate** = return-visit ratings of 4 or 5, over rated cases.

**Ranking**: units are ranked by the composite score
``0.3 × response + 0.4 × resolution + 0.3 × satisfaction`` (resolution weighs most: it
is what the resident came for). A rate with nothing to count (no rated case) is left out
and the remaining weights are scaled up to 1. Equal scores share a rank; units with no
case in the period are listed last, unranked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_
from sqlmodel import Session, col, select

from models import clock, workdays
from models.case import Case
from models.enums import CaseStatus, Category, UnitLevel
from models.event import CaseEvent
from models.overdue import overdue_clause
from models.party import Party
from models.unit import Unit

S = CaseStatus
WEIGHTS = {"response": 0.3, "resolution": 0.4, "satisfaction": 0.3}
SATISFIED_AT_LEAST = 4


@dataclass(frozen=True)
class UnitRates:
    unit_code: str
    unit_name: str
    unit_name_en: str
    cases: int
    responded_in_time: int
    response_rate: float | None
    resolved: int
    resolution_rate: float | None
    rated: int
    satisfied: int
    satisfaction_rate: float | None
    rank: int | None
    score: float | None = None


@dataclass(frozen=True)
class LevelCount:
    level: UnitLevel
    level_zh: str
    level_en: str
    overdue: int


@dataclass(frozen=True)
class UnitBacklog:
    unit_code: str
    unit_name: str
    unit_name_en: str
    open: int
    in_mediation: int
    follow_up: int
    overdue: int


@dataclass(frozen=True)
class EscalationRow:
    case_number: str
    category: Category
    category_zh: str
    from_unit: str | None
    from_unit_name: str | None
    to_unit: str | None
    to_unit_name: str | None
    level: int | None
    at: datetime


@dataclass(frozen=True)
class ClusterRow:
    cluster_key: str
    category: Category
    category_zh: str
    label: str  # the firm's name, or a masked person's name
    open_count: int
    people_affected: int
    latest_case_numbers: list[str]


@dataclass(frozen=True)
class ProblemOfTheMonth:
    month: str
    category: Category
    category_zh: str
    category_en: str
    kind: str  # "respondent" | "place"
    key: str
    label: str
    label_en: str
    count: int
    case_numbers: list[str]


# --- shared pieces ---------------------------------------------------------------------


def _under(unit_path: Any, prefix: Any) -> ColumnElement[bool]:
    """``unit_path`` lies in the subtree whose path is ``prefix`` (either may be a column).
    A substring comparison, not LIKE: codes may contain ``_`` or ``%``."""
    return func.substr(unit_path, 1, func.length(prefix)) == prefix  # type: ignore[no-any-return]


def _units_at(level: UnitLevel, within_path: str | None) -> list[ColumnElement[bool]]:
    """Units of ``level`` inside ``within_path``, or containing it (a community worker
    asking for the community level sees their own community)."""
    conditions: list[ColumnElement[bool]] = [col(Unit.level) == level]
    if within_path:
        conditions.append(
            or_(
                _under(col(Unit.path), literal(within_path)),
                _under(literal(within_path), col(Unit.path)),
            )
        )
    return conditions


def _cases_within(within_path: str | None) -> list[ColumnElement[bool]]:
    return [_under(col(Case.unit_path), literal(within_path))] if within_path else []


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def composite_score(
    response: float | None, resolution: float | None, satisfaction: float | None
) -> float | None:
    parts = [
        (WEIGHTS["response"], response),
        (WEIGHTS["resolution"], resolution),
        (WEIGHTS["satisfaction"], satisfaction),
    ]
    present = [(w, r) for w, r in parts if r is not None]
    total = sum(w for w, _ in present)
    if not present or total == 0:
        return None
    return round(sum(w * r for w, r in present) / total, 4)


# --- the three rates ---------------------------------------------------------------------


def _level_units(session: Session, level: UnitLevel, within_path: str | None) -> list[Unit]:
    return list(
        session.exec(
            select(Unit).where(*_units_at(level, within_path)).order_by(col(Unit.code))
        ).all()
    )


def _roll_up(units: list[Unit], grouped: list[tuple[Any, ...]], width: int) -> dict[str, list[int]]:
    """Add the per-path sums of ``grouped`` (path first, then ``width`` counts) into the
    unit whose path is a prefix of each path. The database does the heavy part (one
    scan, grouped by handling-unit path); this walks a few thousand distinct paths."""
    by_path = {u.path: u.code for u in units}
    totals = {u.code: [0] * width for u in units}
    for path, *counts in grouped:
        if not path:
            continue
        cut = 0
        while (cut := path.find("/", cut + 1)) != -1:
            code = by_path.get(path[: cut + 1])
            if code is not None:
                bucket = totals[code]
                for i, n in enumerate(counts):
                    bucket[i] += int(n or 0)
                break
    return totals


def unit_rates(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    level: UnitLevel = UnitLevel.COMMUNITY,
    within_path: str | None = None,
) -> list[UnitRates]:
    """The three rates of every unit at ``level`` for cases created in the period,
    ranked (see the module docstring for definitions and the composite)."""
    responded = func.coalesce(col(Case.first_response_at), col(Case.assigned_at))
    in_time = and_(
        responded.is_not(None),
        col(Case.response_due_at).is_not(None),
        responded <= col(Case.response_due_at),
    )
    resolved = or_(
        and_(
            col(Case.status) == S.CLOSED,
            or_(col(Case.agreement_at).is_not(None), col(Case.in_mediation_at).is_(None)),
        ),
        col(Case.referred_at).is_not(None),
    )
    stmt = (
        select(  # type: ignore[call-overload]
            col(Case.unit_path),
            func.count(col(Case.id)),
            _count(in_time),
            _count(resolved),
            func.count(col(Case.satisfaction)),
            _count(col(Case.satisfaction) >= SATISFIED_AT_LEAST),
        )
        .where(
            col(Case.created_at) >= clock.ensure_utc(since),
            col(Case.created_at) < clock.ensure_utc(until),
            col(Case.status) != S.MERGED,
            col(Case.unit_path).is_not(None),
            *_cases_within(within_path),
        )
        .group_by(col(Case.unit_path))
    )
    units = _level_units(session, level, within_path)
    totals = _roll_up(units, list(session.exec(stmt).all()), 5)
    rows = []
    for unit in units:
        cases, in_time_n, resolved_n, rated, satisfied = totals[unit.code]
        response_rate = _rate(in_time_n, cases)
        resolution_rate = _rate(resolved_n, cases)
        satisfaction_rate = _rate(satisfied, rated)
        score = (
            composite_score(response_rate, resolution_rate, satisfaction_rate) if cases else None
        )
        rows.append(
            (
                unit.code,
                unit.name_zh,
                unit.name_en,
                cases,
                in_time_n,
                response_rate,
                resolved_n,
                resolution_rate,
                rated,
                satisfied,
                satisfaction_rate,
                score,
            )
        )
    rows.sort(key=lambda r: (r[11] is None, -(r[11] or 0.0), r[0]))
    result: list[UnitRates] = []
    previous: float | None = None
    rank = 0
    for position, r in enumerate(rows, start=1):
        score = r[11]
        if score is not None and score != previous:
            rank = position
            previous = score
        result.append(UnitRates(*r[:11], rank=rank if score is not None else None, score=score))
    return result


# --- overdue, backlog, escalations ---------------------------------------------------------


def overdue_by_level(
    session: Session, *, now: datetime, within_path: str | None = None
) -> list[LevelCount]:
    """Overdue cases (``models.overdue``), counted by the level of the unit handling
    them (bottom of the tree first, agencies last)."""
    stmt = (
        select(col(Unit.level), func.count(col(Case.id)))
        .select_from(Case)
        .join(Unit, col(Unit.id) == col(Case.unit_id))
        .where(overdue_clause(now), *_cases_within(within_path))
        .group_by(col(Unit.level))
    )
    counts = {UnitLevel(level): int(n) for level, n in session.exec(stmt).all()}
    order = sorted(UnitLevel, key=lambda lv: (lv == UnitLevel.AGENCY, lv.rank))
    return [LevelCount(lv, lv.zh, lv.en, counts.get(lv, 0)) for lv in order]


def backlog_by_unit(
    session: Session,
    *,
    within_path: str | None = None,
    level: UnitLevel = UnitLevel.COMMUNITY,
    now: datetime | None = None,
) -> list[UnitBacklog]:
    """Open cases per unit at ``level`` (its whole subtree), largest backlog first."""
    moment = clock.ensure_utc(now or clock.now())
    stmt = (
        select(  # type: ignore[call-overload]
            col(Case.unit_path),
            func.count(col(Case.id)),
            _count(col(Case.status) == S.IN_MEDIATION),
            _count(col(Case.status) == S.FOLLOW_UP),
            _count(overdue_clause(moment)),
        )
        .where(
            col(Case.is_open).is_(True),
            col(Case.unit_path).is_not(None),
            *_cases_within(within_path),
        )
        .group_by(col(Case.unit_path))
    )
    units = _level_units(session, level, within_path)
    totals = _roll_up(units, list(session.exec(stmt).all()), 4)
    rows = [UnitBacklog(u.code, u.name_zh, u.name_en, *totals[u.code]) for u in units]
    return sorted(rows, key=lambda r: (-r.open, -r.overdue, r.unit_code))


def recent_escalations(
    session: Session, *, since: datetime, within_path: str | None = None, limit: int = 200
) -> list[EscalationRow]:
    """Escalations since ``since``, newest first: case number, category, from and to."""
    stmt = (
        select(CaseEvent, col(Case.number), col(Case.category))
        .join(Case, col(Case.id) == col(CaseEvent.case_id))
        .where(
            col(CaseEvent.verb) == "escalated",
            col(CaseEvent.at) >= clock.ensure_utc(since),
            *_cases_within(within_path),
        )
        .order_by(col(CaseEvent.at).desc(), col(CaseEvent.id).desc())
        .limit(limit)
    )
    found = session.exec(stmt).all()
    codes = {
        str(code)
        for event, _n, _c in found
        for code in (event.data.get("from_unit"), event.data.get("to_unit"))
        if code
    }
    names = (
        dict(
            session.exec(
                select(col(Unit.code), col(Unit.name_zh)).where(col(Unit.code).in_(codes))
            ).all()
        )
        if codes
        else {}
    )
    rows = []
    for event, number, category in found:
        src = event.data.get("from_unit")
        dst = event.data.get("to_unit")
        level = event.data.get("level")
        rows.append(
            EscalationRow(
                case_number=number,
                category=Category(category),
                category_zh=Category(category).zh,
                from_unit=src,
                from_unit_name=names.get(src) if src else None,
                to_unit=dst,
                to_unit_name=names.get(dst) if dst else None,
                level=int(level) if isinstance(level, int) else None,
                at=clock.ensure_utc(event.at),
            )
        )
    return rows


# --- clusters and the problem of the month ------------------------------------------------


def _respondent_labels(session: Session, keys: set[str]) -> dict[str, str]:
    """A readable label per respondent key: a firm's name, or a person's masked name."""
    if not keys:
        return {}
    stmt = (
        select(col(Case.respondent_key), col(Party.org_name), col(Party.name_masked))
        .join(Party, col(Party.case_id) == col(Case.id))
        .where(col(Case.respondent_key).in_(keys), col(Party.side) == "respondent")
        .order_by(col(Case.id).desc())
    )
    labels: dict[str, str] = {}
    for key, org, masked in session.exec(stmt).all():
        if key and key not in labels and (org or masked):
            labels[key] = org or masked or ""
    return labels


def _latest_numbers(session: Session, conditions: list[Any], limit: int) -> list[str]:
    stmt = (
        select(col(Case.number))
        .where(*conditions)
        .order_by(col(Case.created_at).desc(), col(Case.id).desc())
        .limit(limit)
    )
    return [str(n) for n in session.exec(stmt).all()]


def clusters(
    session: Session,
    *,
    since: datetime,
    min_size: int = 3,
    within_path: str | None = None,
    latest: int = 5,
) -> list[ClusterRow]:
    """Open cases since ``since`` against the same respondent in the same category, at
    least ``min_size`` of them: the early warning of a group incident (largest first)."""
    base = [
        col(Case.is_open).is_(True),
        col(Case.created_at) >= clock.ensure_utc(since),
        col(Case.respondent_key).is_not(None),
        *_cases_within(within_path),
    ]
    stmt = (
        select(
            col(Case.respondent_key),
            col(Case.category),
            func.count(col(Case.id)),
            func.sum(col(Case.people_affected)),
        )
        .where(*base)
        .group_by(col(Case.respondent_key), col(Case.category))
        .having(func.count(col(Case.id)) >= min_size)
        .order_by(func.count(col(Case.id)).desc(), col(Case.respondent_key))
    )
    groups = session.exec(stmt).all()
    labels = _respondent_labels(session, {str(k) for k, _c, _n, _p in groups})
    result = []
    for key, category, count, people in groups:
        cat = Category(category)
        numbers = _latest_numbers(
            session,
            [*base, col(Case.respondent_key) == key, col(Case.category) == cat],
            latest,
        )
        result.append(
            ClusterRow(
                cluster_key=str(key),
                category=cat,
                category_zh=cat.zh,
                label=labels.get(str(key), "（未具名 unnamed）"),
                open_count=int(count),
                people_affected=int(people or 0),
                latest_case_numbers=numbers,
            )
        )
    return result


def _month_bounds(month_start: date) -> tuple[date, datetime, datetime]:
    if isinstance(month_start, datetime):
        month_start = clock.to_local(month_start).date()
    first = month_start.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, workdays.at_local(first, time(0, 0)), workdays.at_local(following, time(0, 0))


def problem_of_the_month(
    session: Session, *, month_start: date, within_path: str | None = None, latest: int = 10
) -> ProblemOfTheMonth | None:
    """The category with the respondent, or with the place, that recurs most among the
    month's cases (Asia/Shanghai month); ``None`` when nothing recurs (fewer than 2)."""
    first, start, end = _month_bounds(month_start)
    base = [
        col(Case.created_at) >= start,
        col(Case.created_at) < end,
        col(Case.status) != S.MERGED,
        *_cases_within(within_path),
    ]
    by_respondent = session.exec(
        select(col(Case.category), col(Case.respondent_key), func.count(col(Case.id)))
        .where(*base, col(Case.respondent_key).is_not(None))
        .group_by(col(Case.category), col(Case.respondent_key))
        .order_by(func.count(col(Case.id)).desc(), col(Case.category), col(Case.respondent_key))
        .limit(1)
    ).first()
    by_place = session.exec(
        select(col(Case.category), col(Case.place_unit_id), func.count(col(Case.id)))
        .where(*base, col(Case.place_unit_id).is_not(None))
        .group_by(col(Case.category), col(Case.place_unit_id))
        .order_by(func.count(col(Case.id)).desc(), col(Case.category), col(Case.place_unit_id))
        .limit(1)
    ).first()
    candidates: list[tuple[int, int, str, Category, Any]] = []
    if by_respondent is not None:
        candidates.append(
            (int(by_respondent[2]), 0, "respondent", Category(by_respondent[0]), by_respondent[1])
        )
    if by_place is not None:
        candidates.append((int(by_place[2]), 1, "place", Category(by_place[0]), by_place[1]))
    if not candidates:
        return None
    count, _pref, kind, category, key = max(candidates, key=lambda c: (c[0], -c[1]))
    if count < 2:
        return None
    if kind == "respondent":
        label = _respondent_labels(session, {str(key)}).get(str(key), "（未具名 unnamed）")
        label_en, key_text = label, str(key)
        match = col(Case.respondent_key) == key
    else:
        unit = session.get(Unit, int(key))
        assert unit is not None
        label, label_en, key_text = unit.name_zh, unit.name_en, unit.code
        match = col(Case.place_unit_id) == key
    numbers = _latest_numbers(session, [*base, match, col(Case.category) == category], latest)
    return ProblemOfTheMonth(
        month=f"{first.year:04d}-{first.month:02d}",
        category=category,
        category_zh=category.zh,
        category_en=category.en,
        kind=kind,
        key=key_text,
        label=label,
        label_en=label_en,
        count=count,
        case_numbers=numbers,
    )
