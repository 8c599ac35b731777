"""Fresh work ahead of a backlog, end to end (part of the ``end_to_end`` section).

A backlog of complaints lies in the outbox, filed minutes ago while the workflow was
down (as after an outage, or right after ``tiaojie up`` on a district that kept
filing): they are written straight into the case database through the domain's own
``create_case`` with their real filing time, in one transaction, so the relay finds
them all at once. New complaints then arrive over HTTP at 2 a second, one in
``EMERGENCY_EVERY`` marked 紧急 emergency by the person who files it. Measured: the
submit→assigned latency of the new complaints and of the emergencies among them,
and how long the backlog takes to drain (from the moment it was committed until its
last case is assigned), with the relay and Prefect workers that ``tiaojie up`` runs.

``python -m bench.backlog [--full] [--merge-into bench/results.json]`` runs this phase
alone on a fresh ``tiaojie up``; ``python -m bench.backlog seed N MINUTES`` (with the
installation's environment) writes the backlog and prints the new case ids and the wall
time of the commit as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import latency_parts
from bench.common import percentile, rnd, run_json

EMERGENCY_EVERY = 5
BACKLOG_FILED_MIN_AGO = 5.0
BACKLOG_RESPONDENTS = 400


def seed(count: int, minutes_ago: float) -> dict[str, Any]:
    """Write ``count`` complaints filed ``minutes_ago`` (spread over the minute before),
    each with its ``submitted`` outbox row, in one transaction."""
    from sqlmodel import Session, select

    from models import clock
    from models.access import Actor
    from models.case import CaseCreate
    from models.cases import create_case
    from models.db import get_engine, write_session
    from models.staff import Staff
    from models.unit import Unit

    engine = get_engine()
    with Session(engine) as session:
        worker = session.exec(select(Staff).where(Staff.username == "d1s1c1_worker")).one()
        unit = session.get(Unit, worker.unit_id)
        assert unit is not None
        actor = Actor(kind="staff", staff_id=worker.id, role=worker.role, unit_path=unit.path)
    start = clock.now() - timedelta(minutes=minutes_ago)
    ids = []
    with write_session(engine) as session:
        for i in range(count):
            data = CaseCreate.model_validate(backlog_body(i))
            at = start + timedelta(seconds=60 * i / max(count, 1))
            case = create_case(session, data=data, actor=actor, created_by_id=worker.id, at=at)
            ids.append(case.id)
    return {"ids": ids, "committed": time.time()}


def backlog_body(i: int) -> dict[str, Any]:
    """A complaint of the backlog: as the arrivals', against one of
    ``BACKLOG_RESPONDENTS`` firms (the arrivals name 50: a thousand complaints against
    those would all be early-warning clusters, each warning a risk-notice run of its own,
    which is what the README's note on clusters measured)."""
    from bench.home import case_body

    body = case_body(900_000 + i)
    body["parties"][1]["name"] = f"江心市第{i % BACKLOG_RESPONDENTS}商贸公司"
    return body


def _seed_backlog(env: dict[str, str], count: int) -> tuple[list[int], float]:
    args = ["bench.backlog", "seed", str(count), str(BACKLOG_FILED_MIN_AGO)]
    out = run_json(args, env, timeout=600, what="backlog seed")
    return [int(i) for i in out["ids"]], float(out["committed"])


def emergency_body(i: int) -> dict[str, Any]:
    from bench.home import case_body

    body = case_body(i)
    if i % EMERGENCY_EVERY == 0:
        body["priority"] = "emergency"
    return body


def run(stack: Any, sizes: Any, console: Console, poll: Any) -> dict[str, Any]:
    """The backlog phase on the running stack; ``poll(sent, done)`` records assigned cases."""
    from bench import e2e
    from bench.e2e import Phase, arrivals

    console.print(f"backlog: {sizes.backlog_cases} complaints waiting in the outbox…")
    backlog_ids, committed = _seed_backlog(stack.home.env, sizes.backlog_cases)
    backlog_sent = dict.fromkeys(backlog_ids, committed)
    backlog_done: dict[int, float] = {}
    phase = Phase(sizes.e2e_rate, sizes.backlog_arrival_seconds)
    asyncio.run(
        arrivals(stack.app_url + "/api/v1/cases", stack.home.token, phase, 200_000, emergency_body)
    )
    deadline = time.perf_counter() + sizes.backlog_drain_timeout_s
    while time.perf_counter() < deadline:
        waiting = poll(phase.sent, phase.done) + poll(backlog_sent, backlog_done)
        if not waiting:
            break
        time.sleep(0.25)
    new_lat = [phase.done[i] - phase.sent[i] for i in phase.done]
    urgent = [phase.done[i] - phase.sent[i] for i in phase.done if i in phase.emergencies]
    drained = (
        max(backlog_done.values()) - committed if len(backlog_done) == len(backlog_ids) else None
    )
    parts = latency_parts.measure(e2e._engine(stack), stack.prefect_env, phase.sent)
    out = {
        "backlog_cases": len(backlog_ids),
        "backlog_assigned": len(backlog_done),
        "backlog_drain_s": rnd(drained, 1),
        "arrival_rate_per_s": phase.rate,
        "new_cases": len(phase.sent),
        "new_assigned": len(phase.done),
        "new_p50_s": rnd(percentile(new_lat, 50), 2),
        "new_p95_s": rnd(percentile(new_lat, 95), 2),
        "new_max_s": rnd(max(new_lat), 2) if new_lat else None,
        "emergencies": len(phase.emergencies),
        "emergency_p95_s": rnd(percentile(urgent, 95), 2),
        "emergency_max_s": rnd(max(urgent), 2) if urgent else None,
        "post_failed": phase.failed,
        "first_error": phase.first_error,
        "parts": {
            "new": latency_parts.summary(parts),
            "emergency": latency_parts.summary(parts, phase.emergencies),
        },
    }
    console.print(latency_parts.line("new", out["parts"]["new"]))
    console.print(latency_parts.line("emergencies", out["parts"]["emergency"]))
    console.print(
        f"backlog {len(backlog_done)}/{len(backlog_ids)} drained in {out['backlog_drain_s']} s; "
        f"new p95 {out['new_p95_s']} s ({len(phase.done)}/{len(phase.sent)}), "
        f"emergencies p95 {out['emergency_p95_s']} s ({len(urgent)})"
    )
    return out


FLOOR_CASES = 10


def floor(stack: Any, console: Console, count: int = FLOOR_CASES) -> dict[str, Any]:
    """The floor: ``count`` emergencies filed one at a time on the idle system (each once
    the one before is assigned), with the parts of their submit→assigned time."""
    import httpx

    from bench import e2e
    from bench.common import poll_assigned

    engine = e2e._engine(stack)
    sent: dict[int, float] = {}
    done: dict[int, float] = {}
    headers = {"Authorization": f"Bearer {stack.home.token}"}
    with httpx.Client(base_url=stack.app_url, headers=headers, timeout=30) as client:
        for i in range(count):
            body = emergency_body(300_000 + i * EMERGENCY_EVERY)
            at = time.time()
            r = client.post("/api/v1/cases", json=body)
            r.raise_for_status()
            case_id = int(r.json()["case"]["id"])
            sent[case_id] = at
            deadline = time.perf_counter() + 60
            while case_id not in done and time.perf_counter() < deadline:
                poll_assigned(engine, {case_id: at}, done)
                time.sleep(0.05)
            time.sleep(1.0)
    lat = [done[i] - sent[i] for i in done]
    parts = latency_parts.summary(latency_parts.measure(engine, stack.prefect_env, sent))
    console.print(
        f"floor: {len(done)}/{count} emergencies alone, p50 "
        f"{rnd(percentile(lat, 50), 2)} s, max {rnd(max(lat), 2) if lat else None} s"
    )
    console.print(latency_parts.line("floor", parts))
    return {
        "emergencies": count,
        "assigned": len(done),
        "p50_s": rnd(percentile(lat, 50), 2),
        "max_s": rnd(max(lat), 2) if lat else None,
        "parts": parts,
    }


def _alone(full: bool, merge_into: Path | None, settings: dict[str, str]) -> dict[str, Any]:
    """This phase alone on a fresh ``tiaojie up`` (after a short warm-up at 2/s), without
    the rest of the end-to-end section; with ``merge_into``, its three figures and the
    phase are written into that results file's ``end_to_end`` block with where and when
    they were measured."""
    import psutil

    from bench import e2e
    from bench.common import Workspace, git_commit, poll_assigned
    from bench.config import FULL, QUICK
    from bench.servers import forget_stack, start_stack

    sizes = FULL if full else QUICK
    console = Console(stderr=True)
    load = [round(x, 2) for x in psutil.getloadavg()]
    ws = Workspace.create()
    try:
        stack = start_stack(ws, settle_s=1.0, settings=settings)
        console.print("waiting for tiaojie up…")
        stack.wait_ready()
        engine = e2e._engine(stack)
        e2e._run_phase(stack, e2e.Phase(sizes.e2e_rate, 5.0), 0, 30.0, console)  # warm-up
        idle = floor(stack, console)
        out = run(stack, sizes, console, lambda sent, done: poll_assigned(engine, sent, done))
        out["floor"] = idle
    finally:
        for engine in e2e._engines.values():
            engine.dispose()
        e2e._engines.clear()
        ws.close()
        forget_stack()
    out["measured"] = {
        "command": "python -m bench.backlog"
        + (" --full" if full else "")
        + "".join(f" --set {k}={v}" for k, v in settings.items()),
        "commit": git_commit(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": load,
        "load_average_at_end": [round(x, 2) for x in psutil.getloadavg()],
    }
    if merge_into is not None:
        results = json.loads(merge_into.read_text())
        block = results.setdefault("end_to_end", {})
        block["backlog_new_p95_s"] = out["new_p95_s"]
        block["backlog_emergency_p95_s"] = out["emergency_p95_s"]
        block["backlog_drain_s"] = out["backlog_drain_s"]
        block["backlog_emergency_alone_p50_s"] = idle["p50_s"]
        block["backlog_phase"] = out
        merge_into.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        print(json.dumps(seed(int(sys.argv[2]), float(sys.argv[3]))))
    else:
        import argparse

        parser = argparse.ArgumentParser(prog="python -m bench.backlog", description=__doc__)
        parser.add_argument("--full", action="store_true", help="the issue's sizes")
        parser.add_argument("--merge-into", type=Path, help="a results JSON to add the figures to")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a setting for tiaojie up, e.g. relay_emergency_lane=0 (repeatable)",
        )
        args = parser.parse_args()
        chosen = dict(item.split("=", 1) for item in args.set)
        print(json.dumps(_alone(args.full, args.merge_into, chosen), indent=2))
