"""The policy simulator (models.simulate, ``tiaojie simulate``): a scenario runs in a
throwaway copy of the district, never in the live database, and the same scenarios and
seed write the same summary.json byte for byte."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from models import clock
from models.case import Case
from models.db import build_engine
from models.demo import load_demo_city
from models.scenario import ScenarioError, parse_scenario, read_scenario
from models.sim_output import summary_document, summary_json
from models.simulate import Period, run_scenario
from models.staff import Staff
from models.tables import metadata

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
SCENARIOS = Path(__file__).parents[2] / "docs" / "scenarios"
SMALL = """
name = "小样本 Small"
[arrivals]
mode = "generate"
per_working_day = 4
mix = { labour = 1, neighbour = 2 }
[[staffing]]
unit = "D01-S01"
role = "mediator"
add = 2
"""


@pytest.fixture(scope="module")
def live_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo city in a database file, as a district's live database."""
    path = tmp_path_factory.mktemp("live") / "tiaojie.db"
    previous = clock.get_clock()
    clock.set_clock(clock.VirtualClock(NOW))
    try:
        engine = build_engine(f"sqlite:///{path}")
        metadata.create_all(engine)
        with Session(engine) as session:
            load_demo_city(session)
            session.commit()
        engine.dispose()
    finally:
        clock.set_clock(previous)
    yield path


def _run(path: Path, text: str, seed: int) -> str:
    engine = build_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as live:
            scenario = parse_scenario(text, file="small.toml")
            result = run_scenario(live, scenario, Period(NOW - timedelta(days=8), 8), seed=seed)
    finally:
        engine.dispose()
    return summary_json(summary_document({"small": result}, start="2026-11-22", days=8, seed=seed))


def test_same_scenario_and_seed_same_bytes_and_the_live_database_is_untouched(
    live_file: Path,
) -> None:
    before = hashlib.sha256(live_file.read_bytes()).hexdigest()
    first = _run(live_file, SMALL, seed=7)
    second = _run(live_file, SMALL, seed=7)
    assert first == second
    assert hashlib.sha256(live_file.read_bytes()).hexdigest() == before
    engine = build_engine(f"sqlite:///{live_file}")
    with Session(engine) as live:
        assert live.exec(select(func.count()).select_from(Case)).one() == 320
        assert live.exec(select(Staff).where(Staff.username.startswith("sim-"))).first() is None  # type: ignore[attr-defined]
    engine.dispose()
    assert '"composite"' in first and '"workload_p95"' in first
    assert _run(live_file, SMALL, seed=8) != first


def test_summary_holds_every_figure_per_scenario(live_file: Path) -> None:
    import json

    doc = json.loads(_run(live_file, SMALL, seed=3))["scenarios"]["small"]
    for key in (
        "rates",
        "composite",
        "settled_share_by_level",
        "escalations_by_level",
        "referrals",
        "overdue_peak",
        "workload_p50",
        "workload_p95",
    ):
        assert key in doc, key
    assert doc["arrivals"] > 10
    streets = {k: v for k, v in doc["rates"].items() if v["level"] == "street"}
    assert "D01-S01" in streets
    assert sum(doc["settled_share_by_level"].values()) <= 1.0


def test_scenario_files_in_docs_parse() -> None:
    parsed = [
        read_scenario(p) for p in sorted(SCENARIOS.glob("*.toml")) if "policies" not in p.stem
    ]
    assert {s.key for s in parsed} >= {"as-is", "heavy-agency-at-once", "heavy-community-7days"}
    at_once = next(s for s in parsed if s.key == "heavy-agency-at-once")
    assert at_once.policy_text is not None and "same_day" in at_once.policy_text


def test_a_bad_scenario_is_refused_with_its_mistake() -> None:
    with pytest.raises(ScenarioError, match="unknown behaviour"):
        parse_scenario('name = "x"\n[behaviour]\nhappiness = 2\n', file="x.toml")
    with pytest.raises(ScenarioError, match="not valid"):
        parse_scenario('name = "x"\n[arrivals]\nmode = "dream"\n', file="x.toml")


def test_cli_help_and_a_bad_date() -> None:
    from tiaojie_cli.main import app

    runner = CliRunner()
    assert "--from" in runner.invoke(app, ["simulate", "--help"]).output
    result = runner.invoke(app, ["simulate", str(SCENARIOS / "as-is.toml"), "--from", "soon"])
    assert result.exit_code == 2


def test_cli_writes_summary_and_report_twice_the_same(
    live_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.db import reset_engines
    from models.settings import reset_settings
    from tiaojie_cli.main import app

    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL, encoding="utf-8")
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", f"sqlite:///{live_file}")
    reset_settings()
    reset_engines()
    try:
        outputs = []
        for n in (1, 2):
            out = tmp_path / f"out{n}"
            args = ["simulate", str(scenario), "--from", "2026-11-20", "--days", "5"]
            result = CliRunner().invoke(app, [*args, "--seed", "5", "--out", str(out)])
            assert result.exit_code == 0, result.output
            outputs.append(
                ((out / "summary.json").read_bytes(), (out / "report.html").read_bytes())
            )
    finally:
        reset_settings()
        reset_engines()
    assert outputs[0] == outputs[1]
    html = outputs[0][1].decode()
    assert html.count("<svg") == 5 and "<script" not in html and 'src="http' not in html
    assert "政策模拟报告" in html and "small" in html


def test_a_scenarios_district_figure_replaces_the_streets_fitted_ones() -> None:
    from models.behaviour import BehaviourModel
    from models.simulate import with_overrides

    fitted = BehaviourModel(
        satisfied_by_street={"D01-S01": 0.5}, respond_by_street={"D01-S01": (1.0, 30.0)}
    )
    scenario = parse_scenario(
        'name = "x"\n[behaviour]\nsatisfied = 0.9\nrespond_hours = [0.5, 2.0]\n', file="x.toml"
    )
    model = with_overrides(fitted, scenario, seed=1)
    assert model.satisfaction("D01-S01") == 0.9 and model.respond_by_street == {}
    assert (
        with_overrides(fitted, parse_scenario('name = "y"\n', file="y.toml"), 1).satisfaction(
            "D01-S01"
        )
        == 0.5
    )


def test_scenarios_in_processes_give_the_same_summary_as_one_after_another(
    live_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two scenarios on a live database file run in two processes (reported day by day
    through the queue), and the summary is the same bytes as in this process."""
    from models.settings import reset_settings
    from models.sim_pool import processes_for
    from models.sim_runs import run_scenarios

    other = SMALL.replace('name = "小样本 Small"', 'name = "另一 Other"').replace(
        "add = 2", "add = 0"
    )
    scenarios = [
        dataclasses.replace(parse_scenario(SMALL, file="small.toml"), key="small"),
        dataclasses.replace(parse_scenario(other, file="other.toml"), key="other"),
    ]
    engine = build_engine(f"sqlite:///{live_file}")
    documents, seen = [], []
    try:
        for processes in ("2", "1"):
            monkeypatch.setenv("TIAOJIE_SIMULATION_PROCESSES", processes)
            reset_settings()
            with Session(engine) as live:
                assert processes_for(live, 2) == int(processes)
                documents.append(
                    summary_json(
                        run_scenarios(
                            live,
                            scenarios,
                            start=date(2026, 11, 20),
                            days=4,
                            seed=3,
                            progress=lambda key, done, total: seen.append((key, done, total)),
                        )
                    )
                )
    finally:
        reset_settings()
        engine.dispose()
    assert documents[0] == documents[1]
    assert ("small", 4, 4) in seen and ("other", 4, 4) in seen
    assert seen.count(("other", 4, 4)) == 2  # once from its process, once from this one
