"""How a case's file leaves the REST API and the web pages alike: offered for saving
under its own name (any script, safely quoted), never kept in a browser's cache."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import FileResponse, Response

from models.attachments import Attachment, path_of


def disposition(name: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"


def document_answer(data: bytes, media_type: str, name: str) -> Response:
    """A generated document (PDF, Word)."""
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": disposition(name), "Cache-Control": "no-store"},
    )


def attachment_answer(case_number: str, row: Attachment) -> FileResponse:
    """A stored attachment, named after the case; its type is never sniffed."""
    return FileResponse(
        path_of(row.sha256),
        media_type=row.content_type,
        headers={
            "Content-Disposition": disposition(f"{case_number}-{row.id}.{row.extension}"),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
