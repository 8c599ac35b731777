"""System administration (系统管理) from the web pages: staff accounts and the unit tree.

Each change is one row through the same import rules as ``tiaojie import`` (so a role, a
unit, a phone or a level order is checked by one owner, :mod:`models.district_import`)
and one entry in the administration log, named after what the administrator did.
Deactivating an account locks it out at once: every web page and every API token checks
that the account is still active (the API's principal cache holds it for 5 s at most).
"""

from __future__ import annotations

from sqlmodel import Session

from models import pii, web_sessions
from models.admin_log import record
from models.district_import import ImportReport, import_staff, import_units
from models.errors import NotFound, ValidationError
from models.sign_in import issue_link, link_url
from models.staff import Staff, staff_by_username
from models.tabular import Row
from models.unit import Unit, unit_by_code

SOURCE = "系统管理 web"


def _unit_code(session: Session, unit_id: int | None) -> str:
    unit = session.get(Unit, unit_id) if unit_id else None
    return unit.code if unit else ""


def staff_cells(session: Session, staff: Staff) -> dict[str, str]:
    """An account as a row of staff.csv (what the edit form starts from)."""
    return {
        "username": staff.username,
        "name": staff.display_name,
        "role": staff.role.value,
        "unit_code": _unit_code(session, staff.unit_id),
        "skills": ";".join(staff.skills),
        "phone": pii.decrypt(staff.phone_enc) if staff.phone_enc else "",
        "active": "yes" if staff.active else "no",
        "capacity": str(staff.capacity),
        "away": "yes" if staff.away else "no",
    }


def find_staff(session: Session, username: str) -> Staff:
    staff = staff_by_username(session, username)
    if staff is None:
        raise NotFound(f"no staff member {username!r}", f"没有用户名为 {username} 的工作人员")
    return staff


def save_staff(
    session: Session, cells: dict[str, str], *, actor: str, action: str, new: bool = False
) -> ImportReport:
    """Add (``new``) or change one account (``cells`` as in staff.csv); a new one gets a
    one-time sign-in link in the report. Raises ImportRefused with every mistake."""
    name = cells.get("username", "").strip().lower()
    if new and staff_by_username(session, name) is not None:
        raise ValidationError(f"username {name!r} is taken", f"用户名 {name} 已被使用")
    return import_staff(session, [Row(1, cells)], file=SOURCE, actor=actor, action=action)


def reset_password(session: Session, username: str, *, actor: str) -> str:
    """The old password stops working; the answer is a fresh one-time sign-in link."""
    staff = find_staff(session, username)
    assert staff.id is not None
    staff.password_hash = None
    session.add(staff)
    web_sessions.revoke_sessions(session, staff.id, why="password reset")
    token = issue_link(session, staff.id)
    record(session, actor=actor, action="staff.reset_password", target=username)
    return link_url(token)


def unit_cells(session: Session, unit: Unit) -> dict[str, str]:
    """A unit as a row of units.csv."""
    return {
        "code": unit.code,
        "name": unit.name_zh,
        "name_en": unit.name_en,
        "level": unit.level.value,
        "parent_code": _unit_code(session, unit.parent_id),
        "address": unit.address or "",
        "lat": "" if unit.lat is None else repr(unit.lat),
        "lon": "" if unit.lon is None else repr(unit.lon),
    }


def find_unit(session: Session, code: str) -> Unit:
    unit = unit_by_code(session, code)
    if unit is None:
        raise NotFound(f"no unit {code!r}", f"没有编码为 {code} 的单位")
    return unit


def save_unit(
    session: Session, cells: dict[str, str], *, actor: str, action: str, new: bool = False
) -> ImportReport:
    """Add (``new``), rename or move one unit (a move takes its subtree and the cases
    filed there, their histories untouched). Raises ImportRefused with every mistake."""
    code = cells.get("code", "").strip()
    if new and unit_by_code(session, code) is not None:
        raise ValidationError(f"unit code {code!r} is taken", f"单位编码 {code} 已存在")
    return import_units(session, [Row(1, cells)], file=SOURCE, actor=actor, action=action)
