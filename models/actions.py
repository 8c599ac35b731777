"""The table of what people do to a case, written once: every front end offers exactly
:func:`allowed` and performs through :func:`run`.

Each row (:class:`Action`) says

- ``name``: the action's name, its REST path (``POST /api/v1/cases/{case}/<name>``) unless
  ``path`` says otherwise, and what ``allowed_actions`` lists;
- ``verb``: the state-machine transition it records (:data:`models.lifecycle.TRANSITIONS`:
  the statuses it may start from, and the ``zh`` label); the web page names its form by it;
- ``body``: the pydantic model of what the person sends (``version`` included: the case
  version they last saw; a stale one answers 409 and changes nothing);
- ``perform``: the domain service call, ``(session, principal, case, body, **extras) ->
  record id`` (``extras``: the path parameters and the file, below);
- ``who``: who may do it, within reach (:func:`by_role`; default: every role that may
  write, i.e. not instructors or volunteers);
- ``guard``: an extra condition on the case beyond the transition's sources, answering the
  reason it is not possible now (or None);
- ``summary``, ``operation``, ``example``: the REST operation as OpenAPI shows it (its
  summary, the name its operation id is made from, and an example body);
- ``path``, ``method``: the REST path below the case when it is not ``name``, with its
  path parameters (``mediators/{staff_id}/recuse``: the id of a row of the case, handed
  to ``perform`` by name), and the method when not POST (``PATCH parties/{party_id}``);
- ``upload``: the action takes a file (multipart ``file``, handed to ``perform`` as
  ``file``, an :class:`Upload`; the body's fields are form fields beside it);
- ``reader``: who must be able to read what the action touches (the case's files: its
  personal data); anyone else is answered as if the case were out of reach (404);
- ``page``: whether the case page has a form for it; ``helpers``: whether a helper who
  reaches the case only as its helper (:func:`models.access.helps_on`) may do it.

A person may do an action now when (:func:`refusal` answers None): the ``reader`` rule
lets them, their role may write, they reach the case in their own right (or the row is
for helpers), ``who`` lets them, the case's status is a source of ``verb``, and ``guard``
passes. Reach is checked first (a case out of reach is 404,
:func:`models.access.find_case`); a refused role is :class:`PermissionDenied` (403); a
case in the wrong state or failing the guard is :class:`StateError` (409). The
transition's own guards (consent before mediation, a satisfaction rating before closing,
...) are still checked by the service.

**Adding an action** is adding one row to :data:`ACTIONS`: write its body model (subclass
:class:`ActionBody`; give each field a ``title`` in Chinese and a ``description`` in
English, which the web form shows as its label), its ``perform`` (call the one domain
service that does it, passing ``expected_version=body.version``), and the row. The REST
route (``api/v1/case_actions.py``) and the web form (``api/web``: a field per body field,
unless a form of its own is written there) come from the row; the parity test
(``tests/api/test_access_parity_api.py``) checks the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session

from models import (
    acceptance,
    attachments,
    clock,
    confidentiality,
    confirmation,
    escalation,
    extensions,
    follow_ups,
    handover,
    helping,
    machine_triage,
    mediating,
    mediators,
    month_problem,
    parties,
    referrals,
    routing,
    workdays,
)
from models.access import (
    NO_EXPORT_ROLES,
    READ_ONLY_ROLES,
    AccessFacts,
    Principal,
    find_case,
    may_export,
    may_see_personal_data,
    may_use_simulator,
    not_found,
    place_path_of,
    reaches,
    reaches_in_own_right,
)
from models.case import Case
from models.contact import ContactCreate, record_contact
from models.enums import (
    CaseStatus,
    Category,
    ConfirmationStatus,
    ConsentMethod,
    HelperRole,
    HelperTaskKind,
    MediatorEnd,
    NotAcceptedReason,
    Priority,
    ReferralOutcome,
    ReferralReason,
    ReferralState,
    ReferralTarget,
    StaffRole,
    TerminationReason,
)
from models.errors import (
    FieldProblem,
    GuardFailed,
    InvalidTransition,
    PermissionDenied,
    ValidationError,
)
from models.follow_up import FollowUpRecord
from models.lifecycle import TRANSITIONS
from models.mediation import AgreementCreate, SessionCreate, clean_text
from models.parties import PartyUpdate
from models.party import PartyCreate
from models.staff import Staff, staff_by_username
from models.unit import Unit

Version = Annotated[
    int | None,
    Field(default=None, ge=1, le=1_000_000_000, description="the case version you last saw"),
]


class ActionBody(BaseModel):
    """What every action carries: the case version the sender last saw."""

    model_config = ConfigDict(extra="forbid")

    version: Version = None


# Free text as people type it: stripped, no control or invisible characters (one rule,
# :func:`models.mediation.clean_text`); ``Text`` must not be empty.
Text = Annotated[str, AfterValidator(clean_text)]
OptionalText = Annotated[str, AfterValidator(partial(clean_text, required=False))]


class ConsentIn(ActionBody):
    party_ids: list[int] | None = Field(
        default=None,
        max_length=200,
        title="作出答复的当事人",
        description="parties who answered; every party whose consent is needed when absent",
    )
    given: bool = Field(
        default=True, title="同意调解", description="false: the parties refuse mediation"
    )
    how: ConsentMethod = Field(default=ConsentMethod.IN_PERSON, title="方式", description="How")
    note: OptionalText = Field(default="", max_length=500, title="备注", description="Note")


class StartIn(ActionBody):
    pass


class ExtendIn(ActionBody):
    until: clock.Day = Field(title="延长至", description="Extend until")
    both_parties_consent: bool = Field(
        title="双方当事人同意延长", description="Both parties agree to the extension"
    )
    how: ConsentMethod = Field(default=ConsentMethod.IN_PERSON, title="方式", description="How")
    note: OptionalText = Field(default="", max_length=500, title="备注", description="Note")


class SessionIn(SessionCreate):
    version: Version = None


class AgreementIn(AgreementCreate):
    version: Version = None


class FailureIn(ActionBody):
    reason: Text = Field(
        min_length=1, max_length=1200, title="调解不成的原因", description="Reason"
    )
    referral: ReferralTarget | None = Field(default=None, title="引导途径", description="Referral")
    termination: TerminationReason = Field(
        default=TerminationReason.NO_AGREEMENT, title="终止调解的情形", description="Termination"
    )


class FollowUpIn(FollowUpRecord):
    version: Version = None


class ContactIn(ContactCreate):
    version: Version = None


class ClassificationIn(ActionBody):
    category: Category | None = Field(default=None, title="类别", description="the category chosen")
    priority: Priority | None = Field(
        default=None, title="紧急程度", description="the priority chosen"
    )

    @model_validator(mode="after")
    def _something(self) -> ClassificationIn:
        if self.category is None and self.priority is None:
            raise ValueError("请填写类别或紧急程度 / give a category or a priority")
        return self


class AssessmentIn(ActionBody):
    category: Category = Field(title="研判确认的类别", description="the category confirmed")
    priority: Priority | None = Field(
        default=None, title="紧急程度", description="the priority, if changed"
    )


class AcceptanceIn(ActionBody):
    accepted: bool = Field(title="受理", description="Accepted")
    reason: NotAcceptedReason | None = Field(
        default=None,
        title="不予受理的理由",
        description="why not accepted (before a court, arbitration ...)",
    )
    route: ReferralTarget | None = Field(
        default=None,
        title="告知当事人的途径",
        description="the route the parties are told; default from the reason",
    )
    note: OptionalText = Field(default="", max_length=1000, title="备注", description="Note")


class MediatorsIn(ActionBody):
    staff_ids: list[int] = Field(
        min_length=1, max_length=3, title="调解员", description="staff ids of the mediators"
    )


# A body field the generated web form leaves out (a person is named on the page by the
# user name they sign in with; scripts may still give the internal id), and one the form
# marks required although the body does not (it is one of two ways to say the same thing).
NOT_ON_FORM: dict[str, Any] = {"form": False}
REQUIRED_ON_FORM: dict[str, Any] = {"form_required": True}
Username = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]


class ReassignIn(ActionBody):
    assignee: Username | None = Field(
        default=None,
        title="改派给（用户名）",
        description="Username of the new assignee",
        json_schema_extra=REQUIRED_ON_FORM,
    )
    assignee_id: int | None = Field(
        default=None,
        ge=1,
        le=2_000_000_000,
        title="改派给（工作人员编号）",
        description="or the new assignee's staff id",
        json_schema_extra=NOT_ON_FORM,
    )


class ReasonIn(ActionBody):
    reason: Text = Field(min_length=1, max_length=2000, title="原因", description="Reason")


class EscalateIn(ActionBody):
    reason: Text = Field(min_length=1, max_length=500, title="上报原因", description="Reason")


class ReferIn(ActionBody):
    target: ReferralTarget = Field(title="移交去向", description="Refer to")
    grounds: ReferralReason | None = Field(
        default=None,
        title="移交事由（可不填）",
        description="why the case leaves people's mediation; else implied by target",
    )
    agency_code: str | None = Field(
        default=None,
        max_length=32,
        title="部门编码（可不填）",
        description="Agency code (optional)",
    )
    reason: Text = Field(min_length=1, max_length=500, title="移交原因", description="Reason")


class ResolveIn(ActionBody):
    resolution: Text = Field(
        min_length=1, max_length=2000, title="化解情况", description="How it was settled"
    )


class MergeIn(ActionBody):
    into: str = Field(
        min_length=1,
        max_length=32,
        title="并入案件（编号）",
        description="id or number of the case kept",
    )


class ReferralOutcomeIn(ActionBody):
    action_taken: Text = Field(
        min_length=1, max_length=2000, title="办理情况", description="What the unit did"
    )
    outcome: ReferralOutcome = Field(title="办理结果", description="Outcome")


class ExtensionIn(ActionBody):
    until: clock.Day = Field(title="延长至（日期）", description="Extend the limit until (date)")
    reason: Text = Field(min_length=1, max_length=500, title="延期理由", description="Reason")


class ExtensionDecisionIn(ActionBody):
    grant: bool = Field(default=False, title="批准延期", description="Grant the extension")
    note: str | None = Field(
        default=None, max_length=500, title="审批意见（不批准时必填）", description="Note"
    )


class HelperIn(ActionBody):
    username: Username | None = Field(
        default=None,
        title="协办人员（用户名）",
        description="Username of the helper",
        json_schema_extra=REQUIRED_ON_FORM,
    )
    staff_id: int | None = Field(
        default=None,
        ge=1,
        le=2_000_000_000,
        title="协办人员（工作人员编号）",
        description="or the helper's staff id",
        json_schema_extra=NOT_ON_FORM,
    )
    role: HelperRole = Field(title="协办内容", description="What they help with")


class HelperTaskIn(ActionBody):
    kind: HelperTaskKind = Field(title="任务", description="Task")
    note: Text = Field(min_length=1, max_length=2000, title="任务情况", description="What happened")


class PartyIn(PartyCreate):
    version: Version = None


class PartyPatch(PartyUpdate):
    version: Version = None


class MediatorLeaves(ActionBody):
    note: Text = Field(min_length=1, max_length=500, description="why")
    replacement_id: int | None = Field(default=None, ge=1, le=2_000_000_000)


class ReplaceIn(MediatorLeaves):
    at_party_request: bool = Field(
        default=True, description="a party asked for another mediator (else the committee)"
    )


class ConfidentialIn(ActionBody):
    reason: Text = Field(min_length=1, max_length=500, description="who asked, and why")


class ConfirmationIn(ActionBody):
    status: ConfirmationStatus
    on: clock.Day
    court_name: OptionalText = Field(default="", max_length=200)
    court_reference: OptionalText = Field(default="", max_length=100, description="案号")


class AttachmentIn(BaseModel):
    """The form fields sent with an upload (the file itself is :class:`Upload`; an
    upload checks no version: adding a file does not depend on what the sender saw)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(default="scan", max_length=20, description="scan, photo or agreement_scan")


@dataclass(frozen=True)
class Upload:
    """A file sent with an action (multipart ``file``): its name as sent, and its bytes."""

    filename: str
    content: bytes


# --- who may, and when --------------------------------------------------------------

Who = Callable[[Principal, Case], bool]
Guard = Callable[[Case], str | None]
Reader = Callable[[Session, Principal, Case], bool]
# ``(session, principal, case, body, **extras) -> record id``; ``extras``: the row's path
# parameters by name (ints) and, for an upload, ``file`` (:class:`Upload`).
Perform = Callable[..., int | None]

WRITERS = frozenset(StaffRole) - READ_ONLY_ROLES
MEDIATION = frozenset({StaffRole.MEDIATOR, StaffRole.SUPERVISOR, StaffRole.ADMIN})
PARAM = re.compile(r"{([a-z_]+)}")


def by_role(roles: frozenset[StaffRole], *, or_assignee: bool = False) -> Who:
    """People with one of ``roles`` (and, with ``or_assignee``, the case's assignee
    whatever their role)."""

    def who(principal: Principal, case: Case) -> bool:
        if principal.role in roles:
            return True
        mine = principal.staff_id is not None and principal.staff_id == case.assignee_id
        return or_assignee and mine

    return who


ANY_WRITER: Who = by_role(WRITERS)
COMMITTEE: Who = by_role(MEDIATION, or_assignee=True)  # mediation is the committee's


HELPERS = frozenset({StaffRole.INSTRUCTOR, StaffRole.VOLUNTEER, StaffRole.PARTY_MEMBER})
DECIDERS = frozenset({StaffRole.SUPERVISOR, StaffRole.ADMIN})


def in_handling_unit(principal: Principal, case: Case) -> bool:
    """The case's assignee, or a writer of the unit handling it (the receiving unit of a
    referral, the unit a wrong assignment reached)."""
    mine = principal.staff_id is not None and principal.staff_id == case.assignee_id
    return mine or (principal.role in WRITERS and principal.covers(case.unit_path))


def first_contact(principal: Principal, case: Case) -> bool:
    """The worker holding the case (it goes to the committee), or a supervisor."""
    mine = principal.staff_id is not None and principal.staff_id == case.assignee_id
    return mine or principal.role in (StaffRole.SUPERVISOR, StaffRole.ADMIN)


def may_help(principal: Principal, case: Case) -> bool:
    """Helpers added to the case record their own tasks; the handler may record one on a
    helper's behalf."""
    me = principal.staff_id
    return me is not None and (me == case.assignee_id or me in (case.helper_ids or []))


def _referral_pending(case: Case) -> str | None:
    if case.referral_state == ReferralState.PENDING:
        return None
    return "no referral waits to be signed for"


def _referral_signed(case: Case) -> str | None:
    return None if case.referral_state == ReferralState.SIGNED else "the referral is not signed for"


def _may_extend(case: Case) -> str | None:
    if case.extension_asked_until is not None:
        return "an extension is waiting for a decision"
    due = case.resolution_due_at
    if due is None or clock.ensure_utc(due) <= clock.now():
        return "an extension is asked for before the deadline"
    return None


def _extension_pending(case: Case) -> str | None:
    return None if case.extension_asked_until is not None else "no extension is waiting"


def contacts_parties(principal: Principal, case: Case) -> bool:
    """Those whose work is to contact the parties (they see the contact):
    :func:`models.access.may_see_personal_data` (return visitors included; a return
    visitor does nothing else, :func:`refusal`)."""
    return may_see_personal_data(principal, case)


def _consent_pending(case: Case) -> str | None:
    return "every party has consented already" if case.consent_at is not None else None


def _not_contacted(case: Case) -> str | None:
    # Later calls go into the session minutes; the first contact is what the rate counts.
    return "the first contact is recorded already" if case.first_response_at is not None else None


def _held(case: Case) -> str | None:
    return None if case.held_for_assessment else "the case is not waiting for assessment"


def _not_held(case: Case) -> str | None:
    # A held case is confirmed (研判, the assessment action); any other is reclassified.
    return "the case is waiting for assessment (研判)" if case.held_for_assessment else None


def _not_reviewed(case: Case) -> str | None:
    return "acceptance was reviewed already" if case.accepted_at is not None else None


def _not_mediated(case: Case) -> str | None:
    # Entering follow-up after an agreement or a failure is the workflow's step; by hand
    # only "settled without mediation", from an assigned case.
    if case.status == CaseStatus.ASSIGNED:
        return None
    return "only an assigned case is settled directly"


@dataclass(frozen=True)
class Action:
    """One row of the table (see the module docstring)."""

    name: str
    verb: str
    body: type[ActionBody] | type[BaseModel]
    perform: Perform
    summary: str
    operation: str
    example: dict[str, Any]
    who: Who = ANY_WRITER
    guard: Guard | None = None
    path: str = ""  # the REST path below the case when it is not ``name``
    method: str = "POST"
    upload: bool = False  # multipart: a ``file`` (an :class:`Upload`) and the body as fields
    status: int = 200  # 201: the action creates a resource of its own (an attachment)
    reader: Reader | None = None  # who must read what it touches; anyone else gets 404
    page: bool = True  # the case page has a form for it (the upload: a form of its own)
    helpers: bool = False  # a helper who reaches the case only as its helper may do it

    @property
    def zh(self) -> str:
        return TRANSITIONS[self.verb].zh

    @property
    def rest_path(self) -> str:
        return self.path or self.name

    @property
    def params(self) -> tuple[str, ...]:
        """The path parameters (``{staff_id}`` ...), each the id of a row of the case."""
        return tuple(PARAM.findall(self.rest_path))

    def extras(self) -> frozenset[str]:
        """What :func:`run` takes beside the body for this row."""
        return frozenset(self.params) | ({"file"} if self.upload else frozenset())


# --- what each action does ------------------------------------------------------------


def _id(case: Case) -> int:
    assert case.id is not None
    return case.id


def _calling(service: Callable[..., Any], *fields: str, row: bool = False) -> Perform:
    """An action that hands ``fields`` of its body to ``service`` as they are (with the
    case, the person and the version); with ``row``, answers the id of the row written."""

    def perform(s: Session, p: Principal, case: Case, body: Any) -> int | None:
        given = {f: getattr(body, f) for f in fields}
        done = service(s, case_id=_id(case), actor=p, expected_version=body.version, **given)
        return cast(int | None, done.id) if row else None

    return perform


def _recording(service: Callable[..., Any], record: type[BaseModel]) -> Perform:
    """An action that records one row (a session, an agreement, a visit, a contact):
    ``service`` takes the body, less its version, as ``record``; answers the row's id."""

    def perform(s: Session, p: Principal, case: Case, body: Any) -> int | None:
        data = record.model_validate(body.model_dump(exclude={"version"}))
        row = service(s, case_id=_id(case), data=data, actor=p, expected_version=body.version)
        return cast(int | None, row.id)

    return perform


_consent = _calling(mediating.record_consent, "party_ids", "given", "how", "note")


_start = _calling(mediating.start_mediation)


_extend = _calling(mediating.extend_mediation, "until", "both_parties_consent", "how", "note")


_session = _recording(mediating.record_session, SessionCreate)


_agreement = _recording(mediating.sign_agreement, AgreementCreate)


_failure = _calling(mediating.fail_mediation, "reason", "referral", "termination")


_follow_up = _recording(follow_ups.record_follow_up, FollowUpRecord)


_contact = _recording(record_contact, ContactCreate)


def _classify(s: Session, p: Principal, case: Case, body: ClassificationIn) -> None:
    machine_triage.set_classification(
        s,
        case_id=_id(case),
        actor=p,
        category=body.category,
        priority=body.priority,
        expected_version=body.version,
    )


_accept = _calling(acceptance.review_acceptance, "accepted", "reason", "route", "note", row=True)


def _name_mediators(s: Session, p: Principal, case: Case, body: MediatorsIn) -> None:
    mediators.name_mediators(
        s, case=case, staff_ids=body.staff_ids, actor=p, expected_version=body.version
    )


def named_staff(s: Session, field: str, username: str | None, staff_id: int | None) -> Staff:
    """The staff member a body names, by user name (as people know each other) or by
    internal id; a 422 on ``field`` naming what was given when there is no such person."""
    if username is None and staff_id is None:
        raise ValidationError(
            f"{field}: give a username",
            f"{field}：请填写用户名",
            problems=[FieldProblem(field, "必填：请填写用户名", "required: give a username")],
        )
    staff = staff_by_username(s, username) if username is not None else s.get(Staff, staff_id)
    if staff is None:
        raise unknown_staff(field, username if username is not None else f"#{staff_id}")
    return staff


def unknown_staff(field: str, given: str) -> ValidationError:
    zh, en = f"没有用户名为 {given} 的工作人员", f"no staff member with username {given!r}"
    return ValidationError(
        f"{field}: {en}", f"{field}：{zh}", problems=[FieldProblem(field, zh, en)]
    )


def _reassign(s: Session, p: Principal, case: Case, body: ReassignIn) -> None:
    staff = named_staff(s, "assignee", body.assignee, body.assignee_id)
    unit = s.get(Unit, staff.unit_id) if staff.unit_id else None
    if staff.id is None or unit is None or not p.covers(unit.path):
        # Answered as if unknown: whether someone outside your reach exists is not yours.
        raise unknown_staff("assignee", body.assignee or f"#{body.assignee_id}")
    routing.reassign_case(
        s,
        case_id=_id(case),
        assignee_id=staff.id,
        actor=p,
        expected_version=body.version or case.version,
    )


def _escalate(s: Session, p: Principal, case: Case, body: EscalateIn) -> None:
    escalation.escalate_case(
        s,
        case_id=_id(case),
        now=clock.now(),
        actor=p,
        expected_version=body.version,
        by_hand=True,
        reason=body.reason,
    )


def _refer(s: Session, p: Principal, case: Case, body: ReferIn) -> None:
    routing.refer_case(
        s,
        case_id=_id(case),
        target=body.target,
        agency_code=body.agency_code,
        reason=body.reason,
        actor=p,
        expected_version=body.version or case.version,
        grounds=body.grounds,
    )


_withdraw = _calling(mediating.withdraw_case, "reason")


_reopen = _calling(follow_ups.reopen_case, "reason")


_resolve = _calling(mediating.resolve_directly, "resolution")


def _merge(s: Session, p: Principal, case: Case, body: MergeIn) -> None:
    target = find_case(s, p, body.into)
    assert target.id is not None
    mediating.merge_case(
        s, case_id=_id(case), into_case_id=target.id, actor=p, expected_version=body.version
    )


_committee = _calling(handover.hand_to_committee)


_send_back = _calling(handover.send_back_assignment, "reason")


_sign_referral = _calling(referrals.sign_referral, row=True)


_return_referral = _calling(referrals.return_referral, "reason", row=True)


_referral_outcome = _calling(referrals.record_referral_outcome, "action_taken", "outcome", row=True)


def _ask_extension(s: Session, p: Principal, case: Case, body: ExtensionIn) -> int | None:
    row = extensions.request_extension(
        s,
        case_id=_id(case),
        until=workdays.end_of_day(workdays.at_local(body.until, time(12, 0))),
        reason=body.reason,
        actor=p,
        expected_version=body.version,
    )
    return row.id


_decide_extension = _calling(extensions.decide_extension, "grant", "note", row=True)


def _add_helper(s: Session, p: Principal, case: Case, body: HelperIn) -> int | None:
    staff = named_staff(s, "username", body.username, body.staff_id)
    assert staff.id is not None
    row = helping.add_helper(
        s,
        case_id=_id(case),
        staff_id=staff.id,
        role=body.role,
        actor=p,
        expected_version=body.version,
    )
    return row.id


_helper_task = _calling(helping.record_helper_task, "kind", "note", row=True)


def _add_party(s: Session, p: Principal, case: Case, body: PartyIn) -> int | None:
    data = PartyCreate.model_validate(body.model_dump(exclude={"version"}))
    row = parties.add_party(s, case=case, data=data, actor=p, expected_version=body.version)
    return row.id


def _edit_party(
    s: Session, p: Principal, case: Case, body: PartyPatch, *, party_id: int
) -> int | None:
    changes = PartyUpdate.model_validate(body.model_dump(exclude={"version"}, exclude_unset=True))
    row = parties.edit_party(
        s, case=case, party_id=party_id, changes=changes, actor=p, expected_version=body.version
    )
    return row.id


def _leaving(why: Callable[[MediatorLeaves], MediatorEnd]) -> Perform:
    """A named mediator stops serving (``staff_id`` in the path): recused, or replaced."""

    def perform(
        s: Session, p: Principal, case: Case, body: MediatorLeaves, *, staff_id: int
    ) -> None:
        mediators.end_service(
            s,
            case=case,
            staff_id=staff_id,
            why=why(body),
            note=body.note,
            replacement_id=body.replacement_id,
            actor=p,
            expected_version=body.version,
        )

    return perform


_recuse = _leaving(lambda _body: MediatorEnd.RECUSED)


_replace = _leaving(
    lambda body: (
        MediatorEnd.PARTY_REQUEST
        if isinstance(body, ReplaceIn) and body.at_party_request
        else MediatorEnd.REPLACED
    )
)


_confidential = _calling(confidentiality.mark_confidential, "reason")


def _court_confirmation(s: Session, p: Principal, case: Case, body: ConfirmationIn) -> int | None:
    fields = body.model_dump(exclude={"version"})
    row = confirmation.record_outcome(
        s, case=case, actor=p, expected_version=body.version, **fields
    )
    return row.id


def _attach(
    s: Session, p: Principal, case: Case, body: AttachmentIn, *, file: Upload
) -> int | None:
    row = attachments.add_attachment(
        s, case=case, filename=file.filename, content=file.content, kind=body.kind, actor=p
    )
    return row.id


# --- who reads a case (rules that need the case's tables) ----------------------------


def is_named_mediator(session: Session, principal: Principal, case: Case) -> bool:
    assert case.id is not None
    return principal.staff_id is not None and principal.staff_id in mediators.serving_ids(
        session, case_id=case.id
    )


def details_visible(session: Session, principal: Principal, case: Case) -> bool:
    """Whether ``principal`` reads the case's details: always, unless it is confidential
    (不公开) and they are outside its unit and not one of its named mediators."""
    if not case.confidential:
        return True
    return _details(principal, case, named=is_named_mediator(session, principal, case))


def details_visible_ids(session: Session, principal: Principal, cases: Sequence[Case]) -> set[int]:
    """:func:`details_visible` for many cases at once (lists): the ids of those whose
    details ``principal`` reads, with at most one query (the named mediators of the
    confidential ones) whatever the number of cases."""
    secret = [c.id for c in cases if c.confidential and c.id is not None]
    named = (
        mediators.serving_on(session, staff_id=principal.staff_id, case_ids=secret)
        if secret and principal.staff_id is not None
        else set()
    )
    return {c.id for c in cases if c.id is not None and _details(principal, c, named=c.id in named)}


def _details(principal: Principal, case: AccessFacts, *, named: bool) -> bool:
    return not case.confidential or confidentiality.staff_may_see_details(
        case, staff_id=principal.staff_id, unit_id=principal.unit_id, is_named_mediator=named
    )


def _personal(principal: Principal, case: AccessFacts, *, named: bool) -> bool:
    return _details(principal, case, named=named) and (
        may_see_personal_data(principal, case) or named
    )


def personal_data_visible(session: Session, principal: Principal, case: Case) -> bool:
    """Personal data in clear: :func:`models.access.may_see_personal_data`, and the
    mediators named on the case (they mediate it, wherever their unit); never past
    :func:`details_visible`."""
    return _personal(principal, case, named=is_named_mediator(session, principal, case))


def personal_data_visible_ids(
    session: Session, principal: Principal, cases: Sequence[AccessFacts]
) -> set[int]:
    """:func:`personal_data_visible` for many cases at once (lists, exports): the ids of
    those whose personal data ``principal`` reads, with one query for the named
    mediators whatever the number of cases. Cases, or rows of
    :data:`models.access.ACCESS_COLUMNS`."""
    ids = [c.id for c in cases if c.id is not None]
    named = (
        mediators.serving_on(session, staff_id=principal.staff_id, case_ids=ids)
        if principal.staff_id is not None
        else set()
    )
    return {
        c.id for c in cases if c.id is not None and _personal(principal, c, named=c.id in named)
    }


# --- the table ------------------------------------------------------------------------

_REASON = {"version": 3, "reason": "当事人已自行和解"}

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action(
            "acceptance", "acceptance_reviewed", AcceptanceIn, _accept, "受理审查 Review",
            "review", {"version": 3, "accepted": True, "note": ""},
            who=COMMITTEE, guard=_not_reviewed,
        ),
        Action(
            "mediators", "mediators_named", MediatorsIn, _name_mediators,
            "指定调解员 Name mediators", "name", {"version": 4, "staff_ids": [12]},
            who=COMMITTEE,
        ),
        Action(
            "consent", "consent_recorded", ConsentIn, _consent, "记录调解同意 Record consent",
            "consent", {"version": 3, "party_ids": [1, 2]},
            who=COMMITTEE, guard=_consent_pending,
        ),
        Action(
            "mediation/start", "mediation_started", StartIn, _start, "开始调解 Start mediation",
            "start", {"version": 4}, who=COMMITTEE,
        ),
        Action(
            "mediation/extend", "mediation_extended", ExtendIn, _extend,
            "延长调解期限 Extend mediation", "extend",
            {"version": 6, "until": "2027-01-31", "both_parties_consent": True},
            who=COMMITTEE,
        ),
        Action(
            "sessions", "session_recorded", SessionIn, _session, "记录调解笔录 Record a session",
            "add_session",
            {
                "version": 5,
                "held_at": "2026-11-30T10:00:00+08:00",
                "place": "桂花社区人民调解室",
                "participants": "双方当事人、调解员",
                "minutes": "双方同意分三期支付拖欠工资。",
            },
            who=COMMITTEE,
        ),
        Action(
            "agreement", "agreement_signed", AgreementIn, _agreement,
            "签订调解协议 Sign an agreement", "agreement",
            {
                "version": 6,
                "summary": "厂方分三期支付拖欠工资",
                "terms": [{"text": "支付第一期工资", "due_on": "2026-12-31"}],
            },
            who=COMMITTEE,
        ),
        Action(
            "failure", "mediation_failed", FailureIn, _failure,
            "调解不成（终止调解） Record a failed mediation", "failure",
            {"version": 6, "reason": "厂方拒绝支付", "referral": "arbitration"},
            who=COMMITTEE,
        ),
        Action(
            "follow-ups", "follow_up_recorded", FollowUpIn, _follow_up,
            "记录回访 Record a return visit", "follow_up",
            {
                "version": 8,
                "outcome": "carried_out",
                "resolved": "resolved",
                "satisfied": "satisfied",
                "channel": "phone",
                "notes": "电话回访申请人，工资已按协议支付",
            },
            who=contacts_parties,
        ),
        Action(
            "contact", "contacted", ContactIn, _contact,
            "首次联系 Record contact with the complainant", "contact",
            {"version": 3, "method": "phone", "note": "电话联系申请人，约定周三上门"},
            who=contacts_parties, guard=_not_contacted,
        ),
        Action(
            "classification", "reclassified", ClassificationIn, _classify,
            "改类 Set category or priority (a person's choice stands)", "classification",
            {"version": 3, "category": "labour"}, guard=_not_held,
        ),
        Action(
            "assessment", "assessed", AssessmentIn, _classify,
            "研判确认 Confirm the category of a case held for assessment; it is then routed",
            "assessment", {"version": 2, "category": "labour", "priority": "high"},
            guard=_held,
        ),
        Action(
            "reassign", "assigned", ReassignIn, _reassign, "改派 Reassign", "reassign",
            {"version": 3, "assignee": "mediator1-d01-s01-c01"},
        ),
        Action(
            "escalate", "escalated", EscalateIn, _escalate, "上报 Escalate by hand",
            "escalate", {"version": 3, "reason": "涉及多个部门，需街道协调"},
        ),
        Action(
            "refer", "referred", ReferIn, _refer, "移交 Refer", "refer",
            {"version": 3, "target": "court", "reason": "当事人已起诉"},
        ),
        Action(
            "withdraw", "withdrawn", ReasonIn, _withdraw, "撤回 Withdraw", "withdraw",
            _REASON,
        ),
        Action(
            "reopen", "reopened", ReasonIn, _reopen, "重新办理 Reopen", "reopen",
            {"version": 9, "reason": "回访时当事人表示协议未履行"},
        ),
        Action(
            "resolve", "follow_up_due", ResolveIn, _resolve,
            "直接化解 Resolve without mediation", "resolve",
            {"version": 3, "resolution": "当场答复政策咨询，当事人表示满意"},
            guard=_not_mediated,
        ),
        Action(
            "merge", "merged", MergeIn, _merge, "合并 Merge into another case", "merge",
            {"version": 2, "into": "JX-2026-000123"},
        ),
        Action(
            "committee", "handed_to_committee", ActionBody, _committee,
            "转人民调解委员会 Hand to the mediation committee", "to_committee", {"version": 3},
            who=first_contact,
        ),
        Action(
            "send-back", "assignment_returned", ReasonIn, _send_back,
            "退单 Send a wrong assignment back", "send_back",
            {"version": 3, "reason": "地址不属本网格"}, who=in_handling_unit,
        ),
        Action(
            "referral/sign", "referral_signed", ActionBody, _sign_referral,
            "签收 Sign for a referral", "sign_referral", {"version": 4},
            who=in_handling_unit, guard=_referral_pending,
        ),
        Action(
            "referral/return", "referral_returned", ReasonIn, _return_referral,
            "退单 Send a referral back", "return_referral",
            {"version": 4, "reason": "不属本部门职责"}, who=in_handling_unit,
            guard=_referral_pending,
        ),
        Action(
            "referral/outcome", "referral_concluded", ReferralOutcomeIn, _referral_outcome,
            "反馈办理结果 Record the referral's outcome", "referral_outcome",
            {"version": 5, "action_taken": "责令补发工资，已补发", "outcome": "resolved"},
            who=in_handling_unit, guard=_referral_signed,
        ),
        Action(
            "extension", "extension_requested", ExtensionIn, _ask_extension,
            "申请延期 Ask for an extension", "ask_extension",
            {"version": 3, "until": "2026-12-31", "reason": "当事人外出务工"},
            who=in_handling_unit, guard=_may_extend,
        ),
        Action(
            "extension/decide", "extension_decided", ExtensionDecisionIn, _decide_extension,
            "延期审批 Decide an extension", "decide_extension",
            {"version": 4, "grant": True}, who=by_role(DECIDERS),
            guard=_extension_pending,
        ),
        Action(
            "helpers", "helper_added", HelperIn, _add_helper, "增加协办人员 Add a helper",
            "add_helper", {"version": 3, "username": "volunteer-d01-s01-c01", "role": "visit"},
        ),
        Action(
            "helper-tasks", "helper_task_recorded", HelperTaskIn, _helper_task,
            "记录协办任务 Record a helper's task", "helper_task",
            {"version": 4, "kind": "visit", "note": "上门走访，当事人情绪稳定"}, who=may_help,
            helpers=True,
        ),
        Action(
            "parties", "party_added", PartyIn, _add_party, "增加当事人 Add a party",
            "add_party", {"version": 3, "side": "respondent", "kind": "person", "name": "李四"},
            page=False,
        ),
        Action(
            "parties/edit", "party_edited", PartyPatch, _edit_party, "修改当事人 Edit a party",
            "edit_party", {"version": 4, "address": "桂花社区3栋2单元"},
            path="parties/{party_id}", method="PATCH", page=False,
        ),
        Action(
            "mediators/recuse", "mediator_recused", MediatorLeaves, _recuse,
            "调解员回避 A mediator recuses (conflict of interest)", "recuse",
            {"version": 5, "note": "调解员与申请人系近亲属", "replacement_id": 13},
            who=COMMITTEE, path="mediators/{staff_id}/recuse", page=False,
        ),
        Action(
            "mediators/replace", "mediator_replaced", ReplaceIn, _replace,
            "更换调解员 Replace a mediator", "replace",
            {"version": 5, "note": "当事人申请更换", "replacement_id": 13,
             "at_party_request": True},
            who=COMMITTEE, path="mediators/{staff_id}/replace", page=False,
        ),
        Action(
            "confidential", "marked_confidential", ConfidentialIn, _confidential,
            "设为不公开 Mark confidential", "mark_confidential",
            {"version": 3, "reason": "申请人要求不公开（涉及家庭隐私）"}, page=False,
        ),
        Action(
            "court-confirmation", "court_confirmation_recorded", ConfirmationIn,
            _court_confirmation, "记录司法确认 Record the court confirmation",
            "court_confirmation",
            {"version": 8, "status": "confirmed", "on": "2026-12-20", "court_name": "某区人民法院"},
            who=COMMITTEE, page=False,
        ),
        Action(
            "attachments", "attachment_added", AttachmentIn, _attach,
            "上传附件 Upload a scan or photo (PDF, JPEG, PNG)", "upload", {"kind": "scan"},
            upload=True, status=201, reader=personal_data_visible,
        ),
    )
}  # fmt: skip

BY_VERB: dict[str, Action] = {a.verb: a for a in ACTIONS.values()}


# --- what a role may do beyond a case ---------------------------------------------------


class Duty(StrEnum):
    """Work a role may do that is not an action on one case (the pages' menus, buttons
    and the pages themselves ask :func:`role_may`)."""

    RECORD = "record"  # 登记案件、办理案件 record complaints and work on cases
    EXPORT = "export"  # 导出案件列表 export the case list
    REPORT = "report"  # 下载月报 the monthly report
    ADMINISTER = "administer"  # 系统管理 staff, units, time limits
    SIMULATE = "simulate"  # 政策模拟 policy simulation
    PROBLEM = "problem"  # 确定每月一题 set the problem of the month


ROLE_DUTIES: dict[Duty, frozenset[StaffRole]] = {
    Duty.RECORD: WRITERS,
    # Volunteers and Party members help on a case; a list to take away is not theirs.
    Duty.EXPORT: frozenset(StaffRole) - NO_EXPORT_ROLES,  # models.access.may_export
    Duty.REPORT: DECIDERS,
    Duty.ADMINISTER: frozenset({StaffRole.ADMIN}),
    Duty.SIMULATE: DECIDERS,
    Duty.PROBLEM: month_problem.DECIDERS,  # the rule models.month_problem enforces
}


def role_may(principal: Principal | None, duty: Duty | str) -> bool:
    """Whether ``principal``'s role may do ``duty``: the one answer for every page (the
    actions on a case are :func:`allowed`)."""
    if principal is None or not principal.is_staff or principal.role is None:
        return False
    if duty == Duty.SIMULATE:
        return may_use_simulator(principal)
    if duty == Duty.EXPORT:
        return may_export(principal)
    return principal.role in ROLE_DUTIES[Duty(duty)]


# --- asking and doing -------------------------------------------------------------------


def refusal(session: Session, principal: Principal, case: Case, action: Action) -> Exception | None:
    """Why ``principal`` may not do ``action`` on ``case`` now (None: they may). Reach is
    the caller's to check first; a row's ``reader`` rule answers like reach (404)."""
    return _refusal(session, principal, case, action, place_path_of(session, case))


def _refusal(
    session: Session, principal: Principal, case: Case, action: Action, place_path: str | None
) -> Exception | None:
    if action.reader is not None and not action.reader(session, principal, case):
        return not_found(case.number)
    transition = TRANSITIONS[action.verb]
    visitor_only = principal.role == StaffRole.RETURN_VISITOR and action.name != "follow-ups"
    # Helpers (read-only otherwise) record their own tasks on the cases they help with.
    writes = principal.can_write or (
        action.verb == "helper_task_recorded" and principal.role in HELPERS
    )
    # A helper lent from outside the area reaches the case to help, and only for that.
    lent = not action.helpers and not reaches_in_own_right(principal, case, place_path=place_path)
    if not writes or visitor_only or lent or not action.who(principal, case):
        role = principal.role.value if principal.role else principal.kind
        return PermissionDenied(
            f"the {role} role may not {action.name} this case",
            f"您的角色不能执行「{action.zh}」",
        )
    if case.status not in transition.sources or (
        transition.roles and "staff" not in transition.roles
    ):
        return InvalidTransition(
            f"cannot {action.name} a case that is {case.status.value}",
            f"案件当前状态为「{case.status.zh}」，不能执行「{action.zh}」。",
        )
    reason = action.guard(case) if action.guard is not None else None
    if reason is not None:
        return GuardFailed(f"cannot {action.name}: {reason}", f"不能执行「{action.zh}」：{reason}")
    return None


def allowed(session: Session, principal: Principal, case: Case) -> list[Action]:
    """What ``principal`` may do to ``case`` now, in table order (the place's path read
    once, not once per row of the table)."""
    path = place_path_of(session, case)
    return [a for a in ACTIONS.values() if _refusal(session, principal, case, a, path) is None]


def allowed_names(session: Session, principal: Principal, case: Case) -> list[str]:
    """:func:`allowed`, by name (what the REST answers list)."""
    return [a.name for a in allowed(session, principal, case)]


def check(session: Session, principal: Principal, case: Case, name: str) -> None:
    """Raise what :func:`run` would before performing ``name`` (404, 403, 409)."""
    action = ACTIONS.get(name)
    if action is None:
        raise not_found(f"{case.number}/{name}")
    if not reaches(principal, case, place_path=place_path_of(session, case)):
        raise not_found(case.number)
    problem = refusal(session, principal, case, action)
    if problem is not None:
        raise problem


def run(
    session: Session, principal: Principal, case: Case, name: str, body: BaseModel, **extras: Any
) -> int | None:
    """Do action ``name`` on ``case`` with ``body`` (of the action's body model) and the
    row's ``extras`` (its path parameters by name; ``file``, an :class:`Upload`, for an
    upload): 404 out of reach, 403 not for this person, 409 not now or stale; else the
    service's record id. Flushes; the caller commits."""
    action = ACTIONS.get(name)
    if action is None or not isinstance(body, action.body) or set(extras) != action.extras():
        raise not_found(f"{case.number}/{name}")
    check(session, principal, case, name)
    record_id = action.perform(session, principal, case, body, **extras)
    session.flush()
    return record_id


__all__ = [
    "ACTIONS",
    "BY_VERB",
    "Action",
    "ActionBody",
    "Duty",
    "Upload",
    "allowed",
    "allowed_names",
    "by_role",
    "refusal",
    "role_may",
    "run",
]
