"""The pages of a one-use link sent by SMS: ``/r/link/{token}`` (models/resident_links.py).

A link opens one form for one action (consent, terms carried out, the return visit,
the respondent's invitation) on one case, with no phone check: the link is the key.
Submitting it uses the link and performs the action in one transaction; an action that
is refused (a bad date, say) leaves the link unused. Used, expired, forged or stale
links all get the same calm page. The pages translate only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.web.auth import csrf_ok
from api.web.i18n import Translator
from api.web.resident import limited_response, perform
from api.web.routes import read_session, templates, write_session
from models import clock, resident_links, respondent
from models import resident_actions as actions
from models.enums import ResolvedAnswer, SatisfiedAnswer
from models.errors import TiaojieError
from models.resident import csrf_for
from models.resident_tables import ResidentLink

router = APIRouter(include_in_schema=False)
DONE = {
    "accepted": "已收到您的答复：同意调解。调解员会根据您提出的时间与各方联系，确定调解时间。",
    "declined": "已记录您不同意调解。人民调解以自愿为原则，您仍可通过其他途径解决纠纷。",
    "consent": "已收到您的答复，谢谢。",
    "terms": "已收到您对协议履行情况的确认，谢谢。",
    "visit": "已收到您的回访评价，谢谢。",
}


def _page(request: Request, ctx: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    today = clock.to_local(clock.now()).date()
    base = {
        "t": Translator("zh"),
        "fmt": clock.format_local,
        "link": None,
        "error": None,
        "done": None,
        "resolved_answers": list(ResolvedAnswer),
        "satisfied_answers": list(SatisfiedAnswer),
        "parts": respondent.PARTS,
        "max_slots": respondent.MAX_SLOTS,
        "first_day": today.fromordinal(today.toordinal() + 1).isoformat(),
        "last_day": today.fromordinal(today.toordinal() + respondent.SLOT_DAYS).isoformat(),
    }
    response = templates.TemplateResponse(
        request, "resident_link.html", {**base, **ctx}, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _form_page(
    request: Request, token: str, link: ResidentLink, *, status: int = 200, error: str | None = None
) -> HTMLResponse:
    """The one form the link is for (the respondent's view shows nothing of the
    complainant; the complainant's shows their own case)."""
    with read_session(request) as session:
        if link.purpose == "respondent":
            shown: Any = respondent.respondent_view(session, who=link, expires_at=link.expires_at)
        else:
            shown = actions.view(session, who=link)
    ctx = {
        "link": link,
        "purpose": resident_links.PURPOSES[link.purpose],
        "shown": shown,
        "token": token,
        "csrf": csrf_for(token),
        "error": error,
    }
    return _page(request, ctx, status=status)


def _refused(request: Request) -> HTMLResponse:
    refusal = resident_links.LinkRefused()
    return _page(request, {"error": refusal.message_zh}, status=refusal.http_status)


@router.get("/r/link/done/{what}", response_class=HTMLResponse)
def link_done(request: Request, what: str) -> Response:
    return _page(request, {"done": DONE.get(what, DONE["consent"])})


@router.get("/r/link/{token}", response_class=HTMLResponse)
def link_page(request: Request, token: str) -> Response:
    if (limited := limited_response(request)) is not None:
        return limited
    try:
        with read_session(request) as session:
            link = resident_links.open_link(session, token=token)
    except resident_links.LinkRefused:
        return _refused(request)
    return _form_page(request, token, link)


def _perform(session: Any, link: ResidentLink, form: dict[str, Any], slots: list[Any]) -> str:
    """Do what the link is for; answers the name of the thank-you page."""
    if link.purpose != "respondent":
        perform(link.purpose, session, link, form, [])
        return link.purpose
    accept = form.get("answer") == "accept"
    parsed = respondent.parse_slots(slots) if accept else []
    respondent.answer(
        session, who=link, accept=accept, slots=parsed, note=str(form.get("note", ""))
    )
    return "accepted" if accept else "declined"


@router.post("/r/link/{token}", response_class=HTMLResponse)
async def link_action(request: Request, token: str) -> Response:
    if (limited := limited_response(request)) is not None:
        return limited
    async with request.form(max_files=0, max_fields=20) as form:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        days = [str(v) for v in form.getlist("slot_day")][: respondent.MAX_SLOTS + 1]
        parts = [str(v) for v in form.getlist("slot_part")][: respondent.MAX_SLOTS + 1]
    if not csrf_ok(csrf_for(token), str(fields.get("csrf", ""))):
        return _refused(request)
    error: TiaojieError | None = None
    try:
        with write_session(request) as session:
            purpose = resident_links.open_link(session, token=token).purpose
            link = resident_links.use_link(session, token=token, purpose=purpose)
            what = _perform(session, link, fields, list(zip(days, parts, strict=False)))
    except resident_links.LinkRefused:
        return _refused(request)
    except TiaojieError as exc:
        error = exc
    if error is not None:
        with read_session(request) as session:
            try:
                link = resident_links.open_link(session, token=token)
            except resident_links.LinkRefused:
                return _refused(request)
        return _form_page(request, token, link, status=error.http_status, error=error.message_zh)
    return RedirectResponse(f"/r/link/done/{what}", status_code=303)
