"""What the machine makes of a complaint's text: category with calibrated confidence and
the top three, priority (danger rules plus the priority model), the early-warning level
and the reasons, in both languages. Used by intake triage, ``POST /api/v1/triage`` and
``tiaojie triage``; it stores nothing.

Priority: danger found by :func:`models.risk.danger` is an emergency; so is a text the
priority model gives at least ``EMERGENCY_P`` of emergency (it catches ways of saying
danger the rules do not list). Otherwise instability signals, many people or the model
make it ``high``; a question is a ``consultation``; the rest ``normal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models import risk
from models.classifier import TextModel, shipped_model
from models.enums import Category, Priority
from models.risk import Finding, WarningLevel
from models.settings import get_settings

EMERGENCY_P = 0.8  # the danger rules find most emergencies; the model adds other phrasings
HIGH_P = 0.5


@dataclass(frozen=True)
class Assessment:
    category: str
    priority: str
    confidence: float
    top: tuple[tuple[str, float], ...]
    risk: WarningLevel
    reasons: tuple[str, ...]
    danger: tuple[Finding, ...]
    unrest: tuple[Finding, ...]
    evidence: tuple[str, ...]
    model_version: str

    def as_json(self) -> dict[str, Any]:
        """The shape the API and ``tiaojie triage --json`` answer."""
        return {
            "category": self.category,
            "category_zh": Category(self.category).zh,
            "priority": self.priority,
            "priority_zh": Priority(self.priority).zh,
            "confidence": round(self.confidence, 3),
            "top": [
                {"category": c, "zh": Category(c).zh, "probability": round(p, 3)}
                for c, p in self.top
            ],
            "risk": self.risk.value,
            "risk_zh": self.risk.zh,
            "danger": [f.kind for f in self.danger],
            "unrest": [f.kind for f in self.unrest],
            "reasons": list(self.reasons),
            "model_version": self.model_version,
        }


def assess_with(model: TextModel, text: str, *, people_affected: int = 1) -> Assessment:
    cat_p, pri_p, evidence = model.predict(text)
    top = tuple(sorted(cat_p.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    category, confidence = top[0]
    danger = tuple(risk.danger(text))
    unrest = tuple(risk.unrest(text))
    people = max(people_affected, risk.people_mentioned(text))
    warning = risk.warning_level(list(unrest), people=people)
    reasons: list[str] = [f.reason() for f in danger]
    if danger:
        priority = Priority.EMERGENCY
    elif pri_p.get("emergency", 0.0) >= EMERGENCY_P:
        priority = Priority.EMERGENCY
        reasons.append(
            f"模型判断可能危及人身安全（{pri_p['emergency']:.0%}）"
            f" / the model reads danger ({pri_p['emergency']:.0%})"
        )
    elif (
        warning.level != risk.WarningLevel.NONE
        or people >= get_settings().group_case_threshold
        or pri_p.get("high", 0.0) >= HIGH_P
    ):
        priority = Priority.HIGH
    elif max(pri_p, key=lambda k: pri_p[k]) == "consultation":
        priority = Priority.CONSULTATION
    else:
        priority = Priority.NORMAL
    reasons.extend(warning.reasons)
    if evidence:
        reasons.append(
            f"分类依据：{'、'.join(evidence)} / words for {category}: {', '.join(evidence)}"
        )
    return Assessment(
        category=category,
        priority=priority.value,
        confidence=confidence,
        top=top,
        risk=warning.level,
        reasons=tuple(reasons),
        danger=danger,
        unrest=unrest,
        evidence=tuple(evidence),
        model_version=str(model.meta.get("version", "shipped")),
    )


def assess(text: str, *, people_affected: int = 1, model: TextModel | None = None) -> Assessment:
    """Assess with ``model``, else the model versioned in the repository."""
    return assess_with(model or shipped_model(), text, people_affected=people_affected)
