"""Browser tests: the real app under uvicorn on a free 127.0.0.1 port, a temporary
SQLite database built by the migrations, a small city with staff who have passwords,
and Debian's Chromium driven by Playwright (never ``playwright install``).

Screenshots of every page go to ``test-artifacts/screenshots/``; the path is printed at
the end of the run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from models import clock
from models.db import build_engine, write_session
from models.lifecycle import Actor
from models.migrate import upgrade
from models.passwords import hash_password
from models.staff import Staff
from tests.factories import build_city, make_case

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "tiaojie-browser-test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    wanted = os.environ.get("TIAOJIE_CHROMIUM", "/usr/bin/chromium")
    if Path(wanted).is_file() and os.access(wanted, os.X_OK):
        return wanted
    return shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chromium_path() is not None:
        return
    if os.environ.get("CI"):
        return  # in CI a missing browser is a failure (the fixture raises), never a skip
    skip = pytest.mark.skip(
        reason="no Chromium found (set TIAOJIE_CHROMIUM or apt-get install chromium); "
        "browser tests skipped outside CI"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_sep("-", "browser screenshots")
        terminalreporter.write_line(f"screenshots saved in {SCREENSHOTS}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    base_url: str
    database_url: str
    numbers: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path


def _seed(database_url: str) -> dict[str, str]:
    """The city, staff passwords and a few cases in several states (one long overdue,
    one escalated today) created the way the workflows would, through the domain."""
    from models.escalation import escalate_case
    from models.routing import assign_case
    from models.triage import triage_case

    engine = build_engine(database_url)
    upgrade(engine)
    numbers: dict[str, str] = {}
    with write_session(engine) as session:
        city = build_city(session)
        for name in ("workerA", "workerB", "mediatorA", "supervisor", "admin"):
            staff = city.staff[name]
            staff.password_hash = hash_password(PASSWORD)
            staff.display_name = {
                "workerA": "李桂兰",
                "workerB": "赵竹青",
                "mediatorA": "陈调解",
                "supervisor": "周督办",
                "admin": "王管理",
            }[name]
            session.add(staff)
        session.flush()
    system = Actor.system()
    previous = clock.get_clock()
    try:
        # A complaint from six weeks ago, never settled: overdue at every level since.
        clock.set_clock(clock.VirtualClock(clock.now() - timedelta(days=42)))
        with write_session(engine) as session:
            old = make_case(
                session,
                category="environment",
                description="小区旁搅拌站夜间施工噪音扰民，粉尘大，居民多次投诉。",
                people_affected=6,
                place_code="CPA",
                parties=[
                    {
                        "side": "complainant",
                        "kind": "person",
                        "name": "孙立新",
                        "phone": "13912345678",
                    },
                    {"side": "respondent", "kind": "firm", "name": "江心市宏建混凝土有限公司"},
                ],
            )
            assert old.id is not None
            triage_case(session, case_id=old.id, actor=system)
            assign_case(session, case_id=old.id, actor=system)
            numbers["overdue"] = old.number
    finally:
        clock.set_clock(previous)
    with write_session(engine) as session:
        other = make_case(
            session,
            category="neighbour",
            description="楼上住户长期漏水，楼下天花板发霉，双方多次争吵。",
            people_affected=2,
            place_code="BB1",
            parties=[
                {"side": "complainant", "kind": "person", "name": "钱多多", "phone": "13700001111"},
                {"side": "respondent", "kind": "person", "name": "吴晓峰"},
            ],
        )
        assert other.id is not None
        triage_case(session, case_id=other.id, actor=system)
        assign_case(session, case_id=other.id, actor=system)
        numbers["community_b"] = other.number
        escalated = escalate_case(
            session,
            case_id=other.id,
            now=clock.now(),
            actor=system,
            by_hand=True,
            reason="双方矛盾激化，社区调解无果，提请街道调解",
        )
        assert escalated is not None
        for _ in range(3):
            tenancy = make_case(
                session,
                category="tenancy",
                description="房东拒不退还押金，租客多次索要未果。",
                place_code="BA2",
                people_affected=1,
                parties=[
                    {"side": "complainant", "kind": "person", "name": "郑租客"},
                    {"side": "respondent", "kind": "firm", "name": "江心市安居房屋中介"},
                ],
            )
            assert tenancy.id is not None
            triage_case(session, case_id=tenancy.id, actor=system)
            assign_case(session, case_id=tenancy.id, actor=system)
    _seed_rates(engine, city)
    engine.dispose()
    return numbers


def _visit(session: Any, case_id: int, actor: Actor, resolved: Any, satisfied: Any) -> None:
    """A return visit with the complainant's own answers, and what follows it."""
    from models.enums import FollowUpOutcome
    from models.follow_up import FollowUpRecord
    from models.follow_ups import record_follow_up, settle_after_follow_up

    record_follow_up(
        session,
        case_id=case_id,
        data=FollowUpRecord(
            outcome=FollowUpOutcome.CARRIED_OUT,
            resolved=resolved,
            satisfied=satisfied,
            notes="电话回访申请人，如实记录其回答。",
        ),
        actor=actor,
        expected_version=None,
    )
    settle_after_follow_up(session, case_id=case_id, actor=Actor.system())


def _seed_rates(engine: Any, city: Any) -> None:
    """Cases decided this month, so that the ranking has something to rank: one settled
    in each community and heard by the street's return visitor, one referred to the
    labour agency and concluded there; and every limit that has passed, recorded where
    it passed (what the escalation sweep writes first)."""
    from models import routing
    from models.breaches import record_breaches
    from models.contact import ContactCreate, record_contact
    from models.enums import (
        Category,
        ContactMethod,
        ReferralOutcome,
        ReferralTarget,
        ResolvedAnswer,
        SatisfiedAnswer,
        StaffRole,
    )
    from models.follow_ups import schedule_follow_ups
    from models.mediating import resolve_directly
    from models.referrals import record_referral_outcome, sign_referral
    from tests.factories import add_staff, advance_to_assigned, staff_actor

    system = Actor.system()
    with write_session(engine) as session:
        add_staff(session, city, "visitor", StaffRole.RETURN_VISITOR, "S1")
        add_staff(session, city, "district_visitor", StaffRole.RETURN_VISITOR, "D1")
        add_staff(session, city, "officer", StaffRole.MEDIATOR, "AG-LAB", [Category.LABOUR])
        plan = (
            ("CMA", "BA1", "mediatorA", ResolvedAnswer.RESOLVED, SatisfiedAnswer.SATISFIED),
            ("CMB", "BB1", "mediatorB", ResolvedAnswer.BASICALLY, SatisfiedAnswer.DISSATISFIED),
        )
        for unit, place, who, resolved, satisfied in plan:
            case = make_case(
                session,
                category="neighbour",
                description="楼道堆放杂物堵塞消防通道，邻里多次争执。",
                place_code=place,
                people_affected=2,
                parties=[{"side": "complainant", "kind": "person", "name": "刘海燕"}],
            )
            advance_to_assigned(session, case, city, unit=unit, assignee=who)
            actor = staff_actor(city, who)
            record_contact(
                session,
                case_id=case.id or 0,
                data=ContactCreate(method=ContactMethod.PHONE),
                actor=actor,
                expected_version=None,
            )
            resolve_directly(
                session,
                case_id=case.id or 0,
                resolution="社区上门协调，当场清理杂物。",
                actor=actor,
                expected_version=None,
            )
            _visit(session, case.id or 0, staff_actor(city, "visitor"), resolved, satisfied)
        labour = make_case(session)
        advance_to_assigned(session, labour, city)
        routing.refer_case(
            session,
            case_id=labour.id or 0,
            target=ReferralTarget.AGENCY,
            agency_code="AG-LAB",
            reason="欠薪需劳动监察依法处理",
            actor=staff_actor(city, "supervisor"),
            expected_version=labour.version,
        )
        officer = staff_actor(city, "officer")
        sign_referral(session, case_id=labour.id or 0, actor=officer, expected_version=None)
        record_referral_outcome(
            session,
            case_id=labour.id or 0,
            action_taken="劳动监察大队责令企业十日内补发工资，已全部到账。",
            outcome=ReferralOutcome.RESOLVED,
            actor=officer,
            expected_version=None,
        )
        schedule_follow_ups(session, case_id=labour.id or 0, actor=system)
        _visit(
            session,
            labour.id or 0,
            staff_actor(city, "district_visitor"),
            ResolvedAnswer.RESOLVED,
            SatisfiedAnswer.BASICALLY,
        )
        record_breaches(session, now=clock.now())


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    if chromium_path() is None:
        pytest.fail("no Chromium found: CI must install it (see .ci/run)")
    workdir = Path(tempfile.mkdtemp(prefix="tiaojie-browser-"))
    database_url = f"sqlite:///{workdir / 'cases.db'}"
    numbers = _seed(database_url)
    port = free_port()
    env = {
        **os.environ,
        "TIAOJIE_HOME": str(workdir),
        "TIAOJIE_DATABASE_URL": database_url,
        "TIAOJIE_SECRET_KEY": os.environ["TIAOJIE_SECRET_KEY"],
        "TIAOJIE_PREFECT_UI_URL": "http://127.0.0.1:4200",
        "PREFECT_HOME": str(workdir / "prefect"),
    }
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the app exited: {(workdir / 'server.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not become healthy within 60 s")
            time.sleep(0.2)
        yield Site(base_url=base, database_url=database_url, numbers=numbers)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(*, width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


def shoot(page: Any, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, site: Site, username: str) -> None:
    page.goto(site.url("/web/login"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/web/inbox")


def staff_id(database_url: str, username: str) -> int:
    from sqlmodel import select

    engine = build_engine(database_url)
    try:
        with write_session(engine) as session:
            staff = session.exec(select(Staff).where(Staff.username == username)).one()
            assert staff.id is not None
            return staff.id
    finally:
        engine.dispose()
