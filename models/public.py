"""How a stored row is shown to staff: the public model's fields copied from the row by
name, so a column added to both is shown without a second list to keep in step, and
free text masked unless the reader may see personal data."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel import SQLModel

from models import pii

P = TypeVar("P", bound=SQLModel)


def public_of(
    model: type[P],
    row: SQLModel,
    *,
    masked: tuple[str, ...] = (),
    reveal: bool = True,
    **derived: Any,
) -> P:
    """``row`` as ``model``: every field of the same name copied from the row; the free
    text fields named in ``masked`` with phone and ID numbers masked
    (:func:`models.pii.scrub_text`) unless ``reveal``; ``derived`` gives what the row
    does not hold itself (labels, names joined from other tables)."""
    values: dict[str, Any] = {}
    if not reveal:
        for name in masked:
            text = getattr(row, name)
            values[name] = None if text is None else pii.scrub_text(text)
    values.update(derived)
    return model.model_validate(row, update=values)
