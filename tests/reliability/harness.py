"""The reliability harness: one function per promise of issue #8.

Each ``run_<n>(scale)`` drives the real system (databases, HTTP app, Prefect where it
matters) with the load and the faults of its promise, and returns a
:class:`~tests.reliability.common.PromiseResult` with the figures. The SHORT scale runs
in CI (``tests/reliability/test_promises.py``); the LONG one is ``make reliability``
(``python -m tests.reliability.long_run``), which rewrites ``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tests.reliability.common import LONG, SHORT, PromiseResult, Scale

__all__ = [
    "LONG",
    "PROMISES",
    "SHORT",
    "PromiseResult",
    "Scale",
    "run_1",
    "run_2",
    "run_3",
    "run_4",
    "run_5",
    "run_6",
    "run_7",
    "run_8",
    "run_9",
    "run_10",
    "run_11",
    "run_12",
]

# Promise number -> module holding its ``run(scale)``.
MODULES: dict[int, str] = {
    1: "p01_intake",
    2: "p02_kills",
    3: "p03_timers",
    4: "p04_db_faults",
    5: "p05_concurrency",
    6: "p06_audit",
    7: "p07_notifications",
    8: "p08_authz",
    9: "p09_personal_data",
    10: "p10_bad_input",
    11: "p11_load",
    12: "p12_attacks",
}


def _runner(number: int) -> Callable[[Scale], PromiseResult]:
    def run(scale: Scale) -> PromiseResult:
        module = importlib.import_module(f"tests.reliability.{MODULES[number]}")
        result: PromiseResult = module.run(scale)
        return result

    run.__name__ = f"run_{number}"
    run.__doc__ = f"Promise {number}: see tests/reliability/{MODULES[number]}.py"
    return run


PROMISES: dict[int, Callable[[Scale], PromiseResult]] = {n: _runner(n) for n in MODULES}


def run_1(scale: Scale) -> PromiseResult:
    """Promise 1: Idempotent intake."""
    return PROMISES[1](scale)


def run_2(scale: Scale) -> PromiseResult:
    """Promise 2: No gap between a saved case and its workflow (SIGKILL)."""
    return PROMISES[2](scale)


def run_3(scale: Scale) -> PromiseResult:
    """Promise 3: Timers."""
    return PROMISES[3](scale)


def run_4(scale: Scale) -> PromiseResult:
    """Promise 4: Database faults."""
    return PROMISES[4](scale)


def run_5(scale: Scale) -> PromiseResult:
    """Promise 5: Concurrent updates."""
    return PROMISES[5](scale)


def run_6(scale: Scale) -> PromiseResult:
    """Promise 6: Tamper-evident audit."""
    return PROMISES[6](scale)


def run_7(scale: Scale) -> PromiseResult:
    """Promise 7: Notifications under network faults."""
    return PROMISES[7](scale)


def run_8(scale: Scale) -> PromiseResult:
    """Promise 8: Authorisation."""
    return PROMISES[8](scale)


def run_9(scale: Scale) -> PromiseResult:
    """Promise 9: Personal data."""
    return PROMISES[9](scale)


def run_10(scale: Scale) -> PromiseResult:
    """Promise 10: Bad input."""
    return PROMISES[10](scale)


def run_11(scale: Scale) -> PromiseResult:
    """Promise 11: Load."""
    return PROMISES[11](scale)


def run_12(scale: Scale) -> PromiseResult:
    """Promise 12: Security attacks."""
    return PROMISES[12](scale)
