"""A supervisor finds the policy simulations in the navigation, reads the past runs and
opens a report (its inline styles and charts allowed by its own CSP, nothing blocked);
starting one without a Prefect server says so; a community worker has no such page."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from models.access import principal_for_staff
from models.db import build_engine, write_session
from models.scenario import ScenarioError
from models.sim_report import report_html
from models.sim_runs import (
    SimulationRequest,
    create_run,
    fail_run,
    finish_run,
    prepare,
    run_scenarios,
)
from models.staff import Staff
from tests.browser.conftest import Site, shoot, sign_in, staff_id

pytestmark = pytest.mark.browser

BASE = """
name = "{name}"
[arrivals]
mode = "generate"
per_working_day = 4
mix = {{ labour = 1, neighbour = 2, tenancy = 1 }}
"""
MORE = """
[[staffing]]
unit = "CMA"
role = "mediator"
add = 2
[behaviour]
satisfied = 0.9
"""


def _record(database_url: str, request: SimulationRequest, origin: str) -> None:
    """Runs ``request`` as the flow does and records the outcome (done, or failed)."""
    engine = build_engine(database_url)
    try:
        with Session(engine) as live:
            try:
                document: dict[str, Any] | None = run_scenarios(
                    live,
                    prepare(request),
                    start=request.start,
                    days=request.days,
                    seed=request.seed,
                )
            except ScenarioError as exc:
                document, reason = None, str(exc)
        with write_session(engine) as session:
            who = session.get(Staff, staff_id(database_url, "supervisor"))
            assert who is not None
            by = principal_for_staff(session, who) if origin == "web" else None
            run = create_run(session, request, origin=origin, by=by)
            assert run.id is not None
            if document is None:
                fail_run(session, run.id, reason)
            else:
                finish_run(session, run.id, document, report_html(document))
    finally:
        engine.dispose()


def test_a_supervisor_reads_past_simulations_and_a_report(site: Site, new_page: Any) -> None:
    start = date(2026, 11, 9)
    _record(
        site.database_url,
        SimulationRequest(scenarios=["as-is"], start=start, days=5),
        "prefect",
    )
    _record(
        site.database_url,
        SimulationRequest(
            uploaded={
                "in-force": BASE.format(name="现行 In force"),
                "two-more": BASE.format(name="桂花社区增配两名调解员 Two more mediators") + MORE,
            },
            start=start,
            days=10,
        ),
        "web",
    )

    page = new_page(width=1280, height=900)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    sign_in(page, site, "supervisor")
    page.click("nav >> text=政策模拟")
    page.wait_for_url("**/web/simulations")
    table = page.inner_text("#simulations")
    assert "in-force" in table and "two-more" in table and "周督办" in table
    assert "已完成" in table and "失败" in table and "no complaints" in table
    page.check("input[name=scenario][value=as-is]")
    page.click("#simulate-form button[type=submit]")
    assert "Prefect" in page.inner_text("#errors")
    page.goto(site.url("/web/simulations"))
    shoot(page, "simulations")

    page.click("#simulations >> text=查看报告")
    page.wait_for_url("**/report.html")
    assert page.is_visible("svg") and "two-more" in page.inner_text("table")
    shoot(page, "simulation-report")
    assert not [p for p in problems if "Content Security Policy" in p]

    worker = new_page()
    sign_in(worker, site, "workerA")
    assert "政策模拟" not in worker.inner_text("nav")
    cookies = {c["name"]: c["value"] for c in worker.context.cookies()}
    answer = httpx.get(site.url("/web/simulations"), cookies=cookies, timeout=10)
    assert answer.status_code == 403
