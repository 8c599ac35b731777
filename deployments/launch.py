"""Starting a deployment's flow run from outside Prefect: the supervisors' page starts
the ``simulate`` deployment for a simulation it has recorded.

Light on purpose (the HTTP app imports it): no flows are imported, and Prefect's client
only when a run is started. ``deployments/definitions.py`` builds the same name from
the flow (a test holds the two together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEPLOYMENT_NAME = "tiaojie"
SIMULATE_DEPLOYMENT = f"simulate/{DEPLOYMENT_NAME}"
# The page waits this long for the Prefect server before saying it is not reachable.
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Started:
    flow_run_id: str
    flow_run_name: str


class NotReachable(Exception):
    """No Prefect server configured, not answering, or without the deployment; the
    message says which, in both languages."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.message_zh = zh
        self.message_en = en


def _configured() -> bool:
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


async def start_simulation(parameters: dict[str, Any], *, run_id: int) -> Started:
    """Create a flow run of the ``simulate`` deployment (a worker serving it runs it)."""
    import asyncio

    if not _configured():
        raise NotReachable(
            "未配置 Prefect 编排服务（PREFECT_API_URL），无法启动模拟",
            "No Prefect server is configured (PREFECT_API_URL): the simulation cannot start",
        )
    try:
        return await asyncio.wait_for(_create(parameters, run_id), TIMEOUT_S)
    except NotReachable:
        raise
    except Exception as exc:
        raise NotReachable(
            "Prefect 编排服务无法连接，模拟未启动，请稍后再试",
            f"The Prefect server is not reachable ({type(exc).__name__}); "
            "the simulation did not start, try again later",
        ) from exc


async def _create(parameters: dict[str, Any], run_id: int) -> Started:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(SIMULATE_DEPLOYMENT)
        except ObjectNotFound:
            raise NotReachable(
                f"Prefect 中没有 {SIMULATE_DEPLOYMENT} 部署（请启动 tiaojie worker）",
                f"Prefect has no {SIMULATE_DEPLOYMENT} deployment (start `tiaojie worker`)",
            ) from None
        run = await client.create_flow_run_from_deployment(
            deployment.id,
            parameters={**parameters, "run_id": run_id},
            tags=["tiaojie", f"simulation:{run_id}"],
        )
    return Started(flow_run_id=str(run.id), flow_run_name=run.name)
