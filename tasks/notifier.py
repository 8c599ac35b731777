"""Outbound notifications: compose a masked message, record it, deliver it once.

Every notification is first recorded in the ``Notification`` table under a unique key
``"{case_id}:{event seq}:{kind}"``; a redelivery of the same event (a retried task, a
reconciled step, two sweeps at once) finds the row already sent and sends nothing. The
key also travels as the ``Idempotency-Key`` header so that a receiver can drop the one
duplicate left possible (a crash between the send and the ``sent_at`` commit).

Two notifiers: :class:`LogNotifier` (the default: writes the masked text to the log) and
:class:`WebhookNotifier` (``settings.notifier_url``: JSON over one process-wide
``httpx.Client`` with explicit timeouts, retries with exponential backoff that honour
``429 Retry-After``, capped by ``settings.notifier_max_retries``).

Texts carry case numbers, categories, unit names and deadlines only: never a party's
name, phone or ID number, and never the free-text description.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
from sqlmodel import Session, col, select

from models import clock
from models.case import Case
from models.db import write_session
from models.errors import NotificationError, NotificationRejected
from models.event import CaseEvent
from models.notification import Notification
from models.settings import get_settings
from models.staff import Staff
from models.unit import Unit

log = logging.getLogger("tiaojie.notify")

# Event verbs that someone must hear about, and who.
NOTIFY_VERBS: frozenset[str] = frozenset(
    {
        "assigned",
        "reminded",
        "escalated",
        "referred",
        "mediation_started",
        "court_confirmation_reminded",
        "handed_to_committee",
        "referral_returned",
    }
)


@dataclass(frozen=True)
class Message:
    key: str
    case_id: int
    case_number: str
    kind: str
    recipient_id: int | None
    unit_code: str | None
    text: str  # masked: this is what the Notification row keeps

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def about(
        cls, case: Case, *, key: str, kind: str, to: int | None, unit_code: str | None, text: str
    ) -> Message:
        """A message about ``case``: its key begins with the case id (so it is sent once),
        and the text is cut to what a receiver takes (1,000 characters)."""
        assert case.id is not None
        return cls(
            key=f"{case.id}:{key}",
            case_id=case.id,
            case_number=case.number,
            kind=kind,
            recipient_id=to,
            unit_code=unit_code,
            text=text[:1000],
        )


class Notifier(Protocol):
    def send(self, message: Message) -> None:
        """Deliver or raise :class:`NotificationError` / :class:`NotificationRejected`."""


class LogNotifier:
    """Writes the (masked) notification to the log: the default when no webhook is set."""

    def send(self, message: Message) -> None:
        log.info("notify %s → %s: %s", message.key, message.recipient_id, message.text)


_client_lock = threading.Lock()
_shared_client: httpx.Client | None = None


def shared_client() -> httpx.Client:
    """One ``httpx.Client`` per process (connection pooling), with explicit timeouts."""
    global _shared_client
    with _client_lock:
        if _shared_client is None:
            timeout_s = get_settings().notifier_timeout_s
            _shared_client = httpx.Client(
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                headers={"User-Agent": "tiaojie-notifier/0.1"},
            )
        return _shared_client


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


class WebhookNotifier:
    """POST the message as JSON with an ``Idempotency-Key``; retry what can succeed later."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        max_retries: int | None = None,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self._client = client
        self.max_retries = (
            get_settings().notifier_max_retries if max_retries is None else max_retries
        )
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep

    @property
    def client(self) -> httpx.Client:
        return self._client or shared_client()

    def _wait(self, attempt: int, hint: float | None) -> None:
        if hint is not None:
            delay = min(hint, self.max_wait_s)
        else:
            base = min(self.backoff_s * (2**attempt), self.max_wait_s)
            delay = base / 2 + random.uniform(0, base / 2)  # jitter
        self._sleep(delay)

    def payload(self, message: Message) -> dict[str, Any]:
        return message.as_json()

    def headers(self, message: Message) -> dict[str, str]:
        return {"Idempotency-Key": message.key}

    def send(self, message: Message) -> None:
        problem = "no attempt made"
        for attempt in range(self.max_retries + 1):
            hint: float | None = None
            try:
                response = self.client.post(
                    self.url, json=self.payload(message), headers=self.headers(message)
                )
            except httpx.TimeoutException as exc:
                problem = f"timeout: {type(exc).__name__}"
            except httpx.TransportError as exc:
                problem = f"transport error: {type(exc).__name__}"
            else:
                status = response.status_code
                if status < 300:
                    return
                if status == 429:
                    hint = _retry_after_s(response)
                    problem = "429 too many requests"
                elif status == 408 or status >= 500:
                    problem = f"HTTP {status}"
                else:
                    raise NotificationRejected(
                        f"notification {message.key} refused by the receiver: HTTP {status}",
                        f"通知 {message.key} 被接收方拒绝：HTTP {status}",
                    )
            if attempt < self.max_retries:
                self._wait(attempt, hint)
        raise NotificationError(
            f"notification {message.key} not delivered after {self.max_retries + 1} "
            f"attempts ({problem})",
            f"通知 {message.key} 经 {self.max_retries + 1} 次尝试仍未送达（{problem}）",
        )


_notifier: Notifier | None = None


def get_notifier() -> Notifier:
    """The configured notifier: a webhook when ``settings.notifier_url`` is set, else logs."""
    if _notifier is not None:
        return _notifier
    url = get_settings().notifier_url
    return WebhookNotifier(url) if url else LogNotifier()


def set_notifier(notifier: Notifier | None) -> None:
    """Replace the notifier for this process (tests, embedding); None restores the default."""
    global _notifier
    _notifier = notifier


# --- composing ---------------------------------------------------------------------


def _due_text(value: datetime | None) -> str:
    return clock.format_local(value) if value else "—"


def compose(session: Session, *, case: Case, event: CaseEvent) -> Message | None:
    """The message for one event, or None when nobody needs to hear about it."""
    assert case.id is not None
    verb = event.verb
    if verb not in NOTIFY_VERBS:
        return None
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    unit_code = unit.code if unit else None
    unit_zh = unit.name_zh if unit else "—"
    unit_en = unit.name_en if unit else "-"
    cat = case.category
    number = case.number
    due = _due_text(case.resolution_due_at)
    recipient: int | None = case.assignee_id
    data = event.data or {}
    if verb in ("assigned", "handed_to_committee", "referral_returned"):
        if case.assignee_id is None:
            return None
        staff = session.get(Staff, case.assignee_id)
        who = staff.display_name if staff else str(case.assignee_id)
        tag = {"assigned": "派单", "handed_to_committee": "转调委会", "referral_returned": "退单"}
        text = (
            f"【{tag[verb]}】案件 {number}（{cat.zh}）已派给 {unit_zh} {who}，请于 {due} 前办结。"
            f" / Case {number} ({cat.en}) is assigned to {who} at {unit_en}; "
            f"resolve by {due}."
        )
    elif verb == "reminded":
        text = (
            f"【催办】案件 {number}（{cat.zh}）将于 {due} 到期，请抓紧办理。"
            f" / Reminder: case {number} ({cat.en}) is due {due}."
        )
    elif verb == "escalated":
        recipient = None
        level = data.get("level", case.escalation_level)
        text = (
            f"【提级督办】案件 {number}（{cat.zh}）逾期未办结，"
            f"已提级至 {unit_zh}（第 {level} 级），"
            f"新时限 {due}。 / Case {number} ({cat.en}) is overdue and escalated to "
            f"{unit_en} (level {level}); new limit {due}."
        )
    elif verb == "referred":
        target = case.referral_target
        target_zh = target.zh if target else "—"
        target_en = target.en if target else "-"
        text = (
            f"【移交】案件 {number}（{cat.zh}）已移交 {target_zh} {unit_zh}。"
            f" / Case {number} ({cat.en}) is referred to {target_en} {unit_en}."
        )
    elif verb == "court_confirmation_reminded":
        mediators = data.get("mediator_ids") or []
        recipient = int(mediators[0]) if mediators else case.assignee_id
        day, deadline = data.get("day"), data.get("deadline")
        text = (
            f"【司法确认】案件 {number} 的调解协议生效已满 {day} 日，双方可于 {deadline} 前共同"
            f"申请司法确认。 / Case {number}: day {day} of the 30-day window for court "
            f"confirmation of its agreement; the parties may apply until {deadline}."
        )
    else:  # mediation_started
        mdue = _due_text(case.mediation_due_at)
        text = (
            f"【调解】案件 {number}（{cat.zh}）各方已同意调解，请于 {mdue} 前完成调解。"
            f" / Mediation of case {number} ({cat.en}) has started; finish by {mdue}."
        )
    return Message.about(
        case, key=f"{event.seq}:{verb}", kind=verb, to=recipient, unit_code=unit_code, text=text
    )


def pending_messages(session: Session, *, case_id: int) -> list[Message]:
    """Messages owed for this case's events that have not been sent yet (oldest first)."""
    case = session.get(Case, case_id)
    if case is None:
        return []
    events = session.exec(
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id, col(CaseEvent.verb).in_(NOTIFY_VERBS))
        .order_by(col(CaseEvent.seq))
    ).all()
    if not events:
        return []
    keys = [f"{case_id}:{e.seq}:{e.verb}" for e in events]
    sent = set(
        session.exec(
            select(Notification.idempotency_key).where(
                col(Notification.idempotency_key).in_(keys),
                col(Notification.sent_at).is_not(None),
            )
        ).all()
    )
    # Only the latest event of each verb matters: an old reminder superseded by an
    # escalation, or an assignment before a re-assignment, is history, not news.
    latest: dict[str, CaseEvent] = {e.verb: e for e in events}
    messages = []
    for event in sorted(latest.values(), key=lambda e: e.seq):
        if f"{case_id}:{event.seq}:{event.verb}" in sent:
            continue
        message = compose(session, case=case, event=event)
        if message is not None:
            messages.append(message)
    return messages


# --- delivering once ------------------------------------------------------------------


def _new_row(message: Message) -> Notification:
    """The record of a message about to be sent for the first time."""
    return Notification(
        case_id=message.case_id,
        idempotency_key=message.key,
        recipient_id=message.recipient_id,
        kind=message.kind,
        text=message.text,
        created_at=clock.now(),
    )


def deliver(message: Message, *, notifier: Notifier | None = None) -> str:
    """Record, send and mark sent. Returns ``"sent"`` or ``"already_sent"``."""
    notifier = notifier or get_notifier()
    with write_session() as session:
        row = session.exec(
            select(Notification).where(Notification.idempotency_key == message.key)
        ).first()
        if row is not None and row.sent_at is not None:
            return "already_sent"
        if row is None:
            row = _new_row(message)
        row.attempts += 1
        session.add(row)
    try:
        notifier.send(message)
    except NotificationError as exc:
        with write_session() as session:
            failed = session.exec(
                select(Notification).where(Notification.idempotency_key == message.key)
            ).one()
            failed.last_error = exc.message_en[:500]
            session.add(failed)
        raise
    with write_session() as session:
        done = session.exec(
            select(Notification).where(Notification.idempotency_key == message.key)
        ).one()
        done.sent_at = clock.now()
        done.last_error = None
        session.add(done)
    return "sent"


def deliver_many(
    messages: Sequence[Message], *, notifier: Notifier | None = None
) -> dict[str, int]:
    """:func:`deliver` for many messages at once (after a sweep): the same steps (record,
    send, mark sent), but one transaction records the whole batch and one marks it, not
    two per message. A failed send is recorded on its row and counted; the rest go on."""
    notifier = notifier or get_notifier()
    counts = {"sent": 0, "already_sent": 0, "failed": 0}
    by_key = {m.key: m for m in messages}
    keys = list(by_key)
    todo: list[Message] = []
    with write_session() as session:
        rows = _rows_by_key(session, keys)
        for key, message in by_key.items():
            row = rows.get(key)
            if row is not None and row.sent_at is not None:
                counts["already_sent"] += 1
                continue
            if row is None:
                row = _new_row(message)
            row.attempts += 1
            session.add(row)
            todo.append(message)
    sent: set[str] = set()
    errors: dict[str, str] = {}
    for message in todo:
        try:
            notifier.send(message)
        except NotificationError as exc:
            errors[message.key] = exc.message_en[:500]
            continue
        sent.add(message.key)
    if todo:
        with write_session() as session:
            stamp = clock.now()
            for key, row in _rows_by_key(session, [m.key for m in todo]).items():
                if key in sent:
                    row.sent_at = stamp
                    row.last_error = None
                else:
                    row.last_error = errors.get(key, "not sent")
                session.add(row)
    counts["sent"] = len(sent)
    counts["failed"] = len(errors)
    return counts


def _rows_by_key(session: Session, keys: Sequence[str]) -> dict[str, Notification]:
    rows: dict[str, Notification] = {}
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        for row in session.exec(
            select(Notification).where(col(Notification.idempotency_key).in_(chunk))
        ).all():
            rows[row.idempotency_key] = row
    return rows


def follow_up_messages(session: Session, *, case_ids: list[int], now: datetime) -> list[Message]:
    """A reminder to the named visitor (else the assignee, else the liaison) for each
    return visit now due and not yet done (one per visit: the key names the visit)."""
    from models.follow_up import FollowUp

    if not case_ids:
        return []
    visits = session.exec(
        select(FollowUp)
        .where(
            col(FollowUp.case_id).in_(case_ids),
            col(FollowUp.done_at).is_(None),
            col(FollowUp.due_at) <= now,
        )
        .order_by(col(FollowUp.due_at))
    ).all()
    messages = []
    for visit in visits:
        case = session.get(Case, visit.case_id)
        if case is None or case.id is None:
            continue
        due = _due_text(visit.due_at)
        messages.append(
            Message.about(
                case,
                key=f"visit{visit.id}:follow_up_due",
                kind="follow_up_due",
                to=visit.visitor_id or case.assignee_id or case.liaison_id,
                unit_code=None,
                text=(
                    f"【回访】案件 {case.number}（{case.category.zh}）的{visit.kind.zh}已到期"
                    f"（{due}），请回访并记录满意度。 / Return visit for case {case.number} "
                    f"({case.category.en}, {visit.kind.en}) is due ({due}); please call and "
                    "record the rating."
                ),
            )
        )
    return messages


# --- danger and early warning ---------------------------------------------------------


def risk_messages(session: Session, *, case_id: int) -> list[Message]:
    """What a dangerous or unsettling case owes: an emergency notice to the community
    leader and the on-duty supervisor; the early warning's assessment task to its
    responsible leader (包案领导). Texts name the case, its category, the level and the
    kinds of risk found, never the complaint's words."""
    from models import risk
    from models.enums import Priority
    from models.triage_tables import RiskWarning
    from models.warning import emergency_recipients

    case = session.get(Case, case_id)
    if case is None or case.id is None:
        return []
    out: list[Message] = []
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    unit_code = unit.code if unit else None
    if case.priority == Priority.EMERGENCY:
        # The kinds of danger only (持械, 火情...): never the complaint's own words.
        why = "；".join(f.zh for f in risk.danger(case.description))
        for staff in emergency_recipients(session, case):
            out.append(
                Message.about(
                    case,
                    key=f"emergency:{staff.id}",
                    kind="emergency",
                    to=staff.id,
                    unit_code=unit_code,
                    text=(
                        f"【紧急】案件 {case.number}（{case.category.zh}）可能危及人身安全"
                        f"{'：' + why if why else ''}，请立即处置，当日办结。 / EMERGENCY: case "
                        f"{case.number} ({case.category.en}) may endanger life or safety; act "
                        "now, resolve today."
                    ),
                )
            )
    warning = session.exec(select(RiskWarning).where(RiskWarning.case_id == case.id)).first()
    if warning is not None and warning.leader_id is not None:
        street = session.get(Unit, warning.street_unit_id)
        due = _due_text(warning.due_at)
        level = {"red": "红色", "orange": "橙色", "yellow": "黄色"}.get(warning.level, "")
        out.append(
            Message.about(
                case,
                key=f"risk:{warning.id}:leader",
                kind="risk_warning",
                to=warning.leader_id,
                unit_code=street.code if street else unit_code,
                text=(
                    f"【{level}预警·研判】案件 {case.number}（{case.category.zh}）存在不稳定风险，"
                    f"请作为包案领导于 {due} 前组织研判。 / {warning.level.upper()} WARNING: "
                    f"case {case.number} ({case.category.en}) shows a risk of unrest; as the "
                    f"responsible leader, assess it by {due}."
                ),
            )
        )
    return out
