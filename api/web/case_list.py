"""The case list (案件查询, ``/web/cases``): filters, sorting and keyset pages within the
reader's reach, and its export to .xlsx and CSV (``/web/export/cases.xlsx|csv``) with the
same filters. The search is :mod:`models.case_search`; the rows of the export
:mod:`models.case_export`; reach and the personal-data rule come from
:mod:`api.web.queries`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.web import auth, queries
from api.web.i18n import Translator, pick_lang
from api.web.routes import PREFIX, TimedRoute, read_session, render, to_login, write_session
from models import access, actions, admin_log, case_export, clock
from models.access import Principal
from models.case_search import SORTS, CaseFilter, search
from models.enums import CaseStatus, Category, Priority
from models.staff import staff_by_username
from models.unit import unit_by_code

router = APIRouter(route_class=TimedRoute, include_in_schema=False)
PAGE_SIZE = 50
FIELDS = (
    "status",
    "category",
    "priority",
    "unit",
    "handler",
    "from",
    "to",
    "overdue",
    "group",
    "q",
    "sort",
)


def _enum(kind: Any, raw: str, problems: list[str], label: str) -> Any:
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        problems.append(label)
        return None


def _date(raw: str, problems: list[str], label: str) -> date | None:
    if not raw:
        return None
    try:
        return clock.within_years(date.fromisoformat(raw))
    except ValueError:
        problems.append(label)
        return None


def _yes_no(raw: str) -> bool | None:
    return {"yes": True, "no": False}.get(raw)


def parse_filter(
    session: Any, params: Mapping[str, str], user: Principal, t: Translator
) -> tuple[CaseFilter, list[str]]:
    """The filter of the query string; unknown values are reported, never guessed."""
    problems: list[str] = []
    unit_path = None
    if code := params.get("unit", "").strip():
        unit = unit_by_code(session, code)
        if unit is None:
            problems.append(t(f"没有编码为 {code} 的单位", f"no unit with code {code}"))
        else:
            unit_path = unit.path
    handler = params.get("handler", "").strip()
    handler_id = None
    if handler == "me":
        handler_id = user.staff_id
    elif handler:
        found = staff_by_username(session, handler)
        handler_id = found.id if found else -1
    f = CaseFilter(
        status=_enum(CaseStatus, params.get("status", ""), problems, t("状态", "status")),
        category=_enum(Category, params.get("category", ""), problems, t("类别", "category")),
        priority=_enum(Priority, params.get("priority", ""), problems, t("优先级", "priority")),
        unit_path=unit_path,
        assignee_id=handler_id,
        created_from=_date(params.get("from", ""), problems, t("起始日期", "from date")),
        created_to=_date(params.get("to", ""), problems, t("截止日期", "to date")),
        overdue=_yes_no(params.get("overdue", "")),
        group=_yes_no(params.get("group", "")),
        text=params.get("q", "").strip()[:100] or None,
        reader_unit_id=user.unit_id,
    )
    return f, problems


@dataclass(frozen=True)
class _Asked:
    """A request of the case list or its export: who asks, the query (each value cut to
    100 characters), the filter read from it and what in it could not be read."""

    user: Principal
    params: dict[str, str]
    filter: CaseFilter
    problems: list[str]


def _asked(request: Request, session: Session) -> _Asked | Response:
    """The signed-in person's search; anyone not signed in is sent to sign in."""
    user = auth.current_user(request, session)
    if user is None:
        return to_login(request)
    params = {k: v[:100] for k, v in request.query_params.items()}
    f, problems = parse_filter(session, params, user, Translator(pick_lang(request)))
    return _Asked(user, params, f, problems)


def _query(params: Mapping[str, str], **extra: str) -> str:
    kept = {k: params[k] for k in FIELDS if params.get(k)}
    kept.update({k: v for k, v in extra.items() if v})
    return urlencode(kept)


@router.get(f"{PREFIX}/cases")
def case_list(request: Request) -> Response:
    with read_session(request) as session:
        asked = _asked(request, session)
        if isinstance(asked, Response):
            return asked
        user, params, problems = asked.user, asked.params, asked.problems
        now = clock.now()
        page = search(
            session,
            asked.filter,
            reach=access.reach_clause(user),
            now=now,
            sort=params.get("sort", "newest"),
            cursor=params.get("after") or None,
            limit=PAGE_SIZE,
        )
        rows = queries.case_rows(session, page.cases, now=now)
    context = {
        "rows": rows,
        "total": page.total,
        "capped": page.capped,
        "params": params,
        "problems": problems,
        "sorts": list(SORTS),
        "statuses": list(CaseStatus),
        "categories": list(Category),
        "priorities": list(Priority),
        "next_url": f"{PREFIX}/cases?{_query(params, after=page.next_cursor or '')}"
        if page.next_cursor
        else None,
        "first_url": f"{PREFIX}/cases?{_query(params)}" if params.get("after") else None,
        "export_query": _query(params),
        "can_export": actions.role_may(user, actions.Duty.EXPORT),
        "now": now,
    }
    return render(request, "cases.html", context, user=user, status_code=400 if problems else 200)


def _logged(params: Mapping[str, str]) -> str:
    """The export's filters as its log entry names them: the words searched for are not
    kept (a resident's phone or name is what people search by), only that there were
    some."""
    return _query({**params, "q": "*"} if params.get("q") else params) or "all"


def _export(request: Request, kind: str) -> Response:
    with read_session(request) as session:
        asked = _asked(request, session)
        if isinstance(asked, Response):
            return asked
        user, params = asked.user, asked.params
        if not actions.role_may(user, actions.Duty.EXPORT):
            return render(request, "error.html", {"status": 403}, user=user, status_code=403)
        if asked.problems:
            return render(request, "error.html", {"status": 400}, user=user, status_code=400)
        now = clock.now()
        data = case_export.rows(
            session,
            asked.filter,
            reach=access.reach_clause(user),
            reveal=lambda cases: actions.personal_data_visible_ids(session, user, cases),
            now=now,
            sort=params.get("sort", "newest"),
        )
        if kind == "xlsx":
            body, count = case_export.to_xlsx(data)
        else:
            listed = list(data)
            body, count = case_export.to_csv(iter(listed)), len(listed)
    with write_session(request) as session:
        admin_log.record(
            session,
            actor=user.username,
            action=f"export.cases.{kind}",
            target=_logged(params),
            detail={"rows": count},
        )
    stamp = clock.to_local(now).strftime("%Y%m%d-%H%M")
    media = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if kind == "xlsx"
        else "text/csv; charset=utf-8"
    )
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="cases-{stamp}.{kind}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(f"{PREFIX}/export/cases.xlsx")
def export_xlsx(request: Request) -> Response:
    return _export(request, "xlsx")


@router.get(f"{PREFIX}/export/cases.csv")
def export_csv(request: Request) -> Response:
    return _export(request, "csv")
