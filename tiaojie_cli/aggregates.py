"""``tiaojie aggregates``: rebuild and check the kept figures the dashboard and the
monthly report read (each case's deciding moment for the three rates)."""

from __future__ import annotations

import typer
from rich.console import Console

from tiaojie_cli.audit import progress_bar
from tiaojie_cli.groups import command_group

app = command_group("三率统计数据的维护。 The kept figures of the three rates.")
console = Console()


@app.command()
def rebuild(
    batch: int = typer.Option(
        20_000, "--batch", min=100, help="每个事务处理的案件数 Case ids per transaction."
    ),
) -> None:
    """从联系、回访、移交与超期记录重新计算每个案件的三率判定数据；批量导入或恢复旧备份后运行。运行中亦可安全执行。

    Work out every case's deciding moments again from its contacts, return visits,
    referrals and breaches: after a bulk import or restoring an old backup. Safe while
    Tiaojie runs (one short transaction per batch).
    """
    from models import decisions
    from models.db import get_engine, read_session, write_session
    from models.migrate import upgrade

    engine = get_engine()
    upgrade(engine)
    with read_session(engine) as session:
        ranges = decisions.id_ranges(session, batch)
    with progress_bar("rebuilding 重新计算", console) as bar:
        task = bar.add_task("batches", total=len(ranges))
        for low, high in ranges:
            with write_session(engine) as session:
                decisions.rebuild_range(session, low, high)
            bar.advance(task)
    with read_session(engine) as session:
        kept = decisions.count(session)
    console.print(f"[green]OK[/] {kept} deciding rows kept 条判定记录已重新计算")


@app.command()
def check() -> None:
    """将已保存的判定数据与完整重算比较；不一致时以状态码 1 退出。

    Compare the kept rows with a full recount; exit 1 if they differ.
    """
    from models import decisions
    from models.db import get_engine, read_session

    with read_session(get_engine()) as session:
        found = decisions.differences(session)
    if not found:
        console.print("[green]OK[/] the kept rows equal a full recount 与完整重算一致")
        return
    for kind, row in found[:20]:
        word = "多出 extra" if kind == "extra" else "缺少 missing"
        console.print(f"[red]{word}[/] case {row[0]} {row[1]} at {row[2]:%Y-%m-%d %H:%M}")
    console.print(
        f"[red]{len(found)} difference(s) 处不一致[/]: run `tiaojie aggregates rebuild` 请重新计算"
    )
    raise typer.Exit(code=1)
