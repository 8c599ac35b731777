"""First contact (首次联系): a person of the handling unit reached the complainant.

The response rate (响应率) counts a case as answered in time when its first contact came
no later than its response limit. An automatic assignment is not a contact: only a
person who talked to the complainant (phone call, home visit, in person, a message)
makes one, either by recording it (``record_contact``) or by an action that cannot
happen without it (recording the parties' consent, settling the case directly).

Each contact row keeps who made it, when, how, the unit that held the case at that
moment and the response limit then in force, so the rate can be computed later for the
unit that was responsible when the deciding moment happened, whatever became of the
case afterwards.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import field_validator
from sqlmodel import Field, Session, SQLModel
from sqlmodel._compat import SQLModelConfig

from models import clock, lifecycle
from models.case import Case
from models.enums import CaseStatus, ContactMethod
from models.guards import CLOCK_TOLERANCE, invalid
from models.lifecycle import Actor
from models.mediation import clean_text
from models.rows import rows_of
from models.types import UTCDateTime, enum_type

NOTE_MAX = 500


class CaseContact(SQLModel, table=True):
    __tablename__ = "case_contact"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    method: ContactMethod = Field(sa_type=enum_type(ContactMethod))
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    unit_path: str | None = Field(default=None, max_length=255)
    # The response limit in force when the contact was made, and whether it was met.
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    in_time: bool = False
    implied_by: str | None = Field(default=None, max_length=32)  # the verb, if not recorded
    note: str | None = Field(default=None, max_length=NOTE_MAX)  # free text: models.text_numbers


class ContactCreate(SQLModel):
    """What the handler says about the first contact: how, and optionally when (a call
    made on the road and recorded later) and a short note."""

    model_config = SQLModelConfig(extra="forbid")

    method: ContactMethod
    at: clock.Moment | None = None
    note: str | None = Field(default=None, max_length=NOTE_MAX)

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        return None if value is None else (clean_text(value, required=False) or None)


def contacts_of(session: Session, *, case_id: int) -> list[CaseContact]:
    return rows_of(session, CaseContact, CaseContact.case_id == case_id, CaseContact.at)


def _add(
    session: Session,
    case: Case,
    actor: Actor,
    *,
    at: datetime,
    method: ContactMethod,
    implied_by: str | None = None,
    note: str | None = None,
) -> CaseContact:
    assert case.id is not None
    due = clock.ensure_utc(case.response_due_at) if case.response_due_at else None
    row = CaseContact(
        case_id=case.id,
        at=at,
        method=method,
        staff_id=actor.staff_id,
        unit_id=case.unit_id,
        unit_path=case.unit_path,
        due_at=due,
        in_time=due is not None and at <= due,
        implied_by=implied_by,
        note=note[:NOTE_MAX] if note else None,  # numbers masked on flush (text_numbers)
    )
    session.add(row)
    if case.first_response_at is None or at < clock.ensure_utc(case.first_response_at):
        case.first_response_at = at
    return row


def note_contact(session: Session, *, case: Case, actor: Actor, at: datetime, verb: str) -> None:
    """An action that needs the complainant in the room (consent, a settlement) is a
    contact when none was recorded before; a system actor never makes one."""
    if actor.kind != "staff" or case.first_response_at is not None:
        return
    _add(session, case, actor, at=at, method=ContactMethod.IN_PERSON, implied_by=verb)


CONTACT_STATUSES = frozenset(
    {
        CaseStatus.TRIAGED,
        CaseStatus.ASSIGNED,
        CaseStatus.IN_MEDIATION,
        CaseStatus.ESCALATED,
        CaseStatus.REOPENED,
        CaseStatus.REFERRED,
    }
)


def record_contact(
    session: Session,
    *,
    case_id: int,
    data: ContactCreate,
    actor: Actor,
    expected_version: int | None,
) -> CaseContact:
    """Record a contact with the complainant by a person (首次联系). Only staff; the
    moment may be earlier than now (recorded after the call) but not before the case
    was received nor in the future."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_staff(actor, "recording a contact", "联系群众")
    lifecycle.require_status(case, CONTACT_STATUSES, "record a contact for", "记录联系")
    now = clock.now()
    at = clock.ensure_utc(data.at) if data.at else now
    received = clock.ensure_utc(case.created_at)
    if at > now + CLOCK_TOLERANCE or at < received:
        raise invalid(
            "at",
            "between the receipt of the complaint and now",
            "联系时间应在受理之后、当前时间之前",
        )
    row = _add(session, case, actor, at=at, method=data.method, note=data.note)
    session.flush()
    step.record(
        "contacted",
        {
            "contact_id": row.id,
            "method": data.method.value,
            "at": at.isoformat(),
            "in_time": row.in_time,
            "unit": case.unit_path,
        },
    )
    return row
