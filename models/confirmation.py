"""Judicial confirmation of a mediation agreement (司法确认, 人民调解法 第三十三条).

Within 30 days of the agreement taking effect the parties may jointly ask the court to
confirm it; a confirmed agreement can be enforced. The window is counted in calendar
days: day 1 is the day after the agreement took effect, day 30 its last day
(``court_confirmation_deadline``). The mediator is reminded on day 20 and day 28 (at
the opening of the day, Asia/Shanghai) unless the parties have applied by then; each
reminder is sent once: its time is stamped on the agreement in the same transaction
as the timeline event, and the sweep re-reads the row before it writes.

The outcome is recorded as it happens: applied (with the date and the court), then
confirmed or refused (with the court's reference, 案号).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from models import clock, lifecycle, workdays
from models.case import Case
from models.enums import ConfirmationStatus
from models.errors import ConflictError
from models.follow_ups import current_agreement
from models.guards import invalid
from models.lifecycle import Actor
from models.mediation import Agreement

C = ConfirmationStatus
REMINDER_DAYS = (20, 28)
WINDOW_DAYS = 30


def effective_on(agreement: Agreement) -> date:
    return agreement.effective_on or workdays.local_date(agreement.signed_at)


def window_day(agreement: Agreement, day: int) -> date:
    """The calendar date of day ``day`` of the window (day 30 is the deadline)."""
    return effective_on(agreement) + timedelta(days=day)


def reminder_time(agreement: Agreement, day: int) -> datetime:
    return workdays.at_local(window_day(agreement, day), workdays.OPEN)


def _stamp_field(day: int) -> str:
    return f"reminded_day{day}_at"


@dataclass(frozen=True)
class DueReminder:
    agreement_id: int
    case_id: int
    day: int


def due_reminders(session: Session, *, now: datetime, limit: int = 1000) -> list[DueReminder]:
    """Reminders whose moment has passed and that were not sent, for agreements the
    parties have not taken to court yet, oldest window first."""
    now = clock.ensure_utc(now)
    today = workdays.local_date(now)
    # Day 20 of an agreement that took effect on E is E + 20: E <= today - 20.
    earliest = today - timedelta(days=min(REMINDER_DAYS))
    rows = session.exec(
        select(Agreement)
        .where(
            Agreement.confirmation_status == C.NOT_APPLIED,
            col(Agreement.effective_on) <= earliest,
            col(Agreement.court_confirmation_deadline) >= today - timedelta(days=WINDOW_DAYS),
            or_(
                col(Agreement.reminded_day20_at).is_(None),
                col(Agreement.reminded_day28_at).is_(None),
            ),
        )
        .order_by(col(Agreement.effective_on), col(Agreement.id))
        .limit(limit)
    ).all()
    due: list[DueReminder] = []
    for row in rows:
        assert row.id is not None
        for day in REMINDER_DAYS:
            sent = getattr(row, _stamp_field(day)) is not None
            if not sent and reminder_time(row, day) <= now:
                due.append(DueReminder(row.id, row.case_id, day))
    return due


def send_reminder(
    session: Session, *, agreement_id: int, day: int, now: datetime, actor: Actor
) -> bool:
    """Remind the mediators on ``day`` of the window; False when already sent or no
    longer needed (the parties applied). Idempotent."""
    if day not in REMINDER_DAYS:
        raise ValueError(f"reminders are on days {REMINDER_DAYS}")
    row = session.get(Agreement, agreement_id, populate_existing=True)
    if row is None:
        return False
    field = _stamp_field(day)
    now = clock.ensure_utc(now)
    if getattr(row, field) is not None or row.confirmation_status != C.NOT_APPLIED:
        return False
    if reminder_time(row, day) > now:
        return False
    case = session.get(Case, row.case_id)
    assert case is not None
    setattr(row, field, now)
    session.add(row)
    lifecycle.step_on(session, case, actor, None).record(
        "court_confirmation_reminded",
        {
            "agreement_id": agreement_id,
            "day": day,
            "deadline": row.court_confirmation_deadline.isoformat(),
            "mediator_ids": list(row.mediator_ids),
        },
        at=now,
    )
    return True


def record_outcome(
    session: Session,
    *,
    case: Case,
    status: ConfirmationStatus,
    on: date,
    court_name: str,
    court_reference: str,
    actor: Actor,
    expected_version: int | None,
) -> Agreement:
    """Record the parties' application to the court, or the court's decision."""
    step = lifecycle.step_on(session, case, actor, expected_version)
    lifecycle.require_staff(actor, "recording the court confirmation", "记录司法确认")
    assert case.id is not None
    row = current_agreement(session, case=case)
    if row is None:
        raise ConflictError(
            f"case {case.number} has no agreement to confirm", f"案件 {case.number} 尚无调解协议"
        )
    _check_outcome(row, status, on, court_name.strip(), court_reference.strip())
    row.confirmation_status = status
    row.court_name = court_name.strip() or row.court_name
    row.court_reference = court_reference.strip() or row.court_reference
    if status == C.APPLIED:
        row.confirmation_applied_on = on
    else:
        row.confirmation_applied_on = row.confirmation_applied_on or on
        row.confirmation_decided_on = on
    row.court_confirmed = status == C.CONFIRMED
    session.add(row)
    step.record(
        "court_confirmation_recorded",
        {
            "agreement_id": row.id,
            "status": status.value,
            "on": on.isoformat(),
            "court_reference": row.court_reference or None,
        },
    )
    return row


def _check_outcome(
    row: Agreement, status: ConfirmationStatus, on: date, court: str, reference: str
) -> None:
    if status == C.NOT_APPLIED:
        raise invalid("status", "applied, confirmed or refused", "应为已申请、已确认或不予确认")
    if on < effective_on(row) or on > workdays.local_date(clock.now()):
        raise invalid("on", "between the agreement and today", "应在协议生效日与今天之间")
    if status == C.APPLIED:
        if row.confirmation_status != C.NOT_APPLIED:
            raise ConflictError("already applied", "已申请司法确认")
        if on > row.court_confirmation_deadline:
            raise invalid(
                "on",
                f"the 30-day window closed on {row.court_confirmation_deadline.isoformat()}",
                f"申请期限已于 {row.court_confirmation_deadline.isoformat()} 届满",
            )
        if not court:
            raise invalid("court_name", "name the court applied to", "请填写受理法院")
        return
    if row.confirmation_status in (C.CONFIRMED, C.REFUSED):
        raise ConflictError("the court has already decided", "法院已作出裁定")
    if not reference:
        raise invalid("court_reference", "the court's reference (案号)", "请填写法院案号")
    if not court and not row.court_name:
        raise invalid("court_name", "name the court", "请填写法院")


def sweep_reminders(session: Session, *, now: datetime, actor: Actor) -> list[int]:
    """Send every due day-20 and day-28 reminder; the ids of the cases reminded."""
    reminded: list[int] = []
    for due in due_reminders(session, now=now):
        if send_reminder(session, agreement_id=due.agreement_id, day=due.day, now=now, actor=actor):
            reminded.append(due.case_id)
    return reminded
