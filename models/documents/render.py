"""The documents of a case, in the formats the work uses: PDF to print (typeset by
Typst with a CJK font installed on the machine, never a remote one) and DOCX to edit
(docxtpl filling templates built by ``scripts/build_doc_templates.py``).

=============  ======================  =====================================  =========
kind           title                   when it exists                         formats
=============  ======================  =====================================  =========
application    人民调解申请书          always                                 pdf, docx
acceptance     人民调解受理登记表      once the acceptance review is decided  pdf, docx
minutes        人民调解笔录            once a session is recorded             pdf, docx
agreement      人民调解协议书          once an agreement is signed            pdf, docx
confirmation   司法确认申请书          once an agreement is signed            pdf, docx
return_visit   人民调解回访记录        once return visits are scheduled       pdf, docx
archive        人民调解卷宗            at closure                             pdf
=============  ======================  =====================================  =========

The archive (卷宗) is one PDF: cover, contents, every document, then every attachment
(images placed on a page each, PDF scans page by page).
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import typst
from docxtpl import DocxTemplate
from pypdf import PdfReader
from sqlmodel import Session

from models.attachments import path_of
from models.case import Case
from models.documents import context
from models.enums import CaseStatus
from models.errors import NotFound

TEMPLATES = Path(__file__).with_name("templates")
Format = Literal["pdf", "docx"]
MEDIA_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


@dataclass(frozen=True)
class Kind:
    kind: str
    title: str
    formats: tuple[Format, ...]


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("application", "人民调解申请书", ("pdf", "docx")),
        Kind("acceptance", "人民调解受理登记表", ("pdf", "docx")),
        Kind("minutes", "人民调解笔录", ("pdf", "docx")),
        Kind("agreement", "人民调解协议书", ("pdf", "docx")),
        Kind("confirmation", "司法确认申请书", ("pdf", "docx")),
        Kind("return_visit", "人民调解回访记录", ("pdf", "docx")),
        Kind("archive", "人民调解卷宗", ("pdf",)),
    )
}


def _exists(kind: str, records: context.CaseRecords) -> bool:
    match kind:
        case "application":
            return True
        case "acceptance":
            return records.reviewed
        case "minutes":
            return bool(records.sessions)
        case "agreement" | "confirmation":
            return records.agreement is not None
        case "return_visit":
            return bool(records.follow_ups)
        case "archive":
            return records.case.status == CaseStatus.CLOSED
    return False


def available(records: context.CaseRecords) -> list[Kind]:
    return [k for k in KINDS.values() if _exists(k.kind, records)]


def _kind(records: context.CaseRecords, kind: str, fmt: str) -> Kind:
    found = KINDS.get(kind)
    if found is None or fmt not in found.formats or not _exists(kind, records):
        raise NotFound(
            f"case {records.case.number} has no document {kind}.{fmt}",
            f"案件 {records.case.number} 没有该文书（{kind}.{fmt}）",
        )
    return found


def filename(case: Case, kind: Kind, fmt: str) -> str:
    return f"{case.number}-{kind.title}.{fmt}"


def render(session: Session, case: Case, kind: str, fmt: str) -> tuple[Kind, bytes]:
    """One document of a case as bytes (NotFound when the case has none of that kind)."""
    records = context.load(session, case)
    found = _kind(records, kind, fmt)
    data = context.build(session, records)
    if fmt == "docx":
        return found, render_docx(kind, data)
    if kind == "archive":
        return found, render_archive(records, data)
    return found, compile_pdf(TEMPLATES / f"{kind}.typ", data, root=TEMPLATES)


def download(
    session: Session, case: Case, kind: str, fmt: str, *, staff_id: int | None
) -> tuple[Kind, str, bytes]:
    """A document for a reader already found entitled, recorded as downloaded; answers
    its kind, its file name and its bytes."""
    from models.documents.audit import record_download

    found, data = render(session, case, kind, fmt)
    assert case.id is not None
    record_download(session, case_id=case.id, staff_id=staff_id, kind=kind, fmt=fmt)
    return found, filename(case, found, fmt), data


def compile_pdf(source: Path, data: dict[str, Any], *, root: Path) -> bytes:
    """Typeset one Typst template with the case's data (passed as JSON, never as markup)."""
    payload = json.dumps(data, ensure_ascii=False)
    out = typst.compile(str(source), root=str(root), sys_inputs={"data": payload})
    assert isinstance(out, bytes)
    return out


def render_archive(records: context.CaseRecords, data: dict[str, Any]) -> bytes:
    """The 卷宗, compiled in a scratch folder holding the templates and the attachments
    (Typst reads files only inside its root)."""
    with tempfile.TemporaryDirectory(prefix="tiaojie-archive-") as tmp:
        root = Path(tmp)
        for name in ("lib.typ", "archive.typ"):
            shutil.copyfile(TEMPLATES / name, root / name)
        files = []
        for i, row in enumerate(records.attachments, start=1):
            local = root / f"att-{i}.{row.extension}"
            shutil.copyfile(path_of(row.sha256), local)
            pages = len(PdfReader(local).pages) if row.content_type == "application/pdf" else 1
            files.append(
                {"n": str(i), "title": row.title, "type": row.content_type, "path": local.name}
                | {"pages": pages}
            )
        return compile_pdf(root / "archive.typ", {**data, "files": files}, root=root)


def render_docx(kind: str, data: dict[str, Any]) -> bytes:
    template = DocxTemplate(str(TEMPLATES / f"{kind}.docx"))
    template.render(data, autoescape=True)
    out = io.BytesIO()
    template.save(out)
    return out.getvalue()
