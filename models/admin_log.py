"""The administration log (系统管理日志): every change an administrator makes to units,
staff, pairings or time limits, append-only and hash-chained like a case's timeline
(:func:`models.lifecycle.event_hash`), so that ``tiaojie audit verify`` finds an edited
or deleted entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import JSON, Column, Field, Session, SQLModel, col, select

from models import clock
from models.lifecycle import event_hash
from models.types import UTCDateTime

TARGET_MAX = 200


class AdminEvent(SQLModel, table=True):
    __tablename__ = "admin_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    target: str = Field(max_length=TARGET_MAX)  # cut to fit (PostgreSQL refuses longer)
    # Counts, codes and field names only: never a phone number or a password.
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


def _body(event: AdminEvent) -> dict[str, Any]:
    return {
        "at": clock.ensure_utc(event.at).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "detail": event.detail,
    }


def record(
    session: Session, *, actor: str, action: str, target: str, detail: dict[str, Any] | None = None
) -> AdminEvent:
    """Append one entry (flushed, in the caller's transaction)."""
    last = session.exec(select(AdminEvent).order_by(col(AdminEvent.id).desc()).limit(1)).first()
    event = AdminEvent(
        at=clock.now(),
        actor=actor,
        action=action,
        target=target[:TARGET_MAX],
        detail=detail or {},
        prev_hash=last.hash if last else "",
        hash="",
    )
    event.hash = event_hash(event.prev_hash, _body(event))
    session.add(event)
    session.flush()
    return event


def verify_log(session: Session) -> list[int]:
    """Ids of the entries whose chain is broken (edited, or the entry before it removed)."""
    broken: list[int] = []
    prev = ""
    for event in session.exec(select(AdminEvent).order_by(col(AdminEvent.id))).all():
        if event.prev_hash != prev or event.hash != event_hash(prev, _body(event)):
            broken.append(event.id or 0)
        prev = event.hash
    return broken
