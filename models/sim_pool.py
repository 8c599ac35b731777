"""Scenarios side by side on every CPU (多进程模拟): one process per scenario.

A scenario is one process's work from start to end (one in-memory database, one virtual
clock, the services called one after another), so a comparison of three scenarios on a
2-core machine took three times one scenario. Each scenario here runs in a process of its
own, reading the live database through its URL; what a scenario computes depends only on
the live database, the scenario, the period and the seed, so the summary is the same byte
for byte as one after another (test). Progress comes back through a queue.

An in-memory live database cannot be opened by another process: those (tests, scripts)
and single scenarios run in this process, as does everything when
``TIAOJIE_SIMULATION_PROCESSES`` is 1.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.scenario import Scenario
from models.settings import get_settings
from models.simulate import Period, run_scenario

__all__ = ["processes_for", "run_in_processes"]

Progress = Callable[[str, int, int], None]  # (scenario key, days done, days in all)
_progress: Any = None  # the queue, in a worker process


def processes_for(live: Session, scenarios: int) -> int:
    """How many processes to run ``scenarios`` scenarios in; 1: this process."""
    bind = live.get_bind()
    if scenarios < 2 or not isinstance(bind, Engine):
        return 1
    if bind.url.get_backend_name() == "sqlite" and bind.url.database in (None, "", ":memory:"):
        return 1
    wanted = get_settings().simulation_processes or os.cpu_count() or 1
    return max(1, min(wanted, scenarios))


def run_in_processes(
    url: str,
    scenarios: Sequence[Scenario],
    period: Period,
    *,
    seed: int,
    processes: int,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Each scenario's result, keyed as given; the first scenario's error is raised."""
    # spawn, not fork: the parent may be a Prefect worker or a web server with threads.
    context = multiprocessing.get_context("spawn")
    updates = context.Queue()
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_init, initargs=(updates,)
    ) as pool:
        futures = {pool.submit(_run_one, url, s, period, seed): s.key for s in scenarios}
        pending: set[Future[dict[str, Any]]] = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            _drain(updates, progress)
        _drain(updates, progress)
        return {futures[f]: f.result() for f in futures}


def _drain(updates: Any, progress: Progress | None) -> None:
    while True:
        try:
            key, done, total = updates.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress(key, done, total)


def _init(updates: Any) -> None:
    global _progress
    _progress = updates


def _run_one(url: str, scenario: Scenario, period: Period, seed: int) -> dict[str, Any]:
    from models.db import build_engine

    engine = build_engine(url)
    try:
        with Session(engine) as live:

            def step(done: int, total: int) -> None:
                if _progress is not None:
                    _progress.put((scenario.key, done, total))

            return run_scenario(live, scenario, period, seed=seed, progress=step)
    finally:
        engine.dispose()
