"""Complaints for the simulator's arrivals (模拟诉求): new words and new people for each.

A district's year is tens of thousands of complaints; the demo city has 390 sample texts
with their people. Handed out in turn, they made triage meet the same words from the same
phones against the same firms over and over: in a five-day sample of 988 generated
arrivals, 753 were flagged as duplicates, 392 became group cases and 411 high priority
(the sample complaints themselves: 48 high of 390), and only 227 texts were distinct.
What the simulation then measured was triage's reaction to repetition, not a district.

So each arrival here gets:

* **words** composed from the triage corpus's fragments (``models.triage_data``: a
  situation of its category said in one of the registers residents, grid workers and
  hotline operators use, with the noise of real messages), with a danger, unrest or
  consultation clause as often as the history has emergency, high and consultation
  cases; triage reads them as it reads anyone's;
* **a complainant** who exists only in this simulation (a made-up name, a mobile number
  of a valid form, an address in the arrival's compound), so one person's repeated
  complaints are as rare as chance makes them;
* **a respondent** of the kind its category has: employers and the sources of pollution
  are drawn from a large pool of made-up firms and shops; a district's few property
  managers and relocation offices are the sample complaints' own (many complaints
  against one of them are what a district really sees); neighbours, relatives and
  landlords are made-up people.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from models import clock
from models.case import Case, CaseCreate
from models.demo import demo_complaints, sample_person
from models.enums import Category, PartyKind, PartySide, Priority
from models.sim_fit import FIT_MIN_CASES
from models.triage_data.fragments import SLOTS
from models.triage_data.make_corpus import PRIORITY_OF_CLAUSE, Clause, compose_text, expand

__all__ = ["ClauseShares", "ComplaintMaker", "clause_shares"]

# Categories whose respondents are one of many employers or sources of nuisance; the rest
# keep the sample complaints' organisations or get a made-up person.
_MANY_FIRMS = frozenset({Category.LABOUR, Category.ENVIRONMENT})
# The words each recorded priority was triaged from (the corpus's own correspondence).
_CLAUSE_OF: dict[Priority, Clause] = {
    Priority.NORMAL: "none",
    **{Priority(p): clause for clause, p in PRIORITY_OF_CLAUSE.items()},
}


@dataclass(frozen=True)
class ClauseShares:
    """How often a complaint says someone is in danger now, that people will gather, or
    only asks a question (the history's emergency, high and consultation shares)."""

    danger: float = 0.03
    unrest: float = 0.12
    consultation: float = 0.05

    def draw(self, rng: random.Random) -> Clause:
        roll = rng.random()
        if roll < self.danger:
            return "danger"
        if roll < self.danger + self.unrest:
            return "unrest"
        if roll < self.danger + self.unrest + self.consultation:
            return "consultation"
        return "none"


def clause_shares(live: Session, min_cases: int = FIT_MIN_CASES) -> ClauseShares:
    """The history's priority shares; the defaults (the sample complaints' own) when it
    has fewer than ``min_cases`` cases."""
    rows = live.exec(select(Case.priority, func.count()).group_by(col(Case.priority))).all()
    counts: Mapping[Priority, int] = {Priority(p): int(n) for p, n in rows}
    total = sum(counts.values())
    if total < min_cases:
        return ClauseShares()
    return ClauseShares(
        danger=counts.get(Priority.EMERGENCY, 0) / total,
        unrest=counts.get(Priority.HIGH, 0) / total,
        consultation=counts.get(Priority.CONSULTATION, 0) / total,
    )


class ComplaintMaker:
    """Makes one arrival's complaint from what is known of it (moment, place, category,
    clause) and nothing else: the same complaint gets the same words and people whatever
    the seed, the order or the scenario, so that scenarios side by side differ by their
    policies and not by the luck of the stand-ins, and a history made of generated
    complaints replays with the words it was triaged from."""

    def __init__(self) -> None:
        self._samples: dict[Category, list[CaseCreate]] = {}
        for data in demo_complaints():
            self._samples.setdefault(data.category, []).append(data)

    def make(
        self,
        category: Category,
        *,
        at: datetime,
        clause: Clause,
        place: str | None,
        where: tuple[str, str] | None,
        people: int,
        **fields: Any,
    ) -> CaseCreate:
        """``where``: the place's compound and building as residents name them."""
        rng = random.Random(f"{clock.ensure_utc(at).isoformat()}|{place}|{category.value}|{clause}")
        sample = rng.choice(self._samples.get(category) or self._samples[Category.NEIGHBOUR])
        compound, building = where or ("", "")
        address = compound + (building if building != compound else "")
        data: dict[str, Any] = {
            "category": category,
            "category_locked": True,
            "priority_locked": False,
            "channel": sample.channel,
            "description": compose_text(category.value, rng, clause),
            "address_text": address or None,
            "place_code": place,
            "people_affected": max(1, people),
            "parties": [
                self._complainant(rng, sample, address),
                self._respondent(rng, sample, category, compound),
            ],
        }
        data.update(fields)
        return CaseCreate.model_validate(data)

    @staticmethod
    def clause_for(priority: Priority) -> Clause:
        """The words a recorded priority was triaged from (replayed arrivals)."""
        return _CLAUSE_OF[priority]

    @staticmethod
    def _complainant(rng: random.Random, sample: CaseCreate, address: str) -> dict[str, Any]:
        kind = next(
            (p.kind for p in sample.parties if p.side == PartySide.COMPLAINANT), PartyKind.PERSON
        )
        name, phone = sample_person(rng)
        room = f"{rng.randint(1, 18)}0{rng.randint(1, 4)}室"
        return {
            "side": PartySide.COMPLAINANT,
            "kind": kind,
            "name": name,
            "phone": phone,
            "address": f"{address}{room}"[:200] if address else None,
        }

    @staticmethod
    def _respondent(
        rng: random.Random, sample: CaseCreate, category: Category, compound: str
    ) -> dict[str, Any]:
        theirs = next((p for p in sample.parties if p.side == PartySide.RESPONDENT), None)
        kind = theirs.kind if theirs is not None else PartyKind.PERSON
        if theirs is None or kind == PartyKind.PERSON:
            name, phone = sample_person(rng)
            return {"side": PartySide.RESPONDENT, "kind": kind, "name": name, "phone": phone}
        return {
            "side": PartySide.RESPONDENT,
            "kind": kind,
            "name": _organisation(rng, category, theirs.name, compound),
        }


def _organisation(rng: random.Random, category: Category, sample: str, compound: str) -> str:
    """Employers and polluters are many; a compound has its property manager; a
    relocation office answers for each project (compound) apart."""
    if category in _MANY_FIRMS:
        return _firm(rng, category)
    if not compound:
        return sample
    if category == Category.PROPERTY:
        return f"{compound}物业服务中心"
    if category == Category.RELOCATION:
        return f"{sample.split('（')[0]}（{compound}项目）"
    return sample


def _firm(rng: random.Random, category: Category) -> str:
    if category == Category.ENVIRONMENT and rng.random() < 0.5:
        owner, _ = sample_person(rng)
        return f"{owner[0]}记{rng.choice(SLOTS['SHOP'])}"
    return expand(SLOTS["ORG"][0], rng, "")
