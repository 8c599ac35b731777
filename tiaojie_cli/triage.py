"""``tiaojie triage``: what the classifier makes of a complaint, and its upkeep.

``tiaojie triage TEXT`` works offline with the model versioned in the repository (or
the promoted one in the local database); ``train``, ``evaluate``, ``versions`` and
``rollback`` manage the model.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()

VERBS = ("train", "evaluate", "versions", "rollback")


def triage_command(
    words: list[str] = typer.Argument(
        ...,
        metavar="TEXT | train | evaluate | versions | rollback",
        help="投诉内容，或维护命令之一 The complaint's text, or one of the upkeep verbs.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="输出一个 JSON 对象（最后一行） Print one JSON object (last line)."
    ),
    people: int = typer.Option(1, "--people", min=1, help="涉及人数 People affected"),
) -> None:
    """分拣一条诉求：类别、紧急程度、置信度、前三类别、风险等级及理由。

    Classify a complaint: category, priority, confidence, top three, risk, reasons.

    \b
    tiaojie triage "楼上天天半夜蹦跶，闹心死了"
    tiaojie triage --json "工友说再不发工资就去区政府门口拉横幅"
    tiaojie triage train      retrain the shipped model from the corpus (make model)
    tiaojie triage evaluate   figures and confusion matrix (make model-report)
    tiaojie triage versions   model versions in the database
    tiaojie triage rollback   make the previous model version the active one
    """
    if words and words[0] in VERBS and len(words) == 1:
        {"train": _train, "evaluate": _evaluate, "versions": _versions, "rollback": _rollback}[
            words[0]
        ]()
        return
    text = " ".join(words).strip()
    if len(text) < 2:
        raise typer.BadParameter("text too short 文本太短", param_hint="TEXT")
    from models.assessment import assess

    found = assess(text, people_affected=people, model=_active_model()).as_json()
    if as_json:
        print(json.dumps(found, ensure_ascii=False))
        return
    _show(found)


def _active_model() -> Any:
    """The model promoted in the local database, if it is reachable; else the shipped."""
    try:
        from models.db import get_engine, read_session
        from models.triage_learning import active_model

        with read_session(get_engine()) as session:
            return active_model(session)
    except Exception:  # no database here: the shipped model is the answer
        return None


def _show(found: dict[str, Any]) -> None:
    console.print(
        f"类别 category: [bold]{found['category_zh']} {found['category']}[/] "
        f"(置信度 confidence {found['confidence']:.0%})"
    )
    console.print(f"紧急程度 priority: [bold]{found['priority_zh']} {found['priority']}[/]")
    console.print(f"风险 risk: {found['risk_zh']} {found['risk']}")
    table = Table("类别 category", "概率 probability")
    for row in found["top"]:
        table.add_row(f"{row['zh']} {row['category']}", f"{row['probability']:.1%}")
    console.print(table)
    for reason in found["reasons"]:
        console.print(f"· {reason}")


def _train() -> None:
    from models.classifier import MODEL_FILE
    from models.classifier_train import describe, load_corpus, train_from_corpus
    from models.triage import keyword_category

    console.print("训练中 training on the corpus ...")
    model = train_from_corpus()
    MODEL_FILE.write_bytes(model.to_bytes())
    console.print(f"[green]✓[/] wrote {MODEL_FILE.name} ({MODEL_FILE.stat().st_size:,} bytes)")
    print(describe(model, load_corpus(), rules=keyword_category))


def _evaluate() -> None:
    from models.classifier import shipped_model
    from models.classifier_train import describe, load_corpus
    from models.triage import keyword_category

    print(describe(shipped_model(), load_corpus(), rules=keyword_category))


def _versions() -> None:
    from models.db import get_engine, read_session
    from models.triage_learning import list_versions

    with read_session(get_engine()) as session:
        rows = list_versions(session)
    table = Table("version", "active", "accuracy", "emergency recall", "corrections", "promoted")
    for v in rows:
        table.add_row(
            v.name,
            "✓" if v.active else "",
            f"{v.accuracy:.1%}",
            f"{v.emergency_recall:.1%}",
            str(v.corrections),
            v.promoted_at.isoformat(timespec="minutes") if v.promoted_at else "-",
        )
    console.print(table)


def _rollback() -> None:
    from models.db import get_engine, write_session
    from models.triage_learning import rollback

    with write_session(get_engine()) as session:
        now_active = rollback(session)
    console.print(f"[green]✓[/] active model 当前模型: {now_active}")
