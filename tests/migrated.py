"""A SQLite database file at the newest schema, for tests that need a migrated file.

The Alembic migrations run once per test process, into a template file; each caller
gets a byte copy of it (a millisecond, where running the migrations again costs a few
hundred). The migrations are still exercised on every run, and by tests/unit/test_schema
against the tables.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from models.db import build_engine
from models.migrate import upgrade

_lock = threading.Lock()
_template: list[Path] = []


def _migrated_template() -> Path:
    with _lock:
        if not _template:
            path = Path(tempfile.mkdtemp(prefix="tiaojie-migrated-")) / "migrated.db"
            engine = build_engine(f"sqlite:///{path}")
            upgrade(engine)
            engine.dispose()  # the last connection out checkpoints the WAL into the file
            for sidecar in ("-wal", "-shm"):
                assert not Path(f"{path}{sidecar}").exists(), "template not checkpointed"
            _template.append(path)
        return _template[0]


def migrated_sqlite(path: Path) -> str:
    """Write a migrated, empty case database at ``path``; answer its URL."""
    shutil.copyfile(_migrated_template(), path)
    return f"sqlite:///{path}"
