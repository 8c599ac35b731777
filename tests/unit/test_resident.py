"""The resident's actions (models/resident_actions.py): each is an audited event on the
case; the return-visit answers feed the three rates."""

from __future__ import annotations

import struct
import zlib
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from models import clock, resident, tracking
from models.case import Case
from models.enums import (
    CaseStatus,
    FollowUpOutcome,
    ResolvedAnswer,
    SatisfiedAnswer,
    UnitLevel,
    VisitChannel,
)
from models.errors import ValidationError
from models.event import CaseEvent
from models.follow_up import FollowUp, FollowUpRecord
from models.follow_ups import record_follow_up, schedule_follow_ups
from models.lifecycle import Actor
from models.mediating import record_consent, sign_agreement, start_mediation
from models.mediation import AgreementCreate, AgreementTerm
from models.metrics import month_range, unit_rates
from models.party import Party
from models.resident_actions import (
    add_information,
    answer_consent,
    answer_visit,
    confirm_terms,
    view,
)
from models.resident_tables import ResidentPhoto, ResidentSession
from models.settings import get_settings
from tests.factories import (
    PHONE,
    City,
    accept_for_mediation,
    advance_to_assigned,
    build_city,
    make_case,
    staff_actor,
)


def png(size: int = 64) -> bytes:
    """A real (tiny) PNG, padded with a text chunk to ``size`` bytes or more."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pad = chunk(b"tEXt", b"c\x00" + b"x" * max(0, size - 80))
    raw = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + pad
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


def _opened(session: Session, case: Case) -> ResidentSession:
    opened = resident.check_phone(session, code=tracking.code_for(case.number), last4=PHONE[-4:])
    row = session.get(ResidentSession, resident._token_hash(opened.token))
    assert row is not None
    return row


def _events(session: Session, case: Case) -> list[CaseEvent]:
    return list(
        session.exec(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.seq))
        )
    )


@pytest.fixture
def city(session: Session) -> City:
    return build_city(session)


def test_consent_given_by_the_resident_is_the_partys_consent(session: Session, city: City) -> None:
    case = advance_to_assigned(session, make_case(session), city)
    who = _opened(session, case)
    assert view(session, who=who).may_consent
    answer_consent(session, who=who, agree=True)
    party = session.get(Party, who.party_id)
    assert party is not None and party.consented
    last = _events(session, case)[-1]
    assert (last.verb, last.actor) == ("consent_recorded", f"resident:{who.party_id}")
    shown = view(session, who=who)
    assert shown.consented and not shown.may_consent
    assert [e.verb for e in shown.mine] == ["consent_recorded"]


def test_refusing_consent_is_recorded_and_changes_nothing_else(
    session: Session, city: City
) -> None:
    case = advance_to_assigned(session, make_case(session), city)
    who = _opened(session, case)
    answer_consent(session, who=who, agree=False)
    assert _events(session, case)[-1].verb == "resident_consent_refused"
    assert case.status == CaseStatus.ASSIGNED and case.consent_at is None


def test_information_with_photos_is_stored_masked_and_checked_first(
    session: Session, city: City
) -> None:
    case = make_case(session)
    who = _opened(session, case)
    event = add_information(
        session, who=who, note="对方电话 13912345678，昨天又来了", photos=[png(), png(200)]
    )
    assert "13912345678" not in str(event.data) and event.actor.startswith("resident:")
    photos = session.exec(select(ResidentPhoto).where(ResidentPhoto.case_id == case.id)).all()
    assert sorted(p.id for p in photos) == sorted(event.data["photo_ids"])
    assert {p.content_type for p in photos} == {"image/png"}
    before = len(_events(session, case))
    too_many = [png()] * (get_settings().resident_photos_max + 1)
    for bad in (
        {"note": "x", "photos": [b"GIF89a not a photo"]},
        {"note": "x", "photos": too_many},
        {"note": "x", "photos": [png(get_settings().resident_photo_max_bytes + 10)]},
        {"note": "", "photos": []},
        {"note": "文字\u202e反转", "photos": []},
    ):
        with pytest.raises(ValidationError):
            add_information(session, who=who, note=str(bad["note"]), photos=list(bad["photos"]))
    assert len(_events(session, case)) == before
    assert len(session.exec(select(ResidentPhoto)).all()) == 2


def _agreed(session: Session, city: City) -> Case:
    case = advance_to_assigned(session, make_case(session), city)
    accept_for_mediation(session, case, city)
    actor = staff_actor(city, "mediatorA")
    assert case.id is not None
    record_consent(session, case_id=case.id, party_ids=None, actor=actor, expected_version=None)
    start_mediation(session, case_id=case.id, actor=actor)
    due = clock.to_local(clock.now()).date().isoformat()
    sign_agreement(
        session,
        case_id=case.id,
        data=AgreementCreate.model_validate(
            {"summary": "分期支付欠薪", "terms": [{"text": "一次付清", "due_on": due}]}
        ),
        actor=actor,
        expected_version=None,
    )
    schedule_follow_ups(session, case_id=case.id, actor=Actor.system())
    assert case.status == CaseStatus.FOLLOW_UP
    return case


def test_the_resident_confirms_the_terms_were_carried_out(
    session: Session, city: City, vclock: clock.VirtualClock
) -> None:
    case = _agreed(session, city)
    who = _opened(session, case)
    assert view(session, who=who).may_confirm_terms
    confirm_terms(session, who=who, carried_out=True, note="钱已收到")
    terms = session.exec(select(AgreementTerm)).all()
    assert terms and all(t.done for t in terms)
    assert _events(session, case)[-1].data["carried_out"] is True


def test_the_satisfaction_rate_is_the_residents_own_answers(
    session: Session, city: City, vclock: clock.VirtualClock
) -> None:
    """A fixture month: A answers satisfied through the link after a staff visit that
    noted "dissatisfied"; B answers dissatisfied; C has no phone and gets a staff visit
    in person (satisfied). The rate is A's and B's own answers plus C's visit: 2 of 3."""
    a, b = _agreed(session, city), _agreed(session, city)
    c = _agreed(session, city)
    visitor = staff_actor(city, "street_mediator")  # not of the handling unit: independent
    for case, answer in ((a, SatisfiedAnswer.DISSATISFIED), (c, SatisfiedAnswer.SATISFIED)):
        record_follow_up(
            session,
            case_id=case.id or 0,
            data=FollowUpRecord(
                outcome=FollowUpOutcome.CARRIED_OUT,
                resolved=ResolvedAnswer.RESOLVED,
                satisfied=answer,
                channel=VisitChannel.IN_PERSON,
                notes="上门回访",
            ),
            actor=visitor,
            expected_version=None,
        )
    vclock.advance(timedelta(hours=2))
    for case, answer in ((a, SatisfiedAnswer.SATISFIED), (b, SatisfiedAnswer.DISSATISFIED)):
        answer_visit(
            session,
            who=_opened(session, case),
            resolved=ResolvedAnswer.RESOLVED,
            satisfied=answer,
            comment="",
        )
    own = session.exec(select(FollowUp).where(FollowUp.channel == VisitChannel.RESIDENT_LINK)).all()
    assert len(own) == 2 and all(v.independent for v in own)
    since, until = month_range(clock.to_local(clock.now()).date().replace(day=1))
    rates = [
        r
        for r in unit_rates(session, since=since, until=until, level=UnitLevel.COMMUNITY)
        if r.rated
    ]
    assert [(r.rated, r.satisfied) for r in rates] == [(3, 2)]
