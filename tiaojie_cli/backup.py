"""``tiaojie backup DIR`` and ``tiaojie restore DIR`` (see :mod:`models.backup`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _keys_reminder() -> None:
    from models import keys

    where = {p: keys.key_source(p) for p in (*keys.PURPOSES, "field")}
    console.print(
        "[yellow]![/] The keys are NOT in this backup 备份不含密钥. Keep a copy of them "
        "elsewhere, safe: without the field key the personal data in a backup cannot be "
        "read 没有字段密钥，备份中的个人信息无法读取。"
    )
    console.print(f"  keys folder 密钥目录: {keys.keys_dir()}")
    for purpose, source in where.items():
        console.print(f"  {purpose}: {source}")


def backup_command(
    folder: Path = typer.Argument(
        ..., file_okay=False, help="空的或新的文件夹 An empty or new folder."
    ),
) -> None:
    """在线备份案件数据库（不停机）；不复制密钥，只提示密钥所在位置。

    Back up the case database while the system runs (SQLite online backup API, or
    pg_dump). The keys are not copied; where they are is printed.
    """
    from models.backup import BackupError, backup
    from models.db import get_engine

    try:
        manifest = backup(get_engine(), folder)
    except BackupError as exc:
        err.print(f"[red]✗[/] {exc.zh} / {exc.en}")
        raise typer.Exit(1) from None
    console.print(
        f"[green]✓[/] backup 备份 {folder / manifest['file']}: {manifest['cases']} cases 案件, "
        f"{manifest['events']} events 事件, sha256 {manifest['sha256'][:16]}…"
    )
    _keys_reminder()


def _running_on(home: Path, database: Path | None) -> str | None:
    """Why the system looks to be running on this home or database, else None."""
    import psutil

    pid_file = home / "run" / "up.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            pid = 0
        if pid and pid != os.getpid() and psutil.pid_exists(pid):
            return f"tiaojie up (pid {pid})"
    if database is None:
        return None
    wanted = {str(database), f"{database}-wal"}
    for proc in psutil.process_iter(["pid", "name"]):
        if proc.info["pid"] == os.getpid():
            continue
        try:
            if any(f.path in wanted for f in proc.open_files()):
                return f"{proc.info['name']} (pid {proc.info['pid']})"
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return None


def restore_command(
    folder: Path = typer.Argument(
        ...,
        exists=True,
        file_okay=False,
        help="备份文件夹（tiaojie backup 所写） A backup folder (written by tiaojie backup).",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="覆盖已有案件的数据库 Replace a case database that already holds cases.",
    ),
) -> None:
    """恢复备份（系统须已停止），随后校验全部案件事件链与系统管理日志。

    Restore a backup into this installation (stopped), then verify every case's
    event chain and the administration log. Exits 1 if anything is broken.
    """
    from models.backup import BackupError, check, counts, other_connections, restore
    from models.db import get_engine, is_sqlite
    from models.migrate import current_tables, upgrade
    from models.settings import get_settings

    engine = get_engine()
    database = Path(engine.url.database or "") if is_sqlite(engine) else None
    busy = _running_on(get_settings().home, database.resolve() if database else None)
    if busy is None and other_connections(engine):
        busy = "other sessions on the database 数据库上还有其他连接"
    if busy:
        err.print(f"[red]✗[/] 系统正在运行，拒绝覆盖 the system is running ({busy}); stop it first")
        raise typer.Exit(1)
    exists = database.exists() if database is not None else True  # do not create it
    if exists and "cases" in current_tables(engine) and counts(engine).cases and not overwrite:
        err.print(
            "[red]✗[/] 目标数据库已有案件 the database already holds cases; "
            "add --overwrite to replace it"
        )
        raise typer.Exit(1)
    try:
        manifest = restore(engine, folder)
    except BackupError as exc:
        err.print(f"[red]✗[/] {exc.zh} / {exc.en}")
        raise typer.Exit(1) from None
    upgrade(engine)  # a backup from an earlier release gets this release's schema
    result = check(engine)
    console.print(
        f"restored 已恢复: {result.counts.cases} cases 案件 (backup had {manifest['cases']}), "
        f"{result.counts.events} events 事件"
    )
    if not result.ok or result.counts.cases < manifest["cases"]:
        err.print(
            f"[red]✗[/] audit 审计: {result.broken_cases} case chains broken, "
            f"{result.broken_admin_entries} administration-log entries broken"
        )
        raise typer.Exit(1)
    console.print(
        "[green]✓[/] audit 审计: every case event chain and the administration log intact"
    )
    _keys_reminder()
