"""Fresh work ahead of a backlog: with a thousand rows waiting, a case submitted now and
an emergency are claimed in the next poll, and the backlog still drains in a bounded
number of polls however much fresh work keeps arriving (models/outbox.py, claim_jobs)."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select

from flows.batching import emergency_lane, fresh_lane, plan_kept_runs
from flows.relay import Relay
from models import clock
from models.case import Case
from models.clock import VirtualClock
from models.enums import OutboxState, Priority
from models.event import Outbox
from models.outbox import (
    Job,
    backlog_reserve,
    claim_jobs,
    is_urgent,
    last_row_id,
    mark_delivered,
    submitted_after,
)
from tests.factories import build_city, make_case

BACKLOG = 1000
LIMIT = 200


def _copy_cases(session: Session, template: Case, count: int, tag: str) -> None:
    """``count`` copies of a submitted case, each with its pending ``intake`` row written
    when the template was (bulk inserts: a real backlog without a thousand intakes)."""
    columns = template.model_dump(exclude={"id"})
    cases = [{**columns, "number": f"{tag}{i:05d}", "tracking_hash": None} for i in range(count)]
    session.execute(insert(Case), cases)
    ids = session.exec(select(Case.id).where(col(Case.number).startswith(tag))).all()
    row = session.exec(select(Outbox).where(Outbox.case_id == template.id)).one()
    session.execute(
        insert(Outbox),
        [
            {
                "case_id": case_id,
                "verb": row.verb,
                "step": row.step,
                "idempotency_key": f"{tag}:{case_id}",
                "payload": dict(row.payload),
                "state": OutboxState.PENDING,
                "attempts": 0,
                "created_at": row.created_at,
                "available_at": row.available_at,
            }
            for case_id in ids
        ],
    )


def _backlog(engine: Engine, vclock: VirtualClock) -> None:
    with Session(engine) as session:
        build_city(session)
        old = make_case(session, at=vclock.now() - timedelta(hours=3))
        _copy_cases(session, old, BACKLOG - 1, "OLD")
        session.commit()


def _fresh(engine: Engine, **overrides: Any) -> int:
    with Session(engine) as session:
        case = make_case(session, **overrides)
        session.commit()
        assert case.id is not None
        return case.id


def _backlog_then_two_new(engine: Engine, vclock: VirtualClock) -> tuple[int, int]:
    """A backlog waiting, then a minute later an ordinary case and an emergency come in:
    their ids (ordinary, emergency)."""
    _backlog(engine, vclock)
    vclock.advance(timedelta(minutes=1))
    ordinary = _fresh(engine)
    return ordinary, _fresh(engine, priority=Priority.EMERGENCY, people_affected=60)


def _poll(engine: Engine) -> list[Job]:
    jobs = claim_jobs(limit=LIMIT, engine=engine)
    mark_delivered([job.outbox_id for job in jobs], engine=engine)
    return jobs


def test_fresh_case_and_emergency_are_claimed_ahead_of_the_backlog(
    engine: Engine, vclock: VirtualClock
) -> None:
    ordinary, emergency = _backlog_then_two_new(engine, vclock)
    vclock.advance(timedelta(seconds=1))

    jobs = _poll(engine)

    claimed = [job.case_id for job in jobs]
    assert claimed[:2] == [emergency, ordinary]  # the emergency first, then the new case
    assert len(jobs) == LIMIT  # the rest of the batch went to the oldest rows
    with Session(engine) as session:
        oldest = session.exec(select(Outbox.id).order_by(col(Outbox.id)).limit(LIMIT - 2)).all()
    assert [job.outbox_id for job in jobs[2:]] == list(oldest)


def test_the_backlog_drains_while_fresh_work_keeps_arriving(
    engine: Engine, vclock: VirtualClock
) -> None:
    _backlog(engine, vclock)
    with Session(engine) as session:
        backlog = set(session.exec(select(Outbox.id)).all())
        template = session.exec(select(Case)).first()
        assert template is not None
    bound = math.ceil(BACKLOG / backlog_reserve(LIMIT))
    polls = 0
    while backlog:
        polls += 1
        assert polls <= bound, f"backlog still {len(backlog)} rows after {bound} polls"
        # More fresh work each poll than a batch holds: the fresh lanes are always full.
        vclock.advance(timedelta(seconds=1))
        with Session(engine) as session:
            fresh = make_case(session)  # a real fresh case, then bulk copies of it
            _copy_cases(session, fresh, LIMIT, f"N{polls:03d}-")
            session.commit()
        jobs = _poll(engine)
        done = {job.outbox_id for job in jobs}
        assert len(done & backlog) >= backlog_reserve(LIMIT) or not backlog - done
        backlog -= done
    assert polls <= bound


class _Slots:
    """The relay's view of a dispatcher: one intake lane, batch flows for intake."""

    concurrency = 8
    lane = 1

    def batch_steps(self) -> frozenset[str]:
        return frozenset({"intake"})


def _plan(
    engine: Engine, jobs: list[Job], flying: dict[str, int], backlog: bool = False
) -> list[tuple[int, str]]:
    """What one poll starts for ``jobs`` with ``flying`` runs in flight: (cases, lane);
    ``backlog``: the relay saw older rows of intake waiting at its last full claim."""
    relay = Relay(_Slots(), engine=engine)  # type: ignore[arg-type]
    relay.started = clock.now() - timedelta(seconds=30)  # running before the new cases
    if backlog:
        relay._backlog.add("intake")
    by_case = {job.case_id: [job] for job in jobs}
    verdicts = {job.outbox_id: "run" for job in jobs}
    # On a thread of its own: in the whole suite another test's event loop may be running
    # on this thread (the Prefect harness), and asyncio.run refuses to nest.
    with ThreadPoolExecutor(max_workers=1) as pool:
        plan = partial(relay._plan_batches, by_case, verdicts, flying)
        batches = pool.submit(lambda: asyncio.run(plan())).result()
    singles = [(1, "intake") for _ in by_case]  # left to start a run of their own
    return [(len(group), lane) for _step, group, lane in batches] + singles


def test_runs_are_kept_for_emergencies_and_fresh_work_ahead_of_a_backlog_only(
    engine: Engine, vclock: VirtualClock
) -> None:
    ordinary, emergency = _backlog_then_two_new(engine, vclock)
    vclock.advance(timedelta(seconds=1))
    jobs = claim_jobs(limit=LIMIT, engine=engine)
    urgent, fresh = emergency_lane("intake"), fresh_lane("intake")

    # The lane is busy with the backlog: the emergency and the new case each get the
    # run kept for them, the backlog waits for the lane.
    assert _plan(engine, jobs, {"intake": 1}) == [(1, urgent), (1, fresh)]
    # All free: the kept runs, and the lane takes the oldest 50.
    assert _plan(engine, jobs, {}) == [(1, urgent), (1, fresh), (50, "intake")]
    # A run of fresh cases in flight: the emergency does not wait for it.
    assert _plan(engine, jobs, {"intake": 1, fresh: 1}) == [(1, urgent)]
    # The emergency's run busy: the next emergency rides with the fresh cases.
    assert _plan(engine, jobs, {"intake": 1, urgent: 1}) == [(2, fresh)]
    # Every kept run busy: the new cases wait at the head of the queue.
    assert _plan(engine, jobs, {"intake": 1, urgent: 1, fresh: 1}) == []
    kept, rest = plan_kept_runs(
        jobs, step="intake", free={urgent: 1, fresh: 1}, batch_max=50, now=vclock.now()
    )
    assert [([j.case_id for j in run], lane) for run, lane in kept] == [
        ([emergency], urgent),
        ([ordinary], fresh),
    ]
    assert len(rest) == len(jobs) - 2

    # Without a backlog the one lane batches fresh work as before: nothing kept.
    new_only = [job for job in jobs if job.case_id in (emergency, ordinary)]
    assert _plan(engine, new_only, {"intake": 1}) == []
    # The lane busy with the backlog, which the poll left unclaimed (held back): the
    # urgent cases still get the runs kept for them.
    assert _plan(engine, new_only, {"intake": 1}, backlog=True) == [(1, urgent), (1, fresh)]


def test_a_poll_while_the_backlog_lane_is_busy_claims_only_what_can_start(
    engine: Engine, vclock: VirtualClock
) -> None:
    ordinary, emergency = _backlog_then_two_new(engine, vclock)
    with Session(engine) as session:
        # Two older rows of another step: one whose case has nothing else pending (it
        # can start), one behind its case's waiting intake row.
        first, second = session.exec(select(Outbox).order_by(col(Outbox.id)).limit(2)).all()
        first.state = OutboxState.DELIVERED
        first_case = first.case_id
        for n, row in enumerate((first, second)):
            at = vclock.now() - timedelta(hours=2)
            session.add(
                Outbox(
                    case_id=row.case_id,
                    verb="consent_recorded",
                    step="mediation",
                    idempotency_key=f"other-step-{n}",
                    payload={},
                    created_at=at,
                    available_at=at,
                )
            )
        session.commit()
    newest = last_row_id(engine)
    assert submitted_after(newest, frozenset({"intake"}), engine) == 0
    vclock.advance(timedelta(seconds=1))

    jobs = claim_jobs(limit=LIMIT, engine=engine, held_back=frozenset({"intake"}))

    # The urgent rows of intake (the runs kept for them may be free); of the backlog
    # only what can start: not a thousand intake rows to be released again. The other
    # step's second row waits behind its case's intake row: a case's rows in order.
    assert [(job.case_id, job.step) for job in jobs] == [
        (emergency, "intake"),
        (ordinary, "intake"),
        (first_case, "mediation"),
    ]
    late = _fresh(engine)  # a new submission: the relay's pause ends for it
    found = submitted_after(newest, frozenset({"intake"}), engine)
    assert found and found > newest
    assert submitted_after(newest, frozenset({"mediation"}), engine) == 0
    assert late


def test_an_outages_backlog_is_not_fresh_however_young(
    engine: Engine, vclock: VirtualClock
) -> None:
    """Complaints filed while no relay ran are the backlog, even those younger than
    ``relay_fresh_s``; what is filed after the relay started is fresh work."""
    with Session(engine) as session:
        build_city(session)
        old = make_case(session, at=vclock.now() - timedelta(minutes=4))
        _copy_cases(session, old, 20, "OUT")
        session.commit()
    vclock.advance(timedelta(seconds=30))
    started = clock.now()  # the relay comes back
    vclock.advance(timedelta(seconds=5))
    new = _fresh(engine)
    now = clock.now()
    jobs = claim_jobs(limit=10, engine=engine, started=started)
    assert jobs[0].case_id == new  # ahead of the outage's 21, in the next poll
    assert [is_urgent(job, now, started) for job in jobs] == [True] + [False] * 9
    # Without the relay's start the age alone decides: all 22 are under five minutes old.
    assert all(is_urgent(job, now) for job in jobs)
