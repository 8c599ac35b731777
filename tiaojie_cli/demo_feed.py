"""The live demo of ``tiaojie up --demo``: new complaints over time, and the mediators'
part simulated, so that a newcomer watches cases move through intake, assignment,
mediation, follow-up and escalation within minutes.

It acts as a person does on the case page: every step goes through the rule book
(:func:`models.actions.run`, the path of the REST routes and the web page), so it is
refused what that person would be refused, and is a normal transition with its event and
outbox row, to which the workflows react exactly as they would to a real mediator.
Whatever the demo does in a mediator's place is written with the mark 「演示模拟 simulated
by the demo」 in the minutes, the agreement and the return-visit notes, so it is never
mistaken for real work.

One open case in three is deliberately left alone: those run late and show reminders
and escalation up the unit tree. Progress is kept in ``run/demo-feed.json`` so that a
second ``tiaojie up --demo`` carries on where the first one stopped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import case as sql_case
from sqlmodel import Session, col, select

from models import actions, clock
from models.access import Actor, principal_for_staff
from models.case import Case
from models.cases import create_case
from models.db import write_session
from models.enums import (
    CaseStatus,
    FollowUpOutcome,
    ReferralOutcome,
    ReferralState,
    ReferralTarget,
    ResolvedAnswer,
    SatisfiedAnswer,
    StaffRole,
)
from models.errors import TiaojieError
from models.staff import Staff

SIMULATED = "【演示模拟 simulated by the demo】"
LEAVE_ALONE_EVERY = 3  # case ids divisible by this are left to run late and escalate

# The furthest-along case takes the next step: a newcomer watches a few cases live a
# whole life (mediation, agreement, return visit) in minutes. Oldest first, each of the
# hundreds of waiting cases took one step in turn and none reached its agreement for an
# hour.
_STAGE = {
    CaseStatus.FOLLOW_UP: 0,
    CaseStatus.IN_MEDIATION: 1,
    CaseStatus.REFERRED: 2,
    CaseStatus.ASSIGNED: 3,
}
FURTHEST_FIRST = (
    sql_case(_STAGE, value=col(Case.status), else_=len(_STAGE)),
    col(Case.consent_at).is_(None),
    col(Case.accepted_at).is_(None),
)


class DemoFeeder:
    """A daemon thread: one new complaint every ``pace_s`` seconds, and a few simulated
    mediator steps on cases that have waited at least ``dwell_s`` seconds."""

    def __init__(
        self,
        *,
        state_file: Path,
        pace_s: float = 6.0,
        dwell_s: float | None = None,
        steps_per_tick: int = 3,
        log: Callable[[str], None] = print,
        engine: Engine | None = None,
        case_url: Callable[[str], str] | None = None,
    ) -> None:
        self.engine = engine  # None: the configured database
        self.case_url = case_url  # a step's line ends with its case page, to open it
        self.state_file = state_file
        self.pace_s = pace_s
        self.dwell_s = dwell_s if dwell_s is not None else 2 * pace_s
        self.steps_per_tick = steps_per_tick
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-feed", daemon=True)

    # -- life ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.pace_s):
            try:
                self.tick()
            except Exception as exc:  # keep the demo going; say what happened
                self.log(f"demo 演示: {type(exc).__name__}: {exc}")

    # -- state -----------------------------------------------------------------------

    def _next_index(self) -> int:
        try:
            return int(json.loads(self.state_file.read_text())["next_index"])
        except (FileNotFoundError, ValueError, KeyError):
            return 0

    def _save_index(self, index: int) -> None:
        self.state_file.write_text(json.dumps({"next_index": index}))

    # -- one step --------------------------------------------------------------------

    def tick(self) -> None:
        self.feed_one()
        for _ in range(self.steps_per_tick):
            if not self.simulate_one():
                break

    def feed_one(self) -> str | None:
        """Record the next sample complaint as whoever would file it (Open311 ones as
        the public); None if it was refused. A refused one is told once and passed over,
        never tried again at every tick."""
        from models.demo import FIRST_BATCH, demo_complaints, recorder_of

        complaints = demo_complaints()
        live = complaints[FIRST_BATCH:] or complaints
        index = self._next_index()
        data = live[index % len(live)]
        number: str | None = None
        try:
            with write_session(self.engine) as session:
                actor, recorder = recorder_of(session, data)
                case = create_case(session, data=data, actor=actor, created_by_id=recorder)
                number = case.number
        except TiaojieError as exc:
            self.log(
                f"demo 演示: sample complaint {index} refused, skipped 样例投诉被拒绝，已跳过: "
                f"{exc}"
            )
        self._save_index(index + 1)
        if number is not None:
            self.log(
                f"demo 演示: new complaint 新投诉 {number} ({data.category.zh}, "
                f"{data.channel.value})"
            )
        return number

    def _candidates(self, session: Session) -> list[Case]:
        waited = clock.now() - timedelta(seconds=self.dwell_s)
        statuses = (CaseStatus.ASSIGNED, CaseStatus.IN_MEDIATION, CaseStatus.FOLLOW_UP)
        rows = session.exec(
            select(Case)
            .where(
                (col(Case.status).in_(statuses) & col(Case.assignee_id).is_not(None))
                | (col(Case.status) == CaseStatus.REFERRED)
            )
            .where(col(Case.updated_at) <= waited)
            # Left-alone cases are skipped in the query, not after it: they grow oldest,
            # and would otherwise fill the 50 and stop the demo.
            .where(col(Case.id) % LEAVE_ALONE_EVERY != 0)
            .order_by(*FURTHEST_FIRST, col(Case.updated_at))
            .limit(50)
        ).all()
        return list(rows)

    def simulate_one(self) -> bool:
        """Take the next simulated mediator step on one waiting case; False if none."""
        with write_session(self.engine) as session:
            for case in self._candidates(session):
                actor = _assignee_actor(session, case)
                if actor is None:
                    continue
                try:
                    done = _step(session, case, actor)
                except TiaojieError:
                    session.rollback()
                    continue
                if done:
                    link = f" {self.case_url(case.number)}" if self.case_url else ""
                    self.log(f"demo 演示: {case.number} {done} {SIMULATED}{link}")
                    return True
        return False


def _assignee_actor(session: Session, case: Case) -> Actor | None:
    """The assignee; for a referral waiting to be signed for, a person of the receiving
    unit (the agency signs for it, then records its outcome)."""
    staff = session.get(Staff, case.assignee_id) if case.assignee_id else None
    if staff is None and case.status == CaseStatus.REFERRED and case.unit_id is not None:
        staff = session.exec(
            select(Staff).where(Staff.unit_id == case.unit_id, col(Staff.active))
        ).first()
    if staff is None:
        return None
    return principal_for_staff(session, staff)


def _visitor_actor(session: Session, case: Case, visitor_id: int | None) -> Actor | None:
    """The visitor named on the return visit (a return visitor above the unit)."""
    staff = session.get(Staff, visitor_id) if visitor_id else None
    if staff is None:
        return None
    return principal_for_staff(session, staff)


def _act(session: Session, case: Case, actor: Actor, name: str, **fields: Any) -> None:
    """Take action ``name`` as ``actor`` would on the case page: the action's own body,
    validated, at the case's current version, through :func:`models.actions.run` (a
    refusal is a :class:`~models.errors.TiaojieError`, as for a person)."""
    body = actions.ACTIONS[name].body.model_validate({"version": case.version, **fields})
    actions.run(session, actor, case, name, body)


def _committee_step(session: Session, case: Case, actor: Actor) -> str | None:
    """Acceptance review, then a mediator named (the assignee when a mediator, else a
    mediator of the handling unit), as a committee would before consent."""
    from models import mediators

    assert case.id is not None
    if case.accepted_at is None:
        _act(
            session,
            case,
            actor,
            "acceptance",
            accepted=True,
            note=f"{SIMULATED} 属于人民调解受理范围",
        )
        return "accepted 受理审查：予以受理"
    if mediators.serving_ids(session, case_id=case.id):
        return None
    chosen = session.exec(
        select(Staff.id)
        .where(
            Staff.unit_id == case.unit_id,
            Staff.role == StaffRole.MEDIATOR,
            col(Staff.active).is_(True),
        )
        .order_by(col(Staff.id))
    ).first()
    assignee = session.get(Staff, case.assignee_id) if case.assignee_id else None
    if assignee is not None and assignee.role == StaffRole.MEDIATOR:
        chosen = assignee.id
    if chosen is None:
        return None
    _act(session, case, actor, "mediators", staff_ids=[chosen])
    return "mediator named 指定调解员"


def _mediator_actor(session: Session, case: Case) -> Actor | None:
    from models.mediators import serving_ids

    assert case.id is not None
    ids = serving_ids(session, case_id=case.id)
    staff = session.get(Staff, ids[0]) if ids else None
    if staff is None:
        return None
    return principal_for_staff(session, staff)


def _step(session: Session, case: Case, actor: Actor) -> str | None:
    from models import follow_ups, mediating

    assert case.id is not None
    now = clock.now()
    if case.status == CaseStatus.ASSIGNED:
        before = _committee_step(session, case, actor)
        if before is not None:
            return before
        if case.consent_at is None:
            _act(session, case, actor, "consent")
            return "consent recorded 记录调解同意"
        _act(session, case, actor, "mediation/start")
        return "mediation started 开始调解"
    if case.status == CaseStatus.IN_MEDIATION:
        actor = _mediator_actor(session, case) or actor
        if not mediating.list_sessions(session, case_id=case.id):
            _act(
                session,
                case,
                actor,
                "sessions",
                held_at=now - timedelta(minutes=1),
                place="社区调解室 community mediation room",
                participants="双方当事人、调解员 both parties and the mediator",
                minutes=f"{SIMULATED} 双方陈述诉求，调解员释明法律规定，约定再次协商。",
            )
            return "session recorded 记录调解笔录"
        if case.id % 4 == 1:
            _act(
                session,
                case,
                actor,
                "failure",
                reason=f"{SIMULATED} 双方分歧较大，调解不成，终止调解，告知可申请仲裁。",
                referral=ReferralTarget.ARBITRATION,
            )
            return "mediation failed, referred to arbitration 调解不成，移交劳动人事争议仲裁"
        today = clock.to_local(now).date()
        _act(
            session,
            case,
            actor,
            "agreement",
            summary=f"{SIMULATED} 双方自愿达成调解协议。",
            terms=[{"text": "被申请人按约履行（演示）", "due_on": today + timedelta(days=14)}],
        )
        return "agreement signed 达成协议"
    if case.status == CaseStatus.REFERRED:
        return _referral_step(session, case, actor)
    if case.status == CaseStatus.FOLLOW_UP:
        open_visits = [
            v for v in follow_ups.list_follow_ups(session, case_id=case.id) if v.done_at is None
        ]
        if not open_visits:
            return None  # the follow-up step has not scheduled the visits yet
        satisfied = case.id % 7 != 2
        visitor = _visitor_actor(session, case, open_visits[0].visitor_id) or actor
        _act(
            session,
            case,
            visitor,
            "follow-ups",
            outcome=FollowUpOutcome.CARRIED_OUT if satisfied else FollowUpOutcome.PARTLY,
            resolved=ResolvedAnswer.RESOLVED if satisfied else ResolvedAnswer.UNRESOLVED,
            satisfied=SatisfiedAnswer.SATISFIED if satisfied else SatisfiedAnswer.DISSATISFIED,
            unit_at_fault=not satisfied,
            notes=f"{SIMULATED} 回访当事人。",
            follow_up_id=open_visits[0].id,
        )
        return "return visit recorded 记录回访"
    return None


def _referral_step(session: Session, case: Case, actor: Actor) -> str | None:
    """The agency answers a referral: it signs for it (签收), then records what it did."""
    if case.referral_state == ReferralState.PENDING:
        _act(session, case, actor, "referral/sign")
        return "referral signed for 签收"
    if case.referral_state == ReferralState.SIGNED:
        _act(
            session,
            case,
            actor,
            "referral/outcome",
            action_taken=f"{SIMULATED} 部门依职权核查处理，已书面答复当事人。",
            outcome=ReferralOutcome.RESOLVED,
        )
        return "referral outcome recorded 反馈办理结果"
    return None


__all__ = ["SIMULATED", "DemoFeeder"]
