"""Promise 6: the case timeline is tamper-evident.

On each database (SQLite; PostgreSQL when reachable):

* every UPDATE, DELETE (and on PostgreSQL TRUNCATE) of a ``case_event`` row, through
  the ORM or raw SQL, is refused by the database's own trigger;
* a tamperer who gets around the trigger (drops or disables it, as the table owner can)
  and edits or deletes one row is found by ``tiaojie audit verify`` at that row's exact
  case number and ``seq`` (an edit) or at the next ``seq`` (a deletion: the gap), and
  after the row is put back the command reports the chain intact again (no false alarm).

The first trial on each database runs the installed ``tiaojie`` command in a process of
its own; the others call the same Typer app in-process.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models import lifecycle
from models.case import Case
from models.db import write_session
from models.event import CaseEvent
from models.lifecycle import Actor
from tests.factories import advance_to_assigned, make_case
from tests.reliability.common import (
    ROOT,
    Database,
    PromiseResult,
    Scale,
    pg_database,
    require_pg,
    sqlite_database,
    use_database,
)

PROBLEM = re.compile(r"case (\S+) seq (\d+):")


def fill(database: Database, cases: int) -> None:
    rng = random.Random(6)
    with write_session(database.engine) as s:
        for _ in range(cases):
            case = make_case(s)
            advance_to_assigned(s, case, database.city)
            for level in range(rng.randint(1, 4)):
                lifecycle.apply(
                    s,
                    case=case,
                    verb="reminded",
                    actor=Actor.system(),
                    data={"level": level, "note": f"第{level}次催办"},
                )


def refusals(database: Database) -> tuple[int, int]:
    """(attempts, refused) of changing an event row by every ordinary path."""
    with Session(database.engine) as s:
        target = s.exec(select(CaseEvent).order_by(col(CaseEvent.id)).limit(1)).one()
        event_id = target.id
    attempts: list[Callable[[Session], Any]] = []

    def orm_update(s: Session) -> None:
        row = s.get(CaseEvent, event_id)
        assert row is not None
        row.data = {"forged": True}
        s.add(row)

    def orm_delete(s: Session) -> None:
        row = s.get(CaseEvent, event_id)
        assert row is not None
        s.delete(row)

    attempts += [orm_update, orm_delete]
    attempts.append(
        lambda s: s.execute(
            text("UPDATE case_event SET to_status = 'closed' WHERE id = :i"), {"i": event_id}
        )
    )
    attempts.append(
        lambda s: s.execute(text("DELETE FROM case_event WHERE id = :i"), {"i": event_id})
    )
    attempts.append(lambda s: s.execute(text("DELETE FROM case_event")))
    if database.dialect == "postgresql":
        attempts.append(lambda s: s.execute(text("TRUNCATE case_event CASCADE")))
    refused = 0
    for change in attempts:
        try:
            with Session(database.engine) as s:
                change(s)
                s.commit()
        except Exception as exc:
            if "append-only" in str(exc):
                refused += 1
    with Session(database.engine) as s:
        row = s.get(CaseEvent, event_id)
        assert row is not None and row.data == target.data
    return len(attempts), refused


class Guard:
    """Take the append-only triggers away (what a tamperer with owner rights can do)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.saved: list[str] = []

    def off(self) -> None:
        with self.engine.begin() as conn:
            if self.sqlite:
                rows = conn.execute(
                    text(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                        "AND tbl_name = 'case_event'"
                    )
                ).all()
                self.saved = [sql for _, sql in rows]
                for name, _ in rows:
                    conn.execute(text(f'DROP TRIGGER "{name}"'))
            else:
                conn.execute(text("ALTER TABLE case_event DISABLE TRIGGER USER"))

    def on(self) -> None:
        with self.engine.begin() as conn:
            if self.sqlite:
                for sql in self.saved:
                    conn.execute(text(sql))
            else:
                conn.execute(text("ALTER TABLE case_event ENABLE TRIGGER USER"))


def audit(database: Database, *, subprocess_run: bool) -> tuple[int, list[tuple[str, int]]]:
    """Run ``tiaojie audit verify``; (exit code, [(case number, seq)] reported)."""
    if subprocess_run:
        env = {**os.environ, "TIAOJIE_DATABASE_URL": database.url}
        tiaojie = os.path.join(os.path.dirname(sys.executable), "tiaojie")
        done = subprocess.run(
            [tiaojie, "audit", "verify"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        code, output = done.returncode, done.stdout + done.stderr
    else:
        from tiaojie_cli.main import app

        with use_database(database.url):
            answer = CliRunner().invoke(app, ["audit", "verify"])
        code, output = answer.exit_code, answer.output
    return code, [(m.group(1), int(m.group(2))) for m in PROBLEM.finditer(output)]


def trials(database: Database, count: int, rng: random.Random) -> dict[str, int]:
    with Session(database.engine) as s:
        rows = s.exec(
            select(CaseEvent.id, CaseEvent.case_id, CaseEvent.seq, Case.number, Case.version)
            .join(Case, col(Case.id) == col(CaseEvent.case_id))
            .order_by(col(CaseEvent.id))
        ).all()
    guard = Guard(database.engine)
    found_exact = missed = false_alarms = 0
    clean_code, clean_found = audit(database, subprocess_run=False)
    if clean_code != 0 or clean_found:
        false_alarms += 1
    for n in range(count):
        event_id, _case_id, seq, number, version = rng.choice(rows)
        kind = ("data", "status", "time", "delete")[n % 4]
        if kind == "delete" and seq == version:
            kind = "data"  # deleting the last event is found as "last event missing" at seq
        with Session(database.engine) as s:
            original = (
                s.execute(text("SELECT * FROM case_event WHERE id = :i"), {"i": event_id})
                .mappings()
                .one()
            )
        original = dict(original)
        guard.off()
        try:
            with database.engine.begin() as conn:
                if kind == "data":
                    conn.execute(
                        text("UPDATE case_event SET data = :d WHERE id = :i"),
                        {"d": json.dumps({"level": 99, "note": "改过"}), "i": event_id},
                    )
                elif kind == "status":
                    conn.execute(
                        text("UPDATE case_event SET to_status = 'closed' WHERE id = :i"),
                        {"i": event_id},
                    )
                elif kind == "time":
                    conn.execute(
                        text("UPDATE case_event SET at = :a WHERE id = :i"),
                        {"a": "2020-01-01 00:00:00", "i": event_id},
                    )
                else:
                    # The outbox row points at the event: unhook it first, as a tamperer must.
                    conn.execute(
                        text("UPDATE outbox SET event_id = NULL WHERE event_id = :i"),
                        {"i": event_id},
                    )
                    conn.execute(text("DELETE FROM case_event WHERE id = :i"), {"i": event_id})
            code, found = audit(database, subprocess_run=n == 0)
            expected = (number, seq + 1) if kind == "delete" else (number, seq)
            if code == 1 and found and found[0] == expected:
                found_exact += 1
            else:
                missed += 1
        finally:
            restore(database.engine, kind, event_id, original)
            guard.on()
        code, found = audit(database, subprocess_run=False)
        if code != 0 or found:
            false_alarms += 1
    return {
        "tampered": count,
        "found_at_exact_position": found_exact,
        "missed": missed,
        "false_alarms": false_alarms,
    }


def restore(engine: Engine, kind: str, event_id: int, original: dict[str, Any]) -> None:
    with engine.begin() as conn:
        if kind == "delete":
            columns = ", ".join(original)
            values = ", ".join(f":{k}" for k in original)
            params = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in original.items()}
            conn.execute(text(f"INSERT INTO case_event ({columns}) VALUES ({values})"), params)
            conn.execute(
                text(
                    "UPDATE outbox SET event_id = :i WHERE event_id IS NULL "
                    "AND case_id = :c AND idempotency_key = :k"
                ),
                {
                    "i": event_id,
                    "c": original["case_id"],
                    "k": f"{original['case_id']}:{original['seq']}:{original['verb']}",
                },
            )
        else:
            params = {
                "d": original["data"]
                if isinstance(original["data"], str)
                else json.dumps(original["data"]),
                "s": original["to_status"],
                "a": original["at"],
                "i": event_id,
            }
            conn.execute(
                text("UPDATE case_event SET data = :d, to_status = :s, at = :a WHERE id = :i"),
                params,
            )


def on(database: Database, cases: int, tamper: int, rng: random.Random) -> dict[str, int]:
    fill(database, cases)
    attempts, refused = refusals(database)
    figures = {"changes_tried": attempts, "refused": refused}
    figures.update(trials(database, tamper, rng))
    return figures


def run(scale: Scale) -> PromiseResult:
    cases, tamper = scale.pick((20, 4), (1000, 12))
    rng = random.Random(scale.seed)
    figures: dict[str, Any] = {}
    with sqlite_database() as database:
        figures.update({f"sqlite_{k}": v for k, v in on(database, cases, tamper, rng).items()})
    notes = []
    pg_url = require_pg()
    if pg_url:
        with pg_database(pg_url) as database:
            figures.update({f"pg_{k}": v for k, v in on(database, cases, tamper, rng).items()})
    else:
        notes.append("PostgreSQL not reachable: SQLite only")
    dbs = [d for d in ("sqlite", "pg") if f"{d}_refused" in figures]
    passed = all(
        figures[f"{d}_refused"] == figures[f"{d}_changes_tried"]
        and figures[f"{d}_found_at_exact_position"] == figures[f"{d}_tampered"]
        and figures[f"{d}_missed"] == 0
        and figures[f"{d}_false_alarms"] == 0
        for d in dbs
    )
    return PromiseResult(
        promise="6 Tamper-evident audit 审计防篡改",
        test="tests/reliability/p06_audit.py: ORM and raw SQL UPDATE/DELETE/TRUNCATE on "
        "case_event; `tiaojie audit verify` after hand edits",
        load=f"{cases:,} cases with 3 to 6 events each; {tamper} hand edits per database"
        + (" (SQLite and PostgreSQL)" if pg_url else " (SQLite)"),
        faults="edits of data, status and time, deletion of a row, with the triggers "
        "dropped/disabled by the table owner",
        result=figures,
        passed=passed,
        notes=notes,
    )
