"""ASGI middleware: body-size limit and content-type checks, before any parsing.

The whole body is read (up to ``max_body_bytes``) before the app sees it, so that a
chunked body without ``Content-Length`` is limited too, and an oversized one is refused
with 413 before anything is parsed or stored.

Uploads of scans and photos (``POST …/attachments``, multipart only) have their own,
larger limit (``attachment_max_bytes`` plus room for the form's own parts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import _HTTP_ZH, OPEN311_PREFIX, error_body, open311_errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


UPLOAD_OVERHEAD = 64 * 1024


class _TooLarge(Exception):
    pass


def is_upload(scope: Scope) -> bool:
    return scope["method"] == "POST" and str(scope.get("path", "")).endswith("/attachments")


def _media_type(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return str(value.decode("latin-1")).split(";", 1)[0].strip().lower()
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        upload_bytes: int | None = None,
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # A resident's photos (POST /r/{code}/info) may be larger than any other body.
        self.upload_bytes = max(upload_bytes or 0, max_body_bytes)
        # Scans and photos attached to a case by staff (POST …/attachments).
        self.max_upload_bytes = max(max_upload_bytes + UPLOAD_OVERHEAD, max_body_bytes)

    def _limit(self, scope: Scope) -> int:
        path = str(scope.get("path", ""))
        if path.startswith("/r/") and path.endswith("/info"):
            return self.upload_bytes
        if is_upload(scope):
            return self.max_upload_bytes
        return self.max_body_bytes

    def _error(self, scope: Scope, status: int, en: str) -> Response:
        code, zh = _HTTP_ZH[status]
        if str(scope.get("path", "")).startswith(OPEN311_PREFIX):
            return open311_errors(Request(scope), status, [(str(status), f"{zh} / {en}")])
        return JSONResponse(error_body(code, zh, en), status_code=status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        upload = is_upload(scope)
        declared = _content_length(scope)
        if declared is not None and declared > self._limit(scope):
            await self._too_large(scope, receive, send)
            return
        try:
            body = await self._read(receive, self._limit(scope))
        except _TooLarge:
            await self._too_large(scope, receive, send)
            return
        media = _media_type(scope)
        if upload and media != "multipart/form-data":
            await self._error(scope, 415, "send the file as multipart/form-data")(
                scope, receive, send
            )
            return
        if not upload and path.startswith("/api/") and (body or media is not None):
            if media not in JSON_TYPES:
                await self._error(scope, 415, "send the body as application/json")(
                    scope, receive, send
                )
                return
        elif (
            path.startswith(OPEN311_PREFIX)
            and (body or media is not None)
            and media not in FORM_TYPES
        ):
            await self._error(scope, 415, "send the form as application/x-www-form-urlencoded")(
                scope, receive, send
            )
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit(scope)
        response = self._error(scope, 413, f"the body is larger than {limit} bytes")
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
