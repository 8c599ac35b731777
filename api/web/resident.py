"""The resident's pages at ``/r/{code}``: no sign-in; the last four digits of the phone
given at intake open a short-lived session on that one case (models/resident.py).

The pages translate only: every check and every action is in models/resident.py and
models/resident_actions.py. Every request counts against the client address's limit
(api.ratelimit, the trusted-proxy client address); a page for a made-up code looks
exactly like one for a real code until the phone check passes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from api.client import client_address, is_https
from api.ratelimit import RateLimited
from api.web.auth import csrf_ok
from api.web.i18n import Translator
from api.web.routes import read_session, templates, write_session
from models import clock
from models import resident as resident_service
from models import resident_actions as actions
from models.enums import ResolvedAnswer, SatisfiedAnswer
from models.errors import TiaojieError, ValidationError
from models.resident_tables import ResidentSession
from models.settings import get_settings

router = APIRouter(include_in_schema=False)
COOKIE = "tj_resident"
ACTIONS = ("info", "consent", "terms", "visit")


def _url(code: str, tail: str = "") -> str:
    return f"/r/{quote(code[:64], safe='')}{tail}"


def limited_response(request: Request) -> Response | None:
    try:
        request.app.state.resident_limiter.hit(f"ip:{client_address(request)}")
    except RateLimited as exc:
        return _page(
            request,
            code="",
            ctx={"error": f"{exc.message_zh} / {exc.message_en}"},
            status=429,
            headers=exc.headers,
        )
    return None


def _page(
    request: Request,
    *,
    code: str,
    ctx: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    base = {
        "t": Translator("zh"),
        "code": code[:64],
        "action_url": _url(code) if code else "/r/",
        "fmt": clock.format_local,
        "view": None,
        "error": None,
        "done": None,
        "resolved_answers": list(ResolvedAnswer),
        "satisfied_answers": list(SatisfiedAnswer),
        "max_photos": get_settings().resident_photos_max,
        "max_mb": get_settings().resident_photo_max_bytes / 1_000_000,
    }
    response = templates.TemplateResponse(
        request, "resident.html", {**base, **ctx}, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _who(request: Request, code: str) -> ResidentSession | None:
    with read_session(request) as session:
        return resident_service.session_for(session, token=request.cookies.get(COOKIE), code=code)


def _case_page(
    request: Request,
    code: str,
    who: ResidentSession,
    token: str,
    *,
    status: int = 200,
    **extra: str | None,
) -> HTMLResponse:
    """The resident's own case as it stands, with a form token for their next step."""
    with read_session(request) as session:
        view = actions.view(session, who=who)
    ctx = {"view": view, "csrf": resident_service.csrf_for(token), **extra}
    return _page(request, code=code, ctx=ctx, status=status)


@router.get("/r/{code}", response_class=HTMLResponse)
def resident_page(request: Request, code: str) -> Response:
    if (limited := limited_response(request)) is not None:
        return limited
    who = _who(request, code)
    if who is None:
        return _page(request, code=code, ctx={})
    done = request.query_params.get("done")
    token = request.cookies.get(COOKIE, "")
    return _case_page(request, code, who, token, done=done if done in ACTIONS else None)


@router.post("/r/{code}", response_class=HTMLResponse)
async def phone_check(request: Request, code: str) -> Response:
    if (limited := limited_response(request)) is not None:
        return limited
    form = await request.form()
    last4 = str(form.get("last4", ""))[:16]
    refused: resident_service.CheckRefused | None = None
    with write_session(request) as session:
        try:
            opened = resident_service.check_phone(session, code=code, last4=last4)
        except resident_service.CheckRefused as exc:
            refused = exc  # the failure is counted: the session commits it
    if refused is not None:
        return _page(
            request,
            code=code,
            ctx={"error": refused.message_zh, "locked": refused.locked},
            status=403,
        )
    response = RedirectResponse(_url(code), status_code=303)
    response.set_cookie(
        COOKIE,
        opened.token,
        max_age=get_settings().resident_session_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/r/",
    )
    return response


@router.post("/r/{code}/logout")
async def resident_logout(request: Request, code: str) -> Response:
    with write_session(request) as session:
        resident_service.end_session(session, token=request.cookies.get(COOKIE))
    response = RedirectResponse(_url(code), status_code=303)
    response.delete_cookie(COOKIE, path="/r/", httponly=True, samesite="strict")
    return response


async def _photos(values: list[Any], limit: int) -> list[bytes]:
    photos: list[bytes] = []
    for value in values:
        if isinstance(value, UploadFile) and value.filename:
            photos.append(await value.read(limit + 1))
    return photos


def perform(
    verb: str, session: Any, who: actions.Who, form: dict[str, str], photos: list[bytes]
) -> None:
    """One resident action from its form (the page after the phone check, or a link)."""
    if verb == "info":
        actions.add_information(session, who=who, note=str(form.get("note", "")), photos=photos)
    elif verb == "consent":
        actions.answer_consent(session, who=who, agree=form.get("agree") == "yes")
    elif verb == "terms":
        actions.confirm_terms(
            session,
            who=who,
            carried_out=form.get("carried_out") == "yes",
            note=str(form.get("note", "")),
        )
    else:
        try:
            resolved = ResolvedAnswer(str(form.get("resolved", "")))
            satisfied = SatisfiedAnswer(str(form.get("satisfied", "")))
        except ValueError as exc:
            raise ValidationError(
                "answer both questions", "请回答“是否解决”和“是否满意”两个问题。"
            ) from exc
        actions.answer_visit(
            session,
            who=who,
            resolved=resolved,
            satisfied=satisfied,
            comment=str(form.get("comment", "")),
        )


@router.post("/r/{code}/{verb}", response_class=HTMLResponse)
async def resident_action(request: Request, code: str, verb: str) -> Response:
    if (limited := limited_response(request)) is not None:
        return limited
    if verb not in ACTIONS:
        return _page(request, code=code, ctx={"error": "没有这项操作。"}, status=404)
    settings = get_settings()
    async with request.form(max_files=settings.resident_photos_max + 1, max_fields=20) as form:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        photos = await _photos(form.getlist("photos"), settings.resident_photo_max_bytes)
    token = request.cookies.get(COOKIE, "")
    who = _who(request, code)
    if who is None or not csrf_ok(resident_service.csrf_for(token), fields.get("csrf", "")):
        return _page(
            request,
            code=code,
            ctx={"error": "请先输入手机号后四位（页面已过期）。"},
            status=403,
        )
    error: TiaojieError | None = None
    try:
        with write_session(request) as session:
            perform(verb, session, who, fields, photos)
    except TiaojieError as exc:
        error = exc
    if error is not None:
        return _case_page(
            request, code, who, token, status=error.http_status, error=error.message_zh
        )
    return RedirectResponse(_url(code, f"?done={verb}"), status_code=303)
