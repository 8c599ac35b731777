"""Behaviour fitted from a district's history, for the policy simulator (拟合行为参数).

What people did, read from the events, contacts and return visits of the database: per
category the chance a first-contact worker settles a case directly and the chance a
mediation ends in an agreement; per street how long the first contact took after the
assignment (in office hours, as quantiles) and how often residents were satisfied. A
figure is fitted only where it rests on at least :data:`FIT_MIN_CASES` decisions (fewer
would mostly fit noise); elsewhere the :class:`models.behaviour.BehaviourModel` default
stays. The counts each figure rests on are returned beside the model.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from models import workdays
from models.behaviour import DEFAULT_RATES, BehaviourModel, CategoryRates
from models.case import Case
from models.clock import ensure_utc
from models.contact import CaseContact
from models.enums import Category, Priority, SatisfiedAnswer, UnitLevel
from models.event import CaseEvent
from models.follow_up import FollowUp
from models.unit import Unit

FIT_MIN_CASES = 30  # decisions a figure needs before it is fitted rather than assumed
QUANTILES = 20  # the first-contact delays kept per street: 5% steps, min and max
HAPPY = (SatisfiedAnswer.SATISFIED, SatisfiedAnswer.BASICALLY)


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


def _verbs(session: Session) -> dict[int, list[tuple[str, dict[str, object]]]]:
    wanted = ["handed_to_committee", "follow_up_due", "agreement_signed", "mediation_failed"]
    rows = session.exec(
        select(CaseEvent.case_id, CaseEvent.verb, CaseEvent.data)
        .where(col(CaseEvent.verb).in_(wanted))
        .order_by(col(CaseEvent.id))
    ).all()
    out: dict[int, list[tuple[str, dict[str, object]]]] = defaultdict(list)
    for case_id, verb, data in rows:
        out[case_id].append((verb, dict(data or {})))
    return out


def _rates(session: Session, fitted: dict[str, int]) -> dict[Category, CategoryRates]:
    """Per category: settled directly (of the cases a first-contact worker settled or
    handed on; consultations and group cases, which never settle that way in the
    model, left out) and mediation success (of the mediations concluded)."""
    cases = session.exec(select(Case.id, Case.category, Case.priority, Case.is_group)).all()
    verbs = _verbs(session)
    settled: Counter[Category] = Counter()
    handed: Counter[Category] = Counter()
    signed: Counter[Category] = Counter()
    failed: Counter[Category] = Counter()
    for cid, raw, priority, group in cases:
        category = Category(raw)
        seen = verbs.get(int(cid or 0), [])
        names = [verb for verb, _data in seen]
        signed[category] += names.count("agreement_signed")
        failed[category] += names.count("mediation_failed")
        if priority == Priority.CONSULTATION or group:
            continue
        if "handed_to_committee" in names:
            handed[category] += 1
        elif any(verb == "follow_up_due" and data.get("resolution") for verb, data in seen):
            settled[category] += 1
    rates = dict(DEFAULT_RATES)
    for category in Category:
        base = rates.get(category, DEFAULT_RATES[Category.OTHER])
        direct = settled[category] + handed[category]
        if direct >= FIT_MIN_CASES:
            base = dataclasses.replace(base, settle_directly=round(settled[category] / direct, 3))
            fitted[f"settle_directly.{category.value}"] = direct
        mediations = signed[category] + failed[category]
        if mediations >= FIT_MIN_CASES:
            base = dataclasses.replace(base, success=round(signed[category] / mediations, 3))
            fitted[category.value] = mediations
        rates[category] = base
    return rates


def _respond(session: Session, fitted: dict[str, int]) -> dict[str, tuple[float, ...]]:
    """Per street: office hours from a case's first assignment to its first contact."""
    assigned = dict(
        session.exec(
            select(CaseEvent.case_id, func.min(CaseEvent.at))
            .where(CaseEvent.verb == "assigned")
            .group_by(col(CaseEvent.case_id))
        ).all()
    )
    first = session.exec(
        select(CaseContact.case_id, func.min(CaseContact.at), CaseContact.unit_path).group_by(
            col(CaseContact.case_id)
        )
    ).all()
    street_of = _street_of(session)
    delays: dict[str, list[float]] = defaultdict(list)
    for cid, at, path in first:
        street = street_of.get(path or "")
        if street is not None and cid in assigned:
            delays[street].append(working_hours_between(assigned[cid], at))
    out: dict[str, tuple[float, ...]] = {}
    for street, hours in sorted(delays.items()):
        if len(hours) >= FIT_MIN_CASES:
            cuts = statistics.quantiles(hours, n=QUANTILES, method="inclusive")
            out[street] = tuple(round(h, 3) for h in (min(hours), *cuts, max(hours)))
            fitted[f"respond.{street}"] = len(hours)
    return out


Satisfaction = tuple[float | None, dict[str, float]]


def _satisfaction(session: Session, fitted: dict[str, int]) -> Satisfaction:
    """The share of return visits answered satisfied, over all and per street."""
    rows = session.exec(
        select(Case.unit_path, FollowUp.satisfied)
        .join(Case, col(Case.id) == col(FollowUp.case_id))
        .where(col(FollowUp.satisfied).is_not(None))
    ).all()
    street_of = _street_of(session)
    happy: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for path, answer in rows:
        street = street_of.get(path or "", "")
        total[street] += 1
        happy[street] += answer in HAPPY
    by_street = {
        street: round(happy[street] / n, 3)
        for street, n in sorted(total.items())
        if street and n >= FIT_MIN_CASES
    }
    fitted.update({f"satisfaction.{s}": total[s] for s in by_street})
    overall = sum(total.values())
    if overall < FIT_MIN_CASES:
        return None, by_street
    fitted["satisfaction"] = overall
    return round(sum(happy.values()) / overall, 3), by_street


def fit_behaviour(live: Session, *, seed: int) -> tuple[BehaviourModel, dict[str, int]]:
    """A :class:`BehaviourModel` fitted from ``live``'s history (see the module
    docstring), and the number of decisions each fitted figure rests on."""
    fitted: dict[str, int] = {}
    model = BehaviourModel(
        seed=seed, rates=_rates(live, fitted), respond_by_street=_respond(live, fitted)
    )
    satisfied, by_street = _satisfaction(live, fitted)
    if satisfied is not None:
        model = dataclasses.replace(model, satisfied=satisfied)
    return dataclasses.replace(model, satisfied_by_street=by_street), dict(sorted(fitted.items()))
