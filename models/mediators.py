"""Mediators of a case (人民调解法 第十九条、第二十条): named, replaced, recused.

The committee names one to three mediators (人民调解员) for a case. A party may ask for
another mediator (replaced at a party's request); a mediator with a conflict of
interest declares it (回避) and is replaced. Each change is on the case's timeline.
Only mediators named and still serving record sessions and sign the agreement
(:func:`require_serving`).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel, col, select

from models import clock, lifecycle, pii, session_cache
from models.case import Case
from models.enums import CaseStatus, MediatorEnd, StaffRole
from models.errors import ConflictError, GuardFailed
from models.guards import invalid
from models.lifecycle import Actor
from models.staff import Staff
from models.types import UTCDateTime, enum_type
from models.unit import Unit

S = CaseStatus
MAX_MEDIATORS = 3
CHANGEABLE = lifecycle.MEDIATOR_CHANGEABLE


class CaseMediator(SQLModel, table=True):
    """One mediator's service on one case, from naming until replaced or recused."""

    __tablename__ = "case_mediator"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    named_at: datetime = Field(sa_type=UTCDateTime)
    named_by_id: int | None = Field(default=None, foreign_key="staff.id")
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: MediatorEnd | None = Field(default=None, sa_type=enum_type(MediatorEnd))
    end_note: str = Field(default="", max_length=500)


def mediators_of(session: Session, *, case_id: int, serving: bool = True) -> list[CaseMediator]:
    """The case's mediators in the order they were named (only those still serving, or
    all). Read once per unit of work (:mod:`models.session_cache`): who reads the case's
    personal data, the actions offered and the documents each ask, five reads of the same
    rows on one case page. A row changed since is seen as it is now (``ended_at``)."""
    # One entry for every case (not one per case): a session that keeps its reads across
    # commits (the policy simulator) would otherwise gather one per case it touches, and
    # each write makes the cache look through all of its entries.
    by_case: dict[int, list[CaseMediator]] = session_cache.cached(
        session, "mediators.of", (CaseMediator,), dict
    )
    rows = by_case.get(case_id)
    if rows is None:
        rows = by_case[case_id] = list(
            session.exec(
                select(CaseMediator)
                .where(CaseMediator.case_id == case_id)
                .order_by(col(CaseMediator.named_at), col(CaseMediator.id))
            ).all()
        )
    return [m for m in rows if m.ended_at is None] if serving else list(rows)


def serving_on(session: Session, *, staff_id: int, case_ids: list[int]) -> set[int]:
    """Which of ``case_ids`` name ``staff_id`` as a mediator still serving (one query)."""
    if not case_ids:
        return set()
    stmt = select(CaseMediator.case_id).where(
        CaseMediator.staff_id == staff_id,
        col(CaseMediator.case_id).in_(case_ids),
        col(CaseMediator.ended_at).is_(None),
    )
    return set(session.exec(stmt).all())


def serving_ids(session: Session, *, case_id: int) -> list[int]:
    return [m.staff_id for m in mediators_of(session, case_id=case_id)]


def require_serving(session: Session, *, case: Case, actor: Actor, what_zh: str) -> None:
    """Only a mediator named on the case and still serving may record or sign."""
    assert case.id is not None
    if actor.kind != "staff" or actor.staff_id not in serving_ids(session, case_id=case.id):
        raise GuardFailed(
            f"only a mediator named on case {case.number} (and not recused or replaced) "
            f"may do this",
            f"只有本案指定且未回避、未被更换的调解员才能{what_zh}。",
        )


def _begin(
    session: Session, case: Case, actor: Actor, expected_version: int | None
) -> lifecycle.Step:
    """A change of the case's mediators: by staff, while the case is still open to it."""
    step = lifecycle.step_on(session, case, actor, expected_version)
    lifecycle.require_staff(actor, "naming mediators", "指定调解员")
    if case.status not in CHANGEABLE:
        raise ConflictError(
            f"cannot change the mediators of a case that is {case.status.value}",
            f"案件当前状态为「{case.status.zh}」，不能指定或更换调解员。",
        )
    return step


def _eligible(session: Session, case: Case, staff_id: int, field: str) -> Staff:
    staff = session.get(Staff, staff_id)
    unit = session.get(Unit, staff.unit_id) if staff and staff.unit_id else None
    case_path = case.unit_path or ""
    if staff is None or not staff.active or staff.role != StaffRole.MEDIATOR or unit is None:
        raise invalid(field, f"staff {staff_id} is not an active mediator", "不是在职的人民调解员")
    # A mediator of the handling unit, of a unit inside it, or of a unit above it (a
    # street mediation centre helping a community committee).
    if case_path and not (unit.path.startswith(case_path) or case_path.startswith(unit.path)):
        raise invalid(field, f"{staff.username} is outside the case's unit", "不在本案办理单位")
    return staff


def name_mediators(
    session: Session,
    *,
    case: Case,
    staff_ids: list[int],
    actor: Actor,
    expected_version: int | None,
) -> list[CaseMediator]:
    """Name mediators (adding to those serving; one to three in all)."""
    step = _begin(session, case, actor, expected_version)
    assert case.id is not None
    wanted = list(dict.fromkeys(staff_ids))
    serving = serving_ids(session, case_id=case.id)
    if not wanted:
        raise invalid("staff_ids", "name at least one mediator", "请至少指定一名调解员")
    if any(s in serving for s in wanted):
        raise invalid("staff_ids", "already named on this case", "该调解员已在本案中")
    if len(serving) + len(wanted) > MAX_MEDIATORS:
        raise invalid(
            "staff_ids", f"at most {MAX_MEDIATORS} mediators a case", "每案调解员为一至三名"
        )
    rows = _add(session, case, wanted, actor)
    step.record("mediators_named", {"staff_ids": wanted})
    return rows


def _add(session: Session, case: Case, staff_ids: list[int], actor: Actor) -> list[CaseMediator]:
    assert case.id is not None
    now = clock.now()
    rows = []
    for i, staff_id in enumerate(staff_ids):
        _eligible(session, case, staff_id, f"staff_ids.{i}")
        row = CaseMediator(
            case_id=case.id, staff_id=staff_id, named_at=now, named_by_id=actor.staff_id
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def end_service(
    session: Session,
    *,
    case: Case,
    staff_id: int,
    why: MediatorEnd,
    note: str,
    replacement_id: int | None,
    actor: Actor,
    expected_version: int | None,
) -> CaseMediator:
    """A mediator leaves the case: recused (回避, a conflict of interest), or replaced at a
    party's request or by the committee; ``replacement_id`` is named in the same step.
    A case in mediation always keeps at least one mediator."""
    step = _begin(session, case, actor, expected_version)
    assert case.id is not None
    text = (note or "").strip()
    if not text or len(text) > 500:
        raise invalid("note", "say why (1 to 500 characters)", "请写明原因（500 字以内）")
    row = next((m for m in mediators_of(session, case_id=case.id) if m.staff_id == staff_id), None)
    if row is None:
        raise invalid("staff_id", f"staff {staff_id} is not serving on this case", "不是本案调解员")
    left = len(mediators_of(session, case_id=case.id)) - 1
    if replacement_id is None and left == 0 and case.status == S.IN_MEDIATION:
        raise invalid(
            "replacement_id",
            "a case in mediation needs a replacement mediator",
            "调解中的案件须同时指定接替的调解员",
        )
    if replacement_id is not None and replacement_id in serving_ids(session, case_id=case.id):
        raise invalid("replacement_id", "already named on this case", "该调解员已在本案中")
    row.ended_at = clock.now()
    row.end_reason = why
    row.end_note = text
    session.add(row)
    if replacement_id is not None:
        _add(session, case, [replacement_id], actor)
    verb = "mediator_recused" if why == MediatorEnd.RECUSED else "mediator_replaced"
    step.record(
        verb,
        {
            "staff_id": staff_id,
            "why": why.value,
            "replacement_id": replacement_id,
            "note": pii.scrub_text(text),
        },
    )
    return row
