"""One-use links (一次性链接): a party is sent a link by SMS for one action on one case,
and the link works once, until it expires.

Which links a case owes is written once here (:data:`PURPOSES`, :func:`owed`):

=============  ==========  ===================  =========================================
purpose        sent to     while the case is    what it does
=============  ==========  ===================  =========================================
consent        complainant assigned             give or refuse consent to mediation
respondent     respondent  assigned             accept or decline mediation, propose times
terms          complainant agreement/follow-up  confirm the agreed terms were carried out
visit          complainant follow-up            answer the return visit
=============  ==========  ===================  =========================================

Only parties with a phone get one, and each party gets at most one link per purpose
(a unique row), so a retried step issues nothing new and the SMS (keyed by the link)
goes once. The token is the row's random ``nonce`` followed by an HMAC (the ``token``
key) over the nonce, the case, the party, the purpose and the expiry: it can be composed
again for a retried send, a changed character makes it worthless, and it is bound to
its case, party and action. A link that is used, expired, tampered with, for another
action, or whose step has passed gets one calm answer (:class:`LinkRefused`) that says
nothing about why; using it is one conditional update, so two clicks use it once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select, update

from models import clock, keys
from models.case import Case
from models.cases import parties_of, terms_of
from models.enums import CaseStatus, PartySide
from models.errors import PermissionDenied
from models.event import CaseEvent
from models.follow_ups import current_agreement
from models.notification import Notification
from models.party import Party
from models.resident_tables import ResidentLink
from models.settings import get_settings

S = CaseStatus
_LABEL = b"tiaojie-resident-link:"
NONCE_CHARS = 16  # 10 random bytes, base32
SIG_CHARS = 16  # 80 bits of HMAC
TOKEN_CHARS = NONCE_CHARS + SIG_CHARS


@dataclass(frozen=True)
class Purpose:
    name: str
    side: PartySide
    statuses: frozenset[CaseStatus]
    zh: str  # what the link asks, as the SMS and the page say it
    en: str


PURPOSES: dict[str, Purpose] = {
    p.name: p
    for p in (
        Purpose(
            "consent",
            PartySide.COMPLAINANT,
            frozenset({S.ASSIGNED}),
            "请告诉我们您是否同意调解",
            "say whether you agree to mediation",
        ),
        Purpose(
            "respondent",
            PartySide.RESPONDENT,
            frozenset({S.ASSIGNED}),
            "调解邀请：请答复是否同意调解，并提出方便的时间",
            "an invitation to mediation: accept or decline, and propose times",
        ),
        Purpose(
            "terms",
            PartySide.COMPLAINANT,
            frozenset({S.AGREEMENT, S.FOLLOW_UP}),
            "请确认调解协议是否已经履行",
            "confirm whether the agreement was carried out",
        ),
        Purpose(
            "visit",
            PartySide.COMPLAINANT,
            frozenset({S.FOLLOW_UP}),
            "回访：问题是否解决、您是否满意",
            "return visit: resolved? satisfied?",
        ),
    )
}


class LinkRefused(PermissionDenied):
    """Used, expired, forged, for another action or past its step: the same words for
    each, so that trying links teaches nothing."""

    def __init__(self) -> None:
        super().__init__(
            "this link cannot be used (it was used already, has expired or is not valid)",
            "此链接已使用、已过期或无效，无需再次操作。"
            "如需办理，请联系承办单位，或凭查询码查看办理进度。",
        )


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def _signature(nonce: str, case_id: int, party_id: int, purpose: str, expires: datetime) -> str:
    stamp = int(clock.ensure_utc(expires).timestamp())
    body = f"{nonce}|{case_id}|{party_id}|{purpose}|{stamp}".encode("ascii")
    return _b32(hmac.new(keys.key("token"), _LABEL + body, hashlib.sha256).digest()[:10])


def token_of(link: ResidentLink) -> str:
    """The link's token (composed again from the row: a retried SMS sends the same)."""
    sig = _signature(link.nonce, link.case_id, link.party_id, link.purpose, link.expires_at)
    return link.nonce + sig


def url_of(link: ResidentLink) -> str:
    return f"{get_settings().web_base_url}/r/link/{token_of(link)}"


def _answered(session: Session, case_id: int, party_id: int, verbs: tuple[str, ...]) -> bool:
    return (
        session.exec(
            select(CaseEvent.id).where(
                CaseEvent.case_id == case_id,
                CaseEvent.actor == f"resident:{party_id}",
                col(CaseEvent.verb).in_(verbs),
            )
        ).first()
        is not None
    )


def _needs(session: Session, case: Case, party: Party, purpose: Purpose) -> bool:
    """Whether ``party`` still has to answer what ``purpose`` asks."""
    assert case.id is not None and party.id is not None
    if purpose.name in ("consent", "respondent"):
        return party.consent_required and not party.consented and not party.refused
    if purpose.name == "terms":
        agreement = current_agreement(session, case=case)
        terms = terms_of(session, agreement_id=agreement.id) if agreement and agreement.id else []
        return any(not t.done for t in terms)
    return not _answered(session, case.id, party.id, ("follow_up_recorded",))


def owed(session: Session, *, case: Case, purposes: tuple[str, ...]) -> list[tuple[Party, str]]:
    """The (party, purpose) pairs among ``purposes`` that the case owes a link now."""
    assert case.id is not None
    pairs: list[tuple[Party, str]] = []
    for party in parties_of(session, case_id=case.id):
        for name in purposes:
            purpose = PURPOSES[name]
            if (
                party.phone_enc
                and party.side == purpose.side
                and case.status in purpose.statuses
                and _needs(session, case, party, purpose)
            ):
                pairs.append((party, name))
    return pairs


def issue(session: Session, *, case: Case, purposes: tuple[str, ...]) -> list[ResidentLink]:
    """Create the links the case owes (at most one per party and purpose, ever) and
    answer every live, unused link of the case for ``purposes`` (new or not), so the
    caller sends each one (once: by its key)."""
    assert case.id is not None
    existing = {
        (link.party_id, link.purpose): link
        for link in session.exec(select(ResidentLink).where(ResidentLink.case_id == case.id))
    }
    now = clock.now().replace(microsecond=0)
    expires = now + timedelta(days=get_settings().resident_link_days)
    for party, name in owed(session, case=case, purposes=purposes):
        assert party.id is not None
        if (party.id, name) in existing:
            continue
        link = ResidentLink(
            nonce=_b32(secrets.token_bytes(10)),
            case_id=case.id,
            party_id=party.id,
            purpose=name,
            expires_at=expires,
            created_at=now,
        )
        session.add(link)
        existing[(party.id, name)] = link
    session.flush()
    return [
        link
        for link in existing.values()
        if link.purpose in purposes and link.used_at is None and _live(link, now)
    ]


def _live(link: ResidentLink, now: datetime) -> bool:
    return clock.ensure_utc(link.expires_at) > now


def open_link(session: Session, *, token: str, purpose: str | None = None) -> ResidentLink:
    """The link of ``token`` when it may be used now (for ``purpose`` when given), else
    :class:`LinkRefused`. Nothing is changed."""
    token = (token or "").strip().lower()
    if len(token) != TOKEN_CHARS:
        raise LinkRefused()
    nonce, sig = token[:NONCE_CHARS], token[NONCE_CHARS:]
    link = session.exec(select(ResidentLink).where(ResidentLink.nonce == nonce)).first()
    if link is None:
        raise LinkRefused()
    expected = _signature(link.nonce, link.case_id, link.party_id, link.purpose, link.expires_at)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise LinkRefused()
    if link.used_at is not None or not _live(link, clock.now()):
        raise LinkRefused()
    if purpose is not None and link.purpose != purpose:
        raise LinkRefused()
    case = session.get(Case, link.case_id)
    party = session.get(Party, link.party_id)
    wanted = PURPOSES.get(link.purpose)
    if (
        case is None
        or party is None
        or wanted is None
        or party.case_id != case.id
        or party.side != wanted.side
        or case.status not in wanted.statuses
        or case.anonymised_at is not None
    ):
        raise LinkRefused()
    return link


def use_link(session: Session, *, token: str, purpose: str) -> ResidentLink:
    """Check the link as :func:`open_link` and mark it used, in one conditional update
    (of two requests with one link, one uses it). The caller performs the action in the
    same transaction: when the action is refused, the link stays unused."""
    link = open_link(session, token=token, purpose=purpose)
    now = clock.now()
    result = session.connection().execute(
        update(ResidentLink)
        .where(col(ResidentLink.id) == link.id, col(ResidentLink.used_at).is_(None))
        .values(used_at=now)
    )
    if result.rowcount != 1:
        raise LinkRefused()
    session.expire(link)
    return link


def message_key(link: ResidentLink) -> str:
    """The notification key of the link's SMS: one message per link."""
    return f"{link.case_id}:link:{link.id}"


def unsent_link_cases(session: Session, *, since: datetime) -> list[int]:
    """Case ids with a live, unused link created since ``since`` whose SMS is not sent
    (a failed send, or a worker that stopped between issuing and sending)."""
    links = session.exec(
        select(ResidentLink).where(
            col(ResidentLink.used_at).is_(None),
            col(ResidentLink.expires_at) > clock.now(),
            col(ResidentLink.created_at) >= since,
        )
    ).all()
    if not links:
        return []
    sent = set(
        session.exec(
            select(Notification.idempotency_key).where(
                col(Notification.idempotency_key).in_([message_key(k) for k in links]),
                col(Notification.sent_at).is_not(None),
            )
        ).all()
    )
    return sorted({k.case_id for k in links if message_key(k) not in sent})
