"""Promise 7: outbound notifications under network faults.

Cases are assigned (each owes its assignee a notification); the notify task's body
(``tasks.notify.notify_case_sync``) sends them through the real
:class:`~tasks.notifier.WebhookNotifier` to a receiver on an ``httpx.MockTransport``
that fails 30% of the requests, seeded: read timeouts before the receiver sees the
request, read timeouts AFTER it has processed it (the answer is lost), 500s, 429 with
``Retry-After`` and connection resets. The receiver processes each ``Idempotency-Key``
once, as the notifier's contract asks of it. A failed task run is retried as its Prefect
task is (3 retries), then by later runs (the reconciler) until nothing is owed.

Measured: delivered (processed by the receiver) 100%, duplicates processed 0, HTTP
attempts per message per task run within the notifier's cap, and every ``Retry-After``
honoured (the notifier's wait equals the hint, within its own ceiling).
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from typing import Any

import httpx
from sqlmodel import Session, select

from models.db import write_session
from models.errors import NotificationError
from models.notification import Notification
from models.settings import get_settings
from tasks import notifier as notifier_module
from tasks.notify import notify_case_sync
from tests.factories import advance_to_assigned, make_case
from tests.reliability.common import PromiseResult, Scale, sqlite_database, use_database

FAULTS = ("timeout_before", "timeout_after", "http_500", "http_429", "reset")


class FaultyReceiver:
    def __init__(self, seed: int, fault_rate: float) -> None:
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.lock = threading.Lock()
        self.processed: Counter[str] = Counter()  # what the receiver acted on, by key
        self.arrivals: Counter[str] = Counter()  # every request that reached it
        self.attempts: Counter[str] = Counter()  # every request the notifier made
        self.faults: Counter[str] = Counter()
        self.retry_after_given: list[float] = []
        self.by_event: dict[tuple[int, str], set[str]] = {}
        self.pending_hint: float | None = None
        self.hints_checked = 0
        self.hints_honoured = 0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        """The notifier's sleep, on a virtual clock: checks a 429's hint was honoured."""
        self.waits.append(seconds)
        if self.pending_hint is not None:
            self.hints_checked += 1
            self.hints_honoured += seconds == self.pending_hint
            self.pending_hint = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("Idempotency-Key", "")
        with self.lock:
            self.attempts[key] += 1
            fault = self.rng.choice(FAULTS) if self.rng.random() < self.fault_rate else None
            if fault:
                self.faults[fault] += 1
        self.pending_hint = None
        if fault == "timeout_before":
            raise httpx.ReadTimeout("injected timeout", request=request)
        if fault == "reset":
            raise httpx.RemoteProtocolError("injected connection reset", request=request)
        if fault == "http_500":
            return httpx.Response(500, json={"error": "injected"})
        if fault == "http_429":
            wait = float(self.rng.choice((1, 2, 5)))
            with self.lock:
                self.retry_after_given.append(wait)
                self.pending_hint = wait
            return httpx.Response(429, headers={"Retry-After": str(int(wait))})
        body = json.loads(request.content)
        with self.lock:
            self.arrivals[key] += 1
            if self.processed[key] == 0:
                self.by_event.setdefault((body["case_id"], body["kind"]), set()).add(key)
            self.processed[key] += 1  # counted; a real receiver acts on the first only
        if fault == "timeout_after":
            raise httpx.ReadTimeout("injected timeout after processing", request=request)
        return httpx.Response(200, json={"ok": True})


def run(scale: Scale) -> PromiseResult:
    cases = scale.pick(150, 2000)
    receiver = FaultyReceiver(scale.seed, 0.30)
    cap = get_settings().notifier_max_retries
    with sqlite_database() as database, use_database(database.url):
        with write_session(database.engine) as s:
            ids = []
            for _ in range(cases):
                case = make_case(s, parties=[])
                advance_to_assigned(s, case, database.city)
                assert case.id is not None
                ids.append(case.id)
        client = httpx.Client(transport=httpx.MockTransport(receiver.handle), timeout=5)
        notifier_module.set_notifier(
            notifier_module.WebhookNotifier(
                "http://receiver.test/notify", client=client, sleep=receiver.sleep
            )
        )
        owed = set(ids)
        runs = failed_runs = 0
        max_attempts_per_run = 0
        try:
            for _round in range(12):  # 1 try + 3 task retries, then later runs
                if not owed:
                    break
                for case_id in sorted(owed):
                    before = dict(receiver.attempts)
                    runs += 1
                    try:
                        notify_case_sync(case_id)
                        owed.discard(case_id)
                    except NotificationError:
                        failed_runs += 1
                    for key, n in receiver.attempts.items():
                        max_attempts_per_run = max(max_attempts_per_run, n - before.get(key, 0))
        finally:
            notifier_module.set_notifier(None)
            client.close()
        with Session(database.engine) as s:
            rows = s.exec(select(Notification)).all()
            unsent = sum(1 for r in rows if r.sent_at is None)
            keys = [r.idempotency_key for r in rows]
    expected = len(ids)
    delivered = sum(1 for k in keys if receiver.processed[k] > 0)
    two_keys_one_event = sum(1 for v in receiver.by_event.values() if len(v) > 1)
    figures: dict[str, Any] = {
        "notifications": expected,
        "http_requests": sum(receiver.attempts.values()),
        "faults_injected": sum(receiver.faults.values()),
        **{f"faults_{k}": v for k, v in sorted(receiver.faults.items())},
        "delivered_pct": round(100.0 * delivered / expected, 2) if expected else 0.0,
        "unsent_rows": unsent,
        "redeliveries_absorbed_by_key": sum(receiver.processed.values()) - len(receiver.processed),
        "duplicates_processed": two_keys_one_event,
        "task_runs": runs,
        "task_runs_failed_then_retried": failed_runs,
        "max_http_attempts_per_run": max_attempts_per_run,
        "attempt_cap": cap + 1,
        "retry_after_honoured": f"{receiver.hints_honoured}/{receiver.hints_checked}",
    }
    passed = (
        figures["delivered_pct"] == 100.0
        and unsent == 0
        and two_keys_one_event == 0
        and len(keys) == len(set(keys)) == expected
        and max_attempts_per_run <= cap + 1
        and receiver.hints_honoured == receiver.hints_checked > 0
    )
    return PromiseResult(
        promise="7 Notifications under network faults 通知与网络故障",
        test="tests/reliability/p07_notifications.py: tasks.notify.notify_case_sync with the "
        "real WebhookNotifier against a faulty receiver (httpx.MockTransport)",
        load=f"{expected:,} assignment notifications",
        faults="30% of requests: read timeouts (before and after the receiver acted), "
        "HTTP 500, HTTP 429 with Retry-After, connection resets (seeded)",
        result=figures,
        passed=passed,
    )
