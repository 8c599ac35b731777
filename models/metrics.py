"""Supervisor figures: the three rates (三率) per unit and their monthly ranking, overdue
cases per level, backlog per unit, recent escalations, respondent clusters and the
problem of the month. Every figure is an SQL aggregate (grouped by unit path, rolled up
into the units at the asked level whose materialised path is a prefix of it), and no
output carries personal data: units, case numbers, categories, counts, firms' names and
masked person names only.

The three rates, as hotline practice counts them (merged duplicates left out). Each
case is judged once per rate, at its **deciding moment**, and counts for the unit that
held it then, in the period in which that moment fell:

* **response rate (响应率)** = cases whose first human contact with the complainant came
  within the response limit, over cases decided. The deciding moment is the first
  contact (:mod:`models.contact`; an automatic assignment is not one) or, if the
  response limit passed first, that limit (a ``response`` breach, :mod:`models.breaches`),
  which counts as late for the unit that held the case when it passed;
* **resolution rate (解决率)** = cases the complainant called resolved or basically
  resolved (已解决 / 基本解决) at an independent return visit, over cases decided. The
  deciding moment is that answer or, if the resolution limit passed first, that limit
  (unresolved, for the unit that held the case then). A referred case is resolved
  only when its outcome is: the receiving unit recorded it resolved (or partly) and the
  complainant says so; the referral itself decides nothing;
* **satisfaction rate (满意率)** = cases the complainant called satisfied or basically
  satisfied (满意 / 基本满意) at an independent return visit, over cases answered.

Only independent return visits count (:mod:`models.follow_up`): a visitor who is
neither the handler nor of the handling unit, or the complainant's own link. Where the
complainant answered through their own link (/r/), those answers are the case's: a
staff visit (for residents without a phone, marked by its channel) counts only for
cases the complainant did not answer themselves.

**Ranking (月度排名)**: units are ranked by the composite score
``w_response × response + w_resolution × resolution + w_satisfaction × satisfaction``,
weights from the settings (10% / 45% / 45% by default). A rate with nothing decided is
left out and the remaining weights are scaled up to 1. Equal scores share a rank; units
with no case decided in the period are listed last, unranked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    union_all,
)
from sqlmodel import Session, col, select

from models import clock, workdays
from models.breaches import LimitBreach
from models.case import Case
from models.decisions import RateDecision, settle
from models.enums import CaseStatus, Category, Rate, UnitLevel
from models.event import CaseEvent
from models.overdue import NOW, Moment, at, overdue_clause
from models.party import Party
from models.settings import get_settings
from models.types import UTCDateTime
from models.unit import Unit, column_by_code
from models.unit import within_path as within_path_clause

S = CaseStatus

# Statements are built once and kept (the lru_caches below): building one, and working
# out the key SQLAlchemy finds its compiled form by, cost more than running it (0.2 to
# 1.5 ms a statement; at 20,000 cases the dashboard's figures took 15 ms of CPU, 4 of
# them to run the statements). Those that depend only on the unit subtree, the level and
# the month are kept by those; a moment that moves with every request is a parameter
# given at execution (models.overdue.NOW, SINCE).
STATEMENTS_KEPT = 64
SINCE = bindparam("since", type_=UTCDateTime)
UNTIL = bindparam("until", type_=UTCDateTime)


def weights() -> dict[str, float]:
    settings = get_settings()
    return {
        "response": settings.rate_weight_response,
        "resolution": settings.rate_weight_resolution,
        "satisfaction": settings.rate_weight_satisfaction,
    }


@dataclass(frozen=True)
class UnitRates:
    """One unit's three rates, each with the number of cases it was worked out from."""

    unit_code: str
    unit_name: str
    unit_name_en: str
    level: UnitLevel
    cases: int  # distinct cases decided for this unit in the period, any rate
    response_cases: int
    responded_in_time: int
    response_rate: float | None
    resolution_cases: int
    resolved: int
    resolution_rate: float | None
    rated: int
    satisfied: int
    satisfaction_rate: float | None
    rank: int | None
    score: float | None = None


@dataclass(frozen=True)
class LevelCount:
    """Open cases whose limit passed at this level (``overdue``), and the limits that
    passed at this level in the period asked (``breaches``, closed cases included)."""

    level: UnitLevel
    level_zh: str
    level_en: str
    overdue: int
    breaches: int = 0


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


def _units_at(
    level: UnitLevel | tuple[UnitLevel, ...], within_path: str | None
) -> list[ColumnElement[bool]]:
    """Units of ``level`` (or of any of several) inside ``within_path``, or containing it
    (a community worker asking for the community level sees their own community)."""
    conditions: list[ColumnElement[bool]] = [
        col(Unit.level).in_(level) if isinstance(level, tuple) else col(Unit.level) == level
    ]
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


def _open_cases_within(within_path: str | None) -> list[ColumnElement[bool]]:
    """:func:`_cases_within` for statements over the open cases: a range of the
    ``(is_open, unit_path)`` index, so that a district's open cases are read rather than
    every open case of the city compared by substring."""
    return [within_path_clause(col(Case.unit_path), within_path)] if within_path else []


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def composite_score(
    response: float | None, resolution: float | None, satisfaction: float | None
) -> float | None:
    return _composite(weights(), response, resolution, satisfaction)


def _composite(
    w: dict[str, float],
    response: float | None,
    resolution: float | None,
    satisfaction: float | None,
) -> float | None:
    parts = [
        (w["response"], response),
        (w["resolution"], resolution),
        (w["satisfaction"], satisfaction),
    ]
    present = [(w, r) for w, r in parts if r is not None]
    total = sum(w for w, _ in present)
    if not present or total == 0:
        return None
    return round(sum(w * r for w, r in present) / total, 4)


# --- the three rates ---------------------------------------------------------------------


class _Unit(NamedTuple):
    """What the figures show of a unit, and roll up by."""

    code: str
    name_zh: str
    name_en: str
    level: UnitLevel
    path: str


@lru_cache(maxsize=STATEMENTS_KEPT)
def _level_units_statement(
    level: UnitLevel | tuple[UnitLevel, ...], within_path: str | None
) -> Any:
    columns = (col(getattr(Unit, name)) for name in _Unit._fields)
    return select(*columns).where(*_units_at(level, within_path)).order_by(col(Unit.code))


def _level_units(
    session: Session, level: UnitLevel | tuple[UnitLevel, ...], within_path: str | None
) -> list[_Unit]:
    return [_Unit(*row) for row in session.exec(_level_units_statement(level, within_path))]


def _roll_up(
    units: list[_Unit], grouped: list[tuple[Any, ...]], width: int
) -> dict[str, list[int]]:
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


def _decided_per_path(
    session: Session, since: datetime, until: datetime, within: str | None
) -> list[tuple[Any, ...]]:
    """Per unit path, the cases decided in ``[since, until)`` (:mod:`models.decisions`
    keeps each case's deciding rows): for each rate the cases and the good ones, then the
    distinct cases of any rate. One range read of the covering index on ``at``."""
    settle(session)
    return list(session.exec(_decided_statement(since, until, within)).all())


@lru_cache(maxsize=STATEMENTS_KEPT)
def _decided_statement(since: datetime, until: datetime, within: str | None) -> Any:
    d = RateDecision
    figures: list[Any] = []
    for rate in Rate:
        is_rate = col(d.rate) == rate
        figures += [_count(is_rate), _count(and_(is_rate, col(d.good).is_(True)))]
    return (
        select(col(d.unit_path), *figures, func.count(func.distinct(col(d.case_id))))  # type: ignore[call-overload]
        .where(
            col(d.at) >= clock.ensure_utc(since),
            col(d.at) < clock.ensure_utc(until),
            *([_under(col(d.unit_path), literal(within))] if within else []),
        )
        .group_by(col(d.unit_path))
    )


def unit_rates(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    level: UnitLevel = UnitLevel.COMMUNITY,
    within_path: str | None = None,
) -> list[UnitRates]:
    """The three rates of every unit at ``level`` for cases decided in ``[since,
    until)``, ranked (see the module docstring for the definitions and the composite)."""
    return rates_by_level(
        session, since=since, until=until, levels=(level,), within_path=within_path
    )[level]


def rates_by_level(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    levels: tuple[UnitLevel, ...],
    within_path: str | None = None,
) -> dict[UnitLevel, list[UnitRates]]:
    """:func:`unit_rates` of each of ``levels``, from one read of the units and one of
    the decided cases: the monthly ranking and the monthly report show several levels
    of one month, and read the same decided cases once per level (the heaviest
    statement of both, two and three times over)."""
    unranked = _rates_by_level(
        session, since=since, until=until, levels=levels, within_path=within_path
    )
    return {level: _ranked(rows) for level, rows in unranked.items()}


def _rates_by_level(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    levels: tuple[UnitLevel, ...],
    within_path: str | None,
) -> dict[UnitLevel, list[UnitRates]]:
    """:func:`rates_by_level`, not ranked yet."""
    units = _level_units(session, levels, within_path)
    decided = _decided_per_path(session, since, until, within_path)
    return {level: _unit_rates([u for u in units if u.level == level], decided) for level in levels}


def _unit_rates(units: list[_Unit], decided: list[tuple[Any, ...]]) -> list[UnitRates]:
    totals = _roll_up(units, decided, 7)
    result: list[UnitRates] = []
    for unit in units:
        resp_n, in_time, res_n, resolved, rated, satisfied, cases = totals[unit.code]
        result.append(
            UnitRates(
                unit_code=unit.code,
                unit_name=unit.name_zh,
                unit_name_en=unit.name_en,
                level=unit.level,
                cases=cases,
                response_cases=resp_n,
                responded_in_time=in_time,
                response_rate=_rate(in_time, resp_n),
                resolution_cases=res_n,
                resolved=resolved,
                resolution_rate=_rate(resolved, res_n),
                rated=rated,
                satisfied=satisfied,
                satisfaction_rate=_rate(satisfied, rated),
                rank=None,
            )
        )
    return result


def _ranked(rows: list[UnitRates]) -> list[UnitRates]:
    """Score and rank: equal scores share a rank; units with nothing decided last."""
    w = weights()
    scored = [
        (_composite(w, r.response_rate, r.resolution_rate, r.satisfaction_rate), r)
        if r.cases
        else (None, r)
        for r in rows
    ]
    scored.sort(key=lambda p: (p[0] is None, -(p[0] or 0.0), p[1].unit_code))
    ranked: list[UnitRates] = []
    previous: float | None = None
    rank = 0
    for position, (score, r) in enumerate(scored, start=1):
        if score is not None and score != previous:
            rank, previous = position, score
        ranked.append(dataclasses.replace(r, score=score, rank=rank if score is not None else None))
    return ranked


def month_range(month: date) -> tuple[datetime, datetime]:
    """The calendar month (Asia/Shanghai) holding ``month``, as ``[since, until)``."""
    _first, start, end = _month_bounds(month)
    return start, end


def monthly_ranking(
    session: Session,
    *,
    month: date,
    levels: tuple[UnitLevel, ...] = (UnitLevel.COMMUNITY, UnitLevel.AGENCY),
    within_path: str | None = None,
) -> list[UnitRates]:
    """月度排名: the units of ``levels`` (communities and paired agencies by default)
    ranked together on the composite score of the calendar month."""
    since, until = month_range(month)
    by_level = _rates_by_level(
        session, since=since, until=until, levels=levels, within_path=within_path
    )
    return _ranked([r for lv in levels for r in by_level[lv]])


# --- overdue, backlog, escalations ---------------------------------------------------------


def overdue_by_level(
    session: Session,
    *,
    now: datetime,
    within_path: str | None = None,
    since: datetime | None = None,
) -> list[LevelCount]:
    """Open cases whose limit passed at each level (bottom of the tree first, agencies
    last): every recorded breach (escalation does not wipe it) and, for a case overdue
    now whose breach the sweep has not recorded yet, its current level. A case counts
    once per level. ``breaches`` counts the limits that passed at the level since
    ``since`` (default: the last 30 days), closed cases included."""
    now = clock.ensure_utc(now)
    counts = {
        UnitLevel(str(lv)): int(n)
        for lv, n in session.exec(_overdue_by_level_statement(within_path), params=at(now)).all()
    }
    start = clock.ensure_utc(since) if since else now - timedelta(days=30)
    passed = {
        UnitLevel(str(lv)): int(n)
        for lv, n in session.exec(
            _passed_statement(within_path), params={**at(now), SINCE.key: start}
        ).all()
    }
    order = sorted(UnitLevel, key=lambda lv: (lv == UnitLevel.AGENCY, lv.rank))
    return [LevelCount(lv, lv.zh, lv.en, counts.get(lv, 0), passed.get(lv, 0)) for lv in order]


@lru_cache(maxsize=STATEMENTS_KEPT)
def _overdue_by_level_statement(within_path: str | None) -> Any:
    """Per level, the open cases overdue there (:func:`overdue_by_level`), at ``NOW``."""
    # The breaches of the open cases, asked as "case among the open ones" rather than as
    # a join: joined, SQLite read every breach of ten years and looked its case up (85 ms
    # with 130,000 breaches next to a million cases); this reads the open cases' (13 ms).
    # Open says not merged (a terminal status, models.lifecycle), so the list of open
    # cases comes from the narrowest is_open index, (is_open, created_at): 4.6 ms for the
    # 12,500 of a million-case city against 9.9 ms when asked for the status as well.
    open_cases = select(col(Case.id)).where(col(Case.is_open).is_(True))
    recorded: Any = select(
        col(LimitBreach.case_id).label("case_id"), col(LimitBreach.unit_level).label("lv")
    ).where(
        col(LimitBreach.case_id).in_(open_cases),
        col(LimitBreach.unit_path).is_not(None),
        *([_under(col(LimitBreach.unit_path), literal(within_path))] if within_path else []),
    )
    # The open cases of the subtree as a range of the (is_open, unit_path) index: as a
    # substring comparison every open case of the city was read and its path compared
    # (12,500 at a million cases, for a district's quarter of them).
    current = (
        select(col(Case.id), col(Unit.level))
        .join(Unit, col(Unit.id) == col(Case.unit_id))
        .where(
            overdue_clause(NOW),
            *_open_cases_within(within_path),
        )
    )
    both = union_all(recorded, current).subquery()
    distinct = select(both.c.case_id, both.c.lv).distinct().subquery()
    return (
        select(distinct.c.lv, func.count())
        .where(distinct.c.lv.is_not(None))
        .group_by(distinct.c.lv)
    )


def passed_query(start: Moment, now: Moment, *, within_path: str | None) -> Any:
    """Per level, the limits that passed between ``start`` and ``now`` (closed cases
    included): read from the ``due_at`` index, the period's breaches only (without it,
    every breach of ten years was read)."""
    return (
        select(col(LimitBreach.unit_level), func.count(col(LimitBreach.id)))
        .where(
            col(LimitBreach.unit_level).is_not(None),
            col(LimitBreach.due_at) >= start,
            col(LimitBreach.due_at) < now,
            *([_under(col(LimitBreach.unit_path), literal(within_path))] if within_path else []),
        )
        .group_by(col(LimitBreach.unit_level))
    )


@lru_cache(maxsize=STATEMENTS_KEPT)
def _passed_statement(within_path: str | None) -> Any:
    return passed_query(SINCE, NOW, within_path=within_path)


def backlog_query(*, within_path: str | None, now: Moment) -> Any:
    """Per unit path, the open cases: all, in mediation, in follow-up, overdue at ``now``.

    Grouped by ``unit_path || ''``, not by the column: grouping by the column makes
    SQLite walk the unit_path index over every case of the subtree, ten years of closed
    ones included (0.4 s at a million cases), instead of reading the open cases from an
    ``is_open`` index and grouping those (7 ms). Same groups, on any database. The
    subtree is a range of the ``(is_open, unit_path)`` index: as a substring comparison
    every open case of the city was read for a district's (12.8 → 8.8 ms at a million
    cases, ``scripts/page_cpu.py --statements dashboard_district``)."""
    path = col(Case.unit_path).concat(literal_column("''"))
    return (
        select(  # type: ignore[call-overload]
            path,
            func.count(col(Case.id)),
            _count(col(Case.status) == S.IN_MEDIATION),
            _count(col(Case.status) == S.FOLLOW_UP),
            _count(overdue_clause(now)),
        )
        .where(
            col(Case.is_open).is_(True),
            col(Case.unit_path).is_not(None),
            *_open_cases_within(within_path),
        )
        .group_by(path)
    )


@lru_cache(maxsize=STATEMENTS_KEPT)
def _backlog_statement(within_path: str | None) -> Any:
    return backlog_query(within_path=within_path, now=NOW)


def backlog_by_unit(
    session: Session,
    *,
    within_path: str | None = None,
    level: UnitLevel = UnitLevel.COMMUNITY,
    now: datetime | None = None,
) -> list[UnitBacklog]:
    """Open cases per unit at ``level`` (its whole subtree), largest backlog first."""
    grouped = session.exec(_backlog_statement(within_path), params=at(now or clock.now())).all()
    units = _level_units(session, level, within_path)
    totals = _roll_up(units, list(grouped), 4)
    rows = [UnitBacklog(u.code, u.name_zh, u.name_en, *totals[u.code]) for u in units]
    return sorted(rows, key=lambda r: (-r.open, -r.overdue, r.unit_code))


def recent_escalations(
    session: Session,
    *,
    since: datetime,
    until: datetime | None = None,
    within_path: str | None = None,
    limit: int = 200,
) -> list[EscalationRow]:
    """Escalations since ``since`` (and before ``until``), newest first: case number,
    category, from and to. Read from the ``(verb, at)`` index: the period's escalations
    only."""
    statement = _escalations_statement(within_path, limit, bounded=until is not None)
    params = {SINCE.key: clock.ensure_utc(since)}
    if until is not None:
        params[UNTIL.key] = clock.ensure_utc(until)
    found = session.exec(statement, params=params).all()
    codes = {
        str(code)
        for data, _at, _n, _c in found
        for code in (data.get("from_unit"), data.get("to_unit"))
        if code
    }
    names = column_by_code(session, codes, Unit.name_zh)
    rows = []
    for data, moment, number, category in found:
        src = data.get("from_unit")
        dst = data.get("to_unit")
        level = data.get("level")
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
                at=clock.ensure_utc(moment),
            )
        )
    return rows


@lru_cache(maxsize=STATEMENTS_KEPT)
def _escalations_statement(within_path: str | None, limit: int, *, bounded: bool) -> Any:
    """:func:`recent_escalations` since ``SINCE`` (and, ``bounded``, before ``UNTIL``)."""
    return (
        select(col(CaseEvent.data), col(CaseEvent.at), col(Case.number), col(Case.category))
        .join(Case, col(Case.id) == col(CaseEvent.case_id))
        .where(
            col(CaseEvent.verb) == "escalated",
            col(CaseEvent.at) >= SINCE,
            *([col(CaseEvent.at) < UNTIL] if bounded else []),
            *_cases_within(within_path),
        )
        .order_by(col(CaseEvent.at).desc(), col(CaseEvent.id).desc())
        .limit(limit)
    )


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


def _respondent_label(session: Session, key: str) -> str | None:
    """:func:`_respondent_labels` of one key: the newest of its cases with a named
    respondent, read from the ``respondent_key`` index newest case first and stopping
    there (all of a firm's cases of ten years were read to keep the first)."""
    named = or_(
        func.coalesce(col(Party.org_name), "") != "",
        func.coalesce(col(Party.name_masked), "") != "",
    )
    found = session.exec(
        select(col(Party.org_name), col(Party.name_masked))
        .join(Case, col(Party.case_id) == col(Case.id))
        .where(col(Case.respondent_key) == key, col(Party.side) == "respondent", named)
        .order_by(col(Case.id).desc())
        .limit(1)
    ).first()
    return (found[0] or found[1]) if found is not None else None


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
    groups = session.exec(_clusters_statement(since, min_size, within_path)).all()
    labels = _respondent_labels(session, {str(k) for k, _c, _n, _p in groups})
    base = _cluster_cases(since, within_path) if groups else []
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


def _cluster_cases(since: datetime, within_path: str | None) -> list[Any]:
    return [
        col(Case.is_open).is_(True),
        col(Case.created_at) >= clock.ensure_utc(since),
        col(Case.respondent_key).is_not(None),
        *_cases_within(within_path),
    ]


@lru_cache(maxsize=STATEMENTS_KEPT)
def _clusters_statement(since: datetime, min_size: int, within_path: str | None) -> Any:
    return (
        select(
            col(Case.respondent_key),
            col(Case.category),
            func.count(col(Case.id)),
            func.sum(col(Case.people_affected)),
        )
        .where(*_cluster_cases(since, within_path))
        .group_by(col(Case.respondent_key), col(Case.category))
        .having(func.count(col(Case.id)) >= min_size)
        .order_by(func.count(col(Case.id)).desc(), col(Case.respondent_key))
    )


def _month_bounds(month_start: date) -> tuple[date, datetime, datetime]:
    if isinstance(month_start, datetime):
        month_start = clock.to_local(month_start).date()
    first = month_start.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, workdays.at_local(first, time(0, 0)), workdays.at_local(following, time(0, 0))


def _month_cases(start: datetime, end: datetime, within_path: str | None) -> list[Any]:
    return [
        col(Case.created_at) >= start,
        col(Case.created_at) < end,
        col(Case.status) != S.MERGED,
        *_cases_within(within_path),
    ]


def _most_common(
    session: Session, start: datetime, end: datetime, within_path: str | None
) -> dict[str, tuple[Any, ...]]:
    """Per kind (``respondent``, ``place``), the (category, key, count) that recurs most
    among the month's cases whose key is set; ties go to the first category,
    then the first key. One statement: the matching cases are read once (a month of a
    million-case city, 8,000 cases, each looked up in the table) and grouped both ways.
    The keys come back in a column each (a respondent's is text, a place's a number)."""
    found = session.exec(_most_common_statement(start, end, within_path)).all()
    # Each row's own key is set (the other kind's is NULL): that tells which it is.
    return {
        "respondent" if respondent is not None else "place": (
            category,
            respondent if respondent is not None else place,
            n,
        )
        for category, respondent, place, n in found
    }


@lru_cache(maxsize=STATEMENTS_KEPT)
def _most_common_statement(start: datetime, end: datetime, within_path: str | None) -> Any:
    """:func:`_most_common`'s one statement, built once per month and subtree."""
    matching = (
        select(
            col(Case.category).label("category"),
            col(Case.respondent_key).label("respondent"),
            col(Case.place_unit_id).label("place"),
        )
        .where(*_month_cases(start, end, within_path))
        .cte("matching")
    )

    def top(key: Any, respondent: Any, place: Any) -> Any:
        count = func.count()
        best = (
            select(
                matching.c.category,
                respondent.label("respondent"),
                place.label("place"),
                count.label("n"),
            )
            .where(key.is_not(None))
            .group_by(matching.c.category, key)
            .order_by(count.desc(), matching.c.category, key)
            .limit(1)
            .subquery()
        )
        return select(best)

    return union_all(
        top(matching.c.respondent, matching.c.respondent, cast(null(), Integer)),
        top(matching.c.place, cast(null(), String), matching.c.place),
    )


def problem_of_the_month(
    session: Session, *, month_start: date, within_path: str | None = None, latest: int = 10
) -> ProblemOfTheMonth | None:
    """The category with the respondent, or with the place, that recurs most among the
    month's cases (Asia/Shanghai month); ``None`` when nothing recurs (fewer than 2)."""
    first, start, end = _month_bounds(month_start)
    candidates: list[tuple[int, int, str, Category, Any]] = []
    tops = _most_common(session, start, end, within_path)
    # On a tie the respondent is preferred to the place.
    for preference, kind in enumerate(("respondent", "place")):
        top = tops.get(kind)
        if top is not None:
            candidates.append((int(top[2]), preference, kind, Category(top[0]), top[1]))
    if not candidates:
        return None
    count, _pref, kind, category, key = max(candidates, key=lambda c: (c[0], -c[1]))
    if count < 2:
        return None
    if kind == "respondent":
        label = _respondent_label(session, str(key)) or "（未具名 unnamed）"
        label_en, key_text = label, str(key)
        match = col(Case.respondent_key) == key
    else:
        unit = session.get(Unit, int(key))
        assert unit is not None
        label, label_en, key_text = unit.name_zh, unit.name_en, unit.code
        match = col(Case.place_unit_id) == key
    base = _month_cases(start, end, within_path)
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
