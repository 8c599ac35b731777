"""A small per-process cache for what every request reads and rarely changes (the
principal behind a token, units by code)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Entries live ``ttl_s`` seconds, and never past their own ``expires_at`` (seconds
    since the epoch) when one is given. Bounded: the least recently used goes first.
    ``ttl_s`` 0 keeps nothing."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        if self.ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            until, expires_at, value = entry
            if time.monotonic() >= until or time.time() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, *, expires_at: float = float("inf")) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl_s, expires_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
