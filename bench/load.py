"""HTTP load on loopback: closed loop (N concurrent clients as fast as they
can) and open loop (a paced arrival rate, latency counted from the scheduled send time
so that a slow server cannot hide its queue)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.common import percentile, rnd

BodyFn = Callable[[int], dict[str, Any]]
PACED_MAX_CONNECTIONS = 256


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    first_error: str | None = None

    @property
    def per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        ms = [x * 1000 for x in self.latencies_s]
        return {
            "ok": self.ok,
            "failed": self.failed,
            "seconds": rnd(self.seconds),
            "per_s": rnd(self.per_s, 1),
            "p50_ms": rnd(percentile(ms, 50), 1),
            "p99_ms": rnd(percentile(ms, 99), 1),
            "max_ms": rnd(max(ms), 1) if ms else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "first_error": self.first_error,
        }


def combine(results: list[LoadResult]) -> LoadResult:
    """Several runs against one server as one (counts, time and latencies added up)."""
    out = LoadResult()
    for r in results:
        out.ok += r.ok
        out.failed += r.failed
        out.seconds += r.seconds
        out.latencies_s.extend(r.latencies_s)
        for status, n in r.statuses.items():
            out.statuses[status] = out.statuses.get(status, 0) + n
        out.first_error = out.first_error or r.first_error
    return out


class _Conn:
    """One keep-alive HTTP/1.1 connection on loopback, spoken by hand.

    The load generator shares the 2 cores with the server it measures: an httpx client
    costs about 2 ms of CPU a request (0.6 of a core at 300 requests a second), this
    costs a fraction of that, so more of the machine goes to the server (the real app
    and the baseline alike)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        message = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        reused = self.reader is not None
        reader, writer = await self._open()
        try:
            writer.write(message)
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            # The server closed an idle keep-alive connection (uvicorn after 5 s) before
            # reading this request: send it again once on a new connection, as HTTP
            # clients do. Not when any of an answer came back.
            partial = getattr(exc, "partial", b"")
            if not reused or partial:
                raise
            self.close()
            reader, writer = await self._open()
            writer.write(message)
            raw = await reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length: int | None = None
        chunked = close = False
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(parts)
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content = await reader.read()
            close = True
        if close:
            self.close()
        return status, content


class _Target:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += ["Content-Type: application/json", "Accept: */*"]
        self.head = ("\r\n".join(lines) + "\r\n").encode("latin-1")


async def _post(
    conn: _Conn, target: _Target, body: dict[str, Any], result: LoadResult, t0: float
) -> float | None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    try:
        status, content = await conn.request(target.head, payload)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        conn.close()
        result.failed += 1
        result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
        return None
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status >= 300:
        result.failed += 1
        text = content[:300].decode("utf-8", "replace")
        result.first_error = result.first_error or f"{status}: {text}"
        return None
    result.ok += 1
    elapsed = time.perf_counter() - t0
    result.latencies_s.append(elapsed)
    return elapsed


async def _closed(
    url: str, headers: dict[str, str], body: BodyFn, concurrency: int, seconds: float, warmup: int
) -> LoadResult:
    target = _Target(url, headers)
    conns = [_Conn(target.host, target.port) for _ in range(concurrency)]
    try:
        warm = LoadResult()
        for i in range(warmup):
            await _post(conns[i % concurrency], target, body(-1 - i), warm, time.perf_counter())
        if warm.failed and not warm.ok:
            raise RuntimeError(f"every warm-up request failed: {warm.first_error}")
        result = LoadResult()
        counter = iter(range(10**9))
        stop_at = time.perf_counter() + seconds

        async def worker(conn: _Conn) -> None:
            while time.perf_counter() < stop_at:
                await _post(conn, target, body(next(counter)), result, time.perf_counter())

        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        result.seconds = time.perf_counter() - start
        return result
    finally:
        for c in conns:
            c.close()


async def _paced(
    url: str, headers: dict[str, str], body: BodyFn, rate: float, seconds: float, offset: int
) -> LoadResult:
    target = _Target(url, headers)
    idle: list[_Conn] = []
    opened: list[_Conn] = []
    result = LoadResult()
    slots = asyncio.Semaphore(PACED_MAX_CONNECTIONS)

    async def one(i: int, scheduled: float) -> None:
        async with slots:
            conn = idle.pop() if idle else None
            if conn is None:
                conn = _Conn(target.host, target.port)
                opened.append(conn)
            await _post(conn, target, body(offset + i), result, scheduled)
            idle.append(conn)

    try:
        n = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - start
        return result
    finally:
        for c in opened:
            c.close()


def closed_loop(
    url: str,
    *,
    headers: dict[str, str],
    body: BodyFn,
    concurrency: int,
    seconds: float,
    warmup: int,
) -> LoadResult:
    return asyncio.run(_closed(url, headers, body, concurrency, seconds, warmup))


def paced(
    url: str, *, headers: dict[str, str], body: BodyFn, rate: float, seconds: float, offset: int = 0
) -> LoadResult:
    return asyncio.run(_paced(url, headers, body, rate, seconds, offset))
