"""Back-test of the policy simulator (models.simulate.backtest): replaying the demo city's
own history with its own time limits and the behaviour fitted from that history gives
each street's three rates within 3 percentage points of what the history shows; the
same replay under a wrong policy does not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from models import clock
from models.db import build_engine
from models.scenario import parse_scenario
from models.sim_history import DEMO_PEOPLE, demo_history
from models.simulate import Period, StreetFit, backtest
from models.tables import metadata

# Two months of a busy season: about 880 complaints, 100 to 250 per street.
PERIOD = Period(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), 60)
PER_WORKING_DAY = 20
SEED = 11
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


def _table(fits: list[StreetFit]) -> str:
    def pct(values: tuple[float | None, ...]) -> str:
        return " ".join("-" if v is None else f"{v:.1%}" for v in values)

    return "\n".join(
        f"{f.code}: {f.cases} cases, observed {pct(f.observed)}, "
        f"simulated {pct(f.simulated)}, worst gap {f.worst_gap:.1f} pp"
        for f in fits
    )


def test_each_street_within_three_points_of_its_history(history: Session) -> None:
    fits = backtest(history, PERIOD, seed=SEED)
    print(_table(fits))
    assert {f.code for f in fits} == set(DEMO_PEOPLE.respond_by_street)
    assert all(f.cases >= 60 for f in fits), _table(fits)
    assert all(None not in f.observed and None not in f.simulated for f in fits)
    assert max(f.worst_gap for f in fits) <= TOLERANCE_PP, _table(fits)


def test_a_policy_the_history_did_not_have_does_not_fit(history: Session) -> None:
    wrong = parse_scenario(STRICT, file="strict.toml")
    fits = backtest(history, PERIOD, seed=SEED, scenario=wrong)
    print(_table(fits))
    assert max(f.worst_gap for f in fits) > TOLERANCE_PP, _table(fits)
