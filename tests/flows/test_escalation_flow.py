"""A case nobody touches: a reminder before each limit, then escalation level by level
up the unit tree to the paired agency, at the right working-day times, each exactly
once although the escalation flow runs twice at the same moment."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import Engine
from sqlmodel import col, select

from flows.escalation import ARTIFACT_KEY, escalation
from models import workdays
from models.case import Case
from models.clock import VirtualClock
from models.db import read_session, write_session
from models.event import CaseEvent
from models.unit import Unit
from tests.factories import City, make_case
from tests.flows.conftest import Receiver
from tests.flows.helpers import drive

pytestmark = pytest.mark.prefect

RESOLUTION_DAYS = {"building": 3, "compound": 5}  # tests/factories.default_policies; else 13


async def _two_sweeps_at_once() -> list[dict[str, int]]:
    return list(await asyncio.gather(escalation(), escalation()))


def _case(engine: Engine, case_id: int) -> tuple[Case, Unit]:
    with read_session(engine) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.unit_id is not None
        unit = s.get(Unit, case.unit_id)
        assert unit is not None
        return case, unit


def test_untouched_case_is_reminded_then_escalated_once_per_level(
    case_db: Engine, city: City, receiver: Receiver, vclock: VirtualClock, aloop: Any
) -> None:
    with write_session(case_db) as s:
        # A labour case of one worker in building A1 (community A is paired with AG-LAB).
        case_id = make_case(s, people_affected=1).id
    assert case_id is not None
    drive(aloop, case_db)

    path: list[str] = []
    for _level in range(6):
        case, unit = _case(case_db, case_id)
        path.append(unit.code)
        if unit.level.value == "agency":
            # Referred to the paired agency when the district's time ran out: it is the
            # agency's to sign for within a working day (the return visit waits for it).
            assert case.status.value == "referred"
            assert case.referral_state is not None and case.referral_state.value == "pending"
            break
        assert case.status.value == "assigned"
        assert case.next_reminder_at is not None and case.resolution_due_at is not None
        start = case.escalated_at or case.triaged_at
        assert start is not None
        days = RESOLUTION_DAYS.get(unit.level.value, 13)
        assert case.resolution_due_at == workdays.add_working_days(start, days)
        assert case.next_reminder_at < case.resolution_due_at
        due = case.resolution_due_at

        # Before the limit: one reminder, however many sweeps run.
        vclock.set(case.next_reminder_at)
        aloop.run(_two_sweeps_at_once())
        aloop.run(_two_sweeps_at_once())
        drive(aloop, case_db)
        # At the limit: one escalation to the next level.
        vclock.set(due)
        results = aloop.run(_two_sweeps_at_once())
        assert sum(r["escalated"] for r in results) == 1
        aloop.run(_two_sweeps_at_once())
        drive(aloop, case_db)

    # building's compound → community → street → district → the paired labour agency
    assert path == ["CPA", "CMA", "S1", "D1", "AG-LAB"]
    with read_session(case_db) as s:
        events = s.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.seq))
        ).all()
    reminded = [e for e in events if e.verb == "reminded"]
    # Up the tree three times (提级督办), then to the agency (转结对部门).
    escalated = [e for e in events if e.verb in ("escalated", "referred")]
    assert [e.data["level"] for e in escalated] == [1, 2, 3, 4]
    assert len(reminded) == 4  # one per level, before each escalation
    assert len({e.data["level"] for e in reminded}) == 4
    for rem, esc in zip(reminded, escalated, strict=True):
        assert rem.seq < esc.seq and rem.at < esc.at
    timeline = [e.verb for e in events]
    assert timeline.count("assigned") == 4 and timeline.count("referred") == 1
    assert escalated[-1].verb == "referred" and escalated[-1].data["reason"] == "limit_passed"
    # Each reminder and escalation notified once.
    assert len(receiver.keys) == len(set(receiver.keys))
    for e in reminded + escalated:
        assert receiver.count(f"{case_id}:{e.seq}:{e.verb}") == 1

    async def artifact() -> Any:
        async with get_client() as client:
            return await client.read_latest_artifacts(limit=50)

    latest = [a for a in aloop.run(artifact()) if a.key == ARTIFACT_KEY]
    assert latest and latest[0].type == "table"
