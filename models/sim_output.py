"""Writing a simulation's results: ``summary.json`` (byte-identical for the same
scenarios, period and seed: sorted keys, floats rounded, no timestamps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def summary_document(
    results: dict[str, dict[str, Any]], *, start: str, days: int, seed: int
) -> dict[str, Any]:
    return {
        "period": {"from": start, "days": days},
        "seed": seed,
        "scenarios": results,
    }


def summary_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1) + "\n"


def write_summary(out: Path, document: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    path.write_text(summary_json(document), encoding="utf-8")
    return path
