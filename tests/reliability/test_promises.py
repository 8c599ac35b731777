"""The SHORT scale of every reliability promise (issue #8), in CI.

Each test runs one promise of ``tests/reliability/harness.py`` and fails when a figure
breaks the promise; the figures are printed (``pytest -s``) so a failing run says how
badly. ``make reliability`` runs the same code at the LONG scale.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.common import stop_pg_server
from tests.reliability.harness import PROMISES, SHORT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _throwaway_pg() -> Iterator[None]:
    yield
    stop_pg_server()  # only the cluster this module started, if any


@pytest.mark.parametrize("number", sorted(PROMISES))
def test_promise(number: int) -> None:
    result = PROMISES[number](SHORT)
    print(f"\n{result.promise}: {result.figures()}")
    for note in result.notes:
        print(f"  note: {note}")
    assert result.passed, f"{result.promise} broken: {result.figures()}"
