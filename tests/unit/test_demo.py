"""The demo city: its shape, its sample complaints, idempotent loading, and that a raw
dump of the database shows none of the demo parties' phone or ID numbers."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models import clock
from models.audit import verify_all
from models.case import Case
from models.db import reset_engines
from models.demo import (
    CITY_CODE,
    DEMO_PASSWORD,
    FIRST_BATCH,
    HISTORY_DAYS,
    demo_complaints,
    demo_sign_ins,
    demo_staff,
)
from models.enums import Category, Channel, PartyKind, PartySide, StaffRole, UnitLevel
from models.event import CaseEvent, Outbox
from models.passwords import verify_password
from models.pii import normalise_id_number, normalise_phone
from models.settings import reset_settings
from models.staff import Staff
from models.unit import Pairing, Unit
from tests.conftest import T0
from tiaojie_cli.demo_feed import SIMULATED
from tiaojie_cli.main import app

CODE = re.compile(r"^D\d{2}(-S\d{2}(-C\d{2}(-P\d{2}(-B\d{2})?)?)?)?$")


def _count(session: Session, level: UnitLevel) -> int:
    return int(session.exec(select(func.count()).where(Unit.level == level)).one())


def test_unit_tree_has_the_required_shape(demo_city: Session) -> None:
    assert _count(demo_city, UnitLevel.CITY) == 1
    assert _count(demo_city, UnitLevel.DISTRICT) >= 2
    assert _count(demo_city, UnitLevel.STREET) >= 4
    assert _count(demo_city, UnitLevel.COMMUNITY) >= 12
    assert _count(demo_city, UnitLevel.COMPOUND) >= _count(demo_city, UnitLevel.COMMUNITY)
    assert _count(demo_city, UnitLevel.BUILDING) >= 3 * _count(demo_city, UnitLevel.COMPOUND)
    units = {u.id: u for u in demo_city.exec(select(Unit)).all()}
    centre = next(u for u in units.values() if u.code == CITY_CODE)
    parent_level = {
        UnitLevel.DISTRICT: UnitLevel.CITY,
        UnitLevel.STREET: UnitLevel.DISTRICT,
        UnitLevel.COMMUNITY: UnitLevel.STREET,
        UnitLevel.COMPOUND: UnitLevel.COMMUNITY,
        UnitLevel.BUILDING: UnitLevel.COMPOUND,
        UnitLevel.AGENCY: UnitLevel.DISTRICT,
    }
    for unit in units.values():
        assert unit.name_zh and unit.name_en and unit.address
        assert unit.lat is not None and unit.lon is not None
        assert centre.lat is not None and centre.lon is not None
        assert abs(unit.lat - centre.lat) < 0.2 and abs(unit.lon - centre.lon) < 0.2
        if unit.level == UnitLevel.CITY:
            continue
        parent = units[unit.parent_id]
        assert parent.level == parent_level[unit.level], unit.code
        assert unit.path == f"{parent.path}{unit.code}/"
        if unit.level != UnitLevel.AGENCY:
            assert CODE.match(unit.code), unit.code
            assert unit.code.startswith(parent.code + "-") or parent.level == UnitLevel.CITY


def test_every_community_is_paired_with_its_districts_agencies(demo_city: Session) -> None:
    units = {u.id: u for u in demo_city.exec(select(Unit)).all()}
    pairs = demo_city.exec(select(Pairing)).all()
    by_community: dict[int, set[Category]] = {}
    for pair in pairs:
        community, agency = units[pair.community_id], units[pair.agency_id]
        assert community.level == UnitLevel.COMMUNITY and agency.level == UnitLevel.AGENCY
        assert agency.parent_id == units[community.parent_id or 0].parent_id  # same district
        by_community.setdefault(pair.community_id, set()).add(pair.category)
    communities = [u for u in units.values() if u.level == UnitLevel.COMMUNITY]
    assert len(by_community) == len(communities)
    wanted = {Category.LABOUR, Category.ENVIRONMENT, Category.RELOCATION}
    assert all(cats == wanted for cats in by_community.values())


def test_staff_cover_every_unit(demo_city: Session) -> None:
    units = {u.id: u for u in demo_city.exec(select(Unit)).all()}
    staff = demo_city.exec(select(Staff)).all()
    by_unit: dict[int, Counter[StaffRole]] = {}
    for member in staff:
        assert member.unit_id is not None
        by_unit.setdefault(member.unit_id or 0, Counter())[member.role] += 1
    for unit_id, unit in units.items():
        roles = by_unit.get(unit_id, Counter())
        match unit.level:
            case UnitLevel.COMMUNITY:
                assert 2 <= roles[StaffRole.MEDIATOR] <= 3, unit.code
                assert roles[StaffRole.COMMUNITY_WORKER] >= 1
            case UnitLevel.COMPOUND:
                assert roles[StaffRole.GRID_WORKER] == 1, unit.code
            case UnitLevel.STREET | UnitLevel.DISTRICT:
                assert roles[StaffRole.SUPERVISOR] == 1 and roles[StaffRole.MEDIATOR] >= 2
            case UnitLevel.AGENCY:
                assert roles[StaffRole.MEDIATOR] >= 1
            case _:
                pass
    assert sum(1 for s in staff if s.role == StaffRole.ADMIN) == 1
    assert any(s.away for s in staff) and any(not s.active for s in staff)
    assert all(s.capacity > 0 for s in staff if s.role == StaffRole.MEDIATOR)
    assert len(staff) == len(demo_staff())
    assert len({s.username for s in staff}) == len(staff)


def test_demo_sign_ins_verify_against_stored_hashes(demo_city: Session) -> None:
    sign_ins = demo_sign_ins()
    assert len(sign_ins) >= 5
    units = {u.id: u.code for u in demo_city.exec(select(Unit)).all()}
    hashes: set[str] = set()
    for username, role, unit_code, password in sign_ins:
        member = demo_city.exec(select(Staff).where(Staff.username == username)).one()
        assert member.role.value == role and units[member.unit_id or 0] == unit_code
        assert password == DEMO_PASSWORD and member.password_hash
        assert DEMO_PASSWORD not in member.password_hash
        hashes.add(member.password_hash)
    for stored in hashes:  # Argon2 is slow on purpose: check each distinct hash once
        assert verify_password(DEMO_PASSWORD, stored)
        assert not verify_password(DEMO_PASSWORD + "x", stored)


def test_sample_cases_are_recorded_through_the_state_machine(demo_city: Session) -> None:
    cases = demo_city.exec(select(Case)).all()
    assert len(cases) == FIRST_BATCH >= 300
    assert len({c.number for c in cases}) == len(cases)
    for case in cases:
        assert case.status.value == "submitted" and case.version == 1
        assert T0 - timedelta(days=HISTORY_DAYS + 1) <= case.created_at < T0
        assert case.place_unit_id is not None
    events = demo_city.exec(select(func.count()).select_from(CaseEvent)).one()
    outbox = demo_city.exec(select(func.count()).select_from(Outbox)).one()
    assert events == outbox == len(cases)
    # Numbers are handed out in submission order.
    ordered = sorted(cases, key=lambda c: c.created_at)
    assert [c.number for c in ordered] == sorted(c.number for c in cases)
    assert verify_all(demo_city) == []


def test_sample_complaints_are_varied_realistic_and_valid() -> None:
    complaints = demo_complaints()
    assert [c.model_dump() for c in complaints] == [c.model_dump() for c in demo_complaints()]
    batch = complaints[:FIRST_BATCH]
    categories = Counter(c.category for c in batch)
    for needed in (Category.RELOCATION, Category.LABOUR, Category.ENVIRONMENT):
        assert categories[needed] >= 30, needed
    assert sum(1 for cat, n in categories.items() if n >= 10 and cat not in {
        Category.RELOCATION, Category.LABOUR, Category.ENVIRONMENT}) >= 3  # fmt: skip
    # Group cases: many complainants against one respondent.
    groups = [
        c
        for c in batch
        if c.people_affected >= 10 and sum(p.side == PartySide.COMPLAINANT for p in c.parties) >= 3
    ]
    assert {c.category for c in groups} >= {Category.LABOUR, Category.RELOCATION}
    # Repeated complaints about the same source (same factory, same site).
    sources = Counter(
        p.name
        for c in batch
        for p in c.parties
        if p.side == PartySide.RESPONDENT and p.kind != PartyKind.PERSON
    )
    assert sum(1 for n in sources.values() if n >= 10) >= 3
    assert all(re.search(r"[\u4e00-\u9fff]{6}", c.description) for c in complaints)
    assert all("{" not in c.description for c in complaints)
    for c in complaints:
        for p in c.parties:
            if p.phone:
                assert normalise_phone(p.phone) == p.phone
                assert p.phone not in c.description
            if p.id_number:
                assert normalise_id_number(p.id_number) == p.id_number
                assert p.id_number.startswith("3699")  # no real prefecture


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIAOJIE_HOME", str(tmp_path))
    reset_settings()
    reset_engines()
    yield tmp_path
    reset_engines()


def test_init_demo_twice_leaves_one_city_and_no_clear_personal_data(
    fresh_home: Path, vclock: clock.VirtualClock
) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["init", "--demo"])
    assert first.exit_code == 0, first.output
    assert f"{FIRST_BATCH} cases" in first.output
    second = runner.invoke(app, ["init", "--demo"])
    assert second.exit_code == 0, second.output
    assert "already loaded" in second.output
    reset_engines()

    db = fresh_home / "tiaojie.db"
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM unit WHERE code = ?", (CITY_CODE,)).fetchone() == (
            1,
        )
        assert con.execute("SELECT count(*) FROM cases").fetchone() == (FIRST_BATCH,)
        assert con.execute("SELECT count(*) FROM staff").fetchone() == (len(demo_staff()),)
        assert con.execute("SELECT count(*) FROM case_event").fetchone() == (FIRST_BATCH,)
        dump = "\n".join(con.iterdump())
    finally:
        con.close()

    phones = {p.phone for c in demo_complaints() for p in c.parties if p.phone}
    ids = {p.id_number for c in demo_complaints() for p in c.parties if p.id_number}
    assert len(phones) > 300 and len(ids) > 200
    leaked = [v for v in phones | ids if v in dump]
    assert leaked == [], f"{len(leaked)} personal numbers in clear"
    # The parties are there, masked: the dump is not simply empty of them.
    first_phone = next(p.phone for p in demo_complaints()[0].parties if p.phone)
    assert f"{first_phone[:3]}****{first_phone[-4:]}" in dump
    assert 'INSERT INTO "party"' in dump


# The live demo's feed (tiaojie up --demo). These add cases to the module's city, so they
# come last: the tests above count the first batch.


def test_the_live_feed_files_open311_samples_as_the_public(
    demo_city: Session, tmp_path: Path
) -> None:
    from tiaojie_cli.demo_feed import DemoFeeder

    demo_city.rollback()  # one connection (in memory): end the module's read first
    engine = demo_city.get_bind()
    assert isinstance(engine, Engine)
    lines: list[str] = []
    feeder = DemoFeeder(state_file=tmp_path / "feed.json", log=lines.append, engine=engine)
    live = demo_complaints()[FIRST_BATCH:]
    first_open311 = next(i for i, c in enumerate(live) if c.channel == Channel.OPEN311)
    numbers = [feeder.feed_one() for _ in range(first_open311 + 2)]
    assert None not in numbers, [line for line in lines if "refused" in line]
    with Session(engine) as session:
        fed = session.exec(select(Case).where(col(Case.number).in_(numbers))).all()
    by_public = [c for c in fed if c.channel == Channel.OPEN311]
    assert by_public and all(c.created_by_id is None for c in by_public)
    assert any(c.created_by_id is not None for c in fed)  # a walk-in: a community worker


def test_the_live_feed_passes_over_a_refused_complaint(
    demo_city: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.errors import ValidationError
    from tiaojie_cli import demo_feed

    def refuse(*_args: object, **_kwargs: object) -> Case:
        raise ValidationError("description: too short", "description：内容太短")

    demo_city.rollback()  # one connection (in memory): end the module's read first
    engine = demo_city.get_bind()
    assert isinstance(engine, Engine)
    lines: list[str] = []
    feeder = demo_feed.DemoFeeder(state_file=tmp_path / "f.json", log=lines.append, engine=engine)
    monkeypatch.setattr(demo_feed, "create_case", refuse)
    assert feeder.feed_one() is None
    monkeypatch.undo()
    assert feeder.feed_one() is not None  # the next one, not the refused one again
    assert sum("refused" in line for line in lines) == 1


def test_the_live_demo_moves_the_furthest_along_case_first(
    session: Session, vclock: clock.VirtualClock, tmp_path: Path
) -> None:
    from tests.factories import accept_for_mediation, advance_to_assigned, build_city, make_case
    from tiaojie_cli.demo_feed import DemoFeeder

    city = build_city(session)
    waiting = advance_to_assigned(session, make_case(session), city)
    along = accept_for_mediation(
        session, advance_to_assigned(session, make_case(session), city), city
    )
    session.commit()
    vclock.advance(timedelta(minutes=5))
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    lines: list[str] = []
    feeder = DemoFeeder(state_file=tmp_path / "f.json", log=lines.append, engine=engine, dwell_s=0)
    assert feeder.simulate_one()
    assert lines == [f"demo 演示: {along.number} consent recorded 记录调解同意 {SIMULATED}"]
    session.refresh(waiting)
    assert waiting.accepted_at is None  # the older case waits its turn


def test_the_readme_counts_the_demo_staff() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"**Demo staff 演示人员**: {len(demo_staff())} accounts" in readme
