"""Phone and ID numbers typed into free text never reach a table in clear.

Whenever a case's free text is written — at intake and on every later edit (the
description, the address, minutes, agreements, notes) — the numbers found in it by
:func:`models.pii.find_numbers` (any separators, full-width digits, Chinese digit words)
are moved into :class:`CaseTextNumber` rows (encrypted, with a keyed hash and the mask)
and the stored text keeps only their masks. So the database, search, exports,
Prefect and every answer hold the mask; readers entitled to the case's personal data
get the numbers from :func:`numbers_of` (decrypted).

One owner for "which columns are free text": :data:`PROTECTED`. The ORM's flush hook
protects every object written through a session; the intake fast path, which inserts
with Core statements, calls :func:`protect_values` and :func:`record` itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Field, Session, SQLModel, col, select

from models import clock, pii
from models.types import UTCDateTime

# table name -> its free-text columns
PROTECTED: dict[str, tuple[str, ...]] = {
    "cases": ("description", "address_text", "outcome_note"),
    "mediation_session": ("place", "participants", "minutes"),
    "agreement": ("summary", "facts", "disputed_matters", "responsibility", "performance"),
    "agreement_term": ("text",),
    "follow_up": ("notes",),
    "extension": ("reason", "decision_note"),
    "referral": ("note", "return_reason", "action_taken"),
    "helper_task": ("note",),
    "acceptance_review": ("note",),
    "case_mediator": ("end_note",),
    "party_consent": ("note",),
    "case_contact": ("note",),
}
# Long text columns that are not a case's free text (checked by a test: every other long
# text column of a case's table must be in PROTECTED).
NOT_FREE_TEXT = frozenset(
    {
        "notification.text",
        "notification.last_error",
        "outbox.last_error",
        # Written by the system from the law's text (models.acceptance), never typed.
        "acceptance_review.legal_basis",
        "acceptance_review.guidance",
    }
)
_PENDING = "tiaojie_text_numbers"


class CaseTextNumber(SQLModel, table=True):
    """A phone or ID number that was typed into a case's free text."""

    __tablename__ = "case_text_number"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    field: str = Field(max_length=64)  # "cases.description", "mediation_session.minutes", …
    kind: str = Field(max_length=16)  # "phone" or "id_number"
    value_enc: str | None = None
    value_hash: str | None = Field(default=None, max_length=64, index=True)
    masked: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)


_TABLE = CaseTextNumber.__table__  # type: ignore[attr-defined]


def protect(text: str) -> tuple[str, list[pii.FoundNumber]]:
    """The text as it may be stored (numbers masked) and the numbers taken out of it."""
    found = pii.find_numbers(text) if text else []
    return (pii.scrub_text(text) if found else text), found


def protect_values(table: str, values: dict[str, Any]) -> list[tuple[str, list[pii.FoundNumber]]]:
    """Mask the free-text columns of a row about to be inserted, in place; answer what
    was taken out, for :func:`record` once the case id is known."""
    taken: list[tuple[str, list[pii.FoundNumber]]] = []
    for name in PROTECTED.get(table, ()):
        value = values.get(name)
        if isinstance(value, str) and value:
            values[name], found = protect(value)
            if found:
                taken.append((f"{table}.{name}", found))
    return taken


def record(
    session: Session, *, case_id: int, taken: Iterable[tuple[str, list[pii.FoundNumber]]]
) -> int:
    """Store the numbers taken out of a case's text (encrypted, hashed, masked)."""
    now = clock.now()
    rows = [
        {
            "case_id": case_id,
            "field": field,
            "kind": item.kind,
            "value_enc": pii.encrypt(item.value),
            "value_hash": pii.lookup_hash(item.value),
            "masked": item.masked,
            "created_at": now,
        }
        for field, found in taken
        for item in found
    ]
    if rows:
        session.connection().execute(insert(_TABLE), rows)
    return len(rows)


def numbers_of(session: Session, *, case_id: int, reveal: bool) -> list[dict[str, str]]:
    """The numbers typed into a case's text: clear for an entitled reader, else masked."""
    rows = session.exec(
        select(CaseTextNumber)
        .where(col(CaseTextNumber.case_id) == case_id)
        .order_by(col(CaseTextNumber.id))
    ).all()
    return [
        {
            "field": row.field,
            "kind": row.kind,
            "value": pii.decrypt(row.value_enc) if reveal and row.value_enc else row.masked,
        }
        for row in rows
    ]


# --- the flush hook --------------------------------------------------------------------


def _changed(obj: Any, name: str, is_new: bool) -> bool:
    if is_new:
        return True
    return bool(sa_inspect(obj).attrs[name].history.has_changes())


@event.listens_for(Session, "before_flush")
def _mask_before_flush(session: Session, _context: Any, _instances: Any) -> None:
    pending: list[tuple[Any, str, list[pii.FoundNumber]]] = []
    new = set(map(id, session.new))
    for obj in [*session.new, *session.dirty]:
        table = getattr(type(obj), "__tablename__", None)
        for name in PROTECTED.get(table, ()) if isinstance(table, str) else ():
            value = getattr(obj, name, None)
            if not isinstance(value, str) or not value or not _changed(obj, name, id(obj) in new):
                continue
            masked, found = protect(value)
            if found:
                setattr(obj, name, masked)
                pending.append((obj, f"{table}.{name}", found))
    session.info[_PENDING] = pending


def _case_id(session: Session, obj: Any) -> int | None:
    if getattr(type(obj), "__tablename__", None) == "cases":
        return getattr(obj, "id", None)
    if hasattr(obj, "case_id"):
        return getattr(obj, "case_id", None)
    agreement_id = getattr(obj, "agreement_id", None)
    if agreement_id is None:
        return None
    from models.mediation import Agreement

    row = session.connection().execute(
        select(col(Agreement.case_id)).where(col(Agreement.id) == agreement_id)
    )
    return row.scalar_one_or_none()


@event.listens_for(Session, "after_flush")
def _record_after_flush(session: Session, _context: Any) -> None:
    pending = session.info.pop(_PENDING, None)
    for obj, field, found in pending or ():
        case_id = _case_id(session, obj)
        if case_id is not None:
            record(session, case_id=case_id, taken=[(field, found)])


__all__ = ["PROTECTED", "CaseTextNumber", "numbers_of", "protect", "protect_values", "record"]
