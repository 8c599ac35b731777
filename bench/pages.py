"""Pages at scale: the real app over HTTP on a city of ``n`` cases (1,000,000 in the full
run) kept over ten years (:mod:`bench.pagegen`).

The city is built once into ``bench/.city/`` (named by the generator's version and the
size) and reused by later runs; a table or index added to the schema since is created on
the saved city before the run (:func:`sync_schema`).

The app runs under uvicorn on 127.0.0.1 with ``TIAOJIE_BENCH_SQL_COUNT=1``, so each
answer carries its number of SQL statements (``X-SQL-Statements``). Each page is read
signed in as the person who would read it (the community's mediator, the district's
supervisor, the city administrator for the export, a resident after the phone check),
one request at a time, and timed at the client. Next to each page, in the same run, the
**plain query**: one SQL statement fetching just the rows the page shows, timed in this
process on the same file; ``ratio`` is the page's p95 over the plain query's.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from sqlalchemy import Connection, Engine, text

from bench import pagegen
from bench.common import PYTHON, REPO, Workspace, free_port, percentile, ratio, rnd, wait_http
from bench.config import Sizes
from bench.home import SECRET
from bench.plain_queries import STREET_PATH, plain_queries

CACHE = REPO / "bench" / ".city"
UVICORN_FLAGS = ["--log-level", "warning", "--no-access-log"]
MIN_REQUESTS = 20
KEEP_PG_FROM = 100_000  # a PostgreSQL city this large is kept between runs (bench.pgcity)
SEARCH_WORDS = ["噪音", "拖欠工资", "漏水", "油烟", "停车费", "装修"]


# --- the city ------------------------------------------------------------------------------


def _key_env(home: Path) -> dict[str, str]:
    """The settings under which the city is encrypted and the app reads it."""
    return {"TIAOJIE_HOME": str(home), "TIAOJIE_SECRET_KEY": SECRET}


def _use_keys(home: Path) -> None:
    from models import keys
    from models.settings import reset_settings

    os.environ.update(_key_env(home))
    reset_settings()
    keys.forget_cached_keys()


def city_path(n: int) -> Path:
    return CACHE / f"pages-v{pagegen.VERSION}-{n}.db"


def sync_schema(engine: Engine) -> list[str]:
    """Bring a saved city's schema to the tables' own: the migrations (columns added
    since it was saved), then the tables and indexes added since, drop the indexes since
    removed, fill the kept figures."""
    from sqlalchemy import inspect
    from sqlmodel import Session

    from models.decisions import fill_if_empty
    from models.migrate import upgrade
    from models.tables import metadata

    revision = _revision(engine)
    upgrade(engine)
    before = set(inspect(engine).get_table_names())
    metadata.create_all(engine)
    made = [t for t in inspect(engine).get_table_names() if t not in before]
    for table in metadata.sorted_tables:
        have = {i["name"] for i in inspect(engine).get_indexes(table.name)}
        wanted = {str(i.name) for i in table.indexes}
        for index in table.indexes:
            if index.name not in have:
                index.create(engine, checkfirst=True)
                made.append(str(index.name))
        for name in have - wanted:
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
            made.append(f"-{name}")
    # The city is written outside the ORM: the figures kept as cases change (the three
    # rates' deciding rows the dashboard and the monthly report read) are worked out
    # once here, as a migration does for an older database.
    with Session(engine) as session:
        if fill_if_empty(session):
            session.commit()
            made.append("rate_decision rows")
    if _revision(engine) != revision:
        made.append(f"migrated {revision} -> {_revision(engine)}")
    if made:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return made


def _revision(engine: Engine) -> str | None:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_city(n: int, console: Console) -> tuple[Path, dict[str, Any]]:
    """The saved city of ``n`` cases (built now if there is none) and its description."""
    from models.db import build_engine

    path = city_path(n)
    meta_path = path.with_suffix(".json")
    home = CACHE / "home"
    home.mkdir(parents=True, exist_ok=True)
    _use_keys(home)
    if path.exists() and meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        engine = build_engine(f"sqlite:///{path}")
        made = sync_schema(engine)
        engine.dispose()
        meta["reused"] = True
        meta["schema_added"] = made
        console.print(f"reusing the saved city {path.name} (built in {meta['build_s']} s)")
        return path, meta
    meta = build_city_file(path, n, console)
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    return path, {**meta, "reused": False}


def build_city_file(path: Path, n: int, console: Console) -> dict[str, Any]:
    from sqlmodel import Session

    from bench.citygen import build_city, create_database
    from models.decisions import rebuild

    building = path.with_name(path.stem + ".building.db")
    for old in path.parent.glob(building.name + "*"):
        old.unlink()
    started = time.perf_counter()
    load_at_start = [round(x, 2) for x in psutil.getloadavg()]
    engine = create_database(building)
    with Session(engine) as session:
        city = build_city(session)
        session.commit()
    now = datetime.now(UTC)
    gen = pagegen.Generator(city, n=n, now=now, dialect="sqlite", seed=19)
    step = max(n // 10, 1)

    def progress(done: int) -> None:
        if done % step < pagegen.BATCH:
            console.print(f"  {done:,} cases ({time.perf_counter() - started:.0f} s)")

    pagegen.load(engine, gen, progress)
    with Session(engine) as session:
        rebuild(session)  # the kept rate figures, as sync_schema does for a saved city
        session.commit()
    engine.dispose()
    for suffix in ("-wal", "-shm"):
        Path(str(building) + suffix).unlink(missing_ok=True)
    building.rename(path)
    build_s = round(time.perf_counter() - started, 1)
    console.print(f"built {n:,} cases in {build_s} s ({path.stat().st_size / 2**30:.1f} GB)")
    return {
        "cases": n,
        "built_at": now.isoformat(timespec="seconds"),
        "build_s": build_s,
        "build_load_average": load_at_start,
        "db_gb": round(path.stat().st_size / 2**30, 2),
        "plan": asdict(gen.plan),
    }


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Measured:
    times_ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    plain_ms: list[float] = field(default_factory=list)
    plain_http_ms: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # the plain query's, per request
    page_rows: list[int] = field(default_factory=list)  # the rows the page itself listed

    def clear(self) -> None:
        for values in (self.times_ms, self.statements, self.plain_ms, self.plain_http_ms):
            values.clear()
        self.rows.clear()
        self.page_rows.clear()

    def summary(self) -> dict[str, Any]:
        p95 = percentile(self.times_ms, 95)
        out: dict[str, Any] = {
            "requests": len(self.times_ms),
            "p50_ms": rnd(percentile(self.times_ms, 50), 1),
            "p95_ms": rnd(p95, 1),
            "p99_ms": rnd(percentile(self.times_ms, 99), 1),
            "sql_statements": max(self.statements) if self.statements else None,
            "plain_query_p50_ms": rnd(percentile(self.plain_ms, 50), 2),
            "plain_query_p95_ms": rnd(percentile(self.plain_ms, 95), 2),
            "plain_query_p99_ms": rnd(percentile(self.plain_ms, 99), 2),
            "ratio_to_plain_query": ratio(p95, percentile(self.plain_ms, 95)),
            "plain_query_over_http_p50_ms": rnd(percentile(self.plain_http_ms, 50), 2),
            "plain_query_over_http_p95_ms": rnd(percentile(self.plain_http_ms, 95), 2),
            "ratio_to_plain_query_over_http": ratio(p95, percentile(self.plain_http_ms, 95)),
        }
        if self.rows:
            # The rows each request's plain query fetched (the median; the fewest): a
            # page measured over no rows measures nothing.
            out["rows"] = sorted(self.rows)[len(self.rows) // 2]
            out["rows_min"] = min(self.rows)
        if self.page_rows:
            out["page_rows_min"] = min(self.page_rows)
        return out


class Reader:
    def __init__(self, base: str, cookies: dict[str, str]) -> None:
        self.client = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
        self.cookies = cookies

    def get(self, url: str, who: str, out: Measured, *, expect: str = "") -> httpx.Response:
        self.client.cookies.clear()
        self.client.cookies.set(who_cookie(who), self.cookies[who])
        start = time.perf_counter()
        answer = self.client.get(url)
        out.times_ms.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200 or (expect and expect not in answer.text):
            raise RuntimeError(f"{url} as {who}: {answer.status_code} {answer.text[:300]}")
        if "x-sql-statements" in answer.headers:
            out.statements.append(int(answer.headers["x-sql-statements"]))
        return answer

    def plain(self, name: str, params: dict[str, Any], out: Measured) -> int:
        """The plain query served by the bench-only route of :mod:`bench.pages_app`."""
        self.client.cookies.clear()
        query = json.dumps(params, default=_json_value, ensure_ascii=False)
        start = time.perf_counter()
        answer = self.client.get(f"/bench/plain/{name}", params={"p": query})
        rows = len(answer.json())
        out.plain_http_ms.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
        return rows


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def who_cookie(who: str) -> str:
    return "tj_resident" if who == "resident" else "tj_session"


# The case numbers a list page links to (one link per row of its table).
LISTED = re.compile(r'<a href="/web/cases/([A-Za-z]{1,8}-\d{4}-\d{1,8})">')


def listed_rows(html: str) -> int:
    return len(set(LISTED.findall(html)))


class Plain:
    """The plain queries (:mod:`bench.plain_queries`) on the bench's own connection and,
    the same statement with the same parameters, over HTTP (``pages_app``)."""

    def __init__(self, con: Connection, reader: Reader) -> None:
        self.con = con
        self.reader = reader
        self.sql = plain_queries(con.dialect.name)

    def __call__(self, name: str, params: dict[str, Any], out: Measured) -> None:
        start = time.perf_counter()
        rows = self.con.execute(text(self.sql[name]), params).all()
        out.plain_ms.append((time.perf_counter() - start) * 1000)
        over_http = self.reader.plain(name, params, out)
        if over_http != len(rows):
            raise RuntimeError(f"plain query {name}: {len(rows)} rows here, {over_http} over HTTP")
        out.rows.append(len(rows))


def sign_in(db_url: str, usernames: list[str]) -> dict[str, str]:
    from sqlmodel import select

    from api.web.auth import issue_session
    from models.db import build_engine, write_session
    from models.staff import Staff

    engine = build_engine(db_url)
    out = {}
    with write_session(engine) as session:
        for name in usernames:
            staff = session.exec(select(Staff).where(Staff.username == name)).one()
            assert staff.id is not None
            out[name] = issue_session(session, staff.id)[0]
    engine.dispose()
    return out


def _month_start(d: date) -> datetime:
    from models import workdays

    return workdays.at_local(d.replace(day=1), datetime.min.time())


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    path, meta = ensure_city(sizes.pages_cases, console)
    out = _serve_and_measure(ws, f"sqlite:///{path}", meta, sizes, console)
    if sizes.pages_pg_cases:
        console.print(f"PostgreSQL: {sizes.pages_pg_cases:,} cases")
        try:
            out["postgresql"] = _on_postgres(ws, sizes, console)
        except Exception as exc:  # the SQLite figures stand on their own
            out["postgresql"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return out


def _on_postgres(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    """The same pages on a throwaway PostgreSQL (``scripts/pg-throwaway``), built fresh."""
    import shutil

    from bench.scale_out import Postgres

    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        return {"skipped": "no PostgreSQL (initdb not on PATH)"}
    if sizes.pages_pg_cases >= KEEP_PG_FROM:
        from bench.pgcity import kept_city

        with kept_city(sizes.pages_pg_cases, console) as (url, meta):
            return _serve_and_measure(ws, url, meta, sizes, console)
    pg = Postgres.start()
    try:
        url = pg.new_database("tiaojie_pages")
        meta = build_postgres_city(url, sizes.pages_pg_cases, console)
        return _serve_and_measure(ws, url, meta, sizes, console)
    finally:
        pg.stop()


def build_postgres_city(url: str, n: int, console: Console) -> dict[str, Any]:
    from sqlmodel import Session

    from bench.citygen import build_city
    from models.db import build_engine
    from models.migrate import upgrade

    home = CACHE / "home"
    home.mkdir(parents=True, exist_ok=True)
    _use_keys(home)
    started = time.perf_counter()
    engine = build_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        city = build_city(session)
        session.commit()
    gen = pagegen.Generator(city, n=n, now=datetime.now(UTC), dialect="postgresql", seed=19)
    pagegen.load(engine, gen, lambda done: None)
    engine.dispose()
    build_s = round(time.perf_counter() - started, 1)
    console.print(f"built {n:,} cases on PostgreSQL in {build_s} s")
    return {
        "cases": n,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_s": build_s,
        "plan": asdict(gen.plan),
        "reused": False,
    }


def _serve_and_measure(
    ws: Workspace, url: str, meta: dict[str, Any], sizes: Sizes, console: Console
) -> dict[str, Any]:
    from models.db import build_engine

    plan = meta["plan"]
    cookies = sign_in(url, ["d1s1c1_mediator", "d1_supervisor", "city_admin"])
    env = ws.base_env(
        **_key_env(CACHE / "home"),
        TIAOJIE_DATABASE_URL=url,
        TIAOJIE_BENCH_SQL_COUNT="1",
        TIAOJIE_RESIDENT_PER_MINUTE="0",
    )
    port = free_port()
    serve = ["uvicorn", "bench.pages_app:app", "--host", "127.0.0.1", "--port", str(port)]
    proc = ws.start([PYTHON, "-m", *serve, *UVICORN_FLAGS], env=env, log_name="pages-app")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", timeout=120, proc=proc)
    load_before = [round(x, 2) for x in psutil.getloadavg()]
    engine = build_engine(url)
    reader = Reader(base, cookies)
    try:
        with engine.connect() as con:
            pages = _measure(reader, con, plan, sizes, console)
    finally:
        reader.client.close()
        engine.dispose()
        ws.stop(proc)
    load_after = [round(x, 2) for x in psutil.getloadavg()]
    return _results(pages, meta, sizes, load_before, load_after)


def _measure(
    reader: Reader, con: Connection, plan: dict[str, Any], sizes: Sizes, console: Console
) -> dict[str, Measured]:
    now = datetime.now(UTC)
    at = pagegen.Values(con.dialect.name).at
    plain = Plain(con, reader)
    reps = sizes.pages_requests
    pages: dict[str, Measured] = {}
    mediator = "d1s1c1_mediator"
    staff_id = con.execute(
        text("SELECT id FROM staff WHERE username = :name"), {"name": mediator}
    ).scalar_one()

    def each(name: str, fn: Callable[[int, Measured], None], count: int = reps) -> None:
        out = pages.setdefault(name, Measured())
        fn(0, out)  # warm the caches once; not counted
        out.clear()
        # A slow page stops at its time budget (after a minimum number of requests): the
        # number of requests made is in its figures.
        deadline = time.perf_counter() + sizes.pages_budget_s
        for i in range(count):
            fn(i, out)
            if i + 1 >= min(count, MIN_REQUESTS) and time.perf_counter() > deadline:
                break
        summary = out.summary()
        if not summary.get("rows_min"):
            console.print(f"  [red]{name}: a request showed no rows[/red]")
        console.print(
            f"  {name}: p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, "
            f"{summary['sql_statements']} statements, {summary.get('rows')} rows; plain "
            f"query p95 {summary['plain_query_p95_ms']} ms here, "
            f"{summary['plain_query_over_http_p95_ms']} ms over HTTP"
        )

    def inbox(_i: int, out: Measured) -> None:
        reader.get("/web/inbox", mediator, out)
        plain("inbox", {"yes": True, "staff": staff_id}, out)

    long_numbers = plan["long_timeline_numbers"]

    def case_page(i: int, out: Measured) -> None:
        number = long_numbers[i % len(long_numbers)]
        reader.get(f"/web/cases/{number}", mediator, out, expect=number)
        plain("case_page", {"number": number}, out)

    supervisor = "d1_supervisor"
    month = _month_start(now.date())

    def dashboard(level: str) -> Callable[[int, Measured], None]:
        def read(_i: int, out: Measured) -> None:
            reader.get(f"/web/dashboard{'?level=' + level if level else ''}", supervisor, out)
            plain("dashboard", {"since": at(month)}, out)

        return read

    categories = _list_categories(con)

    def case_list(i: int, out: Measured) -> None:
        category = categories[i % len(categories)]
        street = STREET_PATH.strip("/").rsplit("/", 1)[-1]
        answer = reader.get(
            f"/web/cases?status=in_mediation&category={category}&unit={street}", supervisor, out
        )
        shown = listed_rows(answer.text)
        out.page_rows.append(shown)
        plain("case_list", {"category": category}, out)
        _same_rows("case_list", shown, out)

    searches = _search_words(con)

    def search(i: int, out: Measured) -> None:
        word, name, words = searches[i % len(searches)]
        answer = reader.get(f"/web/cases?q={word}", supervisor, out)
        shown = listed_rows(answer.text)
        out.page_rows.append(shown)
        plain(name, {"words": words}, out)
        _same_rows("search", shown, out)

    last_month = (month - timedelta(days=1)).date()

    def report(_i: int, out: Measured) -> None:
        reader.get(f"/web/reports/monthly/{last_month:%Y-%m}.xlsx", supervisor, out)
        window = {"since": at(_month_start(last_month)), "until": at(month)}
        plain("monthly_report", window, out)

    export_from, export_to = _export_window(con, 10_000)

    def export(_i: int, out: Measured) -> None:
        answer = reader.get(
            f"/web/export/cases.xlsx?from={export_from}&to={export_to}", "city_admin", out
        )
        assert answer.content[:2] == b"PK", "not an .xlsx"
        low, high = _local_window(export_from, export_to)
        plain("export_10k", {"since": at(low), "until": at(high)}, out)

    each("inbox", inbox)
    each("case_page", case_page)
    each("dashboard_district", dashboard(""))
    each("dashboard_street", dashboard("street"))
    each("case_list", case_list)
    each("search", search)
    each("monthly_report", report, sizes.pages_slow_requests)
    each("export_10k", export, sizes.pages_slow_requests)
    _resident(reader, plain, plan, pages, each)
    return pages


def _same_rows(page: str, shown: int, out: Measured) -> None:
    """The list page shows the rows its plain query fetches (up to a page of them)."""
    from api.web.case_list import PAGE_SIZE

    if shown != min(out.rows[-1], PAGE_SIZE):
        raise RuntimeError(f"{page}: the page listed {shown} cases, its plain query {out.rows[-1]}")


def _list_categories(con: Connection) -> list[str]:
    """The categories of the street's cases in mediation, most cases first: the case
    list's three filters (status, category, street) then always match rows (the city
    gives each community only some of the categories)."""
    found = con.execute(
        text(
            "SELECT category, count(*) FROM cases WHERE status = 'in_mediation' "
            "AND unit_path LIKE :street GROUP BY category ORDER BY 2 DESC, 1"
        ),
        {"street": f"{STREET_PATH}%"},
    ).all()
    if not found:
        raise RuntimeError(f"the city has no case in mediation under {STREET_PATH}")
    return [category for category, _n in found]


def _search_words(con: Connection) -> list[tuple[str, str, Any]]:
    """Per searched text: the text, the plain query the page's own choice of plan
    corresponds to (:func:`models.case_search.search`), and its parameter (the FTS5
    expression of :mod:`models.case_text`; PostgreSQL: the words every case must hold).
    Each text must find cases in the district."""
    from models import case_text
    from models.case_search import SCAN_ABOVE

    dialect = con.dialect.name
    out: list[tuple[str, str, Any]] = []
    for word in SEARCH_WORDS:
        found = case_text.query_words(word)
        if dialect == "postgresql":
            words: Any = [w for whole, *inner in found for w in (inner or [whole])]
            name = "search"
        else:
            words = case_text.fts_expression(found)
            common = con.execute(
                text("SELECT count(*) FROM case_search_fts WHERE case_search_fts MATCH :w"),
                {"w": words},
            ).scalar_one()
            name = "search_scan" if common > SCAN_ABOVE else "search"
        out.append((word, name, words))
    return out


def _export_window(con: Connection, rows: int) -> tuple[str, str]:
    """Local dates (from, to) whose cases number about ``rows``, ending yesterday."""
    total = con.execute(text("SELECT count(*) FROM cases")).scalar_one()
    first = con.execute(text("SELECT min(created_at) FROM cases")).scalar_one()
    if isinstance(first, str):
        first = datetime.fromisoformat(first).replace(tzinfo=UTC)
    span = datetime.now(UTC) - first
    days = max(1, round(rows / (total / max(span.days, 1))))
    to = datetime.now(UTC).date() - timedelta(days=1)
    return (to - timedelta(days=days - 1)).isoformat(), to.isoformat()


def _local_window(start: str, end: str) -> tuple[datetime, datetime]:
    from models import workdays

    low = workdays.at_local(date.fromisoformat(start), datetime.min.time())
    high = workdays.at_local(date.fromisoformat(end) + timedelta(days=1), datetime.min.time())
    return low, high


def _resident(
    reader: Reader,
    plain: Plain,
    plan: dict[str, Any],
    pages: dict[str, Measured],
    each: Callable[..., None],
) -> None:
    """The resident's page after the phone check (the check itself timed apart)."""
    from models import tracking

    number, last4 = plan["resident"][0]
    code = tracking.code_for(number)
    check = pages.setdefault("resident_phone_check", Measured())
    start = time.perf_counter()
    answer = reader.client.post(f"/r/{code}", data={"last4": last4})
    check.times_ms.append((time.perf_counter() - start) * 1000)
    if answer.status_code not in (200, 303) or "tj_resident" not in answer.cookies:
        raise RuntimeError(f"phone check refused: {answer.status_code} {answer.text[:300]}")
    reader.cookies["resident"] = answer.cookies["tj_resident"]

    def page(_i: int, out: Measured) -> None:
        reader.get(f"/r/{code}", "resident", out, expect=number)
        plain("resident_page", {"hash": tracking.hash_for(number)}, out)

    each("resident_page", page)


def _results(
    pages: dict[str, Measured],
    meta: dict[str, Any],
    sizes: Sizes,
    load_before: list[float],
    load_after: list[float],
) -> dict[str, Any]:
    detail = {name: m.summary() for name, m in pages.items()}

    def p95(name: str) -> Any:
        return detail.get(name, {}).get("p95_ms")

    def seconds(name: str) -> Any:
        value = detail.get(name, {}).get("p95_ms")
        return None if value is None else round(value / 1000, 2)

    worst, worst_page = _worst(detail, "ratio_to_plain_query")
    worst_http, worst_http_page = _worst(detail, "ratio_to_plain_query_over_http")
    dashboards = [p95("dashboard_district"), p95("dashboard_street")]
    return {
        "cases": meta["cases"],
        "inbox_p95_ms": p95("inbox"),
        "case_page_p95_ms": p95("case_page"),
        "dashboard_p95_ms": max((d for d in dashboards if d is not None), default=None),
        "case_list_p95_ms": p95("case_list"),
        "search_p95_ms": p95("search"),
        "monthly_report_s": seconds("monthly_report"),
        "export_10k_s": seconds("export_10k"),
        "resident_page_p95_ms": p95("resident_page"),
        "worst_ratio_to_plain_query": worst,
        "worst_ratio_page": worst_page,
        "worst_ratio_to_plain_query_over_http": worst_http,
        "worst_ratio_over_http_page": worst_http_page,
        "pages_within_5x": sorted(k for k, d in detail.items() if _within(d, "")),
        "pages_within_5x_over_http": sorted(
            k for k, d in detail.items() if _within(d, "_over_http")
        ),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "requests_per_page": sizes.pages_requests,
        "time_budget_per_page_s": sizes.pages_budget_s,
        "requests_report_export": sizes.pages_slow_requests,
        "city": {k: v for k, v in meta.items() if k != "plan"},
        "pages": detail,
        "note": "one request at a time from this process (keep-alive HTTP/1.1); "
        "monthly_report_s and export_10k_s are the p95 of their fewer requests, in "
        "seconds; plain queries in this process, on the same database (the strict "
        "ratio), and the same statements served by a bench-only route of the same app "
        "over the same HTTP client (bench.pages_app; the *_over_http ratio)",
    }


def _worst(detail: dict[str, dict[str, Any]], key: str) -> tuple[Any, str | None]:
    ratios = {name: d[key] for name, d in detail.items() if d.get(key)}
    if not ratios:
        return None, None
    page = max(ratios, key=lambda name: ratios[name])
    return ratios[page], page


def _within(d: dict[str, Any], over: str) -> bool:
    value = d.get(f"ratio_to_plain_query{over}")
    return value is not None and value <= 5


def main() -> None:
    """``python -m bench.pages N``: build (or check) the saved city of N cases."""
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    path, meta = ensure_city(n, Console(stderr=True))
    print(path, json.dumps({k: v for k, v in meta.items() if k != "plan"}))


if __name__ == "__main__":
    main()
