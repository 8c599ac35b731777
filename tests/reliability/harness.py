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

__all__ = ["LONG", "PROMISES", "SHORT", "PromiseResult", "Scale"]

# Promise number -> module holding its ``run(scale)``.
MODULES: dict[int, str] = {
    1: "p01_intake",
    3: "p03_timers",
    4: "p04_db_faults",
    5: "p05_concurrency",
    6: "p06_audit",
    7: "p07_notifications",
    8: "p08_authz",
    9: "p09_personal_data",
    10: "p10_bad_input",
    11: "p11_load",
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
    return PROMISES[1](scale)
