"""What a simulated period shows: the figures of one scenario, as plain JSON values.

Rates are :func:`models.metrics.unit_rates` (the dashboard's own definitions) per street,
community and paired agency, over the period and per calendar month; the rest is counted
from the sandbox's cases, events, breaches and referrals. Floats are rounded to four
places so that the same run always writes the same bytes.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from models import clock, metrics
from models.behaviour import settled_shares
from models.breaches import LimitBreach
from models.case import Case
from models.enums import BreachKind, CaseStatus, UnitLevel
from models.event import CaseEvent
from models.overdue import overdue_clause
from models.referral import Referral
from models.unit import Unit

LEVELS = (UnitLevel.STREET, UnitLevel.COMMUNITY, UnitLevel.AGENCY)
ROUND = 4


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, ROUND)


@dataclass
class Sampler:
    """Backlog (open cases) and overdue cases, once a simulated day."""

    days: list[str] = field(default_factory=list)
    backlog: list[int] = field(default_factory=list)
    overdue: list[int] = field(default_factory=list)

    def sample(self, session: Session, now: datetime) -> None:
        open_ = int(session.exec(select(func.count()).where(col(Case.is_open))).one())
        late = int(
            session.exec(select(func.count()).where(col(Case.is_open), overdue_clause(now))).one()
        )
        self.days.append(clock.to_local(now - timedelta(minutes=1)).date().isoformat())
        self.backlog.append(open_)
        self.overdue.append(late)


def _rates(session: Session, since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for level in LEVELS:
        for row in metrics.unit_rates(session, since=since, until=until, level=level):
            out[row.unit_code] = {
                "name": row.unit_name,
                "level": level.value,
                "cases": row.cases,
                "response": _r(row.response_rate),
                "resolution": _r(row.resolution_rate),
                "satisfaction": _r(row.satisfaction_rate),
                "composite": _r(row.score),
                "counts": [
                    row.responded_in_time,
                    row.response_cases,
                    row.resolved,
                    row.resolution_cases,
                    row.satisfied,
                    row.rated,
                ],
            }
    return out


def _months(start: datetime, end: datetime) -> list[date]:
    first = clock.to_local(start).date().replace(day=1)
    months: list[date] = []
    while clock.ensure_utc(metrics.month_range(first)[0]) < end:
        months.append(first)
        first = (first + timedelta(days=32)).replace(day=1)
    return months


def _overall(rates: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The whole district's three rates and composite, from the streets' and agencies'
    counts (every case is under one street, or with an agency)."""
    sums = [0] * 6
    for row in rates.values():
        if row["level"] in (UnitLevel.STREET.value, UnitLevel.AGENCY.value):
            sums = [a + b for a, b in zip(sums, row["counts"], strict=True)]
    parts = [sums[0] / sums[1] if sums[1] else None]
    parts += [sums[2] / sums[3] if sums[3] else None, sums[4] / sums[5] if sums[5] else None]
    score = metrics.composite_score(*parts)
    names = ("response", "resolution", "satisfaction")
    return {**{n: _r(p) for n, p in zip(names, parts, strict=True)}, "composite": _r(score)}


def _settled_by_level(session: Session, total: int) -> dict[str, float]:
    """The share of all simulated cases settled (an agreement, or settled directly) by a
    unit of each level; a referral the agency concludes counts for ``agency``."""
    levels = {u.id: u.level.value for u in session.exec(select(Unit)).all()}
    settled = session.exec(
        select(CaseEvent.case_id, CaseEvent.verb, CaseEvent.data, Case.unit_id)
        .join(Case, col(Case.id) == col(CaseEvent.case_id))
        .where(col(CaseEvent.verb).in_(["agreement_signed", "follow_up_due", "referral_concluded"]))
        .order_by(col(CaseEvent.id))
    ).all()
    where: dict[int, str] = {}
    for case_id, verb, data, unit_id in settled:
        if verb == "follow_up_due" and not (data or {}).get("resolution"):
            continue
        where.setdefault(case_id, levels.get(unit_id, "none"))
    counts = Counter(where.values())
    return {level: _r(n / total) or 0.0 for level, n in sorted(counts.items())} if total else {}


def _workload(session: Session, working_days: int) -> tuple[float, float, dict[str, int]]:
    """Cases each person acted on per working day of the period (median, p95 over the
    people who acted), and the cases each paired agency received."""
    rows = session.exec(
        select(CaseEvent.actor, func.count(func.distinct(CaseEvent.case_id)))
        .where(col(CaseEvent.actor).like("staff:%"))
        .group_by(col(CaseEvent.actor))
    ).all()
    per_day = sorted(int(n) / max(working_days, 1) for _a, n in rows)
    p50 = statistics.median(per_day) if per_day else 0.0
    p95 = per_day[min(len(per_day) - 1, int(0.95 * len(per_day)))] if per_day else 0.0
    codes = {u.id: u.code for u in session.exec(select(Unit)).all()}
    agencies = Counter(
        codes.get(to, "?")
        for to in session.exec(
            select(Referral.to_unit_id).where(col(Referral.to_unit_id).is_not(None))
        ).all()
        if to is not None
    )
    return round(p50, ROUND), round(p95, ROUND), dict(sorted(agencies.items()))


def measure(session: Session, start: datetime, end: datetime, sampler: Sampler) -> dict[str, Any]:
    from models import workdays

    rates = _rates(session, start, end)
    monthly = {
        m.strftime("%Y-%m"): _rates(session, *(clock.ensure_utc(t) for t in metrics.month_range(m)))
        for m in _months(start, end)
    }
    total = int(
        session.exec(
            select(func.count()).where(
                col(Case.status).not_in([CaseStatus.MERGED, CaseStatus.WITHDRAWN])
            )
        ).one()
    )
    breaches = session.exec(
        select(
            LimitBreach.kind, LimitBreach.unit_level, func.count(func.distinct(LimitBreach.case_id))
        ).group_by(col(LimitBreach.kind), col(LimitBreach.unit_level))
    ).all()
    by_level = {
        (str(level) if level else "none"): int(n)
        for kind, level, n in breaches
        if kind == BreachKind.RESOLUTION
    }
    breached = {f"{kind}@{level or 'none'}": int(n) for kind, level, n in breaches}
    referrals = session.exec(
        select(Referral.target, func.count()).group_by(col(Referral.target))
    ).all()
    working = workdays.working_days_between(
        clock.to_local(start).date(), clock.to_local(end).date()
    )
    p50, p95, agencies = _workload(session, working)
    shares = settled_shares(session)
    return {
        "cases": total,
        "by_category": {
            c.value: {"cases": n, "settled_low": shares.settled_low.get(c, 0)}
            for c, n in sorted(shares.cases.items(), key=lambda kv: kv[0].value)
        },
        "rates": rates,
        "monthly": monthly,
        **_overall(rates),
        "settled_share_by_level": _settled_by_level(session, total),
        "escalations_by_level": dict(sorted(by_level.items())),
        "breaches": dict(sorted(breached.items())),
        "referrals": {
            "total": sum(int(n) for _t, n in referrals),
            "by_target": {str(t): int(n) for t, n in sorted(referrals, key=lambda r: str(r[0]))},
            "by_agency": agencies,
        },
        "backlog": {"days": sampler.days, "open": sampler.backlog, "overdue": sampler.overdue},
        "overdue_peak": max(sampler.overdue, default=0),
        "backlog_end": sampler.backlog[-1] if sampler.backlog else 0,
        "workload_p50": p50,
        "workload_p95": p95,
    }
