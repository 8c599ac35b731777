"""Machine triage over HTTP and the CLI: ``POST /api/v1/triage``, a person's choice
standing on REST and the CLI, the 研判 confirmation, ``tiaojie triage --json``."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from models.case import Case
from models.lifecycle import Actor
from models.triage import triage_case
from models.triage_tables import TriageCorrection, TriageSuggestion
from tests.api.conftest import Api
from tests.api.test_cli_api import served, token_for  # noqa: F401 - the served fixture
from tiaojie_cli.main import app as cli

runner = CliRunner()
SMELL = "化工厂晚上排放刺鼻的气体，家里老人孩子天天咳嗽"
KEYS = {"category", "priority", "confidence", "top", "risk", "reasons"}


def _triage(api: Api, case_id: int) -> Case:
    with Session(api.engine) as session:
        triage_case(session, case_id=case_id, actor=Actor.system())
        session.commit()
        case = session.get(Case, case_id)
        assert case is not None
        session.expunge(case)
        return case


def test_triage_endpoint_answers_and_stores_nothing(api: Api) -> None:
    worker = api.as_("workerA")
    before = api.count(Case)
    r = worker.post(
        "/api/v1/triage",
        json={
            "text": "工友们说再不发工资，过年前就去区政府门口拉横幅讨说法",
            "people_affected": 40,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= KEYS
    assert body["category"] == "labour" and body["priority"] == "high"
    assert body["risk"] == "red"
    assert len(body["top"]) == 3 and body["top"][0]["category"] == "labour"
    assert any("政府" in reason for reason in body["reasons"])
    assert api.count(Case) == before and api.count(TriageSuggestion) == 0
    # Staff only; bad input is a clear 4xx.
    assert api.client.post("/api/v1/triage", json={"text": "楼上漏水"}).status_code == 401
    assert worker.post("/api/v1/triage", json={"text": "x"}).status_code == 422
    assert worker.post("/api/v1/triage", json={"text": "楼上漏水", "x": 1}).status_code == 422


def test_a_category_sent_over_rest_stands_and_the_model_is_shown_beside_it(api: Api) -> None:
    worker = api.as_("workerA")
    r = worker.post(
        "/api/v1/cases",
        json={"category": "neighbour", "description": SMELL, "place_code": "BA1"},
    )
    assert r.status_code == 201, r.text
    case = _triage(api, r.json()["case"]["id"])
    assert case.category.value == "neighbour" and case.category_locked
    with Session(api.engine) as session:
        suggestion = session.get(TriageSuggestion, case.id)
        assert suggestion is not None and suggestion.category.value == "environment"
        correction = session.exec(select(TriageCorrection)).one()
        assert (correction.machine_value, correction.chosen_value) == ("environment", "neighbour")
    # Without a category, the classifier files it.
    r = worker.post("/api/v1/cases", json={"description": SMELL, "place_code": "BA1"})
    assert r.status_code == 201, r.text
    assert _triage(api, r.json()["case"]["id"]).category.value == "environment"


def test_assessment_confirms_a_held_case(api: Api) -> None:
    worker = api.as_("workerA")
    r = worker.post(
        "/api/v1/cases",
        json={"description": "你好，有个事想反映一下，麻烦你们管一管。", "place_code": "BA1"},
    )
    case = _triage(api, r.json()["case"]["id"])
    assert case.held_for_assessment
    shown = worker.get(f"/api/v1/cases/{case.id}").json()
    assert "assessment" in shown["allowed_actions"]
    r = worker.post(
        f"/api/v1/cases/{case.id}/assessment",
        json={"category": "property", "version": case.version},
    )
    assert r.status_code == 200, r.text
    assert r.json()["case"]["category"] == "property"
    assert "assessment" not in r.json()["allowed_actions"]
    again = worker.post(
        f"/api/v1/cases/{case.id}/assessment",
        json={"category": "property", "version": r.json()["case"]["version"]},
    )
    assert again.status_code == 409


@pytest.mark.usefixtures("served")
def test_the_cli_choice_stands_and_triage_prints_json(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIAOJIE_TOKEN", token_for("community_worker", "CMA"))
    result = runner.invoke(
        cli,
        ["case", "submit", "--category", "environment", "--description", SMELL, "--place", "BA1"],
    )
    assert result.exit_code == 0, result.output
    with Session(api.engine) as session:
        case = session.exec(select(Case).order_by(Case.id.desc())).first()  # type: ignore[union-attr]
        assert case is not None and case.category_locked
        case_id = case.id or 0
    assert _triage(api, case_id).category.value == "environment"

    out = runner.invoke(cli, ["triage", "--json", "俺家楼上天天半夜蹦跶，闹心死了"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output.strip().splitlines()[-1])
    assert set(body) >= KEYS and body["category"] == "neighbour"


def test_the_leader_lists_and_closes_the_streets_assessment_task(api: Api) -> None:
    worker = api.as_("workerA")
    r = worker.post(
        "/api/v1/cases",
        json={
            "description": "四十多个工人被拖欠半年工资，说再不给钱就去区政府门口拉横幅讨说法",
            "place_code": "BA1",
            "people_affected": 40,
        },
    )
    case = _triage(api, r.json()["case"]["id"])
    assert case.risk_level == "red"
    leader = api.as_("supervisor")  # the district's supervisor: nobody supervises S1
    listed = leader.get("/api/v1/risk-warnings").json()
    assert [(w["case_number"], w["level"], w["street_code"]) for w in listed] == [
        (case.number, "red", "S1")
    ]
    assert listed[0]["leader_id"] == api.city.staff["supervisor"].id
    # A community worker is below the street: the street's tasks are not theirs.
    assert worker.get("/api/v1/risk-warnings").json() == []
    url = f"/api/v1/risk-warnings/{listed[0]['id']}/close"
    assert worker.post(url, json={"conclusion": "resolved"}).status_code == 404
    assert leader.post(url, json={"conclusion": "whatever"}).status_code == 422
    done = leader.post(url, json={"conclusion": "monitoring"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "closed" and done.json()["conclusion"] == "monitoring"
    assert leader.post(url, json={"conclusion": "resolved"}).status_code == 409
    assert leader.get("/api/v1/risk-warnings").json() == []
    assert len(leader.get("/api/v1/risk-warnings", params={"status": "all"}).json()) == 1
