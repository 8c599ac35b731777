"""Mediation as the People's Mediation Law shapes it: acceptance review, every party's
consent, named mediators and recusal, the mediation limit on the sweep, and the 30-day
court-confirmation window with its day-20 and day-28 reminders."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlmodel import Session, col, select

from models import clock, confirmation, escalation, lifecycle, pii
from models.acceptance import review_acceptance
from models.attachments import add_attachment, list_attachments, storage_root
from models.case import Case
from models.confidentiality import mark_confidential, staff_may_see_details
from models.enums import (
    CaseStatus,
    Category,
    ConfirmationStatus,
    ConsentMethod,
    MediatorEnd,
    NotAcceptedReason,
    PartyKind,
    PartySide,
    ReferralReason,
    ReferralTarget,
)
from models.errors import ConflictError, GuardFailed, ValidationError
from models.event import CaseEvent
from models.mediating import record_consent, record_session, sign_agreement, start_mediation
from models.mediation import AgreementCreate, SessionCreate
from models.mediators import end_service, name_mediators, serving_ids
from models.parties import PartyUpdate, add_party, edit_party
from models.party import Party, PartyConsent, PartyCreate
from tests.factories import (
    PHONE,
    City,
    accept_for_mediation,
    advance_to_assigned,
    build_city,
    make_case,
    staff_actor,
)

SH = clock.SHANGHAI
SYSTEM = lifecycle.Actor.system()


def local(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SH)


def verbs(session: Session, case_id: int) -> list[str]:
    return list(
        session.exec(
            select(CaseEvent.verb).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.seq))
        ).all()
    )


def agreement() -> AgreementCreate:
    return AgreementCreate.model_validate(
        {
            "summary": "电子厂分两期支付拖欠工资。",
            "facts": "电子厂拖欠二十名工人三个月工资。",
            "disputed_matters": "欠薪数额与支付期限。",
            "responsibility": "电子厂承担支付责任。",
            "performance": "银行转账至工人工资卡。",
            "signed_on_paper": True,
            "committee_sealed": True,
            "terms": [
                {"text": "支付第一期工资 30,000 元", "due_on": "2026-12-10"},
                {"text": "支付第二期工资 30,000 元", "due_on": "2026-12-31"},
            ],
        }
    )


def test_a_dispute_already_in_arbitration_is_not_accepted_and_the_parties_are_told_where_to_go(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    mediator = staff_actor(city, "mediatorA")
    review = review_acceptance(
        session,
        case_id=case.id or 0,
        accepted=False,
        reason=NotAcceptedReason.BEFORE_ARBITRATION,
        route=None,
        note="申请人已向区劳动人事争议仲裁委员会申请仲裁",
        actor=mediator,
        expected_version=case.version,
    )
    assert case.status == CaseStatus.REFERRED
    assert case.referral_target == ReferralTarget.ARBITRATION
    assert review.decided_by_id == city.staff["mediatorA"].id
    assert "第二十二条" in review.legal_basis
    assert "劳动人事争议仲裁" in review.guidance and "一年" in review.guidance
    assert case.outcome_note == review.guidance
    assert verbs(session, case.id or 0)[-2:] == ["acceptance_reviewed", "referred"]
    assert case.referral_reason == ReferralReason.IN_ARBITRATION  # the referral loop's record
    # Nothing of mediation can follow.
    with pytest.raises(Exception, match="referred"):
        start_mediation(session, case_id=case.id or 0, actor=mediator)


def test_acceptance_is_decided_by_a_person_with_a_reason(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    with pytest.raises(GuardFailed):
        review_acceptance(
            session, case_id=case.id or 0, accepted=True, reason=None, route=None, note="",
            actor=SYSTEM, expected_version=None,
        )  # fmt: skip
    with pytest.raises(ValidationError) as no_reason:
        review_acceptance(
            session, case_id=case.id or 0, accepted=False, reason=None, route=None, note="",
            actor=staff_actor(city, "mediatorA"), expected_version=None,
        )  # fmt: skip
    assert no_reason.value.problems[0].field == "reason"
    assert case.status == CaseStatus.ASSIGNED and case.version == 3


def test_mediation_waits_for_every_party_whose_consent_is_needed(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    mediator = staff_actor(city, "mediatorA")
    cid = case.id or 0
    record_consent(session, case_id=cid, party_ids=None, actor=mediator, expected_version=None)
    # Consented, but not accepted and no mediator named: no start.
    with pytest.raises(GuardFailed, match="accepted"):
        start_mediation(session, case_id=cid, actor=mediator)
    accept_for_mediation(session, case, city)
    # A third party joined as a party whose consent is needed; an agent acts for them.
    third = add_party(
        session,
        case=case,
        data=PartyCreate(
            side=PartySide.THIRD_PARTY,
            kind=PartyKind.PERSON,
            name="李四",
            phone="13912345678",
            agent_name="赵律师",
            consent_required=True,
        ),
        actor=mediator,
        expected_version=case.version,
    )
    assert third.name_enc and "李四" not in third.name_enc and third.name_masked == "李*"
    assert third.agent_name_masked == "赵**" and third.phone_masked == "139****5678"
    assert case.consent_at is None
    with pytest.raises(GuardFailed, match="consent"):
        start_mediation(session, case_id=cid, actor=mediator)
    record_consent(
        session, case_id=cid, party_ids=[third.id or 0], actor=mediator,
        expected_version=case.version, how=ConsentMethod.PHONE,
    )  # fmt: skip
    start_mediation(session, case_id=cid, actor=mediator)
    assert case.status == CaseStatus.IN_MEDIATION
    answers = session.exec(select(PartyConsent).where(PartyConsent.case_id == cid)).all()
    assert {a.how for a in answers} == {ConsentMethod.IN_PERSON, ConsentMethod.PHONE}
    assert all(a.given for a in answers) and len(answers) == 3


def test_a_partys_refusal_ends_mediation_with_guidance(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    accept_for_mediation(session, case, city)
    firm = session.exec(
        select(Party).where(Party.case_id == case.id, Party.side == PartySide.RESPONDENT)
    ).one()
    record_consent(
        session, case_id=case.id or 0, party_ids=[firm.id or 0], given=False,
        how=ConsentMethod.PHONE, actor=staff_actor(city, "mediatorA"), expected_version=None,
    )  # fmt: skip
    assert firm.refused and case.status == CaseStatus.MEDIATION_FAILED
    assert case.outcome_note and "第十七条" in case.outcome_note and "诉讼" in case.outcome_note


def test_editing_a_party_keeps_personal_data_encrypted_and_the_timeline_clean(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    person = session.exec(
        select(Party).where(Party.case_id == case.id, Party.side == PartySide.COMPLAINANT)
    ).one()
    edit_party(
        session, case=case, party_id=person.id or 0,
        changes=PartyUpdate(phone="13700001111", agent_name="周律师"),
        actor=staff_actor(city, "workerA"), expected_version=case.version,
    )  # fmt: skip
    assert person.phone_enc and pii.decrypt(person.phone_enc) == "13700001111"
    assert person.phone_masked == "137****1111" and person.name_masked == "王**"
    event = session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.seq).desc())
    ).first()
    assert event is not None and event.verb == "party_edited"
    assert "13700001111" not in str(event.data) and event.data["fields"] == [
        "agent_name",
        "phone",
    ]
    with pytest.raises(ValidationError):
        edit_party(
            session, case=case, party_id=person.id or 0, changes=PartyUpdate(phone="12345"),
            actor=staff_actor(city, "workerA"), expected_version=case.version,
        )  # fmt: skip
    assert pii.decrypt(person.phone_enc) == "13700001111"


def _in_mediation(session: Session) -> tuple[Case, City]:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    accept_for_mediation(session, case, city)
    actor = staff_actor(city, "mediatorA")
    record_consent(
        session, case_id=case.id or 0, party_ids=None, actor=actor, expected_version=None
    )
    start_mediation(session, case_id=case.id or 0, actor=actor)
    return case, city


def test_a_recused_mediator_can_neither_record_nor_sign(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, city = _in_mediation(session)
    cid = case.id or 0
    a = staff_actor(city, "mediatorA")
    street = city.staff["street_mediator"]
    with pytest.raises(ValidationError):  # a case in mediation keeps a mediator
        end_service(
            session, case=case, staff_id=a.staff_id or 0, why=MediatorEnd.RECUSED,
            note="调解员与被申请人负责人系亲属", replacement_id=None, actor=a,
            expected_version=None,
        )  # fmt: skip
    end_service(
        session, case=case, staff_id=a.staff_id or 0, why=MediatorEnd.RECUSED,
        note="调解员与被申请人负责人系亲属", replacement_id=street.id, actor=a,
        expected_version=None,
    )  # fmt: skip
    assert serving_ids(session, case_id=cid) == [street.id]
    minutes = SessionCreate(held_at=clock.now(), place="调解室", participants="双方", minutes="x")
    with pytest.raises(GuardFailed, match="named"):
        record_session(session, case_id=cid, data=minutes, actor=a, expected_version=None)
    with pytest.raises(GuardFailed, match="named"):
        sign_agreement(session, case_id=cid, data=agreement(), actor=a, expected_version=None)
    b = staff_actor(city, "street_mediator")
    signed = sign_agreement(session, case_id=cid, data=agreement(), actor=b, expected_version=None)
    assert signed.mediator_ids == [street.id] and signed.committee_sealed
    assert "mediator_recused" in verbs(session, cid)


def test_the_committee_names_one_to_three_mediators_only(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    a = staff_actor(city, "mediatorA")
    with pytest.raises(ValidationError):  # a community worker is no mediator
        name_mediators(
            session, case=case, staff_ids=[city.staff["workerA"].id or 0], actor=a,
            expected_version=None,
        )  # fmt: skip
    ids = [city.staff[n].id or 0 for n in ("mediatorA", "street_mediator", "district_mediator")]
    name_mediators(session, case=case, staff_ids=ids, actor=a, expected_version=None)
    with pytest.raises(ValidationError):
        name_mediators(
            session, case=case, staff_ids=[city.staff["mediatorB"].id or 0], actor=a,
            expected_version=None,
        )  # fmt: skip
    end_service(
        session, case=case, staff_id=ids[1], why=MediatorEnd.PARTY_REQUEST,
        note="申请人要求更换调解员", replacement_id=None, actor=a, expected_version=None,
    )  # fmt: skip
    assert serving_ids(session, case_id=case.id or 0) == [ids[0], ids[2]]


def test_the_mediation_limit_is_reminded_then_escalated_on_the_virtual_clock(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, _city = _in_mediation(session)  # started Mon 30 Nov 09:00: due 30 Dec, 24:00
    cid = case.id or 0
    assert case.mediation_due_at == clock.ensure_utc(datetime(2026, 12, 31, tzinfo=SH))
    assert case.resolution_due_at == case.mediation_due_at
    vclock.set(local(2026, 12, 27, 8))
    assert escalation.find_due(session, now=clock.now()).remind_ids == []
    vclock.set(local(2026, 12, 28, 9))  # three days before
    due = escalation.find_due(session, now=clock.now())
    assert due.remind_ids == [cid] and due.escalate_ids == []
    assert escalation.remind_case(session, case_id=cid, now=clock.now(), actor=SYSTEM)
    assert escalation.remind_case(session, case_id=cid, now=clock.now(), actor=SYSTEM) is None
    vclock.set(local(2026, 12, 31, 9))
    due = escalation.find_due(session, now=clock.now())
    assert due.escalate_ids == [cid]
    result = escalation.escalate_case(session, case_id=cid, now=clock.now(), actor=SYSTEM)
    assert result is not None and result.outcome == "escalated"
    assert case.status == CaseStatus.ESCALATED and result.to_unit == "S1"


def test_an_extension_needs_the_parties_agreement_and_restarts_the_reminder(
    session: Session, vclock: clock.VirtualClock
) -> None:
    from models.mediating import extend_mediation

    case, city = _in_mediation(session)
    a = staff_actor(city, "mediatorA")
    vclock.set(local(2026, 12, 29, 9))
    escalation.remind_case(session, case_id=case.id or 0, now=clock.now(), actor=SYSTEM)
    with pytest.raises(ValidationError):
        extend_mediation(
            session, case_id=case.id or 0, until=date(2027, 1, 20), both_parties_consent=False,
            actor=a, expected_version=None,
        )  # fmt: skip
    extend_mediation(
        session, case_id=case.id or 0, until=date(2027, 1, 20), both_parties_consent=True,
        how=ConsentMethod.IN_PERSON, note="双方当面同意延期", actor=a, expected_version=None,
    )  # fmt: skip
    assert case.resolution_due_at == clock.ensure_utc(datetime(2027, 1, 21, tzinfo=SH))
    assert case.reminded_level is None
    vclock.set(local(2027, 1, 18, 9))
    assert escalation.find_due(session, now=clock.now()).remind_ids == [case.id]


def test_court_confirmation_reminders_fire_once_each_on_day_20_and_day_28(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, city = _in_mediation(session)
    a = staff_actor(city, "mediatorA")
    vclock.set(local(2026, 12, 3, 16))
    signed = sign_agreement(
        session, case_id=case.id or 0, data=agreement(), actor=a, expected_version=None
    )
    assert signed.effective_on == date(2026, 12, 3)
    assert signed.court_confirmation_deadline == date(2027, 1, 2)

    def sweep_at(moment: datetime) -> list[int]:
        vclock.set(moment)
        return confirmation.sweep_reminders(session, now=clock.now(), actor=SYSTEM)

    assert sweep_at(local(2026, 12, 23, 8, 59)) == []  # day 20 opens at 09:00
    assert sweep_at(local(2026, 12, 23, 9)) == [case.id]
    assert sweep_at(local(2026, 12, 23, 15)) == []
    assert sweep_at(local(2026, 12, 30, 9)) == []
    assert sweep_at(local(2026, 12, 31, 9, 30)) == [case.id]  # day 28
    assert sweep_at(local(2027, 1, 1, 9)) == []
    reminders = session.exec(
        select(CaseEvent).where(
            CaseEvent.case_id == case.id, CaseEvent.verb == "court_confirmation_reminded"
        )
    ).all()
    assert [e.data["day"] for e in reminders] == [20, 28]
    assert reminders[0].data["mediator_ids"] == [a.staff_id]


def test_no_reminder_once_the_parties_applied_and_the_outcome_is_recorded(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, city = _in_mediation(session)
    a = staff_actor(city, "mediatorA")
    sign_agreement(session, case_id=case.id or 0, data=agreement(), actor=a, expected_version=None)
    vclock.set(local(2026, 12, 10, 10))
    confirmation.record_outcome(
        session, case=case, status=ConfirmationStatus.APPLIED, on=date(2026, 12, 10),
        court_name="江心市东湖区人民法院", court_reference="", actor=a, expected_version=None,
    )  # fmt: skip
    vclock.set(local(2026, 12, 21, 10))
    assert confirmation.sweep_reminders(session, now=clock.now(), actor=SYSTEM) == []
    with pytest.raises(ValidationError):  # a decision carries the court's reference
        confirmation.record_outcome(
            session, case=case, status=ConfirmationStatus.CONFIRMED, on=date(2026, 12, 21),
            court_name="", court_reference="", actor=a, expected_version=None,
        )  # fmt: skip
    row = confirmation.record_outcome(
        session, case=case, status=ConfirmationStatus.CONFIRMED, on=date(2026, 12, 21),
        court_name="", court_reference="（2026）东湖民特 123 号", actor=a, expected_version=None,
    )  # fmt: skip
    assert row.court_confirmed and row.confirmation_decided_on == date(2026, 12, 21)
    with pytest.raises(ConflictError):
        confirmation.record_outcome(
            session, case=case, status=ConfirmationStatus.REFUSED, on=date(2026, 12, 21),
            court_name="", court_reference="x", actor=a, expected_version=None,
        )  # fmt: skip


def test_family_disputes_are_confidential_and_details_stay_in_the_unit(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    family = make_case(session, category=Category.FAMILY, description="夫妻因抚养费发生争执。")
    labour = make_case(session)
    assert family.confidential and not labour.confidential
    advance_to_assigned(session, family, city)
    advance_to_assigned(session, labour, city)
    worker_a = city.staff["workerA"]
    street = city.staff["street_mediator"]
    assert staff_may_see_details(family, staff_id=worker_a.id, unit_id=worker_a.unit_id)
    assert not staff_may_see_details(family, staff_id=street.id, unit_id=street.unit_id)
    mark_confidential(
        session, case_id=labour.id or 0, reason="申请人要求不公开调解",
        actor=staff_actor(city, "workerA"), expected_version=None,
    )  # fmt: skip
    assert labour.confidential
    assert not staff_may_see_details(labour, staff_id=street.id, unit_id=street.unit_id)


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_bad_uploads_store_nothing(session: Session, vclock: clock.VirtualClock) -> None:
    city = build_city(session)
    case = make_case(session)
    actor = staff_actor(city, "workerA")
    before = case.version
    files_before = sorted(storage_root().rglob("*")) if storage_root().exists() else []
    for name, content in (
        ("../../etc/passwd.png", _png()),
        ("scan.pdf", b"MZ\x90\x00 not a pdf at all"),
        ("empty.png", b""),
        ("big.pdf", b"%PDF-1.4" + b"0" * (10 * 1024 * 1024)),
    ):
        with pytest.raises(ValidationError):
            add_attachment(
                session, case=case, filename=name, content=content, kind="scan", actor=actor
            )
    assert list_attachments(session, case_id=case.id or 0) == []
    assert case.version == before
    files_after = sorted(storage_root().rglob("*")) if storage_root().exists() else []
    assert files_after == files_before
    row = add_attachment(
        session, case=case, filename="现场照片.png", content=_png(), kind="photo", actor=actor
    )
    assert row.content_type == "image/png" and row.title == "现场照片.png"
    stored = storage_root() / row.sha256[:2] / row.sha256
    assert stored.read_bytes() == _png()
    assert not any("现场照片" in p.name for p in storage_root().rglob("*"))


def test_the_named_mediators_and_events_carry_no_clear_personal_data(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, _city = _in_mediation(session)
    events = session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    assert events and all(PHONE not in str(e.data) for e in events)


def test_a_confidential_description_is_exported_only_to_readers_entitled_to_it(
    session: Session, vclock: clock.VirtualClock
) -> None:
    from models.case_export import description_for_export

    build_city(session)
    family = make_case(session, category=Category.FAMILY, description="夫妻因抚养费发生争执。")
    assert description_for_export(family, clear=False) == "（不公开） (confidential)"
    assert description_for_export(family, clear=True) == "夫妻因抚养费发生争执。"
