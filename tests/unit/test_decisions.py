"""The three rates' deciding rows (models.decisions) are kept as cases change: after a
month of the demo district worked through the real services (triage, routing,
contacts, escalation sweeps, mediation, referrals, return visits, closing), a merge, a
rolled-back change and the retention run, the kept rows equal a full recount, and the
monthly report, the dashboard's figures and the recount agree. (The fixture has its own
name: the PostgreSQL suite collects the unit tests' fixtures by name.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models import clock, metrics, monthly_report
from models.access import Actor
from models.behaviour import Replay
from models.case import Case
from models.contact import ContactCreate, record_contact
from models.db import build_engine, get_engine, reset_engines
from models.decisions import RateDecision, differences, rebuild
from models.demo import load_demo_city
from models.enums import CaseStatus, ContactMethod, Rate, UnitLevel
from models.event import CaseEvent
from models.mediating import merge_case
from models.migrate import upgrade
from models.retention import anonymise_closed_cases
from models.scenario import parse_scenario
from models.settings import reset_settings
from models.simulate import Period, fit_behaviour, generated_arrivals, sandbox, with_overrides
from models.tables import metadata
from tests.factories import advance_to_assigned, build_city, make_case, staff_actor
from tiaojie_cli.main import app

START = datetime(2026, 10, 8, 0, 0, tzinfo=UTC)
DAYS = 24
BUSY = """
name = "一个月 A month"
[arrivals]
mode = "generate"
per_working_day = 3
mix = { labour = 2, neighbour = 2, property = 1 }
"""
SYSTEM = Actor.system()


@pytest.fixture(scope="module")
def district_month() -> Iterator[Session]:
    """The demo district worked for 24 days by the simulator's behaviour model."""
    previous = clock.get_clock()
    vclock = clock.VirtualClock(START - timedelta(minutes=1))
    clock.set_clock(vclock)
    live_engine = build_engine("sqlite://")
    metadata.create_all(live_engine)
    try:
        with Session(live_engine) as live:
            load_demo_city(live)
            live.commit()
            scenario = parse_scenario(BUSY, file="busy.toml")
            behaviour, _fitted = fit_behaviour(live, seed=5)
            model = with_overrides(behaviour, scenario, 5)
            arrivals = generated_arrivals(live, scenario, Period(START, DAYS), 5)
            session = sandbox(live)
        replay = Replay(session, model, vclock)
        for at, data, actor, recorder in arrivals:
            replay.schedule(data, at=at, actor=actor, recorder=recorder)
        replay.run(until=START + timedelta(days=DAYS))
        session.commit()
        yield session
        session.close()
    finally:
        clock.set_clock(previous)
        live_engine.dispose()


def _rates(
    session: Session, level: UnitLevel, *, whole_run: bool = False
) -> list[metrics.UnitRates]:
    since, until = metrics.month_range(START.date())
    if whole_run:
        since, until = START, START + timedelta(days=DAYS + 1)
    return metrics.unit_rates(session, since=since, until=until, level=level)


def test_the_month_holds_a_realistic_mix(district_month: Session) -> None:
    verbs = Counter(district_month.exec(select(CaseEvent.verb)).all())
    for verb in ("assigned", "contacted", "escalated", "follow_up_recorded", "closed", "referred"):
        assert verbs[verb] > 0, verb
    kept = Counter(district_month.exec(select(RateDecision.rate)).all())
    assert all(kept[rate] > 10 for rate in Rate), kept


def test_kept_rows_equal_a_full_recount(district_month: Session) -> None:
    assert differences(district_month) == []


def test_merge_withdrawal_rollback_and_retention_keep_them_equal(district_month: Session) -> None:
    decided_ids = set(district_month.exec(select(RateDecision.case_id)).all())
    mergeable = district_month.exec(
        select(Case)
        .where(col(Case.status).in_(["triaged", "assigned", "escalated"]))
        .order_by(col(Case.id))
    ).all()
    merged = next(c for c in mergeable if c.id in decided_ids)
    into = next(c for c in mergeable if c.id != merged.id)
    before = _rates(district_month, UnitLevel.DISTRICT, whole_run=True)
    assert district_month.exec(select(RateDecision).where(RateDecision.case_id == merged.id)).all()
    merge_case(
        district_month,
        case_id=merged.id or 0,
        into_case_id=into.id or 0,
        actor=SYSTEM,
        expected_version=None,
    )
    district_month.commit()
    assert merged.status == CaseStatus.MERGED
    assert (
        district_month.exec(select(RateDecision).where(RateDecision.case_id == merged.id)).all()
        == []
    )
    after = _rates(district_month, UnitLevel.DISTRICT, whole_run=True)
    assert sum(r.cases for r in after) == sum(r.cases for r in before) - 1

    # A change rolled back leaves the kept rows as they were.
    district_month.exec(delete(RateDecision).where(col(RateDecision.case_id) == into.id))
    district_month.rollback()
    assert differences(district_month) == []

    # Retention anonymises the parties of long-finished cases; the rates stay.
    later = clock.now() + timedelta(days=400)
    assert anonymise_closed_cases(district_month, older_than_days=30, now=later) > 0
    district_month.commit()
    assert differences(district_month) == []
    assert _rates(district_month, UnitLevel.DISTRICT, whole_run=True) == after


def test_rebuild_restores_rows_written_outside_the_orm(district_month: Session) -> None:
    expected = _rates(district_month, UnitLevel.COMMUNITY)
    district_month.exec(delete(RateDecision))  # as after a bulk import or a migration
    district_month.commit()
    assert differences(district_month) != []
    kept = rebuild(district_month, batch=37)
    district_month.commit()
    assert kept == district_month.exec(select(func.count()).select_from(RateDecision)).one() > 0
    assert differences(district_month) == []
    assert _rates(district_month, UnitLevel.COMMUNITY) == expected


def test_monthly_report_and_dashboard_figures_agree(district_month: Session) -> None:
    first = START.date().replace(day=1)
    report = monthly_report.build(district_month, first, now=clock.now())
    for level in monthly_report.RATE_LEVELS:
        assert report.rates[level] == _rates(district_month, level)
    community = report.rates[UnitLevel.COMMUNITY]
    street = report.rates[UnitLevel.STREET]
    assert sum(r.response_cases for r in community) > 0
    # Every community lies in a street: a street's figures hold its communities' and
    # those decided at the street itself (escalated cases).
    assert sum(r.response_cases for r in street) >= sum(r.response_cases for r in community)
    assert sum(r.cases for r in street) >= sum(r.cases for r in community)


@pytest.fixture
def home_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIAOJIE_HOME", str(tmp_path))
    reset_settings()
    reset_engines()
    yield tmp_path / "tiaojie.db"
    reset_engines()


def test_the_aggregates_commands_find_and_mend_missing_rows(
    home_db: Path, vclock: clock.VirtualClock
) -> None:
    engine = get_engine()
    upgrade(engine)
    with Session(engine) as session:
        city = build_city(session)
        case = make_case(session)
        advance_to_assigned(session, case, city)
        record_contact(
            session,
            case_id=case.id or 0,
            data=ContactCreate(method=ContactMethod.PHONE, note="电话联系申请人"),
            actor=staff_actor(city, "mediatorA"),
            expected_version=None,
        )
        session.commit()
    runner = CliRunner()
    assert runner.invoke(app, ["aggregates", "check"]).exit_code == 0
    with engine.begin() as connection:  # as a bulk load outside the application would
        connection.execute(delete(RateDecision))
    missing = runner.invoke(app, ["aggregates", "check"])
    assert missing.exit_code == 1 and "missing" in missing.output
    rebuilt = runner.invoke(app, ["aggregates", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "1 deciding rows" in rebuilt.output
    assert runner.invoke(app, ["aggregates", "check"]).exit_code == 0
    with engine.begin() as connection:
        connection.execute(delete(RateDecision))
    upgrade(engine)  # a database made before the table gets its rows when migrated
    assert runner.invoke(app, ["aggregates", "check"]).exit_code == 0
