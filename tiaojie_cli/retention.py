"""``tiaojie retention``: what the nightly retention job does, on demand (models.retention):
how many cases it would anonymise and sign-in attempts it would delete, or do it now."""

from __future__ import annotations

import typer
from rich.console import Console

from tiaojie_cli.audit import progress_bar
from tiaojie_cli.groups import command_group

app = command_group(
    "个人信息保存期限：到期匿名化与清理登录记录。 Retention of personal data (PIPL)."
)
console = Console()


@app.command()
def run(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="只统计，不修改 Count only; change nothing."
    ),
) -> None:
    """将办结超过保存期限的案件匿名化，并删除过期的登录记录（与每晚的 retention 流程相同）。

    Do now what the nightly `retention` flow does: anonymise the cases that ended more
    than TIAOJIE_RETENTION_DAYS ago and delete the sign-in attempts older than
    TIAOJIE_SIGN_IN_AUDIT_DAYS; safe while Tiaojie runs (one short transaction per 500
    cases).
    """
    from models import clock, retention
    from models.db import get_engine, read_session, write_session
    from models.migrate import upgrade
    from models.settings import get_settings

    settings, now, engine = get_settings(), clock.now(), get_engine()
    upgrade(engine)
    days, audit_days = settings.retention_days, settings.sign_in_audit_days
    with read_session(engine) as session:
        due = retention.count_expired(session, older_than_days=days, now=now)
        old = retention.old_sign_in_attempts(session, older_than_days=audit_days, now=now)
    if dry_run:
        console.print(
            f"{due} cases ended more than {days} days ago would be anonymised "
            f"将匿名化 {due} 件；{old} sign-in attempts older than {audit_days} days would be "
            f"deleted 将删除 {old} 条登录记录"
        )
        return
    with progress_bar("anonymising 匿名化", console) as bar:
        task = bar.add_task("cases", total=due)
        done = retention.anonymise_in_batches(
            engine,
            older_than_days=days,
            now=now,
            on_batch=lambda n: bar.advance(task, n),
        )
    with write_session(engine) as session:
        deleted = retention.prune_sign_in_attempts(session, older_than_days=audit_days, now=now)
    console.print(
        f"[green]OK[/] {done} cases anonymised 件已匿名化, "
        f"{deleted} sign-in attempts deleted 条登录记录已删除"
    )
