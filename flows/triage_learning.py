"""retrain-triage: the classifier learns from people's corrections (scheduled).

When at least ``settings.triage_retrain_min_corrections`` corrections arrived since the
last training, train a new model on the corpus plus the corrections, compare it with
the active model on the validation split plus the corrections, and promote it only if
it is not worse (models.triage_learning). The run leaves a Markdown artifact with the
figures and the confusion matrix. Roll back with ``tiaojie triage rollback``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from tasks.triage import retrain_triage


def _markdown(summary: dict[str, Any]) -> str:
    labels: list[str] = summary["labels"]
    head = "| true \\ predicted | " + " | ".join(labels) + " |"
    rule = "|---|" + "---:|" * len(labels)
    rows = [
        f"| {label} | " + " | ".join(str(n) for n in row) + " |"
        for label, row in zip(labels, summary["confusion"], strict=True)
    ]
    verdict = "已启用 promoted" if summary["promoted"] else "未启用 not promoted"
    return "\n".join(
        [
            f"# 分拣模型 {summary['name']}: {verdict}",
            "",
            f"- {summary['outcome']}",
            f"- corrections used 采用的纠正: {summary['corrections']}",
            f"- accuracy 准确率: {summary['accuracy']:.1%} "
            f"(active model 现用模型 {summary['baseline_accuracy']:.1%})",
            f"- emergency recall 紧急召回率: {summary['emergency_recall']:.1%}",
            "",
            "Validation split plus corrections, confusion matrix 混淆矩阵:",
            "",
            head,
            rule,
            *rows,
        ]
    )


@flow(name="retrain-triage", persist_result=False, log_prints=False)
async def retrain_triage_flow(sample_per_category: int = 0) -> str:
    """``sample_per_category`` > 0 trains on that many corpus rows per category and
    split (quick trials); 0 uses the whole corpus."""
    logger = get_run_logger()
    summary = await retrain_triage(sample_per_category)
    if not summary["due"]:
        logger.info("不需重新训练 not due: %s new corrections", summary["new_corrections"])
        return "not due"
    logger.info("%s: %s", summary["name"], summary["outcome"])
    await acreate_markdown_artifact(
        key="triage-model",
        markdown=_markdown(summary),
        description=f"triage model {summary['name']}",
    )
    return "promoted" if summary["promoted"] else "not promoted"
