"""``tiaojie audit``: check the integrity of the case timeline and read the sign-in
audit (审计)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tiaojie_cli.groups import command_group

app = command_group("审计案件记录。 Audit the case records.")
console = Console()


def progress_bar(label: str, out: Console) -> Progress:
    """The bar of a long check or rebuild over every case (gone when it is done)."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    )


@app.command()
def verify() -> None:
    """校验每个案件的事件哈希链；发现被篡改或缺失的事件时以状态码 1 退出。

    Verify every case's hash-chained events; exit 1 if any was edited or lost.
    """
    from models.admin_log import verify_log
    from models.audit import describe, verify_all
    from models.db import get_engine, read_session

    with read_session(get_engine()) as session:
        with progress_bar("verifying 校验中", console) as bar:
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


@app.command("sign-ins")
def sign_ins(
    hours: int = typer.Option(
        24, "--hours", min=1, max=24 * 366, help="回看多少小时 How many hours back."
    ),
    failed: bool = typer.Option(
        False, "--failed", help="只列出被拒绝的登录 Only refused attempts."
    ),
    limit: int = typer.Option(
        200, "--limit", min=1, max=10_000, help="最多列出条数 At most this many."
    ),
) -> None:
    """列出登录尝试（令牌与网页两种方式），最新的在前：时间、来源地址、账号与结果。

    List sign-in attempts on both paths (token and web form), newest first: when,
    where from, which account, and the outcome. No password or token is ever recorded.
    """
    from datetime import timedelta

    from rich.table import Table

    from models import clock
    from models.db import get_engine, read_session
    from models.login import recent_attempts

    since = clock.now() - timedelta(hours=hours)
    with read_session(get_engine()) as session:
        rows = recent_attempts(session, since=since, failed_only=failed, limit=limit)
    if not rows:
        console.print(f"no sign-in attempts in the last {hours} h 最近 {hours} 小时无登录尝试")
        return
    table = Table("time 时间", "via 方式", "account 账号", "address 地址", "outcome 结果")
    for row in rows:
        style = "" if row.outcome == "ok" else "red"
        table.add_row(
            clock.format_local(row.at),
            row.channel,
            row.username or "(unknown name 未知用户名)",
            row.address,
            f"[{style}]{row.outcome}[/]" if style else row.outcome,
        )
    console.print(table)
