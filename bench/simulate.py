"""The policy simulator (``models.simulate``): one generated scenario on the demo city,
measured in simulated cases per CPU second, and the time one year of a district with
50,000 cases would take at that pace (the target is under 60 s a scenario).

The run is a sample (quick: 5 days, full: 20 days at a district's daily volume), not the
whole year: the projection is the sample's pace, stated as such."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from sqlmodel import Session

from bench.common import Workspace, rnd
from bench.config import Sizes

YEAR_CASES = 50_000
TARGET_S = 60.0
LOADED = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    from models import clock
    from models.db import build_engine
    from models.demo import load_demo_city
    from models.scenario import parse_scenario
    from models.simulate import Period, run_scenario
    from models.tables import metadata

    engine = build_engine(f"sqlite:///{ws.path('simulate.db')}")
    metadata.create_all(engine)
    previous = clock.get_clock()
    clock.set_clock(clock.VirtualClock(LOADED))
    try:
        with Session(engine) as live:
            load_demo_city(live)
            live.commit()
    finally:
        clock.set_clock(previous)
    per_day = YEAR_CASES / 250  # working days in a year
    scenario = parse_scenario(
        f'name = "bench"\n[arrivals]\nmode = "generate"\nper_working_day = {per_day}\n',
        file="bench.toml",
    )
    period = Period(LOADED, sizes.simulate_days)
    wall, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as live:
        result = run_scenario(live, scenario, period, seed=2026)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cases = int(result["arrivals"])
    pace = cases / cpu if cpu else 0.0
    console.print(f"simulated {cases:,} cases over {sizes.simulate_days} days in {cpu:.1f} s CPU")
    projected = YEAR_CASES / pace if pace else None
    return {
        "cases": cases,
        "days": sizes.simulate_days,
        "cpu_s": rnd(cpu),
        "wall_s": rnd(wall),
        "cases_per_s": rnd(pace),
        "projected_year_50k_s": rnd(projected) if projected else None,
        "target_s": TARGET_S,
        "meets_target": bool(projected is not None and projected < TARGET_S),
    }
