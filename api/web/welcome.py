"""The one-time sign-in link page (``/web/welcome/<token>``): a new or reset account
sets its own password and is signed in (see :mod:`models.sign_in`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.web import auth
from api.web.i18n import Translator, pick_lang
from api.web.routes import (
    PREFIX,
    TimedRoute,
    read_session,
    render_signed_out_form,
    write_session,
)
from models.errors import ValidationError
from models.sign_in import redeem, staff_for

router = APIRouter(route_class=TimedRoute, include_in_schema=False)


def _form(request: Request, token: str, *, username: str | None, error: str | None) -> Response:
    response = render_signed_out_form(
        request,
        "welcome.html",
        {"token": token, "username": username, "error": error},
        status_code=400 if error else 200 if username else 410,
    )
    # The token is in the path: do not leak it to other sites through Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get(f"{PREFIX}/welcome/{{token}}")
def welcome_form(request: Request, token: str) -> Response:
    with read_session(request) as session:
        staff = staff_for(session, token[:64])
        username = staff.username if staff else None
    return _form(request, token, username=username, error=None)


@router.post(f"{PREFIX}/welcome/{{token}}")
async def welcome_submit(request: Request, token: str) -> Response:
    form = await request.form()
    t = Translator(pick_lang(request))
    if not auth.csrf_ok(request.cookies.get(auth.CSRF_COOKIE), str(form.get("csrf_token", ""))):
        return _form(
            request,
            token,
            username=None,
            error=t("表单已过期，请重新打开链接。", "The form expired; open the link again."),
        )
    try:
        with write_session(request) as session:
            staff = redeem(
                session,
                token[:64],
                password=str(form.get("password", ""))[:256],
                repeat=str(form.get("repeat", ""))[:256],
            )
            staff_id = staff.id
            assert staff_id is not None
            session_token, _csrf = auth.replace_session(request, session, staff_id)
    except ValidationError as exc:
        with read_session(request) as session:
            still = staff_for(session, token[:64])
        message = t(exc.message_zh, exc.message_en)
        return _form(request, token, username=still.username if still else None, error=message)
    redirect = RedirectResponse(f"{PREFIX}/inbox", status_code=303)
    auth.set_session_cookie(redirect, request, session_token)
    redirect.delete_cookie(auth.CSRF_COOKIE, path="/")
    return redirect
