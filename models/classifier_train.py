"""Training and evaluation of the triage classifier (scikit-learn; run time needs only
``models.classifier``).

Training is deterministic: the corpus is read in file order, the solver is
``lbfgs`` with a fixed ``random_state``, and the output JSON is rounded and gzipped
without a timestamp, so the same corpus gives the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.classifier import (
    DATA_DIR,
    Block,
    LinearModel,
    TextModel,
    char_ngrams,
    words,
)

SEED = 14
CORPUS_FILE = DATA_DIR / "corpus.jsonl"
# Complaints written apart from the corpus, in other styles (long formal notes, English
# words mixed in, retirees, pets, shops); never used for training.
STYLE_FILE = DATA_DIR / "style_check.jsonl"
CATEGORIES = (
    "relocation",
    "labour",
    "environment",
    "neighbour",
    "property",
    "family",
    "tenancy",
    "other",
)
PRIORITIES = ("emergency", "high", "normal", "consultation")


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    priority: str = "normal"
    split: str = "train"
    danger: bool = False
    unrest: bool = False
    template: str = ""


def load_corpus(path: Path = CORPUS_FILE) -> list[Example]:
    out: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                out.append(
                    Example(
                        text=d["text"],
                        category=d["category"],
                        priority=d.get("priority", "normal"),
                        split=d.get("split", "train"),
                        danger=bool(d.get("danger")),
                        unrest=bool(d.get("unrest")),
                        template=str(d.get("template", "")),
                    )
                )
    return out


def split(examples: Iterable[Example], name: str) -> list[Example]:
    return [e for e in examples if e.split == name]


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood on held data."""
    best_t, best_nll = 1.0, math.inf
    for t in np.linspace(0.2, 3.0, 29):
        z = scores / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -float(logp[np.arange(len(labels)), labels].mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def train(
    train_set: Sequence[Example],
    valid_set: Sequence[Example] = (),
    *,
    c: float = 16.0,
    max_char_features: int = 20000,
    meta: dict[str, Any] | None = None,
) -> TextModel:
    """Fit the category and priority models on ``train_set``; calibrate their
    temperature on ``valid_set`` (when given)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    word_vec = TfidfVectorizer(
        analyzer=_identity, sublinear_tf=True, min_df=2, lowercase=False, dtype=np.float64
    )
    char_vec = TfidfVectorizer(
        analyzer=_identity,
        sublinear_tf=True,
        min_df=2,
        max_features=max_char_features,
        lowercase=False,
        dtype=np.float64,
    )
    texts = [e.text for e in train_set]
    x = hstack(
        [
            word_vec.fit_transform([words(t) for t in texts]),
            char_vec.fit_transform([char_ngrams(t) for t in texts]),
        ]
    ).tocsr()
    word_block = Block(
        {str(k): int(v) for k, v in word_vec.vocabulary_.items()}, np.asarray(word_vec.idf_)
    )
    char_block = Block(
        {str(k): int(v) for k, v in char_vec.vocabulary_.items()}, np.asarray(char_vec.idf_)
    )
    # Calibration folds keep each template on one side, so the temperature is fitted on
    # phrasings the fold's model has not seen (as new complaints will be).
    groups = np.array([e.template or str(i) for i, e in enumerate(train_set)])

    models: list[LinearModel] = []
    for classes, labels in (
        (CATEGORIES, [e.category for e in train_set]),
        (PRIORITIES, [e.priority for e in train_set]),
    ):
        present = [k for k in classes if k in labels]
        y = np.array([present.index(label) for label in labels])
        clf = _classifier(c).fit(x, y)
        lin = LinearModel(list(present), clf.coef_.T.copy(), clf.intercept_.copy())
        lin.temperature = _cross_temperature(x, y, groups, c)
        models.append(lin)
    info = {
        "seed": SEED,
        "c": c,
        "train_size": len(train_set),
        "features": len(word_block.vocab) + len(char_block.vocab),
        **(meta or {}),
    }
    return TextModel(word_block, char_block, models[0], models[1], info)


def _classifier(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, solver="saga", max_iter=2000, tol=1e-3, random_state=SEED)


def _cross_temperature(x: Any, y: np.ndarray, groups: np.ndarray, c: float) -> float:
    """Temperature fitted on out-of-fold scores (3 folds grouped by template)."""
    from sklearn.model_selection import GroupKFold

    if len(set(groups)) < 3 or len(set(y.tolist())) < 2:
        return 1.0
    scores = np.zeros((len(y), len(set(y.tolist()))))
    for fit_idx, held_idx in GroupKFold(n_splits=3).split(x, y, groups):
        if len(set(y[fit_idx].tolist())) != scores.shape[1]:
            return 1.0
        clf = _classifier(c).fit(x[fit_idx], y[fit_idx])
        scores[held_idx] = clf.decision_function(x[held_idx])
    return _fit_temperature(scores, y)


# --- evaluation -----------------------------------------------------------------------


def _share(part: int, whole: int, *, none: float = 0.0) -> float:
    """``part / whole``; ``none`` when there was nothing to count."""
    return part / whole if whole else none


@dataclass
class Report:
    """What a model gets right on a set of examples."""

    total: int = 0
    correct: int = 0
    labels: list[str] = field(default_factory=lambda: list(CATEGORIES))
    confusion: list[list[int]] = field(default_factory=list)
    emergencies: int = 0
    emergencies_found: int = 0
    others: int = 0
    others_flagged: int = 0
    rules_correct: int = 0

    @property
    def accuracy(self) -> float:
        return _share(self.correct, self.total)

    @property
    def rules_accuracy(self) -> float:
        return _share(self.rules_correct, self.total)

    @property
    def emergency_recall(self) -> float:
        return _share(self.emergencies_found, self.emergencies, none=1.0)

    @property
    def false_emergency_rate(self) -> float:
        return _share(self.others_flagged, self.others)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "accuracy": round(self.accuracy, 4),
            "rules_accuracy": round(self.rules_accuracy, 4),
            "emergency_recall": round(self.emergency_recall, 4),
            "false_emergency_rate": round(self.false_emergency_rate, 4),
            "emergencies": self.emergencies,
            "labels": self.labels,
            "confusion": self.confusion,
        }

    def table(self) -> str:
        """The confusion matrix as a Markdown table (rows: true, columns: predicted)."""
        head = "| true \\ predicted | " + " | ".join(self.labels) + " |"
        rule = "|---|" + "---:|" * len(self.labels)
        rows = [
            f"| {label} | " + " | ".join(str(n) for n in row) + " |"
            for label, row in zip(self.labels, self.confusion, strict=True)
        ]
        return "\n".join([head, rule, *rows])


# The old keyword rules as a function of the text (their category code). Passed in by the
# caller: the rules live in models.triage, which imports the learning side of triage, so
# importing them here would close an import circle.
KeywordRules = Callable[[str], str]


def evaluate(
    model: TextModel, examples: Sequence[Example], *, rules: KeywordRules | None = None
) -> Report:
    """Category accuracy and confusion, emergency recall and false flags, and (when
    ``rules`` is given) the old keyword rules' accuracy on the same examples."""
    from models.assessment import assess_with

    report = Report()
    index = {c: i for i, c in enumerate(report.labels)}
    report.confusion = [[0] * len(index) for _ in index]
    for e in examples:
        found = assess_with(model, e.text)
        report.total += 1
        report.correct += found.category == e.category
        report.confusion[index[e.category]][index[found.category]] += 1
        if e.priority == "emergency":
            report.emergencies += 1
            report.emergencies_found += found.priority == "emergency"
        else:
            report.others += 1
            report.others_flagged += found.priority == "emergency"
        if rules is not None:
            report.rules_correct += rules(e.text) == e.category
    return report


def train_from_corpus(path: Path = CORPUS_FILE, *, version: str = "shipped") -> TextModel:
    """The repository's model: trained on the corpus's ``train`` split, calibrated by
    grouped cross-validation."""
    examples = load_corpus(path)
    return train(split(examples, "train"), meta={"version": version})


def describe(
    model: TextModel, examples: Sequence[Example], *, rules: KeywordRules | None = None
) -> str:
    """The figures and the confusion matrix of ``model`` on the corpus's valid and test
    splits, as Markdown (what the README shows)."""
    lines: list[str] = []
    for name in ("valid", "test"):
        rep = evaluate(model, split(examples, name), rules=rules)
        lines += [
            f"**{name}** ({rep.total} complaints): category accuracy {rep.accuracy:.1%} "
            f"(keyword rules {rep.rules_accuracy:.1%}); emergency recall "
            f"{rep.emergency_recall:.1%} of {rep.emergencies}; non-emergencies flagged "
            f"{rep.false_emergency_rate:.1%}",
            "",
        ]
    test_table = rep.table()
    if STYLE_FILE.exists():
        style = evaluate(model, load_corpus(STYLE_FILE), rules=rules)
        lines += [
            f"**style check** ({style.total} complaints written apart, in other styles): "
            f"category accuracy {style.accuracy:.1%} (keyword rules {style.rules_accuracy:.1%}); "
            f"emergency recall {style.emergency_recall:.1%} of {style.emergencies}; "
            f"non-emergencies flagged {style.false_emergency_rate:.1%}",
            "",
        ]
    lines += ["Confusion matrix, test split:", "", test_table]
    return "\n".join(lines)


def sample(examples: Sequence[Example], per_category: int) -> list[Example]:
    """The first ``per_category`` examples of each category in each split (a small,
    deterministic corpus for quick retraining in tests and trials)."""
    seen: dict[tuple[str, str], int] = {}
    out: list[Example] = []
    for e in examples:
        key = (e.split, e.category)
        if seen.get(key, 0) < per_category:
            seen[key] = seen.get(key, 0) + 1
            out.append(e)
    return out
