"""Return visits (回访): the outcome, the complainant's own answers and a note.

The complainant answers two questions, as hotline practice asks them: was the problem
solved (已解决 / 基本解决 / 未解决) and are you satisfied (满意 / 基本满意 / 不满意). A visit
counts for the resolution and satisfaction rates only when it was **independent**:
made by someone who is neither the case's handler nor of the handling unit (a street or
district return visitor, 回访员), or given by the complainant through their own link.
Each visit keeps the unit that held the case when it was made: the unit it judges.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import model_validator
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from models.enums import (
    FollowUpKind,
    FollowUpOutcome,
    ResolvedAnswer,
    SatisfiedAnswer,
    VisitChannel,
)
from models.mediation import CleanText
from models.public import public_of
from models.types import UTCDateTime, enum_type


class FollowUp(SQLModel, table=True):
    __tablename__ = "follow_up"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: FollowUpKind = Field(sa_type=enum_type(FollowUpKind))
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    term_id: int | None = Field(default=None, foreign_key="agreement_term.id")
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: FollowUpOutcome | None = Field(default=None, sa_type=enum_type(FollowUpOutcome))
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    unit_at_fault: bool = False
    notes: str | None = Field(default=None, max_length=2000)
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    # Who is to make the visit (named when it is scheduled; models.follow_ups.pick_visitor).
    visitor_id: int | None = Field(default=None, foreign_key="staff.id")
    channel: VisitChannel | None = Field(default=None, sa_type=enum_type(VisitChannel))
    resolved: ResolvedAnswer | None = Field(default=None, sa_type=enum_type(ResolvedAnswer))
    satisfied: SatisfiedAnswer | None = Field(default=None, sa_type=enum_type(SatisfiedAnswer))
    independent: bool = False
    judged_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    judged_unit_path: str | None = Field(default=None, max_length=255)


# The 1-5 rating kept on the case (closing and reopening read it) for each answer.
RATING = {
    SatisfiedAnswer.SATISFIED: 5,
    SatisfiedAnswer.BASICALLY: 4,
    SatisfiedAnswer.DISSATISFIED: 1,
}


class FollowUpRecord(SQLModel):
    """What the visitor reports: the outcome, the complainant's two answers (none when
    the complainant could not be reached), how the answers were given, and a note."""

    model_config = SQLModelConfig(extra="forbid")

    outcome: FollowUpOutcome
    resolved: ResolvedAnswer | None = None
    satisfied: SatisfiedAnswer | None = None
    channel: VisitChannel = VisitChannel.PHONE
    unit_at_fault: bool = False
    notes: CleanText = Field(max_length=2000)
    follow_up_id: int | None = None

    @model_validator(mode="after")
    def _answers_match_the_outcome(self) -> FollowUpRecord:
        answered = (self.resolved is not None, self.satisfied is not None)
        if self.outcome == FollowUpOutcome.UNREACHABLE and any(answered):
            raise ValueError(
                "未联系上当事人时不能填写解决和满意情况 / no answers when the resident "
                "was unreachable"
            )
        if self.outcome != FollowUpOutcome.UNREACHABLE and not all(answered):
            raise ValueError(
                "请填写当事人对是否解决、是否满意的回答 / record the resident's answers: "
                "resolved or not, satisfied or not"
            )
        return self

    @property
    def satisfaction(self) -> int | None:
        return RATING[self.satisfied] if self.satisfied is not None else None


class FollowUpPublic(SQLModel):
    id: int
    case_id: int
    kind: FollowUpKind
    kind_zh: str
    due_at: datetime
    term_id: int | None
    done_at: datetime | None
    outcome: FollowUpOutcome | None
    satisfaction: int | None
    unit_at_fault: bool
    notes: str | None
    recorded_by_id: int | None
    channel: VisitChannel | None = None
    resolved: ResolvedAnswer | None = None
    satisfied: SatisfiedAnswer | None = None
    independent: bool = False

    @classmethod
    def of(cls, row: FollowUp, *, reveal: bool = False) -> FollowUpPublic:
        """Phone and ID numbers typed into the notes are masked unless ``reveal``."""
        return public_of(cls, row, masked=("notes",), reveal=reveal, kind_zh=row.kind.zh)
