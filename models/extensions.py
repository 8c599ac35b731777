"""Extensions of the handling limit (延期): the handler asks before the deadline, a
supervisor of the handling unit (or above) grants or refuses; both are on the timeline.

The mediation limit has its own extension, by the parties' agreement
(:func:`models.mediating.extend_mediation`); this one is the unit's time limit.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from models import clock, lifecycle, workdays
from models.case import Case
from models.enums import ExtensionState, StaffRole
from models.errors import GuardFailed, PermissionDenied, ValidationError
from models.extension import Extension
from models.guards import masked_text, required_masked_text
from models.lifecycle import HANDLING, Actor
from models.rows import rows_of
from models.staff import Staff
from models.unit import Unit

# Longest an extension may add to the limit: the longest complaint limit (15 working days).
MAX_EXTRA_WORKING_DAYS = 15
DECIDERS = frozenset({StaffRole.SUPERVISOR, StaffRole.ADMIN})


def extensions_of(session: Session, *, case_id: int) -> list[Extension]:
    return rows_of(session, Extension, Extension.case_id == case_id, Extension.requested_at)


def pending_extension(session: Session, *, case_id: int) -> Extension | None:
    return session.exec(
        select(Extension).where(
            Extension.case_id == case_id, Extension.state == ExtensionState.REQUESTED
        )
    ).first()


def request_extension(
    session: Session,
    *,
    case_id: int,
    until: datetime,
    reason: str,
    actor: Actor,
    expected_version: int | None,
) -> Extension:
    """The handler asks for more time, before the limit has passed."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_staff(actor, "asking for an extension", "申请延期")
    if case.status not in HANDLING or case.resolution_due_at is None:
        raise GuardFailed(
            f"a case that is {case.status.value} has no handling limit to extend",
            f"案件当前状态为「{case.status.zh}」，没有可延长的办理时限。",
        )
    now = clock.now()
    due = clock.ensure_utc(case.resolution_due_at)
    if now >= due:
        raise GuardFailed(
            "an extension must be asked for before the deadline",
            f"延期须在办理时限（{clock.format_local(due)}）届满前申请。",
        )
    if pending_extension(session, case_id=case_id) is not None:
        raise GuardFailed("an extension is already waiting for a decision", "已有延期申请待审批")
    text = required_masked_text(reason, "reason", "延期理由")
    moment = clock.ensure_utc(until)
    latest = workdays.add_working_days(due, MAX_EXTRA_WORKING_DAYS)
    if moment <= due or moment > latest:
        raise ValidationError(
            f"until: after the current deadline and at most {MAX_EXTRA_WORKING_DAYS} working "
            f"days later ({clock.format_local(latest)})",
            f"until：须晚于当前时限，且不超过 {MAX_EXTRA_WORKING_DAYS} 个工作日"
            f"（{clock.format_local(latest)}）",
        )
    row = Extension(
        case_id=case_id,
        requested_by_id=actor.staff_id,
        requested_at=now,
        old_due_at=due,
        until=moment,
        reason=text or "",
        state=ExtensionState.REQUESTED,
    )
    session.add(row)
    session.flush()
    case.extension_asked_until = moment
    step.record(
        "extension_requested",
        {
            "extension_id": row.id,
            "until": moment.isoformat(),
            "deadline": due.isoformat(),
            "reason": text,
        },
    )
    return row


def _decider(session: Session, case: Case, actor: Actor) -> Staff:
    staff = session.get(Staff, actor.staff_id) if actor.staff_id else None
    unit = session.get(Unit, staff.unit_id) if staff and staff.unit_id else None
    if (
        actor.kind != "staff"
        or staff is None
        or staff.role not in DECIDERS
        or unit is None
        or not (case.unit_path or "").startswith(unit.path)
    ):
        raise PermissionDenied(
            "only a supervisor over the handling unit decides an extension",
            "只有承办单位的上级督办人员可以审批延期",
        )
    return staff


def decide_extension(
    session: Session,
    *,
    case_id: int,
    grant: bool,
    note: str | None,
    actor: Actor,
    expected_version: int | None,
) -> Extension:
    """A supervisor grants (the limit moves to the date asked, a new reminder before it)
    or refuses (the limit stays; a note says why)."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    row = pending_extension(session, case_id=case_id)
    if row is None:
        raise GuardFailed("no extension is waiting for a decision", "没有待审批的延期申请")
    staff = _decider(session, case, actor)
    # A refusal says why; a grant may.
    text = masked_text(note) if grant else required_masked_text(note, "note", "不批准的理由")
    now = clock.now()
    row.state = ExtensionState.GRANTED if grant else ExtensionState.REFUSED
    row.decided_by_id = staff.id
    row.decided_at = now
    row.decision_note = text
    session.add(row)
    case.extension_asked_until = None
    if grant and case.status in HANDLING:
        until = clock.ensure_utc(row.until)
        case.resolution_due_at = until
        case.next_reminder_at = max(now, workdays.reminder_time(until))
        if case.next_reminder_at >= until:
            case.next_reminder_at = now + (until - now) / 2 if until > now else now
        case.reminded_level = None  # the new limit gets its own reminder
    step.record(
        "extension_decided",
        {
            "extension_id": row.id,
            "decision": row.state.value,
            "decision_zh": row.state.zh,
            "until": clock.ensure_utc(row.until).isoformat(),
            "note": text,
        },
    )
    return row


__all__ = [
    "decide_extension",
    "extensions_of",
    "pending_extension",
    "request_extension",
]
