"""The simulator's complaints (models.sim_complaints): each generated arrival brings its
own words and its own people, so that triage sees a district's variety rather than the
demo's 390 sample complaints over and over (which flagged three in four arrivals as
duplicates); the triage corpus those words come from is still the committed one."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from sqlmodel import Session, func, select

from models import triage
from models.case import Case
from models.cases import create_case
from models.demo import demo_complaints
from models.enums import Category, PartySide, Priority
from models.lifecycle import Actor
from models.scenario import parse_scenario
from models.sim_complaints import ClauseShares, ComplaintMaker
from models.simulate import Arrival, Period, generated_arrivals, sandbox, virtual_time
from models.triage_data.make_corpus import OUT, build
from tests.conftest import T0

BUSY_DAY = 'name = "busy"\n[arrivals]\nmode = "generate"\nper_working_day = 150\n'


def _arrivals(demo_city: Session, seed: int = 5) -> list[Arrival]:
    scenario = parse_scenario(BUSY_DAY, file="busy.toml")
    return generated_arrivals(demo_city, scenario, Period(T0, 2), seed)


def test_the_corpus_is_still_the_committed_one() -> None:
    rows = build()
    assert "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) == OUT.read_text(
        encoding="utf-8"
    )


def test_each_arrival_has_its_own_words_and_people(demo_city: Session) -> None:
    arrivals = [data for _at, data, _who, _by in _arrivals(demo_city)]
    assert len(arrivals) >= 150
    texts = Counter(d.description for d in arrivals)
    phones = Counter(
        p.phone for d in arrivals for p in d.parties if p.side == PartySide.COMPLAINANT
    )
    assert texts.most_common(1)[0][1] <= 2
    assert phones.most_common(1)[0][1] == 1
    samples = {p.phone for d in demo_complaints() for p in d.parties if p.phone}
    assert not samples & set(phones)


def test_same_seed_same_complaints_another_seed_others(demo_city: Session) -> None:
    first, again, other = _arrivals(demo_city, 5), _arrivals(demo_city, 5), _arrivals(demo_city, 6)
    assert first == again
    assert [a[1] for a in first] != [a[1] for a in other]


def test_clauses_come_as_often_as_asked() -> None:
    shares = ClauseShares(danger=0.05, unrest=0.10, consultation=0.20)
    rng = random.Random(1)
    drawn = Counter(shares.draw(rng) for _ in range(20_000))
    assert drawn["danger"] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert drawn["unrest"] / 20_000 == pytest.approx(0.10, abs=0.01)
    assert drawn["consultation"] / 20_000 == pytest.approx(0.20, abs=0.01)


def test_a_busy_day_is_not_read_as_one_complaint_over_and_over(demo_city: Session) -> None:
    """Through triage as production runs it: a day of 150 generated complaints in the
    demo city finds few duplicates (the sample complaints handed out in turn: 75%)."""
    session = sandbox(demo_city)
    try:
        with virtual_time(T0) as vclock:
            for at, data, who, _by in _arrivals(demo_city)[:150]:
                vclock.set(at)
                case = create_case(session, data=data, actor=who, at=at)
                assert case.id is not None
                triage.triage_case(session, case_id=case.id, actor=Actor.system())
            session.flush()
        duplicates = session.exec(
            select(func.count()).where(Case.duplicate_of_id.is_not(None))  # type: ignore[union-attr]
        ).one()
        high = session.exec(
            select(func.count()).where(Case.priority.in_([Priority.HIGH, Priority.EMERGENCY]))  # type: ignore[attr-defined]
        ).one()
    finally:
        session.close()
    assert duplicates <= 5
    assert high <= 60  # of 150; the sample's own share is 16%


def test_organisations_by_category() -> None:
    maker = ComplaintMaker()
    where = ("光明花园", "3栋")

    def respondent(category: Category, minute: int = 0) -> str:
        at = T0.replace(minute=minute)
        data = maker.make(category, at=at, clause="none", place=None, where=where, people=1)
        return next(p.name for p in data.parties if p.side == PartySide.RESPONDENT)

    assert respondent(Category.PROPERTY) == "光明花园物业服务中心"
    assert respondent(Category.RELOCATION).endswith("（光明花园项目）")
    employers = {respondent(Category.LABOUR, minute) for minute in range(50)}
    assert len(employers) >= 40


def test_the_same_complaint_gets_the_same_words_whatever_the_seed() -> None:
    """A history made of generated complaints replays with the words it was triaged
    from; two scenarios see the same stand-ins for the same recorded complaint."""
    one, other = ComplaintMaker(), ComplaintMaker()
    args = {"at": T0, "clause": "unrest", "place": "D01-S01-C01", "where": None, "people": 1}
    assert one.make(Category.LABOUR, **args) == other.make(Category.LABOUR, **args)  # type: ignore[arg-type]
    later = {**args, "at": T0.replace(minute=1)}
    assert one.make(Category.LABOUR, **args) != one.make(Category.LABOUR, **later)  # type: ignore[arg-type]
