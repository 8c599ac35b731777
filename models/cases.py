"""Case services: create and read cases. Keyword-only, verb-first; they ``flush()``
and leave the commit to the caller's boundary."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, select

from models import case_text, clock, lifecycle, pii, text_numbers, tracking
from models.access import Actor
from models.case import Case, CaseCreate, CaseNumberCounter
from models.case import get_case as get_case  # re-exported: services and front ends name it so
from models.confidentiality import confidential_by_default
from models.enums import Channel, PartyKind, PartySide
from models.errors import FieldProblem, NotFound, ValidationError
from models.mediation import AgreementTerm
from models.party import Party, PartyCreate, PartyPublic
from models.public import public_of
from models.rows import rows_of
from models.settings import get_settings
from models.unit import Unit, unit_by_code

_COUNTER: Table = CaseNumberCounter.__table__  # type: ignore[attr-defined]
_CASES: Table = Case.__table__  # type: ignore[attr-defined]
_PARTIES: Table = Party.__table__  # type: ignore[attr-defined]
# Built once: a Core statement on the session's connection (same transaction). The
# counter is never loaded as an object, so the ORM has nothing to synchronise.
_BUMP = (
    update(_COUNTER)
    .where(_COUNTER.c.year == bindparam("y"))
    .values(last=_COUNTER.c.last + 1)
    .returning(_COUNTER.c.last)
)
_INSERT_CASE = insert(_CASES).returning(_CASES.c.id)
_INSERT_PARTIES = insert(_PARTIES).returning(_PARTIES.c.id, sort_by_parameter_order=True)
_CASE_COLUMNS = tuple(c.key for c in _CASES.columns if c.key != "id")
_CASE_MANAGER = sa_inspect(Case).class_manager
_CASE_DEFAULTS: dict[str, Any] = {
    name: field.get_default(call_default_factory=True)
    for name, field in Case.model_fields.items()
    if not field.is_required()
}


def _new_case_row(values: dict[str, Any]) -> Case:
    """A case object made the way the ORM makes one for a row it loads (no per-field
    instrumentation events: the row is inserted with Core, then attached)."""
    case: Case = _CASE_MANAGER.new_instance()
    case.__dict__.update(_CASE_DEFAULTS)
    case.__dict__.update(values)
    object.__setattr__(case, "__pydantic_fields_set__", set(values))
    return case


def next_case_number(session: Session, *, at: datetime) -> str:
    year = clock.to_local(at).year
    conn = session.connection()
    result = conn.execute(_BUMP, {"y": year}).first()
    if result is None:
        # The year's first case. Concurrent writers (PostgreSQL, READ COMMITTED) may both
        # get here: the INSERT of the second waits for the first and does nothing, and its
        # UPDATE then sees the committed row.
        from sqlalchemy.dialects import postgresql, sqlite

        postgres = session.get_bind().dialect.name == "postgresql"
        dialect_insert = postgresql.insert if postgres else sqlite.insert
        conn.execute(dialect_insert(_COUNTER).values(year=year, last=0).on_conflict_do_nothing())
        result = conn.execute(_BUMP, {"y": year}).first()
        assert result is not None
    number = int(result[0])
    return f"{get_settings().case_number_prefix}-{year}-{number:06d}"


def normalise_org_name(name: str) -> str:
    """Firm names as people type them: width-folded, no spaces or brackets differences."""
    folded = unicodedata.normalize("NFKC", name).lower()
    return re.sub(r"[\s()（）·\-]", "", folded)


def respondent_key(parties: list[PartyCreate]) -> str | None:
    for party in parties:
        if party.side == PartySide.RESPONDENT:
            return pii.lookup_hash(normalise_org_name(party.name))[:32]
    return None


def party_values(*, case_id: int, data: PartyCreate) -> dict[str, Any]:
    """The stored columns of a party: personal fields encrypted, hashed and masked."""
    personal = data.kind in (PartyKind.PERSON, PartyKind.HOUSEHOLD)
    row: dict[str, Any] = dict.fromkeys(_PARTY_FIELDS)
    row.update(
        case_id=case_id,
        side=data.side,
        kind=data.kind,
        consented=False,
        refused=False,
        consent_required=data.needs_consent,
    )
    if personal:
        row["name_enc"] = pii.encrypt(data.name)
        row["name_hash"] = pii.lookup_hash(data.name)
        row["name_masked"] = pii.mask_name(data.name)
    else:
        row["org_name"] = data.name
    if data.phone:
        row["phone_enc"] = pii.encrypt(data.phone)
        row["phone_hash"] = pii.lookup_hash(data.phone)
        row["phone_masked"] = pii.mask_phone(data.phone)
    if data.id_number:
        row["id_number_enc"] = pii.encrypt(data.id_number)
        row["id_number_hash"] = pii.lookup_hash(data.id_number)
        row["id_number_masked"] = pii.mask_id_number(data.id_number)
    if data.address:
        row["address_enc"] = pii.encrypt(data.address)
    if data.agent_name:
        row["agent_name_enc"] = pii.encrypt(data.agent_name)
        row["agent_name_masked"] = pii.mask_name(data.agent_name)
    if data.agent_phone:
        row["agent_phone_enc"] = pii.encrypt(data.agent_phone)
        row["agent_phone_masked"] = pii.mask_phone(data.agent_phone)
    return row


_PARTY_FIELDS = tuple(c.key for c in _PARTIES.columns if c.key != "id")


def build_party(*, case_id: int, data: PartyCreate) -> Party:
    return Party(**party_values(case_id=case_id, data=data))


def _shown_name(org_name: str | None, name_masked: str | None) -> str:
    """An organisation's name as it is; a person's masked."""
    return org_name if org_name is not None else name_masked or ""


class Contact(Protocol):
    """What :func:`shown_contact` reads of a party: a ``Party``, or a row of
    :data:`CONTACT_COLUMNS` (the export reads those columns, not whole parties)."""

    @property
    def org_name(self) -> str | None: ...
    @property
    def name_masked(self) -> str | None: ...
    @property
    def name_enc(self) -> str | None: ...
    @property
    def phone_enc(self) -> str | None: ...
    @property
    def phone_masked(self) -> str | None: ...


CONTACT_COLUMNS: tuple[Any, ...] = tuple(
    col(c)
    for c in (
        Party.org_name,
        Party.name_masked,
        Party.name_enc,
        Party.phone_enc,
        Party.phone_masked,
    )
)


def shown_contact(party: Contact, *, reveal: bool) -> tuple[str, str | None]:
    """A party's name and phone as the reader sees them: masked by default, in clear
    (decrypted) only with ``reveal``; an organisation's name as it is."""
    if reveal and party.org_name is None and party.name_enc:
        name = pii.decrypt(party.name_enc)
    else:
        name = _shown_name(party.org_name, party.name_masked)
    phone = pii.decrypt(party.phone_enc) if reveal and party.phone_enc else party.phone_masked
    return name, phone


def show_party(party: Party, *, reveal: bool) -> PartyPublic:
    """Masked by default; ``reveal`` only for readers entitled to personal data."""
    assert party.id is not None
    name, phone = shown_contact(party, reveal=reveal)
    id_number = (
        pii.decrypt(party.id_number_enc)
        if reveal and party.id_number_enc
        else party.id_number_masked
    )
    agent = pii.decrypt(party.agent_name_enc) if reveal and party.agent_name_enc else None
    agent_phone = pii.decrypt(party.agent_phone_enc) if reveal and party.agent_phone_enc else None
    return public_of(
        PartyPublic,
        party,
        name=name,
        phone=phone,
        id_number=id_number,
        agent_name=agent or party.agent_name_masked,
        agent_phone=agent_phone or party.agent_phone_masked,
    )


def find_unit(session: Session, *, code: str) -> Unit:
    unit = unit_by_code(session, code)
    if unit is None:
        raise ValidationError(
            f"place_code: no unit with code {code!r}", f"place_code：没有编码为 {code} 的单位"
        )
    return unit


def _mask_people_named(values: dict[str, Any], parties: list[PartyCreate]) -> None:
    """People named as parties are personal data: where the free text repeats their
    names, it is stored with the mask (their names are kept encrypted on the party)."""
    names = [p.name for p in parties if p.kind in (PartyKind.PERSON, PartyKind.HOUSEHOLD)]
    if not names:
        return
    for field in ("description", "address_text"):
        if isinstance(values.get(field), str):
            values[field] = pii.scrub_names(values[field], names)


def check_channel(data: CaseCreate, actor: Actor) -> None:
    """Only the public files through Open311: that channel makes a case's text public
    (masked), so staff may not choose it."""
    if data.channel == Channel.OPEN311 and actor.kind != Actor.public().kind:
        raise ValidationError(
            "channel: open311 is for complaints filed by the public through Open311",
            "channel：open311 仅用于公众通过 Open311 提交的诉求",
            problems=[
                FieldProblem(
                    "channel", "工作人员不能选择 open311 渠道", "staff cannot choose open311"
                )
            ],
        )


def create_case(
    session: Session,
    *,
    data: CaseCreate,
    actor: Actor,
    created_by_id: int | None = None,
    at: datetime | None = None,
) -> Case:
    """Record a complaint: the case, its parties and its ``submitted`` event."""
    case, _parties = create_case_with_parties(
        session, data=data, actor=actor, created_by_id=created_by_id, at=at
    )
    return case


# A worker's clock may run a little ahead of the server's.
RECEIVED_TOLERANCE = timedelta(minutes=10)


def _received_problem(en: str, zh: str) -> ValidationError:
    return ValidationError(
        f"received_at: {en}", f"received_at：{zh}", problems=[FieldProblem("received_at", zh, en)]
    )


def received_moment(given: datetime | None, *, recorded: datetime) -> datetime:
    """When the complaint was received: the time the worker gives for a walk-in or call
    written up later, else the moment it is recorded. Not in the future, not before
    ``settings.received_max_age_days``."""
    if given is None:
        return recorded
    if given.tzinfo is None:
        raise _received_problem(
            "give a time zone (for example +08:00)", "请注明时区（例如 +08:00）"
        )
    moment = clock.ensure_utc(given)
    if moment > recorded + RECEIVED_TOLERANCE:
        raise _received_problem("must not be in the future", "受理时间不能晚于当前时间")
    days = get_settings().received_max_age_days
    if moment < recorded - timedelta(days=days):
        raise _received_problem(
            f"more than {days} days ago; record it with today's date and say when it was "
            "received in the description",
            f"早于 {days} 天前，请按今天登记并在描述中说明受理时间",
        )
    return min(moment, recorded)


def create_case_with_parties(
    session: Session,
    *,
    data: CaseCreate,
    actor: Actor,
    created_by_id: int | None = None,
    at: datetime | None = None,
    place_unit_id: int | None = None,
) -> tuple[Case, list[PartyPublic]]:
    """:func:`create_case`, also answering the parties written, masked (with their ids).

    ``place_unit_id``: the id of the unit whose code is ``data.place_code`` when the
    caller has already looked it up (else it is looked up here).

    The case and party rows are inserted with Core statements (the ORM's unit of work
    costs more than everything else in an intake); the case object is then attached
    to the session as persistent, so that the state machine records the submission on
    it as on any case."""
    check_channel(data, actor)
    moment = clock.ensure_utc(at or clock.now())
    received = received_moment(data.received_at, recorded=moment)
    if data.place_code and place_unit_id is None:
        place_unit_id = find_unit(session, code=data.place_code).id
    values = data.model_dump(exclude={"parties", "place_code"})
    number = next_case_number(session, at=moment)
    values.update(
        confidential=confidential_by_default(data.category) or data.confidential,
        number=number,
        tracking_hash=tracking.hash_for(number),
        place_unit_id=place_unit_id if data.place_code else None,
        respondent_key=respondent_key(data.parties),
        created_by_id=created_by_id,
        created_at=moment,
        updated_at=moment,
        received_at=received,
    )
    taken = text_numbers.protect_values("cases", values)
    _mask_people_named(values, data.parties)
    case = _new_case_row(values)
    conn = session.connection()
    state = case.__dict__
    case_id: int = conn.execute(_INSERT_CASE, {k: state[k] for k in _CASE_COLUMNS}).scalar_one()
    state["id"] = case_id
    case_text.write(conn, case_id, values["description"])
    make_transient_to_detached(case)
    session.add(case)
    text_numbers.record(session, case_id=case_id, taken=taken)
    parties: list[PartyPublic] = []
    if data.parties:
        rows = [party_values(case_id=case_id, data=p) for p in data.parties]
        ids = conn.execute(_INSERT_PARTIES, rows).scalars().all()
        parties = [
            PartyPublic(
                id=party_id,
                side=row["side"],
                kind=row["kind"],
                name=_shown_name(row["org_name"], row["name_masked"]),
                phone=row["phone_masked"],
                id_number=row["id_number_masked"],
                agent_name=row["agent_name_masked"],
                agent_phone=row["agent_phone_masked"],
                consent_required=row["consent_required"],
                consented=row["consented"],
            )
            for party_id, row in zip(ids, rows, strict=True)
        ]
    lifecycle.record_submission(session, case=case, actor=actor)
    session.flush()
    return case, parties


def parties_of(session: Session, *, case_id: int) -> list[Party]:
    return rows_of(session, Party, Party.case_id == case_id)


def terms_of(session: Session, *, agreement_id: int) -> list[AgreementTerm]:
    """The terms of an agreement, soonest due first."""
    return rows_of(
        session, AgreementTerm, AgreementTerm.agreement_id == agreement_id, AgreementTerm.due_on
    )


def get_case_by_number(session: Session, *, number: str) -> Case:
    case = session.exec(select(Case).where(Case.number == number)).first()
    if case is None:
        raise NotFound(f"no case {number}", f"案件 {number} 不存在")
    return case
