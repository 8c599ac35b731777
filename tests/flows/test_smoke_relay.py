from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from sqlalchemy import Engine

from deployments.definitions import STEP_FLOWS
from flows.relay import InProcessExecutor, Relay
from models.case import Case
from models.db import read_session, write_session
from tests.factories import City, make_case

pytestmark = pytest.mark.prefect


def test_submission_to_assigned(case_db: Engine, city: City, receiver, vclock, aloop) -> None:
    with write_session(case_db) as s:
        case = make_case(s)
        number = case.number
        case_id = case.id

    async def go() -> None:
        relay = Relay(InProcessExecutor(STEP_FLOWS, concurrency=4), engine=case_db)
        await relay.run_until_idle()
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case:{number}"]))
            )
        print(sorted((r.name, r.state_type) for r in runs))

    aloop.run(go())
    with read_session(case_db) as s:
        c = s.get(Case, case_id)
        assert c is not None
        print(c.status, c.assignee_id, c.unit_id)
    print(receiver.keys)
