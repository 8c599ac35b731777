"""Every download of a case document is recorded: who, which case, which document, when.

Kept apart from the case timeline on purpose: reading a document is not a change of the
case, and bumping the case's version on every download would make the reader's own
next action answer 409.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel

from models import clock
from models.attachments import Attachment, get_attachment
from models.rows import rows_of
from models.types import UTCDateTime


class DocumentDownload(SQLModel, table=True):
    __tablename__ = "document_download"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    kind: str = Field(max_length=32)
    fmt: str = Field(max_length=8)
    attachment_id: int | None = Field(default=None, foreign_key="attachment.id")
    at: datetime = Field(sa_type=UTCDateTime, index=True)


def record_download(
    session: Session,
    *,
    case_id: int,
    staff_id: int | None,
    kind: str,
    fmt: str,
    attachment_id: int | None = None,
) -> DocumentDownload:
    row = DocumentDownload(
        case_id=case_id,
        staff_id=staff_id,
        kind=kind,
        fmt=fmt,
        attachment_id=attachment_id,
        at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def downloads_of(session: Session, *, case_id: int) -> list[DocumentDownload]:
    return rows_of(
        session, DocumentDownload, DocumentDownload.case_id == case_id, DocumentDownload.at
    )


def download_attachment(
    session: Session, *, case_id: int, attachment_id: int, staff_id: int | None
) -> Attachment:
    """One of the case's attachments, its download written to the record first."""
    row = get_attachment(session, case_id=case_id, attachment_id=attachment_id)
    record_download(
        session,
        case_id=case_id,
        staff_id=staff_id,
        kind="attachment",
        fmt=row.extension,
        attachment_id=row.id,
    )
    return row
