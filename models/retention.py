"""Retention of personal data (PIPL: keep it no longer than the purpose needs).

A case that ended (closed, withdrawn or merged) longer ago than the retention period is
anonymised: its parties' encrypted names, phones, ID numbers and addresses and their
look-up hashes are removed, the masked copies are replaced by 已匿名, phone and ID
numbers typed into free text (description, outcome, minutes, agreement, return-visit
notes) are masked, and ``case.anonymised_at`` is stamped. Firms' and agencies' names are
not personal data and stay, so that figures about respondents still add up.

Case events are not touched: they never hold personal data (free text reaches them only
through :func:`models.pii.scrub_text`), and they are the tamper-evident record.

The sign-in audit (who tried to sign in, from which address) is kept
``settings.sign_in_audit_days`` (:func:`prune_sign_in_attempts`). The ``retention`` flow
runs both every night (``settings.retention_cron``).

On SQLite, removed values may survive in freed pages and the write-ahead log;
``secure_delete`` is switched on for the connection doing the work, and
:func:`purge_sqlite_leftovers` (after the commit) checkpoints and empties the log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, delete, func, update
from sqlmodel import Session, col, or_, select

from models import clock, pii
from models.case import Case
from models.db import is_sqlite, write_session
from models.enums import CaseStatus, PartyKind, PartySide
from models.errors import FieldProblem, ValidationError
from models.follow_up import FollowUp
from models.login import SignInAttempt
from models.mediation import Agreement, AgreementTerm, MediationSession
from models.party import Party
from models.resident_tables import ResidentLink, ResidentPhoto, ResidentSession
from models.text_numbers import CaseTextNumber

ANONYMISED = "已匿名"
S = CaseStatus
BATCH = 500


def _anonymise_party(party: Party) -> None:
    if party.name_enc or party.name_masked:
        party.name_masked = ANONYMISED
    if party.phone_enc or party.phone_masked:
        party.phone_masked = ANONYMISED
    if party.id_number_enc or party.id_number_masked:
        party.id_number_masked = ANONYMISED
    party.name_enc = party.name_hash = None
    party.phone_enc = party.phone_hash = None
    party.id_number_enc = party.id_number_hash = None
    party.address_enc = None


def _cutoff(now: datetime, days: int) -> datetime:
    """The moment before which a row is past its ``days`` of keeping."""
    return clock.ensure_utc(now) - timedelta(days=days)


def _expired(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        col(Case.anonymised_at).is_(None),
        or_(
            (col(Case.status) == S.CLOSED) & (col(Case.closed_at) < cutoff),
            (col(Case.status) == S.WITHDRAWN) & (col(Case.withdrawn_at) < cutoff),
            (col(Case.status) == S.MERGED) & (col(Case.merged_at) < cutoff),
        ),
    )


def count_expired(session: Session, *, older_than_days: int, now: datetime) -> int:
    """How many cases the next run would anonymise."""
    cutoff = _cutoff(now, older_than_days)
    return int(session.exec(select(func.count()).select_from(Case).where(_expired(cutoff))).one())


def expired_case_ids(
    session: Session, *, older_than_days: int, now: datetime, limit: int = BATCH
) -> list[int]:
    """Ids of cases that ended before the retention period and are not anonymised."""
    cutoff = _cutoff(now, older_than_days)
    stmt = select(col(Case.id)).where(_expired(cutoff)).order_by(col(Case.id)).limit(limit)
    return [int(i) for i in session.exec(stmt).all() if i is not None]


def _anonymise_batch(session: Session, ids: list[int], now: datetime) -> None:
    person_respondent: set[int] = set()
    # People's names typed into free text (minutes, notes, the description) go too:
    # read them before the parties' encrypted names are removed.
    names: dict[int, set[str]] = {}
    for party in session.exec(select(Party).where(col(Party.case_id).in_(ids))).all():
        if party.side == PartySide.RESPONDENT and party.kind in (
            PartyKind.PERSON,
            PartyKind.HOUSEHOLD,
        ):
            person_respondent.add(party.case_id)
        if party.name_enc:
            names.setdefault(party.case_id, set()).add(pii.decrypt(party.name_enc))
        _anonymise_party(party)
        session.add(party)

    def scrub(case_id: int, text: str) -> str:
        return pii.scrub_names(pii.scrub_text(text), names.get(case_id, ()), replacement=ANONYMISED)

    for row in session.exec(
        select(MediationSession).where(col(MediationSession.case_id).in_(ids))
    ).all():
        row.minutes = scrub(row.case_id, row.minutes)
        row.participants = scrub(row.case_id, row.participants)
        row.place = scrub(row.case_id, row.place)
        session.add(row)
    agreements = session.exec(select(Agreement).where(col(Agreement.case_id).in_(ids))).all()
    for agreement in agreements:
        agreement.summary = scrub(agreement.case_id, agreement.summary)
        session.add(agreement)
    agreement_ids = [a.id for a in agreements if a.id is not None]
    case_of = {a.id: a.case_id for a in agreements}
    if agreement_ids:
        for term in session.exec(
            select(AgreementTerm).where(col(AgreementTerm.agreement_id).in_(agreement_ids))
        ).all():
            term.text = scrub(case_of[term.agreement_id], term.text)
            session.add(term)
    for visit in session.exec(select(FollowUp).where(col(FollowUp.case_id).in_(ids))).all():
        visit.notes = None if visit.notes is None else scrub(visit.case_id, visit.notes)
        session.add(visit)
    # Numbers once typed into the text: only their masks stay.
    session.connection().execute(
        update(CaseTextNumber)
        .where(col(CaseTextNumber.case_id).in_(ids))
        .values(value_enc=None, value_hash=None)
    )
    # What residents sent from /r/: their photos go, and the tracking code stops working.
    session.connection().execute(delete(ResidentPhoto).where(col(ResidentPhoto.case_id).in_(ids)))
    session.connection().execute(
        delete(ResidentSession).where(col(ResidentSession.case_id).in_(ids))
    )
    session.connection().execute(delete(ResidentLink).where(col(ResidentLink.case_id).in_(ids)))
    for case in session.exec(select(Case).where(col(Case.id).in_(ids))).all():
        assert case.id is not None
        case.tracking_hash = None
        case.description = scrub(case.id, case.description)
        case.outcome_note = None if case.outcome_note is None else scrub(case.id, case.outcome_note)
        if case.id in person_respondent:
            case.respondent_key = None  # a keyed hash of a person's name
        case.anonymised_at = now
        session.add(case)
    session.flush()


def anonymise_closed_cases(
    session: Session, *, older_than_days: int, now: datetime, batch_size: int = BATCH
) -> int:
    """Anonymise every case that ended more than ``older_than_days`` ago; returns how
    many were anonymised by this call (0 when run again: idempotent)."""
    total = 0
    while True:
        done = anonymise_batch(
            session, older_than_days=older_than_days, now=now, batch_size=batch_size
        )
        if not done:
            return total
        total += done


def anonymise_batch(
    session: Session, *, older_than_days: int, now: datetime, batch_size: int = BATCH
) -> int:
    """Anonymise the next ``batch_size`` cases that ended more than ``older_than_days``
    ago; returns how many (0: none is left). The scheduled job commits after each batch,
    so that its first run on years of cases holds no lock for long and a crash keeps
    what was done."""
    if older_than_days < 0:
        raise ValidationError(
            "older_than_days: must not be negative",
            "older_than_days：保存天数不能为负数",
            problems=[
                FieldProblem("older_than_days", "保存天数不能为负数", "must not be negative")
            ],
        )
    moment = clock.ensure_utc(now)
    if is_sqlite(session.get_bind().engine):
        # Zero freed space so removed ciphertext does not linger in the file.
        session.connection().exec_driver_sql("PRAGMA secure_delete=ON")
    ids = expired_case_ids(session, older_than_days=older_than_days, now=moment, limit=batch_size)
    if ids:
        _anonymise_batch(session, ids, moment)
    return len(ids)


def anonymise_in_batches(
    engine: Engine,
    *,
    older_than_days: int,
    now: datetime,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """The nightly job's loop (the ``retention`` flow and ``tiaojie retention run``):
    :func:`anonymise_batch` in a transaction of its own until none is left, then
    :func:`purge_sqlite_leftovers`. Returns how many cases were anonymised."""
    total = 0
    while True:
        with write_session(engine) as session:
            done = anonymise_batch(session, older_than_days=older_than_days, now=now)
        if not done:
            break
        total += done
        if on_batch is not None:
            on_batch(done)
    purge_sqlite_leftovers(engine)
    return total


def old_sign_in_attempts(session: Session, *, older_than_days: int, now: datetime) -> int:
    """How many sign-in attempts the next run would delete."""
    cutoff = _cutoff(now, older_than_days)
    query = select(func.count()).select_from(SignInAttempt).where(col(SignInAttempt.at) < cutoff)
    return int(session.exec(query).one())


def prune_sign_in_attempts(session: Session, *, older_than_days: int, now: datetime) -> int:
    """Delete the sign-in audit's rows older than ``older_than_days`` (they hold the
    caller's address; the limits and the back-off read the last day only). Returns how
    many were deleted."""
    cutoff = _cutoff(now, older_than_days)
    result = session.connection().execute(
        delete(SignInAttempt).where(col(SignInAttempt.at) < cutoff)
    )
    return int(result.rowcount)


def purge_sqlite_leftovers(engine: Engine) -> None:
    """After the anonymising transaction committed: move the write-ahead log into the
    database file and empty it, so old page images go too. No-op on PostgreSQL."""
    if not is_sqlite(engine):
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
