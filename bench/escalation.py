"""Escalation sweep: N open cases (1% due) in a SQLite file; the time to find the due
ones (``models.escalation.find_due``, median of several runs) and one sweep that reminds
or escalates all of them with events, outbox rows and notifications, as the scheduled
``escalation`` flow does. Baseline: one synchronous Prefect flow run per due case,
measured on a sample and extrapolated linearly (said so in the JSON)."""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from sqlmodel import Session, col, select

from bench.citygen import build_city, create_database, load_cases
from bench.common import PYTHON, REPO, Workspace, median, percentile, ratio, rnd
from bench.config import Sizes
from bench.home import SECRET
from bench.servers import start_stack


def _notify_all(engine: Any, numbers: list[str]) -> dict[str, int]:
    """What the escalation flow does after the sweep: find the touched cases and run the
    production ``notify_cases`` task body (outside Prefect) over them."""
    import asyncio

    from models.case import Case
    from tasks.notify import notify_cases

    ids: list[int] = []
    with Session(engine) as session:
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            ids += [
                i
                for i in session.exec(select(Case.id).where(col(Case.number).in_(chunk))).all()
                if i
            ]
    counts: dict[str, int] = asyncio.run(notify_cases.fn(ids))
    return counts


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    import os

    from models.settings import reset_settings

    stack = start_stack(ws, settle_s=sizes.idle_settle_s)  # starts while we generate
    root = ws.dir("escalation")
    db_file = root / "tiaojie.db"
    os.environ["TIAOJIE_SECRET_KEY"] = SECRET
    os.environ["TIAOJIE_HOME"] = str(root)
    os.environ["TIAOJIE_DATABASE_URL"] = f"sqlite:///{db_file}"
    reset_settings()
    # The log notifier writes one line per message: keep the bench's screen readable.
    logging.getLogger("tiaojie").setLevel(logging.WARNING)

    engine = create_database(db_file)
    with Session(engine) as session:
        city = build_city(session)
        session.commit()
    now = datetime.now(UTC).replace(microsecond=0)
    console.print(f"generating {sizes.open_cases:,} open cases ({sizes.due_fraction:.0%} due)…")
    load = load_cases(db_file, city, n=sizes.open_cases, due_fraction=sizes.due_fraction, now=now)
    console.print(
        f"generated in {load.seconds:.1f} s ({load.db_mb:.0f} MB): {load.due_cases:,} due "
        f"({load.overdue_cases:,} past the limit, {load.reminder_cases:,} only past the reminder time)"
    )
    engine.dispose()

    # Time on a quiet machine: wait for the stack (and its idle memory sample) first.
    console.print("waiting for tiaojie up (used by the baseline and the end-to-end run)…")
    stack_error: str | None = None
    try:
        stack.wait_ready()
        console.print(
            f"tiaojie up ready after {stack.ready_s:.1f} s; idle RSS {stack.idle_rss.get('total')} MB"
        )
    except Exception as exc:  # the sweep itself does not need it; the baseline does
        stack_error = f"{type(exc).__name__}: {str(exc)[:300]}"
        console.print(f"[red]tiaojie up failed[/]: {stack_error}")

    from models import escalation
    from models.db import build_engine
    from models.lifecycle import Actor, verify_chain

    engine = build_engine(f"sqlite:///{db_file}")
    limit = max(10_000, load.due_cases)
    query_ms: list[float] = []
    found = 0
    for _ in range(sizes.due_query_runs):
        with Session(engine) as session:
            t0 = time.perf_counter()
            due = escalation.find_due(session, now=now, limit=limit)
            query_ms.append((time.perf_counter() - t0) * 1000)
        found = len(set(due.remind_ids) | set(due.escalate_ids))
    console.print(
        f"find_due: {found:,} due in {statistics.median(query_ms):.1f} ms (median of {len(query_ms)})"
    )
    checked = list(dict.fromkeys([*due.remind_ids[:25], *due.escalate_ids[:25]]))
    with Session(engine) as session:
        plan = _explain(session, now)

    # One sweep over every due case, then the notifications, as the scheduled flow does.
    import tasks.notify  # noqa: F401  (imports Prefect: not part of the timing)

    t0 = time.perf_counter()
    report = escalation.sweep(
        engine, now=now, batch_size=sizes.sweep_batch, actor=Actor.system(), limit=limit
    )
    sweep_only = time.perf_counter() - t0
    numbers = [r[0] for r in report.reminded] + [r[0] for r in report.escalated]
    notified = _notify_all(engine, list(dict.fromkeys(numbers)))
    sweep_s = time.perf_counter() - t0
    console.print(
        f"sweep: reminded {len(report.reminded):,}, escalated {len(report.escalated):,}, "
        f"skipped {report.skipped}, {sweep_only:.1f} s; notifications {notified['sent']:,} "
        f"→ {sweep_s:.1f} s in all"
    )
    with Session(engine) as session:
        broken = sum(bool(verify_chain(session, case_id=i)) for i in checked)
    engine.dispose()

    # Baseline: the same work, one flow run per due case, on a small database made by the
    # same generator (so the sample cases are really due), extrapolated to the due count.
    if stack_error is None:
        naive = _naive(ws, sizes, console, prefect_env=stack.prefect_env)
    else:
        naive = {"error": f"no Prefect server: {stack_error}"}
    per_run = naive.get("per_run_s")
    naive_total = per_run * load.due_cases if per_run else None
    return {
        "open_cases": load.open_cases,
        "due_cases": load.due_cases,
        "due_found": found,
        "due_query_ms": rnd(median(query_ms), 1),
        "due_query_ms_runs": [rnd(x, 1) for x in query_ms],
        "sweep_s": rnd(sweep_s, 2),
        "sweep_db_s": rnd(sweep_only, 2),
        "reminded": len(report.reminded),
        "escalated": len(report.escalated),
        "skipped": report.skipped,
        "notifications": notified["sent"],
        "notifications_failed": notified["failed"],
        "chains_checked": len(checked),
        "chains_broken": broken,
        "naive_sweep_s": rnd(naive_total, 1),
        "naive_extrapolated": True,
        "naive_sample": naive,
        "ratio": ratio(naive_total, sweep_s),
        "query_plan": plan,
        "generate_s": rnd(load.seconds, 1),
        "db_mb": rnd(load.db_mb, 0),
    }


def _explain(session: Session, now: datetime) -> list[str]:
    from models import escalation

    lines: list[str] = []
    for query in (escalation.due_reminders_query(now), escalation.due_escalations_query(now)):
        compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        rows = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
        lines.append("; ".join(str(r[-1]) for r in rows))
    return lines


def _naive(
    ws: Workspace, sizes: Sizes, console: Console, *, prefect_env: dict[str, str]
) -> dict[str, Any]:
    """A small database with the same generator; time N flow runs, one per due case."""
    root = ws.dir("escalation-naive")
    db_file = root / "tiaojie.db"
    engine = create_database(db_file)
    with Session(engine) as session:
        city = build_city(session)
        session.commit()
    engine.dispose()
    now = datetime.now(UTC).replace(microsecond=0)
    n = sizes.naive_escalation_sample
    load_cases(db_file, city, n=n * 100, due_fraction=0.01, now=now)
    from models import escalation
    from models.db import build_engine

    engine = build_engine(f"sqlite:///{db_file}")
    with Session(engine) as session:
        due = escalation.find_due(session, now=now, limit=n * 2)
    engine.dispose()
    ids = list(dict.fromkeys([*due.escalate_ids[: n // 2], *due.remind_ids]))[:n]
    env = ws.base_env(
        **prefect_env,
        TIAOJIE_HOME=str(root),
        TIAOJIE_DATABASE_URL=f"sqlite:///{db_file}",
        TIAOJIE_SECRET_KEY=SECRET,
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    console.print(f"naive baseline: {len(ids)} flow runs, one per due case…")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.naive",
            "escalation",
            "--ids",
            ",".join(map(str, ids)),
            "--now",
            now.isoformat(),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"naive escalation failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    durations = out["durations_s"]
    per_run = statistics.mean(durations) if durations else None
    console.print(
        f"naive: {per_run:.2f} s a flow run (mean of {len(durations)}); outcomes {sorted(set(out['outcomes']))}"
    )
    return {
        "runs": len(durations),
        "per_run_s": rnd(per_run, 3),
        "p50_s": rnd(percentile(durations, 50), 3),
        "max_s": rnd(max(durations), 3) if durations else None,
        "process_wall_s": rnd(wall, 1),
        "outcomes": sorted(set(out["outcomes"])),
        "how": "mean seconds of one flow run x due cases (linear extrapolation)",
    }
