"""Where a case's submit→assigned seconds go, from the stamps the system keeps anyway.

For each case, consecutive moments (so the parts add up to the whole):

* ``commit``: the bench sends the POST → the case and its outbox row are written
  (``outbox.created_at``): the HTTP app's share;
* ``claim``: → the relay claims the row (its lease's start: ``available_at`` less
  ``LEASE_S`` of the last claim): waiting for the relay's poll;
* ``relay``: → the intake flow run exists in Prefect (its ``created``): the plan, the
  events, and creating the run (a Prefect API round trip);
* ``start``: → the run starts (its ``start_time``): waiting for a free run slot and the
  executor's start of the run (in the worker's process, or a new process on a pool);
* ``triage``: → the ``triaged`` event of the case (classification, duplicates, limits);
* ``assign``: → ``assigned_at`` (routing, the assignment's transaction).

Only ids, case numbers and timestamps are read: nothing personal.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import percentile, rnd
from models.outbox import LEASE_S

PARTS = ("commit", "claim", "relay", "start", "triage", "assign")


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _case_stamps(engine: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    from sqlalchemy import text

    out: dict[int, dict[str, Any]] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ",".join(map(str, ids[start : start + 500]))
            for case_id, number, assigned in conn.execute(
                text(
                    "SELECT id, number, COALESCE(assigned_at, referred_at) FROM cases "
                    f"WHERE id IN ({chunk})"
                )
            ).all():
                out[int(case_id)] = {"number": number, "assign": _ts(assigned)}
            for case_id, created, leased in conn.execute(
                text(
                    "SELECT case_id, created_at, available_at FROM outbox "
                    f"WHERE case_id IN ({chunk}) AND verb = 'submitted'"
                )
            ).all():
                out[int(case_id)]["commit"] = _ts(created)
                until = _ts(leased)
                out[int(case_id)]["claim"] = None if until is None else until - LEASE_S
            for case_id, at in conn.execute(
                text(
                    "SELECT case_id, MIN(at) FROM case_event "
                    f"WHERE case_id IN ({chunk}) AND verb = 'triaged' GROUP BY case_id"
                )
            ).all():
                out[int(case_id)]["triage"] = _ts(at)
    return out


def _intake_run(client: httpx.Client, number: str) -> tuple[float | None, float | None]:
    """(created, started) of the first intake run (own or batch) that carries the case."""
    r = client.post(
        "/flow_runs/filter",
        json={"flow_runs": {"tags": {"all_": [f"case:{number}"]}}, "limit": 20},
    )
    r.raise_for_status()
    runs = [run for run in r.json() if "intake" in (run.get("name") or "")]
    if not runs:
        return None, None
    first = min(runs, key=lambda run: run["created"])
    return _ts(first["created"]), _ts(first.get("start_time"))


def measure(
    engine: Any, prefect_env: dict[str, str], sent: dict[int, float]
) -> dict[int, dict[str, float]]:
    """The parts (seconds) of each case of ``sent`` (case id → wall time of the POST)
    that is assigned and whose intake run was found."""
    stamps = _case_stamps(engine, list(sent))
    auth = base64.b64encode(prefect_env["PREFECT_API_AUTH_STRING"].encode()).decode()
    out: dict[int, dict[str, float]] = {}
    with httpx.Client(
        base_url=prefect_env["PREFECT_API_URL"],
        headers={"Authorization": f"Basic {auth}"},
        timeout=30,
    ) as client:
        for case_id, at in sent.items():
            row = stamps.get(case_id, {})
            if row.get("assign") is None:
                continue
            row["relay"], row["start"] = _intake_run(client, row["number"])
            moments = [at] + [row.get(part) for part in PARTS]
            if any(m is None for m in moments):
                continue
            out[case_id] = {
                part: float(moments[i + 1]) - float(moments[i])  # type: ignore[arg-type]
                for i, part in enumerate(PARTS)
            }
    return out


def summary(parts: dict[int, dict[str, float]], ids: set[int] | None = None) -> dict[str, Any]:
    """p50 and p95 of each part over the cases (``ids``: only these)."""
    chosen = [p for case_id, p in parts.items() if ids is None or case_id in ids]
    out: dict[str, Any] = {"cases": len(chosen)}
    for part in PARTS:
        values = [p[part] for p in chosen]
        out[part] = {
            "p50_s": rnd(percentile(values, 50), 3),
            "p95_s": rnd(percentile(values, 95), 3),
        }
    return out


def line(name: str, block: dict[str, Any]) -> str:
    """One readable line: the p50 of each part."""
    parts = " · ".join(f"{part} {block[part]['p50_s']}" for part in PARTS)
    return f"{name} ({block['cases']}) p50 s: {parts}"
