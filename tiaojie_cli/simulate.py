"""``tiaojie simulate``: compare policy scenarios on a virtual clock (models.simulate)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

console = Console()


def _advance(bar: Progress, tasks: dict[str, TaskID]) -> Callable[[str, int, int], None]:
    def advance(key: str, done: int, _total: int) -> None:
        bar.update(tasks[key], completed=done)

    return advance


def simulate_command(
    scenarios: list[Path] = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="情景文件 Scenario files (TOML, see docs/scenarios/).",
    ),
    start: str = typer.Option(
        ..., "--from", help="起始日期 First day of the period, YYYY-MM-DD (Asia/Shanghai)."
    ),
    days: int = typer.Option(30, "--days", min=1, max=400, help="模拟天数 Days simulated."),
    seed: int = typer.Option(
        2026, "--seed", help="随机种子（种子相同，结果相同） Random seed (same seed, same figures)."
    ),
    out: Path = typer.Option(
        Path("simulation"),
        "--out",
        file_okay=False,
        help="结果文件夹 Folder for summary.json and the report.",
    ),
) -> None:
    """在临时数据库中按情景模拟办案（只读取、不改动正式案件库），输出 summary.json 与对比报告。

    Run each scenario over the period in a throwaway copy of the district (the case
    database is only read) and write summary.json and report.html to --out.
    """
    from models.db import get_engine, read_session
    from models.scenario import ScenarioError, read_scenario
    from models.sim_output import write_summary
    from models.sim_report import write_report
    from models.sim_runs import run_scenarios

    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise typer.BadParameter("--from must be YYYY-MM-DD / 日期格式应为 YYYY-MM-DD") from None
    try:
        parsed = [read_scenario(p) for p in scenarios]
    except ScenarioError as exc:
        console.print(f"[red]✗[/] {exc}")
        raise typer.Exit(2) from None
    if len({s.key for s in parsed}) != len(parsed):
        console.print("[red]✗[/] 情景文件名重复 / two scenario files have the same name")
        raise typer.Exit(2)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with read_session(get_engine()) as live, Progress(*columns, console=console) as bar:
        tasks = {s.key: bar.add_task(s.key, total=days) for s in parsed}
        try:
            document = run_scenarios(
                live, parsed, start=first, days=days, seed=seed, progress=_advance(bar, tasks)
            )
        except ScenarioError as exc:
            console.print(f"[red]✗[/] {exc}")
            raise typer.Exit(2) from None
    results = document["scenarios"]
    path = write_summary(out, document)
    report = write_report(out, document)
    for key, result in results.items():
        console.print(
            f"[green]✓[/] {key}: {result['arrivals']} cases, composite {result['composite']}, "
            f"referrals {result['referrals']['total']}, overdue peak {result['overdue_peak']}"
        )
    console.print(f"summary 汇总: {path}\nreport 报告: {report}")
