"""A whole case with planted personal data (in the parties and typed into the free-text
description): none of it reaches Prefect — flow-run names, parameters, tags, task runs,
logs, events or artifacts — nor the notifications."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterStartTime,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events.filters import EventFilter, EventResourceFilter
from sqlalchemy import Engine
from sqlmodel import select

from flows.escalation import escalation
from flows.reconcile import reconcile
from flows.reports import reports
from models import pii
from models.case import Case
from models.clock import VirtualClock
from models.db import read_session, write_session
from models.enums import (
    Category,
    FollowUpOutcome,
    PartyKind,
    PartySide,
    ResolvedAnswer,
    SatisfiedAnswer,
)
from models.follow_up import FollowUp, FollowUpRecord
from models.follow_ups import record_follow_up
from models.mediating import record_consent, record_session, sign_agreement
from models.mediation import AgreementCreate, SessionCreate, TermCreate
from models.notification import Notification
from models.workdays import local_date
from tests.factories import City, make_case
from tests.flows.conftest import Receiver
from tests.flows.helpers import accept_and_name, drive

pytestmark = pytest.mark.prefect

NAME = "欧阳铁柱"
NAME2 = "司马翠花"
PHONE = "13912345678"
ID17 = "11010519800101123"
ID_NUMBER = ID17 + pii.id_check_digit(ID17)
ADDRESS = "柳河街道幸福里7号楼302室"
PLANTED = [NAME, NAME2, PHONE, "139 1234 5678", ID_NUMBER, ADDRESS, "幸福里7号楼302"]


def _hits(blob: str) -> list[str]:
    return [p for p in PLANTED if p in blob]


async def _everything_prefect_holds(number: str, case_id: int, since: datetime) -> dict[str, str]:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case:{number}"]))
        )
        # The scheduled flows this test ran (escalation, reconcile, reports).
        other = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
            limit=200,
        )
        run_ids = list({r.id for r in runs + other})
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)), limit=200
        )
        logs: list[Any] = []
        while True:
            page = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids)),
                limit=200,
                offset=len(logs),
            )
            logs += page
            if len(page) < 200:
                break
        events = await client.read_events(
            filter=EventFilter(resource=EventResourceFilter(id=[f"tiaojie.case.{case_id}"])),
            limit=50,
        )
        clusters = await client.read_events(
            filter=EventFilter(resource=EventResourceFilter(id_prefix=["tiaojie.cluster."])),
            limit=50,
        )
        artifacts = await client.read_artifacts(limit=200)
    return {
        "runs": json.dumps([r.model_dump(mode="json") for r in runs + other], ensure_ascii=False),
        "task_runs": json.dumps([t.model_dump(mode="json") for t in task_runs], ensure_ascii=False),
        "logs": json.dumps([log.model_dump(mode="json") for log in logs], ensure_ascii=False),
        "events": json.dumps(
            [e.model_dump(mode="json") for e in events.events + clusters.events],
            ensure_ascii=False,
        ),
        "artifacts": json.dumps([a.model_dump(mode="json") for a in artifacts], ensure_ascii=False),
    }


def test_planted_personal_data_never_reaches_prefect(
    case_db: Engine, city: City, receiver: Receiver, vclock: VirtualClock, aloop: Any
) -> None:
    since = datetime.now(UTC)
    description = (
        f"我叫{NAME}，电话 139 1234 5678，也可以打{PHONE}，身份证号{ID_NUMBER}，"
        f"住{ADDRESS}。楼下饭店油烟和噪音扰民，晚上十一点还在营业。"
    )
    with write_session(case_db) as s:
        case = make_case(
            s,
            category=Category.ENVIRONMENT,
            description=description,
            address_text=ADDRESS,
            place_code="BA2",
            people_affected=2,
            parties=[
                {
                    "side": PartySide.COMPLAINANT,
                    "kind": PartyKind.PERSON,
                    "name": NAME,
                    "phone": PHONE,
                    "id_number": ID_NUMBER,
                    "address": ADDRESS,
                },
                {"side": PartySide.RESPONDENT, "kind": PartyKind.PERSON, "name": NAME2},
            ],
        )
        case_id, number = case.id, case.number
    assert case_id is not None
    drive(aloop, case_db)
    mediator = accept_and_name(case_db, city, case_id, "mediatorA")

    def act(fn: Any, **kwargs: Any) -> None:
        with write_session(case_db) as s:
            c = s.get(Case, case_id)
            assert c is not None
            fn(s, case_id=case_id, actor=mediator, expected_version=c.version, **kwargs)
        drive(aloop, case_db)

    act(record_consent, party_ids=None)
    vclock.advance(timedelta(days=1))
    act(
        record_session,
        data=SessionCreate(
            held_at=vclock.now(),
            place=ADDRESS,
            participants=f"{NAME}、{NAME2}",
            minutes=f"{NAME}（{PHONE}）陈述噪音情况。",
        ),
    )
    act(
        sign_agreement,
        data=AgreementCreate(
            summary=f"{NAME2}同意十点后停止营业，联系电话{PHONE}。",
            terms=[
                TermCreate(
                    text=f"{NAME2}安装油烟净化器",
                    due_on=local_date(vclock.now()) + timedelta(days=10),
                )
            ],
        ),
    )
    for _ in range(2):
        with read_session(case_db) as s:
            visit = s.exec(
                select(FollowUp)
                .where(FollowUp.case_id == case_id, FollowUp.done_at == None)  # noqa: E711
                .order_by(FollowUp.due_at)
            ).first()
            assert visit is not None
            vclock.set(max(vclock.now(), visit.due_at))
        act(
            record_follow_up,
            data=FollowUpRecord(
                outcome=FollowUpOutcome.CARRIED_OUT,
                resolved=ResolvedAnswer.RESOLVED,
                satisfied=SatisfiedAnswer.SATISFIED,
                notes=f"回访{NAME}，电话{PHONE}，满意。",
            ),
        )
    with read_session(case_db) as s:
        c = s.get(Case, case_id)
        assert c is not None and c.status.value == "closed"
        texts = [n.text for n in s.exec(select(Notification)).all()]
    aloop.run(escalation())
    aloop.run(reconcile())
    aloop.run(reports())

    # Logs and events reach the server in batches: wait until they are all there.
    deadline = time.monotonic() + 30
    held = aloop.run(_everything_prefect_holds(number, case_id, since))
    while time.monotonic() < deadline and number not in held["logs"]:
        time.sleep(0.2)
        held = aloop.run(_everything_prefect_holds(number, case_id, since))
    # The search is meaningful: Prefect does hold this case, by number and id.
    assert number in held["runs"] and number in held["logs"] and number in held["events"]
    assert "tiaojie-unit-ranking" in held["artifacts"]
    for where, blob in held.items():
        assert _hits(blob) == [], f"personal data in Prefect {where}"
    for text in texts + [json.dumps(r, ensure_ascii=False) for r in receiver.requests]:
        assert _hits(text) == []
    assert receiver.requests, "notifications were sent"
