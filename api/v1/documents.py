"""Staff REST: the documents and attachments of a case.

- ``GET  /api/v1/cases/{case}/documents``: ``[{kind, title, formats}]`` of the documents
  the case has now;
- ``GET  /api/v1/cases/{case}/documents/{kind}.{pdf|docx}``: one document;
- ``POST /api/v1/cases/{case}/attachments``: a scan or photo (multipart ``file``, and
  ``kind``: scan, photo or agreement_scan; PDF, JPEG or PNG by content): a row of the
  action table, its route in :mod:`api.v1.case_actions`;
- ``GET  /api/v1/cases/{case}/attachments`` and ``…/attachments/{id}``: list, download.

Documents and attachments carry personal data: only staff entitled to see the case's
personal data get them; everyone else gets 404, as for a case out of reach. Every
download is recorded (:mod:`models.documents.audit`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CaseInReach, DBRead, RowId, Staff
from api.downloads import attachment_answer, document_answer
from api.v1.common import load_case, personal_data_visible
from models.access import Principal, not_found
from models.attachments import (
    Attachment,
    list_attachments,
)
from models.case import Case
from models.db import write_session
from models.documents import audit, render
from models.documents.context import load

router = APIRouter(prefix="/cases/{case_ref}", tags=["documents 文书"], dependencies=[CaseInReach])

CaseRef = Annotated[str, Path(max_length=32, description="case id or number")]
DocKind = Literal[
    "application", "acceptance", "minutes", "agreement", "confirmation", "return_visit", "archive"
]


class DocumentInfo(BaseModel):
    kind: str
    title: str
    formats: list[str]


class AttachmentInfo(BaseModel):
    id: int
    kind: str
    title: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime


def attachment_info(row: Attachment) -> AttachmentInfo:
    """What REST shows of an attachment: its columns of the same names (no path, no uploader)."""
    return AttachmentInfo.model_validate(row, from_attributes=True)


def entitled_case(session: Session, principal: Principal, case_ref: str) -> Case:
    """The case, if the caller may read its documents (its personal data); else 404."""
    case = load_case(session, principal, case_ref)
    if not personal_data_visible(session, principal, case):
        raise not_found(case_ref[:32])
    return case


@router.get(
    "/documents", response_model=list[DocumentInfo], summary="文书清单 The case's documents"
)
def list_documents(case_ref: CaseRef, session: DBRead, principal: Staff) -> list[DocumentInfo]:
    case = entitled_case(session, principal, case_ref)
    return [
        DocumentInfo(kind=k.kind, title=k.title, formats=list(k.formats))
        for k in render.available(load(session, case))
    ]


@router.get(
    "/documents/{kind}.{fmt}",
    summary="下载文书 One document (PDF to print, DOCX to edit)",
    responses={200: {"content": {m: {} for m in render.MEDIA_TYPES.values()}}, 404: {}},
)
def download_document(
    request: Request,
    case_ref: CaseRef,
    kind: DocKind,
    fmt: Literal["pdf", "docx"],
    principal: Staff,
) -> Response:
    from api.deps import engine_of

    with write_session(engine_of(request)) as session:
        case = entitled_case(session, principal, case_ref)
        _found, name, data = render.download(session, case, kind, fmt, staff_id=principal.staff_id)
    return document_answer(data, render.MEDIA_TYPES[fmt], name)


@router.get("/attachments", response_model=list[AttachmentInfo], summary="附件清单 Attachments")
def attachments(case_ref: CaseRef, session: DBRead, principal: Staff) -> list[AttachmentInfo]:
    case = entitled_case(session, principal, case_ref)
    assert case.id is not None
    return [attachment_info(a) for a in list_attachments(session, case_id=case.id)]


@router.get(
    "/attachments/{attachment_id}",
    summary="下载附件 Download an attachment",
    responses={200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}}}},
)
def download_attachment(
    request: Request,
    case_ref: CaseRef,
    attachment_id: RowId,
    principal: Staff,
) -> Response:
    from api.deps import engine_of

    with write_session(engine_of(request)) as session:
        case = entitled_case(session, principal, case_ref)
        assert case.id is not None
        row = audit.download_attachment(
            session, case_id=case.id, attachment_id=attachment_id, staff_id=principal.staff_id
        )
    return attachment_answer(case.number, row)
