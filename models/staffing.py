"""Who takes a case in a unit: the people able to handle its category, and among them
the one with the most room (skill, availability, then load relative to capacity)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from models import session_cache
from models.case import Case
from models.enums import Category, StaffRole
from models.staff import Staff
from models.unit import Unit

# Who takes cases: mediators, community workers and grid workers (docs/DOMAIN.md).
HANDLER_ROLES = frozenset({StaffRole.MEDIATOR, StaffRole.COMMUNITY_WORKER, StaffRole.GRID_WORKER})


def can_handle(staff: Staff, category: Category) -> bool:
    """Active, present, a case-handling role, room for work, and the skill (or none
    listed: a generalist)."""
    return (
        staff.active
        and not staff.away
        and staff.role in HANDLER_ROLES
        and staff.capacity > 0
        and (not staff.skills or category.value in staff.skills)
    )


def open_loads(session: Session, staff_ids: Sequence[int]) -> dict[int, int]:
    """Open cases assigned to each person."""
    if not staff_ids:
        return {}
    rows = session.exec(
        select(Case.assignee_id, func.count())
        .where(col(Case.assignee_id).in_(staff_ids), col(Case.is_open))
        .group_by(col(Case.assignee_id))
    ).all()
    return {int(sid): int(n) for sid, n in rows if sid is not None}


def choose(candidates: Sequence[Staff], loads: dict[int, int]) -> Staff | None:
    """Someone with room first, then the lowest load relative to capacity, then id."""

    def key(staff: Staff) -> tuple[int, float, int]:
        load = loads.get(staff.id or 0, 0)
        room = 0 if load < staff.capacity else 1
        return (room, load / max(staff.capacity, 1), staff.id or 0)

    return min(candidates, key=key, default=None)


def _present(session: Session, unit_id: int | None) -> list[Staff]:
    """The unit's active staff not away. Read once per unit of work
    (:mod:`models.session_cache`: forgotten on a write to staff and at the end of the
    transaction): a batch of assignments asked again for each case, one statement a
    case in the simulator."""
    # One entry for every unit, as models.mediators keeps one for every case: a session
    # keeping its reads across commits (the simulator) would gather one per unit.
    by_unit: dict[int | None, list[Staff]] = session_cache.cached(
        session, "staffing.present", (Staff,), dict
    )
    members = by_unit.get(unit_id)
    if members is None:
        members = by_unit[unit_id] = list(
            session.exec(
                select(Staff).where(
                    Staff.unit_id == unit_id, col(Staff.active), col(Staff.away).is_(False)
                )
            ).all()
        )
    return list(members)


def pick_assignee(
    session: Session, *, unit: Unit, category: Category, mediators_only: bool = False
) -> Staff | None:
    """The person in ``unit`` to take a ``category`` case: able (skill, active, present),
    lowest current load relative to capacity, ties broken by id; never someone over
    capacity while a colleague has room. ``mediators_only``: a member of the unit's
    mediation committee (a mediator without the skill rather than nobody)."""
    staff = _present(session, unit.id)
    if mediators_only:
        mediators = [s for s in staff if s.role == StaffRole.MEDIATOR and s.capacity > 0]
        skilled = [s for s in mediators if can_handle(s, category)]
        staff = skilled or mediators
    candidates = [s for s in staff if can_handle(s, category) or mediators_only]
    loads = open_loads(session, [s.id for s in candidates if s.id is not None])
    return choose(candidates, loads)
