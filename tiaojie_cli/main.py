"""``tiaojie``: set up, run and use Tiaojie from the shell.

Subcommands that read or change cases talk to the HTTP API with httpx; ``init`` and
``up`` work on the local installation directly.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from tiaojie_cli.groups import command_group

app = command_group(
    "调解：基层矛盾纠纷调解工作流。 Tiaojie: grassroots dispute resolution.", name="tiaojie"
)
console = Console()


@app.command()
def init(
    demo: bool = typer.Option(
        False, "--demo", help="载入演示城市（可重复执行） Load the demo city (safe to repeat)."
    ),
    district: Path | None = typer.Option(
        None,
        "--district",
        exists=True,
        file_okay=False,
        help="导入本辖区文件夹 Import a district's folder: units.csv (or units.geojson), "
        "staff.csv, pairings.csv, policies.toml (see docs/templates/).",
    ),
) -> None:
    """生成密钥、创建或升级数据库；可选载入演示城市，或导入本辖区的单位、人员、结对与时限文件；
    重复执行不会覆盖已有密钥，也不会产生重复数据。

    Generate the keys, create or migrate the database; optionally load the demo city
    or import your district's files. Safe to repeat (existing keys are never replaced).
    """
    from models.db import get_engine
    from models.migrate import upgrade
    from tiaojie_cli.keys import ensure_keys

    ensure_keys(console)
    engine = get_engine()
    upgrade(engine)
    console.print(f"[green]✓[/] database ready 数据库已就绪: {engine.url.render_as_string()}")
    if district is not None:
        from models.district import load_district
        from tiaojie_cli.district import actor, run_in_transaction, show_links

        folder = district
        summaries, links = run_in_transaction(
            lambda session: load_district(session, folder, actor=actor()), dry_run=False
        )
        for line in summaries:
            console.print(f"[green]✓[/] {line}")
        show_links(links)
    if demo:
        from models.db import write_session
        from models.demo import load_demo_city

        with write_session(engine) as session:
            report = load_demo_city(session)
        console.print(f"[green]✓[/] demo city 演示城市: {report}")


@app.command(name="up")
def up_command(
    port: int = typer.Option(
        8000, "--port", help="网页与接口端口 Port of the web pages and the API."
    ),
    prefect_port: int = typer.Option(
        4200,
        "--prefect-port",
        help="编排服务（Prefect）端口 Port of the Prefect server and its UI.",
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="载入演示城市并持续送入投诉、模拟调解员操作 "
        "Load the demo city, feed complaints, simulate the mediators.",
    ),
    demo_pace: float = typer.Option(
        6.0, "--demo-pace", help="演示投诉间隔（秒） Seconds between demo complaints."
    ),
    max_restarts: int = typer.Option(
        5, "--max-restarts", help="每个组件退出后最多重启次数 Restarts allowed per component."
    ),
) -> None:
    """启动全部组件（编排服务、工作进程、网页与接口）并守护运行；按 Ctrl-C 停止。

    Start everything on 127.0.0.1 and supervise it (Ctrl-C stops).
    """
    from tiaojie_cli.up import run_up  # here, not at the top: `tiaojie --help` stays fast

    raise typer.Exit(
        run_up(
            port=port,
            prefect_port=prefect_port,
            demo=demo,
            demo_pace_s=demo_pace,
            max_restarts=max_restarts,
        )
    )


from tiaojie_cli.audit import app as audit_app  # noqa: E402

app.add_typer(audit_app, name="audit")

from tiaojie_cli.aggregates import app as aggregates_app  # noqa: E402

app.add_typer(aggregates_app, name="aggregates")

from tiaojie_cli.retention import app as retention_app  # noqa: E402

app.add_typer(retention_app, name="retention")

from tiaojie_cli.cases import app as case_app  # noqa: E402
from tiaojie_cli.keys import app as keys_app  # noqa: E402
from tiaojie_cli.tokens import app as token_app  # noqa: E402

app.add_typer(case_app, name="case")

from tiaojie_cli.triage import triage_command  # noqa: E402

app.command(name="triage")(triage_command)
app.add_typer(token_app, name="token")
app.add_typer(keys_app, name="keys")

from tiaojie_cli.backup import backup_command, restore_command  # noqa: E402
from tiaojie_cli.district import import_app, policies_app  # noqa: E402

app.command(name="backup")(backup_command)
app.command(name="restore")(restore_command)

from tiaojie_cli.simulate import simulate_command  # noqa: E402

app.command(name="simulate")(simulate_command)
app.add_typer(import_app, name="import")
app.add_typer(policies_app, name="policies")


@app.command()
def worker(
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="步骤执行方式 How steps run: inprocess (default: in this process) or "
        "deployment (on the work pool). Overrides TIAOJIE_EXECUTOR.",
    ),
    no_serve: bool = typer.Option(
        False,
        "--no-serve",
        help="只投递事件，不运行定时部署 Relay only: do not serve the scheduled deployments.",
    ),
) -> None:
    """运行工作流：在一个进程中运行全部部署、事件投递与步骤执行器，按 Ctrl-C 停止。

    Run the workflows: every deployment, the outbox relay and the step executor, in one
    process, until Ctrl-C.
    """
    from deployments.serve import main as serve_main

    if executor not in (None, "inprocess", "deployment"):
        raise typer.BadParameter(
            "executor must be inprocess or deployment / 须为 inprocess 或 deployment"
        )
    serve_main(executor=executor, serve_deployments=not no_serve)  # type: ignore[arg-type]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
