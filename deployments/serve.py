"""``tiaojie worker``: everything the workflows need, in ONE process (embedded mode).

* serves every deployment of ``deployments/definitions.py`` (the schedules of
  escalation, reconcile and reports; the step deployments for manual and
  ``deployment``-executor runs);
* runs the outbox relay, which emits a Prefect event per case event and starts the next
  step: in this process (``TIAOJIE_EXECUTOR=inprocess``, the default) or on the work pool
  (``TIAOJIE_EXECUTOR=deployment``);
* installs the zombie-detection automation.

SIGINT or SIGTERM stops it cleanly: the relay stops polling, steps in flight finish
(bounded wait), the runner stops. Anything cut short is re-driven by the reconciler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import Literal

log = logging.getLogger("tiaojie.worker")

DRAIN_TIMEOUT_S = 30.0


def _prefect_defaults() -> None:
    # Heartbeats drive zombie detection; must be set before Prefect reads its settings.
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "5")


async def run_worker(
    *,
    executor: Literal["inprocess", "deployment"] | None = None,
    serve_deployments: bool = True,
    relay: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    from prefect.runner import Runner

    from deployments.definitions import build_dispatcher, install_automations, runner_deployments
    from flows.relay import Relay
    from models.settings import get_settings

    settings = get_settings()
    if executor is not None and executor != settings.executor:
        os.environ["TIAOJIE_EXECUTOR"] = executor
        from models.settings import reset_settings

        reset_settings()
        settings = get_settings()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    await install_automations()
    tasks: list[asyncio.Task[None]] = []
    runner: Runner | None = None
    if serve_deployments:
        runner = Runner(
            name=f"tiaojie-{socket.gethostname()}-{os.getpid()}",
            pause_on_shutdown=False,
            limit=max(4, settings.executor_concurrency),
        )
        for deployment in await runner_deployments():
            await runner.aadd_deployment(deployment)
        tasks.append(asyncio.create_task(runner.start(), name="runner"))
        # The runner takes SIGTERM for itself; route it back to our stop event.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, stop.set)
    dispatcher = build_dispatcher()
    if relay:
        the_relay = Relay(dispatcher)
        tasks.append(asyncio.create_task(the_relay.run(stop), name="relay"))
    log.info(
        "tiaojie worker started: executor=%s, serving=%s, relay=%s",
        settings.executor,
        serve_deployments,
        relay,
    )
    print(f"tiaojie worker ready (executor={settings.executor})", flush=True)
    stopper = asyncio.create_task(stop.wait(), name="stop")
    await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    for task in tasks:
        if task.done() and task.exception() is not None:
            log.error("worker part %s failed: %r", task.get_name(), task.exception())
    if runner is not None:
        with contextlib.suppress(Exception):
            await runner.astop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(dispatcher.drain(), timeout=DRAIN_TIMEOUT_S)
    for task in tasks:
        if not task.done():
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# The Prefect client logs every HTTP request it makes at INFO through these: thousands of
# lines an hour in worker.log that say nothing an operator needs. Warnings still show.
QUIET_LOGGERS = ("httpx", "httpcore")


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(
    *,
    executor: Literal["inprocess", "deployment"] | None = None,
    serve_deployments: bool = True,
    relay: bool = True,
) -> None:
    """Run the worker until SIGINT/SIGTERM."""
    _prefect_defaults()
    configure_logging()
    asyncio.run(run_worker(executor=executor, serve_deployments=serve_deployments, relay=relay))


if __name__ == "__main__":
    main()
