"""The append-only case events (hash-chained) and the transactional outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.orm import relationship
from sqlmodel import JSON, Column, Field, Relationship, SQLModel

from models.enums import CaseStatus, OutboxState
from models.types import UTCDateTime, enum_type


class CaseEvent(SQLModel, table=True):
    __tablename__ = "case_event"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        # One kind of event in a period (a month's escalations): the period's rows of
        # that verb only, in time order. On ``at`` alone every event of the period was
        # read (46,000 in a month of a million-case city, 44 ms), on ``verb`` alone every
        # escalation of ten years.
        Index("ix_case_event_verb_at", "verb", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    seq: int
    verb: str = Field(max_length=32)
    from_status: CaseStatus | None = Field(default=None, sa_type=enum_type(CaseStatus))
    to_status: CaseStatus = Field(sa_type=enum_type(CaseStatus))
    actor: str = Field(max_length=64)  # "staff:12", "system", "open311"
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Outbox(SQLModel, table=True):
    """Work for the orchestration layer, written in the same transaction as the event."""

    __table_args__ = (Index("ix_outbox_pending", "state", "available_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="case_event.id")
    # The event it is written for: one flush inserts the event first and fills event_id
    # (the event's id is not known before its insert).
    event: CaseEvent | None = Relationship(sa_relationship=relationship(CaseEvent))
    verb: str = Field(max_length=32)
    step: str | None = Field(default=None, max_length=32)
    idempotency_key: str = Field(max_length=128, unique=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: OutboxState = Field(default=OutboxState.PENDING, sa_type=enum_type(OutboxState))
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    available_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class TimelineEvent(Protocol):
    """What a timeline reads of an event: a :class:`CaseEvent` or an :class:`EventRow`."""

    @property
    def id(self) -> int | None: ...
    @property
    def verb(self) -> str: ...
    @property
    def from_status(self) -> CaseStatus | None: ...
    @property
    def to_status(self) -> CaseStatus: ...
    @property
    def actor(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def data(self) -> dict[str, Any]: ...
