"""Routing: where a case is handled and by whom.

* :func:`resolve_place` finds the place of a case in the unit tree (its building or
  compound, else its address, else its coordinates, else the district intake desk);
* :func:`handling_unit_for` climbs from the place to the lowest unit with somebody able
  to handle the category;
* :func:`models.staffing.pick_assignee` chooses a person there by skill, availability
  and load;
* :func:`assign_case`, :func:`reassign_case` and :func:`refer_case` move the case through
  the state machine (:mod:`models.lifecycle`); a case is referred at assignment only
  for a legal reason (:mod:`models.referrals`).

The unit tree, the staff able to handle cases and the pairings are read through a
:class:`Directory`: a few rows along one branch for a single case, or the whole tree once
per escalation sweep, so that the logic is the same and the sweep's hot path issues no
query per case for them.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlmodel import Session, col, select

from models import lifecycle, referrals, session_cache
from models.access import Actor
from models.case import Case
from models.deadlines import pick_policy
from models.enums import (
    CaseStatus,
    Category,
    Priority,
    ReferralReason,
    ReferralTarget,
    StaffRole,
    UnitLevel,
)
from models.errors import GuardFailed, NotFound, ValidationError
from models.guards import required_masked_text
from models.policy import TimeLimitPolicy
from models.staff import Staff
from models.staffing import can_handle, pick_assignee
from models.unit import Pairing, Unit, unit_by_code

# Coordinates further than this from every building/compound do not decide the place.
NEAREST_RADIUS_M = 500.0
ASSIGNABLE = frozenset({CaseStatus.TRIAGED, CaseStatus.ESCALATED, CaseStatus.REOPENED})

# What a Directory is read from: a write to any of them makes a kept one stale.
DIRECTORY_TABLES = (Unit, Staff, Pairing, TimeLimitPolicy)

PlaceMethod = Literal["place", "address", "coordinates", "intake_desk"]


def path_codes(path: str) -> list[str]:
    """``"/C/D1/S1/"`` -> ``["C", "D1", "S1"]`` (top first)."""
    return [code for code in path.split("/") if code]


@dataclass
class Directory:
    """Units, case handlers, pairings and time-limit policies, read once."""

    units: dict[int, Unit] = field(default_factory=dict)
    by_code: dict[str, Unit] = field(default_factory=dict)
    handlers: dict[int, list[Staff]] = field(default_factory=dict)  # unit id -> staff
    pairings: dict[tuple[int, Category], int] = field(default_factory=dict)
    policies: list[TimeLimitPolicy] = field(default_factory=list)
    # Units whose branch (handlers, pairings) is read; an agency known only through a
    # pairing is in ``units`` but not here until its own branch is read.
    branches: set[str] = field(default_factory=set)

    # -- loading ---------------------------------------------------------------

    @classmethod
    def load_all(cls, session: Session) -> Directory:
        """The whole tree (for sweeps)."""
        directory = cls()
        directory._add_units(session.exec(select(Unit)).all())
        directory._add_staff(session.exec(select(Staff).where(col(Staff.active))).all())
        directory._add_pairings(session.exec(select(Pairing)).all())
        directory.policies = list(session.exec(select(TimeLimitPolicy)).all())
        return directory

    @classmethod
    def load_branch(cls, session: Session, *units: Unit) -> Directory:
        """The given units' ancestors (and themselves), their staff and pairings, and the
        time limits. One directory per session grows branch by branch for a batch of
        cases (:mod:`models.session_cache`: forgotten on a write to these tables and at
        the end of the transaction)."""
        directory = session_cache.cached(
            session,
            "routing.directory",
            DIRECTORY_TABLES,
            lambda: cls(policies=list(session.exec(select(TimeLimitPolicy)).all())),
        )
        directory.extend_branch(session, *units)
        return directory

    def extend_branch(self, session: Session, *units: Unit) -> None:
        codes = {code for unit in units for code in path_codes(unit.path)} - self.branches
        if not codes:
            return
        self.branches |= codes
        rows = session.exec(select(Unit).where(col(Unit.code).in_(codes))).all()
        self._add_units(rows)
        ids = [u.id for u in rows if u.id is not None]
        staff = session.exec(
            select(Staff).where(col(Staff.unit_id).in_(ids), col(Staff.active))
        ).all()
        self._add_staff(staff)
        communities = [u.id for u in rows if u.level == UnitLevel.COMMUNITY]
        if communities:
            pairings = session.exec(
                select(Pairing).where(col(Pairing.community_id).in_(communities))
            ).all()
            self._add_pairings(pairings)
            agency_ids = {p.agency_id for p in pairings} - set(self.units)
            if agency_ids:
                self._add_units(
                    session.exec(select(Unit).where(col(Unit.id).in_(agency_ids))).all()
                )

    def _add_units(self, rows: Iterable[Unit]) -> None:
        for unit in rows:
            assert unit.id is not None
            self.units[unit.id] = unit
            self.by_code[unit.code] = unit

    def _add_staff(self, rows: Iterable[Staff]) -> None:
        for staff in rows:
            if staff.unit_id is not None:
                self.handlers.setdefault(staff.unit_id, []).append(staff)

    def _add_pairings(self, rows: Iterable[Pairing]) -> None:
        for pairing in rows:
            self.pairings[(pairing.community_id, pairing.category)] = pairing.agency_id

    # -- the tree --------------------------------------------------------------

    def unit(self, unit_id: int) -> Unit:
        try:
            return self.units[unit_id]
        except KeyError:
            raise NotFound(f"no unit {unit_id}", f"单位 {unit_id} 不存在") from None

    def chain(self, unit: Unit) -> list[Unit]:
        """The unit and its ancestors, bottom first (as far as loaded)."""
        out: list[Unit] = []
        current: Unit | None = unit
        seen: set[int] = set()
        while current is not None and current.id not in seen:
            assert current.id is not None
            seen.add(current.id)
            out.append(current)
            current = self.units.get(current.parent_id) if current.parent_id else None
        return out

    def ancestor_at(self, unit: Unit, level: UnitLevel) -> Unit | None:
        return next((u for u in self.chain(unit) if u.level == level), None)

    def able(self, unit: Unit, category: Category) -> list[Staff]:
        return [s for s in self.handlers.get(unit.id or 0, []) if can_handle(s, category)]

    def handling_unit_for(self, place: Unit, category: Category, *, group: bool = False) -> Unit:
        """The lowest unit at or above ``place`` with someone able to handle ``category``;
        a ``group`` case (群体性) no lower than the community: its mediation committee."""
        if place.level == UnitLevel.AGENCY:
            return place
        chain = self.chain(place)
        if group:
            chain = [u for u in chain if u.level.rank >= UnitLevel.COMMUNITY.rank] or chain
        for unit in chain:
            if self.able(unit, category):
                return unit
        # Nobody anywhere: the district desk (or the top) sorts it out by hand.
        return self.ancestor_at(place, UnitLevel.DISTRICT) or chain[-1]

    def next_handling_unit_above(self, unit: Unit, category: Category) -> Unit | None:
        """The first unit above ``unit`` with someone able to handle the category (levels
        with nobody are skipped); None when there is no such unit."""
        for candidate in self.chain(unit)[1:]:
            if self.able(candidate, category):
                return candidate
        return None

    def paired_agency(self, unit: Unit, category: Category) -> Unit | None:
        community = self.ancestor_at(unit, UnitLevel.COMMUNITY)
        if community is None or community.id is None:
            return None
        agency_id = self.pairings.get((community.id, category))
        return self.units.get(agency_id) if agency_id is not None else None

    def policy(
        self, *, category: Category, priority: Priority, level: UnitLevel
    ) -> TimeLimitPolicy:
        return pick_policy(self.policies, category=category, priority=priority, level=level)


# --- places --------------------------------------------------------------------


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _match_address(units: Sequence[Unit], address: str) -> Unit | None:
    """Longest match of unit names/addresses in the text. A unit scores the length of
    its own name (or address) plus that of every ancestor's name also found, so that
    "桂花社区一小区1号楼" picks building 1 of that compound, not of another. When the best
    score is shared, the lowest common ancestor of the tied units wins."""
    text = _fold(address)
    if not text:
        return None
    by_code = {u.code: u for u in units}
    own: dict[str, int] = {}
    for unit in units:
        names = [_fold(unit.name_zh), _fold(unit.address or "")]
        hit = max((len(n) for n in names if len(n) >= 2 and n in text), default=0)
        if hit:
            own[unit.code] = hit
    if not own:
        return None
    scored: list[tuple[int, int, Unit]] = []
    for code, hit in own.items():
        unit = by_code[code]
        codes = path_codes(unit.path)[:-1]
        score = hit + sum(own.get(c, 0) for c in codes)
        scored.append((score, len(codes), unit))
    best = max(s for s, _, _ in scored)
    tied = [u for s, _, u in scored if s == best]
    if len(tied) == 1:
        return tied[0]
    common = path_codes(tied[0].path)
    for unit in tied[1:]:
        codes = path_codes(unit.path)
        n = 0
        while n < min(len(common), len(codes)) and common[n] == codes[n]:
            n += 1
        common = common[:n]
    return by_code.get(common[-1]) if common else None


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def _nearest(session: Session, lat: float, lon: float, radius_m: float) -> Unit | None:
    # A bounding box first (about radius_m around the point), then the exact distance.
    dlat = radius_m / 111_000.0
    dlon = radius_m / (111_000.0 * max(math.cos(math.radians(lat)), 0.01))
    rows = session.exec(
        select(Unit).where(
            col(Unit.level).in_([UnitLevel.BUILDING, UnitLevel.COMPOUND]),
            col(Unit.lat).between(lat - dlat, lat + dlat),
            col(Unit.lon).between(lon - dlon, lon + dlon),
        )
    ).all()
    best: tuple[float, int, Unit] | None = None
    for unit in rows:
        assert unit.lat is not None and unit.lon is not None
        d = _distance_m(lat, lon, unit.lat, unit.lon)
        key = (d, unit.level.rank)
        if d <= radius_m and (best is None or key < best[:2]):
            best = (d, unit.level.rank, unit)
    return best[2] if best else None


def _intake_desk(session: Session, case: Case) -> Unit:
    if case.created_by_id is not None:
        creator = session.get(Staff, case.created_by_id)
        if creator is not None and creator.unit_id is not None:
            unit = session.get(Unit, creator.unit_id)
            if unit is not None:
                if unit.level == UnitLevel.DISTRICT:
                    return unit
                codes = path_codes(unit.path)
                district = session.exec(
                    select(Unit).where(col(Unit.code).in_(codes), Unit.level == UnitLevel.DISTRICT)
                ).first()
                if district is not None:
                    return district
    top = session.exec(
        select(Unit).where(col(Unit.parent_id).is_(None), Unit.level == UnitLevel.CITY)
    ).first()
    top = (
        top
        or session.exec(
            select(Unit).where(col(Unit.parent_id).is_(None)).order_by(col(Unit.id))
        ).first()
    )
    if top is None:
        raise NotFound("the unit tree is empty", "尚未建立单位（组织架构为空）")
    return top


def locate(
    session: Session, *, case: Case, radius_m: float = NEAREST_RADIUS_M
) -> tuple[Unit, PlaceMethod]:
    """The place of a case and how it was found."""
    if case.place_unit_id is not None:
        unit = session.get(Unit, case.place_unit_id)
        if unit is not None:
            return unit, "place"
    if case.address_text:
        units = session.exec(select(Unit).where(Unit.level != UnitLevel.AGENCY)).all()
        unit = _match_address(units, case.address_text)
        if unit is not None:
            return unit, "address"
    if case.lat is not None and case.lon is not None:
        unit = _nearest(session, case.lat, case.lon, radius_m)
        if unit is not None:
            return unit, "coordinates"
    return _intake_desk(session, case), "intake_desk"


def resolve_place(session: Session, *, case: Case) -> Unit:
    """The case's building or compound; else the unit its address names (longest
    match); else the nearest building within :data:`NEAREST_RADIUS_M`; else the district
    intake desk of whoever recorded it (the city when unknown), for manual triage."""
    return locate(session, case=case)[0]


def handling_unit_for(session: Session, *, place: Unit, category: Category) -> Unit:
    """The lowest unit at or above ``place`` with an active, present staff member able
    to handle ``category``; the district (or the top) when there is nobody at all."""
    return Directory.load_branch(session, place).handling_unit_for(place, category)


def paired_agency(session: Session, *, unit: Unit, category: Category) -> Unit | None:
    """The agency paired (结对共建) with the community at or above ``unit`` for
    ``category``, if any."""
    return Directory.load_branch(session, unit).paired_agency(unit, category)


# --- moving cases -----------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentResult:
    case_id: int
    number: str
    outcome: Literal["assigned", "referred", "unchanged"]
    assignee_id: int | None
    unit_code: str | None
    agency_code: str | None = None


def _grounds_at_assignment(case: Case) -> tuple[ReferralReason, str] | None:
    """The legal reason to refer a case before anyone works it: the one a person recorded
    at intake, else the one a named rule finds in the complaint; None: it is worked here."""
    if case.referral_reason is not None and case.referral_reason.at_assignment:
        return case.referral_reason, "staff"
    rule = referrals.legal_reason_by_rule(case.description)
    return (rule.reason, f"rule:{rule.name}") if rule else None


def _liaison_for(directory: Directory, case: Case, unit: Unit, staff: Staff) -> int | None:
    """The grid worker of the case's compound stays on a case taken by someone above him
    (the community's mediation committee): he knows the residents (联络人)."""
    if staff.role in (StaffRole.GRID_WORKER,):
        return case.liaison_id
    place = directory.units.get(case.place_unit_id or 0)
    compound = directory.ancestor_at(place, UnitLevel.COMPOUND) if place else None
    if compound is None or compound.id == unit.id:
        return case.liaison_id
    grid = [
        s
        for s in directory.handlers.get(compound.id or 0, [])
        if s.role == StaffRole.GRID_WORKER and s.active
    ]
    return grid[0].id if grid else case.liaison_id


def assign_case(session: Session, *, case_id: int, actor: Actor) -> AssignmentResult:
    """Give a triaged, escalated or reopened case to a person in its unit. A case leaves
    people's mediation here only for a legal reason (:mod:`models.referrals`): recorded by
    the worker at intake or named by a rule. A group case goes straight to the
    community's mediation committee. Idempotent: a case already assigned, or no longer
    waiting for assignment, is left ``unchanged``. When nobody is available at the unit,
    the case moves to the lowest unit above it with someone available; with nobody
    anywhere it stays ``unchanged`` (unassigned) and is escalated at its deadline."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=None)
    case = step.case
    assert case.id is not None
    current_unit = session.get(Unit, case.unit_id) if case.unit_id else None

    def result(outcome: Literal["assigned", "referred", "unchanged"]) -> AssignmentResult:
        unit = session.get(Unit, case.unit_id) if case.unit_id else None
        agency = unit.code if unit is not None and unit.level == UnitLevel.AGENCY else None
        return AssignmentResult(
            case.id or 0,
            case.number,
            outcome,
            case.assignee_id,
            unit.code if unit else None,
            agency,
        )

    if case.status not in ASSIGNABLE or case.held_for_assessment:
        # A case held for assessment (研判) waits for a person before it is routed.
        return result("unchanged")
    if current_unit is None:
        raise GuardFailed(
            f"case {case.number} has no handling unit yet; triage it first",
            f"案件 {case.number} 尚未确定承办单位，请先研判分流。",
        )
    directory = Directory.load_branch(session, current_unit)
    if case.place_unit_id and case.place_unit_id not in directory.units:
        place = session.get(Unit, case.place_unit_id)
        if place is not None:
            directory.extend_branch(session, place)
    grounds = _grounds_at_assignment(case) if case.status != CaseStatus.REOPENED else None
    if grounds is not None:
        reason, decided_by = grounds
        agency = directory.paired_agency(current_unit, case.category)
        if reason.target != ReferralTarget.AGENCY or agency is not None:
            referrals.refer(
                session, case=case, reason=reason, actor=actor, agency=agency, decided_by=decided_by
            )
            return result("referred")

    unit = directory.handling_unit_for(current_unit, case.category, group=case.is_group)
    # A group dispute is the community mediation committee's from the start.
    committee = case.is_group and unit.level == UnitLevel.COMMUNITY
    staff = pick_assignee(session, unit=unit, category=case.category, mediators_only=committee)
    if staff is None and committee:
        staff = pick_assignee(session, unit=unit, category=case.category)
    if staff is None:
        return result("unchanged")
    case.set_handling_unit(unit)
    case.assignee_id = staff.id
    case.liaison_id = _liaison_for(directory, case, unit, staff)
    step.record(
        "assigned",
        {
            "assignee_id": staff.id,
            "unit": unit.code,
            "unit_name": unit.name_zh,
            "liaison_id": case.liaison_id,
        },
    )
    return result("assigned")


def reassign_case(
    session: Session, *, case_id: int, assignee_id: int, actor: Actor, expected_version: int
) -> Case:
    """Give a case to a named person (a supervisor's or mediator's choice). The person
    must be active and work in the case's unit or below it."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    staff = session.get(Staff, assignee_id)
    if staff is None:
        raise ValidationError(
            f"assignee_id: no staff member {assignee_id}",
            f"assignee_id：工作人员 {assignee_id} 不存在",
        )
    if not staff.active:
        raise GuardFailed(
            f"{staff.username} is not active and cannot take cases",
            f"{staff.display_name} 已停用，不能承办案件。",
        )
    unit = session.get(Unit, staff.unit_id) if staff.unit_id else None
    if unit is None or not case.unit_path or not unit.path.startswith(case.unit_path):
        raise GuardFailed(
            f"{staff.username} does not work in the case's unit or below it",
            f"{staff.display_name} 不在本案承办单位及其下级单位，不能派给其办理。",
        )
    if case.unit_path != unit.path:
        # Routed by hand to a unit below: that unit handles it now (and answers for it).
        case.set_handling_unit(unit)
    case.assignee_id = staff.id
    step.record(
        "assigned",
        {
            "assignee_id": staff.id,
            "unit": unit.code,
            "unit_name": unit.name_zh,
            "by_hand": True,
        },
    )
    return case


def refer_case(
    session: Session,
    *,
    case_id: int,
    target: ReferralTarget,
    agency_code: str | None,
    reason: str,
    actor: Actor,
    expected_version: int,
    grounds: ReferralReason | None = None,
) -> Case:
    """Refer a case by hand to the police, a court, arbitration or an agency (the named
    one, else the agency paired with the case's community for its category), on
    ``grounds`` (else the grounds the target implies); ``reason`` says why in words."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    note = required_masked_text(reason, "reason", "移交原因")
    grounds = grounds or _implied_grounds(case, target)
    agency: Unit | None = None
    if target == ReferralTarget.AGENCY:
        if agency_code:
            agency = unit_by_code(session, agency_code)
            if agency is None or agency.level != UnitLevel.AGENCY:
                raise ValidationError(
                    f"agency_code: no agency with code {agency_code!r}",
                    f"agency_code：没有编码为 {agency_code} 的部门",
                )
        else:
            unit = session.get(Unit, case.unit_id or case.place_unit_id or 0)
            agency = paired_agency(session, unit=unit, category=case.category) if unit else None
            if agency is None:
                raise ValidationError(
                    "agency_code: required, no agency is paired with this community for "
                    f"{case.category.en}",
                    f"agency_code：本社区没有「{case.category.zh}」类的结对部门，请指定部门",
                )
    referrals.refer(
        session,
        case=case,
        reason=grounds,
        target=target,
        agency=agency,
        note=note,
        actor=actor,
        expected_version=expected_version,
    )
    session.flush()
    return case


def _implied_grounds(case: Case, target: ReferralTarget) -> ReferralReason:
    if case.status in (CaseStatus.IN_MEDIATION, CaseStatus.MEDIATION_FAILED):
        return ReferralReason.MEDIATION_FAILED
    return {
        ReferralTarget.POLICE: ReferralReason.CRIMINAL,
        ReferralTarget.COURT: ReferralReason.IN_COURT,
        ReferralTarget.ARBITRATION: ReferralReason.IN_ARBITRATION,
    }.get(target, ReferralReason.ADMINISTRATIVE)
