"""``python -m bench --quick|--full``: run every benchmark next to its baseline and write
``bench/results-quick.json`` or ``bench/results.json``.

Each section runs in a temp folder with its own databases, PREFECT_HOME and servers on
free loopback ports; every process it starts is stopped at the end, even on error. A
section that fails records ``error`` and the others still run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import Workspace, git_commit, section_error
from bench.config import FULL, QUICK, Sizes

HERE = Path(__file__).resolve().parent
KEYS: dict[str, tuple[str, ...]] = {
    "intake_api": ("cases_per_s", "p50_ms", "p99_ms", "baseline_cases_per_s", "ratio"),
    "end_to_end": (
        "cases_per_s",
        "p50_s",
        "p95_s",
        "naive_cases_per_s",
        "ratio",
        "backlog_new_p95_s",
        "backlog_emergency_p95_s",
        "backlog_drain_s",
    ),
    "escalation": ("open_cases", "due_cases", "due_query_ms", "sweep_s", "naive_sweep_s", "ratio"),
    "memory": ("idle_rss_mb", "loaded_rss_mb"),
    "documents": (
        "sessions",
        "agreement_pdf_p50_ms",
        "agreement_pdf_p95_ms",
        "archive_pdf_p50_ms",
        "archive_pdf_p95_ms",
        "archive_pages",
    ),
    "triage": (
        "classifications_per_s",
        "p99_ms",
        "load_s",
        "cold_start_s",
        "accuracy",
        "rules_accuracy",
        "emergency_recall",
    ),
    "export": ("cases", "xlsx_s", "csv_s", "baseline_xlsx_s", "ratio"),
    "simulate": (
        "cases",
        "days",
        "cpu_s",
        "wall_s",
        "cases_per_s",
        "statements_per_case",
        "projected_year_50k_s",
        "target_s",
        "meets_target",
    ),
    "pages": (
        "cases",
        "inbox_p95_ms",
        "case_page_p95_ms",
        "dashboard_p95_ms",
        "case_list_p95_ms",
        "search_p95_ms",
        "monthly_report_s",
        "export_10k_s",
        "resident_page_p95_ms",
        "worst_ratio_to_plain_query",
    ),
    "scale_out": (
        "workers_1_cases_per_s",
        "workers_2_cases_per_s",
        "ratio",
        "p50_s",
        "p95_s",
        "cases",
    ),
}
# Intake first, on a quiet machine; then tiaojie up starts while the escalation data
# is generated, and the end-to-end run uses it.
# Scale-out (full run only) last: it starts a PostgreSQL stack of its own.
# The triage classifier (no servers) before them all; the documents need no servers either.
SECTIONS = (
    "triage",
    "intake_api",
    "escalation",
    "end_to_end",
    "export",
    "documents",
    "simulate",
    "pages",
    "scale_out",
)

console = Console(stderr=True)


def _run_section(
    name: str,
    fn: Callable[[Workspace, Sizes, Console], dict[str, Any]],
    ws: Workspace,
    sizes: Sizes,
) -> dict[str, Any]:
    console.rule(f"[bold]{name}")
    start = time.perf_counter()
    try:
        out = fn(ws, sizes, console)
    except Exception as exc:  # a failed section must not lose the others' figures
        console.print(f"[red]{name} failed:[/] {exc}")
        console.print(traceback.format_exc(), markup=False, highlight=False)
        out = section_error(exc)
    out["section_s"] = round(time.perf_counter() - start, 1)
    return out


def _complete(results: dict[str, Any]) -> None:
    """Every documented key is present (null when a section could not measure it)."""
    for section, keys in KEYS.items():
        block = results.setdefault(section, {})
        for key in keys:
            block.setdefault(key, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes, under 90 s")
    mode.add_argument("--full", action="store_true", help="the sizes of the issue (10-15 min)")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only these sections (repeatable)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, DBs)")
    parser.add_argument("--out", type=Path, help="where to write the JSON")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other sections' figures from the existing JSON (with --only)",
    )
    args = parser.parse_args(argv)
    sizes = FULL if args.full else QUICK
    out_path = args.out or HERE / ("results.json" if sizes is FULL else "results-quick.json")
    wanted = args.only or list(SECTIONS)

    from bench import (
        documents,
        e2e,
        escalation,
        export,
        intake,
        pages,
        scale_out,
        simulate,
        triage,
    )

    runners: dict[str, Callable[[Workspace, Sizes, Console], dict[str, Any]]] = {
        "escalation": escalation.run,
        "intake_api": intake.run,
        "end_to_end": e2e.run,
        "documents": documents.run,
        "export": export.run,
        "scale_out": scale_out.run,
        "triage": triage.run,
        "simulate": simulate.run,
        "pages": pages.run,
    }
    import psutil

    results: dict[str, Any] = {
        "load_average_at_start": [round(x, 2) for x in psutil.getloadavg()],
        "commit": git_commit(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": sizes.name,
        "machine": _machine(),
    }
    started = time.perf_counter()
    ws = Workspace.create(keep=args.keep)
    console.print(f"bench {sizes.name}: work folder {ws.root}")
    try:
        if sizes.start_stack_first and {"escalation", "end_to_end"} & set(wanted):
            # Quick mode: let tiaojie up's slow start overlap the intake run (whose
            # figures are then noisier: the quick run is a smoke test, see README).
            from bench.servers import start_stack

            start_stack(ws, settle_s=sizes.idle_settle_s)
            results["note"] = "quick run: tiaojie up started during the intake benchmark"
        for name in SECTIONS:
            if name == "scale_out" and not sizes.scale_out:
                results[name] = {"skipped": "full run only (--full)"}
                continue
            if name == "scale_out" and name in wanted:
                _stop_up_stack(ws)  # its idle processes would share the CPU
            if name in wanted:
                results[name] = _run_section(name, runners[name], ws, sizes)
    finally:
        from bench.servers import forget_stack

        ws.close()
        forget_stack()
    # The memory figures are taken during the end-to-end run (the same processes).
    e2e_out = results.get("end_to_end", {})
    results["memory"] = e2e_out.pop("memory", None) or {"error": "end-to-end run did not run"}
    results["total_s"] = round(time.perf_counter() - started, 1)
    if args.merge and out_path.exists():
        results = merge_previous(results, json.loads(out_path.read_text()), wanted)
    _complete(results)
    out_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    _print_table(results)
    console.print(f"wrote {out_path} in {results['total_s']} s")
    return 0


def merge_previous(
    results: dict[str, Any], previous: dict[str, Any], wanted: list[str]
) -> dict[str, Any]:
    """``--merge``: the sections this run did not measure, as the previous file had them,
    each with where it was measured (carried over repeated merges); keys in the
    previous file's order, so that the diff shows what changed."""
    kept = [s for s in (*SECTIONS, "memory") if s not in results or not _measured(s, wanted)]
    for section in kept:
        if section in previous:
            results[section] = previous[section]
    origins = previous.get("sections_from", {})
    results["sections_from"] = {
        section: origins.get(
            section,
            {
                "commit": previous.get("commit"),
                "when": previous.get("when"),
                "load_average_at_start": previous.get("load_average_at_start"),
                # What the earlier run said of itself (e.g. that tiaojie up ran during
                # its intake section) stays with the sections it measured.
                **({"note": previous["note"]} if "note" in previous else {}),
            },
        )
        for section in kept
    }
    return {
        **{key: results[key] for key in previous if key in results},
        **{key: value for key, value in results.items() if key not in previous},
    }


def _stop_up_stack(ws: Workspace) -> None:
    from bench.servers import current_stack

    stack = current_stack()
    if stack is not None and stack.proc.poll() is None:
        console.print("stopping tiaojie up before the scale-out section")
        ws.stop(stack.proc)


def _measured(section: str, wanted: list[str]) -> bool:
    return section in wanted or (section == "memory" and "end_to_end" in wanted)


def _machine() -> dict[str, Any]:
    import os
    import platform

    import psutil

    return {
        "cpus": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _print_table(results: dict[str, Any]) -> None:
    table = Table(title=f"Tiaojie bench ({results['mode']}, commit {results['commit']})")
    table.add_column("测试 benchmark")
    table.add_column("Tiaojie", justify="right")
    table.add_column("基线 baseline", justify="right")
    table.add_column("倍数 ratio", justify="right")
    table.add_column("目标 target")
    i = results["intake_api"]
    e = results["end_to_end"]
    x = results["escalation"]
    m = results["memory"]
    so = results.get("scale_out") or {}
    tr = results.get("triage") or {}
    rows: list[tuple[str, Any, Any, Any, str]] = [
        (
            "受理 intake cases/s",
            i["cases_per_s"],
            i["baseline_cases_per_s"],
            i["ratio"],
            "≥300, ≥0.5×",
        ),
        (
            "受理 intake p50 / p99 ms",
            f"{_fmt(i['p50_ms'])} / {_fmt(i['p99_ms'])}",
            _base_lat(i),
            None,
            "",
        ),
        ("受理 p99 ms @100/s", i.get("paced_p99_ms"), i.get("baseline_paced_p99_ms"), None, "<100"),
        ("端到端 e2e cases/s", e["cases_per_s"], e["naive_cases_per_s"], e["ratio"], "≥5, ≥5×"),
        (
            "端到端 e2e p50 / p95 s",
            f"{_fmt(e['p50_s'])} / {_fmt(e['p95_s'])}",
            _naive_lat(e),
            None,
            "p95<3 @2/s",
        ),
        ("端到端 backlog at end", e.get("backlog"), None, None, ""),
        ("督办 due query ms", x["due_query_ms"], None, None, "<100"),
        (
            f"督办 sweep s ({_fmt(x['due_cases'])} due / {_fmt(x['open_cases'])} open)",
            x["sweep_s"],
            x["naive_sweep_s"],
            x["ratio"],
            "<60",
        ),
        ("分拣 triage texts/s", tr.get("classifications_per_s"), None, None, ""),
        (
            "分拣 triage p99 ms / load s",
            f"{_fmt(tr.get('p99_ms'))} / {_fmt(tr.get('load_s'))}",
            None,
            None,
            "<5 / <1",
        ),
        (
            "分拣 accuracy: model / keyword rules",
            tr.get("accuracy"),
            tr.get("rules_accuracy"),
            None,
            "≥0.92",
        ),
        ("内存 up idle MB", m["idle_rss_mb"], None, None, "<1536"),
        ("内存 up loaded MB", m["loaded_rss_mb"], None, None, ""),
        (
            f"导出 export .xlsx CPU s ({_fmt(results['export']['cases'])} cases)",
            results["export"]["xlsx_s"],
            results["export"]["baseline_xlsx_s"],
            results["export"]["ratio"],
            "",
        ),
    ]
    pg = results.get("pages") or {}
    if pg.get("cases") is not None:
        rows += [
            (
                f"页面 pages p95 ms: inbox / case / list / resident ({_fmt(pg['cases'])} cases)",
                " / ".join(
                    _fmt(pg.get(k))
                    for k in (
                        "inbox_p95_ms",
                        "case_page_p95_ms",
                        "case_list_p95_ms",
                        "resident_page_p95_ms",
                    )
                ),
                None,
                pg.get("worst_ratio_to_plain_query"),
                "<150",
            ),
            (
                "页面 dashboard / search p95 ms",
                _pair(pg, "dashboard_p95_ms", "search_p95_ms"),
                None,
                None,
                "<200 / <300",
            ),
            (
                "页面 monthly report / export 10k s",
                _pair(pg, "monthly_report_s", "export_10k_s"),
                None,
                None,
                "<5 / <10",
            ),
        ]
    if so.get("cases") is not None or so.get("error"):  # not when skipped or not run
        rows += [
            (
                f"扩容 scale-out cases/s, 2 vs 1 worker ({_fmt(so.get('cases'))} cases)",
                so.get("workers_2_cases_per_s"),
                so.get("workers_1_cases_per_s"),
                so.get("ratio"),
                "",
            ),
            (
                "扩容 scale-out p50 / p95 s (2 / 1 workers)",
                f"{_fmt(so.get('p50_s'))} / {_fmt(so.get('p95_s'))}",
                f"{_fmt(so.get('workers_1_p50_s'))} / {_fmt(so.get('workers_1_p95_s'))}",
                None,
                "",
            ),
        ]
    for label, ours, base, rat, target in rows:
        table.add_row(label, _fmt(ours), _fmt(base), _fmt(rat), target)
    Console().print(table)
    for section in (
        "triage",
        "intake_api",
        "end_to_end",
        "escalation",
        "memory",
        "pages",
        "scale_out",
    ):
        block = results.get(section) or {}
        for key in ("error", "skipped"):
            if block.get(key):
                console.print(f"[yellow]{section}: {block[key]}")


def _pair(block: dict[str, Any], a: str, b: str) -> str:
    return f"{_fmt(block.get(a))} / {_fmt(block.get(b))}"


def _base_lat(i: dict[str, Any]) -> str:
    return f"{_fmt(i.get('baseline_p50_ms'))} / {_fmt(i.get('baseline_p99_ms'))}"


def _naive_lat(e: dict[str, Any]) -> str:
    return f"{_fmt(e.get('naive_p50_s'))} / {_fmt(e.get('naive_p95_s'))}"


if __name__ == "__main__":
    sys.exit(main())
