"""The policy simulator (政策模拟): run scenarios over a period in a throwaway database.

For each :class:`models.scenario.Scenario` the district's units, staff, pairings and time
limits are copied from the live database into a new in-memory SQLite database (the live
one is only read), the scenario's policies and staffing changes are applied there, and
the complaints of the period (replayed from history or generated) are fed through
:class:`models.behaviour.Replay` on a virtual clock: the same triage, routing,
escalation, mediation, referral and follow-up services production uses, on the Chinese
working-day calendar. What is measured is :func:`models.sim_measure.measure`.

Behaviour defaults are fitted from the history (:func:`models.sim_fit.fit_behaviour`)
wherever a figure rests on at least :data:`models.sim_fit.FIT_MIN_CASES` decisions; a scenario's
``[behaviour]`` overrides them.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, func, select

from models import clock, session_cache, workdays
from models.behaviour import DEFAULT_RATES, BehaviourModel, CategoryRates, Replay
from models.case import Case, CaseCreate
from models.db import build_engine
from models.enums import Category, Channel, UnitLevel
from models.lifecycle import Actor
from models.policy import PolicySet, TimeLimitPolicy
from models.policy_load import load_policies
from models.scenario import Scenario, ScenarioError
from models.settings import get_settings
from models.sim_complaints import ComplaintMaker, clause_shares
from models.sim_fit import fit_behaviour, fitted_values
from models.staff import Staff
from models.tables import metadata
from models.unit import Pairing, Unit

COPIED: tuple[type[SQLModel], ...] = (Unit, Staff, Pairing, TimeLimitPolicy, PolicySet)

Arrival = tuple[datetime, CaseCreate, Actor, int | None]


@dataclass(frozen=True)
class Period:
    start: datetime
    days: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


# --- the throwaway database -----------------------------------------------------------------


def sandbox(live: Session) -> Session:
    """A new in-memory database holding a copy of ``live``'s units, staff, pairings and
    time limits (read only from ``live``)."""
    engine = build_engine("sqlite://")
    metadata.create_all(engine)
    target = Session(engine, expire_on_commit=False)
    # The sandbox's one writer is this session: its kept reads (units, time limits)
    # stay valid across its commits, and its own writes still clear them.
    session_cache.keep_across_commits(target)
    for model in COPIED:
        pk = model.__table__.primary_key.columns  # type: ignore[attr-defined]
        rows = live.exec(select(model).order_by(*pk)).all()
        target.add_all(model(**row.model_dump()) for row in rows)
        target.flush()
    target.commit()
    return target


def apply_scenario(session: Session, scenario: Scenario) -> None:
    """The scenario's time limits and staffing changes, in the sandbox."""
    if scenario.policy_text is not None:
        load_policies(session, scenario.policy_text, file=scenario.source, actor="simulate")
    for n, change in enumerate(scenario.staffing):
        unit = session.exec(select(Unit).where(Unit.code == change.unit)).first()
        if unit is None:
            raise ScenarioError(
                f"{scenario.source}: 无此单位 / no unit with code {change.unit!r} in the district"
            )
        if change.add >= 0:
            for i in range(change.add):
                session.add(
                    Staff(
                        username=f"sim-{scenario.key}-{n}-{i}"[:64],
                        display_name=f"模拟{change.role.value}{i + 1}",
                        role=change.role,
                        unit_id=unit.id,
                    )
                )
        else:
            members = session.exec(
                select(Staff)
                .where(Staff.unit_id == unit.id, Staff.role == change.role, col(Staff.active))
                .order_by(col(Staff.id).desc())
            ).all()
            for member in members[: -change.add]:
                member.active = False
                session.add(member)
    session.commit()


def with_overrides(model: BehaviourModel, scenario: Scenario, seed: int) -> BehaviourModel:
    rates: dict[Category, CategoryRates] = dict(model.rates)
    by_level = dict(model.success_by_level)
    for category, override in scenario.rates.items():
        base = rates.get(category, DEFAULT_RATES[Category.OTHER])
        changes = {k: v for k, v in override.model_dump().items() if v is not None}
        if "mediation_days" in changes:
            changes["mediation_days"] = tuple(changes["mediation_days"])
        rates[category] = dataclasses.replace(base, **changes)
        if "success" in changes:  # the scenario's figure holds at every level
            by_level = {k: v for k, v in by_level.items() if k[0] != category}
    changes = dict(scenario.behaviour, success_by_level=by_level)
    # A scenario's district-wide figure stands for every street: it replaces the fit.
    if "satisfied" in changes:
        changes["satisfied_by_street"] = {}
    if "respond_hours" in changes:
        changes["respond_by_street"] = {}
        changes["respond_by_street_category"] = {}
    try:
        # The simulator's dice are stratified (BehaviourModel.stratified): its figures are
        # the behaviour's expected ones, not one draw with binomial luck on top.
        return dataclasses.replace(model, seed=seed, rates=rates, stratified=True, **changes)
    except TypeError as exc:
        raise ScenarioError(f"{scenario.source}: [behaviour] {exc}") from None


# --- arrivals -------------------------------------------------------------------------------


def _submitter(data: CaseCreate) -> Actor:
    """Open311 complaints come from the public; the rest arrive by interface."""
    return Actor.public() if data.channel == Channel.OPEN311 else Actor.system()


def _addresses(live: Session) -> dict[str, tuple[str, str]]:
    """Each unit's code and its place as residents say it: a building's compound and its
    own name, any other unit's name twice."""
    units = {u.id: u for u in live.exec(select(Unit)).all()}
    out: dict[str, tuple[str, str]] = {}
    for unit in units.values():
        parent = units.get(unit.parent_id) if unit.parent_id is not None else None
        building = parent is not None and unit.level == UnitLevel.BUILDING
        out[unit.code] = (parent.name_zh if parent and building else unit.name_zh, unit.name_zh)
    return out


def replayed_arrivals(live: Session, period: Period, seed: int) -> list[Arrival]:
    """The history's own complaints of the period: arrival time, place, category, priority,
    channel and group size as recorded; the words and people are new
    (:mod:`models.sim_complaints`), the words said with the recorded priority's clause."""
    codes = {u.id: u.code for u in live.exec(select(Unit)).all()}
    addresses = _addresses(live)
    cases = live.exec(
        select(Case)
        .where(col(Case.created_at) >= period.start, col(Case.created_at) < period.end)
        .order_by(col(Case.created_at), col(Case.id))
    ).all()
    maker = ComplaintMaker()
    threshold = get_settings().group_case_threshold
    out: list[Arrival] = []
    for case in cases:
        place = codes.get(case.place_unit_id) if case.place_unit_id is not None else None
        at = clock.ensure_utc(case.received_at or case.created_at)
        data = maker.make(
            case.category,
            at=at,
            clause=maker.clause_for(case.priority),
            place=place,
            where=addresses.get(place) if place else None,
            # Triage's own verdicts are kept: a group case stays one, and its priority.
            people=max(case.people_affected, threshold if case.is_group else 1),
            priority=case.priority,
            priority_locked=True,
            channel=case.channel,
        )
        out.append((at, data, _submitter(data), None))
    return out


def _category_mix(live: Session, scenario: Scenario) -> dict[Category, float]:
    mix = dict(scenario.arrivals.mix)
    if not mix:
        rows = live.exec(select(Case.category, func.count()).group_by(col(Case.category))).all()
        mix = {Category(c): float(n) for c, n in rows} or {c: 1.0 for c in Category}
    return mix


def _places(live: Session) -> list[str]:
    return list(
        live.exec(
            select(Unit.code)
            .join(Case, col(Case.place_unit_id) == col(Unit.id))
            .order_by(col(Case.id))
        ).all()
    ) or list(
        live.exec(
            select(Unit.code).where(Unit.level == UnitLevel.BUILDING).order_by(col(Unit.code))
        ).all()
    )


def generated_arrivals(
    live: Session, scenario: Scenario, period: Period, seed: int
) -> list[Arrival]:
    """Complaints at ``per_working_day`` (times the month's seasonality factor) on each
    working day of the period, in office hours, of the scenario's category mix (else the
    history's, else even), at places drawn from the history's (else every building), each
    with new words and people (:mod:`models.sim_complaints`) whose danger, unrest and
    consultation clauses come as often as in the history."""
    spec = scenario.arrivals
    rng = random.Random(seed * 7919 + 17)
    mix = _category_mix(live, scenario)
    categories, weights = list(mix), list(mix.values())
    places, addresses = _places(live), _addresses(live)
    maker, shares = ComplaintMaker(), clause_shares(live)
    out: list[Arrival] = []
    day = clock.to_local(period.start).date()
    while workdays.at_local(day, _NOON) < period.end:
        if workdays.is_working_day(day):
            expected = spec.per_working_day * spec.seasonality.get(day.month, 1.0)
            count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            for _ in range(count):
                category = rng.choices(categories, weights)[0]
                at = workdays.at_local(day, _NOON) + timedelta(minutes=rng.uniform(-240, 300))
                people = rng.randint(5, 40) if rng.random() < spec.group_share else 1
                place = rng.choice(places) if places else None
                data = maker.make(
                    category,
                    at=at,
                    clause=shares.draw(rng),
                    place=place,
                    where=addresses.get(place) if place else None,
                    people=people,
                )
                out.append((at, data, _submitter(data), None))
        day += timedelta(days=1)
    return [a for a in sorted(out, key=lambda a: a[0]) if period.start <= a[0] < period.end]


_NOON = datetime.strptime("12:30", "%H:%M").time()


# --- running --------------------------------------------------------------------------------


@contextmanager
def virtual_time(start: datetime) -> Iterator[clock.VirtualClock]:
    previous = clock.get_clock()
    vclock = clock.VirtualClock(start)
    clock.set_clock(vclock)
    try:
        yield vclock
    finally:
        clock.set_clock(previous)


Progress = Callable[[int, int], None]  # (days done, days in all)


def run_scenario(
    live: Session,
    scenario: Scenario,
    period: Period,
    *,
    seed: int,
    behaviour: BehaviourModel | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run one scenario and return what it measured (see :mod:`models.sim_measure`)."""
    from models.sim_measure import Sampler, measure

    fitted: dict[str, int] = {}
    if behaviour is None:
        behaviour, fitted = fit_behaviour(live, seed=seed)
    model = with_overrides(behaviour, scenario, seed)
    if scenario.arrivals.mode == "replay":
        arrivals = replayed_arrivals(live, period, seed)
    else:
        arrivals = generated_arrivals(live, scenario, period, seed)
    if not arrivals:
        raise ScenarioError(
            f"{scenario.source}: 该时段没有案件可模拟 / no complaints to simulate in the period "
            '(replay needs history in it; or use [arrivals] mode = "generate")'
        )
    session = sandbox(live)
    try:
        apply_scenario(session, scenario)
        with virtual_time(period.start - timedelta(minutes=1)) as vclock:
            replay = Replay(session, model, vclock)
            for at, data, actor, recorder in arrivals:
                replay.schedule(data, at=at, actor=actor, recorder=recorder)
            sampler = Sampler()
            for day in range(1, period.days + 1):
                replay.run(until=period.start + timedelta(days=day))
                sampler.sample(session, vclock.now())
                if progress is not None:
                    progress(day, period.days)
            result = measure(session, period.start, period.end, sampler)
        result["arrivals"] = len(arrivals)
        result["fitted_from"] = fitted  # decisions each fitted figure rests on
        # ... and its value, as fitted (a scenario's [behaviour] may override it)
        result["fitted"] = fitted_values(behaviour, fitted)
        result["name"] = scenario.name
        return result
    finally:
        bind = session.get_bind()
        session.close()
        if isinstance(bind, Engine):
            bind.dispose()


# --- back-test ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreetFit:
    code: str
    cases: int
    observed: tuple[float | None, float | None, float | None]
    simulated: tuple[float | None, float | None, float | None]
    decided: tuple[int, int, int] = (0, 0, 0)  # the observed rates' denominators

    @property
    def worst_gap(self) -> float:
        """The largest gap of the three rates, in percentage points."""
        gaps = [
            abs(o - s) * 100
            for o, s in zip(self.observed, self.simulated, strict=True)
            if o is not None and s is not None
        ]
        return max(gaps, default=0.0)


def backtest(
    live: Session, period: Period, *, seed: int, scenario: Scenario | None = None
) -> list[StreetFit]:
    """Replay ``live``'s own complaints of the period with its own limits and the
    behaviour fitted from it (or ``scenario``'s limits and behaviour: to see that a wrong
    policy or wrong people do not fit), and set each street's three rates beside the
    observed. With the seed the history was made with, each case meets the same
    chances (:meth:`models.behaviour.Replay._chance`) and a gap measures the model and
    its fit; with another, luck adds binomial noise of a few points per street."""
    from models import metrics
    from models.scenario import parse_scenario

    observed = {
        r.unit_code: r
        for r in metrics.unit_rates(
            live, since=period.start, until=period.end, level=UnitLevel.STREET
        )
    }
    as_is = scenario or parse_scenario('name = "as-is"\n', file="as-is.toml")
    result = run_scenario(live, as_is, period, seed=seed)
    fits: list[StreetFit] = []
    for code, row in sorted(observed.items()):
        sim = result["rates"].get(code, {})
        fits.append(
            StreetFit(
                code=code,
                cases=row.cases,
                observed=(row.response_rate, row.resolution_rate, row.satisfaction_rate),
                simulated=(sim.get("response"), sim.get("resolution"), sim.get("satisfaction")),
                decided=(row.response_cases, row.resolution_cases, row.rated),
            )
        )
    return fits
