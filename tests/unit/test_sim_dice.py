"""The simulator's dice (models.behaviour.Replay._chance): stratified, a street's decisions
of one kind fall one in each twentieth of [0, 1), so a simulated share is the chance
given to within a decision; not stratified, each case keeps its own independent die."""

from __future__ import annotations

import random

from sqlmodel import Session

from models import clock
from models.behaviour import STRATUM, BehaviourModel, Replay
from models.case import Case


def _chances(
    session: Session, *, stratified: bool, cases: int, what: str = "satisfied"
) -> list[float]:
    model = BehaviourModel(seed=7, stratified=stratified)
    replay = Replay(session, model, clock.VirtualClock(clock.now()))
    return [replay._chance(Case(id=i), what) for i in range(1, cases + 1)]


def test_stratified_shares_are_the_chance_to_within_a_decision(session: Session) -> None:
    numbers = _chances(session, stratified=True, cases=200)
    assert all(0 <= u < 1 for u in numbers)
    for start in range(0, 200, STRATUM):  # each block: one number in each twentieth
        block = numbers[start : start + STRATUM]
        assert sorted(int(u * STRATUM) for u in block) == list(range(STRATUM))
    for p in (0.5, 0.72, 0.85, 0.93):
        for n in (40, 137, 200):
            assert abs(sum(u < p for u in numbers[:n]) - p * n) <= 1, (p, n)
    # Independent luck strays by several decisions on the same 200.
    luck = _chances(session, stratified=False, cases=200)
    assert max(abs(sum(u < p for u in luck) - p * 200) for p in (0.5, 0.72, 0.85, 0.93)) > 2


def test_each_case_keeps_its_own_die_when_not_stratified(session: Session) -> None:
    numbers = _chances(session, stratified=False, cases=5)
    assert numbers == [random.Random(f"7:{i}:satisfied:0").random() for i in range(1, 6)]
    # Purposes are shuffled apart: two kinds of decision of the same cases do not move together.
    a = _chances(session, stratified=True, cases=200, what="success")
    b = _chances(session, stratified=True, cases=200, what="consent")
    assert sum((x < 0.5) == (y < 0.5) for x, y in zip(a, b, strict=True)) < 130
