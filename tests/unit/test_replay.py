"""Replay the demo city with a seeded behaviour model (models.behaviour): grassroots
first. Neighbour, family and property cases are settled at community level or below at
least 80% of the time, labour, environment and relocation cases at least half; nothing
is referred at assignment without a legal reason; every agreement is signed by a
mediator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from models import clock
from models.behaviour import BehaviourModel, Replay, settled_shares
from models.db import build_engine
from models.demo import DISTRICT, HISTORY_DAYS, demo_arrivals
from models.district import load_district
from models.enums import LEGAL_REFERRAL_REASONS, Category, ReferralReason, StaffRole
from models.event import CaseEvent
from models.referral import Referral
from models.staff import Staff
from models.tables import metadata

END = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
EVERYDAY = (Category.NEIGHBOUR, Category.FAMILY, Category.PROPERTY)
HEAVY = (Category.LABOUR, Category.ENVIRONMENT, Category.RELOCATION)


@pytest.fixture(scope="module")
def replayed() -> tuple[Session, Replay]:
    previous = clock.get_clock()
    vclock = clock.VirtualClock(END - timedelta(days=HISTORY_DAYS + 1))
    clock.set_clock(vclock)
    try:
        engine = build_engine("sqlite://")
        metadata.create_all(engine)
        session = Session(engine, expire_on_commit=False)
        load_district(session, DISTRICT, actor="replay")
        replay = Replay(session, BehaviourModel(seed=2026), vclock)
        for at, data, actor, recorder in demo_arrivals(session, now=END):
            replay.schedule(data, at=at, actor=actor, recorder=recorder)
        session.commit()
        replay.run(until=END + timedelta(days=30))
        yield session, replay
    finally:
        clock.set_clock(previous)


def test_grassroots_first(replayed: tuple[Session, Replay]) -> None:
    session, replay = replayed
    shares = settled_shares(session)
    print(
        f"settled at community level or below: everyday {shares.share(EVERYDAY):.1%} "
        f"of {sum(shares.cases.get(c, 0) for c in EVERYDAY)}, heavy "
        f"{shares.share(HEAVY):.1%} of {sum(shares.cases.get(c, 0) for c in HEAVY)}; "
        f"{replay.report}"
    )
    assert replay.report.submitted == 320
    assert shares.share(EVERYDAY) >= 0.80
    assert shares.share(HEAVY) >= 0.50


def test_no_referral_at_assignment_without_a_legal_reason(
    replayed: tuple[Session, Replay],
) -> None:
    session, _ = replayed
    rows = session.exec(select(Referral)).all()
    assert rows, "the replay refers some cases (failed mediations, limits passed)"
    first_assigned = {
        cid: at
        for cid, at in session.exec(
            select(CaseEvent.case_id, CaseEvent.at)
            .where(CaseEvent.verb == "assigned")
            .order_by(col(CaseEvent.at).desc())
        ).all()
    }
    for row in rows:
        assert row.reason is not None and row.decided_by
        worked = row.case_id in first_assigned and clock.ensure_utc(
            first_assigned[row.case_id]
        ) <= clock.ensure_utc(row.referred_at)
        assert worked or row.reason in LEGAL_REFERRAL_REASONS | {ReferralReason.LIMIT_PASSED}


def test_every_agreement_is_signed_by_a_mediator(replayed: tuple[Session, Replay]) -> None:
    session, _ = replayed
    signed = session.exec(select(CaseEvent).where(CaseEvent.verb == "agreement_signed")).all()
    assert len(signed) > 100
    roles = {s.id: s.role for s in session.exec(select(Staff)).all()}
    signers = {roles[int(e.actor.removeprefix("staff:"))] for e in signed}
    assert signers == {StaffRole.MEDIATOR}
