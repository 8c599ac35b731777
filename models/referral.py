"""Referrals (移交): who sent a case where, why, and what the receiving unit did with it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.enums import ReferralOutcome, ReferralReason, ReferralState, ReferralTarget
from models.types import UTCDateTime, enum_type


class Referral(SQLModel, table=True):
    """One hand-over of a case. A referral to a unit in the system (a paired agency) is a
    loop: the unit signs for it (签收) or sends it back with a reason (退单) by
    ``sign_due_at`` (one working day), then records what it did and the outcome. A
    referral to a body outside the system (police, court, arbitration) is handed over
    once; its outcome is learnt at the return visit."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    target: ReferralTarget = Field(sa_type=enum_type(ReferralTarget))
    reason: ReferralReason = Field(sa_type=enum_type(ReferralReason))
    # "staff" (a person chose it) or "rule:<name>" (a named rule did).
    decided_by: str = Field(max_length=100)
    note: str | None = Field(default=None, max_length=500)
    from_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    to_unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    referred_by_id: int | None = Field(default=None, foreign_key="staff.id")
    referred_at: datetime = Field(sa_type=UTCDateTime)
    state: ReferralState = Field(sa_type=enum_type(ReferralState), index=True)
    sign_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    signed_by_id: int | None = Field(default=None, foreign_key="staff.id")
    returned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    return_reason: str | None = Field(default=None, max_length=500)
    action_taken: str | None = Field(default=None, max_length=2000)
    outcome: ReferralOutcome | None = Field(default=None, sa_type=enum_type(ReferralOutcome))
    concluded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    concluded_by_id: int | None = Field(default=None, foreign_key="staff.id")
