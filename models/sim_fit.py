"""Behaviour fitted from a district's history, for the policy simulator (拟合行为参数).

What people did, read from the events, contacts and return visits of the database:

* per category: the chance a first-contact worker (grid or community worker) settles a
  case directly rather than hand it to the mediation committee; the chance the parties
  consent to mediation; the chance a mediation ends in an agreement, and the same per
  category **and level** of the unit that mediated (community, street, district, ...);
* per street, and per street and category: the office hours from the assignment to the
  first contact (as quantiles, sampled between them);
* per street: the satisfaction rate (the chance a resident is satisfied at the return
  visit), and the same for the cases judged beyond any street (the agencies);
* for the district: the share of failed mediations referred on.

A figure is fitted only where it rests on at least :data:`FIT_MIN_CASES` decisions;
elsewhere the coarser figure stands in (category for category and level, street for
street and category), else the :class:`models.behaviour.BehaviourModel` default. Why 30:
a share measured on n decisions is uncertain by sqrt(p (1 - p) / n), at most 9 points
and for the usual 0.8-0.9 about 6-7 points when n = 30; the defaults are a mediation
centre's judgement, easily 10-15 points off for a given district. From 30 decisions on
the history is the better guess; below, a fitted figure would mostly fit noise. The
counts each fitted figure rests on are returned beside the model (``fitted_from``).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from models import workdays
from models.behaviour import DEFAULT_RATES, FIRST_CONTACT, BehaviourModel, CategoryRates
from models.case import Case
from models.clock import ensure_utc
from models.contact import CaseContact
from models.enums import Category, Priority, SatisfiedAnswer, StaffRole, UnitLevel
from models.event import CaseEvent
from models.follow_up import FollowUp
from models.staff import Staff
from models.unit import Unit

FIT_MIN_CASES = 30  # decisions a figure needs before it is fitted (module docstring: why)
HAPPY = (SatisfiedAnswer.SATISFIED, SatisfiedAnswer.BASICALLY)
QUANTILES = 20  # the first-contact delays kept per street: 5% steps, min and max
Fitted = dict[str, int]


def working_hours_between(start: datetime, end: datetime) -> float:
    """Office hours (09:00-18:00 of working days) from ``start`` to ``end``."""
    start, end = ensure_utc(start), ensure_utc(end)
    if end <= start:
        return 0.0
    total = timedelta()
    day = workdays.local_date(start)
    while (opening := workdays.at_local(day, workdays.OPEN)) < end:
        if workdays.is_working_day(day):
            closing = workdays.at_local(day, workdays.CLOSE)
            total += max(timedelta(), min(closing, end) - max(opening, start))
        day += timedelta(days=1)
    return total.total_seconds() / 3600


def _street_of(session: Session) -> dict[str, str]:
    """A unit path -> the code of the street it lies under."""
    streets = set(session.exec(select(Unit.code).where(Unit.level == UnitLevel.STREET)).all())
    out: dict[str, str] = {}
    for path in session.exec(select(Unit.path)).all():
        found = [code for code in path.split("/") if code in streets]
        if found:
            out[path] = found[0]
    return out


VERBS = (
    "assigned",
    "escalated",
    "handed_to_committee",
    "referred",
    "acceptance_reviewed",
    "mediators_named",
    "consent_recorded",
    "agreement_signed",
    "mediation_failed",
    "follow_up_due",
)


def _verbs(session: Session) -> dict[int, list[tuple[str, dict[str, object]]]]:
    rows = session.exec(
        select(CaseEvent.case_id, CaseEvent.verb, CaseEvent.data)
        .where(col(CaseEvent.verb).in_(VERBS))
        .order_by(col(CaseEvent.case_id), col(CaseEvent.seq))
    ).all()
    out: dict[int, list[tuple[str, dict[str, object]]]] = defaultdict(list)
    for case_id, verb, data in rows:
        out[case_id].append((verb, dict(data or {})))
    return out


@dataclass
class _Tally:
    """Decisions counted per key: (good, all)."""

    good: Counter[object] = field(default_factory=Counter)
    all: Counter[object] = field(default_factory=Counter)

    def add(self, key: object, good: bool) -> None:
        self.all[key] += 1
        self.good[key] += good

    def share(self, key: object) -> float | None:
        n = self.all[key]
        return round(self.good[key] / n, 3) if n >= FIT_MIN_CASES else None


@dataclass
class _Tallies:
    direct: _Tally = field(default_factory=_Tally)  # settled directly (of settled or handed)
    consent: _Tally = field(default_factory=_Tally)  # consented (of committees' cases)
    success: _Tally = field(default_factory=_Tally)  # agreement (of mediations), by category
    by_level: _Tally = field(default_factory=_Tally)  # the same by (category, level)
    referred: _Tally = field(default_factory=_Tally)  # failed mediations referred on


def _count_case(
    t: _Tallies,
    category: Category,
    seen: list[tuple[str, dict[str, object]]],
    *,
    direct_eligible: bool,
    level_of: dict[str, UnitLevel],
) -> None:
    """One case's decisions, in the order its events happened."""
    unit: UnitLevel | None = None
    first: str | None = None  # how the first-contact worker's decision went
    named = consented = False
    for verb, data in seen:
        code = data.get("unit") or data.get("to_unit")
        if verb in ("assigned", "escalated", "handed_to_committee", "referred") and code:
            unit = level_of.get(str(code), unit)
        settled = verb == "follow_up_due" and bool(data.get("resolution"))
        if first is None and (verb in ("handed_to_committee", "acceptance_reviewed") or settled):
            first = verb
        if verb == "mediators_named":
            named = True
        elif verb == "consent_recorded" and named and not consented:
            consented = True
            t.consent.add(category, True)
        elif settled and named and not consented:
            t.consent.add(category, False)
            named = False
        elif verb in ("agreement_signed", "mediation_failed"):
            ok = verb == "agreement_signed"
            t.success.add(category, ok)
            t.by_level.add((category, unit), ok)
            if not ok:
                t.referred.add("all", data.get("referral") is not None)
    if direct_eligible and first in ("handed_to_committee", "follow_up_due"):
        t.direct.add(category, first == "follow_up_due")


def _tallies(session: Session) -> _Tallies:
    roles = {int(i or 0): StaffRole(r) for i, r in session.exec(select(Staff.id, Staff.role)).all()}
    level_of = {
        code: UnitLevel(level) for code, level in session.exec(select(Unit.code, Unit.level)).all()
    }
    verbs = _verbs(session)
    t = _Tallies()
    cases = session.exec(
        select(Case.id, Case.category, Case.priority, Case.is_group).order_by(col(Case.id))
    ).all()
    for cid, raw, priority, group in cases:
        seen = verbs.get(int(cid or 0), [])
        holder = next((d.get("assignee_id") for v, d in seen if v == "assigned"), None)
        # Consultations and group cases never settle directly in the model.
        eligible = (
            priority != Priority.CONSULTATION
            and not group
            and roles.get(int(str(holder or 0))) in FIRST_CONTACT
        )
        _count_case(t, Category(raw), seen, direct_eligible=eligible, level_of=level_of)
    return t


def _rates(t: _Tallies, fitted: Fitted) -> dict[Category, CategoryRates]:
    rates = dict(DEFAULT_RATES)
    for category in Category:
        changes: dict[str, Any] = {}
        for name, tally in (
            ("settle_directly", t.direct),
            ("consent", t.consent),
            ("success", t.success),
        ):
            share = tally.share(category)
            if share is not None:
                changes[name] = share
                fitted[f"{name}.{category.value}"] = tally.all[category]
        base = rates.get(category, DEFAULT_RATES[Category.OTHER])
        rates[category] = dataclasses.replace(base, **changes)
    return rates


def _success_by_level(t: _Tallies, fitted: Fitted) -> dict[tuple[Category, UnitLevel], float]:
    out: dict[tuple[Category, UnitLevel], float] = {}
    for category in Category:
        for level in UnitLevel:
            share = t.by_level.share((category, level))
            if share is not None:
                out[(category, level)] = share
                name = f"success.{category.value}.{level.value}"
                fitted[name] = t.by_level.all[(category, level)]
    return out


def _quantiles(hours: list[float]) -> tuple[float, ...]:
    cuts = statistics.quantiles(hours, n=QUANTILES, method="inclusive")
    return tuple(round(h, 3) for h in (min(hours), *cuts, max(hours)))


Delays = tuple[dict[str, tuple[float, ...]], dict[tuple[str, Category], tuple[float, ...]]]


def _respond(session: Session, fitted: Fitted) -> Delays:
    """Office hours from a case's first assignment to its first contact, per street and
    per street and category."""
    assigned = dict(
        session.exec(
            select(CaseEvent.case_id, func.min(CaseEvent.at))
            .where(CaseEvent.verb == "assigned")
            .group_by(col(CaseEvent.case_id))
        ).all()
    )
    categories = dict(session.exec(select(Case.id, Case.category)).all())
    first = session.exec(
        select(CaseContact.case_id, func.min(CaseContact.at), CaseContact.unit_path).group_by(
            col(CaseContact.case_id)
        )
    ).all()
    street_of = _street_of(session)
    delays: dict[str, list[float]] = defaultdict(list)
    cells: dict[tuple[str, Category], list[float]] = defaultdict(list)
    for cid, at, path in first:
        street = street_of.get(path or "")
        if street is not None and cid in assigned:
            delay = working_hours_between(assigned[cid], at)
            delays[street].append(delay)
            cells[(street, Category(categories[cid]))].append(delay)
    by_street: dict[str, tuple[float, ...]] = {}
    for street, hours in sorted(delays.items()):
        if len(hours) >= FIT_MIN_CASES:
            by_street[street] = _quantiles(hours)
            fitted[f"respond.{street}"] = len(hours)
    by_cell: dict[tuple[str, Category], tuple[float, ...]] = {}
    for (street, category), hours in sorted(cells.items()):
        if len(hours) >= FIT_MIN_CASES:
            by_cell[(street, category)] = _quantiles(hours)
            fitted[f"respond.{street}.{category.value}"] = len(hours)
    return by_street, by_cell


Satisfaction = tuple[float | None, dict[str, float]]


def _visit_shares(session: Session) -> tuple[_Tally, dict[str, str]]:
    """Return visits answered satisfied, per street of the visited case ("" beyond
    streets) and over all (None)."""
    rows = session.exec(
        select(Case.unit_path, FollowUp.satisfied)
        .join(Case, col(Case.id) == col(FollowUp.case_id))
        .where(col(FollowUp.satisfied).is_not(None))
    ).all()
    street_of = _street_of(session)
    t = _Tally()
    for path, answer in rows:
        good = answer in HAPPY
        t.add(street_of.get(path or "", ""), good)
        t.add(None, good)
    return t, street_of


def _satisfaction(session: Session, fitted: Fitted) -> Satisfaction:
    """Per street, the satisfaction rate (满意率, :mod:`models.metrics`: each case's
    deciding answer at an independent return visit, over the history): the chance a
    resident is satisfied, fitted to exactly what the rate counts. Where a street has
    too few such answers (or a history has no rate decisions), the share of all its
    return visits answered satisfied; likewise for the cases beyond streets (the
    agencies), else over all, which stands for any unit without a street figure."""
    from models import metrics

    rates: dict[str, tuple[float, int]] = {}
    span = session.exec(select(func.min(FollowUp.done_at), func.max(FollowUp.done_at))).one()
    if span[0] is not None and span[1] is not None:
        since, until = ensure_utc(span[0]), ensure_utc(span[1]) + timedelta(seconds=1)
        for level in (UnitLevel.STREET, UnitLevel.AGENCY):
            for row in metrics.unit_rates(session, since=since, until=until, level=level):
                if row.rated >= FIT_MIN_CASES and row.satisfaction_rate is not None:
                    key = row.unit_code if level == UnitLevel.STREET else ""
                    rates[key] = (row.satisfaction_rate, row.rated)
    visits, _street_of_path = _visit_shares(session)
    by_street: dict[str, float] = {}
    for street in sorted({*(str(k) for k in visits.all if k), *(k for k in rates if k)}):
        share, n = rates.get(street) or (visits.share(street), visits.all[street])
        if share is not None:
            by_street[street] = round(share, 3)
            fitted[f"satisfaction.{street}"] = n
    beyond = rates.get("") or (visits.share(""), visits.all[""])
    if beyond[0] is not None:
        fitted["satisfaction.beyond_streets"] = beyond[1]
        return round(beyond[0], 3), by_street
    overall = visits.share(None)
    if overall is not None:
        fitted["satisfaction"] = visits.all[None]
    return overall, by_street


def fit_behaviour(live: Session, *, seed: int) -> tuple[BehaviourModel, Fitted]:
    """A :class:`BehaviourModel` fitted from ``live``'s history (see the module
    docstring), and the number of decisions each fitted figure rests on."""
    fitted: Fitted = {}
    tallies = _tallies(live)
    by_street, by_cell = _respond(live, fitted)
    model = BehaviourModel(
        seed=seed,
        rates=_rates(tallies, fitted),
        success_by_level=_success_by_level(tallies, fitted),
        respond_by_street=by_street,
        respond_by_street_category=by_cell,
    )
    refer = tallies.referred.share("all")
    if refer is not None:
        model = dataclasses.replace(model, refer_after_failure=refer)
        fitted["refer_after_failure"] = tallies.referred.all["all"]
    satisfied, satisfied_by_street = _satisfaction(live, fitted)
    if satisfied is not None:
        model = dataclasses.replace(model, satisfied=satisfied)
    model = dataclasses.replace(model, satisfied_by_street=satisfied_by_street)
    return model, dict(sorted(fitted.items()))


def fitted_values(model: BehaviourModel, fitted: Fitted) -> dict[str, float]:
    """The value of each fitted figure (named as in ``fitted``): a share, or for a first
    contact the median office hours."""
    out: dict[str, float] = {}
    for key in fitted:
        kind, _, rest = key.partition(".")
        parts = rest.split(".") if rest else []
        value: float
        if kind in ("settle_directly", "consent") or (kind == "success" and len(parts) == 1):
            value = getattr(model.rate(Category(parts[0])), kind)
        elif kind == "success":
            value = model.success(Category(parts[0]), UnitLevel(parts[1]))
        elif kind == "respond":
            span = model.respond(parts[0], Category(parts[1]) if len(parts) > 1 else Category.OTHER)
            value = span[len(span) // 2]
        elif kind == "satisfaction" and parts and parts[0] != "beyond_streets":
            value = model.satisfaction(parts[0])
        elif kind == "satisfaction":
            value = model.satisfied
        else:
            value = model.refer_after_failure
        out[key] = round(value, 3)
    return out
