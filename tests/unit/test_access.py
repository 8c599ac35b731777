"""The rule book of access (models/access.py) and of actions (models/actions.py): reach as
a predicate and as SQL agree; personal data, read-only roles, places and the actor string
are each decided once; the action table is whole and refuses with the one 403."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from api.errors import _HTTP_ZH
from models import access, actions, clock, escalation, helping, mediating, overdue, routing, triage
from models.access import Principal, principal_for_staff
from models.case import Case
from models.cases import create_case
from models.enums import CaseStatus, HelperRole, StaffRole
from models.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    TiaojieError,
    ValidationError,
)
from models.lifecycle import TRANSITIONS, Actor
from models.overdue import overdue_clause
from tests.factories import City, add_staff, build_city, case_data, staff_actor
from tests.sqlite_plans import pretend_a_million_cases, query_plan

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("models", "tasks", "flows", "api", "deployments", "tiaojie_cli")


@pytest.fixture
def city(session: Session) -> City:
    built = build_city(session)
    add_staff(session, built, "volunteerA", StaffRole.VOLUNTEER, "CMA")
    return built


def principal(session: Session, city: City, name: str) -> Principal:
    return principal_for_staff(session, city.staff[name])


def _cases(session: Session, city: City) -> list[Case]:
    """A case recorded by workerA in each community, one assigned, one escalated to the
    street, one with no place, and one recorded by the street mediator in community B."""
    recorder = city.staff["workerA"].id
    found: list[Case] = []
    for place in ("BA1", "BB2", "CPA", None):
        data = case_data(place_code=place) if place else case_data(place_code=None)
        if place is None:
            data.address_text = "江心市某处"
        found.append(create_case(session, data=data, actor=Actor.system(), created_by_id=recorder))
    for case in found[:2]:
        assert case.id is not None
        triage.triage_case(session, case_id=case.id, actor=Actor.system())
        routing.assign_case(session, case_id=case.id, actor=Actor.system())
    boss = staff_actor(city, "supervisor")
    up = found[0]
    assert up.id is not None
    while up.unit_path != city.unit("S1").path:
        escalation.escalate_case(
            session, case_id=up.id, now=up.updated_at, actor=boss, by_hand=True, reason="督办"
        )
    other = create_case(
        session,
        data=case_data(place_code="BB1"),
        actor=Actor.system(),
        created_by_id=city.staff["street_mediator"].id,
    )
    return [*found, other]


def _reached(session: Session, city: City, cases: list[Case]) -> dict[str, set[int | None]]:
    """Who reaches which of ``cases``, by the predicate, after checking that the SQL
    clause says the same for every user (and the public and the workflow)."""
    everyone = [principal(session, city, name) for name in city.staff]
    everyone += [Principal.public("x"), Principal.system()]
    found: dict[str, set[int | None]] = {}
    for who in everyone:
        clause = access.reach_clause(who)
        query = select(Case.id) if clause is None else select(Case.id).where(clause)
        by_sql = set(session.exec(query).all())
        found[who.username] = set()
        for case in cases:
            place = access.place_path_of(session, case)
            by_rule = access.reaches(who, case, place_path=place)
            assert by_rule == (case.id in by_sql), (who.username, case.number)
            if by_rule:
                found[who.username].add(case.id)
    return found


def test_reach_predicate_and_clause_agree(session: Session, city: City) -> None:
    cases = _cases(session, city)
    reached = _reached(session, city, cases)
    assert reached["system"] == {c.id for c in cases} and not reached["open311:x"]
    # The rule, spelled out on a few: the escalated case stays in view of community A.
    up = cases[0]
    assert up.unit_path == city.unit("S1").path
    reach = {n for n in city.staff if access.reaches(principal(session, city, n), up,
             place_path=access.place_path_of(session, up))}  # fmt: skip
    assert {"workerA", "mediatorA", "gridA", "street_mediator"} <= reach
    assert not reach & {"workerB", "mediatorB", "gridB"}


def test_reach_reads_the_open_cases_of_the_readers_subtree(session: Session, city: City) -> None:
    """With a million cases' statistics, a community's open cases come from the
    (is_open, unit_path) and (place, is_open) indexes, not from every open case (the
    path was a LIKE, which SQLite reads from no index: 35 ms for the inbox's list); its
    overdue ones from the kept deadline's index (the overdue cases of the city, a few
    thousand: 7 ms at a million cases, against 2 ms through the reach's indexes, which
    SQLite takes for half of the cases without per-value statistics)."""
    pretend_a_million_cases(session)
    reach = access.reach_clause(principal(session, city, "mediatorA"))
    assert reach is not None
    query = select(Case).where(col(Case.is_open).is_(True), reach)
    plan = query_plan(session, query)
    assert "MULTI-INDEX OR" in plan
    assert "ix_case_open_path (is_open=? AND unit_path>? AND unit_path<?)" in plan
    assert "ix_case_place_open (place_unit_id=? AND is_open=?)" in plan
    assert "ix_case_open_created" not in plan
    late = query_plan(session, query.where(overdue_clause(clock.now())))
    assert late.startswith("SEARCH cases USING INDEX ix_case_deadline (deadline_at>? AND")
    # The inbox's list of them, in deadline order, walks the reach's indexes and sorts
    # what it finds; ordered by the plain column it walked the city's overdue cases in
    # deadline order (13.7 ms against 0.4 at a million cases, the same 50 rows).
    kept = overdue.deadline_for_reach()
    listed = query.where(overdue.overdue_within_reach(clock.now())).order_by(kept).limit(50)
    plan = query_plan(session, listed)
    assert "MULTI-INDEX OR" in plan and "ix_case_deadline" not in plan


def test_find_case_answers_one_404_for_missing_and_out_of_reach(
    session: Session, city: City
) -> None:
    cases = _cases(session, city)
    outsider = principal(session, city, "workerB")
    for ref in (str(cases[2].id), cases[2].number, "JX-1999-000001", "999999", "", "x" * 40):
        with pytest.raises(NotFound) as caught:
            access.find_case(session, outsider, ref)
        assert caught.value.code == "not_found"
    assert access.find_case(session, outsider, cases[1].number).id == cases[1].id


def test_personal_data_goes_to_whoever_contacts_the_parties(session: Session, city: City) -> None:
    case = _cases(session, city)[1]  # recorded by workerA, in community B, assigned there
    assignee = next(n for n, s in city.staff.items() if s.id == case.assignee_id)
    sees = {
        n for n in city.staff if access.may_see_personal_data(principal(session, city, n), case)
    }
    assert {"workerA", assignee} <= sees
    assert not sees & {"supervisor", "admin", "street_mediator", "workerB", "mediatorA"}
    # Mediators of the handling unit see it too.
    handled_by = next(u for u in city.units.values() if u.id == case.unit_id)
    mediator = add_staff(session, city, "mediatorH", StaffRole.MEDIATOR, handled_by.code)
    assert access.may_see_personal_data(principal_for_staff(session, mediator), case)
    sees.add("mediatorH")
    assert not access.may_see_personal_data(Principal.public(), case)
    # The return visit needs the contact: the same rule says who records it.
    visit = actions.ACTIONS["follow-ups"]
    for name in city.staff:
        who = principal(session, city, name)
        assert visit.who(who, case) == (name in sees)


def test_rules_are_written_once() -> None:
    """READ_ONLY_ROLES, may_see_personal_data, the place levels, reach and the action
    table are defined in one module each (they used to be defined two or three times)."""
    wanted = {
        "READ_ONLY_ROLES": "models/access.py",
        "PLACE_LEVELS": "models/access.py",
        "may_see_personal_data": "models/access.py",
        "reach_clause": "models/access.py",
        "reaches": "models/access.py",
        "staff_id_of": "models/access.py",
        "check_version": "models/lifecycle.py",
        "allowed": "models/actions.py",
        "may_act": None,
        "page_actions": None,
        "run_action": None,
        "visible": None,
        "_check_version": None,
        "_ensure_version": None,
        "_check_place": None,
    }
    found: dict[str, list[str]] = {name: [] for name in wanted}
    for top in PRODUCTION:
        for path in sorted((ROOT / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:  # module-level definitions
                names: list[str] = []
                if isinstance(node, ast.FunctionDef | ast.ClassDef):
                    names = [node.name]
                elif isinstance(node, ast.Assign):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                for name in names:
                    if name in found:
                        found[name].append(str(path.relative_to(ROOT)))
    for name, home in wanted.items():
        assert found[name] == ([home] if home else []), (name, found[name])
    # Nor is the version check written inline.
    inline = [
        str(path.relative_to(ROOT))
        for top in PRODUCTION
        for path in sorted((ROOT / top).rglob("*.py"))
        if re.search(
            r"expected_version\s*!=\s*case\.version|case\.version\s*!=\s*expected_version",
            path.read_text(encoding="utf-8"),
        )
    ]
    assert inline == ["models/lifecycle.py"], inline


def test_one_403() -> None:
    """One class and one code for "not for you": the domain's, the REST's and a bare HTTP
    403 say the same (``Forbidden`` beside ``PermissionDenied`` answered two codes)."""

    def subclasses(cls: type[TiaojieError]) -> list[type[TiaojieError]]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    import api.app  # noqa: F401  (every module that might define an error is loaded)

    forbidding = [c for c in subclasses(TiaojieError) if c.http_status == 403]
    assert all(issubclass(c, PermissionDenied) for c in forbidding), forbidding
    assert {c.code for c in forbidding} == {"forbidden"} == {_HTTP_ZH[403][0]}


def test_actor_strings_are_read_in_one_place() -> None:
    assert access.staff_id_of("staff:12") == 12
    assert Principal(kind="staff", staff_id=12).ref == "staff:12"
    for other in ("system", "open311", "staff:", "staff:x", "staff:-1", "staff:" + "9" * 13):
        assert access.staff_id_of(other) is None


def test_places_follow_the_filer(session: Session, city: City) -> None:
    worker = principal(session, city, "workerA")
    assert access.place_for_filing(session, worker, "BA1").code == "BA1"
    for code, field_text in (
        ("BB1", "不在您负责的范围内"),
        ("S1", "楼幢、小区或社区"),
        ("NOPE", "不是已知"),
    ):
        with pytest.raises(ValidationError) as caught:
            access.place_for_filing(session, worker, code)
        assert caught.value.problems[0].field == "place_code"
        assert field_text in caught.value.message_zh
    assert access.place_for_filing(session, Principal.public("c"), "BB1").code == "BB1"
    assert access.place_for_filing(session, principal(session, city, "admin"), "BB1")
    codes = {u.code for u in access.places_for(session, worker)}
    assert codes == {"CMA", "CPA", "BA1", "BA2"}


def test_the_action_table_is_whole() -> None:
    assert len({a.verb for a in actions.ACTIONS.values()}) == len(actions.ACTIONS)
    for action in actions.ACTIONS.values():
        transition = TRANSITIONS[action.verb]
        assert not transition.roles or "staff" in transition.roles, action.name
        assert action.summary and action.operation and action.example
        action.body.model_validate(action.example)  # the OpenAPI example is a valid body


def test_allowed_and_run_agree(session: Session, city: City) -> None:
    case = _cases(session, city)[1]
    assert case.status == CaseStatus.ASSIGNED
    assignee = next(n for n, s in city.staff.items() if s.id == case.assignee_id)
    offered = {
        n: actions.allowed_names(session, principal(session, city, n), case) for n in city.staff
    }
    assert offered["volunteerA"] == []
    assert "consent" in offered[assignee] and "consent" in offered["mediatorB"]
    assert "consent" not in offered["workerA"]  # recorded it, but mediation is not theirs
    assert "resolve" in offered["workerA"] and "reopen" not in offered["admin"]
    with pytest.raises(PermissionDenied):
        actions.run(session, principal(session, city, "workerA"), case, "consent",
                    actions.ConsentIn(version=case.version))  # fmt: skip
    with pytest.raises(InvalidTransition):
        actions.run(session, principal(session, city, "admin"), case, "reopen",
                    actions.ReasonIn(version=case.version, reason="r"))  # fmt: skip
    with pytest.raises(NotFound):
        actions.run(session, principal(session, city, "workerA"), case, "no-such",
                    actions.ReasonIn(reason="r"))  # fmt: skip
    before = case.version
    actions.run(session, principal(session, city, "mediatorB"), case, "consent",
                actions.ConsentIn(version=case.version))  # fmt: skip
    assert case.version == before + 1 and case.consent_at is not None
    # Every party consented: consent is no longer offered, and refused if sent.
    assert "consent" not in actions.allowed_names(
        session, principal(session, city, "mediatorB"), case
    )


def test_a_lent_helper_reaches_the_case_they_help_with_and_no_other(
    session: Session, city: City
) -> None:
    """Staff of the agency paired with community A, added as a helper (协办) to one case
    there, reach that case (predicate and clause alike) and no other of the community,
    may do there only what helpers do, and lose it when the case is withdrawn."""
    cases = _cases(session, city)
    lent = add_staff(session, city, "labour_lent", StaffRole.MEDIATOR, "AG-LAB")
    helped, other = cases[2], cases[0]  # both happened in community A
    assert _reached(session, city, cases)["labour_lent"] == set()
    helping.add_helper(
        session,
        case_id=helped.id or 0,
        staff_id=lent.id or 0,
        role=HelperRole.LEGAL_EDUCATION,
        actor=staff_actor(city, "workerA"),
        expected_version=None,
    )
    assert _reached(session, city, cases)["labour_lent"] == {helped.id}
    who = principal(session, city, "labour_lent")
    assert actions.allowed_names(session, who, helped) == ["helper-tasks"]
    with pytest.raises(PermissionDenied):  # a mediator by role, but lent to help only
        actions.run(session, who, helped, "consent", actions.ConsentIn(version=helped.version))
    with pytest.raises(NotFound):
        access.find_case(session, who, other.number)
    actions.run(session, who, helped, "helper-tasks",
                actions.HelperTaskIn(version=helped.version, kind="legal_talk", note="普法"))  # fmt: skip
    triage.triage_case(session, case_id=helped.id or 0, actor=Actor.system())
    mediating.withdraw_case(
        session,
        case_id=helped.id or 0,
        reason="撤回",
        actor=staff_actor(city, "workerA"),
        expected_version=None,
    )
    assert not helped.is_open
    assert _reached(session, city, cases)["labour_lent"] == set()
