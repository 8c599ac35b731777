"""Backlog work gives way to urgent work in the worker's process (tasks/give_way.py):
a batch run that is not urgent goes on with its next case only once the runs kept for
emergencies and fresh cases are done, or after ``relay_give_way_s`` at most."""

from __future__ import annotations

import threading
import time

import pytest

from models.settings import reset_settings
from tasks.give_way import give_way, urgent_in_flight, urgent_run


def _backlog_batch(order: list[str], started: threading.Event) -> None:
    """A batch of three cases, giving way between them as tasks/steps.py does."""
    for n in range(3):
        if n:
            give_way()
        order.append(f"backlog case {n}")
        started.set()


def test_a_backlog_batch_waits_between_its_cases_for_an_urgent_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIAOJIE_RELAY_GIVE_WAY_S", "60")  # long: only the run's end frees it
    reset_settings()
    order: list[str] = []
    started = threading.Event()
    with urgent_run():
        assert urgent_in_flight() == 1
        assert give_way() == 0.0  # the urgent run's own steps never wait
        batch = threading.Thread(target=_backlog_batch, args=(order, started))
        batch.start()
        assert started.wait(10)
        time.sleep(0.2)  # the batch is at its first pause now
        order.append("urgent run done")
    batch.join(10)
    assert order == ["backlog case 0", "urgent run done", "backlog case 1", "backlog case 2"]
    assert urgent_in_flight() == 0


def test_the_backlog_still_moves_while_urgent_work_never_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIAOJIE_RELAY_GIVE_WAY_S", "0.05")
    reset_settings()
    order: list[str] = []
    with urgent_run():
        batch = threading.Thread(target=_backlog_batch, args=(order, threading.Event()))
        batch.start()
        batch.join(10)  # each pause is bounded: the batch ends while the run goes on
        assert not batch.is_alive()
        assert order == ["backlog case 0", "backlog case 1", "backlog case 2"]


def test_without_urgent_work_nothing_waits() -> None:
    assert urgent_in_flight() == 0
    assert give_way() == 0.0
