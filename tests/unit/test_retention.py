"""Retention: personal data of cases ended longer ago than the period is removed; the
rest, and the event chain, stay as they were."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models import clock, lifecycle, text_numbers
from models.case import Case
from models.db import build_engine
from models.enums import CaseStatus, FollowUpOutcome
from models.errors import GuardFailed, ValidationError
from models.event import CaseEvent
from models.follow_up import FollowUpRecord
from models.follow_ups import record_follow_up, reopen_case, settle_after_follow_up
from models.mediating import resolve_directly, withdraw_case
from models.party import Party
from models.retention import ANONYMISED, anonymise_closed_cases, purge_sqlite_leftovers
from models.tables import metadata
from tests.factories import (
    ID_NUMBER,
    PHONE,
    City,
    advance_to_assigned,
    build_city,
    make_case,
    visit_answers,
)
from tests.factories import staff_actor as actor_of

SH = clock.SHANGHAI
PLANTED = f"申请人电话 {PHONE}，身份证号 {ID_NUMBER}，要求支付欠薪。"


def closed_case(session: Session, city: City) -> Case:
    case = make_case(session, description=PLANTED)
    advance_to_assigned(session, case, city)
    actor = actor_of(city, "mediatorA")
    assert case.id is not None
    resolve_directly(
        session,
        case_id=case.id,
        resolution=f"已电话 {PHONE} 答复申请人",
        actor=actor,
        expected_version=None,
    )
    record_follow_up(
        session,
        case_id=case.id,
        data=FollowUpRecord(
            outcome=FollowUpOutcome.CARRIED_OUT, notes=f"回拨 {PHONE}", **visit_answers(4)
        ),
        actor=actor,
        expected_version=None,
    )
    assert settle_after_follow_up(session, case_id=case.id, actor=actor) == "closed"
    return case


def blobs(session: Session, case: Case) -> list[str]:
    parties = session.exec(select(Party).where(Party.case_id == case.id)).all()
    return [
        v
        for p in parties
        for v in (p.name_enc, p.phone_enc, p.id_number_enc, p.name_hash, p.phone_hash)
        if v
    ]


def scenario(session: Session, vclock: clock.VirtualClock) -> dict[str, Case]:
    city = build_city(session)
    old = closed_case(session, city)  # closed 30 Nov 2026
    withdrawn = make_case(session, description=PLANTED)
    advance_to_assigned(session, withdrawn, city)
    withdraw_case(
        session,
        case_id=withdrawn.id or 0,
        reason="申请人撤回",
        actor=actor_of(city, "workerA"),
        expected_version=None,
    )
    still_open = make_case(session, description=PLANTED)
    advance_to_assigned(session, still_open, city)
    vclock.set(datetime(2027, 1, 5, 10, tzinfo=SH))
    recent = closed_case(session, city)  # closed 5 Jan 2027
    session.commit()
    return {"old": old, "withdrawn": withdrawn, "open": still_open, "recent": recent}


def test_only_cases_ended_before_the_period_are_anonymised(
    session: Session, vclock: clock.VirtualClock
) -> None:
    cases = scenario(session, vclock)
    before = {k: blobs(session, c) for k, c in cases.items()}
    assert all(before.values())
    events_before = [(e.id, e.hash) for e in session.exec(select(CaseEvent)).all()]
    party = session.exec(select(Party).where(Party.case_id == cases["old"].id)).first()
    assert party is not None and party.id is not None
    from models.resident_tables import ResidentPhoto

    session.add(
        ResidentPhoto(
            case_id=cases["old"].id or 0,
            party_id=party.id,
            content_type="image/png",
            size=3,
            sha256="0" * 64,
            data=b"png",
            created_at=cases["old"].created_at,
        )
    )
    session.flush()

    now = datetime(2027, 1, 15, 9, tzinfo=SH)
    assert anonymise_closed_cases(session, older_than_days=30, now=now) == 2
    session.commit()

    for key in ("old", "withdrawn"):
        case = cases[key]
        assert blobs(session, case) == []
        assert case.anonymised_at == now
        assert case.tracking_hash is None  # the resident's code no longer opens it
        assert PHONE not in case.description and ID_NUMBER not in case.description
        assert "138****8000" in case.description
        persons = session.exec(
            select(Party).where(Party.case_id == case.id, col(Party.org_name).is_(None))
        ).all()
        assert {p.name_masked for p in persons} == {ANONYMISED}
        firms = session.exec(
            select(Party).where(Party.case_id == case.id, col(Party.org_name).is_not(None))
        ).all()
        assert [f.org_name for f in firms] == ["江心市恒达电子厂"]  # not personal data
    assert PHONE not in (cases["old"].outcome_note or "")
    assert session.exec(select(ResidentPhoto)).all() == []  # what the resident sent goes
    for key in ("open", "recent"):
        assert cases[key].tracking_hash is not None
        assert blobs(session, cases[key]) == before[key]
        assert cases[key].anonymised_at is None and PHONE not in cases[key].description
        kept = text_numbers.numbers_of(session, case_id=cases[key].id or 0, reveal=True)
        assert PHONE in {n["value"] for n in kept}  # moved out of the text, encrypted
    for key in ("old", "withdrawn"):
        gone = text_numbers.numbers_of(session, case_id=cases[key].id or 0, reveal=True)
        assert gone and PHONE not in str(gone)  # only the masks are left

    # Events untouched, still verifiable, and free of the planted data.
    events = session.exec(select(CaseEvent)).all()
    assert [(e.id, e.hash) for e in events] == events_before
    for case in cases.values():
        assert lifecycle.verify_chain(session, case_id=case.id or 0) == []
    assert PHONE not in str([e.data for e in events])
    assert ID_NUMBER not in str([e.data for e in events])

    # Idempotent; the recent case goes when its time comes.
    assert anonymise_closed_cases(session, older_than_days=30, now=now) == 0
    later = datetime(2027, 2, 10, tzinfo=SH)
    assert anonymise_closed_cases(session, older_than_days=30, now=later) == 1

    with pytest.raises(GuardFailed):
        reopen_case(
            session,
            case_id=cases["old"].id or 0,
            reason="申请人再次投诉",
            actor=lifecycle.Actor.system(),
            expected_version=None,
        )
    with pytest.raises(ValidationError):
        anonymise_closed_cases(session, older_than_days=-1, now=now)
    assert cases["open"].status == CaseStatus.ASSIGNED


def test_the_dump_and_the_file_no_longer_hold_the_blobs(
    tmp_path: Path, vclock: clock.VirtualClock
) -> None:
    engine: Engine = build_engine(f"sqlite:///{tmp_path / 'retention.db'}")
    metadata.create_all(engine)
    try:
        with Session(engine, expire_on_commit=False) as session:
            cases = scenario(session, vclock)
            kept = blobs(session, cases["recent"])
            # Look-up hashes are the same for the same person: the recent case keeps them.
            gone = [
                b
                for b in blobs(session, cases["old"]) + blobs(session, cases["withdrawn"])
                if b not in kept
            ]
            anonymise_closed_cases(
                session, older_than_days=30, now=clock.now() + timedelta(days=10)
            )
            session.commit()
        purge_sqlite_leftovers(engine)

        raw = engine.raw_connection()
        try:
            dump = "\n".join(raw.driver_connection.iterdump())  # type: ignore[union-attr]
        finally:
            raw.close()
        assert gone and not any(b in dump for b in gone)
        assert all(b in dump for b in kept)  # the check can see a blob when it is there

        files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert not any(b.encode() in files for b in gone)
        assert all(b.encode() in files for b in kept)
    finally:
        engine.dispose()


def test_batches_anonymise_the_same_cases_one_batch_at_a_time(
    session: Session, vclock: clock.VirtualClock
) -> None:
    from models.retention import anonymise_batch

    cases = scenario(session, vclock)
    now = datetime(2027, 1, 15, 9, tzinfo=SH)
    done = [anonymise_batch(session, older_than_days=30, now=now, batch_size=1) for _ in range(3)]
    assert done == [1, 1, 0]
    assert not blobs(session, cases["old"]) and not blobs(session, cases["withdrawn"])
    assert blobs(session, cases["recent"]) and blobs(session, cases["open"])


def test_sign_in_attempts_are_kept_for_their_period_only(session: Session) -> None:
    from models.login import SignInAttempt
    from models.retention import prune_sign_in_attempts

    now = datetime(2027, 1, 15, 9, tzinfo=SH)
    for days in (181, 180, 1):
        session.add(
            SignInAttempt(
                at=now - timedelta(days=days, seconds=-1 if days == 180 else 0),
                channel="web",
                name_key="k" * 16,
                address="203.0.113.7",
                outcome="wrong_password",
            )
        )
    session.flush()
    assert prune_sign_in_attempts(session, older_than_days=180, now=now) == 1
    assert len(session.exec(select(SignInAttempt)).all()) == 2
    assert prune_sign_in_attempts(session, older_than_days=180, now=now) == 0


def test_the_command_counts_then_anonymises_as_the_nightly_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vclock: clock.VirtualClock
) -> None:
    """``tiaojie retention run --dry-run`` counts and changes nothing; without it the same
    cases are anonymised, and a second run finds none."""
    from typer.testing import CliRunner

    from models.db import reset_engines
    from models.migrate import upgrade
    from models.settings import reset_settings
    from tiaojie_cli.main import app

    url = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", url)
    monkeypatch.setenv("TIAOJIE_RETENTION_DAYS", "30")
    reset_settings()
    reset_engines()
    engine = build_engine(url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        cases = scenario(session, vclock)
    vclock.set(datetime(2027, 1, 15, 9, tzinfo=SH))
    runner = CliRunner()
    try:
        counted = runner.invoke(app, ["retention", "run", "--dry-run"])
        assert counted.exit_code == 0, counted.output
        assert "2 cases" in counted.output and "将匿名化 2 件" in counted.output
        with Session(engine) as session:
            assert blobs(session, cases["old"])
        done = runner.invoke(app, ["retention", "run"])
        assert done.exit_code == 0 and "2 cases anonymised" in done.output, done.output
        with Session(engine) as session:
            assert not blobs(session, cases["old"]) and blobs(session, cases["recent"])
        assert "0 cases anonymised" in runner.invoke(app, ["retention", "run"]).output
    finally:
        engine.dispose()
        reset_engines()
