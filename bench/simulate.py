"""The policy simulator (``models.simulate``): one generated scenario on the demo city,
measured in simulated cases per CPU second, and the seconds one scenario of a district
year with 50,000 cases takes at that pace (the target is under 60 s a scenario).

The run is a sample at a district's daily volume (quick: 5 days, full: 60 days, long
enough for the early cases to run their whole course: settled, visited, closed), not the
whole year: the year's figure is the sample's pace, stated as such. The SQL statements
per case are counted too: unlike seconds on a shared machine, they do not depend on the
load."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from sqlalchemy import event
from sqlalchemy.engine import Engine
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
    statements = [0]

    def count(*_args: Any) -> None:
        statements[0] += 1

    wall, cpu = time.perf_counter(), time.process_time()
    event.listen(Engine, "before_cursor_execute", count)
    try:
        with Session(engine) as live:
            result = run_scenario(live, scenario, period, seed=2026)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
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
        "statements_per_case": rnd(statements[0] / cases) if cases else None,
        "projected_year_50k_s": rnd(projected) if projected else None,
        "target_s": TARGET_S,
        "meets_target": bool(projected is not None and projected < TARGET_S),
    }
