"""Backlog work gives way to urgent work in this process.

Ahead of a backlog the relay starts emergencies and fresh cases on runs kept for them
(``flows/batching.py``); in the embedded worker those runs share one Python process
(and its interpreter lock) and the case database's write lock with the backlog's batch
run. Measured (``bench/backlog.py``): a fresh case's triage and assignment took ten
times longer beside a 50-case batch than alone. So a batch run that is not urgent
pauses between two of its cases while urgent runs are in flight, for at most
``settings.relay_give_way_s`` each time: the urgent runs get the process, and the
backlog still moves at least a case per pause however much urgent work arrives.

Only this process is concerned: on a work pool each run has a process of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from models.settings import get_settings

_urgent = ContextVar("tiaojie_urgent_run", default=False)
_changed = threading.Condition()
_in_flight = 0


@contextmanager
def urgent_run() -> Iterator[None]:
    """Around an urgent run: other batch runs give way while it runs; its own steps
    (and the tasks and threads it starts, which copy the context) never wait."""
    global _in_flight
    token = _urgent.set(True)
    with _changed:
        _in_flight += 1
    try:
        yield
    finally:
        with _changed:
            _in_flight -= 1
            _changed.notify_all()
        _urgent.reset(token)


def urgent_in_flight() -> int:
    return _in_flight


def in_urgent_run() -> bool:
    """Whether the caller works for an urgent run (its context, copied into threads)."""
    return _urgent.get()


def give_way() -> float:
    """Between two cases of a batch (in its worker thread): wait while urgent runs are
    in flight, at most ``relay_give_way_s``; at once inside an urgent run. Returns the
    seconds waited."""
    if _urgent.get() or _in_flight == 0:
        return 0.0
    most = get_settings().relay_give_way_s
    if most <= 0:
        return 0.0
    import time

    start = time.monotonic()
    with _changed:
        _changed.wait_for(lambda: _in_flight == 0, timeout=most)
    return time.monotonic() - start
