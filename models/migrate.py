"""Run the Alembic migrations programmatically (``tiaojie init`` and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from models.db import get_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine | None = None) -> None:
    """Bring the database to the newest schema; safe to run any number of times."""
    engine = engine or get_engine()
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    _fill_kept_figures(engine)


def _fill_kept_figures(engine: Engine) -> None:
    """Figures kept as cases change start empty in a database made before them."""
    from sqlmodel import Session

    from models.decisions import fill_if_empty

    with Session(engine) as session:
        if fill_if_empty(session):
            session.commit()


def current_tables(engine: Engine | None = None) -> set[str]:
    return set(inspect(engine or get_engine()).get_table_names())


def autogenerate(message: str, url: str) -> None:
    """Developer helper: write a new revision from the difference to ``url``."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


def rewrite_initial() -> Path:
    """Regenerate ``0001_initial_schema.py`` from the tables (pre-release only)."""
    import shutil
    import tempfile

    versions = MIGRATIONS / "versions"
    for old in versions.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        # Hand-written revisions (0002_event_guards, ...) build on 0001: set them aside
        # while 0001 is regenerated against an empty database, then put them back.
        kept = Path(tmp) / "kept"
        kept.mkdir()
        hand_written = [p for p in versions.glob("*.py") if p.name != "__init__.py"]
        for path in hand_written:
            shutil.move(path, kept / path.name)
        try:
            command.revision(
                alembic_config(f"sqlite:///{tmp}/base.db"),
                message="initial schema",
                autogenerate=True,
                rev_id="0001",
            )
        finally:
            for path in hand_written:
                shutil.move(kept / path.name, path)
    [generated] = [p for p in versions.glob("0001_*.py")]
    target = versions / "0001_initial_schema.py"
    generated.rename(target)
    return target


if __name__ == "__main__":
    import sys

    if "--rewrite-initial" in sys.argv:
        print(f"wrote {rewrite_initial()}")
