"""The SMS gateway adapter and the complainant's receipt (回执短信).

One receipt per case: it is a notification like the others (:mod:`tasks.notifier`),
recorded under the key ``"{case_id}:receipt"`` before it is sent, so a retried step or
a re-driven intake finds it sent and sends nothing; the key also goes to the gateway as
``Idempotency-Key`` for the one duplicate left possible (a worker killed between the
send and the commit that marks it sent).

The message carries the case number, the tracking code and the page's address only:
no name, no description. The phone number and the code go to the gateway alone; the
notification row keeps the text with the code masked.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from models import pii, tracking
from models.case import Case
from models.cases import parties_of
from models.db import read_session
from models.enums import PartySide
from models.errors import NotificationError
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


def receipt_message(session: Any, *, case: Case) -> SmsMessage | None:
    """The receipt for the case's first complainant with a phone (None: nobody to text)."""
    assert case.id is not None
    if not case.tracking_hash:
        return None
    phone = next(
        (
            pii.decrypt(p.phone_enc)
            for p in parties_of(session, case_id=case.id)
            if p.side == PartySide.COMPLAINANT and p.phone_enc
        ),
        None,
    )
    if phone is None:
        return None
    code = tracking.code_for(case.number)
    link = f"{get_settings().web_base_url}/r/{code}"
    masked = f"****-****-****-{code[-4:]}"
    return SmsMessage(
        key=f"{case.id}:receipt",
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


def send_receipt_sync(case_id: int, *, notifier: Notifier | None = None) -> str:
    """``"sent"``, ``"already_sent"`` or ``"no_phone"``."""
    with read_session() as session:
        case = session.get(Case, case_id)
        message = receipt_message(session, case=case) if case is not None else None
    if message is None:
        return "no_phone"
    return deliver(message, notifier=notifier or sms_gateway())


def send_receipts_sync(case_ids: list[int], *, notifier: Notifier | None = None) -> dict[str, int]:
    """Each case's receipt; one that cannot be delivered is counted (its notification row
    keeps the error) and the others go on."""
    counts = {"sent": 0, "already_sent": 0, "no_phone": 0, "failed": 0}
    for case_id in case_ids:
        try:
            counts[send_receipt_sync(case_id, notifier=notifier)] += 1
        except NotificationError as exc:
            counts["failed"] += 1
            log.warning("receipt for case id %s not delivered: %s", case_id, exc.code)
    return counts


@sweep_task("send_receipts")
async def send_receipts(case_ids: list[int]) -> dict[str, int]:
    """Retried as a whole when the process fails; receipts already sent are not resent."""
    return await asyncio.to_thread(send_receipts_sync, case_ids)
