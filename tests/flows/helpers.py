"""Helpers for flow tests: drive the relay, act as staff, read back from Prefect."""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import EventFilter, EventResourceFilter
from sqlalchemy import Engine
from sqlmodel import col, select

from deployments.definitions import STEP_FLOWS
from flows.relay import InProcessExecutor, Relay
from models.case import Case
from models.db import read_session, write_session
from models.event import CaseEvent
from models.lifecycle import Actor
from models.staff import Staff
from models.unit import Unit
from tests.factories import City


def drive(aloop: Any, engine: Engine) -> int:
    """Deliver every pending outbox row and run its step in-process, until quiet."""
    relay = Relay(InProcessExecutor(STEP_FLOWS, concurrency=4), engine=engine)
    return int(aloop.run(relay.run_until_idle()))


def staff_actor(engine: Engine, city: City, username: str) -> Actor:
    staff = city.staff[username]
    with read_session(engine) as s:
        unit = s.get(Unit, staff.unit_id)
        assert unit is not None
        return Actor(kind="staff", staff_id=staff.id, role=staff.role, unit_path=unit.path)


def staff_by_id(engine: Engine, staff_id: int | None) -> Staff | None:
    with read_session(engine) as s:
        return s.get(Staff, staff_id) if staff_id else None


def verbs(engine: Engine, case_id: int) -> list[str]:
    with read_session(engine) as s:
        rows = s.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.seq))
        ).all()
        return [e.verb for e in rows]


async def runs_of(number: str) -> list[FlowRun]:
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case:{number}"]))
        )


async def events_of(case_id: int) -> list[Any]:
    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(resource=EventResourceFilter(id=[f"tiaojie.case.{case_id}"])),
            limit=50,
        )
        return list(page.events)


def accept_and_name(engine: Engine, city: City, case_id: int, mediator: str) -> Actor:
    """The committee's steps before consent (受理审查, a mediator named), as the API
    records them; answers the mediator's actor."""
    from models.acceptance import review_acceptance
    from models.mediators import name_mediators

    actor = staff_actor(engine, city, mediator)
    with write_session(engine) as s:
        c = s.get(Case, case_id)
        assert c is not None
        review_acceptance(
            s, case_id=case_id, accepted=True, reason=None, route=None, note="",
            actor=actor, expected_version=c.version,
        )  # fmt: skip
        name_mediators(
            s, case=c, staff_ids=[actor.staff_id or 0], actor=actor, expected_version=c.version
        )
    return actor
