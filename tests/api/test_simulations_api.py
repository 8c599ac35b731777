"""The supervisors' simulations page (/web/simulations): supervisors and administrators
see past runs and their reports, a community worker is refused (403, the rule book's
may_use_simulator), bad parameters answer 422 and store nothing, and without a Prefect
server the page says so and stores nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session, select

from models.access import principal_for_staff
from models.db import read_session, write_session
from models.sim_report import report_html
from models.sim_runs import SimulationRequest, create_run, finish_run, prepare, run_scenarios
from models.simulation_run import SimulationRun
from tests.api.conftest import Api, web_cookie

SMALL = """
name = "小样本 Small"
[arrivals]
mode = "generate"
per_working_day = 3
"""


def _sign_in(api: Api, username: str) -> str:
    """Signs ``username`` in on the client; returns the page's CSRF token."""
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff[username].id or 0))
    page = api.client.get("/web/inbox")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def _runs(api: Api) -> list[SimulationRun]:
    with read_session(api.engine) as session:
        return list(session.exec(select(SimulationRun)).all())


def _simulated(api: Api) -> int:
    """A real (small) simulation of the test city, recorded as the flow records it."""
    request = SimulationRequest(uploaded={"small": SMALL}, start=date(2026, 11, 23), days=3)
    with Session(api.engine) as live:
        document = run_scenarios(
            live, prepare(request), start=request.start, days=request.days, seed=request.seed
        )
    with write_session(api.engine) as session:
        from models.staff import Staff

        supervisor = session.get(Staff, api.city.staff["supervisor"].id)
        assert supervisor is not None
        run = create_run(
            session, request, origin="web", by=principal_for_staff(session, supervisor)
        )
        assert run.id is not None
        finish_run(session, run.id, document, report_html(document))
        return run.id


@pytest.fixture
def no_prefect() -> Iterator[None]:
    with temporary_settings(updates={PREFECT_API_URL: None}):
        yield


def test_supervisors_see_the_list_and_the_report_a_worker_is_refused(api: Api) -> None:
    run_id = _simulated(api)
    for who in ("supervisor", "admin"):
        _sign_in(api, who)
        page = api.client.get("/web/simulations")
        assert page.status_code == 200
        assert 'href="/web/simulations"' in page.text  # in the navigation
        row = re.search(rf'<tr id="run-{run_id}">(.*?)</tr>', page.text, re.S)
        assert row and "<code>small</code>" in row.group(1) and "已完成" in row.group(1)
        assert "2026-11-23 – 2026-11-25" in row.group(1) and "%" in row.group(1)
        report = api.client.get(f"/web/simulations/{run_id}/report.html")
        assert report.status_code == 200 and "政策模拟报告" in report.text
        assert (
            "<svg" in report.text and "script-src" not in report.headers["content-security-policy"]
        )
        summary = api.client.get(f"/web/simulations/{run_id}/summary.json").json()
        assert summary["scenarios"]["small"]["arrivals"] > 0
    assert api.client.get(f"/web/simulations/{run_id + 1}/report.html").status_code == 404

    _sign_in(api, "workerA")
    assert 'href="/web/simulations"' not in api.client.get("/web/inbox").text
    for url in ("", f"/{run_id}/report.html", f"/{run_id}/summary.json"):
        assert api.client.get(f"/web/simulations{url}").status_code == 403
    api.client.cookies.clear()
    assert api.client.get("/web/simulations", follow_redirects=False).status_code == 303


def _post(api: Api, data: dict[str, Any], files: Any = None, lang: str = "zh") -> Any:
    return api.client.post(
        f"/web/simulations?lang={lang}", data=data, files=files, follow_redirects=False
    )


@pytest.mark.parametrize(
    ("fields", "files", "message"),
    [
        ({"scenario": "no-such-scenario"}, None, "no scenario named"),
        ({}, None, "choose at least one scenario"),
        ({"scenario": "as-is", "start": "2026-13-40"}, None, "YYYY-MM-DD"),
        ({"scenario": "as-is", "days": "0"}, None, "from 1 to 400"),
        ({"scenario": "as-is", "days": "many"}, None, "from 1 to 400"),
        ({}, {"upload": ("plan.toml", b'name = "x"\npolicies = "/etc/passwd"\n')}, "inline"),
        ({}, {"upload": ("plan.toml", b"name = \n")}, "not valid TOML"),
        ({}, {"upload": ("Bad Name!.toml", SMALL.encode())}, "lowercase"),
    ],
)
def test_bad_parameters_answer_422_and_store_nothing(
    api: Api, no_prefect: None, fields: dict[str, str], files: Any, message: str
) -> None:
    csrf = _sign_in(api, "supervisor")
    data = {"csrf_token": csrf, "start": "2026-11-23", "days": "3", "seed": "7", **fields}
    answer = _post(api, data, files, lang="en")
    assert answer.status_code == 422
    errors = re.search(
        r'<div class="alert error" role="alert" id="errors">(.*?)</div>', answer.text
    )
    assert errors and message in errors.group(1)
    assert _runs(api) == []


def test_a_wrong_csrf_token_or_a_worker_cannot_start_one(api: Api, no_prefect: None) -> None:
    data = {"scenario": "as-is", "start": "2026-11-23", "days": "3", "seed": "7"}
    _sign_in(api, "supervisor")
    assert _post(api, {**data, "csrf_token": "forged"}).status_code == 403
    csrf = _sign_in(api, "workerA")
    assert _post(api, {**data, "csrf_token": csrf}).status_code == 403
    assert _runs(api) == []


def test_without_a_prefect_server_the_page_says_so_and_stores_nothing(api: Api) -> None:
    csrf = _sign_in(api, "supervisor")
    data = {"csrf_token": csrf, "scenario": "as-is", "start": "2026-11-23", "days": "3"}
    with temporary_settings(updates={PREFECT_API_URL: None}):
        answer = _post(api, {**data, "seed": "7"})
    assert answer.status_code == 503 and "PREFECT_API_URL" in answer.text
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        answer = _post(api, {**data, "seed": "7"})
    assert answer.status_code == 503 and "无法连接" in answer.text
    assert _runs(api) == []


def test_the_list_reloads_itself_only_while_a_run_is_under_way(api: Api) -> None:
    _sign_in(api, "supervisor")
    assert 'http-equiv="refresh"' not in api.client.get("/web/simulations").text
    request = SimulationRequest(scenarios=["as-is"], start=date(2026, 11, 23), days=3)
    with write_session(api.engine) as session:
        create_run(session, request, origin="prefect", by=None)
    page = api.client.get("/web/simulations").text
    assert 'http-equiv="refresh"' in page and "排队中" in page and "Prefect 界面" in page


def test_a_run_the_sweep_gave_up_on_shows_failed_with_why(api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    from models.sim_runs import sweep_stale_runs

    _sign_in(api, "supervisor")
    request = SimulationRequest(scenarios=["as-is"], start=date(2026, 11, 23), days=3)
    with write_session(api.engine) as session:
        run = create_run(session, request, origin="web", by=None)
        later = datetime.now(UTC) + timedelta(hours=13)
        assert sweep_stale_runs(session, now=later, flow_states={}) == [run.id]
    page = api.client.get("/web/simulations").text
    assert 'http-equiv="refresh"' not in page and "失败" in page
    assert "not finished 12 hours after it was asked for" in page
    assert 'id="stale-rule"' in page and "12 小时" in page
