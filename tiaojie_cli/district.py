"""``tiaojie import`` and ``tiaojie policies``: load a district's units, staff, pairings
and time limits from files (templates in docs/templates/). Works on the local
installation; each command is one transaction, and ``--dry-run`` rolls it back after
showing what it would do."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from tiaojie_cli.groups import command_group

if TYPE_CHECKING:
    from sqlmodel import Session

    from models.district_import import ImportReport
    from models.tabular import ImportRefused

import_app = command_group(
    "导入本辖区的单位、工作人员与结对数据。 Load a district's units, staff and pairings "
    "from CSV/GeoJSON."
)
policies_app = command_group(
    "时限规则：从 TOML 载入、查看、历史。 Time limits: load from TOML, show, history."
)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)
SHOW = 40

FILE = typer.Argument(
    ..., exists=True, dir_okay=False, readable=True, help="要导入的文件 The file to import."
)
DRY_RUN = typer.Option(
    False,
    "--dry-run",
    help="只显示将新增和修改的内容，不作改动 Show what would be added and changed; change nothing.",
)


class _Rehearsal(Exception):
    def __init__(self, result: Any) -> None:
        super().__init__("dry run")
        self.result = result


def actor() -> str:
    return f"cli:{getpass.getuser()}"[:64]


def run_in_transaction(work: Callable[[Session], Any], *, dry_run: bool) -> Any:
    """Run ``work`` in one write transaction: committed, or rolled back for a dry run;
    refused imports print every problem and exit 1."""
    from models.db import get_engine, write_session
    from models.migrate import upgrade
    from models.tabular import ImportRefused

    engine = get_engine()
    upgrade(engine)
    try:
        with write_session(engine) as session:
            result = work(session)
            if dry_run:
                raise _Rehearsal(result)
    except _Rehearsal as rehearsal:
        return rehearsal.result
    except ImportRefused as refused:
        print_problems(refused)
        raise typer.Exit(1) from None
    return result


def print_problems(refused: ImportRefused) -> None:
    for problem in refused.file_problems:
        err.print(f"[red]✗[/] {problem}")
    err.print(
        f"[red]{len(refused.file_problems)} problem(s) 处问题; nothing was changed 未做任何更改[/]"
    )


def _listing(title: str, items: list[str]) -> None:
    if not items:
        return
    console.print(f"  {title}: " + ", ".join(items[:SHOW]) + (" …" if len(items) > SHOW else ""))


def show_report(report: ImportReport, *, dry_run: bool) -> None:
    head = "[yellow]dry run 演练（未更改）[/] " if dry_run else "[green]✓[/] "
    console.print(head + report.summary())
    _listing("added 新增", report.added)
    _listing("changed 修改", [f"{key} ({', '.join(fields)})" for key, fields in report.changed])
    _listing("not in the file, left alone 文件中没有，保留", report.not_in_file)


def show_links(links: list[tuple[str, str]]) -> None:
    if not links:
        return
    console.print(
        "One-time sign-in links (each works once; hand each to its owner, not by group "
        "chat) 首次登录链接（每个仅可使用一次，请分别交给本人）:"
    )
    for username, url in links:
        console.print(f"  {username}\t{url}", soft_wrap=True)


def _import(kind: str, path: Path, dry_run: bool) -> None:
    from models import district_import as di

    readers = {
        "units": (di.read_unit_rows, di.import_units),
        "staff": (di.read_staff_rows, di.import_staff),
        "pairings": (di.read_pairing_rows, di.import_pairings),
    }
    read, run = readers[kind]

    def work(session: Session) -> ImportReport:
        rows = read(path)
        digest = di.file_digest(path)
        report: ImportReport = run(session, rows, file=path.name, actor=actor(), digest=digest)
        return report

    from models.tabular import ImportRefused

    try:
        report = run_in_transaction(work, dry_run=dry_run)
    except ImportRefused as refused:  # raised while reading, before the transaction
        print_problems(refused)
        raise typer.Exit(1) from None
    show_report(report, dry_run=dry_run)
    if not dry_run:
        show_links(report.sign_in_links)


@import_app.command("units")
def import_units(path: Path = FILE, dry_run: bool = DRY_RUN) -> None:
    """导入单位。 Units: CSV code,name,name_en,level,parent_code,address,lat,lon — or a
    GeoJSON FeatureCollection with those properties (Point or Polygon geometry)."""
    _import("units", path, dry_run)


@import_app.command("staff")
def import_staff(path: Path = FILE, dry_run: bool = DRY_RUN) -> None:
    """导入工作人员；新账号各得一次性登录链接。 Staff: CSV
    username,name,role,unit_code,skills,phone,active
    [,capacity,away]. New accounts get a one-time sign-in link, printed once."""
    _import("staff", path, dry_run)


@import_app.command("pairings")
def import_pairings(path: Path = FILE, dry_run: bool = DRY_RUN) -> None:
    """结对共建：社区与部门的结对。 Community–agency pairings: CSV
    community_code,category,agency_code."""
    _import("pairings", path, dry_run)


@policies_app.command("load")
def policies_load(
    path: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="时限规则文件 policies.toml The time limits file, policies.toml",
    ),
    dry_run: bool = DRY_RUN,
) -> None:
    """载入 TOML 文件中的时限规则并使其生效；原有规则保留在历史中。 Make the limits of a TOML
    file the ones in force; the previous set is kept."""
    from models.policy_load import load_policies, read_policy_file
    from models.tabular import ImportRefused

    try:
        text = read_policy_file(path.read_bytes(), path.name)
        report = run_in_transaction(
            lambda s: load_policies(s, text, file=path.name, actor=actor()), dry_run=dry_run
        )
    except ImportRefused as refused:
        print_problems(refused)
        raise typer.Exit(1) from None
    head = "[yellow]dry run 演练（未更改）[/] " if dry_run else "[green]✓[/] "
    console.print(head + report.summary())
    _listing("new or changed 新增或修改", report.added)
    _listing("no longer in force 不再适用", report.removed)


@policies_app.command("show")
def policies_show() -> None:
    """以 TOML 格式打印现行时限规则（可由 `policies load` 读回）。 Print the limits in force,
    as TOML that `policies load` reads back."""
    from sqlmodel import col, select

    from models.db import get_engine, read_session
    from models.policy import TimeLimitPolicy
    from models.policy_load import to_toml

    with read_session(get_engine()) as session:
        rows = session.exec(select(TimeLimitPolicy).order_by(col(TimeLimitPolicy.id))).all()
        print(to_toml(list(rows)), end="")


@policies_app.command("history")
def policies_history() -> None:
    """时限规则历史，最新的在前。 The policy sets loaded so far, newest first."""
    from models.db import get_engine, read_session
    from models.policy_load import policy_history

    with read_session(get_engine()) as session:
        sets = policy_history(session)
    if not sets:
        console.print("no policy file loaded yet 尚未载入时限规则文件")
    for s in sets:
        mark = "[green]in force 现行[/]" if s.active else "history 历史"
        console.print(
            f"#{s.id} {s.loaded_at:%Y-%m-%d %H:%M} UTC  {s.source}  {s.limits} limits  "
            f"by {s.loaded_by}  sha256 {s.sha256[:12]}  {mark}"
        )
