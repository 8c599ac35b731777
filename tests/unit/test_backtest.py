"""Back-test of the policy simulator (models.simulate.backtest): replaying the demo city's
own history with its own time limits and the behaviour fitted from that history gives
each street's three rates within 3 percentage points of what the history shows; the
same replay under a policy the history did not have does not fit.

The history (models.sim_history) is made by people whose luck is their own (independent
dice); the simulator spreads each street's dice evenly (BehaviourModel.stratified), so
that what it shows is the fitted behaviour's expected rate rather than one draw with
binomial noise of 2-3 points per street on top. A gap is then the model's and the
fit's, which is what 3 points are meant to judge."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from models import clock
from models.behaviour import DEFAULT_RATES
from models.db import build_engine
from models.enums import Category, UnitLevel
from models.scenario import parse_scenario
from models.sim_fit import FIT_MIN_CASES, fit_behaviour
from models.sim_history import DEMO_PEOPLE, demo_history
from models.simulate import Period, StreetFit, backtest
from models.tables import metadata

pytestmark = pytest.mark.slow

# Eight weeks of complaints, about 1,300: 220 to 380 a street, enough for every street's
# figures to be fitted (30 decisions each) and for its history's rates to rest on ~150.
PERIOD = Period(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), 60)
PER_WORKING_DAY = 30
MIN_CASES_A_STREET = 200
SEED = 11  # the history's
SIM_SEED = 2026  # the simulator's default (tiaojie simulate --seed)
TOLERANCE_PP = 3.0

# Every case must be answered within two office hours: a policy the history never had.
STRICT = """
name = "两小时响应 Respond within 2 working hours"
[[limit]]
name = "全部：2小时响应 All: respond within 2 working hours"
respond = "2 working_hours"
resolve = "13 working_days"
when_passed = "escalate"
"""


@pytest.fixture(scope="module")
def history() -> Iterator[Session]:
    previous = clock.get_clock()
    engine = build_engine("sqlite://")
    metadata.create_all(engine)
    session = Session(engine, expire_on_commit=False)
    try:
        demo_history(session, PERIOD, per_working_day=PER_WORKING_DAY, seed=SEED)
        yield session
    finally:
        clock.set_clock(previous)
        session.close()
        engine.dispose()


def misfits(fits: list[StreetFit]) -> list[str]:
    out = []
    for fit in fits:
        for rate, name in enumerate(("response", "resolution", "satisfaction")):
            o, s = fit.observed[rate], fit.simulated[rate]
            gap = abs(o - s) * 100 if o is not None and s is not None else math.inf
            if gap > TOLERANCE_PP:
                out.append(f"{fit.code} {name}: {gap:.1f} pp")
    return out


def _table(fits: list[StreetFit]) -> str:
    def pct(values: tuple[float | None, ...]) -> str:
        return " ".join("-" if v is None else f"{v:.1%}" for v in values)

    return "\n".join(
        f"{f.code}: {f.cases} cases, observed {pct(f.observed)}, "
        f"simulated {pct(f.simulated)}, worst gap {f.worst_gap:.1f} pp"
        for f in fits
    )


def test_each_street_within_three_points_of_its_history(history: Session) -> None:
    fits = backtest(history, PERIOD, seed=SIM_SEED)
    print(_table(fits))
    assert {f.code for f in fits} == set(DEMO_PEOPLE.respond_by_street)
    assert all(f.cases >= MIN_CASES_A_STREET for f in fits), _table(fits)
    assert misfits(fits) == [], _table(fits)


def test_the_fit_finds_the_people_and_says_from_how_many_decisions(history: Session) -> None:
    model, fitted = fit_behaviour(history, seed=SIM_SEED)
    # Every figure it fitted rests on enough decisions; the rest are defaults.
    assert fitted and min(fitted.values()) >= FIT_MIN_CASES
    for street, truth in DEMO_PEOPLE.satisfied_by_street.items():
        assert fitted[f"satisfaction.{street}"] >= FIT_MIN_CASES
        assert abs(model.satisfaction(street) - truth) < 0.06, street
    # Mediation success per category and per level of the unit that mediated.
    assert {"success.labour", "success.labour.community", "success.environment"} <= set(fitted)
    labour = DEFAULT_RATES[Category.LABOUR]
    assert abs(model.success(Category.LABOUR, UnitLevel.COMMUNITY) - labour.success) < 0.1
    assert abs(model.rate(Category.ENVIRONMENT).consent - 0.85) < 0.06
    # The first contact per street, and per street and category where there is enough.
    assert set(model.respond_by_street) == set(DEMO_PEOPLE.respond_by_street)
    assert any(key.count(".") == 2 and key.startswith("respond.") for key in fitted)
    # Labour cases go to mediators, not to grid workers: nothing to fit a direct
    # settlement from (a mediator's "no consent" closure is not one).
    assert "settle_directly.labour" not in fitted
    assert model.rate(Category.LABOUR).settle_directly == labour.settle_directly


def test_a_policy_the_history_did_not_have_does_not_fit(history: Session) -> None:
    wrong = parse_scenario(STRICT, file="strict.toml")
    first_weeks = Period(PERIOD.start, 10)  # a wrong policy shows in less time
    fits = backtest(history, first_weeks, seed=SIM_SEED, scenario=wrong)
    print(_table(fits))
    assert len(misfits(fits)) >= 3, _table(fits)
