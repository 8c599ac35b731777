"""Group cases (群体性): many people affected, or several distinct complainants about the
same grievance; not any three cases against one firm."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models.case import Case
from models.clock import VirtualClock
from models.enums import PartyKind, PartySide
from models.lifecycle import Actor
from models.triage import triage_case
from tests.factories import build_city, make_case

FIRM = "江心市恒达电子厂"


def _complaint(
    session: Session, *, who: str, phone: str, text: str, place: str = "BA1", people: int = 1
) -> Case:
    parties: list[dict[str, Any]] = [
        {"side": PartySide.COMPLAINANT, "kind": PartyKind.PERSON, "name": who, "phone": phone},
        {"side": PartySide.RESPONDENT, "kind": PartyKind.FIRM, "name": FIRM},
    ]
    case = make_case(
        session, description=text, parties=parties, place_code=place, people_affected=people
    )
    triage_case(session, case_id=case.id or 0, actor=Actor.system())
    return case


WAGES = "恒达电子厂拖欠我三个月工资，多次讨要未果。"


def test_one_resident_complaining_three_times_is_not_a_group(
    session: Session, vclock: VirtualClock
) -> None:
    build_city(session)
    cases = [_complaint(session, who="王小明", phone="13800138000", text=WAGES) for _ in range(3)]
    assert [c.is_group for c in cases] == [False, False, False]


def test_three_distinct_complainants_about_the_same_wages_are_a_group(
    session: Session, vclock: VirtualClock
) -> None:
    build_city(session)
    first = _complaint(session, who="王小明", phone="13800138000", text=WAGES)
    second = _complaint(session, who="李四", phone="13900139000", text=WAGES, place="BB1")
    third = _complaint(session, who="张三", phone="13700137000", text=WAGES, place="BB2")
    assert (first.is_group, second.is_group, third.is_group) == (False, False, True)
    # A group dispute is the community mediation committee's, not the grid worker's.
    assert third.unit_path == "/C/D1/S1/CMB/"


def test_unrelated_complaints_against_one_firm_in_other_communities_are_not(
    session: Session, vclock: VirtualClock
) -> None:
    build_city(session)
    _complaint(session, who="王小明", phone="13800138000", text=WAGES)
    _complaint(
        session,
        who="李四",
        phone="13900139000",
        text="恒达电子厂门口货车乱停，堵住消防通道。",
        place="BB1",
    )
    third = _complaint(
        session,
        who="张三",
        phone="13700137000",
        text="恒达电子厂的招牌灯太亮，晚上照进卧室。",
        place="BB2",
    )
    assert third.is_group is False


def test_many_people_affected_is_a_group(session: Session, vclock: VirtualClock) -> None:
    build_city(session)
    case = _complaint(session, who="王小明", phone="13800138000", text=WAGES, people=20)
    assert case.is_group is True
