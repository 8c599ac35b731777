"""Promise 9: personal data stays where it belongs (PIPL).

A whole case life with a planted name, phone and resident ID number, given as the
complainant's party fields AND typed into the free-text description, minutes and
reasons: recorded by a worker through the REST API and by a resident through Open311,
driven through the real workflow (outbox relay -> Prefect flow runs of intake,
assignment, notification, follow-up on a Prefect test server that asks for its auth
string as under ``tiaojie up``: an anonymous call must get 401), and through the human
steps on the API (consent, mediation, minutes, agreement, return visit) to closure.

Then every place the data could leak is searched for the planted values (the phone
also with its separators taken out): Prefect flow runs (names, parameters, tags), task
runs, logs, events and artifacts; every log record of this process with tracebacks; the
public Open311 answers (JSON and XML); the database dump outside free-text columns.
Finally the retention job runs past the retention period: the dump and the raw database
file must then hold the planted values nowhere at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import re
import secrets
import sqlite3
import subprocess
import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, select

from models import clock, follow_ups, pii
from models.case import Case
from models.db import write_session
from models.lifecycle import Actor
from models.retention import anonymise_closed_cases, purge_sqlite_leftovers
from models.settings import get_settings
from tests.reliability.common import (
    ROOT,
    App,
    PromiseResult,
    Scale,
    collect_logs,
    http_app,
    sqlite_database,
    use_database,
)

NAME = "欧阳秀英"
PHONE = "13912345678"
ID17 = "33010619870521123"
ID_NUMBER = ID17 + pii.id_check_digit(ID17)
PLANTED = {
    "name": NAME,
    "phone": PHONE,
    "id_number": ID_NUMBER,
    "id_number_lower": ID_NUMBER.lower(),
}
FREE_TEXT = f"投诉人{NAME}，电话 139-1234-5678，身份证号 {ID_NUMBER}，反映楼下饭店油烟扰民。"
# Columns where free text typed by staff or residents may stay until retention.
FREE_TEXT_COLUMNS = {
    "description",
    "address_text",
    "outcome_note",
    "minutes",
    "summary",
    "text",
    "note",
    "notes",
    "participants",
    "place",
    "reason",
    "resolution",
}
STRICT_TABLES = {"case_event", "outbox", "notification", "idempotency_record", "party"}


def hits(text: str) -> dict[str, int]:
    digits = re.sub(r"[\s\-]", "", text)
    found = {k: text.count(v) for k, v in PLANTED.items()}
    found["phone"] = max(found["phone"], digits.count(PHONE))
    return {k: v for k, v in found.items() if v}


def total(found: dict[str, int]) -> int:
    return sum(found.values())


def human_steps(
    app: App, case_id: int, headers: dict[str, str], mediator: tuple[int, dict[str, str]]
) -> None:
    """受理审查 and a named mediator by the handler, then consent, mediation, minutes and
    the agreement by that mediator (only a named mediator records sessions and signs)."""

    def act(action: str, body: dict[str, Any], as_: dict[str, str] | None = None) -> None:
        headers_now = as_ or mediator[1]
        version = app.client.get(f"/api/v1/cases/{case_id}", headers=headers_now).json()["case"][
            "version"
        ]
        r = app.client.post(
            f"/api/v1/cases/{case_id}/{action}",
            json={"version": version, **body},
            headers=headers_now,
        )
        assert r.status_code == 200, (action, r.text)

    act("acceptance", {"accepted": True, "note": "属于人民调解受理范围"}, headers)
    act("mediators", {"staff_ids": [mediator[0]]}, headers)
    detail = app.client.get(f"/api/v1/cases/{case_id}", headers=mediator[1]).json()
    act("consent", {"party_ids": [p["id"] for p in detail["parties"]]})
    act("mediation/start", {})
    act(
        "sessions",
        {
            "held_at": clock.now().isoformat(),
            "place": "社区调解室",
            "participants": f"{NAME}、饭店经理",
            "minutes": FREE_TEXT,
        },
    )
    act(
        "agreement",
        {
            "summary": f"{NAME}与饭店达成协议，加装油烟净化器",
            "terms": [{"text": "一个月内加装油烟净化器", "due_on": "2027-01-15"}],
        },
    )


def whole_life(app: App, relay: Any, loop: Loop) -> tuple[list[int], list[tuple[str, str]]]:
    """Record, drive and close; returns the case ids and the public answers."""
    database = app.database
    staff = app.client.post(
        "/api/v1/cases",
        json={
            "category": "environment",
            "description": FREE_TEXT,
            "place_code": "BA1",
            "parties": [
                {
                    "side": "complainant",
                    "kind": "person",
                    "name": NAME,
                    "phone": PHONE,
                    "id_number": ID_NUMBER,
                    "address": "桂花社区一小区1号楼301",
                },
                {"side": "respondent", "kind": "firm", "name": "江心市好味饭店"},
            ],
        },
        headers={**app.auth("workerA"), "Idempotency-Key": "pii-1"},
    )
    assert staff.status_code == 201, staff.text
    from api.security import create_open311_key

    public = app.client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": create_open311_key(),
            "service_code": "environment",
            "address_id": "BA2",
            "description": FREE_TEXT,
            "first_name": NAME[1:],
            "last_name": NAME[:1],
            "phone": PHONE,
        },
    )
    assert public.status_code in (200, 201), public.text
    # Bad input carrying the planted values: answered 4xx, logged without them.
    app.client.post(
        "/api/v1/cases",
        json={
            "category": "environment",
            "description": FREE_TEXT,
            "parties": [{"side": "complainant", "name": NAME, "id_number": ID_NUMBER[:-1] + "0"}],
        },
        headers=app.auth("workerA"),
    )
    ids = [int(staff.json()["case"]["id"])]
    loop.run(relay())
    with Session(database.engine) as s:
        case = s.get(Case, ids[0])
        assert case is not None and case.assignee_id is not None, case and case.status
        assignee = next(n for n, st in database.city.staff.items() if st.id == case.assignee_id)
    mediator = database.city.staff["mediatorA"]
    assert mediator.id is not None
    human_steps(app, ids[0], app.auth(assignee), (mediator.id, app.auth("mediatorA")))
    loop.run(relay())
    with write_session(database.engine) as s:
        follow_ups.schedule_follow_ups(s, case_id=ids[0], actor=Actor.system())
    vclock = clock.get_clock()
    assert isinstance(vclock, clock.VirtualClock)
    vclock.advance(timedelta(days=2))
    version = app.client.get(f"/api/v1/cases/{ids[0]}", headers=app.auth(assignee)).json()["case"][
        "version"
    ]
    r = app.client.post(
        f"/api/v1/cases/{ids[0]}/follow-ups",
        json={
            "version": version,
            "outcome": "carried_out",
            "resolved": "resolved",
            "satisfied": "satisfied",
            "notes": f"回访{NAME}，电话{PHONE}，满意",
        },
        headers=app.auth(assignee),
    )
    assert r.status_code == 200, r.text
    loop.run(relay())
    with write_session(database.engine) as s:
        follow_ups.settle_after_follow_up(s, case_id=ids[0], actor=Actor.system())
    # Return visits before each agreement deadline: record them until the case closes.
    for _visit in range(6):
        detail = app.client.get(f"/api/v1/cases/{ids[0]}", headers=app.auth(assignee)).json()
        if detail["case"]["status"] != "follow_up":
            break
        vclock.advance(timedelta(days=20))
        r = app.client.post(
            f"/api/v1/cases/{ids[0]}/follow-ups",
            json={
                "version": detail["case"]["version"],
                "outcome": "carried_out",
                "resolved": "resolved",
                "satisfied": "satisfied",
                "notes": "履约回访",
            },
            headers=app.auth(assignee),
        )
        assert r.status_code == 200, r.text
        with write_session(database.engine) as s:
            follow_ups.settle_after_follow_up(s, case_id=ids[0], actor=Actor.system())
    loop.run(relay())
    answers = []
    for path in (
        "/open311/v2/requests.json",
        "/open311/v2/requests.xml",
        f"/open311/v2/requests/{public.json()[0]['service_request_id']}.json",
        f"/open311/v2/requests/{public.json()[0]['service_request_id']}.xml",
        "/open311/v2/servicerequestupdates.json",
        "/open311/v2/servicerequestupdates.xml",
    ):
        answers.append((path, app.client.get(path).text))
    answers.append(("POST /open311/v2/requests.json", public.text))
    # The resident later withdraws the request: it ends too, so retention covers it.
    number = public.json()[0]["service_request_id"]
    with Session(database.engine) as s:
        filed = s.exec(select(Case).where(Case.number == number)).one()
        handler = next(
            (n for n, st in database.city.staff.items() if st.id == filed.assignee_id), "admin"
        )
        ids.append(int(filed.id or 0))
    r = app.client.post(
        f"/api/v1/cases/{ids[1]}/withdraw",
        json={"version": filed.version, "reason": f"{NAME}本人撤回，电话{PHONE}"},
        headers=app.auth(handler),
    )
    assert r.status_code == 200, r.text
    return ids, answers


async def prefect_text() -> dict[str, str]:
    """Everything the Prefect server holds, as text per kind."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        runs = await client.read_flow_runs(limit=200)
        task_runs = await client.read_task_runs(limit=200)
        logs = await client.read_logs(limit=200)
        artifacts = await client.read_artifacts(limit=200)
        response = await client.request("POST", "/events/filter", json={"limit": 50})
        page = response.json()
        events = list(page.get("events", []))
        while page.get("next_page") and len(events) < 2000:
            page = (await client._client.get(page["next_page"])).json()
            events += page.get("events", [])
    return {
        "flow_runs": "\n".join(f"{r.name} {r.parameters} {r.tags} {r.state_name}" for r in runs),
        "task_runs": "\n".join(f"{t.name} {t.task_inputs} {t.tags}" for t in task_runs),
        "logs": "\n".join(log.message for log in logs),
        "artifacts": "\n".join(f"{a.key} {a.data} {a.description}" for a in artifacts),
        "events": str(events),
        "counts": f"{len(runs)} runs, {len(task_runs)} task runs, {len(logs)} logs, "
        f"{len(artifacts)} artifacts, {len(events)} events",
    }


def dump_hits(
    db_file: Path, *, allow_free_text: bool, only_case: int | None = None
) -> dict[str, int]:
    """Planted values in the database, by table, column and kind; with ``only_case``,
    only in rows of that case (the cases row itself, and rows with its ``case_id``)."""
    found: dict[str, int] = {}
    conn = sqlite3.connect(db_file)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                values = dict(zip(columns, row, strict=True))
                if only_case is not None:
                    owner = values.get("id") if table == "cases" else values.get("case_id")
                    if owner is not None and owner != only_case:
                        continue
                for column, value in values.items():
                    if value is None:
                        continue
                    if (
                        allow_free_text
                        and column in FREE_TEXT_COLUMNS
                        and table not in STRICT_TABLES
                    ):
                        continue
                    for kind, n in hits(str(value)).items():
                        key = f"{table}.{column}:{kind}"
                        found[key] = found.get(key, 0) + n
    finally:
        conn.close()
    return found


class Loop:
    """One event loop for every Prefect call (its clients are kept per loop), shut
    down cleanly at the end so that no socket is left behind."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.get_running_loop().shutdown_asyncgens()

        self.loop.run_until_complete(shutdown())
        self.loop.close()


def run(scale: Scale) -> PromiseResult:
    """Runs :func:`run_here` in a process of its own: the Prefect test server, its
    clients and their sockets live and die there, not in the caller."""
    del scale  # one whole case life is the load at both scales
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.p09_personal_data"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not last.startswith("{"):
        tail = (done.stderr or done.stdout)[-3000:]
        raise RuntimeError(f"personal-data run failed (exit {done.returncode}):\n{tail}")
    data = json.loads(last)
    return PromiseResult(**data)


def run_here() -> PromiseResult:
    import os

    os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
    # As under `tiaojie up`: the Prefect server asks who is calling, and every client of
    # this run (relay, flow runs, the checks below) signs in.
    auth = f"tiaojie:{secrets.token_urlsafe(18)}"
    os.environ["PREFECT_SERVER_API_AUTH_STRING"] = auth
    os.environ["PREFECT_API_AUTH_STRING"] = auth
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from deployments.definitions import STEP_FLOWS
    from flows.relay import InProcessExecutor, Relay

    previous = clock.get_clock()
    clock.set_clock(clock.VirtualClock(clock.now()))
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {}
    loop = Loop()
    try:
        with (
            collect_logs() as logs,
            prefect_test_harness(server_startup_timeout=180),
            sqlite_database() as database,
            use_database(database.url),
            http_app(database, open311_rate_limit_per_min=0) as app,
        ):

            async def relay() -> None:
                await Relay(
                    InProcessExecutor(STEP_FLOWS, concurrency=2), engine=database.engine
                ).run_until_idle()

            anonymous = httpx.post(f"{PREFECT_API_URL.value()}/flows/filter", json={}, timeout=30)
            figures["prefect_anonymous_call_status"] = anonymous.status_code
            ids, answers = whole_life(app, relay, loop)
            with Session(database.engine) as s:
                case = s.get(Case, ids[0])
                assert case is not None
                figures["case_reached"] = case.status.value
            loop.run(asyncio.sleep(2))  # let the log and event batches reach the server
            prefect = loop.run(prefect_text())
            details["prefect"] = prefect.pop("counts")
            for kind, text in prefect.items():
                figures[f"prefect_{kind}_hits"] = total(hits(text))
            figures["app_log_records"] = len(logs.lines)
            figures["app_log_and_traceback_hits"] = total(hits(logs.text()))
            figures["open311_answer_hits"] = sum(total(hits(a)) for _, a in answers)
            details["open311"] = {p: hits(a) for p, a in answers if hits(a)}
            db_file = Path(database.url.removeprefix("sqlite:///"))
            dump = dump_hits(db_file, allow_free_text=True)
            figures["db_dump_hits_outside_free_text"] = sum(dump.values())
            details["dump"] = dump
            figures["free_text_hits_in_db_before_expiry"] = sum(
                dump_hits(db_file, allow_free_text=False).values()
            ) - sum(dump.values())
            # Retention: past the period, the case is anonymised everywhere.
            vclock = clock.get_clock()
            assert isinstance(vclock, clock.VirtualClock)
            vclock.advance(timedelta(days=get_settings().retention_days + 1))
            with write_session(database.engine) as s:
                figures["retention_anonymised_cases"] = anonymise_closed_cases(
                    s, older_than_days=get_settings().retention_days, now=clock.now()
                )
            purge_sqlite_leftovers(database.engine)
            after = dump_hits(db_file, allow_free_text=False)
            figures["db_hits_after_retention"] = sum(after.values())
            details["after"] = after
            raw = b"".join(
                p.read_bytes() for p in db_file.parent.glob(db_file.name + "*") if p.is_file()
            )
            figures["raw_file_hits_after_retention"] = sum(
                raw.count(v.encode("utf-8")) for v in PLANTED.values()
            )
            loop.close()
    finally:
        clock.set_clock(previous)
        # Prefect's HTTP clients of the closed loop leave their keep-alive sockets to the
        # (now stopped) test server for the garbage collector: collect them here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
            gc.collect()
    zero = [k for k in figures if k.endswith("_hits") or k.endswith("after_retention")]
    passed = (
        figures["case_reached"] == "closed"
        and figures["prefect_anonymous_call_status"] == 401
        and figures["retention_anonymised_cases"] >= 1
        and all(figures[k] == 0 for k in zero)
    )
    notes = [f"Prefect held {details['prefect']}"]
    if details["open311"]:
        notes.append(f"Open311 answers holding personal data: {details['open311']}")
    if details["dump"]:
        notes.append(f"dump hits outside free text: {details['dump']}")
    if details["after"]:
        notes.append(f"left after retention: {details['after']}")
    return PromiseResult(
        promise="9 Personal data 个人信息",
        test="tests/reliability/p09_personal_data.py: REST and Open311 intake, outbox relay "
        "and Prefect flow runs (test server), human steps on the API, closure, retention",
        load="one whole case life to closure (and an Open311 request, later withdrawn) with a planted name, phone and "
        "ID number in party fields and in free text",
        faults="personal data typed into free text (description, minutes, names of "
        "participants, notes), bad input carrying it",
        result=figures,
        passed=passed,
        notes=notes,
    )


if __name__ == "__main__":
    print(json.dumps(dataclasses.asdict(run_here()), ensure_ascii=False))
