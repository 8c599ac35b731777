"""Helpers on a case (协办) and their tasks; see :mod:`models.helper` for who they are.

* :func:`add_helper`: the handler (or anyone who may act on the case) adds a person who
  can help: a Party-building instructor, a volunteer or an in-service Party member of
  the case's community, or staff of an agency paired with it (结对共建);
* :func:`record_helper_task`: the helper records a task done (a visit, a session, a
  legal talk), with a note; the handler may record it on the helper's behalf;
* :func:`workload`: what a person carries, as handler, liaison and helper.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from models import clock, lifecycle
from models.access import Actor
from models.case import Case
from models.enums import HelperRole, HelperTaskKind, StaffRole, UnitLevel
from models.errors import GuardFailed, PermissionDenied, ValidationError
from models.guards import required_masked_text
from models.helper import CaseHelper, HelperTask
from models.routing import path_codes
from models.rows import rows_of
from models.staff import Staff
from models.unit import Pairing, Unit

# People of the community who help but do not handle cases.
COMMUNITY_HELPER_ROLES = frozenset(
    {StaffRole.INSTRUCTOR, StaffRole.VOLUNTEER, StaffRole.PARTY_MEMBER}
)


def community_of(session: Session, case: Case) -> Unit | None:
    """The community (社区) of the case's place, handling unit or the unit it was
    referred from: whose people help on it, and whose committee received it."""
    codes: list[str] = []
    for unit_id in (case.place_unit_id, case.unit_id):
        unit = session.get(Unit, unit_id) if unit_id else None
        if unit is not None:
            codes += path_codes(unit.path)
    if case.referred_from_path:
        codes += path_codes(case.referred_from_path)
    if not codes:
        return None
    return session.exec(
        select(Unit).where(col(Unit.code).in_(codes), Unit.level == UnitLevel.COMMUNITY)
    ).first()


def may_help(session: Session, *, case: Case, staff: Staff) -> bool:
    """An instructor, volunteer or in-service Party member of the case's community, or
    anyone working in an agency paired with that community."""
    if not staff.active or staff.unit_id is None:
        return False
    community = community_of(session, case)
    if community is None:
        return False
    unit = session.get(Unit, staff.unit_id)
    if unit is None:
        return False
    if staff.role in COMMUNITY_HELPER_ROLES and unit.path.startswith(community.path):
        return True
    if unit.level != UnitLevel.AGENCY:
        return False
    paired = session.exec(
        select(Pairing.id).where(Pairing.community_id == community.id, Pairing.agency_id == unit.id)
    ).first()
    return paired is not None


def helpers_of(session: Session, *, case_id: int) -> list[CaseHelper]:
    return rows_of(session, CaseHelper, CaseHelper.case_id == case_id)


def tasks_of(session: Session, *, case_id: int) -> list[HelperTask]:
    return rows_of(session, HelperTask, HelperTask.case_id == case_id)


def add_helper(
    session: Session,
    *,
    case_id: int,
    staff_id: int,
    role: HelperRole,
    actor: Actor,
    expected_version: int | None,
) -> CaseHelper:
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_staff(actor, "adding a helper", "增加协办人员")
    staff = session.get(Staff, staff_id)
    if staff is None or not may_help(session, case=case, staff=staff):
        raise ValidationError(
            "staff_id: not an instructor, volunteer or Party member of this community, nor "
            "staff of an agency paired with it",
            "staff_id：该人员不是本社区的党建指导员、志愿者、在职党员，也不是结对部门人员",
        )
    assert case.id is not None and staff.id is not None
    existing = session.exec(
        select(CaseHelper).where(CaseHelper.case_id == case.id, CaseHelper.staff_id == staff.id)
    ).first()
    if existing is not None:
        raise GuardFailed(
            f"{staff.username} helps on this case already", f"{staff.display_name} 已是本案协办人员"
        )
    row = CaseHelper(
        case_id=case.id,
        staff_id=staff.id,
        role=role,
        added_by_id=actor.staff_id,
        added_at=clock.now(),
    )
    session.add(row)
    session.flush()
    case.helper_ids = [*case.helper_ids, staff.id]
    step.record(
        "helper_added",
        {
            "helper_id": row.id,
            "staff_id": staff.id,
            "staff_role": staff.role.value,
            "role": role.value,
            "role_zh": role.zh,
        },
    )
    return row


def record_helper_task(
    session: Session,
    *,
    case_id: int,
    kind: HelperTaskKind,
    note: str,
    actor: Actor,
    expected_version: int | None,
    helper_staff_id: int | None = None,
    done_at: datetime | None = None,
) -> HelperTask:
    """A helper's task done, with what came of it. The helper records it, or the case's
    handler on a named helper's behalf (``helper_staff_id``)."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    me = lifecycle.require_staff(actor, "recording a helper's task", "记录协办任务")
    who = helper_staff_id or me
    if who != me and me not in (case.assignee_id, case.liaison_id):
        raise PermissionDenied(
            "only the helper or the case's handler records a helper's task",
            "只有协办人员本人或案件承办人可以记录协办任务",
        )
    assert case.id is not None
    helper = session.exec(
        select(CaseHelper).where(CaseHelper.case_id == case.id, CaseHelper.staff_id == who)
    ).first()
    if helper is None or helper.id is None:
        raise GuardFailed("not a helper on this case", "该人员不是本案协办人员")
    text = required_masked_text(note, "note", "任务情况", limit=2000)
    now = clock.now()
    moment = clock.ensure_utc(done_at) if done_at else now
    if moment > now:
        raise ValidationError("done_at: must not be in the future", "done_at：不能晚于当前时间")
    row = HelperTask(
        case_id=case.id,
        helper_id=helper.id,
        staff_id=who,
        kind=kind,
        done_at=moment,
        note=text,
        recorded_by_id=me,
    )
    session.add(row)
    session.flush()
    step.record(
        "helper_task_recorded",
        {
            "task_id": row.id,
            "staff_id": who,
            "kind": kind.value,
            "kind_zh": kind.zh,
            "note": text,
        },
    )
    return row


@dataclass(frozen=True)
class Workload:
    """What one person carries: open cases handled, open cases as liaison, open cases
    helped, and helper tasks done (in a period, when given)."""

    staff_id: int
    handling: int
    liaison: int
    helping: int
    tasks_done: int


def workload(session: Session, *, staff_id: int, since: datetime | None = None) -> Workload:
    def count(statement: object) -> int:
        return int(session.exec(statement).one())  # type: ignore[call-overload]

    handling = count(select(func.count()).where(Case.assignee_id == staff_id, col(Case.is_open)))
    liaison = count(select(func.count()).where(Case.liaison_id == staff_id, col(Case.is_open)))
    helping = count(
        select(func.count())
        .select_from(CaseHelper)
        .join(Case, col(Case.id) == col(CaseHelper.case_id))
        .where(CaseHelper.staff_id == staff_id, col(Case.is_open))
    )
    tasks = select(func.count()).where(
        HelperTask.staff_id == staff_id, col(HelperTask.done_at).is_not(None)
    )
    if since is not None:
        tasks = tasks.where(col(HelperTask.done_at) >= clock.ensure_utc(since))
    return Workload(staff_id, handling, liaison, helping, count(tasks))
