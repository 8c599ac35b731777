"""System administration pages (系统管理, administrators only): staff accounts, the unit
tree, and the time limits in force with their history. The rules and the log are in
:mod:`models.admin`; these handlers translate forms and show what happened."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from api.client import public_base
from api.web import auth
from api.web.i18n import Translator, pick_lang
from api.web.routes import PREFIX, TimedRoute, read_session, render, to_login, write_session
from models import actions, admin
from models.access import Principal
from models.enums import Category, StaffRole, UnitLevel
from models.errors import NotFound, ValidationError
from models.policy import PolicySet, TimeLimitPolicy
from models.policy_load import format_limit
from models.settings import get_settings
from models.staff import Staff
from models.tabular import ImportRefused
from models.unit import Unit

router = APIRouter(route_class=TimedRoute, include_in_schema=False)
ADMIN = f"{PREFIX}/admin"
STAFF_FIELDS = ("username", "name", "role", "unit_code", "phone")
UNIT_FIELDS = ("code", "name", "name_en", "level", "parent_code", "address")


def _admin(request: Request) -> Principal | Response:
    """The signed-in administrator, or the answer for anyone else."""
    with read_session(request) as session:
        user = auth.current_user(request, session)
    if user is None:
        return to_login(request)
    if not actions.role_may(user, actions.Duty.ADMINISTER):
        return render(request, "error.html", {"status": 403}, user=user, status_code=403)
    return user


def _as_admin(request: Request, page: Callable[[Principal], Response]) -> Response:
    """``page`` for an administrator; anyone else gets :func:`_admin`'s answer."""
    user = _admin(request)
    return user if isinstance(user, Response) else page(user)


def _public(request: Request, url: str) -> str:
    """A sign-in link on the address people use (:func:`api.client.public_base`)."""
    return public_base(request) + url.removeprefix(get_settings().web_base_url)


def _messages(exc: Exception, t: Translator) -> list[str]:
    if isinstance(exc, ImportRefused):
        return [
            f"{p.column}: {t(p.message_zh, p.message_en)}"
            if p.column
            else t(p.message_zh, p.message_en)
            for p in exc.file_problems
        ]
    if isinstance(exc, ValidationError | NotFound):
        return [t(exc.message_zh, exc.message_en)]
    raise exc


async def _on_admin_form(
    request: Request, handle: Callable[[Principal, dict[str, str]], Response]
) -> Response:
    """``handle`` the administrator's posted form, read as text fields (each cut to 500
    characters; ``skills`` joined with ``;``, any other field's last value). Anyone else
    gets :func:`_admin`'s answer, and a form whose CSRF token is wrong a 403 page."""
    user = _admin(request)
    if isinstance(user, Response):
        return user
    form = await request.form()
    if not auth.csrf_ok(auth.session_csrf(request), str(form.get("csrf_token", ""))):
        return render(request, "error.html", {"status": 403}, user=user, status_code=403)
    fields: dict[str, str] = {}
    for key in form:
        values = [str(v)[:500] for v in form.getlist(key)]
        fields[key] = ";".join(values) if key == "skills" else values[-1]
    return handle(user, fields)


def _change(
    request: Request,
    user: Principal,
    work: Callable[[Session], Any],
    *,
    page: Callable[[list[str]], Response],
    done: Callable[[Any], Response],
) -> Response:
    t = Translator(pick_lang(request))
    try:
        with write_session(request) as session:
            result = work(session)
    except (ImportRefused, ValidationError, NotFound) as exc:
        return page(_messages(exc, t))
    return done(result)


# --- staff ----------------------------------------------------------------------------


def _staff_page(
    request: Request,
    user: Principal,
    *,
    errors: list[str] | None = None,
    values: Mapping[str, str] | None = None,
    link: tuple[str, str] | None = None,
    status: int = 200,
) -> Response:
    params = request.query_params
    with read_session(request) as session:
        units = {u.id: u for u in session.exec(select(Unit)).all()}
        query = select(Staff).order_by(col(Staff.username))
        if q := params.get("q", "").strip()[:64]:
            query = query.where(
                col(Staff.username).contains(q, autoescape=True)
                | col(Staff.display_name).contains(q, autoescape=True)
            )
        if code := params.get("unit", "").strip()[:32]:
            query = query.where(
                col(Staff.unit_id).in_([i for i, u in units.items() if u.code == code])
            )
        staff = list(session.exec(query.limit(500)).all())
    return render(
        request,
        "admin_staff.html",
        {
            "staff": staff,
            "units": units,
            "roles": list(StaffRole),
            "categories": list(Category),
            "errors": errors or [],
            "values": values or {},
            "link": link,
            "q": params.get("q", ""),
            "unit_filter": params.get("unit", ""),
        },
        user=user,
        status_code=status,
    )


@router.get(ADMIN)
def admin_home(request: Request) -> Response:
    return RedirectResponse(f"{ADMIN}/staff", status_code=303)


@router.get(f"{ADMIN}/staff")
def staff_list(request: Request) -> Response:
    return _as_admin(request, lambda user: _staff_page(request, user))


@router.post(f"{ADMIN}/staff")
async def staff_add(request: Request) -> Response:
    return await _on_admin_form(request, lambda user, fields: _add_staff(request, user, fields))


def _add_staff(request: Request, user: Principal, fields: dict[str, str]) -> Response:
    cells = {k: fields.get(k, "") for k in (*STAFF_FIELDS, "skills")} | {"active": "yes"}
    return _change(
        request,
        user,
        lambda s: admin.save_staff(s, cells, actor=user.username, action="staff.add", new=True),
        page=lambda errors: _staff_page(request, user, errors=errors, values=cells, status=400),
        done=lambda report: _staff_page(
            request,
            user,
            link=(report.sign_in_links[0][0], _public(request, report.sign_in_links[0][1]))
            if report.sign_in_links
            else None,
        ),
    )


def _edit_page(
    request: Request,
    user: Principal,
    username: str,
    *,
    errors: list[str] | None = None,
    link: str | None = None,
    saved: bool = False,
    status: int = 200,
) -> Response:
    with read_session(request) as session:
        try:
            member = admin.find_staff(session, username)
        except NotFound:
            return render(request, "error.html", {"status": 404}, user=user, status_code=404)
        cells = admin.staff_cells(session, member)
    return render(
        request,
        "admin_staff_edit.html",
        {
            "member": member,
            "cells": cells,
            "roles": list(StaffRole),
            "categories": list(Category),
            "errors": errors or [],
            "link": link,
            "saved": saved,
        },
        user=user,
        status_code=status,
    )


@router.get(f"{ADMIN}/staff/{{username}}")
def staff_edit(request: Request, username: str) -> Response:
    return _as_admin(request, lambda user: _edit_page(request, user, username[:64]))


@router.post(f"{ADMIN}/staff/{{username}}")
async def staff_update(request: Request, username: str) -> Response:
    """Change role, unit and skills, or (``do=deactivate|activate|reset``) lock the
    account, let it back in, or send a fresh sign-in link."""
    return await _on_admin_form(
        request, lambda user, fields: _update_staff(request, user, username[:64], fields)
    )


def _update_staff(
    request: Request, user: Principal, username: str, fields: dict[str, str]
) -> Response:
    do = fields.get("do", "save")
    if do == "reset":
        return _change(
            request,
            user,
            lambda s: admin.reset_password(s, username, actor=user.username),
            page=lambda errors: _edit_page(request, user, username, errors=errors, status=400),
            done=lambda url: _edit_page(request, user, username, link=_public(request, url)),
        )
    if do in ("deactivate", "activate") and username == user.username:
        t = Translator(pick_lang(request))
        message = t("不能停用自己的账号", "you cannot deactivate your own account")
        return _edit_page(request, user, username, errors=[message], status=400)

    def work(session: Session) -> Any:
        cells = admin.staff_cells(session, admin.find_staff(session, username))
        if do in ("deactivate", "activate"):
            cells["active"] = "yes" if do == "activate" else "no"
            action = f"staff.{do}"
        else:
            cells.update({k: fields.get(k, "") for k in ("name", "role", "unit_code", "skills")})
            action = "staff.update"
        return admin.save_staff(session, cells, actor=user.username, action=action)

    return _change(
        request,
        user,
        work,
        page=lambda errors: _edit_page(request, user, username, errors=errors, status=400),
        done=lambda _report: _edit_page(request, user, username, saved=True),
    )


# --- units ----------------------------------------------------------------------------


def _units_page(
    request: Request,
    user: Principal,
    *,
    errors: list[str] | None = None,
    values: Mapping[str, str] | None = None,
    saved: str | None = None,
    status: int = 200,
) -> Response:
    with read_session(request) as session:
        units = list(session.exec(select(Unit).order_by(col(Unit.path))).all())
    parents = {u.id: u.code for u in units}
    return render(
        request,
        "admin_units.html",
        {
            "units": units,
            "parents": parents,
            "levels": list(UnitLevel),
            "errors": errors or [],
            "values": values or {},
            "saved": saved,
        },
        user=user,
        status_code=status,
    )


@router.get(f"{ADMIN}/units")
def units_list(request: Request) -> Response:
    return _as_admin(request, lambda user: _units_page(request, user))


@router.post(f"{ADMIN}/units")
async def units_save(request: Request) -> Response:
    """Add a unit, or (``existing`` set) rename or move one."""
    return await _on_admin_form(request, lambda user, fields: _save_unit(request, user, fields))


def _save_unit(request: Request, user: Principal, fields: dict[str, str]) -> Response:
    existing = fields.get("existing", "").strip()[:32]

    def work(session: Session) -> Any:
        if not existing:
            cells = {k: fields.get(k, "") for k in (*UNIT_FIELDS, "lat", "lon")}
            return admin.save_unit(session, cells, actor=user.username, action="unit.add", new=True)
        cells = admin.unit_cells(session, admin.find_unit(session, existing))
        moved = fields.get("parent_code", "").strip() != cells["parent_code"]
        cells.update({k: fields.get(k, cells[k]) for k in ("name", "name_en", "parent_code")})
        action = "unit.move" if moved else "unit.rename"
        return admin.save_unit(session, cells, actor=user.username, action=action)

    return _change(
        request,
        user,
        work,
        page=lambda errors: _units_page(request, user, errors=errors, values=fields, status=400),
        done=lambda report: _units_page(
            request, user, saved=", ".join(report.added + [k for k, _ in report.changed]) or "-"
        ),
    )


# --- policies ---------------------------------------------------------------------------


@router.get(f"{ADMIN}/policies")
def policies(request: Request) -> Response:
    user = _admin(request)
    if isinstance(user, Response):
        return user
    with read_session(request) as session:
        rows = list(session.exec(select(TimeLimitPolicy).order_by(col(TimeLimitPolicy.id))).all())
        sets = list(session.exec(select(PolicySet).order_by(col(PolicySet.id).desc())).all())
    return render(
        request,
        "admin_policies.html",
        {"rows": rows, "sets": sets, "limit": format_limit},
        user=user,
    )
