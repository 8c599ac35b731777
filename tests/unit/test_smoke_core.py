"""The core contract: creating a case stores its parties masked and encrypted and
appends its first event and outbox row."""

from __future__ import annotations

from sqlmodel import Session, select

from models.event import CaseEvent, Outbox
from models.lifecycle import verify_chain
from models.party import Party
from tests.factories import ID_NUMBER, PHONE, build_city, make_case


def test_new_case_has_number_event_and_outbox(session: Session, vclock: object) -> None:
    build_city(session)
    case = make_case(session)
    session.commit()
    assert case.number.startswith("JX-2026-")
    assert case.version == 1
    events = session.exec(select(CaseEvent)).all()
    assert [e.verb for e in events] == ["submitted"]
    outbox = session.exec(select(Outbox)).all()
    assert [(o.verb, o.step) for o in outbox] == [("submitted", "intake")]
    assert verify_chain(session, case_id=case.id or 0) == []


def test_party_personal_fields_never_stored_in_clear(session: Session, vclock: object) -> None:
    build_city(session)
    make_case(session)
    session.commit()
    for party in session.exec(select(Party)).all():
        dumped = str(party.model_dump())
        assert PHONE not in dumped and ID_NUMBER not in dumped
