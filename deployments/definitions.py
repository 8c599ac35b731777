"""Every deployment of Tiaojie, defined once.

* Step flows (``intake``, ``assignment``, ``notify``, ``mediation``, ``follow_up``): no
  schedule; started by the outbox relay for each case event (``models.lifecycle.NEXT_STEP``
  maps event verbs to steps), either in the serve process (executor ``inprocess``) or
  from these deployments on a work pool (executor ``deployment``).
* Scheduled flows: ``escalation`` every ``settings.escalation_interval_s``, ``reconcile``
  every ``settings.reconcile_interval_s``, ``reports`` on ``settings.reports_cron``,
  ``monthly_report`` on ``settings.monthly_report_cron``, ``retention`` on
  ``settings.retention_cron`` (Asia/Shanghai).
* ``simulate`` (政策模拟): no schedule; started from the Prefect UI with its parameters,
  or by the supervisors' page (``deployments/launch.py``).
* ``retrain-triage`` on ``settings.triage_retrain_cron``; ``risk-notice`` started by
  the automation on the early-warning events (``tiaojie.risk.warning``,
  ``tiaojie.cluster.warning``).
* The zombie-detection automation: a flow run that stops sending heartbeats is marked
  Crashed, and the reconciler re-drives its case.

``deployments/serve.py`` serves them all in one process (embedded mode);
``deployments/deploy.py`` registers them on a process work pool (distributed mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prefect import Flow
from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.schedules import Cron, Interval, Schedule
from prefect.types.entrypoint import EntrypointType

from deployments.launch import DEPLOYMENT_NAME
from flows.assignment import assignment
from flows.escalation import escalation
from flows.follow_up import follow_up
from flows.intake import intake, intake_batch
from flows.mediation import mediation
from flows.monthly_report import monthly_report
from flows.notify import notify
from flows.reconcile import reconcile
from flows.relay import DeploymentDispatcher, Dispatcher, InProcessExecutor
from flows.reports import reports
from flows.retention import retention
from flows.risk import risk_notice
from flows.simulate import simulate
from flows.triage_learning import retrain_triage_flow
from models.settings import get_settings

TAGS = ["tiaojie"]
ZOMBIE_AUTOMATION = "tiaojie: crash zombie flow runs"
# A run whose heartbeat stops for this long is declared dead.
ZOMBIE_AFTER = timedelta(seconds=90)

STEP_FLOWS: dict[str, Flow[Any, Any]] = {
    "intake": intake,
    "assignment": assignment,
    "notify": notify,
    "mediation": mediation,
    "follow_up": follow_up,
}
# Steps with a flow that takes several cases at once (adaptive batching, flows/batching.py).
BATCH_FLOWS: dict[str, Flow[Any, Any]] = {"intake": intake_batch}


@dataclass(frozen=True)
class Definition:
    flow: Flow[Any, Any]
    entrypoint: str  # module path, importable wherever Tiaojie is installed
    description: str
    schedules: list[Schedule] = field(default_factory=list)
    triggers: list[DeploymentEventTrigger] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{DEPLOYMENT_NAME}"

    async def to_deployment(self, **where: Any) -> RunnerDeployment:
        """This flow's deployment; ``where`` adds what a work pool needs (its name, the
        job's variables) to what every deployment has."""
        return await self.flow.ato_deployment(
            name=DEPLOYMENT_NAME,
            schedules=list(self.schedules) or None,
            triggers=list(self.triggers) or None,
            description=self.description,
            tags=TAGS,
            entrypoint_type=EntrypointType.MODULE_PATH,
            **where,
        )


def definitions() -> list[Definition]:
    settings = get_settings()
    return [
        Definition(intake, "flows.intake.intake", "受理研判分流 / Intake and triage"),
        Definition(
            intake_batch,
            "flows.intake.intake_batch",
            "批量受理研判分流 / Intake and triage of several cases in one run (under load)",
        ),
        Definition(assignment, "flows.assignment.assignment", "派单 / Assignment"),
        Definition(notify, "flows.notify.notify", "通知 / Notify the people concerned"),
        Definition(mediation, "flows.mediation.mediation", "调解 / Mediation"),
        Definition(follow_up, "flows.follow_up.follow_up", "回访 / Return visits"),
        Definition(
            escalation,
            "flows.escalation.escalation",
            "督办：催办与提级督办 / Reminders and escalation",
            [Interval(timedelta(seconds=settings.escalation_interval_s))],
        ),
        Definition(
            reconcile,
            "flows.reconcile.reconcile",
            "对账：重新驱动未完成的步骤 / Re-drive steps that did not start or finish",
            [Interval(timedelta(seconds=settings.reconcile_interval_s))],
        ),
        Definition(
            reports,
            "flows.reports.reports",
            "三率与排名报表 / Daily rates, ranking and clusters",
            [Cron(settings.reports_cron, timezone=settings.timezone)],
        ),
        Definition(
            monthly_report,
            "flows.monthly_report.monthly_report",
            "月报（每月1日）/ Monthly report (.xlsx) on the 1st of each month",
            [Cron(settings.monthly_report_cron, timezone=settings.timezone)],
        ),
        Definition(
            retention,
            "flows.retention.retention",
            "个人信息保存期限：匿名化与清理 / Retention: anonymise ended cases, prune sign-ins",
            [Cron(settings.retention_cron, timezone=settings.timezone)],
        ),
        Definition(
            retrain_triage_flow,
            "flows.triage_learning.retrain_triage_flow",
            "分拣模型学习纠正 / Retrain the triage classifier from people's corrections",
            [Cron(settings.triage_retrain_cron, timezone=settings.timezone)],
        ),
        Definition(
            simulate,
            "flows.simulate.simulate",
            "政策模拟：各情景并排比较 / Policy simulation: compare scenarios side by side",
        ),
        Definition(
            risk_notice,
            "flows.risk.risk_notice",
            "风险预警通知包案领导 / Tell the responsible leader of an early warning",
            triggers=[risk_trigger()],
        ),
    ]


def risk_trigger() -> DeploymentEventTrigger:
    """An early warning (from the text, or a cluster of complaints) starts risk-notice."""
    return DeploymentEventTrigger(
        name="tiaojie: early warning reaches its leader",
        expect={"tiaojie.risk.warning", "tiaojie.cluster.warning"},
        parameters={"case_id": "{{ event.payload.case_id }}"},
    )


def step_deployment_names() -> dict[str, str]:
    return {step: f"{flow.name}/{DEPLOYMENT_NAME}" for step, flow in STEP_FLOWS.items()}


def batch_deployment_names() -> dict[str, str]:
    return {step: f"{flow.name}/{DEPLOYMENT_NAME}" for step, flow in BATCH_FLOWS.items()}


def build_dispatcher() -> Dispatcher:
    """The relay's dispatcher the settings ask for: the step flows themselves (in process)
    or their deployments' names (on a work pool). Only this package knows both."""
    settings = get_settings()
    if settings.executor == "deployment":
        return DeploymentDispatcher(
            step_deployment_names(),
            concurrency=settings.executor_concurrency,
            batch_deployment_names=batch_deployment_names(),
            lane=settings.relay_batch_lane,
        )
    return InProcessExecutor(
        STEP_FLOWS,
        concurrency=settings.executor_concurrency,
        batch_flows=BATCH_FLOWS,
        lane=settings.relay_batch_lane or 1,
    )


async def runner_deployments() -> list[RunnerDeployment]:
    """The deployments for ``serve`` (embedded mode)."""
    return [await item.to_deployment() for item in definitions()]


def zombie_automation() -> Automation:
    """Mark a flow run Crashed when its heartbeats stop (PREFECT_FLOWS_HEARTBEAT_FREQUENCY
    must be set for runs to send them; ``tiaojie worker`` sets it)."""
    return Automation(
        name=ZOMBIE_AUTOMATION,
        description="心跳中断的流程运行标记为崩溃，由对账流程重新驱动 / "
        "Flow runs whose heartbeat stops are marked Crashed; reconcile re-drives them.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=ZOMBIE_AFTER,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message="No heartbeat: the process running this flow run died. "
                "心跳中断：运行该流程的进程已退出。",
            )
        ],
    )


async def install_automations() -> Automation:
    """Create the zombie automation, or bring an existing one up to date (idempotent)."""
    wanted = zombie_automation()
    try:
        existing = await Automation.aread(name=ZOMBIE_AUTOMATION)
    except ValueError:
        return await wanted.acreate()
    wanted.id = existing.id
    await wanted.aupdate()
    return wanted
