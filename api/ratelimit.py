"""A small in-process sliding-window rate limiter for the public Open311 endpoint.

Per client IP (every public call) and per ``api_key`` (every report filed). Behind
several ASGI workers each worker keeps its own window, so the effective limit is the
setting times the worker count: set it accordingly, or put a shared limiter (the
reverse proxy) in front.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from models.errors import TiaojieError


class RateLimited(TiaojieError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many requests; retry after {retry_after} s",
            f"请求过于频繁，请在 {retry_after} 秒后重试",
        )
        self.headers = {"Retry-After": str(retry_after)}


class RateLimiter:
    def __init__(self, per_minute: int, *, window_s: float = 60.0, max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Count one call for ``key``; raise :class:`RateLimited` when over the limit."""
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._evict(now)
                hits = self._hits[key] = deque()
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= self.per_minute:
                retry = max(1, math.ceil(self.window_s - (now - hits[0])))
                raise RateLimited(retry)
            hits.append(now)

    def _evict(self, now: float) -> None:
        stale = [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window_s]
        for key in stale:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:
            self._hits.clear()
