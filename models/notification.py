"""Outbound notifications, recorded so that each is delivered once (by key)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Notification(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    recipient_id: int | None = Field(default=None, foreign_key="staff.id")
    kind: str = Field(max_length=32)
    text: str = Field(max_length=1000)  # masked text only
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
