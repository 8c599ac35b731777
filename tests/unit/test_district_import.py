"""Loading a district from files: the demo city's files give exactly ``init --demo``;
re-running changes nothing; bad files report every mistake with its row and change
nothing; GBK from Excel is refused with the way to save UTF-8; policy history is kept;
a unit moved by an import takes its subtree and its cases along, history intact."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models import clock
from models.admin_log import AdminEvent, verify_log
from models.case import Case
from models.db import reset_engines
from models.demo import DISTRICT, load_demo_city
from models.district_import import import_units, read_unit_rows
from models.errors import ValidationError
from models.event import CaseEvent
from models.policy import PolicySet, TimeLimitPolicy
from models.policy_load import load_policies
from models.settings import reset_settings
from models.sign_in import issue_link, redeem
from models.staff import Staff
from models.tabular import ImportRefused
from models.unit import Unit
from tiaojie_cli.main import app

TEMPLATES = Path(__file__).parents[2] / "docs" / "templates"
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIAOJIE_HOME", str(tmp_path / "home"))
    reset_settings()
    reset_engines()
    yield tmp_path / "home"
    reset_engines()


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """The district as a user sees it: tree, staff, pairings, limits (no ids, no secrets)."""
    con = sqlite3.connect(db)
    try:
        q = con.execute
        return {
            "units": q(
                "SELECT u.code, u.name_zh, u.name_en, u.level, p.code, u.path, u.address, u.lat,"
                " u.lon FROM unit u LEFT JOIN unit p ON p.id = u.parent_id ORDER BY u.code"
            ).fetchall(),
            "staff": q(
                "SELECT s.username, s.display_name, s.role, u.code, s.skills, s.capacity,"
                " s.active, s.away FROM staff s LEFT JOIN unit u ON u.id = s.unit_id"
                " ORDER BY s.username"
            ).fetchall(),
            "pairings": q(
                "SELECT c.code, p.category, a.code FROM pairing p JOIN unit c ON c.id ="
                " p.community_id JOIN unit a ON a.id = p.agency_id ORDER BY 1, 2"
            ).fetchall(),
            "policies": q(
                "SELECT name, category, priority, level, response_value, response_unit,"
                " resolution_value, resolution_unit, on_expiry FROM time_limit_policy"
                " ORDER BY id"
            ).fetchall(),
        }
    finally:
        con.close()


def test_importing_the_demo_files_gives_exactly_init_demo_and_again_changes_nothing(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vclock: clock.VirtualClock
) -> None:
    _cli("init")
    _cli("import", "units", str(DISTRICT / "units.csv"))
    staff_out = _cli("import", "staff", str(DISTRICT / "staff.csv"))
    _cli("import", "pairings", str(DISTRICT / "pairings.csv"))
    _cli("policies", "load", str(DISTRICT / "policies.toml"))
    assert (
        staff_out.count("/web/welcome/")
        == len(DISTRICT.joinpath("staff.csv").read_text("utf-8").splitlines()) - 1
    )
    imported = _snapshot(home / "tiaojie.db")

    again = [
        _cli("import", "units", str(DISTRICT / "units.csv")),
        _cli("import", "staff", str(DISTRICT / "staff.csv")),
        _cli("import", "pairings", str(DISTRICT / "pairings.csv")),
        _cli("policies", "load", str(DISTRICT / "policies.toml")),
    ]
    assert all(" 0 added" in out and " 0 changed" in out for out in again[:3]), again
    assert "nothing changed" in again[3]
    assert _snapshot(home / "tiaojie.db") == imported

    demo_home = tmp_path / "demo"
    monkeypatch.setenv("TIAOJIE_HOME", str(demo_home))
    reset_settings()
    reset_engines()
    _cli("init", "--demo")
    assert _snapshot(demo_home / "tiaojie.db") == imported
    assert len(imported["units"]) > 200 and len(imported["staff"]) > 150
    assert len(imported["pairings"]) > 40 and len(imported["policies"]) > 15


def test_dry_run_shows_what_would_change_and_changes_nothing(
    home: Path, vclock: clock.VirtualClock
) -> None:
    out = _cli("init", "--district", str(TEMPLATES))
    assert "8 added" in out and "/web/welcome/" in out
    before = _snapshot(home / "tiaojie.db")
    dry = _cli("import", "units", str(TEMPLATES / "units.geojson"), "--dry-run")
    assert "dry run" in dry and "QH-S01-C02" in dry and "2 added" in dry
    assert _snapshot(home / "tiaojie.db") == before
    _cli("import", "units", str(TEMPLATES / "units.geojson"))
    con = sqlite3.connect(home / "tiaojie.db")
    point = con.execute("SELECT boundary, lat FROM unit WHERE code = 'QH-S01-C02-P01'").fetchone()
    polygon = con.execute("SELECT boundary FROM unit WHERE code = 'QH-S01-C02'").fetchone()[0]
    con.close()
    assert point == (None, 31.2274)  # a Point fills lat/lon
    assert '"Polygon"' in polygon


BAD_UNITS = (
    "\ufeffcode,name,name_en,level,parent_code,address,lat,lon\n"
    "QH,清河区,Qinghe,district,,,,\n"
    "\n"
    "QH-S01,柳岸街道,Liu'an,street,QH,,31.2,121.4\n"
    "QH-S01,重复街道,Again,street,QH,,,\n"  # row 5: duplicate code
    "QH-S09-C01,某社区,X,community,QH-S09,,,\n"  # row 6: unknown parent
    "QH-B01,某楼,Y,building,QH-S01,,,\n"  # row 7: wrong level order
    "QH-S02,某街道,Z,street,QH,,95,121\n"  # row 8: latitude out of range
    "QH-S03,某街道,W,town,QH,,,\n"  # row 9: unknown level
    "QH-C07,某社区,V,community,,,,\n"  # row 10: no parent
    "\n"
)
BAD_STAFF = (
    "username,name,role,unit_code,skills,phone,active\n"
    "a-ok,甲,mediator,QH,neighbour,13912345678,yes\n"
    "b-phone,乙,mediator,QH,neighbour,1391234,yes\n"  # bad phone
    "c-role,丙,boss,QH,,,yes\n"  # unknown role
    "d-unit,丁,mediator,NOWHERE,,,yes\n"  # unknown unit
    "a-ok,戊,mediator,QH,,,yes\n"  # duplicate username
    "f-active,己,mediator,QH,,,maybe\n"  # bad active
    "g-skill,庚,mediator,QH,gardening,,yes\n"  # unknown category
    "h-both,辛,mediator,ELSEWHERE,,1391234,yes\n"  # bad phone and unknown unit: both told
)


def test_bad_units_and_staff_report_every_mistake_with_its_row_and_change_nothing(
    home: Path, tmp_path: Path, vclock: clock.VirtualClock
) -> None:
    _cli("init")
    units = tmp_path / "units.csv"
    units.write_text(BAD_UNITS, encoding="utf-8")
    result = runner.invoke(app, ["import", "units", str(units)])
    assert result.exit_code == 1
    text = result.output.replace("\n", " ")
    for where in (
        "units.csv:5:code",
        "units.csv:6:parent_code",
        "units.csv:7:level",
        "units.csv:8:lat",
        "units.csv:9:level",
        "units.csv:10:parent_code",
    ):
        assert where in text, where
    assert "6 problem(s)" in text and "nothing was changed" in text
    assert _snapshot(home / "tiaojie.db")["units"] == []

    good = tmp_path / "good.csv"
    good.write_text(BAD_UNITS.splitlines()[0] + "\nQH,清河区,Qinghe,district,,,,\n", "utf-8")
    _cli("import", "units", str(good))  # with a BOM, accepted
    staff = tmp_path / "staff.csv"
    staff.write_text(BAD_STAFF, encoding="utf-8")
    result = runner.invoke(app, ["import", "staff", str(staff)])
    assert result.exit_code == 1
    text = result.output.replace("\n", " ")
    for where in (
        "staff.csv:3:phone",
        "staff.csv:4:role",
        "staff.csv:5:unit_code",
        "staff.csv:6:username",
        "staff.csv:7:active",
        "staff.csv:8:skills",
        "staff.csv:9:phone",
        "staff.csv:9:unit_code",
    ):
        assert where in text, where
    assert "13912345678" not in text
    assert _snapshot(home / "tiaojie.db")["staff"] == []


def test_a_gbk_file_from_excel_is_refused_with_how_to_save_utf8(home: Path, tmp_path: Path) -> None:
    _cli("init")
    path = tmp_path / "units.csv"
    path.write_bytes(BAD_UNITS.lstrip("\ufeff").encode("gbk"))
    result = runner.invoke(app, ["import", "units", str(path)])
    assert result.exit_code == 1
    text = result.output.replace("\n", "")
    assert "GBK" in text and "CSV UTF-8 (逗号分隔)" in text and "nothing was changed" in text


def test_policies_validate_and_keep_the_previous_set_as_history(
    session: Session, vclock: clock.VirtualClock
) -> None:
    limit = "[[limit]]\nname = '{}'\npriority = 'emergency'\nrespond = '{}'\nresolve = 'same_day'\n"
    bad = (
        limit.format("a", "2 working_hours")
        + limit.format("b", "2 working_hours")  # line 6: the same selection as a
        + limit.format("c", "2 hours")  # line 11: a limit it cannot read
        + "when_passed = 'panic'\ncolour = 'red'\n"
    )
    with pytest.raises(ImportRefused) as refused:
        load_policies(session, bad, file="p.toml", actor="test")
    messages = [str(p) for p in refused.value.file_problems]
    assert any("p.toml:11:respond" in m for m in messages)
    assert any("p.toml:11:when_passed" in m for m in messages)
    assert any("p.toml:11:colour: 未知的键" in m for m in messages)  # a typo'd key
    assert any("p.toml:6" in m and "could never apply" in m for m in messages)
    assert any("no default limit" in m for m in messages)
    assert session.exec(select(TimeLimitPolicy)).all() == []

    first = (DISTRICT / "policies.toml").read_text("utf-8")
    load_policies(session, first, file="policies.toml", actor="test")
    head, _, tail = first.rpartition('resolve = "13 working_days"')  # the default limit
    second = head + 'resolve = "15 working_days"' + tail
    report = load_policies(session, second, file="policies-2027.toml", actor="test")
    assert len(report.added) == 1 and len(report.removed) == 1
    assert load_policies(session, second, file="again.toml", actor="test").unchanged
    sets = session.exec(select(PolicySet).order_by(col(PolicySet.id))).all()
    assert [(s.source, s.active) for s in sets] == [
        ("policies.toml", False),
        ("policies-2027.toml", True),
    ]
    assert sets[0].document == first
    assert [e.action for e in session.exec(select(AdminEvent)).all()] == ["policies.load"] * 2
    assert verify_log(session) == []


def test_moving_a_unit_by_import_takes_its_subtree_and_cases_and_keeps_history(
    session: Session, vclock: clock.VirtualClock, tmp_path: Path
) -> None:
    load_demo_city(session)
    community = session.exec(select(Unit).where(Unit.code == "D01-S01-C01")).one()
    case = session.exec(select(Case).limit(1)).one()
    case.unit_id, case.unit_path = community.id, community.path  # as routing leaves it
    session.add(case)
    session.flush()
    assert case.id is not None
    events_before = [
        e.hash for e in session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))
    ]
    rows = [
        line
        for line in (DISTRICT / "units.csv").read_text("utf-8").splitlines()
        if line.startswith("D01-S01-C01,") or line.startswith("code,")
    ]
    moved = rows[1].replace(",D01-S01,", ",D01-S02,")
    path = tmp_path / "move.csv"
    path.write_text(rows[0] + "\n" + moved + "\n", "utf-8")
    report = import_units(session, read_unit_rows(path), file=path.name, actor="test")
    assert report.changed == [("D01-S01-C01", ["parent_code"])]
    session.expire_all()
    community = session.exec(select(Unit).where(Unit.code == "D01-S01-C01")).one()
    assert community.path == "/JX/D01/D01-S02/D01-S01-C01/"
    building = session.exec(select(Unit).where(Unit.code == "D01-S01-C01-P01-B01")).one()
    assert building.path.startswith(community.path)
    moved_case = session.get(Case, case.id)
    assert moved_case is not None and moved_case.unit_path is not None
    assert moved_case.unit_path.startswith(community.path)
    events_after = [
        e.hash for e in session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id))
    ]
    assert events_after == events_before


def test_a_sign_in_link_works_once(session: Session, vclock: clock.VirtualClock) -> None:
    staff = Staff(username="new-one", display_name="新人", role="mediator")  # type: ignore[arg-type]
    session.add(staff)
    session.flush()
    assert staff.id is not None
    old = issue_link(session, staff.id)
    token = issue_link(session, staff.id)
    with pytest.raises(ValidationError):
        redeem(session, old, password="a-long-password", repeat="a-long-password")
    with pytest.raises(ValidationError):
        redeem(session, token, password="short", repeat="short")
    redeem(session, token, password="a-long-password", repeat="a-long-password")
    assert staff.password_hash
    with pytest.raises(ValidationError):
        redeem(session, token, password="another-password", repeat="another-password")
