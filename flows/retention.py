"""retention (每晚 03:30, Asia/Shanghai): the personal data of cases that ended more than
``settings.retention_days`` ago is anonymised, and sign-in attempts older than
``settings.sign_in_audit_days`` are deleted (:mod:`models.retention`). The run's
artifact holds counts and the cut-off dates only."""

from __future__ import annotations

from datetime import timedelta

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from models import clock
from models.settings import get_settings
from tasks.retention import anonymise_expired_cases, prune_sign_in_audit


@flow(name="retention", persist_result=False, log_prints=False)
async def retention() -> dict[str, int]:
    settings, today = get_settings(), clock.to_local(clock.now()).date()
    cases = await anonymise_expired_cases()
    sign_ins = await prune_sign_in_audit()
    ended = today - timedelta(days=settings.retention_days)
    tried = today - timedelta(days=settings.sign_in_audit_days)
    await acreate_markdown_artifact(
        key="tiaojie-retention",
        markdown=(
            "# 个人信息保存期限 Retention of personal data\n\n"
            f"- {ended:%Y-%m-%d} 前办结的案件已匿名化 {cases} 件 / "
            f"cases that ended before {ended:%Y-%m-%d} anonymised: {cases}\n"
            f"- {tried:%Y-%m-%d} 前的登录记录已删除 {sign_ins} 条 / "
            f"sign-in attempts before {tried:%Y-%m-%d} deleted: {sign_ins}\n"
        ),
        description="保存期限到期的个人信息 / Personal data past its retention period",
    )
    get_run_logger().info(
        "retention: %d cases anonymised, %d sign-in attempts deleted", cases, sign_ins
    )
    return {"cases_anonymised": cases, "sign_in_attempts_deleted": sign_ins}
