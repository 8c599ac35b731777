"""simulate (政策模拟): compare policy scenarios over a period, from the Prefect UI or the
supervisors' page (``/web/simulations``).

The flow only sequences: record the request (or take up the one the page recorded),
run it with the same entry point as ``tiaojie simulate`` (models.sim_runs), and publish
the comparison as a Markdown artifact linked to the report page.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from models import clock
from models.sim_runs import MAX_DAYS, available_scenarios, default_scenarios
from tasks.simulate import (
    open_simulation,
    publish_simulation,
    record_cut_short,
    run_simulation,
)

# The Prefect UI offers the scenario files as a list to choose from.
ScenarioName = Annotated[
    str, Field(json_schema_extra={"enum": [c.key for c in available_scenarios()]})
]


@flow(
    name="simulate",
    persist_result=False,
    log_prints=False,
    on_cancellation=[record_cut_short],
    on_crashed=[record_cut_short],
)
def simulate(
    scenarios: list[ScenarioName] | None = None,
    scenario_toml: str = "",
    start: date | None = None,
    days: Annotated[int, Field(ge=1, le=MAX_DAYS)] = 30,
    seed: int = 2026,
    run_id: int | None = None,
) -> int:
    """政策模拟：各情景并排比较 / Compare policy scenarios side by side.

    Args:
        scenarios: 情景（docs/scenarios 中的文件；默认 as-is 现行时限）/ Scenario files to
            compare (default: as-is, the limits in force).
        scenario_toml: 另加一个情景（TOML 文本，时限用 [[limit]]）/ One more scenario
            written here as TOML (limits inline as [[limit]]); named "custom".
        start: 起始日期（默认：今天往前 days 天）/ First day (default: days before today).
        days: 模拟天数 / Days simulated.
        seed: 随机种子（同种子同结果）/ Random seed (same seed, same figures).
        run_id: 由督办页面填写 / Set by the supervisors' page; leave empty.
    """
    first = start or clock.to_local(clock.now()).date() - timedelta(days=days)
    raw = {
        "scenarios": list(scenarios) if scenarios is not None else default_scenarios(),
        "uploaded": {"custom": scenario_toml} if scenario_toml.strip() else {},
        "start": first,
        "days": days,
        "seed": seed,
    }
    recorded = open_simulation(raw, run_id, flow_run.get_id())
    run_simulation(recorded)
    publish_simulation(recorded)
    get_run_logger().info("模拟 simulation #%s done", recorded)
    return recorded
