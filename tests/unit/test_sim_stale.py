"""A simulation that will never finish does not say "queued" or "running" forever: the
sweep (models.sim_runs.sweep_stale_runs) marks it failed with the reason, by the rule
written there: its flow run ended without recording it, or it is older than
TIAOJIE_SIMULATION_MAX_HOURS."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from models.settings import reset_settings
from models.sim_runs import (
    SimulationRequest,
    create_run,
    finish_run,
    mark_running,
    sweep_stale_runs,
    unfinished_flow_runs,
)
from models.simulation_run import SimulationRun, SimulationStatus

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _run(session: Session, *, flow: str | None, hours_ago: float, running: bool = True) -> int:
    request = SimulationRequest(scenarios=["as-is"], start=date(2026, 11, 1), days=3)
    run = create_run(session, request, origin="web", by=None)
    assert run.id is not None
    run.created_at = NOW - timedelta(hours=hours_ago)
    if running:
        mark_running(session, run.id, flow_run_id=flow)
    return run.id


def test_runs_that_will_never_finish_are_marked_failed_with_why(session: Session) -> None:
    crashed = _run(session, flow="f-crashed", hours_ago=0.5)
    completed_unrecorded = _run(session, flow="f-completed", hours_ago=1)
    working = _run(session, flow="f-running", hours_ago=11.5)
    forgotten = _run(session, flow="f-scheduled", hours_ago=13)
    never_sent = _run(session, flow=None, hours_ago=12.5, running=False)  # still pending
    recent_pending = _run(session, flow=None, hours_ago=0.1, running=False)
    done = _run(session, flow="f-done", hours_ago=20)
    finish_run(session, done, {"scenarios": {}}, "<p>ok</p>")
    states = {
        "f-crashed": "CRASHED",
        "f-completed": "COMPLETED",
        "f-running": "RUNNING",
        "f-scheduled": "SCHEDULED",
        "f-done": "COMPLETED",
    }
    assert unfinished_flow_runs(session) == ["f-completed", "f-crashed", "f-running", "f-scheduled"]

    failed = sweep_stale_runs(session, now=NOW, flow_states=states)

    assert failed == [crashed, completed_unrecorded, forgotten, never_sent]
    runs = {r.id: r for r in session.exec(select(SimulationRun)).all()}
    assert runs[crashed].error and "ended (crashed)" in runs[crashed].error
    assert "流程运行已结束" in (runs[completed_unrecorded].error or "")
    for late in (forgotten, never_sent):
        assert runs[late].status == SimulationStatus.FAILED
        assert "not finished 12 hours after" in (runs[late].error or "")
    assert runs[working].status == SimulationStatus.RUNNING and runs[working].error is None
    assert runs[recent_pending].status == SimulationStatus.PENDING
    assert runs[done].status == SimulationStatus.DONE and runs[done].error is None
    # A second sweep finds nothing more to do.
    assert sweep_stale_runs(session, now=NOW, flow_states=states) == []
    assert unfinished_flow_runs(session) == ["f-running"]


def test_the_hours_follow_the_setting(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    old = _run(session, flow="f", hours_ago=3)
    assert sweep_stale_runs(session, now=NOW, flow_states={}) == []
    monkeypatch.setenv("TIAOJIE_SIMULATION_MAX_HOURS", "2")
    reset_settings()
    assert sweep_stale_runs(session, now=NOW, flow_states={"f": "RUNNING"}) == [old]
    run = session.get(SimulationRun, old)
    assert run is not None and "超过 2 小时" in (run.error or "")
