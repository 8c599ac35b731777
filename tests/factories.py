"""Test data builders. A small city: 1 district, 1 street, 2 communities (A and B),
a compound and two buildings each, a labour agency paired with community A, staff in
every unit, and the time limits of docs/DOMAIN.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.case import Case, CaseCreate
from models.cases import create_case
from models.enums import Category, PartyKind, PartySide, Priority, StaffRole, UnitLevel
from models.lifecycle import Actor
from models.policy import LimitUnit, TimeLimitPolicy
from models.staff import Staff
from models.unit import Pairing, Unit

# Valid test identities (check digits correct); never real people.
PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"
NAME = "王小明"


@dataclass
class City:
    units: dict[str, Unit] = field(default_factory=dict)
    staff: dict[str, Staff] = field(default_factory=dict)

    def unit(self, code: str) -> Unit:
        return self.units[code]


def add_unit(
    session: Session, city: City, code: str, level: UnitLevel, parent: str | None, name_zh: str
) -> Unit:
    parent_unit = city.units.get(parent) if parent else None
    path = (parent_unit.path if parent_unit else "/") + code + "/"
    unit = Unit(
        code=code,
        name_zh=name_zh,
        name_en=code,
        level=level,
        parent_id=parent_unit.id if parent_unit else None,
        path=path,
    )
    session.add(unit)
    session.flush()
    city.units[code] = unit
    return unit


def add_staff(
    session: Session,
    city: City,
    username: str,
    role: StaffRole,
    unit: str,
    skills: list[Category] | None = None,
    capacity: int = 10,
) -> Staff:
    staff = Staff(
        username=username,
        display_name=username,
        role=role,
        unit_id=city.units[unit].id,
        skills=[s.value for s in (skills or [])],
        capacity=capacity,
    )
    session.add(staff)
    session.flush()
    city.staff[username] = staff
    return staff


def build_city(session: Session) -> City:
    city = City()
    add_unit(session, city, "C", UnitLevel.CITY, None, "江心市")
    add_unit(session, city, "D1", UnitLevel.DISTRICT, "C", "东湖区")
    add_unit(session, city, "S1", UnitLevel.STREET, "D1", "柳河街道")
    for tag, name in (("A", "桂花社区"), ("B", "竹园社区")):
        add_unit(session, city, f"CM{tag}", UnitLevel.COMMUNITY, "S1", name)
        add_unit(session, city, f"CP{tag}", UnitLevel.COMPOUND, f"CM{tag}", name + "一小区")
        for n in (1, 2):
            add_unit(session, city, f"B{tag}{n}", UnitLevel.BUILDING, f"CP{tag}", f"{n}号楼")
        add_staff(session, city, f"worker{tag}", StaffRole.COMMUNITY_WORKER, f"CM{tag}")
        add_staff(session, city, f"mediator{tag}", StaffRole.MEDIATOR, f"CM{tag}", list(Category))
        add_staff(session, city, f"grid{tag}", StaffRole.GRID_WORKER, f"CP{tag}", list(Category))
    add_unit(session, city, "AG-LAB", UnitLevel.AGENCY, "D1", "区人社局")
    session.add(
        Pairing(
            community_id=city.units["CMA"].id,
            agency_id=city.units["AG-LAB"].id,
            category=Category.LABOUR,
        )
    )
    add_staff(session, city, "street_mediator", StaffRole.MEDIATOR, "S1", list(Category))
    add_staff(session, city, "district_mediator", StaffRole.MEDIATOR, "D1", list(Category))
    add_staff(session, city, "supervisor", StaffRole.SUPERVISOR, "D1")
    add_staff(session, city, "admin", StaffRole.ADMIN, "C")
    for policy in default_policies():
        session.add(policy)
    session.flush()
    return city


def default_policies() -> list[TimeLimitPolicy]:
    return [
        TimeLimitPolicy(name="complaint", response_value=1, resolution_value=13),
        TimeLimitPolicy(
            name="emergency",
            priority=Priority.EMERGENCY,
            response_unit=LimitUnit.WORKING_HOURS,
            response_value=2,
            resolution_unit=LimitUnit.SAME_DAY,
            resolution_value=0,
        ),
        TimeLimitPolicy(
            name="consultation",
            priority=Priority.CONSULTATION,
            response_value=1,
            resolution_value=3,
        ),
        TimeLimitPolicy(
            name="building", level=UnitLevel.BUILDING, response_value=1, resolution_value=3
        ),
        TimeLimitPolicy(
            name="compound", level=UnitLevel.COMPOUND, response_value=1, resolution_value=5
        ),
    ]


def case_data(**overrides: Any) -> CaseCreate:
    data: dict[str, Any] = {
        "category": Category.LABOUR,
        "description": "电子厂拖欠二十名工人三个月工资，工人多次讨要未果。",
        "place_code": "BA1",
        "people_affected": 20,
        "parties": [
            {
                "side": PartySide.COMPLAINANT,
                "kind": PartyKind.PERSON,
                "name": NAME,
                "phone": PHONE,
                "id_number": ID_NUMBER,
            },
            {"side": PartySide.RESPONDENT, "kind": PartyKind.FIRM, "name": "江心市恒达电子厂"},
        ],
        # A starting category for the factory, not a person's choice: triage may change it.
        "category_locked": False,
        "priority_locked": False,
    }
    data.update(overrides)
    return CaseCreate.model_validate(data)


def make_case(session: Session, *, at: datetime | None = None, **overrides: Any) -> Case:
    return create_case(session, data=case_data(**overrides), actor=Actor.system(), at=at)


def staff_actor(city: City, username: str) -> Actor:
    staff = city.staff[username]
    unit = next(u for u in city.units.values() if u.id == staff.unit_id)
    return Actor(kind="staff", staff_id=staff.id, role=staff.role, unit_path=unit.path)


def advance_to_assigned(
    session: Session, case: Case, city: City, *, unit: str = "CMA", assignee: str = "mediatorA"
) -> Case:
    """Triage and assign a case by hand (what the routing flow does), with its time
    limits computed from the policies at the unit's level."""
    from models import lifecycle
    from models.deadlines import compute_deadlines, find_policy

    handling = city.units[unit]
    policy = find_policy(
        session, category=case.category, priority=case.priority, level=handling.level
    )
    limits = compute_deadlines(policy, start=case.created_at)
    case.unit_id = handling.id
    case.unit_path = handling.path
    case.response_due_at = limits.response_due_at
    case.resolution_due_at = limits.resolution_due_at
    case.next_reminder_at = limits.next_reminder_at
    lifecycle.apply(session, case=case, verb="triaged", actor=Actor.system())
    case.assignee_id = city.staff[assignee].id
    lifecycle.apply(session, case=case, verb="assigned", actor=Actor.system())
    session.flush()
    return case


def accept_for_mediation(
    session: Session, case: Case, city: City, *, mediator: str = "mediatorA"
) -> Case:
    """The committee's steps before consent: accept the dispute (受理审查) and name the
    mediator (who decides both here)."""
    from models.acceptance import review_acceptance
    from models.mediators import name_mediators

    actor = staff_actor(city, mediator)
    assert case.id is not None
    review_acceptance(
        session,
        case_id=case.id,
        accepted=True,
        reason=None,
        route=None,
        note="",
        actor=actor,
        expected_version=case.version,
    )
    name_mediators(
        session,
        case=case,
        staff_ids=[city.staff[mediator].id or 0],
        actor=actor,
        expected_version=case.version,
    )
    return case


def visit_answers(rating: int | None) -> dict[str, Any]:
    """The resident's answers at a return visit for a 1-5 rating (none: unreachable):
    5 resolved and satisfied, 3-4 basically, 1-2 not."""
    from models.enums import ResolvedAnswer, SatisfiedAnswer

    if rating is None:
        return {}
    if rating >= 5:
        return {"resolved": ResolvedAnswer.RESOLVED, "satisfied": SatisfiedAnswer.SATISFIED}
    if rating >= 3:
        return {"resolved": ResolvedAnswer.BASICALLY, "satisfied": SatisfiedAnswer.BASICALLY}
    return {"resolved": ResolvedAnswer.UNRESOLVED, "satisfied": SatisfiedAnswer.DISSATISFIED}
