"""Generate a city and a large case load straight into a SQLite file, fast.

The city (units, staff, pairings, time-limit policies) goes through the ORM: it is
small. The cases go through ``sqlite3.executemany`` in one transaction with the cases'
secondary indexes dropped and rebuilt afterwards: 1,000,000 rows in well under a minute.

Cases that will fall due in the benchmark get a real history: ``submitted``,
``triaged`` and ``assigned`` events, hash-chained exactly as :mod:`models.lifecycle`
writes them, and ``version``/``last_hash`` to match, so that a sweep appends to a valid
chain (``verify_chain`` holds for every case it touched). Cases that are not due have
no events: nothing reads them during the benchmark but the due-case query, which must
skip them through its index.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from models import lifecycle
from models.enums import CaseStatus, Category, Channel, Priority, StaffRole, UnitLevel
from models.event import CaseEvent
from models.policy import LimitUnit, TimeLimitPolicy
from models.staff import Staff
from models.unit import Pairing, Unit

SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"
CATEGORIES = [c.value for c in Category]
DESCRIPTIONS = [
    "小区旁工地夜间施工噪音扰民，居民多次反映未果。",
    "电子厂拖欠工人两个月工资，工人要求尽快结清。",
    "楼上住户漏水导致楼下天花板损坏，双方协商未果。",
    "物业公司停车费上涨，业主认为收费不合理。",
    "饭店油烟直排，影响周边住户正常生活。",
    "拆迁补偿标准争议，住户认为评估价格过低。",
    "租客拖欠房租三个月，房东要求解除合同。",
]


def ts(value: datetime) -> str:
    """A datetime as SQLAlchemy stores it in SQLite (naive UTC text)."""
    return value.astimezone(UTC).replace(tzinfo=None).strftime(SQLITE_TS)


@dataclass
class GenCity:
    communities: list[tuple[int, str]] = field(default_factory=list)  # (unit id, path)
    staff_by_unit: dict[int, list[int]] = field(default_factory=dict)


def build_city(
    session: Session, *, districts: int = 4, streets: int = 4, communities: int = 5
) -> GenCity:
    """A city of ``districts x streets x communities`` communities, each with two
    compounds, a mediator and a community worker; mediators in every street and
    district, a supervisor per district, paired agencies, the time limits of docs/DOMAIN.md."""
    gen = GenCity()

    def unit(code: str, level: UnitLevel, parent: Unit | None, name: str) -> Unit:
        u = Unit(
            code=code,
            name_zh=name,
            name_en=code,
            level=level,
            parent_id=parent.id if parent else None,
            path=(parent.path if parent else "/") + code + "/",
        )
        session.add(u)
        session.flush()
        return u

    def staff(username: str, role: StaffRole, u: Unit, capacity: int = 100000) -> None:
        s = Staff(
            username=username,
            display_name=username,
            role=role,
            unit_id=u.id,
            skills=list(CATEGORIES),
            capacity=capacity,
        )
        session.add(s)
        session.flush()
        assert s.id is not None and u.id is not None
        gen.staff_by_unit.setdefault(u.id, []).append(s.id)

    city = unit("C", UnitLevel.CITY, None, "江心市")
    staff("city_admin", StaffRole.ADMIN, city)
    staff("city_mediator", StaffRole.MEDIATOR, city)
    for d in range(1, districts + 1):
        dist = unit(f"D{d}", UnitLevel.DISTRICT, city, f"第{d}区")
        staff(f"d{d}_mediator", StaffRole.MEDIATOR, dist)
        staff(f"d{d}_supervisor", StaffRole.SUPERVISOR, dist)
        agency = unit(f"AG{d}-LAB", UnitLevel.AGENCY, dist, f"第{d}区人社局")
        staff(f"ag{d}_officer", StaffRole.MEDIATOR, agency)
        for s in range(1, streets + 1):
            street = unit(f"D{d}S{s}", UnitLevel.STREET, dist, f"第{d}区第{s}街道")
            staff(f"d{d}s{s}_mediator", StaffRole.MEDIATOR, street)
            for c in range(1, communities + 1):
                code = f"D{d}S{s}C{c}"
                cm = unit(code, UnitLevel.COMMUNITY, street, f"{code}社区")
                staff(f"{code.lower()}_mediator", StaffRole.MEDIATOR, cm)
                staff(f"{code.lower()}_worker", StaffRole.COMMUNITY_WORKER, cm)
                for p in (1, 2):
                    cp = unit(f"{code}P{p}", UnitLevel.COMPOUND, cm, f"{code}第{p}小区")
                    staff(f"{code.lower()}p{p}_grid", StaffRole.GRID_WORKER, cp)
                assert cm.id is not None and agency.id is not None
                session.add(
                    Pairing(community_id=cm.id, agency_id=agency.id, category=Category.LABOUR)
                )
                gen.communities.append((cm.id, cm.path))
    for policy in (
        TimeLimitPolicy(name="complaint", response_value=1, resolution_value=13),
        TimeLimitPolicy(
            name="emergency",
            priority=Priority.EMERGENCY,
            response_unit=LimitUnit.WORKING_HOURS,
            response_value=2,
            resolution_unit=LimitUnit.SAME_DAY,
            resolution_value=0,
        ),
        TimeLimitPolicy(
            name="consultation",
            priority=Priority.CONSULTATION,
            response_value=1,
            resolution_value=3,
        ),
        TimeLimitPolicy(
            name="compound", level=UnitLevel.COMPOUND, response_value=1, resolution_value=5
        ),
    ):
        session.add(policy)
    session.flush()
    return gen


CASE_COLUMNS = [
    "id",
    "number",
    "category",
    "priority",
    "channel",
    "description",
    "people_affected",
    "status",
    "is_open",
    "version",
    "last_hash",
    "category_locked",
    "priority_locked",
    "held_for_assessment",
    "helper_ids",
    "confidential",
    "place_unit_id",
    "unit_id",
    "unit_path",
    "assignee_id",
    "escalation_level",
    "is_group",
    "response_due_at",
    "resolution_due_at",
    "next_reminder_at",
    "first_response_at",
    "created_at",
    "updated_at",
    "submitted_at",
    "triaged_at",
    "assigned_at",
    "reminded_level",
]
EVENT_COLUMNS = [
    "case_id",
    "seq",
    "verb",
    "from_status",
    "to_status",
    "actor",
    "at",
    "data",
    "prev_hash",
    "hash",
]


def _history(
    case_id: int,
    created: datetime,
    unit_id: int,
    assignee: int,
    reminded: tuple[datetime, dict[str, Any]] | None = None,
) -> tuple[list[tuple[Any, ...]], str]:
    """The events of a case that was submitted, triaged and assigned (and, when
    ``reminded`` is given, reminded the day before its deadline)."""
    st = CaseStatus
    steps: list[tuple[str, CaseStatus | None, CaseStatus, datetime, dict[str, Any]]] = [
        ("submitted", None, st.SUBMITTED, created, {}),
        ("triaged", st.SUBMITTED, st.TRIAGED, created + timedelta(seconds=1), {"unit_id": unit_id}),
        (
            "assigned",
            st.TRIAGED,
            st.ASSIGNED,
            created + timedelta(seconds=2),
            {"assignee_id": assignee},
        ),
    ]
    if reminded is not None:
        steps.append(("reminded", st.ASSIGNED, st.ASSIGNED, reminded[0], reminded[1]))
    rows: list[tuple[Any, ...]] = []
    prev = lifecycle.GENESIS_HASH

    for seq, (verb, frm, to, at, data) in enumerate(steps, start=1):
        event = CaseEvent(
            case_id=case_id,
            seq=seq,
            verb=verb,
            from_status=frm,
            to_status=to,
            actor="system",
            at=at,
            data=data,
            prev_hash=prev,
            hash="",
        )
        h = lifecycle.event_hash(prev, lifecycle.event_body(event))
        rows.append(
            (
                case_id,
                seq,
                verb,
                frm.value if frm else None,
                to.value,
                "system",
                ts(at),
                json.dumps(data),
                prev,
                h,
            )
        )
        prev = h
    return rows, prev


@dataclass
class LoadReport:
    open_cases: int
    due_cases: int
    overdue_cases: int
    reminder_cases: int
    seconds: float
    db_mb: float


def _case_rows(
    gen: GenCity, *, n: int, due_every: int, now: datetime, seed: int
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]] | None, str]]:
    rng = random.Random(seed)
    year = now.year
    for i in range(1, n + 1):
        unit_id, path = gen.communities[i % len(gen.communities)]
        staff = gen.staff_by_unit[unit_id]
        assignee = staff[i % len(staff)]
        due = i % due_every == 0
        reminded_level: int | None = None
        history: tuple[datetime, dict[str, Any]] | None = None
        if due:
            # Half of them past their resolution limit (to escalate: they were reminded
            # the day before, as the reminder time comes first), half only past their
            # reminder time (to remind).
            overdue = (i // due_every) % 2 == 0
            created = now - timedelta(days=rng.uniform(15, 25) if overdue else rng.uniform(10, 12))
            if overdue:
                resolution = now - timedelta(hours=rng.uniform(1, 48))
                sent_at = resolution - timedelta(hours=rng.uniform(8, 24))
                reminder: datetime | None = None
                reminded_level = 0
                code = path.strip("/").split("/")[-1]
                history = (
                    sent_at,
                    {"level": 0, "deadline": resolution.isoformat(), "unit": code},
                )
            else:
                resolution = now + timedelta(hours=rng.uniform(2, 20))
                reminder = now - timedelta(hours=rng.uniform(0.5, 8))
            kind = "overdue" if overdue else "reminder"
        else:
            created = now - timedelta(days=rng.uniform(0, 9))
            resolution = created + timedelta(days=18)
            reminder = resolution - timedelta(hours=8)
            if reminder <= now:
                reminder = now + timedelta(days=1)
            kind = "open"
        response = created + timedelta(days=1)
        triaged = created + timedelta(seconds=1)
        assigned = created + timedelta(seconds=2)
        events, last_hash = _history(i, created, unit_id, assignee, history) if due else (None, "")
        updated = history[0] if history else assigned
        yield (
            (
                i,
                f"BN-{year}-{i:07d}",
                CATEGORIES[i % len(CATEGORIES)],
                Priority.NORMAL.value,
                Channel.WALK_IN.value,
                DESCRIPTIONS[i % len(DESCRIPTIONS)],
                1 + i % 7,
                "assigned",
                1,
                4 if history else 3,
                last_hash,
                0,
                0,
                0,
                "[]",
                0,
                unit_id,
                unit_id,
                path,
                assignee,
                0,
                0,
                ts(response),
                ts(resolution),
                ts(reminder) if reminder else None,
                ts(triaged),
                ts(created),
                ts(updated),
                ts(created),
                ts(triaged),
                ts(assigned),
                reminded_level,
            ),
            events,
            kind,
        )


def load_cases(
    db_file: Path, gen: GenCity, *, n: int, due_fraction: float, now: datetime, seed: int = 7
) -> LoadReport:
    """Insert ``n`` open, assigned cases, ``due_fraction`` of them due at ``now``."""
    import time

    start = time.perf_counter()
    due_every = max(1, round(1 / due_fraction))
    con = sqlite3.connect(db_file, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")
        index_sql = [
            row[0]
            for row in con.execute(
                "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name IN ('cases','case_event') AND sql IS NOT NULL"
            )
        ]
        index_names = [
            row[0]
            for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name IN ('cases','case_event') AND sql IS NOT NULL"
            )
        ]
        con.execute("BEGIN")
        for name in index_names:
            con.execute(f'DROP INDEX "{name}"')
        case_sql = f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({', '.join('?' * len(CASE_COLUMNS))})"
        event_sql = f"INSERT INTO case_event ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
        batch: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        counts = {"open": 0, "overdue": 0, "reminder": 0}
        for row, history, kind in _case_rows(gen, n=n, due_every=due_every, now=now, seed=seed):
            batch.append(row)
            counts[kind] += 1
            if history:
                events.extend(history)
            if len(batch) >= 50_000:
                con.executemany(case_sql, batch)
                batch.clear()
        if batch:
            con.executemany(case_sql, batch)
        con.executemany(event_sql, events)
        # The history was notified when it happened: mark those notifications sent, so
        # that the sweep owes only what it causes.
        con.executemany(
            "INSERT INTO notification (case_id, idempotency_key, recipient_id, kind, text, "
            "created_at, sent_at, attempts) VALUES (?, ?, NULL, ?, ?, ?, ?, 1)",
            [
                (e[0], f"{e[0]}:{e[1]}:{e[2]}", e[2], f"[generated history] {e[2]}", e[6], e[6])
                for e in events
                if e[2] in ("assigned", "reminded")
            ],
        )
        con.execute(
            "INSERT OR REPLACE INTO case_number_counter (year, last) VALUES (?, ?)", (now.year, n)
        )
        for sql in index_sql:
            con.execute(sql)
        con.execute("COMMIT")
        keep_deadlines(db_file)
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    due = counts["overdue"] + counts["reminder"]
    return LoadReport(
        open_cases=n,
        due_cases=due,
        overdue_cases=counts["overdue"],
        reminder_cases=counts["reminder"],
        seconds=time.perf_counter() - start,
        db_mb=db_file.stat().st_size / 2**20,
    )


def keep_deadlines(db_file: Path) -> None:
    """Each case's deadline that counts, as the ORM keeps it (cases written here are
    raw rows): models.overdue.refresh_deadlines, after the indexes are back (its return
    visits' subquery reads follow_up by case)."""
    from models.db import build_engine
    from models.overdue import refresh_deadlines

    engine = build_engine(f"sqlite:///{db_file}")
    try:
        with engine.begin() as conn:
            refresh_deadlines(conn)
    finally:
        engine.dispose()


def create_database(db_file: Path) -> Engine:
    """An empty database at the current schema, through the real migration."""
    from models.db import build_engine
    from models.migrate import upgrade

    engine = build_engine(f"sqlite:///{db_file}")
    upgrade(engine)
    return engine
