"""The HTML pages: sign-in, intake form, worker inbox, case page, supervisor dashboard.

Server-rendered (Jinja2), zh-CN first with an English switch (``?lang=en``, remembered
in a cookie). Reads go through :mod:`api.web.queries` (read-only, scoped to the user's
reach) and the metrics service; every change goes through a domain service in
``models/`` inside one ``write_session()``. A case out of the user's reach answers 404,
exactly like a case that does not exist.
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.client import client_address
from api.prefect_links import prefect_runs_url
from api.web import auth, mediation, queries
from api.web.charts import RateRow, rates_chart
from api.web.i18n import Translator, pick_lang, remember_lang
from models import clock, db, lifecycle, pii, text_numbers, tracking
from models.case import Case, CaseCreate
from models.cases import show_party
from models.enums import (
    CaseStatus,
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
    StaffRole,
    UnitLevel,
    VisitChannel,
)
from models.errors import FieldProblem, NotFound, TiaojieError, ValidationError
from models.login import sign_in
from models.resident_tables import ResidentPhoto
from models.settings import get_settings

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PREFIX = "/web"
READ_ONLY_ROLES = frozenset({StaffRole.INSTRUCTOR, StaffRole.VOLUNTEER, StaffRole.PARTY_MEMBER})


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
    user: auth.WebUser | None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = pick_lang(request)
    ctx: dict[str, Any] = {
        "t": Translator(lang),
        "lang": lang,
        "user": user,
        "csrf": user.csrf if user else "",
        "prefix": PREFIX,
        "lang_zh_url": _lang_url(request, "zh"),
        "lang_en_url": _lang_url(request, "en"),
        "fmt": clock.format_local,
        "can_write": user is not None and user.role not in READ_ONLY_ROLES,
        "categories_by_code": {c.value: c for c in Category},
        **context,
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    # Cache-Control, CSP, framing and referrer: api.headers, on every answer.
    remember_lang(request, response)
    return response


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303)


def not_found(request: Request, user: auth.WebUser | None) -> HTMLResponse:
    return render(request, "error.html", {"status": 404}, user=user, status_code=404)


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
    token = auth.login_csrf(request)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next": _safe_next(next), "error": None, "username": ""},
        user=None,
    )
    auth.set_login_csrf_cookie(response, request, token)
    return response


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
        token = auth.login_csrf(request)
        response = render(
            request,
            "login.html",
            {"login_csrf": token, "next": target, "error": error, "username": username},
            user=None,
            status_code=status,
        )
        response.headers.update(headers)
        auth.set_login_csrf_cookie(response, request, token)
        return response
    with write_session(request) as session:
        session_token, _csrf = auth.issue_session(session, staff.id)
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
        if user is not None and auth.csrf_ok(user.csrf, str(form.get("csrf_token", ""))):
            auth.end_session(request, session)  # the cookie stops working everywhere
            auth.clear_session_cookie(redirect, request)
    return redirect


# --- inbox ---------------------------------------------------------------------------


@router.get(f"{PREFIX}/inbox", response_class=HTMLResponse)
def inbox_page(request: Request) -> Response:
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        now = clock.now()
        box = queries.inbox(session, user=user, now=now)
    return render(request, "inbox.html", {"box": box, "now": now}, user=user)


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


def _intake_context(session: Session, user: auth.WebUser, values: dict[str, str]) -> dict[str, Any]:
    places = queries.places_for(session, user=user)
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
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        values = {
            "priority": Priority.NORMAL.value,
            "channel": Channel.WALK_IN.value,
            "people_affected": "1",
            # A person unless the worker says otherwise: a name is personal data.
            "respondent_kind": PartyKind.PERSON.value,
        }
        ctx = _intake_context(session, user, values)
    return render(request, "intake.html", {**ctx, "errors": {}, "form_error": None}, user=user)


def _field_for(loc: tuple[int | str, ...]) -> str:
    if loc and loc[0] == "parties" and len(loc) >= 3 and isinstance(loc[1], int):
        return _PARTY_FIELDS.get(loc[1], {}).get(str(loc[2]), "parties")
    if loc and loc[0] == "parties" and len(loc) >= 2 and isinstance(loc[1], int):
        return _PARTY_FIELDS.get(loc[1], {}).get("name", "parties")
    return str(loc[0]) if loc else "form"


_PYDANTIC_ZH = {
    "missing": "必填",
    "string_too_short": "内容太短",
    "string_too_long": "内容太长",
    "int_parsing": "请填写整数",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "enum": "请选择有效的选项",
}


def _problems_from_pydantic(exc: pydantic.ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = _field_for(tuple(err["loc"]))
        message = str(err.get("msg", ""))
        if err["type"] == "value_error":
            text = message.removeprefix("Value error, ")
        else:
            zh = _PYDANTIC_ZH.get(err["type"], "输入有误")
            text = f"{zh} / {message}"
        errors.setdefault(field, text)
    return errors


def _intake_data(form: Mapping[str, str], user: auth.WebUser) -> dict[str, Any]:
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
        if user.role in READ_ONLY_ROLES:
            return not_found(request, user)
        allowed_places = {u.code for u in queries.places_for(session, user=user)}
    t = Translator(pick_lang(request))
    errors: dict[str, str] = {}
    form_error: str | None = None
    status = 422
    if not auth.csrf_ok(user.csrf, form["csrf_token"]):
        form_error = t(
            "表单已过期，请刷新页面后重新提交。", "The form expired; reload and submit again."
        )
        status = 403
    else:
        if not values["complainant_name"].strip():
            errors["complainant_name"] = "请填写申请人姓名 / the complainant's name is required"
        if values["place_code"] and values["place_code"] not in allowed_places:
            errors["place_code"] = "请在您负责的范围内选择地点 / choose a place within your area"
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

                    case = create_case(
                        session, data=data, actor=user.actor, created_by_id=user.staff_id
                    )
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

# Actions a person takes on the page: verb -> (service module, template of its form).
ACTIONS: dict[str, str] = {
    "acceptance_reviewed": "models.acceptance",
    "mediators_named": "models.mediators",
    "consent_recorded": "models.mediating",
    "mediation_started": "models.mediating",
    "session_recorded": "models.mediating",
    "agreement_signed": "models.mediating",
    "mediation_failed": "models.mediating",
    "follow_up_due": "models.mediating",
    "follow_up_recorded": "models.follow_ups",
    "contacted": "models.contact",
    "escalated": "models.escalation",
    "withdrawn": "models.mediating",
    "reopened": "models.follow_ups",
    "assessed": "models.machine_triage",
    "reclassified": "models.machine_triage",
}


def _service_ready(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def page_actions(case: Case, user: auth.WebUser) -> list[str]:
    """What the state machine allows now and a person can do from the page."""
    if user.role in READ_ONLY_ROLES:
        return []
    verbs = []
    for verb in lifecycle.allowed_verbs(case):
        transition = lifecycle.TRANSITIONS[verb]
        if transition.roles and "staff" not in transition.roles:
            continue
        if verb not in ACTIONS or not _service_ready(ACTIONS[verb]):
            continue
        if verb == "follow_up_due" and case.status != CaseStatus.ASSIGNED:
            continue  # the workflow schedules return visits; by hand only "settled directly"
        if verb == "consent_recorded" and case.consent_at is not None:
            continue
        if verb == "contacted" and case.first_response_at is not None:
            continue  # the first contact is made; later calls go into the session minutes
        if user.role == StaffRole.RETURN_VISITOR and verb != "follow_up_recorded":
            continue  # a return visitor only hears the complainant's answers
        if (verb == "assessed") != case.held_for_assessment and verb in (
            "assessed",
            "reclassified",
        ):
            continue  # a held case is confirmed (研判); any other is reclassified
        if verb == "acceptance_reviewed" and case.accepted_at is not None:
            continue
        verbs.append(verb)
    return verbs


def _case_context(session: Session, user: auth.WebUser, case: Case) -> dict[str, Any]:
    detail = queries.case_detail(session, case=case)
    reveal = mediation.entitled(session, user, case)
    parties = [show_party(p, reveal=reveal) for p in detail.parties]
    now = clock.now()
    return {
        "case": case,
        "detail": detail,
        "parties": parties,
        "revealed": reveal,
        # Numbers typed into the case's text: clear for entitled readers only.
        "text_numbers": text_numbers.numbers_of(session, case_id=case.id or 0, reveal=reveal)
        if reveal
        else [],
        "actions": page_actions(case, user),
        "countdown": queries.case_countdown(case, detail.follow_ups, now=now),
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
        "resident_url": get_settings().web_base_url + "/r/",
        "suggestion": queries.triage_suggestion(session, case=case),
        "categories": list(Category),
        "priorities": list(Priority),
        **mediation.mediation_context(session, user, case),
    }


@router.get(f"{PREFIX}/cases/{{number}}", response_class=HTMLResponse)
def case_page(request: Request, number: str) -> Response:
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        case = queries.find_visible_case(session, user=user, number=number[:32])
        if case is None:
            return not_found(request, user)
        ctx = _case_context(session, user, case)
    flash = None
    t = Translator(pick_lang(request))
    if request.query_params.get("created"):
        flash = t(f"案件 {case.number} 已登记。", f"Case {case.number} recorded.")
    elif (done := request.query_params.get("done")) in (*ACTIONS, "attachment_added"):
        flash = t(f"已保存：{t.verb(done)}。", f"Saved: {t.verb(done)}.")
    upload_error = request.query_params.get("upload_error")
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
def resident_photo(request: Request, number: str, photo_id: int) -> Response:
    """A photo the resident sent: for the readers who may see the case's personal data
    (a photo may show people); a plain 404 for everyone else."""
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        case = queries.find_visible_case(session, user=user, number=number[:32])
        photo = session.get(ResidentPhoto, photo_id)
        if (
            case is None
            or photo is None
            or photo.case_id != case.id
            or not queries.may_see_personal_data(user, case)
        ):
            return not_found(request, user)
        return Response(
            photo.data,
            media_type=photo.content_type,
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )


def _local_datetime(value: str, field: str) -> datetime:
    """A ``datetime-local`` value typed in Beijing time, as aware UTC. Blank, or the
    current minute, means now (the form's precision is one minute)."""
    now = clock.now()
    if not value.strip():
        return now
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            f"{field}: not a date and time",
            f"{field}：日期时间格式不正确",
            problems=[FieldProblem(field, "日期时间格式不正确", "not a date and time")],
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.SHANGHAI)
    moment = moment.astimezone(UTC)
    if moment <= now < moment + timedelta(minutes=1):
        return now
    return moment


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            f"{field}: not a date",
            f"{field}：日期格式不正确",
            problems=[FieldProblem(field, "日期格式不正确", "not a date (YYYY-MM-DD)")],
        ) from None


def _model(module: Any, name: str, data: dict[str, Any]) -> Any:
    return _validated(getattr(module, name), data)


def _validated(model: type[pydantic.BaseModel], data: dict[str, Any]) -> Any:
    """The form data parsed by a typed model, or a :class:`ValidationError` (422)."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            FieldProblem(
                ".".join(str(p) for p in e["loc"]) or "form",
                _PYDANTIC_ZH.get(e["type"], "输入有误"),
                str(e.get("msg", "")).removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
        raise ValidationError("the form has errors", "表单有误", problems=problems) from None


E = TypeVar("E", bound=Enum)


def _enum(kind: type[E], value: str, field: str) -> E | None:
    """A form's choice of an enumeration (None when left empty)."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(
            f"{field}: not one of the choices", f"{field}：不在可选范围内"
        ) from None


class ActionNumbers(pydantic.BaseModel):
    """The numbers of a page action's form, parsed before anything else: a value that is
    not a plain number (``abc``, ``²``) is a 422 naming the field, never a 500."""

    model_config = pydantic.ConfigDict(extra="ignore")

    version: int | None = pydantic.Field(default=None, ge=1, le=10**9)
    party_ids: list[int] = pydantic.Field(default_factory=list, max_length=200)

    @pydantic.field_validator("version", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        text = str(value or "").strip()
        if not text:
            return None
        if not (text.isascii() and text.isdigit()):
            raise ValueError("应为数字 / must be a number")
        return text

    @pydantic.field_validator("party_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        parts = [p.strip() for p in str(value or "").split(",") if p.strip()]
        if not all(p.isascii() and p.isdigit() and len(p) <= 12 for p in parts):
            raise ValueError("应为当事人编号 / must be party ids")
        return parts


def run_action(
    session: Session,
    *,
    verb: str,
    case: Case,
    form: Mapping[str, str],
    numbers: ActionNumbers,
    user: auth.WebUser,
) -> None:
    """Call the domain service behind one page action (all validation is the domain's)."""
    assert case.id is not None
    common: dict[str, Any] = {
        "case_id": case.id,
        "actor": user.actor,
        "expected_version": numbers.version,
    }
    if verb in ("acceptance_reviewed", "mediators_named"):
        run_committee_action(session, verb=verb, case=case, form=form, user=user)
        return
    if verb in ("assessed", "reclassified"):
        from models import machine_triage

        machine_triage.set_classification(
            session,
            category=_enum(Category, form.get("category", ""), "category"),
            priority=_enum(Priority, form.get("priority", ""), "priority"),
            **common,
        )
        return
    if verb in (
        "mediation_started",
        "consent_recorded",
        "session_recorded",
        "agreement_signed",
        "mediation_failed",
        "follow_up_due",
        "withdrawn",
    ):
        from models import mediating

        if verb == "consent_recorded":
            mediating.record_consent(session, party_ids=numbers.party_ids or None, **common)
        elif verb == "mediation_started":
            mediating.start_mediation(session, **common)
        elif verb == "session_recorded":
            from models import mediation

            data = _model(
                mediation,
                "SessionCreate",
                {
                    "held_at": _local_datetime(form.get("held_at", ""), "held_at"),
                    "place": form.get("place", ""),
                    "participants": form.get("participants", ""),
                    "minutes": form.get("minutes", ""),
                },
            )
            mediating.record_session(session, data=data, **common)
        elif verb == "agreement_signed":
            from models import mediation

            terms = []
            for i in (1, 2, 3):
                text = form.get(f"term_{i}", "").strip()
                due = form.get(f"term_{i}_due", "").strip()
                if text or due:
                    terms.append({"text": text, "due_on": _date(due, f"term_{i}_due")})
            data = _model(
                mediation,
                "AgreementCreate",
                {"summary": form.get("summary", ""), "signed_at": None, "terms": terms},
            )
            mediating.sign_agreement(session, data=data, **common)
        elif verb == "mediation_failed":
            referral = form.get("referral") or None
            mediating.fail_mediation(
                session,
                reason=form.get("reason", "").strip(),
                referral=ReferralTarget(referral) if referral else None,
                **common,
            )
        elif verb == "follow_up_due":
            mediating.resolve_directly(
                session, resolution=form.get("resolution", "").strip(), **common
            )
        elif verb == "withdrawn":
            mediating.withdraw_case(session, reason=form.get("reason", "").strip(), **common)
    elif verb in ("follow_up_recorded", "reopened"):
        from models import follow_up, follow_ups

        if verb == "reopened":
            follow_ups.reopen_case(session, reason=form.get("reason", "").strip(), **common)
        else:
            data = _model(
                follow_up,
                "FollowUpRecord",
                {
                    "outcome": form.get("outcome") or None,
                    "resolved": form.get("resolved") or None,
                    "satisfied": form.get("satisfied") or None,
                    "channel": form.get("channel") or "phone",
                    "unit_at_fault": form.get("unit_at_fault") == "1",
                    "notes": form.get("notes", "").strip(),
                },
            )
            follow_ups.record_follow_up(session, data=data, **common)
    elif verb == "contacted":
        from models import contact

        at = form.get("at", "").strip()
        data = _model(
            contact,
            "ContactCreate",
            {
                "method": form.get("method") or None,
                "at": _local_datetime(at, "at") if at else None,
                "note": form.get("note", "").strip() or None,
            },
        )
        contact.record_contact(session, data=data, **common)
    elif verb == "escalated":
        from models import escalation

        escalation.escalate_case(
            session,
            now=clock.now(),
            by_hand=True,
            reason=form.get("reason", "").strip(),
            **common,
        )
    else:
        raise NotFound(f"no page action {verb!r}", f"没有这个操作：{verb}")


def run_committee_action(
    session: Session, *, verb: str, case: Case, form: Mapping[str, str], user: auth.WebUser
) -> None:
    """受理审查 and naming mediators (the domain validates)."""
    from models import acceptance, mediators
    from models.enums import NotAcceptedReason

    version = int(form.get("version") or 0) or None
    if verb == "acceptance_reviewed":
        accepted = form.get("decision") != "not_accepted"
        reason = form.get("not_accepted_reason") or None
        route = form.get("route") or None
        acceptance.review_acceptance(
            session,
            case_id=case.id or 0,
            accepted=accepted,
            reason=None if accepted or reason is None else NotAcceptedReason(reason),
            route=None if accepted or route is None else ReferralTarget(route),
            note=form.get("note", ""),
            actor=user.actor,
            expected_version=version,
        )
        return
    ids = [int(x) for x in form.get("staff_ids", "").split(",") if x.strip().isdigit()]
    mediators.name_mediators(
        session, case=case, staff_ids=ids, actor=user.actor, expected_version=version
    )


ACTION_FIELDS = (
    "decision", "not_accepted_reason", "route", "note", "staff_ids",
    "version", "csrf_token", "party_ids", "held_at", "place", "participants", "minutes",
    "summary", "term_1", "term_1_due", "term_2", "term_2_due", "term_3", "term_3_due",
    "reason", "referral", "resolution", "outcome", "resolved", "satisfied", "channel",
    "unit_at_fault", "notes", "method", "at", "note",
    "category", "priority",
)  # fmt: skip


@router.post(f"{PREFIX}/cases/{{number}}/actions/{{verb}}", response_class=HTMLResponse)
async def case_action(request: Request, number: str, verb: str) -> Response:
    raw = await request.form()
    form = {k: str(raw.get(k, ""))[:8000] for k in ACTION_FIELDS}
    if "party_ids" in raw:
        form["party_ids"] = ",".join(str(v) for v in raw.getlist("party_ids"))
    if "staff_ids" in raw:
        form["staff_ids"] = ",".join(str(v) for v in raw.getlist("staff_ids"))
    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
        case = queries.find_visible_case(session, user=user, number=number[:32])
        if case is None:
            return not_found(request, user)
        allowed = page_actions(case, user)
    t = Translator(pick_lang(request))
    error: str | None = None
    errors: dict[str, str] = {}
    status = 200
    numbers: ActionNumbers | None = None
    bad_numbers = ValidationError("the form has errors", "表单有误")
    try:
        numbers = _validated(ActionNumbers, form)
    except ValidationError as exc:
        bad_numbers = exc
    if not auth.csrf_ok(user.csrf, form["csrf_token"]):
        error, status = (
            t("表单已过期，请刷新页面后重试。", "The form expired; reload and retry."),
            403,
        )
    elif numbers is None:
        status, error = 422, f"{bad_numbers.message_zh} / {bad_numbers.message_en}"
        for p in bad_numbers.problems:
            errors.setdefault(p.field, f"{p.message_zh} / {p.message_en}")
    elif verb not in allowed:
        error, status = (
            t("当前状态下不能执行此操作。", "This action is not possible in the case's state."),
            409,
        )
    else:
        try:
            with write_session(request) as session:
                fresh = queries.find_visible_case(session, user=user, number=case.number)
                if fresh is None:
                    return not_found(request, user)
                run_action(session, verb=verb, case=fresh, form=form, numbers=numbers, user=user)
            return RedirectResponse(
                f"{PREFIX}/cases/{quote(case.number)}?done={verb}#timeline", status_code=303
            )
        except ValidationError as exc:
            status = 422
            error = f"{exc.message_zh} / {exc.message_en}"
            for p in exc.problems:
                errors.setdefault(p.field.split(".")[-1], f"{p.message_zh} / {p.message_en}")
        except TiaojieError as exc:
            status = exc.http_status if 400 <= exc.http_status < 500 else 409
            error = f"{exc.message_zh} / {exc.message_en}"
    with read_session(request) as session:
        case = queries.find_visible_case(session, user=user, number=case.number)
        if case is None:
            return not_found(request, user)
        ctx = _case_context(session, user, case)
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
        return date(int(month[:4]), int(month[5:]), 1)
    return clock.to_local(now).date().replace(day=1)


def _shift_month(first: date, months: int) -> str:
    index = first.year * 12 + first.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@router.get(f"{PREFIX}/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, level: str | None = None, month: str | None = None) -> Response:
    from models import metrics
    from models.month_problem import get_month_problem
    from models.monthly_report import previous_month

    with read_session(request) as session:
        user = auth.current_user(request, session)
        if user is None:
            return to_login(request)
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
        backlog = list(metrics.backlog_by_unit(session, within_path=reach, level=backlog_level))
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
            "error": request.query_params.get("problem_error"),
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
    back = f"{PREFIX}/dashboard?{urlencode({'month': month})}" if month else f"{PREFIX}/dashboard"
    if not auth.csrf_ok(user.csrf, form["csrf_token"]):
        return RedirectResponse(back + "&problem_error=csrf#problem", status_code=303)
    try:
        data = _validated(MonthProblemSet, {k: v for k, v in form.items() if k != "csrf_token"})
        with write_session(request) as session:
            set_month_problem(session, data=data, actor=user.actor)
    except TiaojieError as exc:
        query = urlencode({"month": month, "problem_error": f"{exc.message_zh} / {exc.message_en}"})
        return RedirectResponse(f"{PREFIX}/dashboard?{query}#problem", status_code=303)
    return RedirectResponse(back + "#problem", status_code=303)
