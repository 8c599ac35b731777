"""The naive designs the benchmarks compare against, run as a child process against the
bench's Prefect server:

* ``e2e``: one synchronous Prefect flow run per case, one task per step (record the
  case, triage, assign, notify), one case after another;
* ``escalation``: one synchronous flow run per due case, one task that reminds or
  escalates that case.

Both call the same domain services as Tiaojie, so the difference is the orchestration.
Prints one JSON object on the last line of stdout.

``python -m bench.naive e2e --count 20`` /
``python -m bench.naive escalation --ids 1,2,3 --now 2026-11-30T01:00:00+00:00``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any

from prefect import flow, task

from models import clock
from models.case import CaseCreate
from models.cases import create_case
from models.db import write_session
from models.lifecycle import Actor

SYSTEM = Actor.system()


@task(persist_result=False)
def record_case(body: dict[str, Any]) -> int:
    with write_session() as session:
        case = create_case(session, data=CaseCreate.model_validate(body), actor=SYSTEM)
        assert case.id is not None
        return case.id


@task(persist_result=False)
def triage(case_id: int) -> None:
    from models import triage as triage_mod

    with write_session() as session:
        triage_mod.triage_case(session, case_id=case_id, actor=SYSTEM)


@task(persist_result=False)
def assign(case_id: int) -> None:
    from models import routing

    with write_session() as session:
        routing.assign_case(session, case_id=case_id, actor=SYSTEM)


def notify_now(case_id: int) -> int:
    from tasks.notify import notify_case_sync

    return len(notify_case_sync(case_id))


@task(persist_result=False)
def notify(case_id: int) -> int:
    return notify_now(case_id)


@flow(name="naive-case", persist_result=False)
def naive_case(body: dict[str, Any]) -> int:
    case_id = record_case(body)
    triage(case_id)
    assign(case_id)
    notify(case_id)
    return case_id


@task(persist_result=False)
def escalate_one(case_id: int, now_iso: str) -> str:
    from models import escalation

    now = datetime.fromisoformat(now_iso)
    with write_session() as session:
        reminded = escalation.remind_case(session, case_id=case_id, now=now, actor=SYSTEM)
        escalated = escalation.escalate_case(session, case_id=case_id, now=now, actor=SYSTEM)
    sent = notify_now(case_id)
    outcome = escalated.outcome if escalated else ("reminded" if reminded else "skipped")
    return f"{outcome}:{sent}"


@flow(name="naive-escalation", persist_result=False)
def naive_escalation(case_id: int, now_iso: str) -> str:
    return escalate_one(case_id, now_iso)


def run_e2e(count: int) -> dict[str, Any]:
    from bench.home import case_body

    latencies: list[float] = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        naive_case(case_body(500_000 + i))
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {"count": count, "seconds": total, "latencies_s": latencies}


def run_escalation(ids: list[int], now_iso: str) -> dict[str, Any]:
    durations: list[float] = []
    outcomes: list[str] = []
    for case_id in ids:
        t0 = time.perf_counter()
        outcomes.append(naive_escalation(case_id, now_iso))
        durations.append(time.perf_counter() - t0)
    return {"count": len(ids), "durations_s": durations, "outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive")
    sub = parser.add_subparsers(dest="what", required=True)
    e2e = sub.add_parser("e2e")
    e2e.add_argument("--count", type=int, default=10)
    esc = sub.add_parser("escalation")
    esc.add_argument("--ids", required=True)
    esc.add_argument("--now", default=None)
    args = parser.parse_args(argv)
    if args.what == "e2e":
        out = run_e2e(args.count)
    else:
        now_iso = args.now or clock.now().isoformat()
        out = run_escalation([int(x) for x in args.ids.split(",") if x], now_iso)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
