"""Staff REST: ``POST /api/v1/triage`` — what the classifier makes of a text.

Category, priority, confidence, the top three categories, the early-warning level and
the reasons; the same codes as cases use. Nothing is stored. The intake form calls it
as the worker types to suggest a category.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import DBRead, Staff
from models.assessment import assess_with
from models.triage_learning import active_model

router = APIRouter(prefix="/triage", tags=["triage 分拣"])


class TriageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=2, max_length=4000, description="the complaint 诉求内容")
    people_affected: int = Field(default=1, ge=1, le=100000)

    @field_validator("text")
    @classmethod
    def _clean(cls, value: str) -> str:
        value = value.strip()
        if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value):
            raise ValueError("文本含有控制字符 / text contains control characters")
        if len(value) < 2:
            raise ValueError("文本太短 / text too short")
        return value


class TopCategory(BaseModel):
    category: str
    zh: str
    probability: float


class TriageOut(BaseModel):
    category: str
    category_zh: str
    priority: str
    priority_zh: str
    confidence: float
    top: list[TopCategory]
    risk: str
    risk_zh: str
    danger: list[str]
    unrest: list[str]
    reasons: list[str]
    model_version: str


@router.post("", response_model=TriageOut, summary="分拣建议 Classify a text (nothing stored)")
def triage_text(body: TriageIn, principal: Staff, session: DBRead) -> dict[str, Any]:
    model = active_model(session)
    return assess_with(model, body.text, people_affected=body.people_affected).as_json()
