"""Past simulations (模拟记录): who asked for which scenarios over which period, and what
came of it.

A run is recorded ``pending`` when a supervisor asks for one on the web page (before the
Prefect flow run exists), ``running`` while the ``simulate`` flow works, then ``done``
with the summary (the document of ``summary.json``) and the report (``report.html``,
self-contained), or ``failed`` with the reason. The report is kept in the database, not
in a folder: the flow may run on another machine than the pages that serve it.

A request (:class:`SimulationRequest`) is checked here once for every front end (the web
form, the Prefect UI's parameters, the CLI): :func:`prepare` turns it into scenarios or
raises a :class:`models.errors.ValidationError` naming the field, and nothing is stored
before it passes. Scenarios are named by the files of the scenarios folder
(``docs/scenarios``, or ``TIAOJIE_SCENARIOS_DIR``) or uploaded as TOML text; an uploaded
scenario gives its time limits inline (``[[limit]]``), never as a file name to read.

:func:`run_scenarios` is the one way to run a set of scenarios (``tiaojie simulate``
and the flow both call it).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict
from pydantic import Field as Param
from pydantic import ValidationError as PydanticError
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from models import clock
from models.access import Principal
from models.errors import FieldProblem, NotFound, ValidationError
from models.scenario import Scenario, ScenarioError, parse_scenario, read_scenario
from models.settings import get_settings
from models.sim_output import summary_document
from models.simulation_run import SimulationRun, SimulationStatus

MAX_SCENARIOS = 6
MAX_DAYS = 400
MAX_UPLOAD_CHARS = 200_000
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
DEFAULT_SCENARIOS = Path(__file__).resolve().parents[1] / "docs" / "scenarios"


class SimulationRequest(BaseModel):
    """What a simulation is asked for: scenarios by name and/or uploaded (key -> TOML
    text), the first day (Asia/Shanghai), the number of days and the seed."""

    model_config = ConfigDict(extra="forbid")

    scenarios: list[str] = Param(default_factory=list)
    uploaded: dict[str, str] = Param(default_factory=dict)
    start: clock.Day
    days: int = Param(default=30, ge=1, le=MAX_DAYS)
    seed: int = Param(default=2026, ge=0, le=2**31 - 1)


@dataclass(frozen=True)
class ScenarioChoice:
    key: str
    name: str
    description: str


def scenarios_folder() -> Path:
    return get_settings().scenarios_dir or DEFAULT_SCENARIOS


def available_scenarios(folder: Path | None = None) -> list[ScenarioChoice]:
    """The scenario files of the folder (policy documents beside them are not scenarios)."""
    found: list[ScenarioChoice] = []
    for path in sorted((folder or scenarios_folder()).glob("*.toml")):
        try:
            if "name" not in tomllib.loads(path.read_text(encoding="utf-8")):
                continue
            scenario = read_scenario(path)
        except (ScenarioError, tomllib.TOMLDecodeError, OSError):
            continue
        found.append(ScenarioChoice(scenario.key, scenario.name, scenario.description))
    return found


BASELINE = "as-is"  # the district's limits as they are: what other scenarios are set beside


def default_scenarios(folder: Path | None = None) -> list[str]:
    """The scenarios chosen when none are named: the baseline, if the folder has it."""
    return [c.key for c in available_scenarios(folder) if c.key == BASELINE]


def _raise(field: str, zh: str, en: str) -> NoReturn:
    raise ValidationError(
        f"{field}: {en}", f"{field}：{zh}", problems=[FieldProblem(field, zh, en)]
    )


_FIELD_PROBLEMS = {
    "start": ("起始日期应为 YYYY-MM-DD", "the first day is YYYY-MM-DD"),
    "days": (f"模拟天数应为 1 到 {MAX_DAYS}", f"days: a whole number from 1 to {MAX_DAYS}"),
    "seed": ("随机种子应为非负整数", "seed: a whole number, 0 or more"),
}


def checked_request(raw: dict[str, Any]) -> SimulationRequest:
    """A :class:`SimulationRequest` from plain values, or a field-level ValidationError."""
    try:
        return SimulationRequest.model_validate(raw)
    except PydanticError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "request"
        zh, en = _FIELD_PROBLEMS.get(field, ("参数不正确", str(first["msg"])))
        _raise(field, zh, en)


def _uploaded(key: str, text: str) -> Scenario:
    if not KEY.match(key):
        _raise(
            "uploaded",
            f"情景名 {key!r} 只能用小写字母、数字、- 和 _",
            f"scenario key {key!r}: use lowercase letters, digits, - and _",
        )
    if len(text) > MAX_UPLOAD_CHARS:
        _raise("uploaded", f"情景 {key} 过长", f"scenario {key} is too long")
    try:
        if "policies" in tomllib.loads(text):
            _raise(
                "uploaded",
                f"上传的情景 {key} 须用 [[limit]] 直接写时限，不能引用文件",
                f"uploaded scenario {key}: give the limits inline as [[limit]], not a file",
            )
        return parse_scenario(text, file=f"{key}.toml")
    except tomllib.TOMLDecodeError as exc:
        _raise(
            "uploaded", f"{key}.toml 不是有效的 TOML：{exc}", f"{key}.toml is not valid TOML: {exc}"
        )
    except ScenarioError as exc:
        _raise("uploaded", str(exc), str(exc))


def prepare(request: SimulationRequest, folder: Path | None = None) -> list[Scenario]:
    """The scenarios of ``request``, each checked (see the module docstring)."""
    folder = folder or scenarios_folder()
    known = {c.key for c in available_scenarios(folder)}
    count = len(request.scenarios) + len(request.uploaded)
    if count == 0:
        _raise("scenarios", "请至少选择一个情景", "choose at least one scenario")
    if count > MAX_SCENARIOS:
        _raise(
            "scenarios",
            f"一次最多比较 {MAX_SCENARIOS} 个情景",
            f"compare at most {MAX_SCENARIOS} scenarios at once",
        )
    scenarios: list[Scenario] = []
    for key in request.scenarios:
        if key not in known:
            _raise("scenarios", f"没有名为 {key!r} 的情景", f"no scenario named {key!r}")
        scenarios.append(read_scenario(folder / f"{key}.toml"))
    scenarios += [_uploaded(key, text) for key, text in request.uploaded.items()]
    keys = [s.key for s in scenarios]
    if len(set(keys)) != len(keys):
        _raise("uploaded", "情景名重复", "two scenarios have the same name")
    return scenarios


# --- running ---------------------------------------------------------------------------

Progress = Callable[[str, int, int], None]  # (scenario key, days done, days in all)


def run_scenarios(
    live: Session,
    scenarios: Sequence[Scenario],
    *,
    start: date,
    days: int,
    seed: int,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every scenario over the period (:func:`models.simulate.run_scenario`, the live
    database only read) and return the summary document; ScenarioError if one cannot run."""
    from models.sim_pool import processes_for, run_in_processes
    from models.simulate import Period, run_scenario

    first = clock.ensure_utc(datetime.combine(start, time(0), tzinfo=clock.SHANGHAI))
    period = Period(first, days)
    results: dict[str, dict[str, Any]] = {}
    processes = processes_for(live, len(scenarios))
    if processes > 1:
        url = live.get_bind().url.render_as_string(hide_password=False)  # type: ignore[union-attr]
        results = run_in_processes(
            url, scenarios, period, seed=seed, processes=processes, progress=progress
        )
        return summary_document(results, start=start.isoformat(), days=days, seed=seed)
    for scenario in scenarios:
        step = None
        if progress is not None:
            step = _progress_of(progress, scenario.key)
        results[scenario.key] = run_scenario(live, scenario, period, seed=seed, progress=step)
    return summary_document(results, start=start.isoformat(), days=days, seed=seed)


def _progress_of(progress: Progress, key: str) -> Callable[[int, int], None]:
    def step(done: int, total: int) -> None:
        progress(key, done, total)

    return step


# --- the record ------------------------------------------------------------------------


def create_run(
    session: Session, request: SimulationRequest, *, origin: str, by: Principal | None
) -> SimulationRun:
    """Record a checked request as ``pending`` (flushed; :func:`prepare` first)."""
    run = SimulationRun(
        created_at=clock.now(),
        started_by_id=by.staff_id if by is not None and by.is_staff else None,
        origin=origin,
        status=SimulationStatus.PENDING,
        period_start=request.start,
        days=request.days,
        seed=request.seed,
        parameters={"scenarios": request.scenarios, "uploaded": request.uploaded},
    )
    session.add(run)
    session.flush()
    return run


def request_of(run: SimulationRun) -> SimulationRequest:
    return SimulationRequest(
        scenarios=list(run.parameters.get("scenarios", [])),
        uploaded=dict(run.parameters.get("uploaded", {})),
        start=run.period_start,
        days=run.days,
        seed=run.seed,
    )


def get_run(session: Session, run_id: int) -> SimulationRun:
    run = session.get(SimulationRun, run_id)
    if run is None:
        raise NotFound(f"no simulation {run_id}", f"没有编号为 {run_id} 的模拟")
    return run


def mark_running(session: Session, run_id: int, *, flow_run_id: str | None) -> SimulationRun:
    run = get_run(session, run_id)
    run.status = SimulationStatus.RUNNING
    run.flow_run_id = flow_run_id or run.flow_run_id
    session.add(run)
    session.flush()
    return run


def set_flow_run(session: Session, run_id: int, flow_run_id: str) -> None:
    run = get_run(session, run_id)
    run.flow_run_id = flow_run_id
    session.add(run)
    session.flush()


def finish_run(session: Session, run_id: int, document: dict[str, Any], report: str) -> None:
    run = get_run(session, run_id)
    run.status = SimulationStatus.DONE
    run.summary = document
    run.report_html = report
    run.error = None
    run.finished_at = clock.now()
    session.add(run)
    session.flush()


def fail_run(session: Session, run_id: int, reason: str) -> None:
    run = get_run(session, run_id)
    run.status = SimulationStatus.FAILED
    run.error = reason[:2000]
    run.finished_at = clock.now()
    session.add(run)
    session.flush()


def fail_flow_run(session: Session, flow_run_id: str, reason: str) -> int:
    """Record as failed the unfinished runs of a flow run that was cancelled or cut
    short (so that none says "running" forever); returns how many."""
    runs = session.exec(
        select(SimulationRun).where(
            SimulationRun.flow_run_id == flow_run_id,
            col(SimulationRun.status).in_([SimulationStatus.PENDING, SimulationStatus.RUNNING]),
        )
    ).all()
    for run in runs:
        assert run.id is not None
        fail_run(session, run.id, reason)
    return len(runs)


# --- runs that will never finish ---------------------------------------------------------

# Prefect's state types in which a flow run does nothing more.
TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
UNFINISHED = (SimulationStatus.PENDING, SimulationStatus.RUNNING)


def unfinished_flow_runs(session: Session) -> list[str]:
    """The flow runs of the runs still queued or running (what the sweep asks Prefect)."""
    rows = session.exec(
        select(SimulationRun.flow_run_id).where(
            col(SimulationRun.status).in_(UNFINISHED), col(SimulationRun.flow_run_id).is_not(None)
        )
    ).all()
    return sorted({str(r) for r in rows})


def sweep_stale_runs(
    session: Session, *, now: datetime, flow_states: Mapping[str, str]
) -> list[int]:
    """Mark failed, with why, the runs that say queued or running but will never finish
    (their ids are returned). The rule (规则), the one place it is written:

    1. its flow run is in a terminal state (``flow_states``: flow run id -> Prefect state
       type, e.g. ``CRASHED``) and the run was not recorded done: the flow ended without
       writing its result, e.g. killed together with its runner, so that neither its last
       step nor its cancel/crash hooks ran;
    2. it was asked for more than ``settings.simulation_max_hours`` (12) ago: a flow run
       never picked up (no worker), or lost. The largest request the form allows (6
       scenarios x 400 days of a district of 50,000 cases a year) takes about 3 hours of
       CPU at the simulator's measured speed; 12 hours is four times that.
    """
    limit = timedelta(hours=get_settings().simulation_max_hours)
    runs = session.exec(
        select(SimulationRun)
        .options(defer(col(SimulationRun.report_html)))  # type: ignore[arg-type]
        .where(col(SimulationRun.status).in_(UNFINISHED))
        .order_by(col(SimulationRun.id))
    ).all()
    failed: list[int] = []
    for run in runs:
        assert run.id is not None
        state = flow_states.get(run.flow_run_id or "")
        if state in TERMINAL_STATES:
            reason = (
                f"流程运行已结束（{state}）但未记录结果，可能随执行进程一同被终止 / "
                f"the flow run ended ({state.lower()}) without recording a result "
                "(its process was probably killed)"
            )
        elif now - clock.ensure_utc(run.created_at) > limit:
            hours = get_settings().simulation_max_hours
            reason = (
                f"超过 {hours} 小时仍未完成（流程运行未被执行或已丢失）/ not finished "
                f"{hours} hours after it was asked for (its flow run never ran, or was lost)"
            )
        else:
            continue
        fail_run(session, run.id, reason)
        failed.append(run.id)
    return failed


def delete_run(session: Session, run_id: int) -> None:
    """Take back a run that never started (its flow run could not be created)."""
    run = get_run(session, run_id)
    if run.status == SimulationStatus.PENDING and run.flow_run_id is None:
        session.delete(run)
        session.flush()


def recent_runs(session: Session, *, limit: int = 50) -> list[SimulationRun]:
    """The latest runs first, without their reports (the list does not need them)."""
    query = (
        select(SimulationRun)
        .options(defer(col(SimulationRun.report_html)))  # type: ignore[arg-type]
        .order_by(col(SimulationRun.created_at).desc(), col(SimulationRun.id).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())
