"""A Hypothesis state machine drives one case through random verbs (legal and not),
random guard data and a virtual clock that may jump backwards. After every step:
refused transitions changed nothing; a successful one appended exactly one event and
one outbox row; the hash chain verifies; version == last event seq; times never go
backwards."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func
from sqlmodel import Session, col, select

from models import clock
from models.db import build_engine
from models.enums import TERMINAL_STATUSES, CaseStatus, ReferralState, ReferralTarget, StaffRole
from models.errors import ConflictError, GuardFailed, InvalidTransition
from models.event import CaseEvent, Outbox
from models.lifecycle import STAMP, TRANSITIONS, Actor, verify_chain
from models.tables import metadata
from tests.conftest import T0
from tests.factories import build_city, make_case

S = CaseStatus
VERBS = [*sorted(TRANSITIONS), "teleported", "submitted", ""]
GUARD_FIELDS = ("unit", "deadline", "assignee", "consent", "referral", "merge", "satisfaction")
DATA_KEYS = (
    "reason",
    "resolution",
    "to_unit",
    "agreement_id",
    "session_id",
    "level",
    "other_case_id",
    "follow_up_id",
    "notification",
    "until",
    "unreachable",
    "review_id",
    "route",
    "party_ids",
    "staff_ids",
    "staff_id",
    "note",
    "party_id",
    "attachment_id",
    "status",
    "day",
    "category",
    "contact_id",
    "method",
    "referral_id",
    "outcome",
    "extension_id",
    "decision",
    "helper_id",
    "task_id",
)

# What each verb needs recorded, written independently of models.lifecycle: case fields
# that must be set, and data keys that must be present and non-empty.
NEEDS_FIELDS: dict[str, tuple[str, ...]] = {
    "triaged": ("unit", "deadline"),
    "assigned": ("assignee",),
    "mediation_started": ("consent",),
    "referred": ("referral",),
    "not_accepted": ("referral",),
    "merged": ("merge",),
    "referral_returned": ("assignee",),
    "handed_to_committee": ("assignee",),
    "assignment_returned": ("unit", "deadline"),
}
NEEDS_DATA: dict[str, tuple[str, ...]] = {
    "agreement_signed": ("agreement_id",),
    "mediation_failed": ("reason",),
    "escalated": ("to_unit",),
    "withdrawn": ("reason",),
    "reopened": ("reason",),
    "session_recorded": ("session_id",),
    "reminded": ("level",),
    "duplicate_linked": ("other_case_id",),
    "follow_up_recorded": ("follow_up_id",),
    "notified": ("notification",),
    "mediation_extended": ("until",),
    "acceptance_reviewed": ("review_id",),
    "not_accepted": ("reason", "route"),
    "mediation_refused": ("party_ids", "route"),
    "mediators_named": ("staff_ids",),
    "mediator_recused": ("staff_id", "note"),
    "mediator_replaced": ("staff_id", "note"),
    "party_added": ("party_id",),
    "party_edited": ("party_id",),
    "marked_confidential": ("reason",),
    "attachment_added": ("attachment_id",),
    "court_confirmation_recorded": ("agreement_id", "status"),
    "court_confirmation_reminded": ("agreement_id", "day"),
    "assessed": ("category",),
    "reclassified": ("category",),
    "contacted": ("contact_id", "method"),
    "referral_returned": ("reason", "to_unit"),
    "assignment_returned": ("reason", "to_unit"),
    "referral_signed": ("referral_id",),
    "referral_concluded": ("referral_id", "outcome"),
    "extension_requested": ("extension_id", "until"),
    "extension_decided": ("extension_id", "decision"),
    "helper_added": ("helper_id",),
    "helper_task_recorded": ("task_id",),
}
# The referral loop: the state the receiving unit's answer needs.
NEEDS_REFERRAL_STATE: dict[str, ReferralState] = {
    "referral_returned": ReferralState.PENDING,
    "referral_concluded": ReferralState.SIGNED,
}

actors = st.sampled_from(
    [
        Actor(kind="staff", staff_id=1, role=StaffRole.MEDIATOR),
        Actor.system(),
        Actor.public(),
    ]
)
data_values = st.one_of(
    st.none(), st.just(""), st.text(min_size=1, max_size=12), st.integers(1, 99), st.just(True)
)
data_dicts = st.dictionaries(st.sampled_from(DATA_KEYS), data_values, max_size=5)


def _filled(value: Any) -> bool:
    return value not in (None, "")


class CaseLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.previous_clock = clock.get_clock()
        self.clock = clock.VirtualClock(T0)
        clock.set_clock(self.clock)
        self.engine = build_engine("sqlite://")
        metadata.create_all(self.engine)
        self.session = Session(self.engine, expire_on_commit=False)
        self.city = build_city(self.session)
        self.other = make_case(self.session)
        self.case = make_case(self.session)
        self.session.commit()
        self.last_at: datetime = clock.ensure_utc(self.case.updated_at)
        self.successes = 0

    def teardown(self) -> None:
        self.session.close()
        self.engine.dispose()
        clock.set_clock(self.previous_clock)

    # --- helpers -----------------------------------------------------------------

    def _counts(self) -> tuple[int, int]:
        events = self.session.exec(
            select(func.count()).where(CaseEvent.case_id == self.case.id)
        ).one()
        outbox = self.session.exec(select(func.count()).where(Outbox.case_id == self.case.id)).one()
        return int(events), int(outbox)

    def _snapshot(self) -> dict[str, Any]:
        case = self.case
        return {
            "status": case.status,
            "version": case.version,
            "last_hash": case.last_hash,
            "updated_at": case.updated_at,
            "stamps": {name: getattr(case, name) for name in STAMP.values()},
            "counts": self._counts(),
        }

    def _field_set(self, name: str) -> bool:
        c = self.case
        return {
            "unit": c.unit_id is not None,
            "deadline": c.resolution_due_at is not None,
            "assignee": c.assignee_id is not None,
            "consent": c.consent_at is not None,
            "referral": c.referral_target is not None,
            "merge": c.merged_into_id is not None and c.merged_into_id != c.id,
            "satisfaction": c.satisfaction is not None,
        }[name]

    def _may(self, verb: str, actor: Actor, data: dict[str, Any]) -> tuple[bool, type[Exception]]:
        """Independent expectation: may ``verb`` happen now, and if not, which error?"""
        transition = TRANSITIONS.get(verb)
        if transition is None or self.case.status not in transition.sources:
            return False, InvalidTransition
        if transition.roles and actor.kind not in transition.roles:
            return False, GuardFailed
        if not all(self._field_set(f) for f in NEEDS_FIELDS.get(verb, ())):
            return False, GuardFailed
        if not all(_filled(data.get(k)) for k in NEEDS_DATA.get(verb, ())):
            return False, GuardFailed
        wanted = NEEDS_REFERRAL_STATE.get(verb)
        if wanted is not None and self.case.referral_state != wanted:
            return False, GuardFailed
        if (
            verb == "follow_up_due"
            and self.case.status == S.REFERRED
            and self.case.referral_state in (ReferralState.PENDING, ReferralState.SIGNED)
        ):
            return False, GuardFailed
        if verb == "closed" and not (self._field_set("satisfaction") or data.get("unreachable")):
            return False, GuardFailed
        if (
            verb == "follow_up_due"
            and self.case.status == S.ASSIGNED
            and not _filled(data.get("resolution"))
        ):
            return False, GuardFailed
        return True, Exception

    # --- rules ---------------------------------------------------------------------

    @initialize()
    def starts_submitted(self) -> None:
        assert self.case.status == S.SUBMITTED and self.case.version == 1

    @rule(minutes=st.integers(-5 * 24 * 60, 5 * 24 * 60))
    def move_clock(self, minutes: int) -> None:
        """The virtual clock may even go backwards (a corrected server clock)."""
        self.clock.set(self.clock.now() + timedelta(minutes=minutes))

    @rule(name=st.sampled_from(GUARD_FIELDS), present=st.booleans())
    def set_guard_field(self, name: str, present: bool) -> None:
        c = self.case
        now = clock.now()
        match name:
            case "unit":
                c.unit_id = self.city.unit("CMA").id if present else None
            case "deadline":
                c.resolution_due_at = now + timedelta(days=10) if present else None
            case "assignee":
                c.assignee_id = self.city.staff["mediatorA"].id if present else None
            case "consent":
                c.consent_at = now if present else None
            case "referral":
                c.referral_target = ReferralTarget.AGENCY if present else None
            case "merge":
                c.merged_into_id = self.other.id if present else None
            case "satisfaction":
                c.satisfaction = 4 if present else None
        self.session.add(c)
        self.session.flush()

    @rule(state=st.sampled_from([None, *ReferralState]))
    def set_referral_state(self, state: ReferralState | None) -> None:
        self.case.referral_state = state
        self.session.add(self.case)
        self.session.flush()

    @rule(
        verb=st.sampled_from(VERBS),
        actor=actors,
        data=data_dicts,
        at_offset=st.none() | st.integers(-3 * 24 * 60, 60),
    )
    def apply_verb(
        self, verb: str, actor: Actor, data: dict[str, Any], at_offset: int | None
    ) -> None:
        at = None if at_offset is None else clock.now() + timedelta(minutes=at_offset)
        self._apply_and_check(verb, actor, data, at)

    @rule(choice=st.integers(0, 1000), at_offset=st.none() | st.integers(-3 * 24 * 60, 60))
    def advance(self, choice: int, at_offset: int | None) -> None:
        """Take a legal path with its guards satisfied, so that the whole life of a case
        (mediation, agreement, follow-up, closure, reopening) is explored."""
        from models import lifecycle

        verbs = [v for v in lifecycle.allowed_verbs(self.case) if v not in ("merged", "withdrawn")]
        if not verbs:
            return
        verb = verbs[choice % len(verbs)]
        for name in NEEDS_FIELDS.get(verb, ()):
            self.set_guard_field(name, True)
        if verb == "closed":
            self.set_guard_field("satisfaction", True)
        actor = Actor.system() if verb == "notified" else Actor(kind="staff", staff_id=1)
        data: dict[str, Any] = {k: "x" for k in DATA_KEYS}
        at = None if at_offset is None else clock.now() + timedelta(minutes=at_offset)
        self._apply_and_check(verb, actor, data, at)

    def _apply_and_check(
        self, verb: str, actor: Actor, data: dict[str, Any], at: datetime | None
    ) -> None:
        from models import lifecycle

        before = self._snapshot()
        allowed, error = self._may(verb, actor, data)
        try:
            event = lifecycle.apply(
                self.session,
                case=self.case,
                verb=verb,
                actor=actor,
                expected_version=self.case.version,
                data=data,
                at=at,
            )
        except (InvalidTransition, GuardFailed) as exc:
            assert not allowed, f"{verb} from {before['status']} refused: {exc}"
            assert isinstance(exc, error), (verb, before["status"], type(exc), error)
            assert self._snapshot() == before, "a refused transition changed the case"
            return
        assert allowed, f"{verb} from {before['status']} with {data} was allowed"
        self.session.flush()
        self.successes += 1
        transition = TRANSITIONS[verb]
        target = transition.target or before["status"]
        assert self.case.status == target
        assert self.case.is_open == (target not in TERMINAL_STATUSES)
        assert self.case.version == before["version"] + 1
        events, outbox = self._counts()
        assert (events, outbox) == (before["counts"][0] + 1, before["counts"][1] + 1)
        assert event.seq == self.case.version and event.verb == verb
        assert event.from_status == before["status"] and event.to_status == target
        assert event.actor == actor.ref
        at_ = clock.ensure_utc(event.at)
        assert at_ >= self.last_at, "event time went backwards"
        assert clock.ensure_utc(self.case.updated_at) == at_
        if transition.target is not None:
            assert clock.ensure_utc(getattr(self.case, STAMP[transition.target])) == at_
        # Stamps of other states are untouched.
        for status, name in STAMP.items():
            if status != transition.target:
                assert getattr(self.case, name) == before["stamps"][name]
        self.last_at = at_

    @rule(offset=st.sampled_from([-2, -1, 1, 5]), verb=st.sampled_from(sorted(TRANSITIONS)))
    def stale_version_conflicts(self, offset: int, verb: str) -> None:
        from models import lifecycle

        before = self._snapshot()
        try:
            lifecycle.apply(
                self.session,
                case=self.case,
                verb=verb,
                actor=Actor.system(),
                expected_version=self.case.version + offset,
                data={k: "x" for k in DATA_KEYS},
            )
        except ConflictError:
            pass
        else:
            raise AssertionError("a stale expected_version was accepted")
        assert self._snapshot() == before

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def chain_intact_and_version_matches(self) -> None:
        assert self.case.id is not None
        assert verify_chain(self.session, case_id=self.case.id) == []
        events = self.session.exec(
            select(CaseEvent).where(CaseEvent.case_id == self.case.id).order_by(col(CaseEvent.seq))
        ).all()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert self.case.version == events[-1].seq
        assert self.case.last_hash == events[-1].hash
        times = [clock.ensure_utc(e.at) for e in events]
        assert times == sorted(times), "event times go backwards"
        for name in STAMP.values():
            stamp = getattr(self.case, name)
            if stamp is not None:
                assert clock.ensure_utc(stamp) <= clock.ensure_utc(self.case.updated_at)


CaseLifecycle.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCaseLifecycle = CaseLifecycle.TestCase


# What may still be recorded on a case after it ended: the scans filed to its archive
# and its agreement's court confirmation, which runs 30 days past the agreement.
AFTER_THE_END = {"notified", "attachment_added", "court_confirmation_recorded"}
AFTER_THE_END |= {"court_confirmation_reminded"}


def test_terminal_cases_only_reopen_or_notify() -> None:
    """Plain facts of the design, independent of the machine above."""
    for verb, transition in TRANSITIONS.items():
        if S.CLOSED in transition.sources:
            assert verb in {"reopened", *AFTER_THE_END}, verb
            assert transition.target is None or verb == "reopened", verb
        if S.MERGED in transition.sources or S.WITHDRAWN in transition.sources:
            assert verb in AFTER_THE_END, verb
    assert S.SUBMITTED not in TRANSITIONS["withdrawn"].sources
