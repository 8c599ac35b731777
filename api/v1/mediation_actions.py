"""Staff REST: the People's Mediation Law steps on a case (``POST /api/v1/cases/{case}/…``).

当事人 ``parties`` (add) and ``parties/{id}`` (PATCH, edit);
调解员 ``mediators/{staff_id}/recuse`` (回避) and
``mediators/{staff_id}/replace``; 不公开 ``confidential``; 司法确认
``court-confirmation``. Each takes the case ``version`` the caller last saw (body or
``If-Match``) and honours ``Idempotency-Key``, like every action (see
:mod:`api.v1.case_actions`). All validation is the domain's.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field, field_validator
from sqlmodel import Session

from api.deps import CaseInReach
from api.deps import Staff as StaffP
from api.v1.case_actions import RESPONSES, ActionAnswer, CaseRef, IdemKey, IfMatch, Version, _act
from api.v1.case_actions import _Body as Body
from models import confidentiality, confirmation, mediators, parties
from models.case import Case
from models.enums import ConfirmationStatus, MediatorEnd
from models.mediation import clean_text
from models.party import PartyCreate

router = APIRouter(
    prefix="/cases/{case_ref}", tags=["case actions 办理"], dependencies=[CaseInReach]
)

StaffId = Annotated[int, Path(ge=1, le=2_000_000_000)]


class PartyIn(PartyCreate):
    version: Version = None


class PartyPatch(parties.PartyUpdate):
    version: Version = None


class MediatorLeaves(Body):
    note: str = Field(min_length=1, max_length=500, description="why")
    replacement_id: int | None = Field(default=None, ge=1, le=2_000_000_000)

    _n = field_validator("note")(classmethod(lambda cls, v: clean_text(v)))


class ReplaceIn(MediatorLeaves):
    at_party_request: bool = Field(
        default=True, description="a party asked for another mediator (else the committee)"
    )


class ConfidentialIn(Body):
    reason: str = Field(min_length=1, max_length=500, description="who asked, and why")

    _r = field_validator("reason")(classmethod(lambda cls, v: clean_text(v)))


class ConfirmationIn(Body):
    status: ConfirmationStatus
    on: date
    court_name: str = Field(default="", max_length=200)
    court_reference: str = Field(default="", max_length=100, description="案号")

    _t = field_validator("court_name", "court_reference")(
        classmethod(lambda cls, v: clean_text(v, required=False))
    )


def _cid(case: Case) -> int:
    assert case.id is not None
    return case.id


@router.post(
    "/parties", response_model=ActionAnswer, responses=RESPONSES, summary="增加当事人 Add a party"
)
def add_party(
    request: Request,
    case_ref: CaseRef,
    body: PartyIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> int | None:
        data = PartyCreate.model_validate(body.model_dump(exclude={"version"}))
        row = parties.add_party(
            session, case=case, data=data, actor=principal, expected_version=version
        )
        return row.id

    return _act(request, principal, case_ref, body, "parties", act)


@router.patch(
    "/parties/{party_id}",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="修改当事人 Edit a party",
)
def edit_party(
    request: Request,
    case_ref: CaseRef,
    party_id: StaffId,
    body: PartyPatch,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> int | None:
        changes = parties.PartyUpdate.model_validate(
            body.model_dump(exclude={"version"}, exclude_unset=True)
        )
        row = parties.edit_party(
            session,
            case=case,
            party_id=party_id,
            changes=changes,
            actor=principal,
            expected_version=version,
        )
        return row.id

    return _act(request, principal, case_ref, body, "parties", act)


def _leave(
    request: Request,
    principal: StaffP,
    case_ref: str,
    staff_id: int,
    body: MediatorLeaves,
    why: MediatorEnd,
    action: str,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        mediators.end_service(
            session,
            case=case,
            staff_id=staff_id,
            why=why,
            note=body.note,
            replacement_id=body.replacement_id,
            actor=principal,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, action, act)


@router.post(
    "/mediators/{staff_id}/recuse",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="调解员回避 A mediator recuses (conflict of interest)",
)
def recuse(
    request: Request,
    case_ref: CaseRef,
    staff_id: StaffId,
    body: MediatorLeaves,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    return _leave(
        request, principal, case_ref, staff_id, body, MediatorEnd.RECUSED, "mediators/recuse"
    )


@router.post(
    "/mediators/{staff_id}/replace",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="更换调解员 Replace a mediator",
)
def replace(
    request: Request,
    case_ref: CaseRef,
    staff_id: StaffId,
    body: ReplaceIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    why = MediatorEnd.PARTY_REQUEST if body.at_party_request else MediatorEnd.REPLACED
    return _leave(request, principal, case_ref, staff_id, body, why, "mediators/replace")


@router.post(
    "/confidential",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="设为不公开 Mark confidential",
)
def mark_confidential(
    request: Request,
    case_ref: CaseRef,
    body: ConfidentialIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> None:
        confidentiality.mark_confidential(
            session,
            case_id=_cid(case),
            reason=body.reason,
            actor=principal,
            expected_version=version,
        )

    return _act(request, principal, case_ref, body, "confidential", act)


@router.post(
    "/court-confirmation",
    response_model=ActionAnswer,
    responses=RESPONSES,
    summary="记录司法确认 Record the court confirmation",
)
def court_confirmation(
    request: Request,
    case_ref: CaseRef,
    body: ConfirmationIn,
    principal: StaffP,
    idempotency_key: IdemKey = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    def act(session: Session, case: Case, version: int) -> int | None:
        row = confirmation.record_outcome(
            session,
            case=case,
            status=body.status,
            on=body.on,
            court_name=body.court_name,
            court_reference=body.court_reference,
            actor=principal,
            expected_version=version,
        )
        return row.id

    return _act(request, principal, case_ref, body, "court-confirmation", act)
