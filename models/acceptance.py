"""Acceptance review (受理审查): is a registered dispute within people's mediation?

Between registration and mediation the committee decides, by a named person and with
the legal reason, whether it accepts the dispute. It does not when the dispute is
already before a court, an arbitration commission or an administrative authority, is
a criminal matter, or a party refuses mediation (人民调解法 第十七条; 《人民调解工作若干
规定》第二十二条). A dispute not accepted is referred (through the referral loop,
``models.referrals``, when a court, arbitration or the police already has it), and the
parties are told the route that remains open to them (诉讼, 劳动人事争议仲裁, 行政复议,
公安机关): the same guidance text is shown on the case page and printed on the 受理登记表.

The guidance of a mediation that ended without agreement (第二十六条) comes from the same
table (:func:`route_guidance`), so that the parties read one text per route.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel, col, select

from models import clock, lifecycle, referrals
from models.case import Case
from models.enums import CaseStatus, NotAcceptedReason, ReferralReason, ReferralTarget
from models.errors import ConflictError
from models.guards import invalid
from models.lifecycle import Actor
from models.types import UTCDateTime, enum_type

S = CaseStatus
REVIEWABLE = lifecycle.REVIEWABLE

LEGAL_BASIS: dict[NotAcceptedReason, str] = {
    NotAcceptedReason.BEFORE_COURT: (
        "《人民调解工作若干规定》第二十二条：人民法院已经受理的纠纷，人民调解委员会不予受理。"
    ),
    NotAcceptedReason.BEFORE_ARBITRATION: (
        "《人民调解工作若干规定》第二十二条：已由仲裁机构受理的纠纷，人民调解委员会不予受理。"
    ),
    NotAcceptedReason.BEFORE_ADMINISTRATION: (
        "《人民调解工作若干规定》第二十二条：行政机关已经受理或者解决的纠纷，"
        "人民调解委员会不予受理。"
    ),
    NotAcceptedReason.CRIMINAL: (
        "《人民调解工作若干规定》第二十二条：法律、法规规定只能由专门机关管辖处理的纠纷，"
        "人民调解委员会不予受理。"
    ),
    NotAcceptedReason.PARTY_REFUSES: (
        "《中华人民共和国人民调解法》第十七条：当事人一方明确拒绝调解的，不得调解。"
    ),
}

DEFAULT_ROUTE: dict[NotAcceptedReason, ReferralTarget] = {
    NotAcceptedReason.BEFORE_COURT: ReferralTarget.COURT,
    NotAcceptedReason.BEFORE_ARBITRATION: ReferralTarget.ARBITRATION,
    NotAcceptedReason.BEFORE_ADMINISTRATION: ReferralTarget.ADMIN_REVIEW,
    NotAcceptedReason.CRIMINAL: ReferralTarget.POLICE,
    NotAcceptedReason.PARTY_REFUSES: ReferralTarget.COURT,
}

ROUTE_NAMES: dict[ReferralTarget, str] = {
    ReferralTarget.COURT: "诉讼",
    ReferralTarget.ARBITRATION: "劳动人事争议仲裁",
    ReferralTarget.ADMIN_REVIEW: "行政复议",
    ReferralTarget.POLICE: "公安机关",
    ReferralTarget.AGENCY: "有关职能部门",
}

_GUIDANCE: dict[ReferralTarget, str] = {
    ReferralTarget.COURT: "当事人可以依法向有管辖权的人民法院提起诉讼。",
    ReferralTarget.ARBITRATION: (
        "当事人可以依照《中华人民共和国劳动争议调解仲裁法》，自知道或者应当知道其权利被侵害"
        "之日起一年内，向劳动人事争议仲裁委员会申请仲裁。"
    ),
    ReferralTarget.ADMIN_REVIEW: (
        "当事人可以依照《中华人民共和国行政复议法》向行政复议机关申请行政复议，"
        "也可以依法提起行政诉讼。"
    ),
    ReferralTarget.POLICE: "涉嫌违法犯罪的，当事人可以向公安机关报案、控告或者举报。",
    ReferralTarget.AGENCY: "当事人可以向依法负有处理职责的行政机关反映，由其依法处理。",
}


# Reasons the referral loop knows (models.referrals): the dispute goes where it already is.
LEGAL_REFERRAL: dict[NotAcceptedReason, ReferralReason] = {
    NotAcceptedReason.BEFORE_COURT: ReferralReason.IN_COURT,
    NotAcceptedReason.BEFORE_ARBITRATION: ReferralReason.IN_ARBITRATION,
    NotAcceptedReason.CRIMINAL: ReferralReason.CRIMINAL,
}


def route_guidance(route: ReferralTarget) -> str:
    """What the parties are told about the route left open to them."""
    return f"{ROUTE_NAMES[route]}：{_GUIDANCE[route]}"


class AcceptanceReview(SQLModel, table=True):
    """One acceptance decision (the latest one counts)."""

    __tablename__ = "acceptance_review"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    accepted: bool
    reason: NotAcceptedReason | None = Field(default=None, sa_type=enum_type(NotAcceptedReason))
    legal_basis: str = Field(default="", max_length=500)
    route: ReferralTarget | None = Field(default=None, sa_type=enum_type(ReferralTarget))
    guidance: str = Field(default="", max_length=1000)
    note: str = Field(default="", max_length=1000)
    decided_by_id: int | None = Field(default=None, foreign_key="staff.id")
    decided_at: datetime = Field(sa_type=UTCDateTime)


def latest_review(session: Session, *, case_id: int) -> AcceptanceReview | None:
    return session.exec(
        select(AcceptanceReview)
        .where(AcceptanceReview.case_id == case_id)
        .order_by(col(AcceptanceReview.decided_at).desc(), col(AcceptanceReview.id).desc())
    ).first()


def review_acceptance(
    session: Session,
    *,
    case_id: int,
    accepted: bool,
    reason: NotAcceptedReason | None,
    route: ReferralTarget | None,
    note: str,
    actor: Actor,
    expected_version: int | None,
) -> AcceptanceReview:
    """Record the acceptance decision. Accepted: mediation may follow (consents, named
    mediators). Not accepted: the case is referred and the guidance recorded."""

    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_staff(actor, "the acceptance review", "受理审查")
    if case.status not in REVIEWABLE or case.accepted_at is not None:
        raise ConflictError(
            f"case {case.number} is {case.status.value}"
            + (" and already accepted" if case.accepted_at else ""),
            f"案件当前状态为「{case.status.zh}」"
            + ("，且已受理" if case.accepted_at else "")
            + "，不能进行受理审查。",
        )
    text = (note or "").strip()
    if len(text) > 1000:
        raise invalid("note", "at most 1000 characters", "不能超过 1000 字")
    review = _decide(case, accepted=accepted, reason=reason, route=route, note=text, actor=actor)
    session.add(review)
    session.flush()
    _record(step, review)
    session.flush()
    return review


def _decide(
    case: Case,
    *,
    accepted: bool,
    reason: NotAcceptedReason | None,
    route: ReferralTarget | None,
    note: str,
    actor: Actor,
) -> AcceptanceReview:
    assert case.id is not None
    now = clock.now()
    if accepted:
        if reason is not None or route is not None:
            raise invalid(
                "reason",
                "an accepted dispute has no reason not to accept",
                "予以受理时不填不予受理事由",
            )
        return AcceptanceReview(
            case_id=case.id,
            accepted=True,
            legal_basis="《中华人民共和国人民调解法》第十七条、第十八条",
            note=note,
            decided_by_id=actor.staff_id,
            decided_at=now,
        )
    if reason is None:
        raise invalid("reason", "say why the dispute is not accepted", "请选择不予受理的事由")
    chosen = route or DEFAULT_ROUTE[reason]
    return AcceptanceReview(
        case_id=case.id,
        accepted=False,
        reason=reason,
        legal_basis=LEGAL_BASIS[reason],
        route=chosen,
        guidance=f"本纠纷不属于人民调解受理范围（{reason.zh}）。{route_guidance(chosen)}",
        note=note,
        decided_by_id=actor.staff_id,
        decided_at=now,
    )


def _grounds(review: AcceptanceReview) -> dict[str, str]:
    """Why a complaint was not accepted and where it was sent (nothing when accepted)."""
    if review.accepted:
        return {}
    assert review.reason is not None and review.route is not None
    return {"reason": review.reason.value, "route": review.route.value}


def _record(step: lifecycle.Step, review: AcceptanceReview) -> None:
    """The review on the case's timeline; a complaint not accepted is then referred
    (a court, arbitration or the police by the referral loop) or sent on with guidance."""
    session, case, actor = step.session, step.case, step.actor
    grounds = _grounds(review)
    if review.accepted:
        case.accepted_at = review.decided_at
    step.record(
        "acceptance_reviewed", {"accepted": review.accepted, "review_id": review.id, **grounds}
    )
    if review.accepted:
        return
    assert review.reason is not None and review.route is not None
    case.outcome_note = review.guidance
    legal = LEGAL_REFERRAL.get(review.reason)
    if legal is not None and review.route == legal.target:
        # A court, arbitration or the police has the dispute: the referral loop records
        # the hand-over (models.referrals) with its legal reason.
        referrals.refer(
            session,
            case=case,
            reason=legal,
            actor=actor,
            extra={"acceptance_review_id": review.id},
        )
        return
    case.referral_target = review.route
    if review.reason == NotAcceptedReason.BEFORE_ADMINISTRATION:
        case.referral_reason = ReferralReason.ADMINISTRATIVE
    lifecycle.apply(
        session,
        case=case,
        verb="not_accepted",
        actor=actor,
        data={"review_id": review.id, **grounds},
    )
