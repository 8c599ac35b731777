"""Moving a case between people and units by hand: to the community's mediation
committee, and back up to the unit that routed it (退单).

* :func:`hand_to_committee`: the grid or community worker who made first contact finds
  the case needs mediation; a mediator of the community's mediation committee takes it
  and the worker stays on the case as liaison (联络人);
* :func:`send_back_assignment`: the assignee (or a worker of the handling unit) says the
  case was routed to the wrong place; it goes back up to the unit that routed it (the
  next unit above with somebody able to take it), where a person routes it again.
"""

from __future__ import annotations

from sqlmodel import Session

from models import lifecycle
from models.access import Actor
from models.case import Case
from models.enums import CaseStatus, StaffRole, UnitLevel
from models.errors import GuardFailed
from models.guards import required_masked_text
from models.routing import Directory
from models.staff import Staff
from models.staffing import pick_assignee
from models.unit import Unit

S = CaseStatus
FIRST_CONTACT_ROLES = frozenset({StaffRole.GRID_WORKER, StaffRole.COMMUNITY_WORKER})


def _directory(session: Session, case: Case) -> tuple[Directory, Unit]:
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    if unit is None:
        raise GuardFailed(
            f"case {case.number} has no handling unit", f"案件 {case.number} 尚无承办单位"
        )
    directory = Directory.load_branch(session, unit)
    return directory, unit


def hand_to_committee(
    session: Session, *, case_id: int, actor: Actor, expected_version: int | None
) -> Case:
    """Give an assigned case to a mediator of its community's mediation committee; the
    worker who had it stays as liaison."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    if case.status != S.ASSIGNED:
        raise GuardFailed(
            f"only an assigned case goes to the mediation committee, not one that is "
            f"{case.status.value}",
            f"案件当前状态为「{case.status.zh}」，不能转调委会。",
        )
    current = session.get(Staff, case.assignee_id) if case.assignee_id else None
    if current is not None and current.role == StaffRole.MEDIATOR:
        raise GuardFailed("a mediator has the case already", "案件已由人民调解员承办")
    directory, unit = _directory(session, case)
    place = session.get(Unit, case.place_unit_id) if case.place_unit_id else None
    community = directory.ancestor_at(unit, UnitLevel.COMMUNITY)
    if community is None and place is not None:
        directory.extend_branch(session, place)
        community = directory.ancestor_at(place, UnitLevel.COMMUNITY)
    if community is None:
        raise GuardFailed(
            "the case is not in a community; a mediator above can be named by hand",
            "案件不在社区层级，请由上级指定调解员",
        )
    mediator = pick_assignee(session, unit=community, category=case.category, mediators_only=True)
    if mediator is None:
        raise GuardFailed(
            f"nobody of {community.code}'s mediation committee is available",
            f"{community.name_zh}人民调解委员会暂无可承办的调解员",
        )
    liaison = case.liaison_id
    if current is not None and current.role in FIRST_CONTACT_ROLES:
        liaison = current.id
    case.set_handling_unit(community)
    case.assignee_id = mediator.id
    case.liaison_id = liaison
    step.record(
        "handed_to_committee",
        {
            "assignee_id": mediator.id,
            "unit": community.code,
            "unit_name": community.name_zh,
            "liaison_id": liaison,
        },
    )
    return case


def send_back_assignment(
    session: Session, *, case_id: int, reason: str, actor: Actor, expected_version: int | None
) -> Case:
    """Send a wrongly routed case back up (退单): to the next unit above the handling unit
    with somebody able to take it, where a person routes it again (by hand)."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    text = required_masked_text(reason, "reason", "退单理由")
    if case.status != S.ASSIGNED:
        raise GuardFailed(
            f"only an assigned case is sent back, not one that is {case.status.value}",
            f"案件当前状态为「{case.status.zh}」，不能退单。",
        )
    directory, unit = _directory(session, case)
    above = directory.next_handling_unit_above(unit, case.category)
    if above is None:
        raise GuardFailed(
            f"{unit.code} is the top: route the case by hand",
            f"{unit.name_zh}已是最高一级，请直接改派",
        )
    previous = case.assignee_id
    case.set_handling_unit(above)
    case.assignee_id = None
    step.record(
        "assignment_returned",
        {
            "reason": text,
            "from_unit": unit.code,
            "to_unit": above.code,
            "to_unit_name": above.name_zh,
            "previous_assignee_id": previous,
        },
    )
    return case
