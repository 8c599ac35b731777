"""Staff REST: actions on a case (``POST /api/v1/cases/{case}/<action>``).

Every body carries ``version`` (or send ``If-Match: <version>``): the case version the
caller last saw. A stale one answers 409 and changes nothing. Unknown or privileged
fields (status, unit, assignee, number, created_at ...) answer 422. Actions honour
``Idempotency-Key`` like every creating POST. See :mod:`api.v1.actions` for who may do
what.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session

from api.deps import Staff as StaffP
from api.security import Forbidden, Principal
from api.v1.actions import allowed_actions, may_act
from api.v1.common import case_public, expected_version, load_case, run_write
from models import clock, escalation, follow_ups, machine_triage, mediating, routing
from models.case import Case, CasePublic
from models.contact import ContactCreate, record_contact
from models.enums import (
    Category,
    ConsentMethod,
    Priority,
    ReferralReason,
    ReferralTarget,
    TerminationReason,
)
from models.errors import GuardFailed, ValidationError
from models.follow_up import FollowUpRecord
from models.mediation import AgreementCreate, SessionCreate, clean_text
from models.staff import Staff as StaffRow
from models.unit import Unit

router = APIRouter(prefix="/cases/{case_ref}", tags=["case actions 办理"])

CaseRef = Annotated[str, Path(max_length=32, description="case id or number")]
IdemKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="retry-safe key"),
]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=20, description="case version")]
Version = Annotated[
    int | None,
    Field(default=None, ge=1, le=1_000_000_000, description="the case version you last saw"),
]

RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case, or out of reach"},
    409: {"description": "Stale version, or not allowed in the case's state"},
    428: {"description": "No version sent"},
}


class ActionAnswer(BaseModel):
    case: CasePublic
    allowed_actions: list[str]
    record_id: int | None = None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Version = None


def _reason(value: str) -> str:
    return clean_text(value)


class ConsentIn(_Body):
    party_ids: list[int] | None = Field(
        default=None,
        max_length=200,
        description="parties who answered; every party whose consent is needed when absent",
    )
    given: bool = Field(default=True, description="false: the parties refuse mediation")
    how: ConsentMethod = ConsentMethod.IN_PERSON
    note: str = Field(default="", max_length=500)

    _n = field_validator("note")(classmethod(lambda cls, v: clean_text(v, required=False)))


class StartIn(_Body):
    pass


class ExtendIn(_Body):
    until: date
    both_parties_consent: bool
    how: ConsentMethod = ConsentMethod.IN_PERSON
    note: str = Field(default="", max_length=500)

    _n = field_validator("note")(classmethod(lambda cls, v: clean_text(v, required=False)))


class SessionIn(SessionCreate):
    version: Version = None


class AgreementIn(AgreementCreate):
    version: Version = None


class FailureIn(_Body):
    reason: str = Field(min_length=1, max_length=1200)
    referral: ReferralTarget | None = None
    termination: TerminationReason = TerminationReason.NO_AGREEMENT

    _r = field_validator("reason")(classmethod(lambda cls, v: _reason(v)))


class FollowUpIn(FollowUpRecord):
    version: Version = None


class ContactIn(ContactCreate):
    version: Version = None


class ReassignIn(_Body):
    assignee_id: int = Field(ge=1, le=2_000_000_000)


class EscalateIn(_Body):
    reason: str = Field(min_length=1, max_length=500)

    _r = field_validator("reason")(classmethod(lambda cls, v: _reason(v)))


class ReferIn(_Body):
    target: ReferralTarget
    grounds: ReferralReason | None = Field(
        default=None, description="why the case leaves people's mediation; else implied by target"
    )
    agency_code: str | None = Field(default=None, max_length=32)
    reason: str = Field(min_length=1, max_length=500)

    _r = field_validator("reason")(classmethod(lambda cls, v: _reason(v)))


class ReasonIn(_Body):
    reason: str = Field(min_length=1, max_length=2000)

    _r = field_validator("reason")(classmethod(lambda cls, v: _reason(v)))


class ResolveIn(_Body):
    resolution: str = Field(min_length=1, max_length=2000)

    _r = field_validator("resolution")(classmethod(lambda cls, v: _reason(v)))


class MergeIn(_Body):
    into: str = Field(min_length=1, max_length=32, description="id or number of the case kept")


Act = Callable[[Session, Case, int], int | None]


def _act(
    request: Request,
    principal: Principal,
    case_ref: str,
    body: BaseModel,
    action: str,
    act: Act,
) -> JSONResponse:
    version = expected_version(request, getattr(body, "version", None))

    def produce(session: Session) -> tuple[int, Any]:
        case = load_case(session, principal, case_ref)
        if not may_act(principal, case, action):
            raise Forbidden(
                f"the {principal.role} role may not {action} this case",
                "您的角色不能执行此操作",
            )
        assert case.id is not None
        record_id = act(session, case, version)
        session.flush()
        answer = ActionAnswer(
            case=case_public(session, case),
            allowed_actions=allowed_actions(case, principal),
            record_id=record_id,
        )
        return 200, answer.model_dump(mode="json")

    return run_write(request, principal, body, produce)


def _cid(case: Case) -> int:
    assert case.id is not None
    return case.id


@router.post(
    "/consent",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="记录调解同意 Record consent",
)
def consent(
    request: Request,
    case_ref: CaseRef,
    body: ConsentIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        mediating.record_consent(
            session,
            case_id=_cid(case),
            party_ids=body.party_ids,
            actor=principal.actor,
            expected_version=version,
            given=body.given,
            how=body.how,
            note=body.note,
        )

    return _act(request, principal, case_ref, body, "consent", act)


@router.post(
    "/mediation/start",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="开始调解 Start mediation",
)
def start(
    request: Request,
    case_ref: CaseRef,
    body: StartIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        mediating.start_mediation(
            session, case_id=_cid(case), actor=principal.actor, expected_version=version
        )

    return _act(request, principal, case_ref, body, "mediation/start", act)


@router.post(
    "/mediation/extend",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="延长调解期限 Extend mediation",
)
def extend(
    request: Request,
    case_ref: CaseRef,
    body: ExtendIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        mediating.extend_mediation(
            session,
            case_id=_cid(case),
            until=body.until,
            both_parties_consent=body.both_parties_consent,
            actor=principal.actor,
            expected_version=version,
            how=body.how,
            note=body.note,
        )

    return _act(request, principal, case_ref, body, "mediation/extend", act)


@router.post(
    "/sessions",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="记录调解笔录 Record a session",
)
def add_session(
    request: Request,
    case_ref: CaseRef,
    body: SessionIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> int | None:
        data = SessionCreate.model_validate(body.model_dump(exclude={"version"}))
        row = mediating.record_session(
            session,
            case_id=_cid(case),
            data=data,
            actor=principal.actor,
            expected_version=version,
        )
        return row.id

    return _act(request, principal, case_ref, body, "sessions", act)


@router.post(
    "/agreement",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="签订调解协议 Sign an agreement",
)
def agreement(
    request: Request,
    case_ref: CaseRef,
    body: AgreementIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> int | None:
        data = AgreementCreate.model_validate(body.model_dump(exclude={"version"}))
        row = mediating.sign_agreement(
            session,
            case_id=_cid(case),
            data=data,
            actor=principal.actor,
            expected_version=version,
        )
        return row.id

    return _act(request, principal, case_ref, body, "agreement", act)


@router.post(
    "/failure",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="调解不成（终止调解） Record a failed mediation",
)
def failure(
    request: Request,
    case_ref: CaseRef,
    body: FailureIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        mediating.fail_mediation(
            session,
            case_id=_cid(case),
            reason=body.reason,
            referral=body.referral,
            actor=principal.actor,
            expected_version=version,
            termination=body.termination,
        )

    return _act(request, principal, case_ref, body, "failure", act)


@router.post(
    "/follow-ups",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="记录回访 Record a return visit",
)
def follow_up(
    request: Request,
    case_ref: CaseRef,
    body: FollowUpIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> int | None:
        data = FollowUpRecord.model_validate(body.model_dump(exclude={"version"}))
        row = follow_ups.record_follow_up(
            session,
            case_id=_cid(case),
            data=data,
            actor=principal.actor,
            expected_version=version,
        )
        return row.id

    return _act(request, principal, case_ref, body, "follow-ups", act)


@router.post(
    "/contact",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="首次联系 Record contact with the complainant",
    description="A person of the handling unit reached the complainant (how, when). The "
    "first contact within the response limit is what the response rate counts; an "
    "automatic assignment is not a contact.",
)
def contact(
    request: Request,
    case_ref: CaseRef,
    body: ContactIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> int | None:
        data = ContactCreate.model_validate(body.model_dump(exclude={"version"}))
        row = record_contact(
            session,
            case_id=_cid(case),
            data=data,
            actor=principal.actor,
            expected_version=version,
        )
        return row.id

    return _act(request, principal, case_ref, body, "contact", act)


@router.post("/reassign", response_model=ActionAnswer, responses=RESPONSES, summary="改派 Reassign")
def reassign(
    request: Request,
    case_ref: CaseRef,
    body: ReassignIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        staff = session.get(StaffRow, body.assignee_id)
        unit = session.get(Unit, staff.unit_id) if staff and staff.unit_id else None
        if staff is None or unit is None or not principal.reaches_path(unit.path):
            raise ValidationError(
                "assignee_id: no such staff member within your reach",
                "assignee_id：您的辖区内没有该工作人员",
            )
        routing.reassign_case(
            session,
            case_id=_cid(case),
            assignee_id=body.assignee_id,
            actor=principal.actor,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, "reassign", act)


@router.post(
    "/escalate", response_model=ActionAnswer, responses=RESPONSES, summary="上报 Escalate by hand"
)
def escalate(
    request: Request,
    case_ref: CaseRef,
    body: EscalateIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        escalation.escalate_case(
            session,
            case_id=_cid(case),
            now=clock.now(),
            actor=principal.actor,
            expected_version=version,
            by_hand=True,
            reason=body.reason,
        )

    return _act(request, principal, case_ref, body, "escalate", act)


@router.post("/refer", response_model=ActionAnswer, responses=RESPONSES, summary="移交 Refer")
def refer(
    request: Request,
    case_ref: CaseRef,
    body: ReferIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        routing.refer_case(
            session,
            case_id=_cid(case),
            target=body.target,
            agency_code=body.agency_code,
            reason=body.reason,
            actor=principal.actor,
            expected_version=version,
            grounds=body.grounds,
        )

    return _act(request, principal, case_ref, body, "refer", act)


@router.post("/withdraw", response_model=ActionAnswer, responses=RESPONSES, summary="撤回 Withdraw")
def withdraw(
    request: Request,
    case_ref: CaseRef,
    body: ReasonIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        mediating.withdraw_case(
            session,
            case_id=_cid(case),
            reason=body.reason,
            actor=principal.actor,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, "withdraw", act)


@router.post("/reopen", response_model=ActionAnswer, responses=RESPONSES, summary="重新办理 Reopen")
def reopen(
    request: Request,
    case_ref: CaseRef,
    body: ReasonIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        follow_ups.reopen_case(
            session,
            case_id=_cid(case),
            reason=body.reason,
            actor=principal.actor,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, "reopen", act)


@router.post(
    "/resolve",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="直接化解 Resolve without mediation",
)
def resolve(
    request: Request,
    case_ref: CaseRef,
    body: ResolveIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        mediating.resolve_directly(
            session,
            case_id=_cid(case),
            resolution=body.resolution,
            actor=principal.actor,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, "resolve", act)


@router.post(
    "/merge",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="合并 Merge into another case",
)
def merge(
    request: Request,
    case_ref: CaseRef,
    body: MergeIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        target = load_case(session, principal, body.into)
        assert target.id is not None
        mediating.merge_case(
            session,
            case_id=_cid(case),
            into_case_id=target.id,
            actor=principal.actor,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, "merge", act)


class ClassificationIn(_Body):
    category: Category | None = Field(default=None, description="the category chosen")
    priority: Priority | None = Field(default=None, description="the priority chosen")


class AssessmentIn(_Body):
    category: Category = Field(description="the category confirmed 研判确认的类别")
    priority: Priority | None = Field(default=None, description="the priority, if changed")


@router.post(
    "/classification",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="改类 Set category or priority (a person's choice stands)",
)
def classification(
    request: Request,
    case_ref: CaseRef,
    body: ClassificationIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    if body.category is None and body.priority is None:
        raise ValidationError("give a category or a priority", "请填写类别或紧急程度")

    def act(session: Session, case: Case, version: int) -> None:
        machine_triage.set_classification(
            session,
            case_id=_cid(case),
            actor=principal.actor,
            category=body.category,
            priority=body.priority,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, "classification", act)


@router.post(
    "/assessment",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="研判确认 Confirm the category of a case held for assessment; it is then routed",
)
def assessment(
    request: Request,
    case_ref: CaseRef,
    body: AssessmentIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        if not case.held_for_assessment:
            raise GuardFailed(
                f"case {case.number} is not waiting for assessment",
                f"案件 {case.number} 不在研判队列中",
            )
        machine_triage.set_classification(
            session,
            case_id=_cid(case),
            actor=principal.actor,
            category=body.category,
            priority=body.priority,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, "assessment", act)
