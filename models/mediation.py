"""Mediation sessions with minutes, and written agreements with their terms."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import AwareDatetime, field_validator
from sqlmodel import JSON, Column, Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from models import pii
from models import text as text_rules
from models.enums import ConfirmationStatus
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


class SessionCreate(SQLModel):
    """One mediation session (调解笔录): when, where, who took part, the minutes."""

    model_config = SQLModelConfig(extra="forbid")

    held_at: AwareDatetime
    place: str = Field(min_length=1, max_length=200)
    participants: str = Field(min_length=1, max_length=500)
    minutes: str = Field(min_length=1, max_length=8000)

    @field_validator("place", "participants", "minutes")
    @classmethod
    def _text(cls, value: str) -> str:
        return clean_text(value)


class TermCreate(SQLModel):
    """One obligation in an agreement, with the date it must be carried out by."""

    model_config = SQLModelConfig(extra="forbid")

    text: str = Field(min_length=1, max_length=1000)
    due_on: date
    how: str = Field(default="", max_length=500, description="履行方式, e.g. 银行转账")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return clean_text(value)

    @field_validator("how")
    @classmethod
    def _how(cls, value: str) -> str:
        return clean_text(value, required=False)


class AgreementCreate(SQLModel):
    """A written mediation agreement (调解协议书): at least one term."""

    model_config = SQLModelConfig(extra="forbid")

    summary: str = Field(min_length=1, max_length=4000)
    facts: str = Field(default="", max_length=4000, description="纠纷主要事实")
    disputed_matters: str = Field(default="", max_length=2000, description="争议事项")
    responsibility: str = Field(default="", max_length=2000, description="各方当事人的责任")
    performance: str = Field(default="", max_length=2000, description="履行方式")
    signed_on_paper: bool = Field(
        default=False, description="the parties and mediators signed the printed agreement"
    )
    committee_sealed: bool = Field(default=False, description="调委会已盖章")
    signed_at: AwareDatetime | None = None
    terms: list[TermCreate] = Field(min_length=1, max_length=50)

    @field_validator("summary")
    @classmethod
    def _text(cls, value: str) -> str:
        return clean_text(value)

    @field_validator("facts", "disputed_matters", "responsibility", "performance")
    @classmethod
    def _optional(cls, value: str) -> str:
        return clean_text(value, required=False)


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
        assert row.id is not None
        shown = (lambda text: text) if reveal else pii.scrub_text
        return cls(
            id=row.id,
            case_id=row.case_id,
            held_at=row.held_at,
            place=shown(row.place),
            participants=shown(row.participants),
            minutes=shown(row.minutes),
            recorded_by_id=row.recorded_by_id,
            recorded_at=row.recorded_at,
        )


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
        assert row.id is not None
        shown = (lambda text: text) if reveal else pii.scrub_text
        return cls(
            id=row.id,
            case_id=row.case_id,
            signed_at=row.signed_at,
            summary=shown(row.summary),
            court_confirmation_deadline=row.court_confirmation_deadline,
            court_confirmed=row.court_confirmed,
            terms=[
                TermPublic(id=t.id or 0, text=shown(t.text), due_on=t.due_on, done=t.done)
                for t in sorted(terms, key=lambda t: (t.due_on, t.id or 0))
            ],
        )
