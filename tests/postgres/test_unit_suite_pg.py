"""The unit tests that use the database, run again on PostgreSQL.

Every test function in ``tests/unit`` that takes the ``session`` or ``engine`` fixture is
collected here a second time; this folder's conftest overrides those fixtures with a
fresh, migrated PostgreSQL database, so each runs unchanged on the scale-out engine.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest

import tests.unit

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DB_FIXTURES = {"session", "engine"}
# Tests of SQLite itself (its query planner, its pragmas): nothing to repeat on PostgreSQL.
SQLITE_ONLY = {
    "test_escalation.test_due_queries_use_the_open_timestamp_indexes",
    "test_metrics.test_backlog_reads_the_open_cases_not_the_whole_subtree",
    "test_metrics.test_limits_passed_in_a_period_read_the_period_only",
    "test_metrics.test_the_monthly_reports_statements_read_the_month_not_the_history",
    "test_access.test_reach_reads_the_open_cases_of_the_readers_subtree",
}


def _is_fixture(obj: object) -> bool:
    return type(obj).__name__ == "FixtureFunctionDefinition" or hasattr(
        obj, "_pytestfixturefunction"
    )


def _collect() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for info in pkgutil.iter_modules(tests.unit.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"tests.unit.{info.name}")
        for name, obj in vars(module).items():
            if _is_fixture(obj) and getattr(obj, "__module__", "") == module.__name__:
                # The module's own fixtures (e.g. a data set built on ``session``) come
                # along, so that its tests find them here too.
                found.setdefault(name, obj)
                continue
            if not (name.startswith("test_") and inspect.isfunction(obj)):
                continue
            if obj.__module__ != module.__name__ or f"{info.name}.{name}" in SQLITE_ONLY:
                continue
            if DB_FIXTURES & set(inspect.signature(obj).parameters):
                found[f"test_pg__{info.name.removeprefix('test_')}__{name[5:]}"] = obj
    return found


globals().update(_collect())
