"""notify: tell the people concerned about the case's latest events, once each, and
send the parties the links the case owes them (models/resident_links.py)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.notify import notify_case
from tasks.sms import ASKING_CONSENT, send_resident_links


@flow(name="notify", persist_result=False, log_prints=False)
async def notify(case_id: int) -> int:
    sent = await notify_case(case_id)
    get_run_logger().info("通知已发送 notifications sent: %s", ", ".join(sent) or "none")
    # An assigned case asks the parties (complainant, respondent) whether they agree to
    # mediation, each by their own one-use link; a case that owes none sends nothing.
    links = await send_resident_links([case_id], ASKING_CONSENT)
    get_run_logger().info("当事人链接 links to the parties: %s", links)
    return len(sent)
