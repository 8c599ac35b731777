"""Who is acting, which cases they reach, whose personal data they see, and where they
may file a case: the rule book of access, written once and used by every front end
(staff REST, Open311, the web pages, the CLI) and by the domain services.

**Principal.** One type for whoever acts: a staff member (``kind="staff"``, with their
role and unit as stored now), the workflow (``Principal.system()``), a public Open311
client (``Principal.public()``) or a resident on their own case's page
(``Principal.resident(party_id)``; they reach nothing through the staff front ends).
Domain services take it as ``actor`` (``models.lifecycle.Actor`` is this class); the event
log records :attr:`Principal.ref` (``"staff:12"``, ``"system"``, ``"open311"``,
``"resident:7"``), the staff id read back with :func:`staff_id_of`.

**Reach** (:func:`reaches`, and the same rule as SQL in :func:`reach_clause`; a test
holds the two to each other). A staff member reaches a case when

1. the unit handling it is in their subtree (their unit or below it); or
2. the place where it happened is in their subtree: the community keeps a case in view
   after it is escalated up the tree or referred out ("小事不出村", and a referral is
   not an exit); or
3. they are its assignee; or
4. they recorded it; or
5. they are an active helper of it (协办): added to the case as a helper (staff lent by
   an agency paired with the community, 结对共建, or a community helper) while the case
   is open. They reach that case and no other of the area; the help ends, and reach with
   it, when the case is closed, merged or withdrawn. A helper who reaches a case only by
   rule 5 does only what the action table lets helpers do
   (:func:`reaches_in_own_right` tells the two apart).

Administrators reach every case; the workflow acts on every case; an Open311 client
reaches none through the staff front ends. A case out of reach answers exactly like a
case that does not exist (:func:`not_found`, 404), never 403.

**Personal data** (:func:`may_see_personal_data`): names, phone numbers and ID numbers
are shown in clear to the people whose work is to contact the parties: the case's
assignee, the staff member who recorded the complaint (they typed it; they make the
first contact), while a referral stands the staff member who referred it out (the
community keeps it in view and makes its return visits), the mediators of the unit
handling the case (the committee that mediates) and return visitors (回访员: the
independent return visit is a call to the complainant; they do nothing else to a case).
Return visits need the contact, so the same rule says who records them
(:mod:`models.actions`). Everyone else (other workers, supervisors, instructors,
volunteers, administrators) sees masked values: administrators administer, they do not
read residents' ID numbers.

**Read-only roles** (:data:`READ_ONLY_ROLES`): instructors, volunteers and in-service Party
members registered with a community read what they reach and record nothing.

**Exports** (:func:`may_export`): the case list leaves as a spreadsheet for the staff of
the office and those above them, instructors included; volunteers and in-service Party
members (people of the neighbourhood who lend a hand) read the cases they reach one by
one, never a whole list.

**Simulations** (:func:`may_use_simulator`): supervisors and administrators see the
past policy simulations with their reports and start new ones; a simulation covers the
whole district (figures and unit names, no case and no person), so it is not limited by
reach. Everyone else gets 403.

**Places** (:func:`place_for_filing`): a case happens in a community, compound or
building (:data:`PLACE_LEVELS`). A staff member files a case only at a place in their
own subtree (administrators anywhere); the public files anywhere in the city.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import ColumnElement, and_, false, or_
from sqlmodel import Session, col, select

from models.case import Case
from models.enums import ReferralTarget, StaffRole, UnitLevel
from models.errors import FieldProblem, NotFound, PermissionDenied, ValidationError
from models.helper import CaseHelper
from models.staff import Staff
from models.unit import Unit, unit_by_code, within_path

Kind = Literal["staff", "system", "open311", "resident"]

READ_ONLY_ROLES = frozenset({StaffRole.INSTRUCTOR, StaffRole.VOLUNTEER, StaffRole.PARTY_MEMBER})
NO_EXPORT_ROLES = frozenset({StaffRole.VOLUNTEER, StaffRole.PARTY_MEMBER})
PLACE_LEVELS = frozenset({UnitLevel.COMMUNITY, UnitLevel.COMPOUND, UnitLevel.BUILDING})
STAFF_PREFIX = "staff:"


@dataclass(frozen=True)
class Principal:
    """Whoever acts: a staff member, the workflow, or a public client. Carries no
    personal data; built from the database by :func:`principal_for_staff`."""

    kind: Kind
    staff_id: int | None = None
    role: StaffRole | None = None
    unit_path: str | None = None
    unit_id: int | None = None
    unit_code: str | None = None
    unit_name: str = ""
    unit_level: UnitLevel | None = None
    username: str = ""
    display_name: str = ""
    party_id: int | None = None  # a resident acting on their own case (kind "resident")

    @classmethod
    def system(cls) -> Principal:
        return cls(kind="system", username="system")

    @classmethod
    def public(cls, client: str = "") -> Principal:
        return cls(kind="open311", username=f"open311:{client}" if client else "open311")

    @classmethod
    def resident(cls, party_id: int) -> Principal:
        return cls(kind="resident", party_id=party_id)

    @property
    def ref(self) -> str:
        """How the event log and idempotency records name this principal."""
        if self.kind == "staff":
            return f"{STAFF_PREFIX}{self.staff_id}"
        if self.kind == "resident":
            return f"resident:{self.party_id}"
        return self.kind

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def is_admin(self) -> bool:
        return self.is_staff and self.role == StaffRole.ADMIN

    @property
    def can_write(self) -> bool:
        """Staff who may record things on cases (not instructors or volunteers)."""
        return self.is_staff and self.role is not None and self.role not in READ_ONLY_ROLES

    @property
    def is_supervisor(self) -> bool:
        return self.is_staff and self.role in (StaffRole.SUPERVISOR, StaffRole.ADMIN)

    @property
    def reach_path(self) -> str | None:
        """The unit subtree this principal oversees (dashboards, suggestions); None for
        administrators (everything). Cases are reached by :func:`reaches`."""
        if self.is_admin:
            return None
        return self.unit_path or "/__nowhere__/"

    def covers(self, path: str | None) -> bool:
        """Whether a unit path is in this principal's subtree."""
        if self.is_admin:
            return True
        return bool(self.unit_path and path and path.startswith(self.unit_path))


Actor = Principal


def principal_for_staff(session: Session, staff: Staff) -> Principal:
    """The principal of a staff member as stored now (role and unit from the database)."""
    unit = session.get(Unit, staff.unit_id) if staff.unit_id is not None else None
    return principal_of(staff, unit)


def principal_of(staff: Staff, unit: Unit | None) -> Principal:
    """The principal of a staff member and their unit (``staff.unit_id``'s), read already."""
    return Principal(
        kind="staff",
        staff_id=staff.id,
        role=staff.role,
        unit_path=unit.path if unit else None,
        unit_id=unit.id if unit else None,
        unit_code=unit.code if unit else None,
        unit_name=unit.name_zh if unit else "",
        unit_level=unit.level if unit else None,
        username=staff.username,
        display_name=staff.display_name,
    )


def staff_id_of(actor_ref: str) -> int | None:
    """The staff id in an event's actor (``"staff:12"`` -> 12); None for others."""
    rest = actor_ref.removeprefix(STAFF_PREFIX)
    if rest == actor_ref or not (rest.isascii() and rest.isdigit()) or len(rest) > 12:
        return None
    return int(rest)


# --- reach --------------------------------------------------------------------------


def reaches_in_own_right(principal: Principal, case: Case, *, place_path: str | None) -> bool:
    """Reach by rules 1 to 4 (the area, the assignee, the recorder; not as a helper)."""
    if principal.kind == "system" or principal.is_admin:
        return True
    if not principal.is_staff:
        return False
    if principal.covers(case.unit_path) or principal.covers(place_path):
        return True
    return principal.staff_id is not None and principal.staff_id in (
        case.assignee_id,
        case.created_by_id,
    )


def helps_on(principal: Principal, case: Case) -> bool:
    """Rule 5: an active helper of ``case`` (added to it, and the case still open)."""
    return (
        principal.is_staff
        and principal.staff_id is not None
        and case.is_open
        and principal.staff_id in (case.helper_ids or [])
    )


def reaches(principal: Principal, case: Case, *, place_path: str | None) -> bool:
    """Whether ``principal`` reaches ``case`` (rule in the module docstring).
    ``place_path``: the path of the case's place unit (None when it has none)."""
    return reaches_in_own_right(principal, case, place_path=place_path) or helps_on(principal, case)


def reach_clause(principal: Principal) -> ColumnElement[bool] | None:
    """:func:`reaches` as a condition on ``Case`` rows (None: no restriction). Rule 5
    reads the helper rows (``case_helper``), which ``Case.helper_ids`` mirrors."""
    if principal.kind == "system" or principal.is_admin:
        return None
    if not principal.is_staff:
        return false()
    clauses: list[ColumnElement[bool]] = []
    if principal.unit_path:
        prefix = principal.unit_path
        # Ranges (models.unit.within_path): the open cases handled in the subtree are
        # read from the (is_open, unit_path) index, not found among every open case.
        places = select(Unit.id).where(within_path(col(Unit.path), prefix))
        clauses.append(within_path(col(Case.unit_path), prefix))
        clauses.append(col(Case.place_unit_id).in_(places))
    if principal.staff_id is not None:
        clauses.append(col(Case.assignee_id) == principal.staff_id)
        clauses.append(col(Case.created_by_id) == principal.staff_id)
        helped = select(CaseHelper.case_id).where(CaseHelper.staff_id == principal.staff_id)
        clauses.append(and_(col(Case.is_open), col(Case.id).in_(helped)))
    return or_(*clauses) if clauses else false()


def not_found(ref: object) -> NotFound:
    """The one answer for a case that does not exist or is out of reach."""
    return NotFound(f"no case {ref}", f"案件 {ref} 不存在或无权查看")


def place_path_of(session: Session, case: Case) -> str | None:
    if case.place_unit_id is None:
        return None
    place = session.get(Unit, case.place_unit_id)
    return place.path if place else None


def find_case(session: Session, principal: Principal, ref: str) -> Case:
    """A case by id or number if ``principal`` reaches it; otherwise :func:`not_found`."""
    ref = ref.strip()[:32]
    case: Case | None = None
    if ref.isascii() and ref.isdigit() and len(ref) <= 12:
        case = session.get(Case, int(ref))
    elif ref:
        case = session.exec(select(Case).where(Case.number == ref)).first()
    if case is None or not reaches(principal, case, place_path=place_path_of(session, case)):
        raise not_found(ref)
    return case


# --- personal data and writing ---------------------------------------------------------


class AccessFacts(Protocol):
    """What the personal-data and confidentiality rules read of a case: a ``Case``, or a
    row of :data:`ACCESS_COLUMNS` (the export reads those columns, not whole cases)."""

    @property
    def id(self) -> int | None: ...
    @property
    def confidential(self) -> bool: ...
    @property
    def unit_id(self) -> int | None: ...
    @property
    def assignee_id(self) -> int | None: ...
    @property
    def created_by_id(self) -> int | None: ...
    @property
    def referral_target(self) -> ReferralTarget | None: ...
    @property
    def referred_by_id(self) -> int | None: ...


ACCESS_COLUMNS: tuple[Any, ...] = tuple(
    col(c)
    for c in (
        Case.id,
        Case.confidential,
        Case.unit_id,
        Case.assignee_id,
        Case.created_by_id,
        Case.referral_target,
        Case.referred_by_id,
    )
)


def may_see_personal_data(principal: Principal, case: AccessFacts) -> bool:
    """Whether ``principal`` sees the parties' names, phones and ID numbers in clear:
    the assignee, the staff member who recorded the case, the one who referred it out
    while the referral stands, return visitors, and mediators of the unit handling it
    (see the module docstring)."""
    if not principal.is_staff or principal.staff_id is None:
        return False
    if principal.staff_id in (case.assignee_id, case.created_by_id):
        return True
    if case.referral_target is not None and principal.staff_id == case.referred_by_id:
        return True  # who referred it out makes its return visits (models.follow_ups)
    if principal.role == StaffRole.RETURN_VISITOR:
        return True  # the return visit is a call to the complainant (cases in reach only)
    return (
        principal.role == StaffRole.MEDIATOR
        and case.unit_id is not None
        and case.unit_id == principal.unit_id
    )


def require_writer(principal: Principal) -> None:
    """:class:`PermissionDenied` unless ``principal`` may record things on cases."""
    if not principal.is_staff:
        raise PermissionDenied(
            "an Open311 api_key reaches only /open311/v2", "公众上报密钥只能用于 /open311/v2"
        )
    if not principal.can_write:
        raise PermissionDenied(
            f"the {principal.role} role may read but not change cases",
            "当前角色只能查看，不能办理案件",
        )


def may_export(principal: Principal) -> bool:
    """Whether ``principal`` takes the case list away as a spreadsheet (see the module
    docstring); what it holds is still their reach, masked as on the pages."""
    return principal.is_staff and principal.role not in NO_EXPORT_ROLES


def may_use_simulator(principal: Principal) -> bool:
    """Whether ``principal`` sees past simulations and starts new ones (see the module
    docstring)."""
    return principal.is_supervisor


# --- places ---------------------------------------------------------------------------


def _place_problem(code: str, en: str, zh: str) -> ValidationError:
    return ValidationError(
        f"place_code: {code} {en}",
        f"place_code：{code} {zh}",
        problems=[FieldProblem("place_code", zh, en)],
    )


class PlaceUnit(Protocol):
    """What the place rule needs of a unit (a ``Unit`` row, or a cached copy of one)."""

    @property
    def id(self) -> int | None: ...
    @property
    def code(self) -> str: ...
    @property
    def level(self) -> UnitLevel: ...
    @property
    def path(self) -> str: ...


def place_for_filing(
    session: Session,
    principal: Principal,
    code: str,
    *,
    lookup: Callable[[Session, str], PlaceUnit | None] = unit_by_code,
) -> PlaceUnit:
    """The unit with ``code`` if a case filed by ``principal`` may happen there (rule in
    the module docstring), else a ``place_code`` :class:`ValidationError`. ``lookup``
    finds a unit by code (a cache may stand in for the table)."""
    unit = lookup(session, code)
    if unit is None:
        raise _place_problem(code, "is not a known unit", "不是已知的单位编码")
    if unit.level not in PLACE_LEVELS:
        raise _place_problem(
            code,
            f"is a {unit.level.value}; give a building, compound or community",
            f"是「{unit.level.zh}」，请选择楼幢、小区或社区",
        )
    if principal.is_staff and not principal.covers(unit.path):
        raise _place_problem(
            code, "is outside your area; choose a place within it", "不在您负责的范围内"
        )
    return unit


def places_for(session: Session, principal: Principal, *, limit: int = 2000) -> list[Unit]:
    """Every place where ``principal`` may file a case, in tree order."""
    query = select(Unit).where(col(Unit.level).in_(sorted(PLACE_LEVELS)))
    if principal.is_staff and not principal.is_admin:
        if not principal.unit_path:
            return []
        query = query.where(col(Unit.path).startswith(principal.unit_path, autoescape=True))
    return list(session.exec(query.order_by(col(Unit.path)).limit(limit)))


__all__ = [
    "ACCESS_COLUMNS",
    "NO_EXPORT_ROLES",
    "PLACE_LEVELS",
    "READ_ONLY_ROLES",
    "AccessFacts",
    "Actor",
    "PlaceUnit",
    "Principal",
    "find_case",
    "helps_on",
    "may_export",
    "may_see_personal_data",
    "may_use_simulator",
    "not_found",
    "place_for_filing",
    "place_path_of",
    "places_for",
    "principal_for_staff",
    "principal_of",
    "reach_clause",
    "reaches",
    "reaches_in_own_right",
    "require_writer",
    "staff_id_of",
]
