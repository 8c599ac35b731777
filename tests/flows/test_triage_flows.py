"""Machine triage under Prefect: the scheduled retraining learns from 50 corrections and
leaves its confusion matrix as an artifact; an emergency is told at once from the intake
run; a red warning's notice reaches the responsible leader once, through the deployment
the warning event starts."""

from __future__ import annotations

import random
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import Engine
from sqlmodel import select

from deployments.definitions import definitions
from flows.intake import intake
from flows.risk import risk_notice
from flows.triage_learning import retrain_triage_flow
from models.assessment import assess
from models.db import read_session, write_session
from models.triage_learning import active_model, list_versions, record_correction
from models.triage_tables import RiskWarning
from tests.factories import City, make_case
from tests.flows.conftest import Receiver
from tests.unit.test_machine_triage import _platform_texts

pytestmark = pytest.mark.prefect


async def _artifact_markdown(key: str) -> str:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)


def test_scheduled_retraining_flips_a_systematic_error(
    case_db: Engine, city: City, aloop: Any
) -> None:
    texts = _platform_texts(random.Random(11), 56)
    taught, unseen = texts[:50], texts[50:]
    assert sum(assess(t).category == "labour" for t in unseen) >= 4
    with write_session(case_db) as s:
        for text in taught:
            case = make_case(s, description=text, people_affected=1, parties=[])
            record_correction(
                s,
                case_id=case.id or 0,
                field="category",
                machine_value="labour",
                chosen_value="other",
                source="reclassified",
                staff_id=city.staff["workerA"].id,
            )
    assert aloop.run(retrain_triage_flow(sample_per_category=80)) == "promoted"
    with read_session(case_db) as s:
        versions = list_versions(s)
        assert len(versions) == 1 and versions[0].active and versions[0].promoted_at
        model = active_model(s)
    assert sum(assess(t, model=model).category == "other" for t in unseen) >= 5
    markdown = aloop.run(_artifact_markdown("triage-model"))
    assert "promoted" in markdown and "| other |" in markdown
    assert aloop.run(retrain_triage_flow(sample_per_category=80)) == "not due"


def test_an_emergency_is_told_from_the_intake_run(
    case_db: Engine, city: City, receiver: Receiver, aloop: Any
) -> None:
    with write_session(case_db) as s:
        case_id = make_case(
            s, description="他现在拿着菜刀在楼道里追着人砍，已经有人受伤了", people_affected=1
        ).id
    assert case_id is not None
    aloop.run(intake(case_id))
    keys = {
        f"{case_id}:emergency:{city.staff['workerA'].id}",
        f"{case_id}:emergency:{city.staff['supervisor'].id}",
    }
    assert all(receiver.count(k) == 1 for k in keys), receiver.keys
    texts = [r["text"] for r in receiver.requests if r["kind"] == "emergency"]
    assert texts and all("菜刀" not in t for t in texts)


def test_a_red_warning_reaches_its_leader_once(
    case_db: Engine, city: City, receiver: Receiver, aloop: Any
) -> None:
    # The deployment is started by the automation on the warning events.
    (notice,) = [d for d in definitions() if d.flow.name == "risk-notice"]
    assert {"tiaojie.risk.warning", "tiaojie.cluster.warning"} <= set(notice.triggers[0].expect)
    with write_session(case_db) as s:
        case_id = make_case(
            s,
            description="五十多个工人被拖欠半年工资，扬言过年前去市政府门口拉横幅，还要去北京上访",
            people_affected=50,
        ).id
    assert case_id is not None
    aloop.run(intake(case_id))
    with read_session(case_db) as s:
        warning = s.exec(select(RiskWarning).where(RiskWarning.case_id == case_id)).one()
    assert warning.level == "red" and warning.leader_id == city.staff["supervisor"].id
    for _ in range(2):  # the event may be delivered twice: the leader hears once
        aloop.run(risk_notice(case_id))
    key = f"{case_id}:risk:{warning.id}:leader"
    assert receiver.count(key) == 1
    with read_session(case_db) as s:
        assert s.get(RiskWarning, warning.id).notified_at is not None  # type: ignore[union-attr]
