"""HTTP load on loopback with httpx: closed loop (N concurrent clients as fast as they
can) and open loop (a paced arrival rate, latency counted from the scheduled send time
so that a slow server cannot hide its queue)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import percentile, rnd

BodyFn = Callable[[int], dict[str, Any]]


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


async def _post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], result: LoadResult, t0: float
) -> float | None:
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        result.failed += 1
        result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
        return None
    result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
    if response.status_code >= 300:
        result.failed += 1
        result.first_error = result.first_error or f"{response.status_code}: {response.text[:300]}"
        return None
    result.ok += 1
    elapsed = time.perf_counter() - t0
    result.latencies_s.append(elapsed)
    return elapsed


def _client(headers: dict[str, str], concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(headers=headers, limits=limits, timeout=30.0)


async def _closed(
    url: str, headers: dict[str, str], body: BodyFn, concurrency: int, seconds: float, warmup: int
) -> LoadResult:
    async with _client(headers, concurrency) as client:
        warm = LoadResult()
        for i in range(warmup):
            await _post(client, url, body(-1 - i), warm, time.perf_counter())
        if warm.failed and not warm.ok:
            raise RuntimeError(f"every warm-up request failed: {warm.first_error}")
        result = LoadResult()
        counter = iter(range(10**9))
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                await _post(client, url, body(next(counter)), result, time.perf_counter())

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
        return result


async def _paced(
    url: str, headers: dict[str, str], body: BodyFn, rate: float, seconds: float, offset: int
) -> LoadResult:
    async with _client(headers, 256) as client:
        result = LoadResult()
        n = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(
                asyncio.create_task(_post(client, url, body(offset + i), result, scheduled))
            )
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - start
        return result


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
