"""``tiaojie token create``: a bearer token for scripts, or a public Open311 api_key.

Works on the local installation (the database and the secret key of this machine). For a
staff role it signs a token for a service account of that role and unit, created when
missing (``svc-<role>-<unit>``, no password, so it cannot sign in to the web pages).
The token is the last line of the output.
"""

from __future__ import annotations

from datetime import timedelta

import typer
from rich.console import Console

from models.enums import StaffRole
from tiaojie_cli.groups import command_group

app = command_group(
    "令牌：供脚本与公众上报（Open311）客户端使用。 Tokens for scripts and Open311 clients."
)
err = Console(stderr=True)

ROLES = [r.value for r in StaffRole] + ["open311"]


@app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="角色 Role, one of: " + ", ".join(ROLES)),
    unit: str | None = typer.Option(
        None,
        "--unit",
        help="单位编码（admin、open311 不需要） Unit code (not needed for admin, open311).",
    ),
    days: float | None = typer.Option(
        None, "--days", help="有效天数（默认按设置） Lifetime in days (default: settings)."
    ),
    client: str = typer.Option(
        "open311", "--client", help="公众上报客户端应用名称 Name of the Open311 client app."
    ),
) -> None:
    """生成令牌（最后一行即令牌）。 Print a token (last line)."""
    from api.security import create_open311_key, create_token
    from models.db import get_engine, write_session
    from models.migrate import upgrade
    from models.staff import Staff, staff_by_username
    from models.unit import unit_by_code

    if role not in ROLES:
        err.print(f"[red]✗[/] 未知角色 unknown role {role!r}; one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    ttl = timedelta(days=days) if days else None
    if role == "open311":
        print("Open311 api_key 公众上报密钥:")
        print(create_open311_key(client=client))
        return
    if unit is None and role != StaffRole.ADMIN.value:
        err.print("[red]✗[/] --unit 必填 is required for this role (only admin may leave it out)")
        raise typer.Exit(2)
    engine = get_engine()
    upgrade(engine)
    with write_session(engine) as session:
        unit_row = None
        if unit is not None:
            unit_row = unit_by_code(session, unit)
            if unit_row is None:
                err.print(f"[red]✗[/] 没有编码为 {unit} 的单位 no unit with code {unit!r}")
                raise typer.Exit(2)
        username = f"svc-{role}-{unit or 'city'}".lower()[:64]
        staff = staff_by_username(session, username)
        if staff is None:
            staff = Staff(
                username=username,
                display_name=f"服务账号 service {role} {unit or ''}".strip(),
                role=StaffRole(role),
                unit_id=unit_row.id if unit_row else None,
                capacity=0,  # never picked for assignment
            )
            session.add(staff)
            session.flush()
        staff_id, generation = staff.id, staff.token_generation
    token = create_token(
        subject=str(staff_id), role=role, unit=unit, ttl=ttl, generation=generation
    )
    print(f"bearer token for {username} (role {role}, unit {unit or '-'}) 令牌:")
    print(token)
