"""The supervisors' policy simulations (政策模拟): ``/web/simulations`` lists the past
runs with their reports and, for those the rule book allows
(:func:`models.access.may_use_simulator`), a form that starts one.

Starting one checks the request (:mod:`models.sim_runs`; a bad one answers 422 and
stores nothing), records it, and creates a flow run of the ``simulate`` deployment on
the Prefect server (``deployments/launch.py``). Without a reachable server the record
is taken back and the page says so (503). The report is served from the database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from api.deps import RowId
from api.web import auth
from api.web.i18n import Translator, pick_lang
from api.web.routes import PREFIX, TimedRoute, read_session, render, to_login, write_session
from deployments.launch import NotReachable, start_simulation
from models import actions, clock
from models.access import Principal
from models.errors import NotFound, ValidationError
from models.settings import get_settings
from models.sim_output import summary_json
from models.sim_runs import (
    MAX_DAYS,
    MAX_SCENARIOS,
    MAX_UPLOAD_CHARS,
    available_scenarios,
    checked_request,
    create_run,
    default_scenarios,
    delete_run,
    get_run,
    prepare,
    recent_runs,
    set_flow_run,
)
from models.simulation_run import SimulationRun, SimulationStatus
from models.staff import Staff

router = APIRouter(route_class=TimedRoute, include_in_schema=False)
UNDER_WAY = (SimulationStatus.PENDING, SimulationStatus.RUNNING)
PAGE = f"{PREFIX}/simulations"


def _user(request: Request) -> Principal | Response:
    """The signed-in user the rule book lets use the simulator, or the answer for others."""
    with read_session(request) as session:
        user = auth.current_user(request, session)
    if user is None:
        return to_login(request)
    if not actions.role_may(user, actions.Duty.SIMULATE):
        return render(request, "error.html", {"status": 403}, user=user, status_code=403)
    return user


def _row(run: SimulationRun, names: dict[int, str]) -> dict[str, Any]:
    scenarios = (run.summary or {}).get("scenarios", {})
    ui = get_settings().prefect_ui_url.rstrip("/")
    return {
        "run": run,
        "by": names.get(run.started_by_id or 0, ""),
        "until": run.period_start + timedelta(days=run.days - 1),
        "scenarios": [(k, scenarios.get(k, {}).get("composite")) for k in run.scenario_keys],
        "prefect": f"{ui}/runs/flow-run/{run.flow_run_id}" if run.flow_run_id else None,
    }


def _page(
    request: Request,
    user: Principal,
    *,
    errors: list[str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    with read_session(request) as session:
        runs = recent_runs(session)
        ids = {r.started_by_id for r in runs if r.started_by_id}
        names = {i: s.display_name for i in ids if (s := session.get(Staff, i)) is not None}
    today = clock.to_local(clock.now()).date()
    defaults = {"start": (today - timedelta(days=30)).isoformat(), "days": 30, "seed": 2026}
    return render(
        request,
        "simulations.html",
        {
            "active": "simulations",
            "rows": [_row(r, names) for r in runs],
            "choices": available_scenarios(),
            "values": {**defaults, "scenarios": default_scenarios(), **(values or {})},
            "errors": errors or [],
            # While a run is under way the list reloads itself (never over a form in error).
            "refresh": not errors and any(r.status in UNDER_WAY for r in runs),
            "max_days": MAX_DAYS,
            "max_hours": get_settings().simulation_max_hours,
            "statuses": SimulationStatus,
        },
        user=user,
        status_code=status,
    )


@router.get(PAGE)
def simulations_page(request: Request) -> Response:
    user = _user(request)
    return user if isinstance(user, Response) else _page(request, user)


async def _uploads(form: FormData) -> dict[str, str]:
    """Uploaded scenario files, by the file's name (without .toml)."""
    out: dict[str, str] = {}
    for item in form.getlist("upload"):
        if not isinstance(item, UploadFile) or not item.filename:
            continue
        data = await item.read(MAX_UPLOAD_CHARS * 4 + 1)
        key = item.filename.rsplit("/", 1)[-1].removesuffix(".toml").lower()
        try:
            out[key] = data.decode("utf-8")
        except UnicodeDecodeError:
            out[key] = "\ufffd"  # refused by the scenario check as not valid TOML
    return out


@router.post(PAGE)
async def start(request: Request) -> Response:
    user = _user(request)
    if isinstance(user, Response):
        return user
    async with request.form(max_files=MAX_SCENARIOS + 1, max_fields=40) as form:
        if not auth.csrf_ok(auth.session_csrf(request), str(form.get("csrf_token", ""))):
            return render(request, "error.html", {"status": 403}, user=user, status_code=403)
        values: dict[str, Any] = {
            "scenarios": [str(v)[:64] for v in form.getlist("scenario")][:20],
            "start": str(form.get("start", ""))[:10],
            "days": str(form.get("days", ""))[:6],
            "seed": str(form.get("seed", ""))[:12],
        }
        raw = {**values, "uploaded": await _uploads(form)}
    t = Translator(pick_lang(request))
    try:
        request_ = checked_request(raw)
        await run_in_threadpool(prepare, request_)
    except ValidationError as exc:
        errors = [t(p.message_zh, p.message_en) for p in exc.problems] or [
            t(exc.message_zh, exc.message_en)
        ]
        return _page(request, user, errors=errors, values=values, status=422)

    def record() -> int:
        with write_session(request) as session:
            run = create_run(session, request_, origin="web", by=user)
            assert run.id is not None
            return run.id

    run_id = await run_in_threadpool(record)
    parameters = {
        "scenarios": request_.scenarios,
        "start": request_.start.isoformat(),
        "days": request_.days,
        "seed": request_.seed,
    }
    try:
        started = await start_simulation(parameters, run_id=run_id)
    except NotReachable as exc:
        await run_in_threadpool(_forget, request, run_id)
        return _page(
            request, user, errors=[t(exc.message_zh, exc.message_en)], values=values, status=503
        )
    await run_in_threadpool(_link, request, run_id, started.flow_run_id)
    return RedirectResponse(f"{PAGE}?started={run_id}#run-{run_id}", status_code=303)


def _forget(request: Request, run_id: int) -> None:
    with write_session(request) as session:
        delete_run(session, run_id)


def _link(request: Request, run_id: int, flow_run_id: str) -> None:
    with write_session(request) as session:
        set_flow_run(session, run_id, flow_run_id)


def _finished(request: Request, run_id: int) -> SimulationRun | Response:
    """A finished run for someone the rule book lets see it; else the answer to give
    (sign-in, 403, or 404 for a run that is missing or not finished)."""
    user = _user(request)
    if isinstance(user, Response):
        return user
    with read_session(request) as session:
        try:
            run: SimulationRun | None = get_run(session, run_id)
        except NotFound:
            run = None
    if run is None or run.status != SimulationStatus.DONE:
        return render(request, "error.html", {"status": 404}, user=user, status_code=404)
    return run


@router.get(f"{PAGE}/{{run_id}}/report.html")
def report(request: Request, run_id: RowId) -> Response:
    run = _finished(request, run_id)
    if isinstance(run, Response):
        return run
    # Its Content-Security-Policy (inline styles, no script): api.headers.
    return Response(run.report_html or "", media_type="text/html; charset=utf-8")


@router.get(f"{PAGE}/{{run_id}}/summary.json")
def summary(request: Request, run_id: RowId) -> Response:
    run = _finished(request, run_id)
    if isinstance(run, Response):
        return run
    return Response(
        summary_json(run.summary or {}),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="simulation-{run_id}.json"'},
    )
