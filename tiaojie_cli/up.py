"""``tiaojie up``: the whole embedded system in one command, on 127.0.0.1.

1. migrate the case database (and with ``--demo`` load the demo city);
2. start a Prefect server on SQLite under ``TIAOJIE_HOME/prefect`` (or attach to the one
   named by ``PREFECT_API_URL``) and wait for ``/api/health``;
3. start the worker (``tiaojie worker``: every deployment and the outbox relay in one
   process) and wait until its deployments are polled (status READY);
4. start the HTTP app (``uvicorn api.app:app``) and wait until it answers;
5. mark the system ready (the app's ``/healthz`` answers 200 from then on), print the
   URLs, the demo sign-ins and where the data lives;
6. supervise: a child that dies is reported and restarted (a bounded number of times);
   Ctrl-C, SIGINT or SIGTERM stop every child cleanly.

Everything lives under one folder, ``TIAOJIE_HOME`` (default ``./var``): the case
database, ``prefect/`` (the Prefect server's home and database), ``logs/`` (one log per
process) and ``run/`` (the readiness flag and the pid of the running ``up``). A second
``tiaojie up`` resumes with the data the first one left; cases in flight carry on
because the outbox relay and the reconciler pick up whatever was not finished.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.panel import Panel
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from tiaojie_cli.supervise import ChildSpec, Supervisor, http_ok

console = Console()

STARTUP_TIMEOUT_S = 240.0
APP_URL_FILE = "app-url"


class UpError(Exception):
    """A start-up problem, told in Chinese and English."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh = zh
        self.en = en


@dataclass(frozen=True)
class Layout:
    """Where everything lives under ``TIAOJIE_HOME``: Prefect's own home, the logs, and
    ``run/`` with the file that says the stack is ready and the supervisor's pid file."""

    home: Path
    prefect_home: Path
    logs: Path
    run: Path
    ready_file: Path
    pid_file: Path

    @classmethod
    def under(cls, home: Path) -> Layout:
        run = home / "run"
        return cls(home, home / "prefect", home / "logs", run, run / "ready", run / "up.pid")

    @property
    def app_url_file(self) -> Path:
        """The app's address while ``tiaojie up`` runs: the other commands' default."""
        return self.run / APP_URL_FILE

    def make(self) -> None:
        for folder in (self.home, self.prefect_home, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves do: connections of a run just stopped linger in
        # TIME_WAIT and must not make an immediate restart refuse the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def prefect_deployments_ready(api_url: str, auth: str | None = None) -> Callable[[], bool]:
    """Healthy when the Prefect server sees at least one deployment being polled."""
    basic = tuple(auth.split(":", 1)) if auth and ":" in auth else None

    def check() -> bool:
        try:
            response = httpx.post(
                f"{api_url}/deployments/filter",
                json={"limit": 200},
                timeout=5,
                auth=basic,  # type: ignore[arg-type]
            )
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        return any(d.get("status") == "READY" for d in response.json())

    return check


def _claim_home(layout: Layout) -> None:
    """One ``tiaojie up`` per home: a second one would fight over ports and files."""
    if layout.pid_file.exists():
        try:
            other = int(layout.pid_file.read_text().strip())
        except ValueError:
            other = 0
        if other and other != os.getpid() and psutil.pid_exists(other):
            try:
                cmd = " ".join(psutil.Process(other).cmdline())
            except psutil.Error:
                cmd = ""
            if "up" in cmd:
                raise UpError(
                    f"另一个 tiaojie up（进程 {other}）正在使用 {layout.home}",
                    f"another tiaojie up (pid {other}) is running on {layout.home}",
                )
    layout.pid_file.write_text(str(os.getpid()))


def _prepare_database(demo: bool) -> str:
    from models.db import get_engine, write_session
    from models.migrate import upgrade

    engine = get_engine()
    upgrade(engine)
    summary = "database ready 数据库已就绪"
    if demo:
        try:
            from models.demo import load_demo_city
        except ImportError:
            return summary + "; demo city not available 演示城市模块缺失"
        with write_session(engine) as session:
            report = load_demo_city(session)
        summary += f"; demo city 演示城市: {report}"
    return summary


def _demo_sign_ins() -> list[tuple[str, str, str, str]]:
    """The demo accounts, when the demo city is what this database holds."""
    try:
        from models.demo import demo_sign_ins, is_loaded
    except ImportError:
        return []
    from models.db import read_session

    with read_session() as session:
        if not is_loaded(session):
            return []
    return list(demo_sign_ins())


class Up:
    """One run of ``tiaojie up``."""

    def __init__(
        self,
        *,
        port: int,
        prefect_port: int,
        demo: bool,
        demo_pace_s: float,
        max_restarts: int,
    ) -> None:
        from models.settings import get_settings

        settings = get_settings()
        self.settings = settings
        self.layout = Layout.under(settings.home.resolve())
        self.port = port
        self.prefect_port = prefect_port
        self.demo = demo
        self.demo_pace_s = demo_pace_s
        self.max_restarts = max_restarts
        self.stop_event = threading.Event()
        self.supervisor = Supervisor()
        self.feeder: Any = None
        attach = os.environ.get("PREFECT_API_URL", "").strip()
        self.attached = bool(attach)
        self.api_url = attach.rstrip("/") if attach else f"http://127.0.0.1:{prefect_port}/api"
        self.ui_url = self.api_url.removesuffix("/api")
        self.app_url = f"http://127.0.0.1:{port}"
        # What people open: the public address when the installation names one.
        self.public_url = (settings.public_url or self.app_url).rstrip("/")
        self.prefect_auth: str | None = None  # set by _check_keys

    # -- environment ---------------------------------------------------------------

    def child_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "TIAOJIE_HOME": str(self.layout.home),
                "PREFECT_HOME": str(self.layout.prefect_home),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "TIAOJIE_PREFECT_UI_URL": self.ui_url,
                # Links the app and the worker hand out (sign-in links, the resident's
                # page in a text message, reports) name the port the app is on.
                "TIAOJIE_API_PORT": str(self.port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.prefect_auth:
            # The worker, its flow runs and the `prefect` CLI sign in to the server.
            env["PREFECT_API_AUTH_STRING"] = self.prefect_auth
        env.update(extra)
        return env

    def _bin(self, name: str) -> str:
        candidate = Path(sys.executable).parent / name
        return str(candidate) if candidate.exists() else name

    # -- children ------------------------------------------------------------------

    def server_security(self) -> dict[str, str]:
        """The embedded server asks who is calling (HTTP basic auth; its UI shows a
        sign-in page) and answers cross-origin requests only from its own UI and the app."""
        settings = {
            "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": f"{self.ui_url},{self.app_url}",
        }
        if self.prefect_auth:
            settings["PREFECT_SERVER_API_AUTH_STRING"] = self.prefect_auth
        return settings

    def server_spec(self) -> ChildSpec:
        return ChildSpec(
            name="prefect-server",
            label="Prefect server 编排服务",
            argv=[
                self._bin("prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.prefect_port),
            ],
            env=self.child_env(
                **self.server_security(),
                PREFECT_UI_ENABLED="true",
                PREFECT_UI_API_URL=self.api_url,
                PREFECT_SERVER_API_HOST="127.0.0.1",
                PREFECT_SERVER_API_PORT=str(self.prefect_port),
            ),
            log_path=self.layout.logs / "prefect-server.log",
            health=http_ok(f"{self.api_url}/health"),
            cwd=Path.cwd(),
            max_restarts=self.max_restarts,
        )

    def worker_spec(self) -> ChildSpec:
        return ChildSpec(
            name="worker",
            label="Worker (deployments + outbox relay) 工作进程",
            # The entry point of `tiaojie worker`, without loading the whole CLI.
            argv=[sys.executable, "-m", "deployments.serve"],
            env=self.child_env(),
            log_path=self.layout.logs / "worker.log",
            health=prefect_deployments_ready(self.api_url, self.prefect_auth),
            cwd=Path.cwd(),
            max_restarts=self.max_restarts,
        )

    def proxy_args(self) -> list[str]:
        """uvicorn believes X-Forwarded-For only from the proxies named in
        TIAOJIE_TRUSTED_PROXIES (its own default would trust 127.0.0.1, that is any
        local process)."""
        proxies = self.settings.trusted_proxies.strip()
        if not proxies:
            return ["--no-proxy-headers"]
        return ["--proxy-headers", "--forwarded-allow-ips", proxies]

    def app_spec(self) -> ChildSpec:
        return ChildSpec(
            name="app",
            label="HTTP app (API, Open311, web) 网页与接口",
            argv=[
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                *self.proxy_args(),
            ],
            env=self.child_env(TIAOJIE_READY_FILE=str(self.layout.ready_file)),
            log_path=self.layout.logs / "app.log",
            # 503 "starting" counts as up: /healthz turns 200 once the ready flag is set.
            health=http_ok(f"{self.app_url}/healthz", accept=(200, 503)),
            cwd=Path.cwd(),
            max_restarts=self.max_restarts,
        )

    # -- start-up ------------------------------------------------------------------

    def _check_ports(self) -> None:
        wanted = [(self.port, "--port")]
        if not self.attached:
            wanted.append((self.prefect_port, "--prefect-port"))
        for port, option in wanted:
            if not port_is_free(port):
                raise UpError(
                    f"端口 {port} 已被占用，请用 {option} 选择其他端口",
                    f"port {port} is in use; choose another with {option}",
                )

    def _wait(self, progress: Progress, task: Any, check: Callable[[], bool], name: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.stop_event.is_set():
            if name in self.supervisor.children and not self.supervisor.children[name].alive():
                log = self.supervisor.children[name].spec.log_path
                raise UpError(
                    f"{name} 启动失败，请查看日志 {log}",
                    f"{name} exited during start-up; see {log}",
                )
            if check():
                return
            if time.monotonic() > deadline:
                raise UpError(f"{name} 启动超时", f"{name} did not become healthy in time")
            progress.update(task)
            time.sleep(0.5)

    def _check_keys(self) -> None:
        """Never serve on the public development key (anyone could forge a sign-in or
        read a copied database); the demo makes its own keys."""
        from models import keys
        from tiaojie_cli.keys import private_home

        private_home()
        if self.demo:
            keys.init_keys()
        if not self.attached:
            keys.ensure_prefect_auth()
        self.prefect_auth = keys.prefect_auth_string()
        if loose := keys.loose_files():
            names = " ".join(loose)
            raise UpError(
                f"{keys.keys_dir()} 中的密钥文件 {names} 其他账号也能读取，拒绝启动。"
                f"请运行 chmod 600 {names}（目录 chmod 700）。",
                f"the key file(s) {names} in {keys.keys_dir()} may be read by other accounts; "
                f"refusing to start. Run chmod 600 {names} (and chmod 700 the folder).",
            )
        weak = keys.default_sources()
        if weak:
            raise UpError(
                f"密钥 {', '.join(weak)} 使用的是公开的开发密钥，拒绝启动。"
                "请先运行 `tiaojie init` 生成密钥（或设置 TIAOJIE_*_KEY 环境变量）；"
                "仅作演示时可用 `tiaojie up --demo`。",
                f"the {', '.join(weak)} key(s) would be the public development key; refusing "
                "to start. Run `tiaojie init` to generate keys into "
                f"{keys.keys_dir()} (or set the TIAOJIE_*_KEY variables); for a "
                "demonstration only, `tiaojie up --demo`.",
            )

    def start(self) -> None:
        self._check_keys()
        self.layout.make()
        _claim_home(self.layout)
        with contextlib.suppress(FileNotFoundError):
            self.layout.ready_file.unlink()
        self._check_ports()
        with Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            db_task = progress.add_task("Case database 案件数据库: migrating 迁移中", total=1)
            summary = _prepare_database(self.demo)
            progress.update(db_task, description=f"Case database 案件数据库: {summary}")
            progress.update(db_task, completed=1)

            server_task = progress.add_task(
                "Prefect server 编排服务: "
                + (f"attaching 连接 {self.api_url}" if self.attached else "starting 启动中"),
                total=1,
            )
            if self.attached:
                self._wait(progress, server_task, http_ok(f"{self.api_url}/health"), "prefect")
            else:
                spec = self.server_spec()
                self.supervisor.start(spec)
                assert spec.health is not None
                self._wait(progress, server_task, spec.health, spec.name)
            progress.update(
                server_task,
                description=f"Prefect server 编排服务: {self.ui_url}",
                completed=1,
            )

            for spec in (self.worker_spec(), self.app_spec()):
                task = progress.add_task(f"{spec.label}: starting 启动中", total=1)
                self.supervisor.start(spec)
                assert spec.health is not None
                self._wait(progress, task, spec.health, spec.name)
                progress.update(task, description=f"{spec.label}: running 运行中", completed=1)

    def mark_ready(self) -> None:
        """Set the ready flag (``/healthz`` answers 200 from then on) once the ready
        screen is out: whoever waits for 200 may read the screen at once."""
        console.file.flush()
        self.layout.app_url_file.write_text(self.app_url)
        self.layout.ready_file.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        check = http_ok(f"{self.app_url}/healthz")
        while not self.stop_event.is_set() and not check():
            if time.monotonic() > deadline:
                raise UpError("就绪检查超时", "/healthz did not answer 200 in time")
            time.sleep(0.2)

    # -- the ready screen ------------------------------------------------------------

    def print_ready(self) -> None:
        urls = Table.grid(padding=(0, 2))
        urls.add_row("Web app 网页", f"{self.public_url}/")
        if self.public_url != self.app_url:
            urls.add_row("On this machine 本机", f"{self.app_url}/")
        urls.add_row("API docs 接口文档", f"{self.public_url}/docs")
        urls.add_row("Open311 公众接口", f"{self.public_url}/open311/v2/services.json")
        urls.add_row("Health 健康检查", f"{self.app_url}/healthz")
        urls.add_row("Prefect UI 编排界面", f"{self.ui_url}/")
        if self.prefect_auth and not self.attached:
            from models.keys import PREFECT_AUTH_FILE, keys_dir

            urls.add_row(
                "Prefect sign-in 登录",
                f"user:password 用户名:密码 in {keys_dir() / PREFECT_AUTH_FILE}",
            )
        console.print(Panel(urls, title="Tiaojie 调解 is ready 已就绪", border_style="green"))

        where = Table.grid(padding=(0, 2))
        where.add_row("TIAOJIE_HOME", str(self.layout.home))
        from sqlalchemy import make_url

        db_url = make_url(self.settings.resolved_database_url).render_as_string(hide_password=True)
        where.add_row("Case database 案件库", db_url)
        if self.attached:
            where.add_row("Prefect", f"attached 已连接 {self.api_url}")
        else:
            where.add_row("Prefect home", str(self.layout.prefect_home))
        where.add_row("Logs 日志", str(self.layout.logs))
        console.print(Panel(where, title="Where the data lives 数据位置", border_style="blue"))

        sign_ins = _demo_sign_ins()
        if sign_ins:
            table = Table(title="Demo sign-ins 演示账号", show_lines=False)
            for column in ("username 用户名", "role 角色", "unit 单位", "password 密码"):
                table.add_column(column)
            for username, role, unit, password in sign_ins[:8]:
                table.add_row(username, role, unit, password)
            console.print(table)
        if self.demo:
            console.print(
                "[yellow]Demo mode 演示模式[/]: new complaints are fed every "
                f"{self.demo_pace_s:g} s, and the mediators' steps (consent, session, "
                "agreement, return visit) are [bold]simulated 模拟[/] by the demo, labelled "
                "「演示模拟」 on each case's timeline. Demo clock 演示时钟: real time 与真实时间"
                "一致; the demo backlog was submitted over the past weeks, so reminders "
                "and escalations of overdue cases appear within minutes "
                "（积压案件已超期，几分钟内即可看到催办与提级督办）."
            )
        console.print("Press Ctrl-C to stop 按 Ctrl-C 停止。")

    # -- supervision -----------------------------------------------------------------

    def supervise(self) -> None:
        while not self.stop_event.wait(1.0):
            deaths = self.supervisor.check()
            for death in deaths:
                with contextlib.suppress(FileNotFoundError):
                    self.layout.ready_file.unlink()
                if death.restarted:
                    console.print(
                        f"[red]✗[/] {death.name} (pid {death.pid}) exited with code "
                        f"{death.returncode}; restarting 进程退出，正在重启 "
                        f"({death.restarts}/{self.max_restarts}); log 日志: {death.log_path}"
                    )
                else:
                    console.print(
                        f"[red]✗[/] {death.name} (pid {death.pid}) exited with code "
                        f"{death.returncode} and was restarted too often; giving up "
                        f"重启次数过多，已放弃. Log 日志: {death.log_path}"
                    )
            if deaths or not self.layout.ready_file.exists():
                self._restore_ready()

    def _restore_ready(self) -> None:
        children = self.supervisor.children
        if any(child.gave_up for child in children.values()):
            return
        if all(self.supervisor.healthy(name) for name in children):
            self.layout.ready_file.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            console.print("[green]✓[/] all components healthy again 所有组件已恢复")

    def stop(self) -> None:
        self.stop_event.set()
        with contextlib.suppress(FileNotFoundError):
            self.layout.ready_file.unlink()
        if self.feeder is not None:
            self.feeder.stop()
        with console.status("Stopping 正在停止…"):
            self.supervisor.stop_all()
        for done in (self.layout.pid_file, self.layout.app_url_file):
            with contextlib.suppress(FileNotFoundError):
                done.unlink()
        console.print(
            "[green]✓[/] stopped 已停止; data kept in 数据保存在 " + str(self.layout.home)
        )

    def start_demo_feed(self) -> None:
        from tiaojie_cli.demo_feed import DemoFeeder

        self.feeder = DemoFeeder(
            state_file=self.layout.run / "demo-feed.json",
            pace_s=self.demo_pace_s,
            log=lambda line: console.print(f"[dim]{line}[/]"),
            case_url=lambda number: f"{self.public_url}/web/cases/{number}",
        )
        self.feeder.start()


def run_up(
    *,
    port: int,
    prefect_port: int,
    demo: bool,
    demo_pace_s: float = 6.0,
    max_restarts: int = 5,
) -> int:
    up = Up(
        port=port,
        prefect_port=prefect_port,
        demo=demo,
        demo_pace_s=demo_pace_s,
        max_restarts=max_restarts,
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not up.stop_event.is_set():
            console.print(f"\n{signal.Signals(signum).name}: stopping 正在停止…")
        up.stop_event.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        up.start()
        if not up.stop_event.is_set():
            up.print_ready()
            up.mark_ready()
            if demo:
                up.start_demo_feed()
            up.supervise()
    except UpError as exc:
        console.print(f"[red]✗ {exc.zh}[/]\n  {exc.en}")
        code = 1
    finally:
        up.stop()
    return code
