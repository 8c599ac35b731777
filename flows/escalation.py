"""escalation (scheduled): remind before the limit, escalate at it, notify, report.

Idempotent per case, deadline and level (the domain's sweep re-reads and version-checks
every case), so two sweeps at the same moment act once. Each sweep publishes a table
artifact of what it did, with case numbers and unit codes only.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from models import clock
from tasks.escalation import find_case_ids, remind_court_confirmations, sweep_due_cases
from tasks.notify import notify_cases, remind_due_follow_ups
from tasks.simulate import sweep_stale_simulations
from tasks.sms import resident_upkeep, send_return_visit_links

ARTIFACT_KEY = "tiaojie-escalation-sweep"


@flow(name="escalation", persist_result=False, log_prints=False)
async def escalation(batch_size: int = 500) -> dict[str, int]:
    logger = get_run_logger()
    started = clock.now()
    report = await sweep_due_cases(batch_size)
    numbers = [row[0] for row in report.reminded] + [row[0] for row in report.escalated]
    notified = {"sent": 0, "failed": 0}
    case_ids = await find_case_ids(numbers) if numbers else []
    confirmations = await remind_court_confirmations()
    case_ids = list(dict.fromkeys([*case_ids, *confirmations]))
    if case_ids:
        notified = await notify_cases(case_ids)
    visits = await remind_due_follow_ups()
    links = await send_return_visit_links()
    upkeep = await resident_upkeep()
    stale = await sweep_stale_simulations()
    rows = report.as_rows()
    summary = (
        f"督办扫描 {clock.format_local(started)}：催办 {len(report.reminded)} 件，"
        f"提级督办 {len(report.escalated)} 件，跳过 {report.skipped} 件，"
        f"通知 {notified['sent']} 条（失败 {notified['failed']}），回访提醒 {visits} 条，"
        f"用时 {report.seconds:.2f} 秒。"
        f" / Sweep at {clock.format_local(started)}: reminded {len(report.reminded)}, "
        f"escalated {len(report.escalated)}, skipped {report.skipped}, "
        f"notifications {notified['sent']} (failed {notified['failed']}), "
        f"return-visit reminders {visits}, "
        f"{report.seconds:.2f} s. Residents: links {links['sent']}, SMS sent again "
        f"{upkeep['receipts_sent'] + upkeep['links_sent']}, expired rows deleted "
        f"{upkeep['sessions_purged'] + upkeep['links_purged'] + upkeep['locks_purged']}."
        f" Simulations that will never finish, marked failed: {stale}."
    )
    await acreate_table_artifact(
        key=ARTIFACT_KEY,
        table=rows or [{"结果 result": "无到期案件 nothing due"}],
        description=summary,
    )
    logger.info(summary)
    return {
        "reminded": len(report.reminded),
        "escalated": len(report.escalated),
        "skipped": report.skipped,
        "notified": notified["sent"],
        "visit_reminders": visits,
        "court_confirmation_reminders": len(confirmations),
        "resident_links": links["sent"],
        "sms_resent": upkeep["receipts_sent"] + upkeep["links_sent"],
        "stale_simulations": stale,
    }
