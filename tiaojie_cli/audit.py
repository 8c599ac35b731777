"""``tiaojie audit``: check the integrity of the case timeline (审计)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(
    help="Audit the case records. 审计案件记录。",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command()
def verify() -> None:
    """Verify every case's hash-chained events; exit 1 if any was edited or lost.

    校验每个案件的事件哈希链；发现被篡改或缺失的事件时以状态码 1 退出。
    """
    from models.admin_log import verify_log
    from models.audit import describe, verify_all
    from models.db import get_engine, read_session

    with read_session(get_engine()) as session:
        with Progress(
            TextColumn("[bold]verifying 校验中"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("cases", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            problems = verify_all(session, progress=step)
        findings = describe(session, problems)
        broken_log = verify_log(session)
    for entry in broken_log:
        console.print(f"[red]PROBLEM[/] administration log entry {entry} 系统管理日志被修改或删除")
    if broken_log and not findings:
        raise typer.Exit(code=1)
    if not findings:
        console.print(
            "[green]OK[/] all case event chains and the administration log intact "
            "所有案件事件链与系统管理日志完整"
        )
        return
    for finding in findings:
        p = finding.problem
        console.print(
            f"[red]PROBLEM[/] case {finding.case_number} seq {p.seq}: "
            f"{finding.reason_zh} {p.reason}",
            highlight=False,
        )
    console.print(f"[red]{len(findings)} problem(s) 处问题[/]")
    raise typer.Exit(code=1)
