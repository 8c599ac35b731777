"""``tiaojie``: set up, run and use Tiaojie from the shell.

Subcommands that read or change cases talk to the HTTP API with httpx; ``init`` and
``up`` work on the local installation directly.
"""

from __future__ import annotations

import typer
from rich.console import Console

from models.settings import get_settings

app = typer.Typer(
    name="tiaojie",
    help="Tiaojie (调解): grassroots dispute resolution. 基层矛盾纠纷调解工作流。",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command()
def init(
    demo: bool = typer.Option(False, "--demo", help="Load the demo city (idempotent)."),
) -> None:
    """Create or migrate the database and optionally load the demo city. Safe to repeat.

    创建或升级数据库，可选载入演示城市；重复执行不会产生重复数据。
    """
    from models.db import get_engine
    from models.migrate import upgrade

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = get_engine()
    upgrade(engine)
    console.print(f"[green]✓[/] database ready 数据库已就绪: {engine.url.render_as_string()}")
    if demo:
        from models.db import write_session
        from models.demo import load_demo_city

        with write_session(engine) as session:
            report = load_demo_city(session)
        console.print(f"[green]✓[/] demo city 演示城市: {report}")


from tiaojie_cli.up import up_command  # noqa: E402

app.command(name="up")(up_command)


from tiaojie_cli.audit import app as audit_app  # noqa: E402

app.add_typer(audit_app, name="audit")

from tiaojie_cli.cases import app as case_app  # noqa: E402
from tiaojie_cli.tokens import app as token_app  # noqa: E402

app.add_typer(case_app, name="case")

from tiaojie_cli.triage import triage_command  # noqa: E402

app.command(name="triage")(triage_command)
app.add_typer(token_app, name="token")


@app.command()
def worker(
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="inprocess (default: steps run in this process) or deployment (on the work "
        "pool). Overrides TIAOJIE_EXECUTOR.",
    ),
    no_serve: bool = typer.Option(
        False, "--no-serve", help="Relay only: do not serve the scheduled deployments."
    ),
) -> None:
    """Run the workflows: every deployment, the outbox relay and the step executor, in one
    process, until Ctrl-C.

    运行工作流：在一个进程中运行全部部署、事件投递与步骤执行器，按 Ctrl-C 停止。
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
