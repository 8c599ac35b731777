"""CPU time and SQL statements per request of the pages of ``bench.pages``, in process.

``python scripts/page_cpu.py [--cases N] [--requests R] [--profile PAGE]``: the saved
bench city of N cases (``bench/.city``; built the first time), the real app driven
through Starlette's test client in this process, each page read R times after a warm-up
by the person who would read it. Per page: the fastest, median and p95 CPU
milliseconds of a request (``time.process_time``, every thread of the process: the
client's share is the same for every page and small) and the statements it sent
(``X-SQL-Statements``). On a shared machine the median moves with the others' load;
the fastest request much less.

``--statements PAGE`` times each SQL statement of that page's requests (median and
worst, slowest first; those of 5 ms or more printed whole, to EXPLAIN). On SQLite that is
the time to the first row only: the rest are made as they are fetched, so a statement
that walks an index in order and drops rows (the inbox's overdue list walked the city's
overdue cases for a community: 0.9 ms here, 13.7 ms fetched) shows under
``Cursor.fetchall`` in ``--profile PAGE`` run with ``PROFILE_ALL=1`` (every frame
shown). ``--profile PAGE`` runs that page's requests under pyinstrument and prints the
tree, through an in-process ASGI transport with the handlers run inline instead of in
worker threads, so that the one profiled thread is the one doing the work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console


def _pages(
    plan: dict[str, object], export_window: tuple[str, str]
) -> dict[str, tuple[str, Callable[[int], str]]]:
    """Per page: who reads it and its address for the i-th request."""
    from bench.pages import SEARCH_WORDS, _month_start

    numbers = plan["long_timeline_numbers"]
    assert isinstance(numbers, list)
    month = _month_start(datetime.now(UTC).date())
    last_month = (month - timedelta(days=1)).date()
    return {
        "inbox": ("d1s1c1_mediator", lambda _i: "/web/inbox"),
        "case_page": ("d1s1c1_mediator", lambda i: f"/web/cases/{numbers[i % len(numbers)]}"),
        "dashboard_district": ("d1_supervisor", lambda _i: "/web/dashboard"),
        "dashboard_street": ("d1_supervisor", lambda _i: "/web/dashboard?level=street"),
        "search": (
            "d1_supervisor",
            lambda i: f"/web/cases?q={SEARCH_WORDS[i % len(SEARCH_WORDS)]}",
        ),
        "monthly_report": (
            "d1_supervisor",
            lambda _i: f"/web/reports/monthly/{last_month:%Y-%m}.xlsx",
        ),
        # The bench's window of about 10,000 cases ending yesterday (bench.pages).
        "export_10k": (
            "city_admin",
            lambda _i: "/web/export/cases.xlsx?from={}&to={}".format(*export_window),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--profile", default=None, help="a page to profile instead")
    parser.add_argument(
        "--statements", default=None, help="a page whose SQL statements to time instead"
    )
    args = parser.parse_args()

    from bench.pages import CACHE, _key_env, ensure_city, sign_in

    path, meta = ensure_city(args.cases, Console(stderr=True))
    url = f"sqlite:///{path}"
    os.environ.update(
        _key_env(CACHE / "home"),
        TIAOJIE_DATABASE_URL=url,
        TIAOJIE_BENCH_SQL_COUNT="1",
        TIAOJIE_RESIDENT_PER_MINUTE="0",
    )
    from models.settings import reset_settings

    reset_settings()
    # The app as uvicorn serves it (api.app:app; a second create_app() would count each
    # statement twice: both install the counter on the one engine).
    from sqlalchemy import create_engine

    from api.app import app
    from bench.pages import _export_window

    engine = create_engine(url)
    with engine.connect() as con:
        window = _export_window(con, 10_000)
    engine.dispose()
    pages = _pages(meta["plan"], window)
    one = args.profile or args.statements
    names = args.only or ([one] if one else list(pages))
    cookies = sign_in(url, sorted({pages[n][0] for n in names}))
    if args.profile:
        who, address = pages[args.profile]
        asyncio.run(_profile(app, cookies[who], address, args.requests))
        return
    if args.statements:
        who, address = pages[args.statements]
        _time_statements(app, cookies[who], address, args.requests)
        return
    with TestClient(app, follow_redirects=False) as client:
        for name in names:
            who, address = pages[name]
            client.cookies.clear()
            client.cookies.set("tj_session", cookies[who])
            _measure(client, name, address, args.requests)


def _measure(client: TestClient, name: str, address: Callable[[int], str], n: int) -> None:
    for i in range(3):  # warm the caches; not counted
        client.get(address(i)).raise_for_status()
    cpu: list[float] = []
    statements: set[int] = set()
    for i in range(n):
        start = time.process_time()
        answer = client.get(address(i))
        cpu.append((time.process_time() - start) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:300]}")
        statements.add(int(answer.headers["x-sql-statements"]))
    cpu.sort()
    p95 = cpu[min(len(cpu) - 1, round(0.95 * (len(cpu) - 1)))]
    print(
        f"{name:20} cpu min {cpu[0]:7.2f} ms  median {statistics.median(cpu):7.2f} ms  "
        f"p95 {p95:7.2f} ms  statements {sorted(statements)}"
    )


def _time_statements(app: Any, cookie: str, address: Callable[[int], str], n: int) -> None:
    """Each statement of the page's requests, by its text: median and worst milliseconds
    from cursor to result (the database's share, without building the statement)."""
    from sqlalchemy import event

    from models.db import get_engine

    spent: dict[str, list[float]] = {}
    started: list[float] = []

    def before(*_a: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        spent.setdefault(statement, []).append((time.perf_counter() - started.pop()) * 1000)

    engine = get_engine()
    with TestClient(app, follow_redirects=False) as client:
        client.cookies.set("tj_session", cookie)
        for i in range(3):
            client.get(address(i)).raise_for_status()
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        for i in range(n):
            client.get(address(i)).raise_for_status()
    rows = sorted(spent.items(), key=lambda kv: -statistics.median(kv[1]))
    for sql, times in rows:
        text = " ".join(sql.split())
        median, worst, each = statistics.median(times), max(times), len(times) // n
        print(f"{median:8.2f} ms  max {worst:8.2f}  x{each}  {text[:150] if median < 5 else text}")


async def _profile(app: Any, cookie: str, address: Callable[[int], str], n: int) -> None:
    import anyio.to_thread
    import httpx
    from pyinstrument import Profiler

    async def inline(func: Callable[..., Any], *args: Any, **_kw: Any) -> Any:
        return func(*args)

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        client.cookies.set("tj_session", cookie)
        for i in range(3):
            (await client.get(address(i))).raise_for_status()
        profiler = Profiler(interval=0.001)
        profiler.start()
        for i in range(n):
            (await client.get(address(i))).raise_for_status()
        profiler.stop()
    print(
        profiler.output_text(
            unicode=True, color=False, show_all=bool(os.environ.get("PROFILE_ALL"))
        )
    )


if __name__ == "__main__":
    main()
