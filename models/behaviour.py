"""A seeded model of how people at the grassroots work cases, and a replay that drives
the domain with it on the virtual clock.

:class:`BehaviourModel` says how long staff take and how often things go each way: the
grid or community worker's first contact, settling a small matter directly or handing
the case to the mediation committee, the parties' consent, the mediation's length and
success per category, the agency's signature and outcome, the return visit. The figures
are assumptions of the kind a street's mediation centre would give (every one is a
field, so that a policy simulation can vary them), not measurements.

:class:`Replay` feeds complaints in at their arrival times and, tick by tick, does what
the flows and the people would do: triage, assignment, the escalation sweep, and each
person's next step, all through the same domain services the web pages and flows call
(:mod:`models.triage`, :mod:`models.routing`, :mod:`models.handover`,
:mod:`models.acceptance`, :mod:`models.mediators`, :mod:`models.mediating`,
:mod:`models.referrals`, :mod:`models.follow_ups`, :mod:`models.escalation`). Nothing
here writes a case directly.

It is plain Python over one SQLModel session: the replay test runs it on in-memory
SQLite, and a policy simulator can run it against other time-limit tables.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from models import (
    clock,
    escalation,
    follow_ups,
    mediators,
    referrals,
    routing,
    triage,
)
from models.access import principal_for_staff
from models.case import Case, CaseCreate
from models.cases import create_case_with_parties
from models.enums import (
    CaseStatus,
    Category,
    ContactMethod,
    FollowUpOutcome,
    Priority,
    ReferralOutcome,
    ReferralState,
    ReferralTarget,
    ResolvedAnswer,
    SatisfiedAnswer,
    StaffRole,
    UnitLevel,
)
from models.errors import TiaojieError
from models.follow_up import FollowUp
from models.lifecycle import Actor
from models.mediation import TermCreate
from models.referral import Referral
from models.staff import Staff
from models.unit import Unit

S = CaseStatus
FIRST_CONTACT = frozenset({StaffRole.GRID_WORKER, StaffRole.COMMUNITY_WORKER})


@dataclass(frozen=True)
class CategoryRates:
    """How cases of one category tend to go at the grassroots."""

    settle_directly: float  # the first-contact worker settles it without mediation
    consent: float  # the parties agree to mediation
    success: float  # a mediation ends in a signed agreement
    mediation_days: tuple[float, float]  # working days from the start to the outcome


EVERYDAY = CategoryRates(settle_directly=0.45, consent=0.92, success=0.85, mediation_days=(1, 6))
DEFAULT_RATES: dict[Category, CategoryRates] = {
    Category.NEIGHBOUR: EVERYDAY,
    Category.FAMILY: CategoryRates(0.35, 0.9, 0.8, (1, 7)),
    Category.PROPERTY: CategoryRates(0.4, 0.9, 0.78, (1, 7)),
    Category.TENANCY: CategoryRates(0.4, 0.9, 0.8, (1, 6)),
    Category.OTHER: EVERYDAY,
    Category.LABOUR: CategoryRates(0.1, 0.85, 0.68, (2, 8)),
    Category.ENVIRONMENT: CategoryRates(0.15, 0.85, 0.65, (2, 6)),
    Category.RELOCATION: CategoryRates(0.05, 0.8, 0.6, (3, 9)),
}


@dataclass(frozen=True)
class BehaviourModel:
    """Delays (in working hours or days) and chances; see the module docstring."""

    seed: int = 2026
    rates: dict[Category, CategoryRates] = field(default_factory=lambda: dict(DEFAULT_RATES))
    contact_hours: tuple[float, float] = (0.5, 6.0)
    settle_days: tuple[float, float] = (0.2, 2.0)
    consultation_settles: float = 0.9
    sign_hours: tuple[float, float] = (0.5, 6.0)
    agency_returns: float = 0.08  # an agency sends a referral back (退单)
    agency_days: tuple[float, float] = (2.0, 8.0)
    refer_after_failure: float = 0.5  # a failed mediation is referred on (else closed)
    visit_hours: tuple[float, float] = (0.5, 8.0)
    satisfied: float = 0.88
    # The first contact (首次联系), in office hours after the assignment: uniform in
    # respond_hours, or per street (unit code) between neighbouring fitted quantiles.
    respond_hours: tuple[float, float] = (0.5, 6.0)
    respond_by_street: dict[str, tuple[float, ...]] = field(default_factory=dict)
    satisfied_by_street: dict[str, float] = field(default_factory=dict)
    # People: the share of working days a person is away (leave, training, sick), and
    # the steps one person takes in a working day at most; the rest waits for the next.
    # The first contact is exempt: whoever is in answers the community's calls (首问负责).
    absence: float = 0.04
    capacity: int = 40
    # Fitted finer where a history shows enough (models.sim_fit): the first contact per
    # street and category, mediation success per category and level of the unit.
    respond_by_street_category: dict[tuple[str, Category], tuple[float, ...]] = field(
        default_factory=dict
    )
    success_by_level: dict[tuple[Category, UnitLevel], float] = field(default_factory=dict)
    # Each street's dice fall evenly (see Replay._chance): a simulated share is then the
    # chance the model gives, give or take a case or two, rather than one draw of many.
    # The policy simulator's way (models.simulate); off, each decision's luck is its
    # own, as for people as they are (the demo city, a history to fit).
    stratified: bool = False

    def rate(self, category: Category) -> CategoryRates:
        return self.rates.get(category, EVERYDAY)

    def success(self, category: Category, level: UnitLevel | None) -> float:
        fitted = self.success_by_level.get((category, level)) if level else None
        return self.rate(category).success if fitted is None else fitted

    def respond(self, street: str | None, category: Category) -> tuple[float, ...]:
        """The first contact's delay distribution: the street's and category's, else the
        street's, else the district-wide range."""
        for fitted in (
            self.respond_by_street_category.get((street or "", category)),
            self.respond_by_street.get(street or ""),
        ):
            if fitted and len(fitted) > 1:
                return fitted
        return self.respond_hours

    def satisfaction(self, street: str | None) -> float:
        return self.satisfied_by_street.get(street or "", self.satisfied)


@dataclass
class ReplayReport:
    """What happened, counted by the replay."""

    submitted: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    reminded: int = 0
    escalated: int = 0

    def count(self, what: str) -> None:
        self.actions[what] = self.actions.get(what, 0) + 1


# What the simulated people write (stand-ins: the words are not what is measured).
PHONE = ContactMethod.PHONE
SETTLED = "网格员上门沟通，当场说明情况，双方达成谅解。"
REFUSED = "当事人不同意调解，已告知仲裁、诉讼等其他途径。"
NOT_OURS = "经核查不属本部门职责，请社区继续调处。"
HANDLED = "部门依职权核查处理，已书面答复当事人。"
SESSION = ("社区人民调解室", "双方当事人、调解员", "双方陈述事实，调解员释法说理，提出调解方案。")
TERM = "被申请人按约履行，申请人不再追究。"
AGREED = "经调解，双方自愿达成如下协议。"
FAILED = "双方分歧较大，调解不成，终止调解，已告知其他途径。"
VISITED = "电话回访，当事人表示情况属实。"
AGENCY_RESOLVES = 0.7  # an agency's outcome is 已解决 (else 部分解决)

# A working day here is 8 working hours: delays are spread over office time by
# :func:`models.workdays` through the deadlines; the replay only needs a scale.
HOUR = timedelta(hours=1)
Stream = tuple[str, str, int]  # street, purpose, the case's n-th decision of the purpose
STRATUM = 20  # a street's decisions whose numbers fall one in each twentieth of [0, 1)
OFFICE = (8, 21)  # local hours in which the replay's people act


class Replay:
    """Drive cases through the domain with a :class:`BehaviourModel` on the virtual
    clock (``clock.VirtualClock``), one tick at a time."""

    def __init__(self, session: Session, model: BehaviourModel, vclock: clock.VirtualClock) -> None:
        self.session = session
        self.model = model
        self.clock = vclock
        self._draws: dict[tuple[int, str], int] = {}
        self.report = ReplayReport()
        self.plans: dict[int, tuple[datetime, str, int]] = {}  # case -> (when, step, version)
        # A heap of (when, order of scheduling, complaint, who, recorder): ties keep their order.
        self.arrivals: list[tuple[datetime, int, CaseCreate, Actor, int | None]] = []
        self._order = itertools.count()
        self._staff: dict[int, Staff] = {}
        self._actors: dict[int, Actor] = {}
        self._receivers: dict[int | None, Actor] = {}
        self._streets = _streets(session)
        # Strong references keep these in the session's identity map (it holds objects
        # weakly): a case or unit looked up again is then not read again.
        self._units = list(session.exec(select(Unit)).all())
        self._held: dict[int, Case] = {}
        self._days: dict[tuple[int, date], int] = {}  # (person, day) -> steps taken
        self._away: dict[tuple[int, date], bool] = {}
        self._made: dict[Stream, int] = {}  # decisions made in each stream
        self._strata: dict[tuple[Stream, int], list[int]] = {}  # a block's shuffle
        self._levels = {u.id: u.level for u in self._units}
        self._unit_ids = {u.code: u.id for u in self._units}

    # --- input ----------------------------------------------------------------------

    def schedule(
        self, data: CaseCreate, *, at: datetime, actor: Actor, recorder: int | None
    ) -> None:
        """A complaint that arrives at ``at`` (recorded by ``recorder``)."""
        item = (clock.ensure_utc(at), next(self._order), data, actor, recorder)
        heapq.heappush(self.arrivals, item)

    # --- running --------------------------------------------------------------------

    def run(self, *, until: datetime, tick: timedelta = 3 * HOUR) -> ReplayReport:
        """Tick until ``until``; at night nobody works (the clock jumps to the morning,
        and the arrivals of the night are recorded then with their own times)."""
        until = clock.ensure_utc(until)
        while self.clock.now() < until:
            moment = min(self.clock.now() + tick, until)
            local = clock.to_local(moment)
            if not OFFICE[0] <= local.hour < OFFICE[1] and moment < until:
                self.clock.set(moment)
                continue
            self.clock.set(moment)
            self.step()
        return self.report

    def step(self) -> None:
        """One tick: arrivals, the system's steps, the sweep, then people's steps."""
        now = self.clock.now()
        while self.arrivals and self.arrivals[0][0] <= now:
            at, _order, data, actor, recorder = heapq.heappop(self.arrivals)
            # The place's id from the units read at the start (nothing changes them in a
            # run): one statement a case fewer; an unknown code is still refused.
            place_id = self._unit_ids.get(data.place_code) if data.place_code else None
            case, _parties = create_case_with_parties(
                self.session,
                data=data,
                actor=actor,
                created_by_id=recorder,
                at=at,
                place_unit_id=place_id,
            )
            # Held, so that triage and assignment later in this tick find the case in the
            # identity map (it holds objects weakly) instead of reading it again each:
            # two statements a case fewer.
            self._held[_id(case)] = case
            self.report.submitted += 1
        self._system_steps()
        sweep = escalation.sweep(self._sessions, now=now, actor=Actor.system())
        self.report.reminded += len(sweep.reminded)
        self.report.escalated += len(sweep.escalated)
        self._people_steps(now)
        self.session.commit()

    @contextmanager
    def _sessions(self) -> Iterator[Session]:
        yield self.session

    def _open(self, statuses: Sequence[CaseStatus], *where: Any) -> list[tuple[int, int]]:
        """(id, version) of the cases in ``statuses``: only ids, so that a tick with
        thousands of open cases loads just the few it acts on."""
        rows = self.session.exec(
            select(Case.id, Case.version)
            .where(col(Case.status).in_(statuses), *where)
            .order_by(col(Case.id))
        ).all()
        return [(int(cid), int(version)) for cid, version in rows if cid is not None]

    def _case(self, case_id: int) -> Case:
        case = self._held.get(case_id) or self.session.get(Case, case_id)
        assert case is not None
        self._held[case_id] = case
        return case

    def _system_steps(self) -> None:
        """What the intake, assignment and follow-up flows do."""
        system = Actor.system()
        for cid, _v in self._open([S.SUBMITTED, S.REOPENED]):
            self._try(
                "triage",
                lambda c=cid: triage.triage_case(self.session, case_id=c, actor=system),
            )
        for cid, _v in self._open([S.TRIAGED, S.ESCALATED]):
            self._try(
                "assign",
                lambda c=cid: routing.assign_case(self.session, case_id=c, actor=system),
            )
        for cid, _v in self._open([S.AGREEMENT, S.MEDIATION_FAILED, S.REFERRED]):
            if referrals.awaits_receiver(self._case(cid)):
                continue
            self._try(
                "schedule_visits",
                lambda c=cid: follow_ups.schedule_follow_ups(self.session, case_id=c, actor=system),
            )

    def _try(self, what: str, action: object) -> bool:
        """Do one step in a savepoint; a refusal (a guard, a conflict) is counted, not
        raised: people meet refusals too, and try something else."""
        assert callable(action)
        try:
            with self.session.begin_nested():
                action()
        except TiaojieError as exc:
            key = f"{what}: {type(exc).__name__}"
            self.report.refused[key] = self.report.refused.get(key, 0) + 1
            return False
        self.report.count(what)
        return True

    # --- people ---------------------------------------------------------------------

    def _chance(self, case: Case, what: str) -> float:
        """A number in [0, 1) for the ``what``-th decision of this case, from its own
        die per case and purpose.

        Stratified (the model's ``stratified``, the simulator's default): the decisions
        of one purpose in one street (of the unit holding the case; the agencies and
        the district count as one more) are taken in blocks of :data:`STRATUM`, in the
        order they are made; within a block each lies in its own 1/STRATUM of [0, 1)
        (a shuffle per block, street and purpose; the case's die places it inside).
        So of any run of a street's decisions the share below a chance p is p to
        within a decision or two, instead of carrying binomial luck (±2-3 points on
        200 cases) on top of every figure, and scenarios differ by their policies.
        Each number is still uniform, and the purposes' shuffles are independent.

        Not stratified (people as they are: the history to fit): the die alone, tied
        to the case and purpose, so one case taking another path does not reshuffle
        the chances of the others (common random numbers)."""
        key = (_id(case), what)
        n = self._draws.get(key, 0)
        self._draws[key] = n + 1
        die = random.Random(f"{self.model.seed}:{key[0]}:{what}:{n}").random()
        if not self.model.stratified:
            return die
        stream = (self._streets.get(case.unit_id) or "", what, n)
        k = self._made.get(stream, 0)
        self._made[stream] = k + 1
        block, slot = divmod(k, STRATUM)
        if (stream, block) not in self._strata:
            order = list(range(STRATUM))
            random.Random(f"{self.model.seed}:{stream}:{block}").shuffle(order)
            self._strata[(stream, block)] = order
        return (self._strata[(stream, block)][slot] + die) / STRATUM

    def _between(self, case: Case, what: str, span: Sequence[float]) -> float:
        """A value of ``span`` (a range, or quantiles: the fitted distribution read
        between neighbouring points) at this decision's chance."""
        at = self._chance(case, what) * (len(span) - 1)
        i = min(int(at), len(span) - 2)
        return span[i] + (at - i) * (span[i + 1] - span[i])

    def _later(self, case: Case, what: str, hours: tuple[float, float]) -> datetime:
        return self.clock.now() + self._between(case, what, hours) * HOUR

    def _later_days(self, case: Case, what: str, days: tuple[float, float]) -> datetime:
        # Working days: weekends and holidays pass without work.
        from models import workdays

        whole = self._between(case, what, days)
        moment = workdays.add_working_days(self.clock.now(), int(whole))
        return moment + (whole - int(whole)) * 8 * HOUR

    def _plan(self, case: Case, step: str, when: datetime) -> None:
        self.plans[_id(case)] = (when, step, case.version)

    def _due(self, case_id: int, version: int, now: datetime) -> tuple[str, datetime] | None:
        """The step planned for a case and its moment, when it is due and the case has
        not moved since it was planned (else None, and a new plan is made)."""
        plan = self.plans.get(case_id)
        if plan is not None and plan[2] == version:
            when, step, _version = plan
            return (step, when) if when <= now else None
        self.plans.pop(case_id, None)
        self._make_plan(self._case(case_id))
        return None

    def _free(self, case: Case, step: str) -> bool:
        """The case's holder is in today and has not used the day's capacity (a step
        that waits is tried again at the next tick); counts the step when free."""
        if case.assignee_id is None or step == "contact":
            return True
        day = clock.to_local(self.clock.now()).date()
        key = (case.assignee_id, day)
        if key not in self._away:
            draw = random.Random(f"{self.model.seed}:{case.assignee_id}:{day.isoformat()}")
            self._away[key] = draw.random() < self.model.absence
        if self._away[key] or self._days.get(key, 0) >= self.model.capacity:
            return False
        self._days[key] = self._days.get(key, 0) + 1
        return True

    def _people_steps(self, now: datetime) -> None:
        for cid, _v in self._open([S.TRIAGED], col(Case.held_for_assessment)):
            self._try("assess", lambda c=cid: self._assess(self._case(c)))
        working = self._open([S.ASSIGNED, S.IN_MEDIATION, S.REFERRED, S.FOLLOW_UP])
        self._held = {cid: c for cid, _v in working if (c := self._held.get(cid)) is not None}
        for cid, version in working:
            due = self._due(cid, version, now)
            if due is None:
                continue
            case = self._case(cid)
            if self._free(case, due[0]):
                self.plans.pop(cid, None)
                self._act(case, *due)

    def _assess(self, case: Case) -> None:
        """研判: an intake worker of the community confirms the machine's best reading
        of a case it was unsure of, which then is routed."""
        from models.machine_triage import set_classification
        from models.triage_tables import TriageSuggestion

        suggestion = self.session.get(TriageSuggestion, _id(case))
        worker = self.session.exec(
            select(Staff)
            .where(Staff.unit_id == case.unit_id, col(Staff.role).in_(FIRST_CONTACT))
            .order_by(col(Staff.id))
        ).first()
        category = suggestion.category if suggestion is not None else case.category
        set_classification(
            self.session,
            case_id=_id(case),
            actor=self._actor(worker.id if worker else None),
            category=category,
        )

    def _member(self, staff_id: int | None) -> Staff | None:
        if staff_id is None:
            return None
        if staff_id not in self._staff:
            staff = self.session.get(Staff, staff_id)
            if staff is None:
                return None
            self._staff[staff_id] = staff
        return self._staff[staff_id]

    def _actor(self, staff_id: int | None) -> Actor:
        staff = self._member(staff_id)
        if staff is None or staff.id is None:
            return Actor.system()
        if staff.id not in self._actors:
            self._actors[staff.id] = principal_for_staff(self.session, staff)
        return self._actors[staff.id]

    def _make_plan(self, case: Case) -> None:
        m, rate = self.model, self.model.rate(case.category)
        holder = self._member(case.assignee_id)
        match case.status:
            case S.ASSIGNED if holder is not None and case.first_response_at is None:
                self._plan(case, "contact", self._respond_at(case))
            case S.ASSIGNED if holder is not None and holder.role in FIRST_CONTACT:
                quick = (
                    m.consultation_settles
                    if case.priority == Priority.CONSULTATION
                    else rate.settle_directly
                )
                if self._chance(case, "settle_directly") < quick and not case.is_group:
                    self._plan(case, "settle", self._later_days(case, "settle", m.settle_days))
                else:
                    self._plan(case, "to_committee", self._later(case, "contact", m.contact_hours))
            case S.ASSIGNED if holder is not None:
                if case.accepted_at is None or not mediators.serving_ids(
                    self.session, case_id=_id(case)
                ):
                    self._plan(case, "committee", self._later(case, "contact", m.contact_hours))
                elif case.consent_at is not None:
                    self._plan(case, "start", self._later(case, "contact", m.contact_hours))
                elif self._chance(case, "consent") < rate.consent:
                    self._plan(case, "consent", self._later(case, "contact", m.contact_hours))
                else:
                    self._plan(case, "no_consent", self._later_days(case, "settle", m.settle_days))
            case S.IN_MEDIATION:
                self._plan(
                    case, "conclude", self._later_days(case, "mediation", rate.mediation_days)
                )
            case S.REFERRED if case.referral_state == ReferralState.PENDING:
                returns = self._chance(case, "agency_returns") < m.agency_returns
                self._plan(
                    case, "return" if returns else "sign", self._later(case, "sign", m.sign_hours)
                )
            case S.REFERRED if case.referral_state == ReferralState.SIGNED:
                self._plan(case, "agency_outcome", self._later_days(case, "agency", m.agency_days))
            case S.FOLLOW_UP:
                self._plan(case, "visit", self._later(case, "visit", m.visit_hours))
            case _:
                pass

    def _respond_at(self, case: Case) -> datetime:
        from models import workdays

        span = self.model.respond(self._streets.get(case.unit_id), case.category)
        return workdays.add_working_hours(self.clock.now(), self._between(case, "respond", span))

    def _act(self, case: Case, step: str, when: datetime) -> None:
        """A person's step, through the rule book (:func:`models.actions.run`): the
        same reach, role and state checks as the web page and the REST API."""
        from models import actions

        v = case.version
        who = self._actor(case.assignee_id)
        match step:
            case "contact":  # recorded after the call, at the moment it was made
                self._run(case, who, "contact", actions.ContactIn(version=v, method=PHONE, at=when))
            case "settle":
                self._run(case, who, "resolve", actions.ResolveIn(version=v, resolution=SETTLED))
            case "to_committee":
                self._run(case, who, "committee", actions.ActionBody(version=v))
            case "committee":
                self._committee(case, who)
            case "consent":
                self._run(case, who, "consent", actions.ConsentIn(version=v))
            case "start":
                self._run(case, who, "mediation/start", actions.StartIn(version=v))
            case "no_consent":
                self._run(case, who, "resolve", actions.ResolveIn(version=v, resolution=REFUSED))
            case "conclude":
                self._conclude(case, who)
            case "sign":
                self._run(
                    case, self._receiver(case), "referral/sign", actions.ActionBody(version=v)
                )
            case "return":
                back = actions.ReasonIn(version=v, reason=NOT_OURS)
                self._run(case, self._receiver(case), "referral/return", back)
            case "agency_outcome":
                resolved = self._chance(case, "agency_resolves") < AGENCY_RESOLVES
                outcome = ReferralOutcome.RESOLVED if resolved else ReferralOutcome.PARTLY
                body = actions.ReferralOutcomeIn(version=v, action_taken=HANDLED, outcome=outcome)
                self._run(case, who, "referral/outcome", body)
            case "visit":
                self._visit(case)
            case _:
                raise ValueError(step)

    def _run(self, case: Case, who: Actor, name: str, body: BaseModel) -> bool:
        from models import actions

        return self._try(name, lambda: actions.run(self.session, who, case, name, body))

    def _visitor(self, case: Case, scheduled: int | None) -> Actor:
        """The visitor the schedule named if the rule book lets them record the visit;
        else the case's liaison, else its handler (the one named may since have been
        deactivated or moved)."""
        from models import actions

        for staff_id in (scheduled, case.liaison_id, case.assignee_id):
            who = self._actor(staff_id)
            try:
                actions.check(self.session, who, case, "follow-ups")
            except TiaojieError:
                continue
            if staff_id != scheduled:
                self.report.count("visitor_replaced")
            return who
        return self._actor(scheduled)

    def _committee(self, case: Case, who: Actor) -> None:
        """受理审查 and the mediator named: the committee's mediator who holds the case."""
        from models import actions

        if case.accepted_at is None:
            review = actions.AcceptanceIn(version=case.version, accepted=True)
            if not self._run(case, who, "acceptance", review):
                return
        if not mediators.serving_ids(self.session, case_id=_id(case)) and who.staff_id:
            body = actions.MediatorsIn(version=case.version, staff_ids=[who.staff_id])
            self._run(case, who, "mediators", body)

    def _receiver(self, case: Case) -> Actor:
        """The receiving agency's first active member (the staff table does not change
        during a replay, so it is looked up once per unit)."""
        if case.unit_id not in self._receivers:
            staff = self.session.exec(
                select(Staff)
                .where(Staff.unit_id == case.unit_id, col(Staff.active))
                .order_by(col(Staff.id))
            ).first()
            self._receivers[case.unit_id] = self._actor(staff.id if staff else None)
        return self._receivers[case.unit_id]

    def _conclude(self, case: Case, who: Actor) -> None:
        from models import actions

        now = self.clock.now()
        success = self.model.success(case.category, self._levels.get(case.unit_id))
        self._run(
            case,
            who,
            "sessions",
            actions.SessionIn(
                held_at=now - HOUR, place=SESSION[0], participants=SESSION[1], minutes=SESSION[2]
            ),
        )
        if self._chance(case, "success") < success:
            due = clock.to_local(now + timedelta(days=10)).date()
            terms = [TermCreate(text=TERM, due_on=due)]
            self._run(case, who, "agreement", actions.AgreementIn(summary=AGREED, terms=terms))
            return
        refer = self._chance(case, "refer") < self.model.refer_after_failure
        target = (
            ReferralTarget.ARBITRATION if case.category == Category.LABOUR else ReferralTarget.COURT
        )
        body = actions.FailureIn(reason=FAILED, referral=target if refer else None)
        self._run(case, who, "failure", body)

    def _visit(self, case: Case) -> None:
        from models import actions

        cid = _id(case)
        visits = self.session.exec(
            select(FollowUp)
            .where(FollowUp.case_id == cid, col(FollowUp.done_at).is_(None))
            .order_by(col(FollowUp.due_at))
        ).all()
        if visits and clock.ensure_utc(visits[0].due_at) > self.clock.now():
            later = self._between(case, "visit", self.model.visit_hours) * HOUR
            self._plan(case, "visit", clock.ensure_utc(visits[0].due_at) + later)
            return
        if visits:
            street = self._streets.get(case.unit_id)
            happy = self._chance(case, "satisfied") < self.model.satisfaction(street)
            record = actions.FollowUpIn(
                outcome=FollowUpOutcome.CARRIED_OUT if happy else FollowUpOutcome.PARTLY,
                resolved=ResolvedAnswer.RESOLVED if happy else ResolvedAnswer.UNRESOLVED,
                satisfied=SatisfiedAnswer.SATISFIED if happy else SatisfiedAnswer.DISSATISFIED,
                notes=VISITED,
                follow_up_id=visits[0].id,
            )
            visitor = self._visitor(case, visits[0].visitor_id)
            if not self._run(case, visitor, "follow-ups", record):
                return
        self._try(
            "settle_visit",
            lambda: follow_ups.settle_after_follow_up(
                self.session, case_id=cid, actor=Actor.system()
            ),
        )


def _id(case: Case) -> int:
    assert case.id is not None
    return case.id


def _streets(session: Session) -> dict[int | None, str]:
    """Each unit's street (its own code for a street, None above or beside streets)."""
    from models.enums import UnitLevel

    units = session.exec(select(Unit)).all()
    streets = {u.code for u in units if u.level == UnitLevel.STREET}
    out: dict[int | None, str] = {}
    for unit in units:
        found = [code for code in unit.path.split("/") if code in streets]
        if found:
            out[unit.id] = found[0]
    return out


# --- what a replay shows ----------------------------------------------------------------


@dataclass(frozen=True)
class Shares:
    """Per category: cases, and those settled at community level or below (an agreement
    or a direct settlement at a building, compound or community, never referred)."""

    cases: dict[Category, int]
    settled_low: dict[Category, int]

    def share(self, categories: Sequence[Category]) -> float:
        total = sum(self.cases.get(c, 0) for c in categories)
        low = sum(self.settled_low.get(c, 0) for c in categories)
        return low / total if total else 0.0


def settled_shares(session: Session) -> Shares:
    from models.enums import UnitLevel
    from models.event import CaseEvent

    units = {u.id: u for u in session.exec(select(Unit)).all()}
    referred = set(session.exec(select(Referral.case_id)).all())
    settled_events = session.exec(
        select(CaseEvent.case_id, CaseEvent.verb, CaseEvent.data).where(
            col(CaseEvent.verb).in_(["agreement_signed", "follow_up_due"])
        )
    ).all()
    settled = {
        cid
        for cid, verb, data in settled_events
        if verb == "agreement_signed" or (data or {}).get("resolution")
    }
    cases: dict[Category, int] = {}
    low: dict[Category, int] = {}
    for case in session.exec(
        select(Case).where(col(Case.status).not_in([S.MERGED, S.WITHDRAWN]))
    ).all():
        cases[case.category] = cases.get(case.category, 0) + 1
        unit = units.get(case.unit_id)
        if (
            case.id in settled
            and case.id not in referred
            and unit is not None
            and unit.level != UnitLevel.AGENCY
            and unit.level.rank <= UnitLevel.COMMUNITY.rank
        ):
            low[case.category] = low.get(case.category, 0) + 1
    return Shares(cases, low)
