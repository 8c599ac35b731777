"""Attachments of a case: scans and photos (signed agreement, ID copies, evidence).

Only PDF, JPEG and PNG are taken, recognised by their first bytes (the magic number),
never by the name or the declared type. A file is stored once under
``TIAOJIE_HOME/attachments/<sha256[:2]>/<sha256>`` (its content hash, never the name it
was uploaded with: a name such as ``../../etc/passwd`` cannot choose where it lands, and
a name with a path in it is refused). The title kept for display is the name's last part
with control characters removed. A bad upload stores nothing and writes no row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
from datetime import datetime
from pathlib import Path

from sqlmodel import Field, Session, SQLModel, col, select

from models import clock, lifecycle
from models.case import Case
from models.errors import NotFound, PayloadTooLarge, UnsupportedType
from models.guards import invalid
from models.lifecycle import Actor
from models.rows import rows_of
from models.settings import get_settings
from models.types import UTCDateTime

MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)
KINDS = {"scan": "扫描件", "photo": "照片", "agreement_scan": "调解协议书（签章扫描件）"}


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    size: int
    content_type: str = Field(max_length=32)
    kind: str = Field(default="scan", max_length=20)
    title: str = Field(max_length=200)
    uploaded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    uploaded_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def extension(self) -> str:
        return next(ext for _, ctype, ext in MAGIC if ctype == self.content_type)


def sniff(head: bytes) -> str | None:
    """The content type the first bytes announce, or None."""
    return next((ctype for magic, ctype, _ in MAGIC if head.startswith(magic)), None)


def clean_title(filename: str) -> str:
    """The uploaded name as a display title; a name that is a path is refused."""
    name = (filename or "").strip()
    if not name:
        raise invalid("file", "the file has no name", "文件缺少名称")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise invalid("file", "the file name must not contain a path", "文件名不能包含路径")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise invalid("file", "the file name contains control characters", "文件名含有控制字符")
    return name[:200]


def storage_root() -> Path:
    return get_settings().home / "attachments"


def path_of(sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a sha256 hex digest")
    return storage_root() / sha256[:2] / sha256


def _store(content: bytes, digest: str) -> None:
    target = path_of(digest)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_attachment(
    session: Session,
    *,
    case: Case,
    filename: str,
    content: bytes,
    kind: str,
    actor: Actor,
) -> Attachment:
    """Check and store one upload, and put it on the case's timeline."""
    title = clean_title(filename)
    if kind not in KINDS:
        raise invalid("kind", f"one of {', '.join(KINDS)}", f"应为 {'、'.join(KINDS)} 之一")
    limit = get_settings().attachment_max_bytes
    if len(content) > limit:
        raise PayloadTooLarge(
            f"the file is larger than {limit} bytes", f"文件超过 {limit // (1024 * 1024)} MB 上限"
        )
    if not content:
        raise invalid("file", "the file is empty", "文件为空")
    ctype = sniff(content[:16])
    if ctype is None:
        raise UnsupportedType(
            "only PDF, JPEG and PNG files are accepted (checked by content, not by name)",
            "仅接受 PDF、JPEG、PNG 文件（按文件内容判断，而非文件名）",
        )
    assert case.id is not None
    digest = hashlib.sha256(content).hexdigest()
    row = Attachment(
        case_id=case.id,
        sha256=digest,
        size=len(content),
        content_type=ctype,
        kind=kind,
        title=title,
        uploaded_by_id=actor.staff_id,
        uploaded_at=clock.now(),
    )
    session.add(row)
    session.flush()
    if kind == "agreement_scan":
        _link_scan(session, case, row)
    lifecycle.step_on(session, case, actor, None).record(
        "attachment_added",
        {"attachment_id": row.id, "kind": kind, "sha256": digest, "size": len(content)},
    )
    # The file goes to disk last: a failure before it leaves no file; a file left by a
    # rolled-back transaction is content-addressed and harmless.
    _store(content, digest)
    return row


def _link_scan(session: Session, case: Case, row: Attachment) -> None:
    """The signed and sealed agreement's scan belongs to the case's latest agreement."""
    from models.mediation import Agreement

    agreement = session.exec(
        select(Agreement)
        .where(Agreement.case_id == case.id)
        .order_by(col(Agreement.signed_at).desc(), col(Agreement.id).desc())
    ).first()
    if agreement is not None:
        agreement.scan_attachment_id = row.id
        session.add(agreement)


def list_attachments(session: Session, *, case_id: int) -> list[Attachment]:
    return rows_of(session, Attachment, Attachment.case_id == case_id, Attachment.uploaded_at)


def get_attachment(session: Session, *, case_id: int, attachment_id: int) -> Attachment:
    row = session.get(Attachment, attachment_id)
    if row is None or row.case_id != case_id:
        raise NotFound(f"no attachment {attachment_id}", f"附件 {attachment_id} 不存在")
    return row


def read_bytes(row: Attachment) -> bytes:
    return path_of(row.sha256).read_bytes()
