"""The HTML pages: sign-in, intake form, worker inbox, case page, supervisor dashboard.

Server-rendered (Jinja2), zh-CN first with an English switch (``?lang=en``, remembered
in a cookie). Reads go through :mod:`api.web.queries` (read-only, scoped to the user's
reach) and the metrics service; every change goes through a domain service in
``models/`` inside one ``write_session()``. A case out of the user's reach answers 404,
exactly like a case that does not exist.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractContextManager, suppress
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.client import client_address, public_base
from api.deps import RowId
from api.prefect_links import prefect_runs_url
from api.web import auth, forms, mediation, queries
from api.web.charts import RateRow, rates_chart
from api.web.i18n import Translator, pick_lang, remember_lang
from api.web.timeline import timeline_rows
from models import (
    access,
    actions,
    clock,
    db,
    helping,
    pii,
    text_numbers,
    tracking,
    web_sessions,
)
from models.access import Principal
from models.case import Case, CaseCreate
from models.cases import show_party
from models.enums import (
    Category,
    Channel,
    ContactMethod,
    FollowUpOutcome,
    PartyKind,
    PartySide,
    Priority,
    ReferralTarget,
    ResolvedAnswer,
    SatisfiedAnswer,
    UnitLevel,
    VisitChannel,
)
from models.errors import NotFound, TiaojieError, ValidationError
from models.login import sign_in
from models.resident_tables import ResidentPhoto

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PREFIX = "/web"


class TimedRoute(APIRoute):
    """Adds ``Server-Timing: app;dur=…`` (milliseconds) to every page's answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def timed(request: Request) -> Response:
            started = time.perf_counter()
            response = await handler(request)
            elapsed = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
            return response

        return timed


router = APIRouter(route_class=TimedRoute, include_in_schema=False)


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["static_version"] = "1"
# Phone and ID numbers typed into free text are masked unless the reader is entitled.
templates.env.filters["scrub"] = pii.scrub_text
templates.env.globals["staff_id_of"] = access.staff_id_of
templates.env.globals["role_may"] = actions.role_may


# --- sessions and rendering helpers -------------------------------------------------


def _engine(request: Request) -> Engine | None:
    """The app's engine (``create_app`` keeps it on ``app.state``), else the default."""
    return getattr(request.app.state, "engine", None)


def _signin_limit(request: Request) -> int | None:
    """The app's own sign-in limit (``create_app`` keeps its settings), else the default."""
    settings = getattr(request.app.state, "settings", None)
    return settings.signin_per_minute if settings is not None else None


def read_session(request: Request) -> AbstractContextManager[Session]:
    return db.read_session(_engine(request))


def write_session(request: Request) -> AbstractContextManager[Session]:
    return db.write_session(_engine(request))


def _lang_url(request: Request, lang: str) -> str:
    params = dict(request.query_params)
    params["lang"] = lang
    return f"{request.url.path}?{urlencode(params)}"


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    user: Principal | None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = pick_lang(request)
    ctx: dict[str, Any] = {
        "t": Translator(lang),
        "lang": lang,
        "user": user,
        "csrf": auth.session_csrf(request) if user else "",
        "prefix": PREFIX,
        "lang_zh_url": _lang_url(request, "zh"),
        "lang_en_url": _lang_url(request, "en"),
        "fmt": clock.format_local,
        "can_write": actions.role_may(user, actions.Duty.RECORD),
        "categories_by_code": {c.value: c for c in Category},
        # Links handed out (the resident's tracking page): the address people use.
        "public_base": public_base(request),
        **context,
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    # Cache-Control, CSP, framing and referrer: api.headers, on every answer.
    remember_lang(request, response)
    return response


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303)


def not_found(request: Request, user: Principal | None) -> HTMLResponse:
    return render(request, "error.html", {"status": 404}, user=user, status_code=404)


def signed_in_page(request: Request, page: Callable[[Session, Principal], Response]) -> Response:
    """``page`` (given a read session) for the signed-in person; anyone else is sent to
    sign in and comes back here afterwards."""
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        return page(session, user)


def reader_and_case(
    request: Request, session: Session, number: str
) -> tuple[Principal, Case] | Response:
    """The signed-in person and their case numbered ``number`` (cut to 32 characters);
    otherwise the answer to give: the sign-in page to someone not signed in, the page's
    404 for a case that is missing or out of their reach (the two look alike)."""
    user = auth.current_user(request, session)
    if user is None:
        return to_login(request)
    case = queries.find_visible_case(session, user=user, number=number[:32])
    if case is None:
        return not_found(request, user)
    return user, case


def render_signed_out_form(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """A page whose form is posted before anyone is signed in (sign-in, first password).
    Its CSRF value is double-submitted: in the form as ``login_csrf`` and in a cookie."""
    token = auth.login_csrf(request)
    response = render(
        request, template, {**context, "login_csrf": token}, user=None, status_code=status_code
    )
    auth.set_login_csrf_cookie(response, request, token)
    return response


def forbidden(request: Request, user: Principal | None) -> HTMLResponse:
    return render(request, "error.html", {"status": 403}, user=user, status_code=403)


def _safe_next(target: str | None) -> str:
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        return target
    return f"{PREFIX}/inbox"


# --- sign-in -------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/inbox", status_code=303)


@router.get(PREFIX, response_class=HTMLResponse)
@router.get(f"{PREFIX}/", response_class=HTMLResponse)
def web_home(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/inbox", status_code=303)


@router.get(f"{PREFIX}/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return render_signed_out_form(
        request, "login.html", {"next": _safe_next(next), "error": None, "username": ""}
    )


@router.post(f"{PREFIX}/login", response_class=HTMLResponse)
async def login_submit(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:256]
    target = _safe_next(str(form.get("next", "")))
    t = Translator(pick_lang(request))
    error: str | None
    staff = None
    headers: dict[str, str] = {}
    if not auth.csrf_ok(request.cookies.get(auth.CSRF_COOKIE), str(form.get("csrf_token", ""))):
        error = t("表单已过期，请重新提交。", "The form expired; please submit it again.")
        status = 403
    else:
        # The rules (limit, back-off, constant time, audit) are the sign-in service's.
        attempt = await run_in_threadpool(
            sign_in,
            _engine(request),
            username=username,
            password=password,
            address=client_address(request),
            channel="web",
            per_minute=_signin_limit(request),
        )
        staff = attempt.staff
        error, status = None, 200
        if attempt.retry_after_s is not None:
            wait = attempt.retry_after_s
            error = t(
                f"尝试次数过多，请 {wait} 秒后再试。", f"Too many attempts; try again in {wait} s."
            )
            status, headers = 429, {"Retry-After": str(wait)}
        elif staff is None:
            error = t("用户名或密码不正确。", "Wrong username or password.")
            status = 401
    if staff is None or staff.id is None:
        response = render_signed_out_form(
            request,
            "login.html",
            {"next": target, "error": error, "username": username},
            status_code=status,
        )
        response.headers.update(headers)
        return response
    with write_session(request) as session:
        session_token, _csrf = auth.replace_session(request, session, staff.id)
    redirect = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(redirect, request, session_token)
    redirect.delete_cookie(auth.CSRF_COOKIE, path="/")
    return redirect


@router.post(f"{PREFIX}/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    redirect = RedirectResponse(f"{PREFIX}/login", status_code=303)
    with write_session(request) as session:
        user = auth.current_user(request, session)
        if user is not None and auth.csrf_ok(
            auth.session_csrf(request), str(form.get("csrf_token", ""))
        ):
            auth.end_session(request, session)  # the cookie stops working everywhere
            auth.clear_session_cookie(redirect, request)
    return redirect


# --- inbox ---------------------------------------------------------------------------


@router.get(f"{PREFIX}/inbox", response_class=HTMLResponse)
def inbox_page(request: Request) -> Response:
    def page(session: Session, user: Principal) -> Response:
        now = clock.now()
        box = queries.inbox(session, user=user, now=now)
        since = (
            web_sessions.previous_sign_in(session, staff_id=user.staff_id)
            if user.staff_id is not None
            else None
        )
        changes = (
            queries.changes_since(session, rows=box.mine, me=user.ref, since=since)
            if since is not None
            else []
        )
        context = {"box": box, "now": now, "since": since, "changes": changes}
        return render(request, "inbox.html", context, user=user)

    return signed_in_page(request, page)


# --- intake --------------------------------------------------------------------------

INTAKE_FIELDS = (
    "category",
    "priority",
    "channel",
    "place_code",
    "address_text",
    "description",
    "people_affected",
    "received_at",
    "complainant_name",
    "complainant_phone",
    "complainant_id",
    "respondent_name",
    "respondent_kind",
)
_PARTY_FIELDS = {
    0: {"name": "complainant_name", "phone": "complainant_phone", "id_number": "complainant_id"},
    1: {"name": "respondent_name", "kind": "respondent_kind"},
}


def _intake_context(session: Session, user: Principal, values: dict[str, str]) -> dict[str, Any]:
    places = access.places_for(session, user)
    top = min((u.path.count("/") for u in places), default=0)
    return {
        "values": values,
        "places": [(u, "\u3000" * (u.path.count("/") - top)) for u in places],
        "categories": list(Category),
        "priorities": list(Priority),
        "channels": [c for c in Channel if c != Channel.OPEN311],
        "respondent_kinds": [PartyKind.FIRM, PartyKind.AGENCY, PartyKind.PERSON],
    }


@router.get(f"{PREFIX}/cases/new", response_class=HTMLResponse)
def intake_form(request: Request) -> Response:
    values = {
        "priority": Priority.NORMAL.value,
        "channel": Channel.WALK_IN.value,
        "people_affected": "1",
        # A person unless the worker says otherwise: a name is personal data.
        "respondent_kind": PartyKind.PERSON.value,
    }

    def page(session: Session, user: Principal) -> Response:
        ctx = _intake_context(session, user, values)
        return render(request, "intake.html", {**ctx, "errors": {}, "form_error": None}, user=user)

    return signed_in_page(request, page)


def _field_for(loc: tuple[int | str, ...]) -> str:
    if loc and loc[0] == "parties" and len(loc) >= 3 and isinstance(loc[1], int):
        return _PARTY_FIELDS.get(loc[1], {}).get(str(loc[2]), "parties")
    if loc and loc[0] == "parties" and len(loc) >= 2 and isinstance(loc[1], int):
        return _PARTY_FIELDS.get(loc[1], {}).get("name", "parties")
    return str(loc[0]) if loc else "form"


def _problems_from_pydantic(exc: pydantic.ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = _field_for(tuple(err["loc"]))
        message = str(err.get("msg", ""))
        if err["type"] == "value_error":
            text = message.removeprefix("Value error, ")
        else:
            zh = forms.PYDANTIC_ZH.get(err["type"], "输入有误")
            text = f"{zh} / {message}"
        errors.setdefault(field, text)
    return errors


def _intake_data(form: Mapping[str, str], user: Principal) -> dict[str, Any]:
    parties: list[dict[str, Any]] = []
    name = form.get("complainant_name", "").strip()
    parties.append(
        {
            "side": PartySide.COMPLAINANT,
            "kind": PartyKind.PERSON,
            "name": name,
            "phone": form.get("complainant_phone") or None,
            "id_number": form.get("complainant_id") or None,
        }
    )
    respondent = form.get("respondent_name", "").strip()
    if respondent:
        parties.append(
            {
                "side": PartySide.RESPONDENT,
                "kind": form.get("respondent_kind") or PartyKind.PERSON,
                "name": respondent,
            }
        )
    people = form.get("people_affected", "").strip() or "1"
    received = form.get("received_at", "").strip()
    if received and not received.endswith(("Z", "+08:00")):
        received += "+08:00"  # typed in Beijing time
    return {
        "received_at": received or None,
        "category": form.get("category") or None,
        "priority": form.get("priority") or Priority.NORMAL,
        "channel": form.get("channel") or Channel.WALK_IN,
        "description": form.get("description", ""),
        "address_text": form.get("address_text", "").strip() or None,
        "people_affected": people,
        "place_code": form.get("place_code") or None,
        "parties": parties,
        "category_locked": bool(form.get("category")),
        "priority_locked": form.get("priority") not in (None, "", Priority.NORMAL.value),
    }


@router.post(f"{PREFIX}/cases/new", response_class=HTMLResponse)
async def intake_submit(request: Request) -> Response:
    raw = await request.form()
    form = {k: str(raw.get(k, ""))[:4000] for k in (*INTAKE_FIELDS, "csrf_token")}
    values = {k: form[k] for k in INTAKE_FIELDS}
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        if not actions.role_may(user, actions.Duty.RECORD):
            return forbidden(request, user)
    t = Translator(pick_lang(request))
    errors: dict[str, str] = {}
    form_error: str | None = None
    status = 422
    if not auth.csrf_ok(auth.session_csrf(request), form["csrf_token"]):
        form_error = t(
            "表单已过期，请刷新页面后重新提交。", "The form expired; reload and submit again."
        )
        status = 403
    else:
        if not values["complainant_name"].strip():
            errors["complainant_name"] = "请填写申请人姓名 / the complainant's name is required"
        if values["place_code"]:
            with read_session(request) as session:
                try:
                    access.place_for_filing(session, user, values["place_code"])
                except ValidationError as exc:
                    errors["place_code"] = f"{exc.message_zh} / {exc.message_en}"
        if not values["place_code"] and not values["address_text"].strip():
            errors["place_code"] = "请选择地点或填写地址 / pick a place or type an address"
        data: CaseCreate | None = None
        try:
            data = CaseCreate.model_validate(_intake_data(form, user))
        except pydantic.ValidationError as exc:
            for field, text in _problems_from_pydantic(exc).items():
                errors.setdefault(field, text)
        if data is not None and not errors:
            try:
                with write_session(request) as session:
                    from models.cases import create_case

                    case = create_case(session, data=data, actor=user, created_by_id=user.staff_id)
                    number = case.number
                return RedirectResponse(
                    f"{PREFIX}/cases/{quote(number)}?created=1", status_code=303
                )
            except ValidationError as exc:
                for p in exc.problems:
                    errors.setdefault(p.field, f"{p.message_zh} / {p.message_en}")
                if not exc.problems:
                    form_error = f"{exc.message_zh} / {exc.message_en}"
            except TiaojieError as exc:
                form_error = f"{exc.message_zh} / {exc.message_en}"
        if not form_error and errors:
            form_error = t("请修改标红的栏目。", "Please correct the fields marked in red.")
    with read_session(request) as session:
        ctx = _intake_context(session, user, values)
    return render(
        request,
        "intake.html",
        {**ctx, "errors": errors, "form_error": form_error},
        user=user,
        status_code=status,
    )


@router.get(f"{PREFIX}/fragments/duplicates", response_class=HTMLResponse)
def duplicate_suggestions(
    request: Request,
    place_code: str | None = None,
    respondent: str | None = None,
    description: str | None = None,
) -> Response:
    """Open cases that look like the complaint being typed (an HTML fragment)."""
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return HTMLResponse("", status_code=401)
        place = (place_code or "").strip()[:32] or None
        who = (respondent or "").strip()[:200] or None
        text = (description or "").strip()[:4000] or None
        suggestions: list[Any] = []
        if place or who:
            from models.triage import suggest_duplicates

            suggestions = list(
                suggest_duplicates(
                    session,
                    place_code=place,
                    respondent=who,
                    description=text,
                    limit=5,
                    reach_path=user.reach_path,
                )
            )
    return render(request, "fragments/duplicates.html", {"suggestions": suggestions}, user=user)


@router.get(f"{PREFIX}/fragments/triage", response_class=HTMLResponse)
def triage_suggestion(
    request: Request, description: str | None = None, people_affected: int = 1
) -> Response:
    """The classifier's reading of the complaint being typed (an HTML fragment): the
    suggested category and priority, the top three, the risk and the reasons. Nothing
    is stored."""
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return HTMLResponse("", status_code=401)
        text = (description or "").strip()[:4000]
        found = None
        if len(text) >= 6:
            from models.assessment import assess_with
            from models.triage_learning import active_model

            found = assess_with(
                active_model(session), text, people_affected=max(1, min(people_affected, 100000))
            ).as_json()
    return render(request, "fragments/triage.html", {"found": found}, user=user)


# --- case page -----------------------------------------------------------------------


def _case_context(session: Session, user: Principal, case: Case, t: Translator) -> dict[str, Any]:
    detail = queries.case_detail(session, case=case)
    reveal = mediation.entitled(session, user, case)
    parties = [show_party(p, reveal=reveal) for p in detail.parties]
    offered = actions.allowed(session, user, case)
    now = clock.now()
    return {
        "case": case,
        "detail": detail,
        "timeline": timeline_rows(
            detail.events, notes=detail.event_notes, staff_names=detail.staff_names, t=t
        ),
        "parties": parties,
        "revealed": reveal,
        # Numbers typed into the case's text: clear for entitled readers only.
        "text_numbers": text_numbers.numbers_of(session, case_id=case.id or 0, reveal=reveal)
        if reveal
        else [],
        # The page offers a form for the rows it has forms for; the upload has one of its own.
        "actions": [a.verb for a in offered if a.page and not a.upload],
        "may_upload": actions.ACTIONS["attachments"] in offered,
        "action_fields": forms.all_fields(),
        "countdown": queries.case_countdown(case, now=now),
        "prefect_url": prefect_runs_url(case),
        "outcomes": list(FollowUpOutcome),
        "resolved_answers": list(ResolvedAnswer),
        "satisfied_answers": list(SatisfiedAnswer),
        "visit_channels": [c for c in VisitChannel if c != VisitChannel.RESIDENT_LINK],
        "contact_methods": list(ContactMethod),
        "referrals": list(ReferralTarget),
        "today": clock.to_local(now).date().isoformat(),
        "now_local": clock.to_local(now).strftime("%Y-%m-%dT%H:%M"),
        "tracking_code": tracking.code_for(case.number) if case.tracking_hash else None,
        "suggestion": queries.triage_suggestion(session, case=case),
        "categories": list(Category),
        "priorities": list(Priority),
        **mediation.mediation_context(session, user, case, detail),
    }


@router.get(f"{PREFIX}/cases/{{number}}", response_class=HTMLResponse)
def case_page(request: Request, number: str) -> Response:
    with read_session(request) as session:
        found = reader_and_case(request, session, number)
        if isinstance(found, Response):
            return found
        user, case = found
        t = Translator(pick_lang(request))
        ctx = _case_context(session, user, case, t)
    flash = None
    if request.query_params.get("created"):
        flash = t(f"案件 {case.number} 已登记。", f"Case {case.number} recorded.")
        with read_session(request) as session:
            # The receipt names the community that received the complaint, not its building.
            ctx["received_by"] = helping.community_of(session, case)
    elif (done := request.query_params.get("done")) in (*actions.BY_VERB, "attachment_added"):
        flash = t(f"已保存：{t.verb(done)}。", f"Saved: {t.verb(done)}.")
    upload_error = auth.note_from(request, "upload_error")
    return render(
        request,
        "case.html",
        {
            **ctx,
            "flash": flash,
            "error": t(f"上传失败：{upload_error[:200]}", f"Upload refused: {upload_error[:200]}")
            if upload_error
            else None,
            "errors": {},
            "open_action": None,
        },
        user=user,
    )


@router.get(f"{PREFIX}/cases/{{number}}/photos/{{photo_id}}")
def resident_photo(request: Request, number: str, photo_id: RowId) -> Response:
    """A photo the resident sent: for the readers who may see the case's personal data
    (a photo may show people); a plain 404 for everyone else."""
    with read_session(request) as session:
        found = reader_and_case(request, session, number)
        if isinstance(found, Response):
            return found
        user, case = found
        photo = session.get(ResidentPhoto, photo_id)
        if (
            photo is None
            or photo.case_id != case.id
            or not actions.personal_data_visible(session, user, case)
        ):
            return not_found(request, user)
        return Response(
            photo.data,
            media_type=photo.content_type,
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )


MAX_FORM_FIELDS = 40


def _action_form(raw: Any) -> dict[str, str]:
    """The posted fields, each cut to a sane length (a list of ticks joined by commas)."""
    form: dict[str, str] = {}
    for key in list(raw.keys())[:MAX_FORM_FIELDS]:
        values = raw.getlist(key)
        form[str(key)[:64]] = ",".join(str(v)[:8000] for v in values)[:8000]
    return form


def _perform(
    request: Request, user: Principal, number: str, verb: str, form: dict[str, str]
) -> None:
    """Run the page's action through the table (:func:`models.actions.run`)."""
    action = actions.BY_VERB.get(verb)
    if action is None or not action.page or action.upload:
        raise access.not_found(f"{number}/{verb}")
    body = forms.read_form(action, form)
    with write_session(request) as session:
        case = access.find_case(session, user, number)
        actions.run(session, user, case, action.name, body)


@router.post(f"{PREFIX}/cases/{{number}}/actions/{{verb}}", response_class=HTMLResponse)
async def case_action(request: Request, number: str, verb: str) -> Response:
    form = _action_form(await request.form())
    with read_session(request) as session:
        found = reader_and_case(request, session, number)
        if isinstance(found, Response):
            return found
        user, case = found
    t = Translator(pick_lang(request))
    errors: dict[str, str] = {}
    if not auth.csrf_ok(auth.session_csrf(request), form.get("csrf_token")):
        error, status = (
            t("表单已过期，请刷新页面后重试。", "The form expired; reload and retry."),
            403,
        )
    else:
        try:
            _perform(request, user, case.number, verb, form)
            return RedirectResponse(
                f"{PREFIX}/cases/{quote(case.number)}?done={verb}#timeline", status_code=303
            )
        except NotFound:
            return not_found(request, user)
        except TiaojieError as exc:
            status = exc.http_status if 400 <= exc.http_status < 500 else 409
            error = f"{exc.message_zh} / {exc.message_en}"
            for p in getattr(exc, "problems", []):
                errors.setdefault(p.field, f"{p.message_zh} / {p.message_en}")
    with read_session(request) as session:
        again = queries.find_visible_case(session, user=user, number=case.number)
        if again is None:
            return not_found(request, user)
        ctx = _case_context(session, user, again, t)
    return render(
        request,
        "case.html",
        {
            **ctx,
            "flash": None,
            "error": error,
            "errors": errors,
            "open_action": verb,
            "posted": form,
        },
        user=user,
        status_code=status,
    )


# --- dashboard -----------------------------------------------------------------------

# "ranking": communities and paired agencies ranked together (月度排名); the others one level.
DASHBOARD_LEVELS = (UnitLevel.STREET, UnitLevel.COMMUNITY, UnitLevel.COMPOUND, UnitLevel.AGENCY)
MONTH_PARAM = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _dashboard_month(month: str | None, now: datetime) -> date:
    if month and MONTH_PARAM.match(month):
        with suppress(ValueError):
            return clock.within_years(date(int(month[:4]), int(month[5:]), 1))
    return clock.to_local(now).date().replace(day=1)


def _shift_month(first: date, months: int) -> str:
    index = first.year * 12 + first.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@router.get(f"{PREFIX}/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, level: str | None = None, month: str | None = None) -> Response:
    return signed_in_page(
        request, lambda session, user: _dashboard(request, session, user, level, month)
    )


def _dashboard(
    request: Request, session: Session, user: Principal, level: str | None, month: str | None
) -> Response:
    from models import metrics
    from models.month_problem import get_month_problem
    from models.monthly_report import previous_month

    lang = pick_lang(request)
    t = Translator(lang)
    chosen = UnitLevel(level) if level in {lv.value for lv in DASHBOARD_LEVELS} else None
    now = clock.now()
    first = _dashboard_month(month, now)
    since, until = metrics.month_range(first)
    reach = user.reach_path
    if chosen is None:
        rates = metrics.monthly_ranking(session, month=first, within_path=reach)
    else:
        rates = metrics.unit_rates(
            session, since=since, until=until, level=chosen, within_path=reach
        )
    backlog_level = chosen if chosen not in (None, UnitLevel.AGENCY) else UnitLevel.COMMUNITY
    backlog = list(
        metrics.backlog_by_unit(session, within_path=reach, level=backlog_level, now=now)
    )
    overdue_levels = list(
        metrics.overdue_by_level(session, now=now, within_path=reach, since=since)
    )
    escalations = list(
        metrics.recent_escalations(session, since=now - timedelta(days=1), within_path=reach)
    )
    clusters = list(metrics.clusters(session, since=since, within_path=reach))
    candidate = metrics.problem_of_the_month(session, month_start=first, within_path=reach)
    decided = get_month_problem(session, month=f"{first:%Y-%m}")
    lead_units = queries.units_in_reach(session, user=user, levels=PROBLEM_LEAD_LEVELS)
    overdue = queries.overdue_cases(session, user=user, now=now, limit=50)
    runs = {row.case.number: prefect_runs_url(row.case, now=now) for row in overdue}
    rows = [
        RateRow(
            label=(r.unit_name_en if lang == "en" else r.unit_name),
            response=r.response_rate,
            resolution=r.resolution_rate,
            satisfaction=r.satisfaction_rate,
            cases=r.cases,
        )
        for r in rates
    ]
    which = (
        t("各社区和结对部门", "communities and paired agencies")
        if chosen is None
        else t(f"各{chosen.zh}", f"by {chosen.en.lower()}")
    )
    title = t(f"{first:%Y-%m} {which}三率", f"Three rates {which}, {first:%Y-%m}")
    # Two drawings of the same figures: the stylesheet shows the one that fits the screen.
    chart = rates_chart(rows, lang=lang, title=title) + rates_chart(
        rows, lang=lang, title=title, width=360
    )
    return render(
        request,
        "dashboard.html",
        {
            "rates": rates,
            "weights": metrics.weights(),
            "last_month": f"{previous_month(clock.to_local(now).date()):%Y-%m}",
            "month": f"{first:%Y-%m}",
            "prev_month": _shift_month(first, -1),
            "next_month": _shift_month(first, 1),
            "this_month": f"{clock.to_local(now):%Y-%m}",
            "chart": chart,
            "backlog": backlog,
            "overdue_levels": overdue_levels,
            "escalations": escalations,
            "clusters": clusters,
            "candidate": candidate,
            "decided": decided,
            "lead_units": lead_units,
            "categories": list(Category),
            "overdue": overdue,
            "runs": runs,
            "level": chosen,
            "backlog_level": backlog_level,
            "levels": DASHBOARD_LEVELS,
            "now": now,
            "error": auth.note_from(request, "problem_error"),
        },
        user=user,
    )


PROBLEM_LEAD_LEVELS = (UnitLevel.STREET, UnitLevel.COMMUNITY, UnitLevel.AGENCY, UnitLevel.DISTRICT)


@router.post(f"{PREFIX}/dashboard/problem", response_class=HTMLResponse)
async def set_problem(request: Request) -> Response:
    """每月一题: a supervisor names the month's problem, its lead unit and the plan."""
    from models.month_problem import MonthProblemSet, set_month_problem

    raw = await request.form()
    form = {
        k: str(raw.get(k) or "")
        for k in ("csrf_token", "month", "category", "title", "lead_unit_code", "plan")
    }
    with read_session(request) as session:
        user = auth.current_user(request, session)
    if user is None:
        return to_login(request)
    month = form["month"] if MONTH_PARAM.match(form["month"]) else ""

    def back(note: str | None = None) -> RedirectResponse:
        query = {"month": month} if month else {}
        if note is not None:  # signed: the dashboard shows no words a link brought
            query |= {"problem_error": note, "problem_error_sig": auth.sign_note(request, note)}
        where = f"{PREFIX}/dashboard?{urlencode(query)}" if query else f"{PREFIX}/dashboard"
        return RedirectResponse(where + "#problem", status_code=303)

    if not auth.csrf_ok(auth.session_csrf(request), form["csrf_token"]):
        return back("csrf")
    try:
        fields = {k: v for k, v in form.items() if k != "csrf_token"}
        data = forms.validated(MonthProblemSet, fields)
        with write_session(request) as session:
            set_month_problem(session, data=data, actor=user)
    except TiaojieError as exc:
        return back(f"{exc.message_zh} / {exc.message_en}")
    return back()
