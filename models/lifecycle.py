"""The case state machine: the one module that writes ``Case.status``.

Every change of a case goes through :func:`apply`, which, in the caller's transaction:

1. checks the transition exists (else :class:`InvalidTransition`) and its guard
   (else :class:`GuardFailed`), and the caller's expected ``version`` (else
   :class:`ConflictError`);
2. sets the new status and stamps its timestamp (never earlier than the last event);
3. bumps ``version`` (the UPDATE is also checked against the version read, so a
   concurrent writer that slipped in between gets a conflict at flush);
4. appends one hash-chained :class:`CaseEvent` (``seq == version``);
5. writes one :class:`Outbox` row naming the workflow step that should follow.

Verbs that record something without moving the case (``reminded``,
``session_recorded``, ``follow_up_recorded``, ``duplicate_linked``, ...) are
*annotations*: same steps, status unchanged.

The figures kept from a case's rows (the three rates' deciding moments,
:mod:`models.decisions`) are recounted for the cases a transaction touched just before
it commits, in the same transaction: nothing here needs to call them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models import case_text as case_text  # registers the one writer of the search words
from models import clock, pii
from models.access import Actor as Actor  # re-exported: services and tests name it so
from models.case import Case, get_case
from models.enums import TERMINAL_STATUSES, CaseStatus, ReferralState
from models.errors import ConflictError, GuardFailed, InvalidTransition
from models.event import CaseEvent, Outbox

S = CaseStatus
GENESIS_HASH = "0" * 64
EVENT_PREFIX = "tiaojie.case."


Guard = Callable[[Case, Actor, dict[str, Any]], str | None]
"""A guard returns None when the transition may happen, else the reason in English."""


@dataclass(frozen=True)
class Transition:
    verb: str
    sources: frozenset[CaseStatus]
    target: CaseStatus | None  # None: an annotation, the status stays
    guards: tuple[Guard, ...] = ()
    roles: frozenset[str] = field(default_factory=frozenset)  # empty: anyone (incl. system)
    zh: str = ""


# --- guards -------------------------------------------------------------------


def _needs(*keys: str) -> Guard:
    def guard(_case: Case, _actor: Actor, data: dict[str, Any]) -> str | None:
        missing = [k for k in keys if data.get(k) in (None, "")]
        return f"missing {', '.join(missing)}" if missing else None

    return guard


def _has_deadlines(case: Case, _actor: Actor, _data: dict[str, Any]) -> str | None:
    return None if case.resolution_due_at and case.unit_id else "deadlines and unit not set"


def _has_assignee(case: Case, _actor: Actor, _data: dict[str, Any]) -> str | None:
    return None if case.assignee_id else "no assignee chosen"


def _has_consent(case: Case, _actor: Actor, _data: dict[str, Any]) -> str | None:
    return None if case.consent_at else "the parties' consent to mediation is not recorded"


def _has_referral(case: Case, _actor: Actor, _data: dict[str, Any]) -> str | None:
    return None if case.referral_target else "referral target not set"


def _has_merge_target(case: Case, _actor: Actor, _data: dict[str, Any]) -> str | None:
    if not case.merged_into_id or case.merged_into_id == case.id:
        return "merge target missing or the case itself"
    return None


def _has_satisfaction(case: Case, _actor: Actor, data: dict[str, Any]) -> str | None:
    if case.satisfaction is None and not data.get("unreachable"):
        return "no return visit with a satisfaction rating recorded"
    return None


def _resolution_if_direct(case: Case, _actor: Actor, data: dict[str, Any]) -> str | None:
    # Settled without formal mediation (a consultation answered, a quick fix): say how.
    if case.status == S.ASSIGNED and not data.get("resolution"):
        return "missing resolution (how the case was settled without mediation)"
    return None


def _referral_done(case: Case, _actor: Actor, _data: dict[str, Any]) -> str | None:
    # A referral is a loop: the receiving unit signs for it and records its outcome first.
    if case.status == S.REFERRED and case.referral_state in (
        ReferralState.PENDING,
        ReferralState.SIGNED,
    ):
        return "the receiving unit has not recorded what it did with the referral"
    return None


def _referral_in_hand(case: Case, _actor: Actor, _data: dict[str, Any]) -> str | None:
    return None if case.referral_state == ReferralState.SIGNED else "the referral is not signed for"


def _referral_awaits(case: Case, _actor: Actor, _data: dict[str, Any]) -> str | None:
    if case.referral_state != ReferralState.PENDING:
        return "the referral is not waiting for the receiving unit"
    return None


# --- the table of transitions ----------------------------------------------------

OPEN_WORKING = frozenset({S.TRIAGED, S.ASSIGNED, S.IN_MEDIATION, S.ESCALATED, S.REOPENED})
ALL_OPEN = frozenset(s for s in CaseStatus if s not in TERMINAL_STATUSES)
# Where the handling limit (not the mediation limit) runs: an extension is of this one.
HANDLING = frozenset({S.TRIAGED, S.ASSIGNED, S.ESCALATED, S.REFERRED})
STAFF = frozenset({"staff"})
STAFF_OR_SYSTEM = frozenset({"staff", "system"})
REVIEWABLE = frozenset({S.TRIAGED, S.ASSIGNED})
MEDIATOR_CHANGEABLE = frozenset({S.TRIAGED, S.ASSIGNED, S.IN_MEDIATION})
# The complainant or respondent acting through /r/ (models/resident_actions.py).
RESIDENT = frozenset({"resident"})

TRANSITIONS: dict[str, Transition] = {
    t.verb: t
    for t in (
        Transition(
            "triaged",
            frozenset({S.SUBMITTED, S.REOPENED}),
            S.TRIAGED,
            (_has_deadlines,),
            zh="研判分流",
        ),
        Transition(
            "assigned",
            frozenset({S.TRIAGED, S.ESCALATED, S.ASSIGNED, S.REOPENED}),
            S.ASSIGNED,
            (_has_assignee,),
            zh="派单",
        ),
        Transition(
            "mediation_started",
            frozenset({S.ASSIGNED}),
            S.IN_MEDIATION,
            (_has_consent,),
            STAFF_OR_SYSTEM,
            zh="开始调解",
        ),
        Transition(
            "agreement_signed",
            frozenset({S.IN_MEDIATION}),
            S.AGREEMENT,
            (_needs("agreement_id"),),
            STAFF,
            zh="达成协议",
        ),
        Transition(
            "mediation_failed",
            frozenset({S.IN_MEDIATION}),
            S.MEDIATION_FAILED,
            (_needs("reason"),),
            STAFF,
            zh="调解不成（终止调解）",
        ),
        Transition(
            "follow_up_due",
            frozenset({S.AGREEMENT, S.MEDIATION_FAILED, S.REFERRED, S.ASSIGNED}),
            S.FOLLOW_UP,
            (_resolution_if_direct, _referral_done),
            zh="转入回访",
        ),
        Transition(
            "closed",
            frozenset({S.FOLLOW_UP}),
            S.CLOSED,
            (_has_satisfaction,),
            STAFF_OR_SYSTEM,
            zh="办结",
        ),
        Transition(
            "escalated",
            OPEN_WORKING,
            S.ESCALATED,
            (_needs("to_unit"),),
            STAFF_OR_SYSTEM,
            zh="提级督办",
        ),
        Transition(
            "referred",
            frozenset({S.TRIAGED, S.ASSIGNED, S.IN_MEDIATION, S.MEDIATION_FAILED, S.ESCALATED}),
            S.REFERRED,
            (_has_referral,),
            STAFF_OR_SYSTEM,
            zh="移交",
        ),
        Transition(
            "merged",
            frozenset({S.SUBMITTED, S.TRIAGED, S.ASSIGNED, S.ESCALATED}),
            S.MERGED,
            (_has_merge_target,),
            STAFF_OR_SYSTEM,
            zh="合并",
        ),
        Transition(
            "withdrawn",
            ALL_OPEN - {S.SUBMITTED},
            S.WITHDRAWN,
            (_needs("reason"),),
            STAFF,
            zh="撤回",
        ),
        Transition(
            "reopened",
            frozenset({S.FOLLOW_UP, S.CLOSED}),
            S.REOPENED,
            (_needs("reason"),),
            STAFF_OR_SYSTEM,
            zh="重新办理",
        ),
        Transition(
            "handed_to_committee",
            frozenset({S.ASSIGNED}),
            S.ASSIGNED,
            (_has_assignee,),
            STAFF,
            zh="转人民调解委员会",
        ),
        # The referral loop (签收/退单/反馈) and the send-back of a wrong assignment (退单).
        Transition(
            "referral_returned",
            frozenset({S.REFERRED}),
            S.ASSIGNED,
            (_referral_awaits, _needs("reason", "to_unit"), _has_assignee),
            STAFF,
            zh="退单（退回移交单位）",
        ),
        Transition(
            "assignment_returned",
            frozenset({S.ASSIGNED}),
            S.TRIAGED,
            (_needs("reason", "to_unit"), _has_deadlines),
            STAFF,
            zh="退单（退回派单单位）",
        ),
        # Annotations: recorded on the timeline, the status stays.
        Transition(
            "referral_signed",
            frozenset({S.REFERRED}),
            None,
            (_needs("referral_id"),),
            STAFF,
            zh="签收",
        ),
        Transition(
            "referral_concluded",
            frozenset({S.REFERRED}),
            None,
            (_referral_in_hand, _needs("referral_id", "outcome")),
            STAFF,
            zh="反馈办理结果",
        ),
        Transition(
            "extension_requested",
            HANDLING,
            None,
            (_needs("extension_id", "until"),),
            STAFF,
            zh="申请延期",
        ),
        Transition(
            "extension_decided",
            HANDLING,
            None,
            (_needs("extension_id", "decision"),),
            STAFF,
            zh="延期审批",
        ),
        Transition(
            "helper_added", ALL_OPEN, None, (_needs("helper_id"),), STAFF, zh="增加协办人员"
        ),
        Transition(
            "helper_task_recorded",
            ALL_OPEN,
            None,
            (_needs("task_id"),),
            STAFF,
            zh="记录协办任务",
        ),
        Transition("consent_recorded", frozenset({S.ASSIGNED}), None, zh="记录调解同意"),
        Transition(
            "session_recorded",
            frozenset({S.IN_MEDIATION}),
            None,
            (_needs("session_id"),),
            STAFF,
            zh="记录调解笔录",
        ),
        Transition("reminded", OPEN_WORKING, None, (_needs("level"),), zh="催办"),
        Transition(
            "assessed", frozenset({S.TRIAGED}), None, (_needs("category"),), STAFF, zh="研判确认"
        ),
        Transition("reclassified", ALL_OPEN, None, (_needs("category"),), STAFF, zh="改类"),
        Transition(
            "contacted",
            OPEN_WORKING | {S.REFERRED},
            None,
            (_needs("contact_id", "method"),),
            STAFF,
            zh="首次联系",
        ),
        Transition("duplicate_linked", ALL_OPEN, None, (_needs("other_case_id"),), zh="关联重复件"),
        Transition(
            "follow_up_recorded",
            frozenset({S.FOLLOW_UP}),
            None,
            (_needs("follow_up_id"),),
            STAFF_OR_SYSTEM | RESIDENT,
            zh="记录回访",
        ),
        Transition(
            "notified",
            ALL_OPEN | TERMINAL_STATUSES,
            None,
            (_needs("notification"),),
            frozenset({"system"}),
            zh="已通知",
        ),
        Transition(
            "resident_info_added",
            ALL_OPEN,
            None,
            (_needs("party_id"),),
            RESIDENT,
            zh="当事人补充材料",
        ),
        Transition(
            "resident_consent_refused",
            frozenset({S.ASSIGNED}),
            None,
            (_needs("party_id"),),
            RESIDENT,
            zh="当事人不同意调解",
        ),
        Transition(
            "resident_terms_confirmed",
            frozenset({S.AGREEMENT, S.FOLLOW_UP}),
            None,
            (_needs("party_id"),),
            RESIDENT,
            zh="当事人确认履行情况",
        ),
        Transition(
            "times_proposed",
            frozenset({S.ASSIGNED}),
            None,
            (_needs("party_id", "slots"),),
            RESIDENT,
            zh="当事人提出调解时间",
        ),
        Transition(
            "mediation_extended",
            frozenset({S.IN_MEDIATION}),
            None,
            (_needs("until"),),
            STAFF,
            zh="延长调解期限",
        ),
        # People's Mediation Law: acceptance review, consent, mediators, confidentiality,
        # attachments and the court confirmation of an agreement (models.acceptance,
        # models.mediating, models.mediators, models.confidentiality, models.attachments,
        # models.confirmation).
        Transition(
            "acceptance_reviewed",
            REVIEWABLE,
            None,
            (_needs("review_id"),),
            STAFF,
            zh="受理审查：予以受理",
        ),
        Transition(
            "not_accepted",
            REVIEWABLE,
            S.REFERRED,
            (_needs("reason", "route"), _has_referral),
            STAFF,
            zh="受理审查：不予受理",
        ),
        Transition(
            "mediation_refused",
            frozenset({S.ASSIGNED}),
            S.MEDIATION_FAILED,
            (_needs("party_ids", "route"),),
            STAFF,
            zh="当事人拒绝调解",
        ),
        Transition(
            "mediators_named",
            MEDIATOR_CHANGEABLE,
            None,
            (_needs("staff_ids"),),
            STAFF,
            zh="指定调解员",
        ),
        Transition(
            "mediator_recused",
            MEDIATOR_CHANGEABLE,
            None,
            (_needs("staff_id", "note"),),
            STAFF,
            zh="调解员回避",
        ),
        Transition(
            "mediator_replaced",
            MEDIATOR_CHANGEABLE,
            None,
            (_needs("staff_id", "note"),),
            STAFF,
            zh="更换调解员",
        ),
        Transition("party_added", ALL_OPEN, None, (_needs("party_id"),), STAFF, zh="增加当事人"),
        Transition("party_edited", ALL_OPEN, None, (_needs("party_id"),), STAFF, zh="修改当事人"),
        Transition(
            "marked_confidential", ALL_OPEN, None, (_needs("reason"),), STAFF, zh="设为不公开"
        ),
        Transition(
            "attachment_added",
            ALL_OPEN | TERMINAL_STATUSES,
            None,
            (_needs("attachment_id"),),
            STAFF,
            zh="上传附件",
        ),
        Transition(
            "court_confirmation_recorded",
            ALL_OPEN | TERMINAL_STATUSES,
            None,
            (_needs("agreement_id", "status"),),
            STAFF,
            zh="记录司法确认",
        ),
        Transition(
            "court_confirmation_reminded",
            ALL_OPEN | TERMINAL_STATUSES,
            None,
            (_needs("agreement_id", "day"),),
            frozenset({"system"}),
            zh="司法确认提醒",
        ),
    )
}

# Timestamp stamped when a case enters a status (the creation stamps submitted_at).
STAMP: dict[CaseStatus, str] = {
    S.SUBMITTED: "submitted_at",
    S.TRIAGED: "triaged_at",
    S.ASSIGNED: "assigned_at",
    S.IN_MEDIATION: "in_mediation_at",
    S.AGREEMENT: "agreement_at",
    S.MEDIATION_FAILED: "mediation_failed_at",
    S.FOLLOW_UP: "follow_up_at",
    S.CLOSED: "closed_at",
    S.ESCALATED: "escalated_at",
    S.REFERRED: "referred_at",
    S.MERGED: "merged_at",
    S.WITHDRAWN: "withdrawn_at",
    S.REOPENED: "reopened_at",
}

# Which workflow step an event asks for next (None: the event only informs).
NEXT_STEP: dict[str, str | None] = {
    "submitted": "intake",
    "triaged": "assignment",
    "escalated": "assignment",
    "reopened": "intake",
    "assigned": "notify",
    "consent_recorded": "mediation",
    "acceptance_reviewed": "mediation",
    "mediators_named": "mediation",
    "not_accepted": "follow_up",
    "mediation_refused": "follow_up",
    "court_confirmation_reminded": "notify",
    "mediation_started": "notify",
    "agreement_signed": "follow_up",
    "mediation_failed": "follow_up",
    "referred": "follow_up",
    "follow_up_recorded": "follow_up",
    "reminded": "notify",
    "assessed": "assignment",
    "referral_returned": "notify",
    "handed_to_committee": "notify",
    "referral_concluded": "follow_up",
    "assignment_returned": "assignment",
}


def check_version(case: Case, expected_version: int | None) -> None:
    """:class:`ConflictError` unless the caller saw the case's current version (None:
    the caller does not say, e.g. the workflow). Services call it before they change
    anything, so that a stale request writes nothing."""
    if expected_version is not None and expected_version != case.version:
        raise ConflictError(
            f"case {case.number} is at version {case.version}, not {expected_version}; "
            "reload and try again",
            f"案件 {case.number} 已被修改（版本 {case.version}），请刷新后重试。",
        )


@dataclass(frozen=True)
class Step:
    """One person's change to one case, in the order every case service keeps:

    1. :func:`step` / :func:`step_on` load the case and check the caller's version
       before anything else, so a stale request is refused before it writes;
    2. the service checks its own rules and sets the case's fields;
    3. :meth:`record` applies the verb through :func:`apply` (status, version, event,
       outbox, with the same version check) and flushes; the boundary commits.
    """

    session: Session
    case: Case
    actor: Actor
    expected_version: int | None

    def record(
        self, verb: str, data: dict[str, Any] | None = None, *, at: datetime | None = None
    ) -> CaseEvent:
        """Apply ``verb`` to the case with ``data`` as the event's data, then flush."""
        event = apply(
            self.session,
            case=self.case,
            verb=verb,
            actor=self.actor,
            expected_version=self.expected_version,
            data=data,
            at=at,
        )
        self.session.flush()
        return event


def step(session: Session, *, case_id: int, actor: Actor, expected_version: int | None) -> Step:
    """Begin a :class:`Step` on the case with this id (:class:`~models.errors.NotFound`
    if there is none; :class:`ConflictError` if the caller's version is stale)."""
    return step_on(session, get_case(session, case_id=case_id), actor, expected_version)


def step_on(session: Session, case: Case, actor: Actor, expected_version: int | None) -> Step:
    """Begin a :class:`Step` on a case already loaded (:class:`ConflictError` if the
    caller's version is stale)."""
    check_version(case, expected_version)
    return Step(session, case, actor, expected_version)


def require_staff(actor: Actor, what_en: str, what_zh: str) -> int:
    """The one rule for "staff only" in a service: :class:`GuardFailed` unless a member
    of staff (with a staff id) acts, the answer :func:`apply` gives for a staff-only
    transition; a service checks it before it writes anything. Answers the staff id."""
    if actor.kind != "staff" or actor.staff_id is None:
        raise GuardFailed(f"{what_en} must be done by staff", f"「{what_zh}」须由工作人员操作。")
    return actor.staff_id


def require_status(case: Case, allowed: Collection[CaseStatus], what_en: str, what_zh: str) -> None:
    """:class:`InvalidTransition` unless the case's status is one of ``allowed``: a
    service checks it before it writes anything, in the words :func:`apply` uses."""
    if case.status not in allowed:
        raise InvalidTransition(
            f"cannot {what_en} a case that is {case.status.value}",
            f"案件当前状态为「{case.status.zh}」，不能{what_zh}。",
        )


def allowed_verbs(case: Case) -> list[str]:
    """Verbs whose source includes the case's current status (guards not evaluated)."""
    return [v for v, t in TRANSITIONS.items() if case.status in t.sources]


def event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    payload = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


def event_body(event: CaseEvent) -> dict[str, Any]:
    return {
        "case_id": event.case_id,
        "seq": event.seq,
        "verb": event.verb,
        "from": event.from_status.value if event.from_status else None,
        "to": event.to_status.value,
        "actor": event.actor,
        "at": clock.ensure_utc(event.at).isoformat(),
        "data": event.data,
    }


def _monotonic_now(case: Case, at: datetime | None) -> datetime:
    moment = clock.ensure_utc(at or clock.now())
    last = clock.ensure_utc(case.updated_at) if case.updated_at else moment
    return max(moment, last)


def _append(
    session: Session,
    *,
    case: Case,
    verb: str,
    from_status: CaseStatus | None,
    actor: Actor,
    at: datetime,
    data: dict[str, Any],
) -> CaseEvent:
    assert case.id is not None, "flush the case before appending events"
    event = CaseEvent(
        case_id=case.id,
        seq=case.version,
        verb=verb,
        from_status=from_status,
        to_status=case.status,
        actor=actor.ref,
        at=at,
        data=data,
        prev_hash=case.last_hash or GENESIS_HASH,
        hash="",
    )
    event.hash = event_hash(event.prev_hash, event_body(event))
    case.last_hash = event.hash
    session.add(event)
    outbox = Outbox(
        case_id=case.id,
        verb=verb,
        step=NEXT_STEP.get(verb),
        idempotency_key=f"{case.id}:{event.seq}:{verb}",
        payload={"case_id": case.id, "seq": event.seq},
        created_at=at,
        available_at=at,
    )
    outbox.event = event  # the next flush writes both, the event first
    session.add(outbox)
    return event


def record_submission(session: Session, *, case: Case, actor: Actor) -> CaseEvent:
    """The first event of a new case (version 1). The case must be flushed already."""
    if case.version != 1 or case.last_hash:
        raise InvalidTransition(f"case {case.number} was already submitted")
    case.status = S.SUBMITTED
    case.is_open = True
    at = clock.ensure_utc(case.created_at)
    case.submitted_at = at
    case.updated_at = at
    return _append(
        session, case=case, verb="submitted", from_status=None, actor=actor, at=at, data={}
    )


def apply(
    session: Session,
    *,
    case: Case,
    verb: str,
    actor: Actor,
    expected_version: int | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> CaseEvent:
    """Carry out one transition or annotation; see the module docstring."""
    # Events are append-only and outlive retention: phone and ID numbers typed into
    # free text (reasons, notes) are masked before they are hashed into the chain.
    data = {k: pii.scrub_text(v) if isinstance(v, str) else v for k, v in (data or {}).items()}
    transition = TRANSITIONS.get(verb)
    if transition is None:
        raise InvalidTransition(f"unknown transition {verb!r}", f"未知的操作：{verb}")
    check_version(case, expected_version)
    require_status(case, transition.sources, verb, f"执行「{transition.zh}」")
    if transition.roles and actor.kind not in transition.roles:
        raise GuardFailed(
            f"{verb} must be done by {'/'.join(sorted(transition.roles))}",
            f"「{transition.zh}」须由工作人员操作。",
        )
    for guard in transition.guards:
        reason = guard(case, actor, data)
        if reason is not None:
            raise GuardFailed(f"cannot {verb}: {reason}", f"不能执行「{transition.zh}」：{reason}")

    at_ = _monotonic_now(case, at)
    from_status = case.status
    if transition.target is not None:
        case.status = transition.target
        case.is_open = transition.target not in TERMINAL_STATUSES
        setattr(case, STAMP[transition.target], at_)
    case.updated_at = at_
    case.version += 1
    session.add(case)
    return _append(
        session, case=case, verb=verb, from_status=from_status, actor=actor, at=at_, data=data
    )


@dataclass(frozen=True)
class ChainProblem:
    case_id: int
    seq: int
    event_id: int | None
    reason: str


def verify_chain(session: Session, *, case_id: int) -> list[ChainProblem]:
    """Walk one case's events; report every break of sequence or hash."""
    events = session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.seq))
    ).all()
    problems: list[ChainProblem] = []
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            problems.append(ChainProblem(case_id, event.seq, event.id, "sequence gap"))
        if event.prev_hash != prev:
            problems.append(ChainProblem(case_id, event.seq, event.id, "previous hash differs"))
        if event_hash(event.prev_hash, event_body(event)) != event.hash:
            problems.append(ChainProblem(case_id, event.seq, event.id, "content edited"))
        prev = event.hash
    case = session.get(Case, case_id)
    if case is not None and events and case.last_hash != prev:
        problems.append(ChainProblem(case_id, len(events), None, "last event missing"))
    return problems
