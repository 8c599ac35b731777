"""Mediation sessions with minutes, and written agreements with their terms."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator
from sqlmodel import JSON, Column, Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from models import clock
from models import text as text_rules
from models.enums import ConfirmationStatus
from models.public import public_of
from models.types import UTCDateTime, enum_type


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
    # Not unique: a case reopened after follow-up may be mediated (and settled) again.
    case_id: int = Field(foreign_key="cases.id", index=True)
    signed_at: datetime = Field(sa_type=UTCDateTime)
    summary: str = Field(max_length=4000)
    # What 人民调解法 第二十九条 asks the written agreement to state.
    facts: str = Field(default="", max_length=4000)  # 纠纷主要事实
    disputed_matters: str = Field(default="", max_length=2000)  # 争议事项
    responsibility: str = Field(default="", max_length=2000)  # 各方当事人的责任
    performance: str = Field(default="", max_length=2000)  # 履行方式
    # Signed on paper by the parties and the mediators, sealed by the committee; the
    # scan is an attachment of the case.
    signed_on_paper: bool = False
    committee_sealed: bool = False
    mediator_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scan_attachment_id: int | None = Field(default=None, foreign_key="attachment.id")
    effective_on: date | None = None
    # Parties may jointly ask a court to confirm within 30 days of the agreement taking
    # effect (司法确认, 第三十三条): tracked in calendar days, reminded on days 20 and 28.
    court_confirmation_deadline: date
    court_confirmed: bool = False
    confirmation_status: ConfirmationStatus = Field(
        default=ConfirmationStatus.NOT_APPLIED, sa_type=enum_type(ConfirmationStatus)
    )
    court_name: str = Field(default="", max_length=200)
    court_reference: str = Field(default="", max_length=100)
    confirmation_applied_on: date | None = None
    confirmation_decided_on: date | None = None
    reminded_day20_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_day28_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AgreementTerm(SQLModel, table=True):
    __tablename__ = "agreement_term"

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    text: str = Field(max_length=1000)
    due_on: date
    how: str = Field(default="", max_length=500)  # 履行方式 of this term
    done: bool = False


# --- what staff send ----------------------------------------------------------------


def clean_text(value: str, *, required: bool = True) -> str:
    """Strip; refuse control, bidirectional and zero-width characters (tabs and line
    breaks are kept): the one rule of :mod:`models.text`."""
    value = text_rules.check(value)
    if required and not value:
        raise ValueError("不能为空 / must not be empty")
    return value


def _clean_optional_text(value: str) -> str:
    return clean_text(value, required=False)


CleanText = Annotated[str, AfterValidator(clean_text)]
"""Text a person typed, checked and stripped by :func:`clean_text`; not empty."""
OptionalCleanText = Annotated[str, AfterValidator(_clean_optional_text)]
"""Text a person typed, checked and stripped by :func:`clean_text`; may be empty."""


class SessionCreate(SQLModel):
    """One mediation session (调解笔录): when, where, who took part, the minutes."""

    model_config = SQLModelConfig(extra="forbid")

    held_at: clock.AwareMoment
    place: CleanText = Field(min_length=1, max_length=200)
    participants: CleanText = Field(min_length=1, max_length=500)
    minutes: CleanText = Field(min_length=1, max_length=8000)


class TermCreate(SQLModel):
    """One obligation in an agreement, with the date it must be carried out by."""

    model_config = SQLModelConfig(extra="forbid")

    text: CleanText = Field(min_length=1, max_length=1000)
    due_on: clock.Day
    how: OptionalCleanText = Field(
        default="", max_length=500, description="履行方式, e.g. 银行转账"
    )


class AgreementCreate(SQLModel):
    """A written mediation agreement (调解协议书): at least one term."""

    model_config = SQLModelConfig(extra="forbid")

    summary: CleanText = Field(min_length=1, max_length=4000)
    facts: OptionalCleanText = Field(default="", max_length=4000, description="纠纷主要事实")
    disputed_matters: OptionalCleanText = Field(default="", max_length=2000, description="争议事项")
    responsibility: OptionalCleanText = Field(
        default="", max_length=2000, description="各方当事人的责任"
    )
    performance: OptionalCleanText = Field(default="", max_length=2000, description="履行方式")
    signed_on_paper: bool = Field(
        default=False, description="the parties and mediators signed the printed agreement"
    )
    committee_sealed: bool = Field(default=False, description="调委会已盖章")
    signed_at: clock.AwareMoment | None = None
    terms: list[TermCreate] = Field(min_length=1, max_length=50)


# --- what staff see -----------------------------------------------------------------


class SessionPublic(SQLModel):
    id: int
    case_id: int
    held_at: datetime
    place: str
    participants: str
    minutes: str
    recorded_by_id: int | None
    recorded_at: datetime

    @classmethod
    def of(cls, row: MediationSession, *, reveal: bool = False) -> SessionPublic:
        """Phone and ID numbers typed into the minutes are masked unless ``reveal``."""
        return public_of(cls, row, masked=("place", "participants", "minutes"), reveal=reveal)


class TermPublic(SQLModel):
    id: int
    text: str
    due_on: date
    done: bool


class AgreementPublic(SQLModel):
    id: int
    case_id: int
    signed_at: datetime
    summary: str
    court_confirmation_deadline: date
    court_confirmed: bool
    terms: list[TermPublic]

    @classmethod
    def of(
        cls, row: Agreement, terms: list[AgreementTerm], *, reveal: bool = False
    ) -> AgreementPublic:
        """Phone and ID numbers typed into the summary and the terms are masked unless
        ``reveal``; the terms soonest due first."""
        ordered = sorted(terms, key=lambda t: (t.due_on, t.id or 0))
        shown = [public_of(TermPublic, t, masked=("text",), reveal=reveal) for t in ordered]
        return public_of(cls, row, masked=("summary",), reveal=reveal, terms=shown)
