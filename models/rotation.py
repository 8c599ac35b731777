"""Rotating the field-encryption key while the system runs.

1. If every stored value is already under the current key, a new key becomes current
   (the keyring file is replaced atomically; the old keys stay in it for decryption).
   If some are not — a rotation was interrupted, or a process wrote under the old key
   before it noticed the new one — the current key is kept and the work carries on.
2. Running processes re-read the keyring within :data:`models.keys.RELOAD_EVERY_S`;
   we wait a little longer than that before re-encrypting, so they all write under the
   new key from then on.
3. Every ``*_enc`` column of every table is walked by primary key in batches, one
   transaction per batch; each value is decrypted with the key of its id and written
   back under the current key only if nobody changed it meanwhile (compare and set).
4. ``retire``: once no value uses an old key id, the keyring keeps the current key only.

A crash (even SIGKILL) at any point leaves every value readable: a value is either
under its old key, still in the ring, or under the new one; running again finishes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, Engine, Table, func, select, update

from models import keys, pii
from models.db import write_session
from models.tables import metadata


@dataclass(frozen=True)
class RotationReport:
    key_id: str
    reencrypted: int
    undecryptable: int
    remaining: int
    kept: list[str]


def encrypted_columns() -> Iterator[tuple[Table, Column[str]]]:
    """Every encrypted column: by convention its name ends in ``_enc``."""
    for table in metadata.sorted_tables:
        if "id" not in table.c:
            continue
        for column in table.columns:
            if column.key.endswith("_enc"):
                yield table, column


def _not_current(column: Column[str], current: str) -> ColumnElement[bool]:
    return column.is_not(None) & ~column.startswith(f"{current}$", autoescape=True)


def count_not_current(engine: Engine, current: str) -> int:
    total = 0
    with engine.connect() as conn:
        for table, column in encrypted_columns():
            stmt = select(func.count()).select_from(table).where(_not_current(column, current))
            total += int(conn.execute(stmt).scalar_one())
    return total


def _start(engine: Engine) -> str:
    """The key to rotate to: a new one, unless an earlier rotation is unfinished."""
    ring = keys.keyring()
    stored = keys.read_keyring_text()
    if stored and ring.current in stored and count_not_current(engine, ring.current) > 0:
        return ring.current
    numeric = [int(k) for k in stored if k.isdigit()]
    new_id = str(max([*numeric, 0]) + 1)
    stored[new_id] = keys.new_key()
    keys.write_keyring(new_id, stored)
    # Let running processes notice the new current key before we rely on it.
    time.sleep(keys.RELOAD_EVERY_S * 2.5)
    return new_id


def _reencrypt_column(
    engine: Engine, table: Table, column: Column[str], current: str, batch: int, pause_s: float
) -> tuple[int, int]:
    done = bad = 0
    last_id = 0
    pk = table.c.id
    while True:
        with write_session(engine) as session:
            rows = (
                session.connection()
                .execute(
                    select(pk, column)
                    .where(pk > last_id, _not_current(column, current))
                    .order_by(pk)
                    .limit(batch)
                )
                .all()
            )
            for row_id, value in rows:
                clear = pii.decrypt(value)
                if clear == pii.UNDECRYPTABLE:
                    bad += 1
                    continue
                result = session.connection().execute(
                    update(table)
                    .where(pk == row_id, column == value)
                    .values({column.key: pii.encrypt(clear)})
                )
                done += result.rowcount
        if not rows:
            return done, bad
        last_id = int(rows[-1][0])
        if pause_s:
            time.sleep(pause_s)


def rotate_field_key(
    engine: Engine, *, batch: int = 200, retire: bool = False, pause_s: float = 0.0
) -> RotationReport:
    keys.forget_cached_keys()
    current = _start(engine)
    done = bad = 0
    for table, column in encrypted_columns():
        d, b = _reencrypt_column(engine, table, column, current, batch, pause_s)
        done += d
        bad += b
    remaining = count_not_current(engine, current)
    stored = keys.read_keyring_text()
    if retire and remaining == 0:
        stored = {current: stored[current]}
        keys.write_keyring(current, stored)
    return RotationReport(
        key_id=current,
        reencrypted=done,
        undecryptable=bad,
        remaining=remaining,
        kept=sorted(k for k in stored if k != current),
    )


__all__ = ["RotationReport", "count_not_current", "encrypted_columns", "rotate_field_key"]
