"""The demo city 江心市 (Jiangxin): units, staff, agency pairings, time limits and
sample complaints, generated deterministically (seeded ``random.Random``).

Everything here is fictional. Parties' phone numbers and resident ID numbers are
*valid* (mainland mobile format; GB 11643 check digit) but made up: the ID numbers use
the area code prefix ``3699``, which no real prefecture has.

Codes: ``JX`` (city), ``D01`` (district), ``D01-S01`` (street), ``D01-S01-C01``
(community), ``D01-S01-C01-P01`` (compound), ``D01-S01-C01-P01-B01`` (building), and
``D01-LAB`` / ``D01-ENV`` / ``D01-HSG`` for each district's paired agencies.

Demo sign-ins: every demo staff member's username is their role and unit code (for
example ``mediator1-d01-s01-c01``, ``supervisor-d01``, ``admin``) and their password is
:data:`DEMO_PASSWORD`. The demo accounts share that one password, so one Argon2 hash
(salted once per load) is stored for all of them; that keeps loading fast.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from models import clock, pii
from models.access import Actor
from models.case import Case, CaseCreate
from models.cases import create_case
from models.district import load_district
from models.district_import import (
    STAFF_COLUMNS,
    STAFF_OPTIONAL,
    UNIT_COLUMNS,
    StaffRow,
    UnitRow,
)
from models.enums import (
    Category,
    Channel,
    PartyKind,
    PartySide,
    Priority,
    StaffRole,
    UnitLevel,
)
from models.passwords import hash_password
from models.policy import TimeLimitPolicy
from models.policy_load import parse_policies
from models.staff import Staff
from models.tabular import read_csv
from models.unit import Pairing, Unit

DATA = Path(__file__).parent / "demo_data"
DISTRICT = DATA / "jiangxin"
"""The demo city in the files a district imports (``tiaojie import``, ``policies load``)."""
SEED = 2026
CITY_CODE = "JX"
DEMO_PASSWORD = "tiaojie-demo"  # noqa: S105 (documented demo sign-in)
FIRST_BATCH = 320
"""How many of :func:`demo_complaints` ``load_demo_city`` records; the rest are left
for the live demo to feed in over time."""
HISTORY_DAYS = 60
# Fictional area code prefix for demo resident ID numbers (no real prefecture "3699").
_ID_AREAS = ("369901", "369902", "369903", "369911", "369912")
_PHONE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "176",
    "177",
    "180",
    "181",
    "182",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)


@dataclass(frozen=True)
class UnitSpec:
    code: str
    level: UnitLevel
    parent: str | None
    name_zh: str
    name_en: str
    address: str
    lat: float
    lon: float


@dataclass(frozen=True)
class StaffSpec:
    username: str
    display_name: str
    role: StaffRole
    unit_code: str
    skills: tuple[Category, ...]
    capacity: int
    active: bool = True
    away: bool = False


@dataclass
class _Plan:
    units: list[UnitSpec] = field(default_factory=list)

    def by_code(self) -> dict[str, UnitSpec]:
        return {u.code: u for u in self.units}


@lru_cache(maxsize=1)
def _city_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "city.json").read_text(encoding="utf-8"))
    return data


@lru_cache(maxsize=1)
def _complaint_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "complaints.json").read_text(encoding="utf-8"))
    return data


def _near(rng: random.Random, lat: float, lon: float, spread: float) -> tuple[float, float]:
    return (
        round(lat + rng.uniform(-spread, spread), 6),
        round(lon + rng.uniform(-spread, spread) * 1.15, 6),
    )


# --- the district files -------------------------------------------------------------------


@lru_cache(maxsize=1)
def _city_plan() -> _Plan:
    rows = read_csv(DISTRICT / "units.csv", required=UNIT_COLUMNS)
    plan = _Plan()
    for row in rows:
        u = UnitRow.model_validate(row.cells)
        assert u.lat is not None and u.lon is not None and u.address is not None
        plan.units.append(
            UnitSpec(u.code, u.level, u.parent_code, u.name, u.name_en, u.address, u.lat, u.lon)
        )
    return plan


@lru_cache(maxsize=1)
def _staff_plan() -> tuple[StaffSpec, ...]:
    rows = read_csv(DISTRICT / "staff.csv", required=STAFF_COLUMNS, optional=STAFF_OPTIONAL)
    out: list[StaffSpec] = []
    for row in rows:
        s = StaffRow.model_validate(row.cells)
        assert s.unit_code is not None
        out.append(
            StaffSpec(
                s.username,
                s.name,
                s.role,
                s.unit_code,
                tuple(s.skills),
                s.capacity if s.capacity is not None else 10,
                s.active,
                bool(s.away),
            )
        )
    return tuple(out)


def demo_staff() -> list[StaffSpec]:
    return list(_staff_plan())


def demo_sign_ins() -> list[tuple[str, str, str, str]]:
    """A few demo accounts to print at start-up: (username, role, unit code, password)."""
    wanted = (
        "admin",
        "supervisor-d01",
        "supervisor-d01-s01",
        "intake-d01",
        "mediator1-d01",
        "mediator1-d01-s01",
        "worker1-d01-s01-c01",
        "mediator1-d01-s01-c01",
        "grid-d01-s01-c01-p01",
        "mediator1-d01-lab",
    )
    by_name = {s.username: s for s in _staff_plan()}
    return [
        (name, by_name[name].role.value, by_name[name].unit_code, DEMO_PASSWORD)
        for name in wanted
        if name in by_name
    ]


def demo_policies() -> list[TimeLimitPolicy]:
    """The time limits of ``demo_data/jiangxin/policies.toml``, in file order."""
    text = (DISTRICT / "policies.toml").read_text(encoding="utf-8")
    return [entry.to_row() for entry in parse_policies(text, "policies.toml")]


# --- people in the sample complaints --------------------------------------------------------


def _person_name(rng: random.Random) -> str:
    data = _city_data()
    return str(rng.choice(data["surnames"])) + str(rng.choice(data["given"]))


def _phone(rng: random.Random) -> str:
    return rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def sample_person(rng: random.Random) -> tuple[str, str]:
    """A made-up name and a mobile number of a valid form, for sample and simulated
    complaints (never anyone's real data)."""
    return _person_name(rng), _phone(rng)


def _id_number(rng: random.Random) -> str:
    born = datetime(1948, 1, 1) + timedelta(days=rng.randrange(0, 57 * 365))
    first17 = f"{rng.choice(_ID_AREAS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + pii.id_check_digit(first17)


# --- sample complaints ---------------------------------------------------------------------


@dataclass
class _Person:
    name: str
    phone: str
    id_number: str | None
    address: str


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


# Night hours as residents say them (never 「凌晨22点」: 22:00 is 晚上10点).
_LATE_HOURS = {22: "晚上10点", 23: "晚上11点", 0: "半夜12点", 1: "凌晨1点", 2: "凌晨2点"}


def _slots(rng: random.Random, *, firm: str, building: str) -> dict[str, Any]:
    months = rng.randint(2, 6)
    area = rng.randint(38, 96)
    return {
        "firm": firm,
        "building": building,
        "months": months,
        "start_month": f"{rng.randint(1, 9)}月",
        "amount": f"{rng.randrange(30, 400) * 100:,}",
        "n": rng.randint(3, 12),
        "days": rng.randint(2, 5),
        "years": rng.randint(8, 26),
        "late": _LATE_HOURS[rng.choice((22, 23, 0, 1, 2))],
        "weeks": rng.randint(2, 6),
        "floor": rng.randint(2, 18),
        "area": area,
        "area_less": area - rng.randint(6, 15),
        "price": rng.randrange(48, 75) * 100,
        "rent": rng.randrange(12, 35) * 100,
        "deposit": rng.randrange(10, 40) * 100,
        "year": rng.choice(("去", "今")),
    }


def _buildings_under(code: str) -> list[UnitSpec]:
    units = _city_plan().units
    return [u for u in units if u.level == UnitLevel.BUILDING and u.code.startswith(code + "-")]


@lru_cache(maxsize=1)
def _complaint_specs() -> tuple[dict[str, Any], ...]:
    """The sample complaints as plain dicts (CaseCreate input), in submission order."""
    rng = random.Random(SEED + 2)
    units = _city_plan().by_code()
    all_compounds = [u.code for u in units.values() if u.level == UnitLevel.COMPOUND]
    out: list[dict[str, Any]] = []

    def location(places: list[str]) -> tuple[UnitSpec, UnitSpec]:
        code = rng.choice(all_compounds if places == ["*"] else places)
        building = rng.choice(_buildings_under(code))
        return units[building.parent or ""], building

    def person(building: UnitSpec, *, with_id: float) -> _Person:
        compound = units[building.parent or ""]
        room = f"{rng.randint(1, 18)}0{rng.randint(1, 4)}室"
        return _Person(
            _person_name(rng),
            _phone(rng),
            _id_number(rng) if rng.random() < with_id else None,
            f"{compound.name_zh}{building.name_zh}{room}",
        )

    def party(side: PartySide, kind: PartyKind, who: _Person) -> dict[str, Any]:
        return {
            "side": side,
            "kind": kind,
            "name": who.name,
            "phone": who.phone,
            "id_number": who.id_number,
            "address": who.address,
        }

    for stream in _complaint_data()["streams"]:
        category = Category(stream["category"])
        resp = stream["respondent"]
        seen: list[_Person] = []
        complainant_kind = (
            PartyKind.HOUSEHOLD if category == Category.RELOCATION else PartyKind.PERSON
        )

        def respondent(
            firm: str, building: UnitSpec, resp: dict[str, Any] = resp
        ) -> dict[str, Any]:
            if resp["kind"] == "person":
                other = person(building, with_id=0.0)
                entry = party(PartySide.RESPONDENT, PartyKind.PERSON, other)
                if rng.random() < 0.5:
                    entry["phone"] = None
                return entry
            return {"side": PartySide.RESPONDENT, "kind": PartyKind(resp["kind"]), "name": firm}

        group = stream.get("group")
        if group:
            compound, building = location(stream["places"])
            firm = resp.get("name") or rng.choice(resp["pool"])
            slots = _slots(rng, firm=firm, building=building.name_zh)
            slots["n"] = rng.randint(*group["people"])
            reps = [person(building, with_id=0.9) for _ in range(rng.randint(*group["reps"]))]
            seen.extend(reps)
            out.append(
                {
                    "category": category,
                    "priority": Priority(group["priority"]),
                    "channel": Channel(group["channel"]),
                    "description": group["text"].format_map(slots),
                    "address_text": _address(units, compound),
                    "lat": compound.lat,
                    "lon": compound.lon,
                    "people_affected": slots["n"],
                    "place_code": compound.code,
                    "parties": [
                        *(party(PartySide.COMPLAINANT, complainant_kind, p) for p in reps),
                        respondent(firm, building),
                    ],
                }
            )
        for _ in range(stream["count"]):
            compound, building = location(stream["places"])
            firm = resp.get("name") or rng.choice(resp.get("pool") or [""])
            text = rng.choice(stream["texts"])
            if isinstance(text, dict):
                priority = Priority(text["p"])
                text = text["t"]
            elif text.startswith("咨询"):
                priority = Priority.CONSULTATION
            else:
                priority = Priority(_weighted(rng, stream["priorities"]))
            slots = _slots(rng, firm=firm, building=building.name_zh)
            if seen and rng.random() < stream["repeat_person"]:
                who = rng.choice(seen)
            else:
                who = person(building, with_id=0.7)
                seen.append(who)
            lat, lon = _near(rng, building.lat, building.lon, 0.0002)
            out.append(
                {
                    "category": category,
                    "priority": priority,
                    "channel": Channel(_weighted(rng, stream["channels"])),
                    "description": text.format_map(slots),
                    "address_text": _address(units, building),
                    "lat": lat,
                    "lon": lon,
                    "people_affected": slots["n"] if "{n}" in text else 1,
                    "place_code": building.code,
                    "parties": [
                        party(PartySide.COMPLAINANT, complainant_kind, who),
                        respondent(firm, building),
                    ],
                }
            )
    rng.shuffle(out)
    return tuple(out)


def _address(units: dict[str, UnitSpec], unit: UnitSpec) -> str:
    """Place text: district, street, compound (and building), never a flat number."""
    names: list[str] = []
    cursor: UnitSpec | None = unit
    while cursor is not None and cursor.level != UnitLevel.CITY:
        if cursor.level != UnitLevel.COMMUNITY:
            names.append(cursor.name_zh)
        cursor = units.get(cursor.parent or "")
    return "".join(reversed(names))


def demo_complaints() -> list[CaseCreate]:
    """Every sample complaint, in submission order (deterministic). ``load_demo_city``
    records the first :data:`FIRST_BATCH`; the live demo feeds the rest over time."""
    # The streams' categories and priorities are what the texts were written as, not a
    # worker's choice: triage classifies them as it would any resident's words.
    unlocked = {"category_locked": False, "priority_locked": False}
    return [CaseCreate.model_validate({**spec, **unlocked}) for spec in _complaint_specs()]


def submission_times(count: int, *, now: datetime) -> list[datetime]:
    """``count`` moments spread over the :data:`HISTORY_DAYS` days before ``now``, mostly
    in office hours (Asia/Shanghai), ascending; the same for the same ``now``."""
    rng = random.Random(SEED + 3)
    now = clock.ensure_utc(now)
    moments: list[datetime] = []
    for _ in range(count):
        local = clock.to_local(now - timedelta(seconds=rng.uniform(900, HISTORY_DAYS * 86400)))
        if not 8 <= local.hour < 20 and rng.random() < 0.85:
            local = local.replace(hour=rng.randint(8, 19), minute=rng.randint(0, 59))
        moment = clock.ensure_utc(local)
        if moment >= now:
            moment -= timedelta(days=1)
        moments.append(moment)
    return sorted(moments)


# --- loading --------------------------------------------------------------------------------


def _summary(session: Session) -> str:
    def units(level: UnitLevel) -> int:
        return int(session.exec(select(func.count()).where(Unit.level == level)).one())

    def rows(table: Any) -> int:
        return int(session.exec(select(func.count()).select_from(table)).one())

    return (
        f"{units(UnitLevel.DISTRICT)} districts 区, {units(UnitLevel.STREET)} streets 街道, "
        f"{units(UnitLevel.COMMUNITY)} communities 社区, {units(UnitLevel.COMPOUND)} compounds "
        f"小区, {units(UnitLevel.BUILDING)} buildings 楼幢, {units(UnitLevel.AGENCY)} agencies "
        f"结对部门, {rows(Pairing)} pairings, {rows(Staff)} staff 工作人员, "
        f"{rows(TimeLimitPolicy)} time-limit policies 时限规则, {rows(Case)} cases 案件"
    )


def is_loaded(session: Session) -> bool:
    return session.exec(select(Unit.id).where(Unit.code == CITY_CODE)).first() is not None


def load_demo_city(session: Session) -> str:
    """Load the demo city into an empty (migrated) database, in the caller's transaction:
    an import of ``demo_data/jiangxin`` (the same files a district would write) and the
    first sample complaints.

    Idempotent: if the city unit ``JX`` exists already nothing is added. Returns a short
    summary of what the database holds.
    """
    if is_loaded(session):
        return "already loaded, nothing added 已载入，未重复添加: " + _summary(session)
    load_district(session, DISTRICT, actor="demo", password_hash=hash_password(DEMO_PASSWORD))
    for at, data, actor, recorder in demo_arrivals(session, now=clock.now()):
        create_case(session, data=data, actor=actor, created_by_id=recorder, at=at)
    session.flush()
    return _summary(session)


def demo_arrivals(
    session: Session, *, now: datetime, count: int = FIRST_BATCH
) -> list[tuple[datetime, CaseCreate, Actor, int | None]]:
    """The first ``count`` sample complaints with the moment each arrives (over the
    :data:`HISTORY_DAYS` before ``now``) and who records it; the district must be
    loaded (replays feed these in at their times, ``load_demo_city`` all at once)."""
    staff_by_unit = _staff_by_unit(session)
    complaints = demo_complaints()[:count]
    times = submission_times(len(complaints), now=now)
    out: list[tuple[datetime, CaseCreate, Actor, int | None]] = []
    for data, at in zip(complaints, times, strict=True):
        actor, recorder = _recorder(data, staff_by_unit)
        out.append((at, data, actor, recorder))
    return out


def _staff_by_unit(session: Session) -> dict[str, list[Staff]]:
    staff_by_unit: dict[str, list[Staff]] = {}
    codes = {u.id: u.code for u in session.exec(select(Unit)).all()}
    for member in session.exec(select(Staff).order_by(col(Staff.id))).all():
        staff_by_unit.setdefault(codes.get(member.unit_id, ""), []).append(member)
    return staff_by_unit


def recorder_of(session: Session, data: CaseCreate) -> tuple[Actor, int | None]:
    """Who records a sample complaint arriving now (the live demo's): as for the first
    batch, the public files what came through Open311 (no one else may choose that
    channel), the system what came by interface, a community worker the rest."""
    return _recorder(data, _staff_by_unit(session))


def _recorder(data: CaseCreate, staff_by_unit: dict[str, list[Staff]]) -> tuple[Actor, int | None]:
    """Who recorded a sample complaint: the public (Open311), the system (12345, police
    and web referrals arrive by interface), else a worker of the place's community."""
    if data.channel == Channel.OPEN311:
        return Actor.public(), None
    if data.channel in (Channel.HOTLINE_12345, Channel.POLICE, Channel.WEB):
        return Actor.system(), None
    code = data.place_code or ""
    parts = code.split("-")
    wanted_role = StaffRole.GRID_WORKER if data.channel == Channel.GRID_PATROL else None
    unit_code = "-".join(parts[:4]) if wanted_role else "-".join(parts[:3])
    candidates = [
        s
        for s in staff_by_unit.get(unit_code, [])
        if s.active
        and (wanted_role is None or s.role == wanted_role)
        and s.role in (StaffRole.COMMUNITY_WORKER, StaffRole.GRID_WORKER)
    ]
    if not candidates:
        return Actor.system(), None
    member = candidates[0]
    return (
        Actor(kind="staff", staff_id=member.id, role=member.role, unit_path=None),
        member.id,
    )
