"""Mediation sessions with minutes, and written agreements with their terms."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class MediationSession(SQLModel, table=True):
    __tablename__ = "mediation_session"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    held_at: datetime = Field(sa_type=UTCDateTime)
    place: str = Field(max_length=200)
    participants: str = Field(max_length=500)
    minutes: str = Field(max_length=8000)
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class Agreement(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True, unique=True)
    signed_at: datetime = Field(sa_type=UTCDateTime)
    summary: str = Field(max_length=4000)
    # Parties may jointly ask a court to confirm within 30 days of signing (司法确认).
    court_confirmation_deadline: date
    court_confirmed: bool = False


class AgreementTerm(SQLModel, table=True):
    __tablename__ = "agreement_term"

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    text: str = Field(max_length=1000)
    due_on: date
    done: bool = False
