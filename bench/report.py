"""``python -m bench.report [bench/results.json]``: the results as the Markdown table the
README's Performance section shows."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _f(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:,}"
    return text + unit


def table(r: dict[str, Any]) -> str:
    i, e, x, m = r["intake_api"], r["end_to_end"], r["escalation"], r["memory"]
    so = r.get("scale_out") or {}
    naive_note = f" (extrapolated from {x.get('naive_sample', {}).get('runs', '?')} runs)"
    rows = [
        (
            "Intake API: cases/s 受理吞吐",
            _f(i["cases_per_s"]),
            _f(i["baseline_cases_per_s"]) + " (bare FastAPI+SQLModel)",
            _f(i["ratio"], "×"),
            "≥ 300 and ≥ 0.5×",
        ),
        (
            "Intake API: p50 / p99 ms",
            f"{_f(i['p50_ms'])} / {_f(i['p99_ms'])}",
            f"{_f(i.get('baseline_p50_ms'))} / {_f(i.get('baseline_p99_ms'))}",
            "",
            "",
        ),
        (
            f"Intake API: p99 ms at {_f(i.get('paced_rate_per_s'))} req/s",
            _f(i.get("paced_p99_ms")),
            _f(i.get("baseline_paced_p99_ms")),
            "",
            "< 100",
        ),
        (
            "End to end: sustained cases/s 端到端",
            _f(e["cases_per_s"]),
            _f(e["naive_cases_per_s"]) + " (one sync flow run per case)",
            _f(e["ratio"], "×"),
            "≥ 5 and ≥ 5×",
        ),
        (
            f"End to end: p50 / p95 s at {_f(e.get('latency_rate_per_s'))}/s",
            f"{_f(e['p50_s'])} / {_f(e['p95_s'])}",
            f"{_f(e.get('naive_p50_s'))} / {_f(e.get('naive_p95_s'))}",
            "",
            "p95 < 3",
        ),
        ("End to end: backlog at the end 积压", _f(e.get("backlog")), "", "", ""),
        (
            "End to end with 1,000 waiting: new / emergency p95 s 积压优先",
            f"{_f(e.get('backlog_new_p95_s'))} / {_f(e.get('backlog_emergency_p95_s'))}",
            "",
            "",
            "< 5 / < 2",
        ),
        ("End to end: the 1,000 waiting drained in s", _f(e.get("backlog_drain_s")), "", "", ""),
        (
            f"Escalation: due query ms ({_f(x['due_cases'])} due of {_f(x['open_cases'])} open) 督办查询",
            _f(x["due_query_ms"]),
            "",
            "",
            "< 100",
        ),
        (
            "Escalation: one sweep s (events, outbox, notifications) 督办扫描",
            _f(x["sweep_s"]),
            _f(x["naive_sweep_s"]) + naive_note,
            _f(x["ratio"], "×"),
            "< 60",
        ),
        ("Memory: `tiaojie up` idle MB 内存", _f(m["idle_rss_mb"]), "", "", "< 1,536"),
        ("Memory: `tiaojie up` after the end-to-end run MB", _f(m["loaded_rss_mb"]), "", "", ""),
    ]
    ex = r.get("export") or {}
    if ex.get("cases") is not None:
        rows.append(
            (
                f"Export: {_f(ex['cases'])} cases to .xlsx, CPU s 导出",
                _f(ex.get("xlsx_s")),
                _f(ex.get("baseline_xlsx_s")) + " (one SELECT, same writer)",
                _f(ex.get("ratio"), "×"),
                "",
            )
        )
    if so.get("cases") is not None or so.get("error"):  # not when skipped or not run
        rows += [
            (
                f"Scale-out: cases/s with 2 workers, burst of {_f(so.get('cases'))} 扩容"
                " (PostgreSQL, process work pool, one machine)",
                _f(so.get("workers_2_cases_per_s")),
                _f(so.get("workers_1_cases_per_s")) + " (1 worker)",
                _f(so.get("ratio"), "×"),
                "",
            ),
            (
                "Scale-out: p50 / p95 s from POST to assigned, 2 workers",
                f"{_f(so.get('p50_s'))} / {_f(so.get('p95_s'))}",
                f"{_f(so.get('workers_1_p50_s'))} / {_f(so.get('workers_1_p95_s'))} (1 worker)",
                "",
                "",
            ),
        ]
    out = [
        "| measure | Tiaojie | baseline (same run) | ratio | target |",
        "|---|---:|---:|---:|---|",
    ]
    out += [f"| {a} | {b} | {c} | {d} | {t} |" for a, b, c, d, t in rows]
    return "\n".join(out)


PAGES = (
    ("inbox", "inbox 待办 (community mediator)", "< 150"),
    ("case_page", "case page, long timeline 案件页", "< 150"),
    ("dashboard_district", "dashboard, district 督办看板 (supervisor)", "< 200"),
    ("dashboard_street", "dashboard, by street", "< 200"),
    ("case_list", "case list, three filters 案件查询", "< 150"),
    ("search", "word search 检索", "< 300"),
    ("monthly_report", "monthly report .xlsx 月报", "< 5 s"),
    ("export_10k", "export of 10,000 rows .xlsx 导出", "< 10 s"),
    ("resident_page", "resident's page `/r/{code}` 居民查询", "< 150"),
)


def pages_table(p: dict[str, Any]) -> str:
    """The pages section (``pages``): one row per page with its plain query."""
    out = [
        f"Pages at {_f(p.get('cases'))} cases, load average {p.get('load_average_before')} "
        f"at the start:\n",
        "| page | p50 / p95 / p99 ms | SQL statements | requests | rows | plain query p95 ms "
        "(here / over HTTP) | ratio (strict / over HTTP) | target (p95) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, label, target in PAGES:
        d = (p.get("pages") or {}).get(key) or {}
        times = " / ".join(_f(d.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms"))
        plain = f"{_f(d.get('plain_query_p95_ms'))} / {_f(d.get('plain_query_over_http_p95_ms'))}"
        ratios = (
            f"{_f(d.get('ratio_to_plain_query'), '×')} / "
            f"{_f(d.get('ratio_to_plain_query_over_http'), '×')}"
        )
        out.append(
            f"| {label} | {times} | {_f(d.get('sql_statements'))} | {_f(d.get('requests'))} "
            f"| {_f(d.get('rows'))} | {plain} | {ratios} | {target} |"
        )
    out.append(
        f"\nWithin 5× of the plain query: {', '.join(p.get('pages_within_5x') or []) or 'none'}; "
        f"of the plain query over HTTP: {', '.join(p.get('pages_within_5x_over_http') or []) or '—'}."
    )
    return "\n".join(out)


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results.json")
    results = json.loads(path.read_text())
    print(
        f"Commit `{results['commit']}`, {results['when']}, {results['mode']} run, load average at start {results.get('load_average_at_start')}.\n"
    )
    print(table(results))
    pages = results.get("pages") or {}
    if pages.get("pages"):
        print()
        print(pages_table(pages))
        if (pages.get("postgresql") or {}).get("pages"):
            print("\nPostgreSQL:\n")
            print(pages_table(pages["postgresql"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
