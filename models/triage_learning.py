"""The classifier learns from people: corrections, retraining, promotion and rollback.

* :func:`record_correction` — a person set a category or priority other than the
  machine's (changed on a case, confirmed in assessment, chosen at intake).
* :func:`retrain_if_due` — with at least ``settings.triage_retrain_min_corrections``
  corrections since the last training, train on the corpus plus every correction,
  evaluate the new model and the active one on the validation split plus the
  corrections, and promote the new one only if it is not worse (accuracy not lower,
  emergency recall not lower). Every training is a :class:`TriageModelVersion` row with
  its metrics, promoted or not.
* :func:`rollback` — the previous promoted version (or the shipped model) becomes
  active again.
* :func:`active_model` — the model intake uses: the active version, else the model
  versioned in the repository.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, select

from models import clock, session_cache
from models.case import Case
from models.classifier import TextModel, shipped_model
from models.classifier_train import Example, Report, evaluate, load_corpus, split, train
from models.errors import NotFound
from models.settings import get_settings
from models.triage_tables import TriageCorrection, TriageModelVersion

CORRECTION_WEIGHT = 3  # a person's correction counts as this many corpus examples


def record_correction(
    session: Session,
    *,
    case_id: int,
    field: str,
    machine_value: str,
    chosen_value: str,
    source: str,
    staff_id: int | None,
) -> TriageCorrection | None:
    """Record that a person chose ``chosen_value`` where the machine said
    ``machine_value``; nothing when they agree."""
    if machine_value == chosen_value:
        return None
    row = TriageCorrection(
        case_id=case_id,
        field=field,
        machine_value=machine_value,
        chosen_value=chosen_value,
        source=source,
        staff_id=staff_id,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


# --- the active model -----------------------------------------------------------------

_lock = threading.Lock()
_loaded: dict[int, TextModel] = {}


def active_version(session: Session) -> TriageModelVersion | None:
    return session.exec(
        select(TriageModelVersion).where(col(TriageModelVersion.active)).limit(1)
    ).first()


def active_model(session: Session) -> TextModel:
    """The promoted model (decoded once per process and version), else the shipped."""
    version_id = session_cache.cached(
        session,
        "triage.active_model",
        (TriageModelVersion,),
        lambda: session.exec(
            select(TriageModelVersion.id).where(col(TriageModelVersion.active)).limit(1)
        ).first(),
    )
    if version_id is None:
        return shipped_model()
    with _lock:
        model = _loaded.get(version_id)
    if model is None:
        row = session.get(TriageModelVersion, version_id)
        assert row is not None
        model = TextModel.from_bytes(row.blob)
        with _lock:
            _loaded.clear()  # one promoted model at a time is enough to keep
            _loaded[version_id] = model
    return model


# --- retraining -----------------------------------------------------------------------


@dataclass(frozen=True)
class RetrainOutcome:
    version: TriageModelVersion | None  # None: not due
    new_corrections: int
    report: Report | None = None
    baseline: Report | None = None

    @property
    def promoted(self) -> bool:
        return self.version is not None and self.version.promoted


Trainer = Callable[[Sequence[Example]], TextModel]


def _default_trainer(examples: Sequence[Example]) -> TextModel:
    return train(examples)


def corrections_as_examples(session: Session, *, up_to_id: int) -> list[Example]:
    """One example per corrected case: its text with the latest chosen category and
    priority (a case corrected twice counts once, as last corrected)."""
    rows = session.exec(
        select(TriageCorrection, Case.description, Case.category, Case.priority)
        .join(Case, col(Case.id) == TriageCorrection.case_id)
        .where(col(TriageCorrection.id) <= up_to_id)
        .order_by(col(TriageCorrection.id))
    ).all()
    by_case: dict[int, Example] = {}
    for corr, text, category, priority in rows:
        ex = by_case.get(corr.case_id) or Example(
            text=text, category=str(category), priority=str(priority), split="correction"
        )
        if corr.field == "category":
            ex = Example(ex.text, corr.chosen_value, ex.priority, "correction")
        else:
            ex = Example(ex.text, ex.category, corr.chosen_value, "correction")
        by_case[corr.case_id] = ex
    return list(by_case.values())


def _last_trained_correction(session: Session) -> int:
    last = session.exec(select(func.max(TriageModelVersion.last_correction_id))).one()
    return int(last or 0)


def new_corrections(session: Session) -> tuple[int, int]:
    """(corrections since the last training, the id of the latest correction)."""
    since = _last_trained_correction(session)
    count, latest = session.exec(
        select(func.count(), func.max(TriageCorrection.id)).where(col(TriageCorrection.id) > since)
    ).one()
    return int(count or 0), int(latest or since)


def retrain_if_due(
    session: Session,
    *,
    min_new: int | None = None,
    corpus: Sequence[Example] | None = None,
    trainer: Trainer = _default_trainer,
) -> RetrainOutcome:
    """Train, evaluate and maybe promote a new model when enough corrections arrived.
    ``corpus`` (default: the repository's) gives the ``train`` and ``valid`` splits."""
    needed = get_settings().triage_retrain_min_corrections if min_new is None else min_new
    count, latest = new_corrections(session)
    if count < max(needed, 1):
        return RetrainOutcome(None, count)
    examples = list(corpus) if corpus is not None else load_corpus()
    corrected = corrections_as_examples(session, up_to_id=latest)
    training = split(examples, "train") + corrected * CORRECTION_WEIGHT
    held = split(examples, "valid") + corrected
    model = trainer(training)
    report = evaluate(model, held)
    baseline = evaluate(active_model(session), held)
    better = (
        report.accuracy >= baseline.accuracy
        and report.emergency_recall >= baseline.emergency_recall
    )
    now = clock.now()
    number = int(session.exec(select(func.count()).select_from(TriageModelVersion)).one()) + 1
    name = f"v{number}-{now:%Y%m%dT%H%M}"
    model.meta["version"] = name
    outcome = (
        f"promoted: accuracy {report.accuracy:.1%} >= {baseline.accuracy:.1%}"
        if better
        else f"not promoted: accuracy {report.accuracy:.1%} vs {baseline.accuracy:.1%}, "
        f"emergency recall {report.emergency_recall:.1%} vs {baseline.emergency_recall:.1%}"
    )
    version = TriageModelVersion(
        name=name,
        promoted=better,
        outcome=outcome,
        accuracy=report.accuracy,
        emergency_recall=report.emergency_recall,
        false_emergency_rate=report.false_emergency_rate,
        baseline_accuracy=baseline.accuracy,
        baseline_emergency_recall=baseline.emergency_recall,
        corrections=len(corrected),
        last_correction_id=latest,
        confusion={"labels": report.labels, "matrix": report.confusion},
        blob=model.to_bytes(),
        created_at=now,
    )
    session.add(version)
    session.flush()
    if better:
        _make_active(session, version)
    return RetrainOutcome(version, count, report, baseline)


def _make_active(session: Session, version: TriageModelVersion) -> None:
    now = clock.now()
    current = active_version(session)
    if current is not None and current.id != version.id:
        current.active = False
        current.retired_at = now
        session.add(current)
        session.flush()  # one active row at a time, also under the unique-ish index
    version.active = True
    version.promoted_at = version.promoted_at or now
    version.retired_at = None
    session.add(version)
    session.flush()


def rollback(session: Session) -> str:
    """Retire the active version; the promoted version before it (or the shipped model)
    becomes active. Returns the name of the model now active."""
    current = active_version(session)
    if current is None:
        raise NotFound(
            "no promoted model to roll back: the shipped model is active",
            "没有可回退的模型：当前使用的是随仓库发布的模型",
        )
    current.active = False
    current.retired_at = clock.now()
    session.add(current)
    session.flush()
    previous = session.exec(
        select(TriageModelVersion)
        .where(
            col(TriageModelVersion.promoted),
            col(TriageModelVersion.id) < current.id,
        )
        .order_by(col(TriageModelVersion.id).desc())
        .limit(1)
    ).first()
    if previous is None:
        return "shipped"
    previous.active = True
    session.add(previous)
    session.flush()
    return previous.name


def list_versions(session: Session) -> list[TriageModelVersion]:
    return list(session.exec(select(TriageModelVersion).order_by(col(TriageModelVersion.id))).all())


def version_summary(version: TriageModelVersion) -> dict[str, Any]:
    """What a flow run's artifact and the CLI show of a version (no model bytes)."""
    return {
        "name": version.name,
        "promoted": version.promoted,
        "outcome": version.outcome,
        "accuracy": round(version.accuracy, 4),
        "baseline_accuracy": round(version.baseline_accuracy, 4),
        "emergency_recall": round(version.emergency_recall, 4),
        "corrections": version.corrections,
    }
