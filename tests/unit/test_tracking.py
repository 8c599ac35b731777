"""The tracking code (查询码): unguessable, readable aloud, found by its keyed hash only."""

from __future__ import annotations

from sqlmodel import Session, select

from models import tracking
from models.case import Case
from tests.factories import build_city, make_case


def test_code_is_sixteen_crockford_characters_in_groups_of_four() -> None:
    code = tracking.code_for("JX-2026-000001")
    groups = code.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 4]
    assert set("".join(groups)) <= set(tracking.ALPHABET)
    assert len(tracking.ALPHABET) ** tracking.LENGTH == 2**80
    assert tracking.code_for("JX-2026-000002") != code
    assert tracking.code_for("JX-2026-000001") == code


def test_code_as_typed_by_a_resident_finds_the_same_hash() -> None:
    code = tracking.code_for("JX-2026-000001")
    typed = " " + code.lower().replace("-", " ").replace("0", "o").replace("1", "l") + " "
    assert tracking.normalise(typed) == code.replace("-", "")
    assert tracking.hash_of(typed) == tracking.hash_of(code)
    assert tracking.normalise("ABCD-EFGH") is None
    assert tracking.normalise("UUUU-UUUU-UUUU-UUUU") is None  # U is not in the alphabet


def test_every_case_keeps_the_hash_of_its_code_never_the_code(session: Session) -> None:
    build_city(session)
    case = make_case(session)
    code = tracking.code_for(case.number)
    assert case.tracking_hash == tracking.hash_of(code)
    found = session.exec(select(Case).where(Case.tracking_hash == tracking.hash_of(code))).one()
    assert found.id == case.id
    stored = " ".join(str(v) for v in found.model_dump().values())
    assert code not in stored and code.replace("-", "") not in stored
