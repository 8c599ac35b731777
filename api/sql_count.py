"""Statements per request, for the benchmarks (``TIAOJIE_BENCH_SQL_COUNT=1``).

A ``before_cursor_execute`` listener on the app's engine counts into the request's own
counter (a context variable: the thread that runs a page handler sees the counter of
its request), and the middleware reports the count in ``X-SQL-Statements``. Nothing is
installed unless the setting is on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine, event

HEADER = b"x-sql-statements"
_counter: ContextVar[list[int] | None] = ContextVar("tiaojie_sql_counter", default=None)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


def _count(*_args: Any) -> None:
    box = _counter.get()
    if box is not None:
        box[0] += 1


def count_statements(engine: Engine) -> None:
    """Count every statement the engine sends into the current request's counter, once
    however many apps are made on it (engines are shared per database URL: a second app
    in the process had counted every statement twice)."""
    if not event.contains(engine, "before_cursor_execute", _count):
        event.listen(engine, "before_cursor_execute", _count)


class SqlCount:
    """ASGI middleware: a fresh counter per HTTP request; its value in a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        box = [0]
        token = _counter.set(box)

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((HEADER, str(box[0]).encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        finally:
            _counter.reset(token)
