"""The pages section's PostgreSQL city, kept between runs like the SQLite one.

A million cases take many minutes to load into PostgreSQL, so the full run keeps the
cluster under ``bench/.city/`` beside the SQLite city (``scripts/pg-throwaway start DIR``
makes it there once and starts it again later; ``halt DIR`` stops it and keeps it),
named by the generator's version and the size. The ``.json`` beside it is written only
once a build has finished, so a build cut short is thrown away and made again. A kept
city is brought to the tables' own schema before it is measured: the migrations, then
any table or index added since, then ``ANALYZE``.

The kept cluster gets ``shared_buffers=1GB`` (a district's server has memory to spare;
the throwaway clusters of the tests keep 128 MB).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from bench import pagegen
from bench.common import REPO
from bench.scale_out import SCRIPT, Postgres

KEPT = REPO / "bench" / ".city"
DATABASE = "tiaojie_pages"


def folder_for(n: int) -> Path:
    return KEPT / f"pg-v{pagegen.VERSION}-{n}"


@contextmanager
def kept_city(n: int, console: Console) -> Iterator[tuple[str, dict[str, Any]]]:
    """The URL and description of the kept PostgreSQL city of ``n`` cases (built now if
    there is none); the cluster is halted, not removed, when the block ends."""
    from bench.pages import _use_keys, build_postgres_city

    _use_keys(KEPT / "home")  # the keys the city was encrypted with, as the app reads it
    folder = folder_for(n)
    meta_path = folder.with_suffix(".json")
    if folder.exists() and not meta_path.exists():
        console.print(f"removing {folder.name}: its build did not finish")
        _run("stop", folder)
        shutil.rmtree(folder, ignore_errors=True)
    pg = _start(folder)
    try:
        if meta_path.exists():
            url = make_url(pg.url).set(database=DATABASE).render_as_string(hide_password=False)
            meta: dict[str, Any] = json.loads(meta_path.read_text())
            meta.update(reused=True, schema_added=sync_schema(url))
            console.print(f"reusing the kept PostgreSQL city {folder.name}")
        else:
            url = pg.new_database(DATABASE)
            meta = build_postgres_city(url, n, console)
            meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1))
        yield url, meta
    finally:
        _run("halt", folder)


def sync_schema(url: str) -> list[str]:
    """The migrations, then the tables and indexes the tables declare that the kept
    city lacks (never a drop: migrations own what the tables do not declare, such as
    the search words' GIN index)."""
    from sqlalchemy import inspect

    from models.db import build_engine
    from models.migrate import upgrade
    from models.tables import metadata

    engine: Engine = build_engine(url)
    try:
        upgrade(engine)
        before = set(inspect(engine).get_table_names())
        metadata.create_all(engine)
        made = [t for t in inspect(engine).get_table_names() if t not in before]
        for table in metadata.sorted_tables:
            have = {i["name"] for i in inspect(engine).get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in have:
                    index.create(engine, checkfirst=True)
                    made.append(str(index.name))
        if made:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        return made
    finally:
        engine.dispose()


def _start(folder: Path) -> Postgres:
    env = {**os.environ, "PG_SHARED_BUFFERS": "1GB"}
    done = subprocess.run(
        [str(SCRIPT), "start", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg-throwaway start failed: {done.stderr[-1500:]}")
    return Postgres.from_exports(done.stdout)


def _run(verb: str, folder: Path) -> None:
    subprocess.run([str(SCRIPT), verb, str(folder)], capture_output=True, timeout=180, check=False)


def main() -> None:
    """``python -m bench.pgcity N``: build (or bring up to date) the kept city of N cases."""
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    with kept_city(n, Console(stderr=True)) as (_url, meta):
        print(folder_for(n), json.dumps({k: v for k, v in meta.items() if k != "plan"}))


if __name__ == "__main__":
    main()
