"""The referral loop (移交→签收/退单→反馈→回访), and the legal reasons a case may leave
people's mediation before anyone at the grassroots has worked it.

* :func:`refer` hands a case over (to the paired agency, or to the police, a court or
  arbitration) with a :class:`~models.enums.ReferralReason` recorded on the case and on
  the :class:`~models.referral.Referral` row. Before the case has been worked (triaged
  or escalated, not yet assigned) only a legal reason is accepted;
* :func:`legal_reason_by_rule` is the one rule that names such a reason from the text;
* :func:`sign_referral`, :func:`return_referral` and :func:`record_referral_outcome`
  are the receiving unit's three answers; the referring unit keeps the case in view
  (``Case.referred_from_path``);
* :func:`sign_overdue` says whether a referral waited longer than a working day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models import clock, lifecycle, workdays
from models.access import Actor
from models.case import Case
from models.deadlines import compute_deadlines, find_policy
from models.enums import (
    CaseStatus,
    ReferralOutcome,
    ReferralReason,
    ReferralState,
    ReferralTarget,
    StaffRole,
    UnitLevel,
)
from models.errors import GuardFailed, NotFound, PermissionDenied, ValidationError
from models.guards import masked_text, required_masked_text
from models.referral import Referral
from models.rows import rows_of
from models.staff import Staff
from models.staffing import pick_assignee
from models.unit import Unit

S = CaseStatus
SIGN_WITHIN_WORKING_DAYS = 1
# Statuses in which nobody at the grassroots has worked the case yet.
UNWORKED = frozenset({S.TRIAGED, S.ESCALATED})


@dataclass(frozen=True)
class LegalRule:
    """A rule that refers a case at assignment, and the reason it names."""

    name: str
    reason: ReferralReason
    phrases: tuple[str, ...]


# Phrases that state a fact, not a wish ("我要起诉" is a wish; "法院已立案" is a fact).
LEGAL_RULES: tuple[LegalRule, ...] = (
    LegalRule(
        "已在法院立案 filed in court",
        ReferralReason.IN_COURT,
        ("法院已立案", "法院已经立案", "已向法院起诉", "已经向法院起诉", "法院已受理"),
    ),
    LegalRule(
        "已申请仲裁 before arbitration",
        ReferralReason.IN_ARBITRATION,
        ("已申请劳动仲裁", "已经申请劳动仲裁", "仲裁委已受理", "已申请仲裁", "仲裁已立案"),
    ),
    LegalRule(
        "涉嫌违法犯罪 criminal matter",
        ReferralReason.CRIMINAL,
        ("持刀伤人", "被打伤住院", "砸抢", "非法拘禁", "已报警立案"),
    ),
)


def legal_reason_by_rule(text: str) -> LegalRule | None:
    """The first :data:`LEGAL_RULES` entry whose phrase the text contains."""
    folded = "".join(text.split())
    return next((r for r in LEGAL_RULES if any(p in folded for p in r.phrases)), None)


def referrals_of(session: Session, *, case_id: int) -> list[Referral]:
    return rows_of(session, Referral, Referral.case_id == case_id, Referral.referred_at)


def open_referral(session: Session, *, case_id: int) -> Referral | None:
    """The referral awaiting the receiving unit (pending or signed), if any."""
    return session.exec(
        select(Referral)
        .where(
            Referral.case_id == case_id,
            col(Referral.state).in_([ReferralState.PENDING, ReferralState.SIGNED]),
        )
        .order_by(col(Referral.id).desc())
    ).first()


def returned_by(session: Session, *, case_id: int) -> set[int]:
    """Units that sent this case back: the escalation ladder does not send it there again."""
    rows = session.exec(
        select(Referral.to_unit_id).where(
            Referral.case_id == case_id, Referral.state == ReferralState.RETURNED
        )
    ).all()
    return {r for r in rows if r is not None}


def awaits_receiver(case: Case) -> bool:
    """A referred case whose receiving unit has not recorded its outcome yet."""
    return case.status == S.REFERRED and case.referral_state in (
        ReferralState.PENDING,
        ReferralState.SIGNED,
    )


def sign_overdue(referral: Referral, *, now: datetime) -> bool:
    """A referral still waiting to be signed for (or sent back) after its working day."""
    return (
        referral.state == ReferralState.PENDING
        and referral.sign_due_at is not None
        and clock.ensure_utc(referral.sign_due_at) < clock.ensure_utc(now)
    )


def overdue_signatures(session: Session, *, now: datetime) -> list[Referral]:
    return list(
        session.exec(
            select(Referral).where(
                Referral.state == ReferralState.PENDING,
                col(Referral.sign_due_at) < clock.ensure_utc(now),
            )
        ).all()
    )


def refer(
    session: Session,
    *,
    case: Case,
    reason: ReferralReason,
    actor: Actor,
    target: ReferralTarget | None = None,
    agency: Unit | None = None,
    note: str | None = None,
    decided_by: str = "staff",
    expected_version: int | None = None,
    extra: dict[str, object] | None = None,
) -> Referral:
    """Refer ``case`` for ``reason``: to ``agency`` when the reason's target is an agency,
    else to the police, a court or arbitration. The case's unit is the agency's while it
    works the case; the referring unit keeps it in view."""
    assert case.id is not None
    step = lifecycle.step_on(session, case, actor, expected_version)
    # The limit passing means the grassroots had its turn, used or not.
    if (
        case.status in UNWORKED
        and not reason.at_assignment
        and reason != ReferralReason.LIMIT_PASSED
    ):
        raise GuardFailed(
            f"a case nobody has worked yet is referred only for a legal reason, not "
            f"{reason.en.lower()}",
            f"尚未办理的案件只能因法定事由移交，不能以「{reason.zh}」移交。",
        )
    if reason == ReferralReason.MEDIATION_FAILED and case.status not in (
        S.IN_MEDIATION,
        S.MEDIATION_FAILED,
    ):
        raise GuardFailed(
            "only a case whose mediation failed is referred for that reason",
            "只有调解不成的案件才能以「调解不成」移交。",
        )
    target = target or reason.target
    if reason != ReferralReason.MEDIATION_FAILED and target != reason.target:
        raise ValidationError(
            f"target: {reason.en.lower()} goes to {reason.target.en.lower()}, not {target.en}",
            f"target：「{reason.zh}」应移交{reason.target.zh}，不是{target.zh}",
        )
    if target == ReferralTarget.AGENCY and (agency is None or agency.level != UnitLevel.AGENCY):
        raise ValidationError(
            "agency_code: an agency is needed for this reason", "agency_code：请指定接收部门"
        )
    now = clock.now()
    source = session.get(Unit, case.unit_id) if case.unit_id else None
    internal = target == ReferralTarget.AGENCY
    row = Referral(
        case_id=case.id,
        target=target,
        reason=reason,
        decided_by=decided_by[:100],
        note=masked_text(note),
        from_unit_id=source.id if source else None,
        to_unit_id=agency.id if internal and agency else None,
        referred_by_id=actor.staff_id,
        referred_at=now,
        # Outside the system the hand-over is the receipt: nothing to sign for.
        state=ReferralState.PENDING if internal else ReferralState.SIGNED,
        sign_due_at=(
            workdays.add_working_days(now, SIGN_WITHIN_WORKING_DAYS) if internal else None
        ),
        signed_at=None if internal else now,
    )
    session.add(row)
    session.flush()
    case.referral_target = target
    case.referral_reason = reason
    if actor.staff_id is not None:  # a named rule refers as the system: the last person stays
        case.referred_by_id = actor.staff_id
    case.referral_state = row.state if internal else None
    case.referral_due_at = row.sign_due_at
    if source is not None and source.level != UnitLevel.AGENCY:
        case.referred_from_path = source.path
    if internal and agency is not None:
        case.set_handling_unit(agency)
        case.assignee_id = None
    data: dict[str, object] = {
        "target": target.value,
        "reason": reason.value,
        "reason_zh": reason.zh,
        "decided_by": row.decided_by,
        "referral_id": row.id,
        "from_unit": source.code if source else None,
        "agency_code": agency.code if internal and agency else None,
        "agency_name": agency.name_zh if internal and agency else None,
    }
    if row.note:
        data["note"] = row.note
    data.update(extra or {})
    step.record("referred", data)
    return row


def _actor_unit(session: Session, actor: Actor) -> tuple[Staff, Unit | None]:
    staff = session.get(Staff, lifecycle.require_staff(actor, "answering a referral", "办理移交件"))
    if staff is None:
        raise NotFound("no such staff member", "没有该工作人员")
    return staff, session.get(Unit, staff.unit_id) if staff.unit_id else None


def _receiving(session: Session, case: Case, actor: Actor) -> tuple[Referral, Staff]:
    assert case.id is not None
    referral = open_referral(session, case_id=case.id)
    if case.status != S.REFERRED or referral is None or referral.to_unit_id is None:
        raise GuardFailed(
            f"case {case.number} has no referral waiting for a unit",
            f"案件 {case.number} 没有待办的移交件",
        )
    staff, unit = _actor_unit(session, actor)
    receiver = session.get(Unit, referral.to_unit_id)
    in_unit = unit is not None and receiver is not None and unit.path.startswith(receiver.path)
    if not in_unit and staff.role != StaffRole.ADMIN:
        raise PermissionDenied(
            "only the receiving unit answers a referral",
            "只有接收单位可以签收、退回或反馈移交件",
        )
    return referral, staff


def sign_referral(
    session: Session, *, case_id: int, actor: Actor, expected_version: int | None
) -> Referral:
    """The receiving unit signs for the case (签收): the signer handles it there, under
    the unit's own time limit."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    referral, staff = _receiving(session, case, actor)
    if referral.state != ReferralState.PENDING:
        raise GuardFailed("the referral is signed for already", "该移交件已签收")
    now = clock.now()
    late = sign_overdue(referral, now=now)
    referral.state = ReferralState.SIGNED
    referral.signed_at = now
    referral.signed_by_id = staff.id
    session.add(referral)
    unit = session.get(Unit, referral.to_unit_id or 0)
    policy = find_policy(
        session, category=case.category, priority=case.priority, level=UnitLevel.AGENCY
    )
    limits = compute_deadlines(policy, start=now)
    case.assignee_id = staff.id
    case.referral_state = ReferralState.SIGNED
    case.referral_due_at = None
    case.resolution_due_at = limits.resolution_due_at
    case.next_reminder_at = None
    step.record(
        "referral_signed",
        {
            "referral_id": referral.id,
            "unit": unit.code if unit else None,
            "unit_name": unit.name_zh if unit else None,
            "late": late,
            "new_deadline": limits.resolution_due_at.isoformat(),
        },
    )
    return referral


def _taker(session: Session, case: Case, referral: Referral, home: Unit) -> Staff | None:
    """Who takes a case sent back: the person who referred it, else the liaison, else the
    least-loaded handler of the referring unit."""
    for staff_id in (referral.referred_by_id, case.liaison_id):
        staff = session.get(Staff, staff_id) if staff_id else None
        if staff is not None and staff.active and staff.unit_id is not None:
            unit = session.get(Unit, staff.unit_id)
            if unit is not None and unit.path.startswith(home.path):
                return staff
    return pick_assignee(session, unit=home, category=case.category)


def return_referral(
    session: Session, *, case_id: int, reason: str, actor: Actor, expected_version: int | None
) -> Referral:
    """The receiving unit sends the case back (退单) with a reason: it goes back to the
    unit that referred it, to a person there, with a new limit at that level."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    referral, _staff = _receiving(session, case, actor)
    if referral.state != ReferralState.PENDING:
        raise GuardFailed(
            "a referral already signed for cannot be sent back; record its outcome",
            "已签收的移交件不能退回，请反馈办理结果",
        )
    text = required_masked_text(reason, "reason", "退单理由")
    home = session.get(Unit, referral.from_unit_id) if referral.from_unit_id else None
    if home is None:
        raise GuardFailed("the referring unit is unknown", "找不到移交单位，无法退回")
    taker = _taker(session, case, referral, home)
    now = clock.now()
    referral.state = ReferralState.RETURNED
    referral.returned_at = now
    referral.return_reason = text
    session.add(referral)
    policy = find_policy(session, category=case.category, priority=case.priority, level=home.level)
    limits = compute_deadlines(policy, start=now)
    case.set_handling_unit(home)
    case.assignee_id = taker.id if taker else None
    case.referral_target = None
    case.referral_reason = None
    case.referral_due_at = None
    case.set_time_limits(limits)
    case.reminded_level = None
    step.record(
        "referral_returned",
        {
            "referral_id": referral.id,
            "reason": text,
            "to_unit": home.code,
            "to_unit_name": home.name_zh,
            "assignee_id": case.assignee_id,
        },
    )
    case.referral_state = ReferralState.RETURNED
    session.flush()
    return referral


def record_referral_outcome(
    session: Session,
    *,
    case_id: int,
    action_taken: str,
    outcome: ReferralOutcome,
    actor: Actor,
    expected_version: int | None,
) -> Referral:
    """The receiving unit records what it did and the outcome (反馈办理结果); the case then
    goes to its return visit."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    referral, staff = _receiving(session, case, actor)
    if referral.state != ReferralState.SIGNED:
        raise GuardFailed("sign for the referral first", "请先签收该移交件")
    text = required_masked_text(action_taken, "action_taken", "办理情况", limit=2000)
    now = clock.now()
    referral.state = ReferralState.CONCLUDED
    referral.action_taken = text
    referral.outcome = outcome
    referral.concluded_at = now
    referral.concluded_by_id = staff.id
    session.add(referral)
    case.outcome_note = text
    step.record(
        "referral_concluded",
        {
            "referral_id": referral.id,
            "outcome": outcome.value,
            "outcome_zh": outcome.zh,
            "action_taken": text,
        },
    )
    case.referral_state = ReferralState.CONCLUDED
    session.flush()
    return referral
