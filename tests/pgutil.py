"""Helpers for tests that make throwaway PostgreSQL databases."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError


def drop_database_forcing(admin: Engine, name: str, attempts: int = 20) -> None:
    """DROP DATABASE ... WITH (FORCE), waiting out an autovacuum worker that a role
    without ``pg_signal_backend`` may not end."""
    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError as exc:
            if "pg_signal_backend" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.5)
