"""Promise 1: idempotent intake through the real HTTP app.

Submissions from several staff accounts, each with its own ``Idempotency-Key``; 5% are
sent again with the same key and body (a fifth of those as two requests released
together by a barrier, i.e. racing within milliseconds), 1% reuse a key with another
body. Every submission carries a unique marker in its description, so the database can
be checked key by key: lost (an accepted key with no case), duplicated (a marker on two
cases) and conflicting body accepted (a reused key answered 2xx).
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.case import Case
from models.event import CaseEvent
from tests.factories import ID_NUMBER, NAME, PHONE
from tests.reliability.common import App, PromiseResult, Scale, http_app, sqlite_database

USERS = ("workerA", "workerB", "mediatorA", "gridB")
# The place rule: staff file only within their own area, so each account files in its own.
PLACES = {"workerA": "BA1", "workerB": "BB1", "mediatorA": "BA2", "gridB": "BB2"}


def body(marker: str, place: str, *, other: bool = False) -> dict[str, Any]:
    text = "楼上邻居装修噪音扰民" if other else "电子厂拖欠工人三个月工资，多次讨要未果"
    return {
        "category": "neighbour" if other else "labour",
        "description": f"{text}。登记编号 {marker}",
        "place_code": place,
        "people_affected": 3,
        "parties": [
            {
                "side": "complainant",
                "kind": "person",
                "name": NAME,
                "phone": PHONE,
                "id_number": ID_NUMBER,
            },
            {"side": "respondent", "kind": "firm", "name": "江心市恒达电子厂"},
        ],
    }


@dataclass
class Outcome:
    marker: str
    user: str
    kind: str  # "once" | "retry" | "race" | "conflict"
    statuses: list[int]
    case_ids: list[int]


def run(scale: Scale) -> PromiseResult:
    n = scale.pick(400, 10_000)
    rng = random.Random(scale.seed)
    plan: list[tuple[str, str, str]] = []
    for i in range(n):
        roll = rng.random()
        kind = "once"
        if roll < 0.01:
            kind = "conflict"
        elif roll < 0.06:
            kind = "race" if rng.random() < 0.2 else "retry"
        plan.append((f"M{i:06d}-{rng.getrandbits(32):08x}", USERS[i % len(USERS)], kind))
    # At least a few of each kind even at the short scale.
    for i, kind in enumerate(("race", "race", "retry", "retry", "conflict", "conflict")):
        marker, user, _ = plan[i * 7]
        plan[i * 7] = (marker, user, kind)

    with sqlite_database() as database, http_app(database) as app:
        tokens = {u: app.auth(u) for u in USERS}
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(lambda p: submit(app, tokens, *p), plan))
        seconds = time.perf_counter() - started
        figures = check(app, outcomes)
    figures["seconds"] = round(seconds, 1)
    passed = (
        figures["lost"] == 0
        and figures["duplicated"] == 0
        and figures["conflicting_body_accepted"] == 0
        and figures["server_errors"] == 0
    )
    kinds = {k: sum(1 for o in outcomes if o.kind == k) for k in ("retry", "race", "conflict")}
    return PromiseResult(
        promise="1 Idempotent intake 受理幂等",
        test="tests/reliability/p01_intake.py: POST /api/v1/cases through the real app "
        "(ASGI, 8 client threads, SQLite file)",
        load=f"{n:,} submissions by 4 accounts; {kinds['retry']} retried, "
        f"{kinds['race']} raced (2 requests released by a barrier), "
        f"{kinds['conflict']} key reused with another body",
        faults="duplicate and racing retries, key reuse with a different body",
        result=figures,
        passed=passed,
    )


def submit(
    app: App, tokens: dict[str, dict[str, str]], marker: str, user: str, kind: str
) -> Outcome:
    headers = {**tokens[user], "Idempotency-Key": f"intake-{marker}"}
    first = body(marker, PLACES[user])
    outcome = Outcome(marker, user, kind, [], [])

    def send(payload: dict[str, Any]) -> None:
        r = app.client.post("/api/v1/cases", json=payload, headers=headers)
        outcome.statuses.append(r.status_code)
        if r.status_code < 300:
            outcome.case_ids.append(int(r.json()["case"]["id"]))

    if kind == "race":
        barrier = threading.Barrier(2)

        def racer() -> None:
            barrier.wait()
            send(first)

        threads = [threading.Thread(target=racer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return outcome
    send(first)
    if kind == "retry":
        send(first)
    elif kind == "conflict":
        send(body(marker, PLACES[user], other=True))
    return outcome


def check(app: App, outcomes: list[Outcome]) -> dict[str, Any]:
    with Session(app.database.engine) as s:
        rows = s.exec(select(Case.id, Case.description)).all()
        events = int(s.exec(select(func.count()).select_from(CaseEvent)).one())
        submitted = int(
            s.exec(
                select(func.count())
                .select_from(CaseEvent)
                .where(col(CaseEvent.verb) == "submitted")
            ).one()
        )
    by_marker: dict[str, list[int]] = {}
    for case_id, description in rows:
        assert case_id is not None
        by_marker.setdefault(description.rsplit(" ", 1)[-1], []).append(case_id)
    lost = duplicated = conflicting = server_errors = replays_differ = 0
    for o in outcomes:
        server_errors += sum(1 for st in o.statuses if st >= 500)
        stored = by_marker.get(o.marker, [])
        if o.kind == "conflict":
            # First answer 201, the second (other body, same key) must be refused.
            if len(o.statuses) > 1 and o.statuses[1] < 300:
                conflicting += 1
            accepted = o.case_ids[:1]
        else:
            accepted = o.case_ids
        if accepted and not stored:
            lost += 1
        if not accepted:
            lost += 1  # never accepted at all: the resident's complaint is not recorded
        if len(stored) > 1:
            duplicated += 1
        if len(set(accepted)) > 1 or (accepted and stored and accepted[0] not in stored):
            replays_differ += 1
    return {
        "requests": sum(len(o.statuses) for o in outcomes),
        "cases": len(rows),
        "lost": lost,
        "duplicated": duplicated + replays_differ,
        "conflicting_body_accepted": conflicting,
        "server_errors": server_errors,
        "submitted_events": submitted,
        "events": events,
    }
