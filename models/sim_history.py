"""A history for the demo city (演示历史): months of complaints worked by its people.

The demo city ships 320 sample complaints, too few to judge a simulator by street. This
plays generated complaints (the demo's category mix, every working day) through
:class:`models.behaviour.Replay` with :data:`DEMO_PEOPLE`, the demo city's own people:
streets that differ in how fast they first reach a complainant and in how satisfied
their residents end up. The simulator is never told these figures; its back-test
(:func:`models.simulate.backtest`) has to find them in the history it leaves.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from sqlmodel import Session

from models.behaviour import BehaviourModel, Replay
from models.demo import DISTRICT, demo_complaints
from models.district import load_district
from models.scenario import Arrivals, parse_scenario
from models.simulate import Period, generated_arrivals, virtual_time

# Per street: office hours from the assignment to the first contact (uniform between
# the two), and the share of residents satisfied at the return visit.
DEMO_PEOPLE = BehaviourModel(
    respond_by_street={
        "D01-S01": (0.2, 3.0),
        "D01-S02": (0.5, 8.0),
        "D01-S03": (1.0, 14.0),
        "D02-S01": (1.0, 12.0),
        "D02-S02": (0.5, 11.0),
    },
    satisfied_by_street={
        "D01-S01": 0.95,
        "D01-S02": 0.92,
        "D01-S03": 0.88,
        "D02-S01": 0.85,
        "D02-S02": 0.93,
    },
)


def demo_history(
    session: Session,
    period: Period,
    *,
    per_working_day: float,
    seed: int,
    people: BehaviourModel = DEMO_PEOPLE,
) -> int:
    """Load the demo district into ``session``'s empty database and work the period's
    generated complaints with ``people`` until its end; returns how many arrived."""
    load_district(session, DISTRICT, actor="history")
    mix = Counter(c.category for c in demo_complaints())
    scenario = dataclasses.replace(
        parse_scenario('name = "history"\n', file="history.toml"),
        arrivals=Arrivals(mode="generate", per_working_day=per_working_day, mix=dict(mix)),
    )
    arrivals = generated_arrivals(session, scenario, period, seed)
    with virtual_time(period.start) as vclock:
        replay = Replay(session, dataclasses.replace(people, seed=seed), vclock)
        for at, data, actor, recorder in arrivals:
            replay.schedule(data, at=at, actor=actor, recorder=recorder)
        replay.run(until=period.end)
    session.commit()
    return len(arrivals)
