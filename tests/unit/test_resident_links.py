"""One-use links (models/resident_links.py) and the respondent's answer
(models/respondent.py): bound to one case, one party and one action; refused the same
way when used, expired, tampered with or pointed at another case; a respondent's
refusal stops mediation from starting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from models import clock, resident_links, respondent
from models.case import Case
from models.enums import CaseStatus, PartySide
from models.errors import GuardFailed, ValidationError
from models.event import CaseEvent
from models.mediating import record_consent, start_mediation
from models.party import Party, PartyConsent
from models.resident import purge_expired
from models.resident_links import LinkRefused, open_link, token_of, use_link
from models.resident_tables import ResidentLink, ResidentLock, ResidentSession
from tests.factories import (
    NAME,
    PHONE,
    City,
    accept_for_mediation,
    advance_to_assigned,
    build_city,
    make_case,
    staff_actor,
)

FIRM_PHONE = "13912345678"
PARTIES = [
    {"side": "complainant", "kind": "person", "name": NAME, "phone": PHONE},
    {"side": "respondent", "kind": "firm", "name": "江心市恒达电子厂", "phone": FIRM_PHONE},
]
ASKING = ("consent", "respondent")


@pytest.fixture
def city(session: Session) -> City:
    return build_city(session)


def _assigned(session: Session, city: City) -> Case:
    case = advance_to_assigned(session, make_case(session, parties=PARTIES), city)
    accept_for_mediation(session, case, city)
    return case


def _links(session: Session, case: Case) -> dict[str, ResidentLink]:
    return {k.purpose: k for k in resident_links.issue(session, case=case, purposes=ASKING)}


def _events(session: Session, case: Case) -> list[CaseEvent]:
    return list(
        session.exec(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.seq))
        )
    )


def _party(session: Session, case: Case, side: PartySide) -> Party:
    return next(
        p for p in session.exec(select(Party).where(Party.case_id == case.id)) if p.side == side
    )


def test_each_party_with_a_phone_gets_one_link_per_action_once(
    session: Session, city: City
) -> None:
    case = _assigned(session, city)
    first = _links(session, case)
    assert set(first) == {"consent", "respondent"}
    assert first["respondent"].party_id == _party(session, case, PartySide.RESPONDENT).id
    again = _links(session, case)  # a retried step issues nothing new
    assert {k: v.id for k, v in again.items()} == {k: v.id for k, v in first.items()}
    assert len(session.exec(select(ResidentLink)).all()) == 2
    token = token_of(first["respondent"])
    assert token == token_of(again["respondent"])  # the same link for a retried SMS
    no_phone = advance_to_assigned(session, make_case(session), city)  # the firm has none
    assert [k.purpose for k in resident_links.issue(session, case=no_phone, purposes=ASKING)] == [
        "consent"
    ]


def _refusal(session: Session, token: str, purpose: str = "respondent") -> str:
    with pytest.raises(LinkRefused) as refused:
        use_link(session, token=token, purpose=purpose)
    return refused.value.message_zh


def test_used_expired_tampered_and_other_case_links_get_one_calm_answer(
    session: Session, city: City, vclock: clock.VirtualClock
) -> None:
    a, b = _assigned(session, city), _assigned(session, city)
    link_a, link_b = _links(session, a)["respondent"], _links(session, b)["respondent"]
    token_a, token_b = token_of(link_a), token_of(link_b)
    before_b = len(_events(session, b))
    answers = set()
    # Tampered: one character of the signature, one of the nonce.
    flip = {"a": "b"}
    for i in (len(token_a) - 1, 0):
        bad = token_a[:i] + flip.get(token_a[i], "a") + token_a[i + 1 :]
        answers.add(_refusal(session, bad))
    # Case A's nonce with case B's signature (or the other way round) opens neither.
    answers.add(_refusal(session, link_a.nonce + token_b[len(link_b.nonce) :]))
    answers.add(_refusal(session, link_b.nonce + token_a[len(link_a.nonce) :]))
    # The complainant's consent link cannot do the respondent's action, nor is it theirs.
    answers.add(_refusal(session, token_of(_links(session, a)["consent"])))
    # Used: it worked once, then never again.
    used = use_link(session, token=token_a, purpose="respondent")
    assert used.case_id == a.id and used.used_at is not None
    answers.add(_refusal(session, token_a))
    # Expired: the link of B, a day after its week.
    vclock.advance(timedelta(days=8))
    answers.add(_refusal(session, token_b))
    assert len(answers) == 1 and "已使用、已过期或无效" in answers.pop()
    assert len(_events(session, b)) == before_b
    link_b_now = session.get(ResidentLink, link_b.id)
    assert link_b_now is not None and link_b_now.used_at is None


def test_a_link_stops_working_when_its_step_has_passed(session: Session, city: City) -> None:
    case = _assigned(session, city)
    token = token_of(_links(session, case)["consent"])
    assert open_link(session, token=token).purpose == "consent"
    actor = staff_actor(city, "mediatorA")
    record_consent(
        session, case_id=case.id or 0, party_ids=None, actor=actor, expected_version=None
    )
    start_mediation(session, case_id=case.id or 0, actor=actor)
    with pytest.raises(LinkRefused):
        open_link(session, token=token)


def _tomorrow_slots(*days: int) -> list[tuple[str, str]]:
    today = clock.to_local(clock.now()).date()
    return [((today + timedelta(days=d)).isoformat(), "pm") for d in days]


def test_the_respondent_accepts_and_proposes_times_as_their_own_event(
    session: Session, city: City
) -> None:
    case = _assigned(session, city)
    link = use_link(
        session, token=token_of(_links(session, case)["respondent"]), purpose="respondent"
    )
    shown = respondent.respondent_view(session, who=link, expires_at=link.expires_at)
    assert shown.name == "江心市恒达电子厂" and shown.number == case.number
    assert NAME not in str(shown) and PHONE not in str(shown) and "工资" not in str(shown)
    slots = respondent.parse_slots(_tomorrow_slots(1, 3, 3))  # a repeat counts once
    respondent.answer(session, who=link, accept=True, slots=slots, note="周末不方便")
    firm = _party(session, case, PartySide.RESPONDENT)
    assert firm.consented and not firm.refused
    consent = session.exec(select(PartyConsent).where(PartyConsent.party_id == firm.id)).one()
    assert consent.how.value == "resident_link"
    verbs = [(e.verb, e.actor) for e in _events(session, case)[-2:]]
    assert verbs == [("consent_recorded", f"resident:{firm.id}")] * 1 + [
        ("times_proposed", f"resident:{firm.id}")
    ]
    [answer] = respondent.party_answers(session, case_id=case.id or 0)
    assert answer.accepted and [s.day for s in answer.slots] == [s.day for s in slots]
    assert len(answer.slots) == 2 and answer.slots[0].zh.endswith("下午（14:00–17:30）")


@pytest.mark.parametrize(
    "pairs",
    [
        [("2020-01-01", "am")],  # past
        [((clock.to_local(clock.now()).date()).isoformat(), "am")],  # today
        [("not a date", "am")],
        [("2099-01-01", "am")],  # too far ahead
        [(d, "night") for d, _ in _tomorrow_slots(1)],
    ],
)
def test_times_outside_the_window_are_refused(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(ValidationError):
        respondent.parse_slots(pairs)


def test_too_many_times_and_none_at_all_are_refused(session: Session, city: City) -> None:
    with pytest.raises(ValidationError):
        respondent.parse_slots(_tomorrow_slots(1, 2, 3, 4))
    case = _assigned(session, city)
    link = _links(session, case)["respondent"]
    with pytest.raises(ValidationError):
        respondent.answer(session, who=link, accept=True, slots=[], note="")


def test_a_respondents_refusal_means_mediation_cannot_start(session: Session, city: City) -> None:
    """人民调解法 第十七条: while the refusal stands, start is refused and the page says so;
    staff then record the refusal (the case ends) or the party's consent after all."""
    case = _assigned(session, city)
    actor = staff_actor(city, "mediatorA")
    complainant = _party(session, case, PartySide.COMPLAINANT)
    record_consent(
        session, case_id=case.id or 0, party_ids=[complainant.id or 0], actor=actor,
        expected_version=None,
    )  # fmt: skip
    link = _links(session, case)["respondent"]
    respondent.answer(session, who=link, accept=False, slots=[], note="已经在走仲裁")
    firm = _party(session, case, PartySide.RESPONDENT)
    assert firm.refused and not firm.consented and case.consent_at is None
    assert case.status == CaseStatus.ASSIGNED
    assert respondent.mediation_blocked(session, case_id=case.id or 0)
    [answer] = respondent.party_answers(session, case_id=case.id or 0)
    assert not answer.accepted and answer.note == "已经在走仲裁"
    with pytest.raises(GuardFailed, match=r"Art\. 17"):
        start_mediation(session, case_id=case.id or 0, actor=actor)
    # The party changes their mind on the phone: staff record it and mediation may start.
    record_consent(
        session, case_id=case.id or 0, party_ids=[firm.id or 0], actor=actor,
        expected_version=None,
    )  # fmt: skip
    assert not respondent.mediation_blocked(session, case_id=case.id or 0)
    start_mediation(session, case_id=case.id or 0, actor=actor)
    assert case.status == CaseStatus.IN_MEDIATION


def test_staff_confirm_a_refusal_and_the_case_ends_with_its_routes(
    session: Session, city: City
) -> None:
    case = _assigned(session, city)
    respondent.answer(
        session, who=_links(session, case)["respondent"], accept=False, slots=[], note=""
    )
    firm = _party(session, case, PartySide.RESPONDENT)
    record_consent(
        session, case_id=case.id or 0, party_ids=[firm.id or 0], given=False,
        actor=staff_actor(city, "mediatorA"), expected_version=None,
    )  # fmt: skip
    assert case.status == CaseStatus.MEDIATION_FAILED and "第十七条" in (case.outcome_note or "")


def test_the_sweep_deletes_expired_sessions_links_and_idle_locks(
    session: Session, city: City, vclock: clock.VirtualClock
) -> None:
    case = _assigned(session, city)
    _links(session, case)
    now = clock.now()
    party = _party(session, case, PartySide.COMPLAINANT)
    for minutes in (-1, 30):
        session.add(
            ResidentSession(
                token_hash=f"t{minutes}", case_id=case.id or 0, party_id=party.id or 0,
                expires_at=now + timedelta(minutes=minutes), created_at=now,
            )
        )  # fmt: skip
    session.add(ResidentLock(code_hash="idle", failures=2, updated_at=now - timedelta(days=2)))
    session.add(
        ResidentLock(
            code_hash="locked", failures=0, updated_at=now - timedelta(days=2),
            locked_until=now + timedelta(minutes=5),
        )
    )  # fmt: skip
    session.add(ResidentLock(code_hash="recent", failures=1, updated_at=now))
    session.flush()
    counts = purge_expired(session, now=now)
    assert counts == {"sessions_purged": 1, "links_purged": 0, "locks_purged": 1}
    assert {lock.code_hash for lock in session.exec(select(ResidentLock))} == {"locked", "recent"}
    assert [s.token_hash for s in session.exec(select(ResidentSession))] == ["t30"]
    later = now + timedelta(days=9)  # the links' week and a day's grace have passed
    assert purge_expired(session, now=later)["links_purged"] == 2
