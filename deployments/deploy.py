"""Distributed mode: register every deployment on a ``process`` work pool.

    python -m deployments.deploy [--pool tiaojie]
    prefect worker start --pool tiaojie          # on as many machines as needed
    TIAOJIE_EXECUTOR=deployment tiaojie worker --no-serve   # the outbox relay

The entrypoints are module paths (``flows.intake.intake``), so a worker needs Tiaojie
installed in its environment and nothing else: no code storage, no pull steps. The same
definitions as the embedded mode (``deployments/definitions.py``); ``prefect.yaml``
beside this file says the same for ``prefect deploy --all``.

Every deployment's job ``command`` is ``<python> -m deployments.steprun`` (the Python
running this script, or ``--python``): one process per flow run as usual, which, once
warm, also runs other step runs waiting on the pool (see ``deployments/steprun.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound

from deployments.definitions import definitions, install_automations
from models.settings import get_settings


async def ensure_work_pool(name: str) -> None:
    async with get_client() as client:
        try:
            await client.read_work_pool(name)
        except ObjectNotFound:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def run_command(python: str | None = None) -> str:
    """The job command of the flow-run processes (see ``deployments/steprun.py``)."""
    return f"{shlex.quote(python or sys.executable)} -m deployments.steprun"


async def deploy_all(work_pool: str | None = None, *, python: str | None = None) -> dict[str, UUID]:
    """Create or update every deployment on ``work_pool``; returns their ids by name."""
    pool = work_pool or get_settings().work_pool
    await ensure_work_pool(pool)
    ids: dict[str, UUID] = {}
    for item in definitions():
        deployment = await item.to_deployment(
            work_pool_name=pool, job_variables={"command": run_command(python)}
        )
        ids[item.full_name] = await deployment.aapply(work_pool_name=pool)
    await install_automations()
    return ids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Register Tiaojie's deployments on a pool.")
    parser.add_argument("--pool", default=None, help="work pool (default: TIAOJIE_WORK_POOL)")
    parser.add_argument(
        "--python",
        default=None,
        help="the Python with Tiaojie installed on the workers (default: this one)",
    )
    args = parser.parse_args(argv)
    ids = asyncio.run(deploy_all(args.pool, python=args.python))
    for name, deployment_id in sorted(ids.items()):
        print(f"{name}\t{deployment_id}")


if __name__ == "__main__":
    main()
