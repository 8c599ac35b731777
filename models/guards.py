"""Checks of what a person typed, shared by the case services (mediation, return
visits, settling, withdrawing): each raises :class:`~models.errors.ValidationError` with
the field's message in both languages before anything is written, and free text bound
for an event is masked here.
"""

from __future__ import annotations

from datetime import timedelta

from models import pii
from models import text as text_rules
from models.errors import FieldProblem, ValidationError

EVENT_TEXT_MAX = 500
# A moment typed by a person may be a little ahead of the server's clock.
CLOCK_TOLERANCE = timedelta(minutes=10)


def invalid(field: str, en: str, zh: str) -> ValidationError:
    """The error for one field, with its message in both languages."""
    return ValidationError(
        f"{field}: {en}", f"{field}：{zh}", problems=[FieldProblem(field, zh, en)]
    )


def required_text(value: str | None, field: str, zh_name: str, *, max_length: int) -> str:
    """``value`` as the one text rule cleans it (:func:`models.text.check`); refused
    when unsafe, empty or longer than ``max_length``."""
    try:
        text = text_rules.check(value or "")
    except text_rules.UnsafeText as exc:
        zh, _, en = str(exc).partition(" / ")
        raise invalid(field, en or zh, zh) from None
    if not text:
        raise invalid(field, "must not be empty", f"请填写{zh_name}")
    if len(text) > max_length:
        raise invalid(
            field, f"at most {max_length} characters", f"{zh_name}不能超过 {max_length} 字"
        )
    return text


def event_text(text: str) -> str:
    """Free text as it may appear in an event: phones and ID numbers masked, bounded
    (events travel to the orchestration layer)."""
    return pii.scrub_text(text)[:EVENT_TEXT_MAX]


def masked_text(value: str | None, *, limit: int = EVENT_TEXT_MAX) -> str | None:
    """Free text as a case service keeps it (reasons, notes): trimmed, phone and ID
    numbers masked (:func:`models.pii.scrub_text`), at most ``limit`` characters; None
    when nothing is left."""
    return pii.scrub_text((value or "").strip())[:limit] or None


def required_masked_text(
    value: str | None, field: str, zh_name: str, *, limit: int = EVENT_TEXT_MAX
) -> str:
    """:func:`masked_text` that must not be empty: else ``<field>: required`` /
    ``<field>：请填写<zh_name>``."""
    text = masked_text(value, limit=limit)
    if text is None:
        raise ValidationError(f"{field}: required", f"{field}：请填写{zh_name}")
    return text
