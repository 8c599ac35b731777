"""The case page's People's Mediation Law parts: acceptance review and its guidance, the
named mediators, confidentiality, the documents to print (PDF) or edit (DOCX), and the
attachments (scans, photos) with their upload form. Documents and attachments are for
readers entitled to the case's personal data only; others get the page's 404. Every
download is recorded (``models.documents.audit``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlmodel import Session, col, select
from starlette.datastructures import UploadFile

from api.web import auth, queries
from models import confidentiality
from models.acceptance import ROUTE_NAMES, latest_review
from models.attachments import KINDS as ATTACHMENT_KINDS
from models.attachments import (
    add_attachment,
    get_attachment,
    path_of,
)
from models.case import Case
from models.documents import render
from models.documents.audit import record_download
from models.documents.context import load
from models.enums import NotAcceptedReason, StaffRole
from models.errors import NotFound, TiaojieError
from models.mediators import mediators_of, serving_ids
from models.settings import get_settings
from models.staff import Staff
from models.unit import Unit

PREFIX = "/web"
router = APIRouter()


def is_named(session: Session, user: auth.WebUser, case: Case) -> bool:
    assert case.id is not None
    return user.staff_id in serving_ids(session, case_id=case.id)


def details_visible(session: Session, user: auth.WebUser, case: Case) -> bool:
    return confidentiality.staff_may_see_details(
        case,
        staff_id=user.staff_id,
        unit_id=user.unit_id,
        is_named_mediator=case.confidential and is_named(session, user, case),
    )


def entitled(session: Session, user: auth.WebUser, case: Case) -> bool:
    """Clear personal data (and so documents): as :func:`queries.may_see_personal_data`
    says, and the mediators named on the case."""
    if not details_visible(session, user, case):
        return False
    return queries.may_see_personal_data(user, case) or is_named(session, user, case)


def _candidates(session: Session, case: Case) -> list[Staff]:
    """Active mediators the committee may name: of the handling unit's branch."""
    path = case.unit_path or ""
    rows = session.exec(
        select(Staff, Unit)
        .join(Unit, col(Unit.id) == col(Staff.unit_id))
        .where(Staff.role == StaffRole.MEDIATOR, col(Staff.active).is_(True))
        .order_by(col(Unit.path), col(Staff.id))
    ).all()
    return [s for s, u in rows if path and (u.path.startswith(path) or path.startswith(u.path))][
        :50
    ]


def mediation_context(session: Session, user: auth.WebUser, case: Case) -> dict[str, Any]:
    assert case.id is not None
    review = latest_review(session, case_id=case.id)
    rows = mediators_of(session, case_id=case.id, serving=False)
    names = {
        s.id: s.display_name
        for s in session.exec(
            select(Staff).where(col(Staff.id).in_([m.staff_id for m in rows]))
        ).all()
    }
    allowed = entitled(session, user, case)
    records = load(session, case) if allowed else None
    return {
        "review": review,
        "guidance": (review.guidance if review and not review.accepted else None)
        or (case.outcome_note if case.status.value in ("mediation_failed", "referred") else None),
        "mediators": [(m, names.get(m.staff_id, str(m.staff_id))) for m in rows],
        "mediator_candidates": _candidates(session, case),
        "not_accepted_reasons": list(NotAcceptedReason),
        "routes": ROUTE_NAMES,
        "details": details_visible(session, user, case),
        "documents": render.available(records) if records else [],
        "attachments": records.attachments if records else [],
        "attachment_kinds": ATTACHMENT_KINDS,
        "documents_allowed": allowed,
        "max_upload_mb": get_settings().attachment_max_bytes // (1024 * 1024),
    }


def _disposition(name: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"


def _entitled_case(session: Session, user: auth.WebUser, number: str) -> Case:
    case = queries.find_visible_case(session, user=user, number=number[:32])
    if case is None or not entitled(session, user, case):
        raise NotFound(f"no case {number[:32]}", f"案件 {number[:32]} 不存在或无权查看")
    return case


@router.get(PREFIX + "/cases/{number}/documents/{kind}.{fmt}")
def web_document(request: Request, number: str, kind: str, fmt: str) -> Response:
    from api.web.routes import not_found, to_login, write_session

    with write_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        try:
            case = _entitled_case(session, user, number)
            _kind, name, data = render.download(session, case, kind, fmt, staff_id=user.staff_id)
        except NotFound:
            return not_found(request, user)
    return Response(
        data,
        media_type=render.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": _disposition(name), "Cache-Control": "no-store"},
    )


@router.get(PREFIX + "/cases/{number}/attachments/{attachment_id}")
def web_attachment(request: Request, number: str, attachment_id: int) -> Response:
    from api.web.routes import not_found, to_login, write_session

    with write_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        try:
            case = _entitled_case(session, user, number)
            assert case.id is not None
            row = get_attachment(session, case_id=case.id, attachment_id=attachment_id)
        except NotFound:
            return not_found(request, user)
        record_download(
            session,
            case_id=case.id,
            staff_id=user.staff_id,
            kind="attachment",
            fmt=row.extension,
            attachment_id=row.id,
        )
    return FileResponse(
        path_of(row.sha256),
        media_type=row.content_type,
        headers={
            "Content-Disposition": _disposition(f"{case.number}-{row.id}.{row.extension}"),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(PREFIX + "/cases/{number}/attachments")
async def web_upload(request: Request, number: str) -> Response:
    from api.web.routes import not_found, to_login, write_session

    form = await request.form()
    upload = form.get("file")
    limit = get_settings().attachment_max_bytes
    content = await upload.read(limit + 1) if isinstance(upload, UploadFile) else b""
    filename = (upload.filename or "") if isinstance(upload, UploadFile) else ""
    kind = str(form.get("kind", "scan"))[:20]
    with write_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        if not auth.csrf_ok(user.csrf, str(form.get("csrf_token", ""))):
            return not_found(request, user)
        try:
            case = _entitled_case(session, user, number)
        except NotFound:
            return not_found(request, user)
        target = f"{PREFIX}/cases/{quote(case.number)}"
        try:
            with session.begin_nested():
                add_attachment(
                    session,
                    case=case,
                    filename=filename,
                    content=content,
                    kind=kind,
                    actor=user.actor,
                )
        except TiaojieError as exc:
            return RedirectResponse(
                f"{target}?upload_error={quote(exc.message_zh[:200])}#attachments",
                status_code=303,
            )
    return RedirectResponse(f"{target}?done=attachment_added#attachments", status_code=303)
