"""``tiaojie case submit|list|show|import``: cases through the HTTP API.

One ``httpx.Client`` per command, with the base URL from ``--api`` or
``TIAOJIE_API_URL`` and the token from ``--token`` or ``TIAOJIE_TOKEN``; explicit
timeouts; errors printed in Chinese and English. ``import`` sends each CSV row with an
Idempotency-Key derived from the file and the row, so running it again creates nothing
twice; failing rows are reported with their line number and reason, the rest go in.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tiaojie_cli.groups import command_group

if TYPE_CHECKING:
    import httpx

app = command_group("案件登记与查询（通过接口）。 Cases through the API.")
console = Console()
err = Console(stderr=True)

# httpx is imported when a command runs: `tiaojie --help` stays fast.
TIMEOUT_S, CONNECT_TIMEOUT_S = 30.0, 5.0
DEFAULT_API = "http://127.0.0.1:8000"
ApiOpt = typer.Option(
    None,
    "--api",
    envvar="TIAOJIE_API_URL",
    help="接口地址 API base URL. 默认：本机正在运行的 tiaojie up 的地址，否则 "
    "Default: the address of the tiaojie up running here, else " + DEFAULT_API,
)
TokenOpt = typer.Option(
    ...,
    "--token",
    envvar="TIAOJIE_TOKEN",
    help="访问令牌（tiaojie token create 生成） Bearer token (tiaojie token create)",
)

CSV_COLUMNS = (
    "category, description, place_code, priority, people_affected, address, "
    "complainant_name, complainant_phone, complainant_id_number, respondent_name, respondent_kind"
)


class ApiError(Exception):
    def __init__(self, status: int, zh: str, en: str, fields: list[dict[str, Any]]) -> None:
        super().__init__(en)
        self.status, self.zh, self.en, self.fields = status, zh, en, fields

    def __str__(self) -> str:
        detail = "; ".join(
            f"{f.get('field')}: {f.get('message')} / {f.get('message_en')}" for f in self.fields
        )
        text = f"{self.zh} / {self.en}"
        text = f"[{self.status}] {text}" if self.status else text
        return f"{text} ({detail})" if detail else text


def api_url(api: str | None) -> str:
    """``--api`` or ``TIAOJIE_API_URL``; else the address the ``tiaojie up`` running on
    this ``TIAOJIE_HOME`` wrote down (it may use another ``--port``); else the default."""
    if api:
        return api.rstrip("/")
    from models.settings import get_settings
    from tiaojie_cli.up import Layout

    try:
        written = Layout.under(get_settings().home).app_url_file.read_text().strip()
    except OSError:
        written = ""
    return written or DEFAULT_API


def unreachable(base: str, exc: Exception) -> ApiError:
    """What a person reads when nothing answers at ``base``: what was tried, why, and
    how to start Tiaojie or point the command elsewhere."""
    why = type(exc).__name__
    return ApiError(
        0,
        f"无法连接 Tiaojie 接口 {base}（{why}）。请先启动：make up 或 tiaojie up；"
        "若接口在别处，用 --api 或 TIAOJIE_API_URL 指定地址",
        f"cannot reach the Tiaojie API at {base} ({why}). Start it with `make up` or "
        "`tiaojie up`; if it runs elsewhere, give its address with --api or TIAOJIE_API_URL",
        [],
    )


@contextmanager
def client(api: str | None, token: str) -> Iterator[httpx.Client]:
    import httpx

    with httpx.Client(
        base_url=api_url(api),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
    ) as c:
        yield c


def call(c: httpx.Client, method: str, url: str, **kw: Any) -> Any:
    import httpx

    try:
        r = c.request(method, url, **kw)
    except httpx.TimeoutException:
        raise ApiError(
            0, f"接口 {c.base_url} 连接超时", f"the API at {c.base_url} did not answer in time", []
        ) from None
    except httpx.TransportError as exc:
        raise unreachable(str(c.base_url).rstrip("/"), exc) from None
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        raise ApiError(
            r.status_code,
            str(body.get("message", "请求失败")),
            str(body.get("message_en", r.reason_phrase)),
            list(body.get("fields", [])),
        )
    return r.json()


def fail(exc: ApiError) -> typer.Exit:
    err.print(f"[red]✗[/] {exc}")
    return typer.Exit(1)


def row_to_case(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the API's case body (empty cells left out)."""

    def get(name: str) -> str:
        return (row.get(name) or "").strip()

    # A category or priority given is the worker's choice and stands; left empty, the
    # classifier decides at triage.
    body: dict[str, Any] = {"description": get("description")}
    for name, key in (
        ("category", "category"),
        ("place_code", "place_code"),
        ("priority", "priority"),
        ("address", "address_text"),
    ):
        if get(name):
            body[key] = get(name)
    if get("people_affected"):
        body["people_affected"] = get("people_affected")
    parties: list[dict[str, Any]] = []
    if get("complainant_name"):
        party: dict[str, Any] = {
            "side": "complainant",
            "kind": "person",
            "name": get("complainant_name"),
        }
        if get("complainant_phone"):
            party["phone"] = get("complainant_phone")
        if get("complainant_id_number"):
            party["id_number"] = get("complainant_id_number")
        parties.append(party)
    if get("respondent_name"):
        parties.append(
            {
                "side": "respondent",
                "kind": get("respondent_kind") or "firm",
                "name": get("respondent_name"),
            }
        )
    body["parties"] = parties
    return body


@app.command("submit")
def submit(
    category: str | None = typer.Option(
        None,
        help="纠纷类别（填写即为最终选择；不填则由模型分类） Category: labour, relocation, "
        "environment, neighbour ... (a choice that stands; left out, the classifier decides)",
    ),
    priority: str | None = typer.Option(
        None,
        help="紧急程度（填写即为最终选择） Priority: emergency, high, normal, consultation "
        "(a choice that stands)",
    ),
    description: str = typer.Option(..., help="诉求内容 What happened"),
    place: str | None = typer.Option(
        None, "--place", help="发生地点的楼幢/小区/社区编码 Building, compound or community code"
    ),
    complainant: str | None = typer.Option(None, help="申请人姓名 Complainant's name"),
    phone: str | None = typer.Option(None, help="申请人手机号 Complainant's mobile"),
    respondent: str | None = typer.Option(None, help="被申请人 Who the complaint is against"),
    people: int = typer.Option(1, help="涉及人数 People affected"),
    key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="幂等键：重试不会重复登记 Idempotency key: a retry records nothing twice",
    ),
    api: str | None = ApiOpt,
    token: str = TokenOpt,
) -> None:
    """登记一件案件。 Record one case."""
    body = row_to_case(
        {
            "category": category or "",
            "priority": priority or "",
            "description": description,
            "place_code": place or "",
            "people_affected": str(people),
            "complainant_name": complainant or "",
            "complainant_phone": phone or "",
            "respondent_name": respondent or "",
        }
    )
    headers = {"Idempotency-Key": key} if key else {}
    with client(api, token) as c:
        try:
            answer = call(c, "POST", "/api/v1/cases", json=body, headers=headers)
        except ApiError as exc:
            raise fail(exc) from None
    case = answer["case"]
    console.print(
        f"[green]✓[/] 已登记 recorded {case['number']} (id {case['id']}, {case['status']})"
    )


@app.command("list")
def list_cases(
    status: str | None = typer.Option(
        None, help="案件状态，如 assigned、in_mediation Status, e.g. assigned, in_mediation"
    ),
    category: str | None = typer.Option(
        None, help="纠纷类别，如 labour、neighbour Category, e.g. labour, neighbour"
    ),
    unit: str | None = typer.Option(
        None, help="单位编码（含下级单位） Unit code, with the units below it"
    ),
    mine: bool = typer.Option(False, "--mine", help="只看我承办的案件 Only cases assigned to me"),
    overdue: bool = typer.Option(False, "--overdue", help="只看已超期的案件 Only overdue cases"),
    q: str | None = typer.Option(
        None, "--q", help="案件编号或诉求中的词语 Case number or words of the complaint"
    ),
    page: int = typer.Option(1, help="页码（每页 50 件） Page number (50 cases a page)"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON Print JSON"),
    api: str | None = ApiOpt,
    token: str = TokenOpt,
) -> None:
    """列出您负责范围内的案件。 List cases within your reach."""
    params: dict[str, Any] = {"page": page, "page_size": 50}
    for name, value in (("status", status), ("category", category), ("unit", unit), ("q", q)):
        if value:
            params[name] = value
    if mine:
        params["assignee"] = "me"
    if overdue:
        params["overdue"] = "true"
    with client(api, token) as c:
        try:
            answer = call(c, "GET", "/api/v1/cases", params=params)
        except ApiError as exc:
            raise fail(exc) from None
    if as_json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    console.print(case_table(answer["items"], answer["total"], width=console.width))


def case_table(items: list[dict[str, Any]], total: int, *, width: int) -> Table:
    """Case numbers, codes and dates are never wrapped or cut (a case number is how a
    case is found again); only the description gives way on a narrow terminal."""
    rows = [
        (
            case["number"],
            case["category"],
            case["status"],
            case.get("unit_code") or "-",
            (case.get("resolution_due_at") or "-")[:10],
            case["description"][:60],
        )
        for case in items
    ]
    table = Table(
        title=f"案件 Cases ({total})",
        box=None,  # no rules: at 80 columns every character goes to the cells
        header_style="bold underline",
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    used = 0
    for i, column in enumerate(("number", "category", "status", "unit", "due")):
        cells = max([len(column), *(len(row[i]) for row in rows)])
        table.add_column(column, no_wrap=True, min_width=cells)
        used += cells + 1
    rest = max(6, width - used)
    table.add_column("description", no_wrap=True, overflow="ellipsis", max_width=rest)
    for row in rows:
        table.add_row(*row)
    return table


@app.command("show")
def show(
    case_ref: str = typer.Argument(..., help="案件编号或编号 id Case number or id"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON Print JSON"),
    api: str | None = ApiOpt,
    token: str = TokenOpt,
) -> None:
    """案件详情：当事人与办理经过。 One case with its parties and timeline."""
    with client(api, token) as c:
        try:
            detail = call(c, "GET", f"/api/v1/cases/{case_ref}")
        except ApiError as exc:
            raise fail(exc) from None
    if as_json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
        return
    case = detail["case"]
    console.print(f"[bold]{case['number']}[/]  {detail['status_label']}  v{case['version']}")
    console.print(f"{case['category']} · {case.get('unit_code') or '-'} · {case['description']}")
    for party in detail["parties"]:
        console.print(f"  {party['side']}: {party['name']} {party.get('phone') or ''}")
    for event in detail["timeline"]:
        console.print(
            f"  {event['at'][:16]}  {event['label']} ({event['verb']})  "
            f"{event.get('actor_name') or ''}"
        )
    console.print(f"可执行 allowed: {', '.join(detail['allowed_actions']) or '-'}")


@app.command("import")
def import_csv(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="案件 CSV 文件（UTF-8 编码） A UTF-8 CSV file of cases",
    ),
    api: str | None = ApiOpt,
    token: str = TokenOpt,
) -> None:
    """从 CSV 批量导入案件；重复导入不会重复登记。

    Import cases from a CSV file (columns: category, description, place_code, priority,
    people_affected, address, complainant_name, complainant_phone, complainant_id_number,
    respondent_name, respondent_kind). Re-running creates nothing twice."""
    import httpx

    from models.tabular import ImportRefused, decode

    raw = file.read_bytes()
    file_key = hashlib.sha256(raw).hexdigest()[:16]
    try:
        text = decode(raw, file.name)  # a GBK file is refused with how to save UTF-8
    except ImportRefused as refused:
        for problem in refused.file_problems:
            err.print(f"[red]✗[/] {problem}")
        raise typer.Exit(2) from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "description" not in rows[0] or "category" not in rows[0]:
        err.print(f"[red]✗[/] 缺少表头 missing header; columns: {CSV_COLUMNS}")
        raise typer.Exit(2)
    created = replayed = 0
    problems: list[tuple[int, str]] = []
    with (
        client(api, token) as c,
        Progress(
            TextColumn("导入 importing"), BarColumn(), MofNCompleteColumn(), console=err
        ) as progress,
    ):
        task = progress.add_task("import", total=len(rows))
        for index, row in enumerate(rows):
            line = index + 2  # the header is line 1
            key = f"import-{file_key}-{line}"
            try:
                r = c.post("/api/v1/cases", json=row_to_case(row), headers={"Idempotency-Key": key})
                if r.status_code >= 400:
                    body = (
                        r.json()
                        if r.headers.get("content-type", "").startswith("application/json")
                        else {}
                    )
                    raise ApiError(
                        r.status_code,
                        str(body.get("message", "请求失败")),
                        str(body.get("message_en", r.reason_phrase)),
                        list(body.get("fields", [])),
                    )
                if r.headers.get("Idempotent-Replayed") == "true":
                    replayed += 1
                else:
                    created += 1
            except ApiError as exc:
                problems.append((line, str(exc)))
            except httpx.TransportError as exc:
                # Nothing answers: every other row would fail alike; say it once and stop.
                progress.stop()
                raise fail(unreachable(str(c.base_url).rstrip("/"), exc)) from None
            except httpx.HTTPError as exc:
                problems.append((line, f"请求失败 the request failed ({type(exc).__name__})"))
            progress.advance(task)
    for line, reason in problems:
        console.print(f"[red]✗[/] 第 {line} 行 line {line}: {reason}")
    console.print(
        f"新登记 created {created}, 已存在 already imported {replayed}, 失败 failed {len(problems)}"
    )
    if problems:
        raise typer.Exit(1)
