"""The case page's action forms: an HTML form for each row of :data:`models.actions.ACTIONS`
and the reading of a posted form into the row's body model. The page translates; what
may be done, and the doing, are :mod:`models.actions`'.

A row needs nothing here: its form has one input per body field (:func:`fields_of`,
labelled with the field's ``title`` and ``description``) and is read back field by field
(:func:`read_form`). An action whose form differs from its body (a date and time typed in
Beijing time, the terms of an agreement) has a reader in :data:`READERS` and its own
markup in ``case.html``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Any

import pydantic
from pydantic.fields import FieldInfo

from models import clock
from models.actions import ACTIONS, Action
from models.errors import FieldProblem, ValidationError

PYDANTIC_ZH = {
    "missing": "必填",
    "string_too_short": "内容太短",
    "string_too_long": "内容太长",
    "int_parsing": "请填写整数",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "enum": "请选择有效的选项",
    "date_from_datetime_parsing": "日期格式不正确",
}
TRUE = frozenset({"1", "on", "true", "yes"})
NUMBER_FIELDS = ("version", "satisfaction", "party_ids", "assignee_id", "staff_ids")


@dataclass(frozen=True)
class FormField:
    """One input of a generated form."""

    name: str
    kind: str  # text | textarea | number | date | checkbox | select
    label_zh: str
    label_en: str
    required: bool
    max_length: int | None = None
    choices: tuple[StrEnum, ...] = ()


def _plain(annotation: Any) -> tuple[Any, bool]:
    """The type inside ``X | None``, and whether None was allowed."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return (inner[0] if len(inner) == 1 else str), True
    return annotation, False


def _max_length(info: FieldInfo) -> int | None:
    for meta in info.metadata:
        if hasattr(meta, "max_length"):
            value: int | None = meta.max_length
            return value
    return None


def _kind(kind: Any, max_length: int | None) -> str:
    if kind is bool:
        return "checkbox"
    if kind is date:
        return "date"
    if kind is int:
        return "number"
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return "select"
    return "textarea" if (max_length or 0) > 200 else "text"


def fields_of(action: Action) -> list[FormField]:
    """The inputs of ``action``'s generated form (every body field but ``version``)."""
    found: list[FormField] = []
    for name, info in action.body.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if name == "version" or extra.get("form") is False:
            continue
        kind, optional = _plain(info.annotation)
        max_length = _max_length(info)
        shape = _kind(kind, max_length)
        found.append(
            FormField(
                name=name,
                kind=shape,
                label_zh=info.title or name,
                label_en=info.description or name,
                required=bool(extra.get("form_required"))
                or (info.is_required() and shape != "checkbox" and not optional),
                max_length=max_length,
                choices=tuple(kind) if shape == "select" else (),
            )
        )
    return found


@cache
def all_fields() -> Mapping[str, tuple[FormField, ...]]:
    """:func:`fields_of` of every row of the action table, by verb. Worked out once: the
    table and its body models are fixed at import, and the case page worked them all
    out for every request (4% of its CPU)."""
    return MappingProxyType({a.verb: tuple(fields_of(a)) for a in ACTIONS.values()})


def _generic(form: Mapping[str, str], action: Action) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in fields_of(action):
        raw = form.get(field.name, "")
        if field.kind == "checkbox":
            data[field.name] = raw.strip().lower() in TRUE
        elif field.kind == "number":
            data[field.name] = _number(raw, field.name)
        elif raw.strip():
            data[field.name] = raw.strip() if field.kind != "textarea" else raw
    return data


def local_datetime(value: str, field: str) -> datetime:
    """A ``datetime-local`` value typed in Beijing time, as aware UTC. Blank, or the
    current minute, means now (the form's precision is one minute)."""
    now = clock.now()
    if not value.strip():
        return now
    try:
        moment = clock.within_years(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise ValidationError(
            f"{field}: not a date and time",
            f"{field}：日期时间格式不正确",
            problems=[FieldProblem(field, "日期时间格式不正确", "not a date and time")],
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.SHANGHAI)
    moment = moment.astimezone(UTC)
    if moment <= now < moment + timedelta(minutes=1):
        return now
    return moment


def _not_a_number(field: str) -> ValidationError:
    return ValidationError(
        f"{field}: must be a number",
        f"{field}：应为数字",
        problems=[FieldProblem(field, "应为数字", "must be a number")],
    )


def _number(text: str, field: str) -> int | None:
    """A plain ASCII number typed into a form ("" is None; ``abc`` or ``²`` is a 422)."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise _not_a_number(field)
    return int(text)


def _consent(form: Mapping[str, str], _action: Action) -> dict[str, Any]:
    ids = [_number(x, "party_ids") for x in form.get("party_ids", "").split(",") if x.strip()]
    return {"party_ids": ids or None}


def _session(form: Mapping[str, str], _action: Action) -> dict[str, Any]:
    return {
        "held_at": local_datetime(form.get("held_at", ""), "held_at"),
        "place": form.get("place", ""),
        "participants": form.get("participants", ""),
        "minutes": form.get("minutes", ""),
    }


def _agreement(form: Mapping[str, str], _action: Action) -> dict[str, Any]:
    terms = []
    for i in (1, 2, 3):
        text = form.get(f"term_{i}", "").strip()
        due = form.get(f"term_{i}_due", "").strip()
        if text or due:
            terms.append({"text": text, "due_on": due})
    return {"summary": form.get("summary", ""), "signed_at": None, "terms": terms}


def _contact(form: Mapping[str, str], _action: Action) -> dict[str, Any]:
    at = form.get("at", "").strip()
    return {
        "method": form.get("method") or None,
        "at": local_datetime(at, "at") if at else None,
        "note": form.get("note", "").strip() or None,
    }


def _acceptance(form: Mapping[str, str], _action: Action) -> dict[str, Any]:
    accepted = form.get("decision") != "not_accepted"
    return {
        "accepted": accepted,
        "reason": None if accepted else form.get("not_accepted_reason") or None,
        "route": None if accepted else form.get("route") or None,
        "note": form.get("note", ""),
    }


def _mediators(form: Mapping[str, str], _action: Action) -> dict[str, Any]:
    return {
        "staff_ids": [
            _number(x, "staff_ids") for x in form.get("staff_ids", "").split(",") if x.strip()
        ]
    }


Reader = Callable[[Mapping[str, str], Action], dict[str, Any]]
READERS: dict[str, Reader] = {
    "consent": _consent,
    "sessions": _session,
    "agreement": _agreement,
    "contact": _contact,
    "acceptance": _acceptance,
    "mediators": _mediators,
}


def _field_name(loc: tuple[int | str, ...]) -> str:
    # "terms.0.due_on" is the first term's date input, term_1_due.
    if len(loc) >= 3 and loc[0] == "terms" and isinstance(loc[1], int):
        return f"term_{loc[1] + 1}_due" if loc[2] == "due_on" else f"term_{loc[1] + 1}"
    return ".".join(str(p) for p in loc) or "form"


def read_form(action: Action, form: Mapping[str, str]) -> Any:
    """The posted form as ``action``'s body, or a :class:`ValidationError` naming the
    inputs that are wrong."""
    for name in NUMBER_FIELDS:  # whichever form they come with: never a 500, never ignored
        for part in form.get(name, "").split(","):
            _number(part, name)
    data = READERS.get(action.name, _generic)(form, action)
    data["version"] = _number(form.get("version", ""), "version")
    return validated(action.body, data)


def validated(model: type[pydantic.BaseModel], data: Mapping[str, Any]) -> Any:
    """``data`` parsed by ``model``, or a :class:`ValidationError` (422) naming the inputs."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            FieldProblem(
                _field_name(tuple(e["loc"])),
                PYDANTIC_ZH.get(e["type"], "输入有误"),
                str(e.get("msg", "")).removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
        raise ValidationError("the form has errors", "表单有误", problems=problems) from None
