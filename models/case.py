"""Cases: the complaint, where it is in its life, and where it is handled."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationInfo, field_validator, model_validator
from sqlalchemy import Index, UniqueConstraint, text
from sqlalchemy.orm import declared_attr
from sqlmodel import JSON, Column, Field, Session, SQLModel
from sqlmodel._compat import SQLModelConfig

from models import clock
from models import text as text_rules
from models.enums import (
    CaseStatus,
    Category,
    Channel,
    LinkKind,
    Priority,
    ReferralReason,
    ReferralState,
    ReferralTarget,
)
from models.errors import NotFound
from models.party import PartyCreate
from models.types import UTCDateTime, enum_type

if TYPE_CHECKING:
    from models.deadlines import Deadlines
    from models.unit import Unit


def _ts(index: bool = False) -> datetime | None:
    return Field(default=None, sa_type=UTCDateTime, index=index)  # type: ignore[no-any-return]


class CaseBase(SQLModel):
    category: Category = Field(index=True, sa_type=enum_type(Category))
    priority: Priority = Field(default=Priority.NORMAL, sa_type=enum_type(Priority))
    channel: Channel = Field(default=Channel.WALK_IN, sa_type=enum_type(Channel))
    description: str = Field(max_length=4000)
    address_text: str | None = Field(default=None, max_length=200)
    lat: float | None = None
    lon: float | None = None
    people_affected: int = Field(default=1, ge=1, le=100000)


class Case(CaseBase, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        # status last: the escalation sweep's status filter is read from the index alone.
        Index("ix_case_open_due", "is_open", "resolution_due_at", "status"),
        Index("ix_case_open_reminder", "is_open", "next_reminder_at", "status"),
        # The sweep's breach pass: response limits passed before any contact (models.breaches).
        Index("ix_case_open_response", "is_open", "first_response_at", "response_due_at", "status"),
        # The case list's common filters, newest first, read in order from the index.
        Index("ix_case_status_created", "status", "created_at"),
        Index("ix_case_status_category_created", "status", "category", "created_at"),
        # A worker's open cases (inbox, workload counts): those they handle or recorded.
        Index("ix_case_assignee_open", "assignee_id", "is_open"),
        Index("ix_case_creator_open", "created_by_id", "is_open"),
        # The newest open cases in a reader's reach (the inbox), read newest first.
        Index("ix_case_open_created", "is_open", "created_at"),
        # The open cases handled or happening in a reader's subtree (reach, models.access);
        # with status and deadline, a subtree's backlog per unit from the index alone
        # (9 -> 5 ms for a district's at a million cases).
        Index("ix_case_open_path", "is_open", "unit_path", "status", "deadline_at"),
        Index("ix_case_place_open", "place_unit_id", "is_open"),
        # Overdue (models.overdue) as a range of the kept deadline: only the open cases
        # with a limit running have one, about one case in eighty in a city's ten years.
        Index(
            "ix_case_deadline",
            "deadline_at",
            sqlite_where=text("deadline_at IS NOT NULL"),
            postgresql_where=text("deadline_at IS NOT NULL"),
        ),
        # ... and of a subtree, with the handling unit (its level): a district's overdue
        # cases per level from the index (7 -> 4 ms at a million cases).
        Index(
            "ix_case_path_deadline",
            "unit_path",
            "deadline_at",
            "unit_id",
            sqlite_where=text("deadline_at IS NOT NULL"),
            postgresql_where=text("deadline_at IS NOT NULL"),
        ),
        # The few cases with a liaison: partial, so that the planner, which knows only
        # that most cases have none, still takes it for "my cases as liaison".
        Index(
            "ix_case_liaison_open",
            "liaison_id",
            "is_open",
            sqlite_where=text("liaison_id IS NOT NULL"),
            postgresql_where=text("liaison_id IS NOT NULL"),
        ),
        # The few cases held for 研判, among a million that are not.
        Index(
            "ix_case_held",
            "id",
            sqlite_where=text("held_for_assessment = 1"),
            postgresql_where=text("held_for_assessment"),
        ),
    )

    # Optimistic concurrency: every UPDATE is checked against the version read, and the
    # state machine (models.lifecycle) is the only place that bumps it.
    @declared_attr  # type: ignore[arg-type]
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version, "version_id_generator": False}  # type: ignore[attr-defined]

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True, index=True)
    status: CaseStatus = Field(default=CaseStatus.SUBMITTED, sa_type=enum_type(CaseStatus))
    is_open: bool = Field(default=True)
    version: int = Field(default=1)
    last_hash: str = Field(default="", max_length=64)
    category_locked: bool = False  # the worker chose the category; classification keeps it
    priority_locked: bool = False
    # The machine was unsure of the category: the case waits for a person (研判) at its
    # community's intake desk before it is routed.
    held_for_assessment: bool = Field(default=False)
    risk_level: str | None = Field(default=None, max_length=16)  # red | orange | yellow

    place_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    # Subtree checks are a LIKE on the handling unit's path, copied here to avoid a join.
    unit_path: str | None = Field(default=None, max_length=255, index=True)
    assignee_id: int | None = Field(default=None, foreign_key="staff.id")
    # The grid or community worker who took the complaint stays on a case handed to the
    # mediation committee as the liaison with the residents (联络人).
    liaison_id: int | None = Field(default=None, foreign_key="staff.id")
    # Staff added as helpers (协办, models.helping), copied here so the rule book can offer
    # a helper their task without reading another table.
    helper_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by_id: int | None = Field(default=None, foreign_key="staff.id")
    escalation_level: int = 0

    is_group: bool = False
    respondent_key: str | None = Field(default=None, max_length=64, index=True)
    duplicate_of_id: int | None = Field(default=None, foreign_key="cases.id")
    merged_into_id: int | None = Field(default=None, foreign_key="cases.id")
    cluster_key: str | None = Field(default=None, max_length=64, index=True)
    # The keyed hash of the resident's tracking code (models.tracking); never the code.
    tracking_hash: str | None = Field(default=None, max_length=64, unique=True)

    response_due_at: datetime | None = _ts()
    resolution_due_at: datetime | None = _ts()
    next_reminder_at: datetime | None = _ts()
    mediation_due_at: datetime | None = _ts()
    first_response_at: datetime | None = _ts()
    consent_at: datetime | None = _ts()
    reminded_level: int | None = None  # escalation level at which the reminder went out

    # Acceptance review (受理审查): set when the committee accepts the dispute for mediation.
    accepted_at: datetime | None = _ts()
    # 不公开: description, parties and minutes stay inside the handling unit.
    confidential: bool = Field(default=False, index=True)
    referral_target: ReferralTarget | None = Field(default=None, sa_type=enum_type(ReferralTarget))
    # Why the case left (or is to leave) people's mediation; set by a person at intake or
    # by a named rule, and required for any referral (models.referrals).
    referral_reason: ReferralReason | None = Field(default=None, sa_type=enum_type(ReferralReason))
    referral_state: ReferralState | None = Field(default=None, sa_type=enum_type(ReferralState))
    # While a referral waits for the receiving unit: sign for it (or send it back) by then.
    referral_due_at: datetime | None = _ts()
    # An extension (延期) asked for and not yet decided: the date asked for.
    extension_asked_until: datetime | None = _ts()
    # The deadline that counts now (models.overdue.deadline_of), kept by models.overdue
    # at every flush that changes what it is made of; NULL: no limit is running.
    deadline_at: datetime | None = _ts()
    # The unit that referred the case keeps it in view (its lists reach this path too).
    referred_from_path: str | None = Field(default=None, max_length=255, index=True)
    # The staff member who made the standing referral: they make its return visits, and
    # see the parties' contact to do so (models.access.may_see_personal_data).
    referred_by_id: int | None = Field(default=None, foreign_key="staff.id")
    outcome_note: str | None = Field(default=None, max_length=2000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)

    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # When the complaint reached a worker (a walk-in written up later): limits run from it.
    received_at: datetime | None = _ts()
    submitted_at: datetime | None = _ts()
    triaged_at: datetime | None = _ts()
    assigned_at: datetime | None = _ts()
    in_mediation_at: datetime | None = _ts()
    agreement_at: datetime | None = _ts()
    mediation_failed_at: datetime | None = _ts()
    follow_up_at: datetime | None = _ts()
    closed_at: datetime | None = _ts(index=True)
    escalated_at: datetime | None = _ts()
    referred_at: datetime | None = _ts()
    merged_at: datetime | None = _ts()
    withdrawn_at: datetime | None = _ts()
    reopened_at: datetime | None = _ts()
    anonymised_at: datetime | None = _ts()

    def set_handling_unit(self, unit: Unit) -> None:
        """The unit that handles the case now: its id and its path move together (reach
        and the reports read the path)."""
        self.unit_id = unit.id
        self.unit_path = unit.path

    def set_time_limits(self, limits: Deadlines) -> None:
        """The response and resolution limits of a new handling level, and the reminder
        before them."""
        self.response_due_at = limits.response_due_at
        self.resolution_due_at = limits.resolution_due_at
        self.next_reminder_at = limits.next_reminder_at


class CaseLink(SQLModel, table=True):
    __tablename__ = "case_link"
    __table_args__ = (UniqueConstraint("case_id", "other_case_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    other_case_id: int = Field(foreign_key="cases.id", index=True)
    kind: LinkKind = Field(sa_type=enum_type(LinkKind))
    score: float = 0.0
    created_at: datetime = Field(sa_type=UTCDateTime)


class CaseNumberCounter(SQLModel, table=True):
    """One row a year; incremented inside the case's own transaction."""

    __tablename__ = "case_number_counter"

    year: int = Field(primary_key=True)
    last: int = 0


class CaseCreate(CaseBase):
    """What intake takes: the complaint, its place and its parties.

    A category or priority given by the caller is a person's choice and stands: it is
    locked unless the caller says otherwise (``category_locked: false``). Without a
    category, triage classifies the text (stored as ``other`` until then)."""

    model_config = SQLModelConfig(extra="forbid")

    category: Category = Field(default=Category.OTHER)
    description: str = Field(min_length=2, max_length=4000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    place_code: str | None = Field(default=None, max_length=32)
    parties: list[PartyCreate] = Field(default_factory=list, max_length=200)
    category_locked: bool = False
    priority_locked: bool = False
    confidential: bool = Field(
        default=False, description="不公开: family and marriage disputes are so by default"
    )
    # A walk-in or call written up later: when it was received (limits run from it).
    received_at: clock.Moment | None = None
    # A legal reason to refer the case at once (a crime, a matter before a court or
    # arbitration, an administrative decision); chosen by the worker who records it.
    referral_reason: ReferralReason | None = None

    @field_validator("referral_reason")
    @classmethod
    def _legal_only(cls, value: ReferralReason | None) -> ReferralReason | None:
        if value is not None and not value.at_assignment:
            raise ValueError(
                "只有法定事由（涉嫌犯罪、已诉讼或仲裁、须行政机关处理）可在受理时移交 / only a "
                "legal reason (a crime, a court or arbitration, an administrative decision) "
                "refers a case at intake"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _choices_stand(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("category") is None:
            data.pop("category", None)
        elif "category_locked" not in data:
            data["category_locked"] = True
        if data.get("priority") is None:
            data.pop("priority", None)
        elif "priority_locked" not in data:
            data["priority_locked"] = True
        return data

    @field_validator("description", "address_text")
    @classmethod
    def _clean_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return text_rules.check(value, multiline=info.field_name == "description")


class CasePublic(SQLModel):
    """A case as staff see it (personal data lives on parties, masked by role)."""

    id: int
    number: str
    category: Category
    priority: Priority
    status: CaseStatus
    version: int
    channel: Channel
    description: str
    address_text: str | None
    place_code: str | None = None
    unit_code: str | None = None
    assignee_id: int | None
    escalation_level: int
    is_group: bool
    people_affected: int
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    # 查询码: what the complainant uses to follow the case at /r/{code}.
    tracking_code: str | None = None


def get_case(session: Session, *, case_id: int) -> Case:
    """The case with this id, else :class:`~models.errors.NotFound` (the one loader every
    service and front end uses, so a missing case answers alike everywhere)."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}", f"案件 {case_id} 不存在")
    return case
