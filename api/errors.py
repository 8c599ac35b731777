"""Error answers: one shape for the staff API, the Open311 error arrays for the public.

Staff API: ``{"code", "message" (zh-CN), "message_en", "fields": [{"field", "message",
"message_en"}]}``. Open311 (``/open311/v2/...``): ``[{"code", "description"}]`` or
``<errors><error><code/><description/></error></errors>`` with 400/403/404.

Bad input never reaches the catch-all handler: that one answers 500 with an error id and
logs the id, the exception type and the code location, never the message (which may
hold what a resident typed). uvicorn's access log keeps each request's route without its
query or the keys in its path (:class:`NoKeysInAccessLog`).
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.ratelimit import RateLimited
from api.security import AuthError
from models.errors import (
    ConflictError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    TiaojieError,
    UnsupportedType,
    ValidationError,
)

log = logging.getLogger("tiaojie.api")

OPEN311_PREFIX = "/open311/"

# A bare HTTP error (no such route, a refused method, a body too large ...) answers with
# the code of the domain error of the same meaning, taken from its class so that the two
# cannot drift apart; the others are HTTP's own.
_HTTP_ZH = {
    400: ("bad_request", "请求有误"),
    401: (AuthError.code, "未登录或令牌无效"),
    403: (PermissionDenied.code, "无权执行此操作"),
    404: (NotFound.code, "未找到"),
    405: ("method_not_allowed", "不支持该请求方法"),
    406: ("not_acceptable", "不支持的响应格式"),
    409: (ConflictError.code, "请求与当前状态冲突"),
    413: (PayloadTooLarge.code, "请求体过大"),
    415: (UnsupportedType.code, "不支持的内容类型"),
    422: (ValidationError.code, "请求数据无效"),
    428: ("precondition_required", "缺少版本号"),
    429: (RateLimited.code, "请求过于频繁，请稍后再试"),
}

# Pydantic error types in plain Chinese.
_ZH_BY_TYPE = {
    "missing": "必填字段缺失",
    "extra_forbidden": "不允许的字段（不能由请求设置）",
    "string_too_long": "文本过长（最多 {max_length} 个字符）",
    "string_too_short": "文本过短（至少 {min_length} 个字符）",
    "too_long": "条目过多（最多 {max_length} 项）",
    "too_short": "条目过少（至少 {min_length} 项）",
    "string_type": "应为文本",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "finite_number": "应为有限数字",
    "bool_type": "应为布尔值（true/false）",
    "bool_parsing": "应为布尔值（true/false）",
    "enum": "取值无效，可选：{expected}",
    "literal_error": "取值无效，可选：{expected}",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "json_invalid": "请求体不是有效的 JSON",
    "json_type": "应为 JSON",
    "datetime_type": "应为日期时间",
    "datetime_parsing": "日期时间格式无效（例如 2026-11-30T09:00:00+08:00）",
    "datetime_from_date_parsing": "日期时间格式无效（例如 2026-11-30T09:00:00+08:00）",
    "timezone_aware": "日期时间须带时区",
    "date_type": "应为日期",
    "date_parsing": "日期格式无效（例如 2026-11-30）",
    "date_from_datetime_parsing": "日期格式无效（例如 2026-11-30）",
    "string_pattern_mismatch": "格式不正确",
    "url_parsing": "网址格式无效",
    "url_type": "应为网址",
    "uuid_parsing": "格式不正确",
}


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_fields(errors: Sequence[Any]) -> list[dict[str, str]]:
    fields: list[dict[str, str]] = []
    for err in errors:
        kind = str(err.get("type", ""))
        msg = str(err.get("msg", "invalid"))
        ctx = err.get("ctx") or {}
        if kind == "value_error":
            # Our validators say "中文 / English".
            text = msg.removeprefix("Value error, ")
            zh, _, en = text.partition(" / ")
            fields.append(
                {"field": _field_name(err.get("loc", ())), "message": zh, "message_en": en or zh}
            )
            continue
        template = _ZH_BY_TYPE.get(kind, "取值无效")
        try:
            zh = template.format(**{k: v for k, v in ctx.items() if isinstance(k, str)})
        except (KeyError, IndexError, ValueError):
            zh = template
        fields.append({"field": _field_name(err.get("loc", ())), "message": zh, "message_en": msg})
    return fields


def error_body(
    code: str, message_zh: str, message_en: str, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message_zh, "message_en": message_en, "fields": fields or []}


def is_open311(request: Request) -> bool:
    return request.url.path.startswith(OPEN311_PREFIX)


def wants_xml(request: Request) -> bool:
    path = request.url.path
    return path.endswith(".xml") or request.query_params.get("format") == "xml"


def open311_errors(
    request: Request,
    status: int,
    errors: list[tuple[str, str]],
    headers: dict[str, str] | None = None,
) -> Response:
    """The spec's error array, in the format the path asks for."""
    if wants_xml(request):
        root = ET.Element("errors")
        for code, description in errors:
            item = ET.SubElement(root, "error")
            ET.SubElement(item, "code").text = code
            ET.SubElement(item, "description").text = description
        body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(root, encoding="utf-8")
        return Response(body, status_code=status, media_type="text/xml", headers=headers)
    return JSONResponse(
        [{"code": code, "description": description} for code, description in errors],
        status_code=status,
        headers=headers,
    )


def _open311_status(status: int) -> int:
    return status if status in (403, 404, 413, 415, 429, 405) else 400


async def tiaojie_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TiaojieError)
    headers = getattr(exc, "headers", None)
    if is_open311(request):
        status = _open311_status(exc.http_status)
        if isinstance(exc, ValidationError) and exc.problems:
            errors = [
                (str(status), f"{p.field}: {p.message_zh} / {p.message_en}") for p in exc.problems
            ]
        else:
            errors = [(str(status), f"{exc.message_zh} / {exc.message_en}")]
        return open311_errors(request, status, errors, headers)
    body = exc.to_dict()
    body.setdefault("fields", [])
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = validation_fields(exc.errors())
    if is_open311(request):
        return open311_errors(
            request,
            400,
            [("400", f"{f['field']}: {f['message']} / {f['message_en']}") for f in fields],
        )
    return JSONResponse(
        error_body(
            "validation_error",
            "请求数据无效，请检查标出的字段",
            "The request is not valid; see the fields",
            fields,
        ),
        status_code=422,
    )


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, zh = _HTTP_ZH.get(exc.status_code, ("http_error", "请求失败"))
    detail = exc.detail if isinstance(exc.detail, str) else zh
    headers = dict(exc.headers or {})
    if is_open311(request):
        status = _open311_status(exc.status_code)
        return open311_errors(request, status, [(str(status), f"{zh} / {detail}")], headers)
    return JSONResponse(
        error_body(code, zh, detail), status_code=exc.status_code, headers=headers or None
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    error_id = uuid.uuid4().hex[:12]
    frames = traceback.extract_tb(exc.__traceback__)
    where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[-6:])
    # Never the message or the request: they may carry what a resident typed.
    log.error(
        "unexpected error %s: %s at %s on %s %s",
        error_id,
        type(exc).__name__,
        where,
        request.method,
        request.scope.get("route").path if request.scope.get("route") else "?",  # type: ignore[union-attr]
    )
    if is_open311(request):
        return open311_errors(request, 500, [("500", f"内部错误 internal error, id {error_id}")])
    body = error_body(
        "internal_error",
        f"服务器内部错误，错误编号 {error_id}",
        f"Internal error, error id {error_id}",
    )
    body["error_id"] = error_id
    return JSONResponse(body, status_code=500)


class NoInputInTracebacks(logging.Filter):
    """The server's own report of an unexpected error (Starlette re-raises it to uvicorn,
    which logs it with its traceback) without the exception's message and locals, which
    may carry what a resident typed: the type and the frames only. The app's handler has
    already logged the error id, the frames and the route."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            frames = traceback.extract_tb(exc.__traceback__)
            where = "; ".join(
                f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[-6:]
            )
            record.msg = f"{str(record.msg).strip()} {type(exc).__name__} at {where}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


_QUIET = NoInputInTracebacks()

# Path segments that are keys: a resident's SMS link and tracking code, a staff member's
# sign-in link, an Open311 request token (each opens something with no other check).
_KEYED_PATH = re.compile(r"^(/r/link/|/web/welcome/|/open311/v2/tokens/|/r/)[^/?]+")


class NoKeysInAccessLog(logging.Filter):
    """uvicorn's access log line (``client - "METHOD path HTTP/x" status``) with the keys
    of :data:`_KEYED_PATH` and the whole query string (what was searched for: phones,
    names) replaced by ``…``: the route stays readable, nothing that opens a page or
    names a resident is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            path = _KEYED_PATH.sub(r"\1…", path) + ("?…" if query else "")
            record.args = (*args[:2], path, *args[3:])
        return True


_NO_KEYS = NoKeysInAccessLog()


def install_error_handlers(app: FastAPI) -> None:
    # Idempotent: one filter however many apps are created in a process.
    for name in ("uvicorn.error", "uvicorn"):
        if _QUIET not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_QUIET)
    if _NO_KEYS not in logging.getLogger("uvicorn.access").filters:
        logging.getLogger("uvicorn.access").addFilter(_NO_KEYS)
    app.add_exception_handler(TiaojieError, tiaojie_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
