"""Promise 3: timers (reminders before a deadline, escalation at it) are neither missed
nor doubled.

Cases are recorded over two working days on a virtual clock and handed to a community,
so their deadlines fall at many different moments; then the clock steps hour by hour
through the following weeks while cases climb the unit tree. At every step TWO
escalation sweeps run at once (threads, same moment); at chosen deadlines a THIRD sweep
runs in a process of its own and is killed with SIGKILL part-way through, then started
again at the same moment. After every step nothing may still be due (missed 0), and at
the end no case may hold two reminders or two escalations for the same level and
deadline (double 0).
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models import clock
from models.case import Case
from models.db import write_session
from models.escalation import find_due, sweep
from models.event import CaseEvent
from models.lifecycle import Actor
from tests.factories import advance_to_assigned, make_case
from tests.reliability.common import ROOT, PromiseResult, Scale, sqlite_database

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Mon 09:00 CST
CHILD = """
import sys
from datetime import datetime
from models.db import get_engine
from models.escalation import sweep
from models.lifecycle import Actor
engine = get_engine()
print("ready", flush=True)
sys.stdin.readline()
sweep(engine, now=datetime.fromisoformat(sys.argv[1]), actor=Actor.system(), batch_size=3)
print("done", flush=True)
"""


def start_sweep(url: str, now: Any) -> subprocess.Popen[str]:
    """A sweep in a process of its own, imported and connected, waiting for "go"."""
    env = {**os.environ, "TIAOJIE_DATABASE_URL": url}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, now.isoformat()],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    child.stdout.readline()  # "ready"
    return child


def kill_mid_way(child: subprocess.Popen[str], rng: random.Random) -> bool:
    """Let it sweep a moment, then SIGKILL (True when it had not finished)."""
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    time.sleep(rng.uniform(0.02, 0.2))
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=60)
    return "done" not in out


def run(scale: Scale) -> PromiseResult:
    cases, days, kills = scale.pick((160, 20, 2), (1000, 40, 6))
    rng = random.Random(scale.seed)
    previous = clock.get_clock()
    vclock = clock.VirtualClock(T0)
    clock.set_clock(vclock)
    try:
        with sqlite_database() as database:
            figures = simulate(database, cases, days, kills, rng, vclock)
    finally:
        clock.set_clock(previous)
    passed = (
        figures["missed"] == 0
        and figures["double"] == 0
        and figures["escalations"] > 0
        and figures["reminders"] > 0
    )
    return PromiseResult(
        promise="3 Timers 时限催办与上报",
        test="tests/reliability/p03_timers.py: models.escalation.sweep on a virtual clock, "
        "SQLite file",
        load=f"{cases:,} cases, {days} days stepped hourly, 2 sweeps at once at every step, "
        f"{kills} sweeps killed and restarted at a deadline",
        faults="concurrent sweeps; a sweep process killed with SIGKILL part-way",
        result=figures,
        passed=passed,
    )


def simulate(
    database: Any,
    cases: int,
    days: int,
    kills: int,
    rng: random.Random,
    vclock: clock.VirtualClock,
) -> dict[str, Any]:
    with write_session(database.engine) as s:
        for n in range(cases):
            # Recorded in a few bursts, so that many cases fall due at the same moment.
            at = T0 + timedelta(minutes=rng.choice((0, 95, 200, 390, 1440, 1500, 1700, 1900)))
            vclock.set(at)
            case = make_case(s, at=at, description=f"噪音扰民第{n}件", parties=[])
            advance_to_assigned(
                s, case, database.city, unit=rng.choice(["CMA", "CMB", "CPA"]), assignee="mediatorA"
            )
    start = T0 + timedelta(hours=1)
    steps = days * 24
    # Kill a sweep exactly at the hour some cases fall due.
    with Session(database.engine) as s:
        dues = [clock.ensure_utc(d) for d in s.exec(select(Case.resolution_due_at)).all() if d]
    due_steps = sorted(
        {math.ceil((d - start).total_seconds() / 3600) for d in dues if d > start}
        & set(range(steps))
    )
    kill_steps = set(rng.sample(due_steps, min(kills, len(due_steps))))
    missed = killed = 0
    sweeps = 0
    for step in range(steps):
        now = start + timedelta(hours=step)
        vclock.set(now)
        child = start_sweep(database.url, now) if step in kill_steps else None
        barrier = threading.Barrier(2)

        def sweeper(at: Any = now, gate: threading.Barrier = barrier) -> None:
            gate.wait()
            sweep(database.engine, now=at, actor=Actor.system(), batch_size=25)

        threads = [threading.Thread(target=sweeper) for _ in range(2)]
        for t in threads:
            t.start()
        if child is not None:
            killed += kill_mid_way(child, rng)
            sweep(database.engine, now=now, actor=Actor.system(), batch_size=25)  # restarted
            sweeps += 2
        for t in threads:
            t.join()
        sweeps += 2
        with Session(database.engine) as s:
            due = find_due(s, now=now)
            missed += len(due.remind_ids) + len(due.escalate_ids)
    with Session(database.engine) as s:
        events = s.exec(
            select(CaseEvent.case_id, CaseEvent.verb, CaseEvent.data).where(
                col(CaseEvent.verb).in_(["reminded", "escalated"])
            )
        ).all()
    keys: Counter[tuple[Any, ...]] = Counter(
        (case_id, verb, data.get("level"), data.get("deadline"), bool(data.get("overdue")))
        for case_id, verb, data in events
    )
    return {
        "sweeps": sweeps,
        "sweeps_killed_mid_way": killed,
        "reminders": sum(1 for _, v, _ in events if v == "reminded"),
        "escalations": sum(1 for _, v, _ in events if v == "escalated"),
        "missed": missed,
        "double": sum(c - 1 for c in keys.values() if c > 1),
    }
