"""``tiaojie keys``: where the installation's keys live, and rotating the field key.

``tiaojie init`` writes the keys (:func:`ensure_keys`); ``tiaojie keys show`` tells where
each comes from; ``tiaojie keys rotate`` re-encrypts every protected field under a new
field key while the system runs (see :mod:`models.rotation`).
"""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.table import Table

from tiaojie_cli.groups import command_group

app = command_group(
    "密钥管理：查看密钥所在位置，轮换字段加密密钥。 The installation's keys: show where "
    "they live, rotate the field key."
)
console = Console()

SOURCES = {
    "env": "environment variable 环境变量",
    "file": "key file 密钥文件",
    "secret": "derived from TIAOJIE_SECRET_KEY 由共享密钥派生",
    "default": "PUBLIC DEVELOPMENT KEY 公开的开发密钥 — run `tiaojie init`",
}


def private_home() -> None:
    """Everything written from now on is readable by its owner only (0600 files, 0700
    folders): the database, the logs, the keys, the Prefect server's files."""
    from models.settings import get_settings

    os.umask(0o077)
    home = get_settings().home
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)


def ensure_keys(out: Console) -> None:
    from models import keys  # lazily: `tiaojie --help` stays fast

    private_home()
    written = keys.init_keys()
    where = keys.keys_dir()
    if written:
        out.print(f"[green]✓[/] keys generated 已生成密钥: {', '.join(written)} in {where}")
    else:
        out.print(f"[green]✓[/] keys in place 密钥已就绪: {where}")
    out.print(
        "  [yellow]Back up this folder apart from the database 请与数据库分开备份此目录[/]: "
        "without it, encrypted fields cannot be read 丢失则加密字段无法读取."
    )


@app.command("show")
def show() -> None:
    """显示各密钥来源（从不打印密钥）。 Where each key comes from (never prints a key)."""
    from models import keys  # lazily: `tiaojie --help` stays fast

    table = Table(title=f"Keys 密钥 ({keys.keys_dir()})")
    table.add_column("key 密钥")
    table.add_column("protects 用途")
    table.add_column("source 来源")
    uses = {
        "token": "bearer tokens, Open311 keys 令牌",
        "session": "web sessions 网页会话",
        "field": "encrypted personal fields 加密字段",
        "lookup": "look-up hashes 检索哈希",
    }
    for purpose, use in uses.items():
        table.add_row(purpose, use, SOURCES[keys.key_source(purpose)])
    console.print(table)
    ring = keys.keyring()
    console.print(f"field key ids 字段密钥编号: {sorted(ring.keys)}; current 当前: {ring.current}")


@app.command("rotate")
def rotate(
    batch: int = typer.Option(
        200, "--batch", min=1, max=5000, help="每个事务处理的行数 Rows per transaction."
    ),
    retire: bool = typer.Option(
        False,
        "--retire",
        help="重新加密后删除不再使用的旧密钥 "
        "After re-encrypting, drop the old key ids no value uses.",
    ),
    pause_s: float = typer.Option(
        0.0,
        "--pause",
        min=0.0,
        max=60.0,
        help="批次间隔秒数（减轻繁忙服务器的负担） Seconds between batches (eases a busy server).",
    ),
) -> None:
    """轮换字段加密密钥：在线逐批重新加密全部受保护字段；中断后重新执行即可继续。

    Re-encrypt every protected field under a new field key, without stopping the
    system; safe to run again after an interruption (it carries on where it stopped).
    """
    from models import keys  # lazily: `tiaojie --help` stays fast
    from models.db import get_engine
    from models.rotation import rotate_field_key

    private_home()
    if keys.key_source("field") == "env":
        console.print(
            "[red]✗ TIAOJIE_FIELD_KEY is set: rotate it where it is kept 字段密钥来自环境变量[/]"
        )
        raise typer.Exit(2)
    report = rotate_field_key(get_engine(), batch=batch, retire=retire, pause_s=pause_s)
    console.print(
        f"[green]✓[/] field key 字段密钥 {report.key_id}: {report.reencrypted} values "
        f"re-encrypted 已重新加密, {report.remaining} left 剩余 "
        f"({report.undecryptable} undecryptable 无法解密); "
        f"old key ids kept 保留旧密钥编号: {report.kept or '-'}"
    )
