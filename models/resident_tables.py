"""The resident's side, as stored: locks on tracking codes, resident sessions, one-use
links, and the photos residents send (models/resident.py, models/resident_actions.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class ResidentLock(SQLModel, table=True):
    """Wrong checks against one code (its keyed hash), and until when it is locked."""

    __tablename__ = "resident_lock"

    code_hash: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ResidentSession(SQLModel, table=True):
    """A resident's short-lived session on one case, after the phone check (or a link)."""

    __tablename__ = "resident_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    case_id: int = Field(foreign_key="cases.id", index=True)
    party_id: int = Field(foreign_key="party.id")
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ResidentPhoto(SQLModel, table=True):
    """A photo a resident added to a case (kept in the database with the case: one
    backup, one retention rule). Checked for type and size before it is stored."""

    __tablename__ = "resident_photo"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    party_id: int = Field(foreign_key="party.id")
    content_type: str = Field(max_length=32)
    size: int
    sha256: str = Field(max_length=64)
    data: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ResidentLink(SQLModel, table=True):
    """A signed, expiring link that works once, for one party and one action on one case
    (models/resident_links.py). The token is the ``nonce`` plus an HMAC over the nonce,
    the case, the party, the action and the expiry: it can be sent again (a retried SMS
    carries the same link) but not forged, and it opens nothing else."""

    __tablename__ = "resident_link"
    __table_args__ = (UniqueConstraint("case_id", "party_id", "purpose"),)

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(max_length=16, unique=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    party_id: int = Field(foreign_key="party.id")
    purpose: str = Field(max_length=32)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
