"""Documents and attachments of a case on the web: download a document (PDF, DOCX) or an
attachment, upload a scan or photo. Only for readers entitled to the case's personal
data (:func:`api.web.mediation.entitled`); others get the page's 404. Every download is
recorded (``models.documents.audit``)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session
from starlette.datastructures import UploadFile

from api.deps import RowId
from api.downloads import attachment_answer, document_answer
from api.web import auth, queries
from api.web.mediation import entitled
from api.web.routes import PREFIX, TimedRoute, forbidden, not_found, to_login, write_session
from models import actions
from models.access import Principal
from models.case import Case
from models.documents import render
from models.documents.audit import download_attachment
from models.errors import NotFound, PermissionDenied, TiaojieError
from models.settings import get_settings

router = APIRouter(route_class=TimedRoute, include_in_schema=False)


def _entitled_case(session: Session, user: Principal, number: str) -> Case:
    case = queries.find_visible_case(session, user=user, number=number[:32])
    if case is None or not entitled(session, user, case):
        raise NotFound(f"no case {number[:32]}", f"案件 {number[:32]} 不存在或无权查看")
    return case


def _download(
    request: Request, number: str, answer: Callable[[Session, Principal, Case], Response]
) -> Response:
    """A file of a case the signed-in person is entitled to, its download recorded in the
    same transaction; anyone else is sent to sign in or told there is no such case."""
    with write_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        try:
            return answer(session, user, _entitled_case(session, user, number))
        except NotFound:
            return not_found(request, user)


@router.get(PREFIX + "/cases/{number}/documents/{kind}.{fmt}")
def web_document(request: Request, number: str, kind: str, fmt: str) -> Response:
    def answer(session: Session, user: Principal, case: Case) -> Response:
        _kind, name, data = render.download(session, case, kind, fmt, staff_id=user.staff_id)
        return document_answer(data, render.MEDIA_TYPES[fmt], name)

    return _download(request, number, answer)


@router.get(PREFIX + "/cases/{number}/attachments/{attachment_id}")
def web_attachment(request: Request, number: str, attachment_id: RowId) -> Response:
    def answer(session: Session, user: Principal, case: Case) -> Response:
        assert case.id is not None
        row = download_attachment(
            session, case_id=case.id, attachment_id=attachment_id, staff_id=user.staff_id
        )
        return attachment_answer(case.number, row)

    return _download(request, number, answer)


@router.post(PREFIX + "/cases/{number}/attachments")
async def web_upload(request: Request, number: str) -> Response:
    """The page's upload: the ``attachments`` row of the action table, run by
    :func:`models.actions.run` (who may, the entitlement to the case's files, the checks
    of the file); a refused file comes back to the page with the reason."""
    async with request.form() as form:
        upload = form.get("file")
        limit = get_settings().attachment_max_bytes
        content = await upload.read(limit + 1) if isinstance(upload, UploadFile) else b""
        filename = (upload.filename or "") if isinstance(upload, UploadFile) else ""
        body = actions.AttachmentIn(kind=str(form.get("kind", "scan"))[:20])
        csrf = str(form.get("csrf_token", ""))
    with write_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        case = queries.find_visible_case(session, user=user, number=number[:32])
        if case is None or not auth.csrf_ok(auth.session_csrf(request), csrf):
            return not_found(request, user)
        target = f"{PREFIX}/cases/{quote(case.number)}"
        try:
            with session.begin_nested():
                file = actions.Upload(filename=filename, content=content)
                actions.run(session, user, case, "attachments", body, file=file)
        except NotFound:
            return not_found(request, user)
        except PermissionDenied:
            return forbidden(request, user)
        except TiaojieError as exc:
            note = exc.message_zh[:200]
            query = urlencode(
                {"upload_error": note, "upload_error_sig": auth.sign_note(request, note)}
            )
            return RedirectResponse(f"{target}?{query}#attachments", status_code=303)
    return RedirectResponse(f"{target}?done=attachment_added#attachments", status_code=303)
