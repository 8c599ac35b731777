"""End to end (placeholder until the worker lands)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from bench.common import Workspace
from bench.config import Sizes


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    raise RuntimeError("not yet measured")
