"""Promise 5: concurrent updates.

A. Eight writer threads on ONE case, each attempt reading the case's version and then
   applying a transition with ``expected_version`` (what the API does with ``version`` /
   ``If-Match``): the final version must equal the successful commits, every loser must
   get :class:`ConflictError`, and every success must be on the timeline exactly once
   (lost updates 0). On SQLite, and on PostgreSQL when one is reachable.
B. SQLite file shared by N processes x M transitions (annotations on shared cases and
   new cases, which also contend for the yearly case-number counter): "database is
   locked" surfacing to a caller 0.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, func
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from models import lifecycle
from models.case import Case
from models.db import get_engine, read_session, write_session
from models.errors import ConflictError
from models.event import CaseEvent
from models.lifecycle import Actor
from tests.factories import advance_to_assigned, make_case
from tests.reliability.common import (
    Database,
    PromiseResult,
    Scale,
    pg_database,
    require_pg,
    sqlite_database,
)

WRITERS = 8


def one_case(database: Database) -> int:
    with write_session(database.engine) as s:
        case = make_case(s)
        advance_to_assigned(s, case, database.city)
        assert case.id is not None
        return case.id


def attempt(engine: Engine, case_id: int, writer: int, n: int) -> str:
    with read_session(engine) as s:
        seen = s.get(Case, case_id)
        assert seen is not None
        version = seen.version
    try:
        with write_session(engine) as s:
            case = s.get(Case, case_id)
            assert case is not None
            lifecycle.apply(
                s,
                case=case,
                verb="reminded",
                actor=Actor.system(),
                expected_version=version,
                data={"level": 0, "writer": writer, "attempt": n},
            )
    except ConflictError:
        return "conflict"
    except OperationalError as exc:
        return "locked" if "locked" in str(exc).lower() else "db_error"
    return "ok"


def writers_on_one_case(database: Database, attempts: int) -> dict[str, Any]:
    case_id = one_case(database)
    with read_session(database.engine) as s:
        case = s.get(Case, case_id)
        assert case is not None
        start_version = case.version
    per_writer = attempts // WRITERS
    results: list[tuple[int, int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(WRITERS)

    def writer(w: int) -> None:
        barrier.wait()
        for n in range(per_writer):
            outcome = attempt(database.engine, case_id, w, n)
            with lock:
                results.append((w, n, outcome))

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))
    counts = Counter(outcome for _, _, outcome in results)
    with read_session(database.engine) as s:
        case = s.get(Case, case_id)
        assert case is not None
        events = s.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.seq))
        ).all()
        chain = lifecycle.verify_chain(s, case_id=case_id)
    recorded = Counter(
        (e.data.get("writer"), e.data.get("attempt")) for e in events if e.verb == "reminded"
    )
    succeeded = {(w, n) for w, n, o in results if o == "ok"}
    lost = sum(1 for key in succeeded if recorded[key] == 0)
    doubled = sum(1 for key, c in recorded.items() if c > 1)
    phantom = sum(1 for key in recorded if key not in succeeded)
    return {
        "attempts": len(results),
        "commits": counts["ok"],
        "conflicts": counts["conflict"],
        "other_errors": len(results) - counts["ok"] - counts["conflict"],
        "final_version_minus_commits": case.version - start_version - counts["ok"],
        "lost_updates": lost + doubled + phantom,
        "chain_breaks": len(chain),
        "events_equal_version": len(events) == case.version,
    }


# --- B: processes on one SQLite file ----------------------------------------------------------


def _process(args: tuple[str, list[int], int, int]) -> dict[str, int]:
    url, case_ids, transitions, seed = args
    engine = get_engine(url)
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    slowest = 0.0
    started = time.perf_counter()
    for n in range(transitions):
        began = time.perf_counter()
        try:
            if n % 10 == 9:
                with write_session(engine) as s:
                    make_case(s)
                counts["ok"] += 1
                continue
            counts[attempt(engine, rng.choice(case_ids), seed, n)] += 1
        except OperationalError as exc:
            counts["locked" if "locked" in str(exc).lower() else "db_error"] += 1
        except Exception as exc:
            counts[f"error:{type(exc).__name__}"] += 1
        slowest = max(slowest, time.perf_counter() - began)
    counts["ms_busy"] = int((time.perf_counter() - started) * 1000)
    counts["ms_slowest"] = int(slowest * 1000)
    return dict(counts)


def processes_on_sqlite(database: Database, processes: int, transitions: int) -> dict[str, Any]:
    case_ids = [one_case(database) for _ in range(4)]
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with context.Pool(processes) as pool:
        parts = pool.map(
            _process, [(database.url, case_ids, transitions, p) for p in range(processes)]
        )
    seconds = time.perf_counter() - started
    total: Counter[str] = Counter()
    slowest = max(part.pop("ms_slowest") for part in parts)
    busy = max(part.pop("ms_busy") for part in parts)
    for part in parts:
        total.update(part)
    with Session(database.engine) as s:
        numbers = s.exec(select(Case.number)).all()
        chains = sum(len(lifecycle.verify_chain(s, case_id=c)) for c in case_ids)
        cases = int(s.exec(select(func.count()).select_from(Case)).one())
    return {
        "transitions": sum(total.values()),
        "committed": total["ok"],
        "conflicts": total["conflict"],
        "locked_shown": total["locked"],
        "other_errors": sum(v for k, v in total.items() if k not in ("ok", "conflict", "locked")),
        "duplicate_case_numbers": len(numbers) - len(set(numbers)),
        "chain_breaks": chains,
        "cases": cases,
        "slowest_transition_s": round(slowest / 1000, 2),
        "busy_seconds": round(busy / 1000, 1),
        "seconds_with_start": round(seconds, 1),
    }


def run(scale: Scale) -> PromiseResult:
    attempts = scale.pick(160, 1000)
    processes, transitions = scale.pick((3, 30), (8, 500))
    figures: dict[str, Any] = {}
    with sqlite_database() as database:
        a = writers_on_one_case(database, attempts)
    figures.update({f"sqlite_{k}": v for k, v in a.items()})
    pg_url = require_pg()
    notes = []
    if pg_url:
        with pg_database(pg_url) as database:
            p = writers_on_one_case(database, attempts)
        figures.update({f"pg_{k}": v for k, v in p.items()})
    else:
        notes.append("PostgreSQL not reachable: part A ran on SQLite only")
    if scale.long and transitions < 500:
        notes.append(
            f"{processes} processes x {transitions} transitions instead of x 500: writers in "
            "different processes wait in SQLite's busy handler (sleeps), so the run is slow "
            "on this 2-core machine shared with other work"
        )
    with sqlite_database() as database:
        b = processes_on_sqlite(database, processes, transitions)
    figures.update({f"procs_{k}": v for k, v in b.items()})
    dbs = [db for db in ("sqlite", "pg") if f"{db}_commits" in figures]
    zero = ("other_errors", "final_version_minus_commits", "lost_updates", "chain_breaks")
    ok_a = all(figures[f"{db}_{k}"] == 0 for db in dbs for k in zero) and all(
        figures[f"{db}_events_equal_version"] is True for db in dbs
    )
    ok_conflicts = all(
        figures[f"{db}_commits"] + figures[f"{db}_conflicts"] == figures[f"{db}_attempts"]
        for db in dbs
    )
    ok_b = (
        b["locked_shown"] == 0
        and b["other_errors"] == 0
        and b["duplicate_case_numbers"] == 0
        and b["chain_breaks"] == 0
    )
    return PromiseResult(
        promise="5 Concurrent updates 并发修改",
        test="tests/reliability/p05_concurrency.py: lifecycle.apply with expected_version "
        "from 8 threads on one case; spawned processes on one SQLite file",
        load=f"{attempts:,} attempts by {WRITERS} writers on one case"
        + (" (SQLite and PostgreSQL)" if pg_url else " (SQLite)")
        + f"; {processes} processes x {transitions} transitions on one SQLite file",
        faults="stale versions, write-lock contention across processes",
        result=figures,
        passed=ok_a and ok_conflicts and ok_b,
        notes=notes,
    )
