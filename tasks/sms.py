"""The SMS gateway adapter: the complainant's receipt (回执短信) and the one-use links
(models/resident_links.py) sent to the parties.

One receipt per complainant with a phone, one message per link: each is a notification
like the others (:mod:`tasks.notifier`), recorded under its key before it is sent, so a
retried step or a re-driven intake finds it sent and sends nothing; the key also goes
to the gateway as ``Idempotency-Key`` for the one duplicate left possible (a worker
killed between the send and the commit that marks it sent). What failed is sent again
by the sweep (:func:`resident_upkeep`), still once each.

A receipt carries the case number, the tracking code and the page's address only; a
link message the case number, what it asks and the link. No name, no description. The
phone number, the code and the link go to the gateway alone; the notification row keeps
the text with them masked.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from models import clock, pii, resident_links, tracking
from models.case import Case
from models.cases import parties_of
from models.db import read_session, write_session
from models.enums import PartySide
from models.errors import NotificationError
from models.follow_ups import due_follow_ups
from models.notification import Notification
from models.party import Party
from models.resident import purge_expired
from models.resident_tables import ResidentLink
from models.settings import get_settings
from tasks.notifier import LogNotifier, Message, Notifier, WebhookNotifier, deliver
from tasks.steps import sweep_task

log = logging.getLogger("tiaojie.sms")


@dataclass(frozen=True)
class SmsMessage(Message):
    """A text message: ``to`` and ``params`` are for the gateway only (never stored)."""

    to: str = ""
    template: str = ""
    params: dict[str, str] = field(default_factory=dict)


class SmsGateway(WebhookNotifier):
    """POST ``{"to", "template", "params"}`` to the gateway with its API key; retries,
    backoff and ``Retry-After`` as every webhook (:class:`tasks.notifier.WebhookNotifier`)."""

    def __init__(self, url: str, *, key: str | None = None, **kw: Any) -> None:
        super().__init__(url, **kw)
        self.key = key

    def payload(self, message: Message) -> dict[str, Any]:
        assert isinstance(message, SmsMessage)
        return {"to": message.to, "template": message.template, "params": message.params}

    def headers(self, message: Message) -> dict[str, str]:
        headers = super().headers(message)
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers


def sms_gateway() -> Notifier:
    settings = get_settings()
    if not settings.sms_url:
        return LogNotifier()  # logs the masked text only
    key = settings.sms_key.get_secret_value() if settings.sms_key else None
    return SmsGateway(settings.sms_url, key=key)


def _complainant_phones(session: Any, case: Case) -> list[tuple[int, str]]:
    assert case.id is not None
    return [
        (p.id or 0, pii.decrypt(p.phone_enc))
        for p in parties_of(session, case_id=case.id)
        if p.side == PartySide.COMPLAINANT and p.phone_enc
    ]


def receipt_messages(session: Any, *, case: Case) -> list[SmsMessage]:
    """The receipt for each complainant with a phone (a group case has several, and
    each of them may follow the case with the last four digits of their own phone).
    The first keeps the key receipts always had (``{case}:receipt``), so one sent
    before is not sent again; the others are keyed by their party."""
    assert case.id is not None
    if not case.tracking_hash:
        return []
    code = tracking.code_for(case.number)
    link = f"{get_settings().web_base_url}/r/{code}"
    masked = f"****-****-****-{code[-4:]}"
    return [
        SmsMessage(
            key=f"{case.id}:receipt" if n == 0 else f"{case.id}:receipt:{party_id}",
            case_id=case.id,
            case_number=case.number,
            kind="receipt",
            recipient_id=None,
            unit_code=None,
            text=f"【回执】案件 {case.number} 已登记，查询码 {masked} / receipt sent",
            to=phone,
            template=get_settings().sms_receipt_template,
            params={"number": case.number, "code": code, "link": link},
        )
        for n, (party_id, phone) in enumerate(_complainant_phones(session, case))
    ]


def send_receipt_sync(case_id: int, *, notifier: Notifier | None = None) -> list[str]:
    """For each receipt of the case: ``"sent"`` or ``"already_sent"``; ``["no_phone"]``
    when nobody can be texted. The first that cannot be delivered raises."""
    with read_session() as session:
        case = session.get(Case, case_id)
        messages = receipt_messages(session, case=case) if case is not None else []
    if not messages:
        return ["no_phone"]
    gateway = notifier or sms_gateway()
    return [deliver(message, notifier=gateway) for message in messages]


def send_receipts_sync(case_ids: list[int], *, notifier: Notifier | None = None) -> dict[str, int]:
    """Each case's receipts; a case whose receipt cannot be delivered is counted (its
    notification row keeps the error, and the sweep sends it again later) and the
    others go on."""
    counts = {"sent": 0, "already_sent": 0, "no_phone": 0, "failed": 0}
    for case_id in case_ids:
        try:
            for outcome in send_receipt_sync(case_id, notifier=notifier):
                counts[outcome] += 1
        except NotificationError as exc:
            counts["failed"] += 1
            log.warning("receipt for case id %s not delivered: %s", case_id, exc.code)
    return counts


@sweep_task("send_receipts")
async def send_receipts(case_ids: list[int]) -> dict[str, int]:
    """Retried as a whole when the process fails; receipts already sent are not resent."""
    return await asyncio.to_thread(send_receipts_sync, case_ids)


# --- one-use links (models/resident_links.py) --------------------------------------------


def link_message(session: Any, *, link: ResidentLink) -> SmsMessage | None:
    """The SMS that carries ``link`` to its party (None: the phone is gone). The row
    keeps the text with the link masked; the gateway alone gets the phone and the link."""
    case = session.get(Case, link.case_id)
    party = session.get(Party, link.party_id)
    if case is None or party is None or not party.phone_enc:
        return None
    purpose = resident_links.PURPOSES[link.purpose]
    url = resident_links.url_of(link)
    until = clock.format_local(link.expires_at)
    return SmsMessage(
        key=resident_links.message_key(link),
        case_id=link.case_id,
        case_number=case.number,
        kind="resident_link",
        recipient_id=None,
        unit_code=None,
        text=f"【{purpose.zh}】案件 {case.number}，一次性链接 …{url[-4:]}，{until} 前有效"
        f" / one-use link ({purpose.en})",
        to=pii.decrypt(party.phone_enc),
        template=get_settings().sms_link_template,
        params={"number": case.number, "action": purpose.zh, "link": url, "until": until},
    )


def send_links_sync(
    case_ids: list[int], *, purposes: tuple[str, ...], notifier: Notifier | None = None
) -> dict[str, int]:
    """Issue the links these cases owe for ``purposes`` and send each live one once (a
    retried step, a second sweep or a lost answer sends nothing twice: the link is one
    row, its message one key)."""
    counts = {"sent": 0, "already_sent": 0, "failed": 0}
    gateway = notifier or sms_gateway()
    for case_id in case_ids:
        with write_session() as session:
            case = session.get(Case, case_id)
            links = resident_links.issue(session, case=case, purposes=purposes) if case else []
            messages = [m for k in links if (m := link_message(session, link=k)) is not None]
        for message in messages:
            try:
                counts[deliver(message, notifier=gateway)] += 1
            except NotificationError as exc:
                counts["failed"] += 1
                log.warning("link for case id %s not delivered: %s", case_id, exc.code)
    return counts


ASKING_CONSENT = ("consent", "respondent")
AT_RETURN_VISIT = ("terms", "visit")


@sweep_task("send_resident_links")
async def send_resident_links(case_ids: list[int], purposes: tuple[str, ...]) -> dict[str, int]:
    """Retried as a whole when the process fails; a link already sent is not resent."""
    return await asyncio.to_thread(send_links_sync, case_ids, purposes=purposes)


# --- the sweep: what failed is sent again; what expired is deleted -----------------------


def resend_failed_sync(*, notifier: Notifier | None = None) -> dict[str, int]:
    """Receipts and links whose SMS failed (or was never sent: a worker stopped between
    issuing and sending) within ``settings.sms_resend_hours``, sent again: still once
    each, by key."""
    since = clock.now() - timedelta(hours=get_settings().sms_resend_hours)
    with read_session() as session:
        receipts = sorted(
            set(
                session.exec(
                    select(Notification.case_id).where(
                        Notification.kind == "receipt",
                        col(Notification.sent_at).is_(None),
                        col(Notification.created_at) >= since,
                    )
                ).all()
            )
        )
        links = resident_links.unsent_link_cases(session, since=since)
    gateway = notifier or sms_gateway()
    done = send_receipts_sync(receipts, notifier=gateway) if receipts else {}
    again = (
        send_links_sync(links, purposes=tuple(resident_links.PURPOSES), notifier=gateway)
        if links
        else {}
    )
    return {
        "receipts_sent": done.get("sent", 0),
        "links_sent": again.get("sent", 0),
        "failed": done.get("failed", 0) + again.get("failed", 0),
    }


@sweep_task("resident_upkeep")
async def resident_upkeep() -> dict[str, int]:
    """Send again what failed, then delete expired sessions, links and idle code locks."""

    def run() -> dict[str, int]:
        counts = resend_failed_sync()
        with write_session() as session:
            counts |= purge_expired(session, now=clock.now())
        return counts

    return await asyncio.to_thread(run)


def return_visit_links_sync(*, notifier: Notifier | None = None) -> dict[str, int]:
    """At a due return visit, the complainant's links to confirm the agreed terms and to
    answer the visit themselves (issued once per party; sent once)."""
    with read_session() as session:
        due = due_follow_ups(session, now=clock.now())
        # Cases already given their visit links are not looked at again (a link that
        # failed to go is the resend sweep's, by its notification row).
        done = set(
            session.exec(
                select(ResidentLink.case_id).where(
                    col(ResidentLink.case_id).in_(due), ResidentLink.purpose == "visit"
                )
            ).all()
        )
    todo = [i for i in due if i not in done]
    return send_links_sync(todo, purposes=AT_RETURN_VISIT, notifier=notifier)


@sweep_task("send_return_visit_links")
async def send_return_visit_links() -> dict[str, int]:
    """Retried as a whole when the process fails; a link already sent is not resent."""
    return await asyncio.to_thread(return_visit_links_sync)
