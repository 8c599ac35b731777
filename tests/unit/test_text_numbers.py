"""Numbers typed into any of a case's free text leave the text on every write."""

from __future__ import annotations

from sqlmodel import Session, select

from models import pii, text_numbers
from models.case import Case
from models.tables import metadata
from tests.factories import build_city, make_case

PHONE = "13800138000"


def test_every_long_text_column_of_a_case_is_protected() -> None:
    """A new table with a case's free text cannot slip past the flush hook."""
    missed = []
    for table in metadata.sorted_tables:
        if "case_id" not in table.c and table.name != "cases":
            continue
        for column in table.columns:
            long_text = "VARCHAR" in str(column.type) and (column.type.length or 10**6) >= 300  # type: ignore[attr-defined]
            name = f"{table.name}.{column.name}"
            if not long_text or column.name.endswith("_enc") or name in text_numbers.NOT_FREE_TEXT:
                continue
            if column.name not in text_numbers.PROTECTED.get(table.name, ()):
                missed.append(name)
    assert missed == []


def test_an_edit_through_the_orm_is_masked_and_the_number_kept_encrypted(
    session: Session,
) -> None:
    build_city(session)
    case = make_case(session, description="楼上漏水，多次协商未果。")
    assert case.id is not None
    case.outcome_note = "已电话联系 1 3 8 0 0 1 3 8 0 0 0（幺三八零零幺三八零零零）"
    session.add(case)
    session.flush()
    session.expire_all()
    stored = session.exec(select(Case).where(Case.id == case.id)).one()
    assert stored.outcome_note == "已电话联系 138****8000（138****8000）"
    kept = text_numbers.numbers_of(session, case_id=case.id, reveal=True)
    assert [n["value"] for n in kept] == [PHONE, PHONE]
    assert {n["field"] for n in kept} == {"cases.outcome_note"}
    assert PHONE not in str(text_numbers.numbers_of(session, case_id=case.id, reveal=False))
    assert pii.find_numbers(stored.outcome_note or "") == []  # masks are stable
