"""The SHORT scale of every reliability promise (issue #8), in CI.

Each test runs one promise of ``tests/reliability/harness.py`` and fails when a figure
breaks the promise; the figures are printed (``pytest -s``) so a failing run says how
badly. ``make reliability`` runs the same code at the LONG scale.
"""

from __future__ import annotations

import pytest

from tests.reliability.harness import PROMISES, SHORT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("number", sorted(PROMISES))
def test_promise(number: int) -> None:
    result = PROMISES[number](SHORT)
    print(f"\n{result.promise}: {result.figures()}")
    for note in result.notes:
        print(f"  note: {note}")
    assert result.passed, f"{result.promise} broken: {result.figures()}"
