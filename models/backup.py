"""Backups of the case database, and restoring one (备份与恢复).

SQLite: SQLite's online backup API copies a consistent snapshot while the system runs
(writers wait a moment, nothing stops). PostgreSQL: ``pg_dump --format=custom`` and
``pg_restore``. Each backup folder holds the copy and ``manifest.json`` (when, from
which database, the SHA-256 of the copy, how many cases and events it holds).

The keys are *not* copied: a backup lying on a shared drive must not carry the key that
decrypts every phone and ID number in it. Keep the keys (``TIAOJIE_HOME/keys/`` or the
``TIAOJIE_*_KEY`` variables) somewhere else, safe; without the field key the personal
data of a restored backup cannot be read (everything else can).

The Prefect database is not backed up: it is rebuilt by registering the deployments
again, and the reconciler re-drives any case whose step was lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, make_url, text
from sqlmodel import Session, select

from models import clock
from models.admin_log import verify_log
from models.audit import verify_all
from models.case import Case
from models.db import is_sqlite
from models.event import CaseEvent

MANIFEST = "manifest.json"
SQLITE_FILE = "tiaojie.db"
PG_FILE = "tiaojie.dump"


class BackupError(RuntimeError):
    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class Counts:
    cases: int
    events: int


def counts(engine: Engine) -> Counts:
    with Session(engine) as session:
        cases = int(session.exec(select(func.count()).select_from(Case)).one())
        events = int(session.exec(select(func.count()).select_from(CaseEvent)).one())
    return Counts(cases, events)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("内存数据库无法备份", "an in-memory database cannot be backed up")
    return Path(database)


def backup(engine: Engine, folder: Path) -> dict[str, Any]:
    """Write a backup of the case database into ``folder`` (created; must be empty) and
    return its manifest."""
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"目标文件夹 {folder} 不是空的", f"{folder} is not empty")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # personal data, even encrypted, is for the owner only
    before = counts(engine)
    if is_sqlite(engine):
        target = folder / SQLITE_FILE
        source = sqlite3.connect(_sqlite_path(engine))
        copy = sqlite3.connect(target)
        try:
            with copy:
                source.backup(copy)  # the online backup API: a consistent snapshot
        finally:
            copy.close()
            source.close()
        kind = "sqlite"
    else:
        target = folder / PG_FILE
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), _pg_dsn(engine)])
        kind = "postgresql"
    os.chmod(target, 0o600)
    manifest: dict[str, Any] = {
        "created_at": clock.now().isoformat(),
        "kind": kind,
        "file": target.name,
        "sha256": _sha256(target),
        # At least these many: rows written during an online backup may be in it too.
        "cases": before.cases,
        "events": before.events,
        "keys_included": False,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        raise BackupError(f"{folder} 中没有 {MANIFEST}", f"no {MANIFEST} in {folder}")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    copy = folder / str(manifest.get("file", ""))
    if not copy.is_file() or _sha256(copy) != manifest.get("sha256"):
        raise BackupError(
            "备份文件缺失或已损坏（SHA-256 不符）",
            "the backup file is missing or damaged (SHA-256 differs)",
        )
    return manifest


def restore(engine: Engine, folder: Path) -> dict[str, Any]:
    """Put the backup in ``folder`` in place of the case database of ``engine``. The
    caller makes sure nothing is running on it."""
    manifest = read_manifest(folder)
    copy = folder / manifest["file"]
    if manifest["kind"] == "sqlite":
        if not is_sqlite(engine):
            raise BackupError(
                "这是 SQLite 备份，目标是 PostgreSQL", "a SQLite backup, a PostgreSQL target"
            )
        target = _sqlite_path(engine)
        engine.dispose()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".restoring")
        shutil.copyfile(copy, partial)
        os.chmod(partial, 0o600)
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        partial.replace(target)  # atomic: the old database or the whole new one
    else:
        if is_sqlite(engine):
            raise BackupError(
                "这是 PostgreSQL 备份，目标是 SQLite", "a PostgreSQL backup, a SQLite target"
            )
        engine.dispose()
        _pg_restore(copy, _pg_dsn(engine), folder / "restore.list")
    return manifest


@dataclass(frozen=True)
class Check:
    counts: Counts
    broken_cases: int
    broken_admin_entries: int

    @property
    def ok(self) -> bool:
        return self.broken_cases == 0 and self.broken_admin_entries == 0


def check(engine: Engine) -> Check:
    """Walk every case's event chain and the administration log of a restored database."""
    with Session(engine) as session:
        problems = verify_all(session)
        broken_admin = verify_log(session)
    return Check(counts(engine), len({p.case_id for p in problems}), len(broken_admin))


def other_connections(engine: Engine) -> int:
    """PostgreSQL: sessions on the database other than ours (0 on SQLite)."""
    if is_sqlite(engine):
        return 0
    with engine.connect() as conn:
        value = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return int(value)


def _pg_dsn(engine: Engine) -> str:
    url = make_url(engine.url.render_as_string(hide_password=False))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_restore(copy: Path, dsn: str, listing: Path) -> None:
    """Everything but the extensions: those (pg_trgm) belong to the database's owner,
    who creates them before a restore (see the run-book)."""
    entries = _run(["pg_restore", "--list", str(copy)]).splitlines()
    listing.write_text(
        "\n".join(e for e in entries if " EXTENSION " not in e) + "\n", encoding="utf-8"
    )
    try:
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--exit-on-error",
                "--use-list",
                str(listing),
                "--dbname",
                dsn,
                str(copy),
            ]
        )
    finally:
        listing.unlink(missing_ok=True)


def _run(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        raise BackupError(
            f"找不到 {command[0]}，请安装 PostgreSQL 客户端", f"{command[0]} not found"
        )
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(
            f"{command[0]} 失败", f"{command[0]} failed: {done.stderr.strip()[-500:]}"
        )
    return done.stdout
