"""Full-text search of the cases' words (models.case_text): a Chinese word finds its
case, a phone number typed into a description finds nothing, and the words follow the
description when it changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from models.case import Case
from models.case_search import CaseFilter, search
from models.case_text import CaseSearch, query_words, terms_of
from tests.factories import build_city, make_case

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _find(session: Session, query: str) -> list[str]:
    page = search(session, CaseFilter(text=query), reach=None, now=NOW)
    return [c.number for c in page.cases]


def test_a_chinese_word_finds_its_case_and_a_phone_number_finds_nothing(
    session: Session,
) -> None:
    build_city(session)
    noisy = make_case(session, description="小区旁工地夜间施工噪音扰民，联系电话13800138000")
    wages = make_case(session, description="电子厂拖欠工人两个月工资，工人要求尽快结清")
    session.commit()
    assert _find(session, "噪音") == [noisy.number]
    assert _find(session, "拖欠工资") == [wages.number]  # every word must be there
    assert _find(session, "施工 噪音") == [noisy.number]
    assert _find(session, "漏水") == []
    assert _find(session, "13800138000") == []
    assert _find(session, "0138") == []
    stored = session.get(CaseSearch, noisy.id)
    assert stored is not None and "13800138000" not in stored.terms
    assert _find(session, wages.number) == [wages.number]  # a case number still works


def test_the_words_follow_the_description(session: Session) -> None:
    build_city(session)
    case = make_case(session, description="楼上住户漏水导致天花板损坏")
    session.commit()
    assert _find(session, "漏水") == [case.number]
    stored = session.exec(select(Case).where(Case.id == case.id)).one()
    stored.description = "饭店油烟直排，影响周边住户"
    session.add(stored)
    session.commit()
    assert _find(session, "漏水") == []
    assert _find(session, "油烟") == [case.number]


def test_words_are_cut_as_the_index_holds_them() -> None:
    assert "噪音" in terms_of("施工噪音扰民").split()
    assert query_words("  ") == []
    assert query_words('噪音"扰民') == [("噪音",), ("扰民",)]
    assert query_words("拖欠工资") == [("拖欠工资", "拖欠", "工资")]


def test_a_common_word_is_matched_in_list_order_and_counted_to_a_cap(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import case_search

    build_city(session)
    made = [make_case(session, description=f"施工噪音扰民，第{i}次反映") for i in range(3)]
    make_case(session, description="楼上漏水")
    session.commit()
    newest_first = [c.number for c in reversed(made)]
    assert _find(session, "噪音") == newest_first
    monkeypatch.setattr(case_search, "SCAN_ABOVE", 1)  # "噪音" is now a common word
    monkeypatch.setattr(case_search, "WORDS_COUNT_CAP", 2)
    page = search(session, CaseFilter(text="噪音"), reach=None, now=NOW)
    assert [c.number for c in page.cases] == newest_first
    assert (page.total, page.capped) == (2, True)


def test_a_common_word_finds_the_same_cases_whatever_the_reach_holds(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However the page reads them (newest first, matches first, or not at all when the
    reach holds none), the reader gets their matching cases newest first."""
    from sqlmodel import col

    from models import case_search

    build_city(session)
    made = [make_case(session, description=f"施工噪音扰民，第{i}次反映") for i in range(5)]
    other = make_case(session, description="楼上漏水")
    session.commit()
    monkeypatch.setattr(case_search, "SCAN_ABOVE", 1)  # "噪音" is a common word
    mine = col(Case.id).in_([made[1].id, made[3].id, other.id])
    for limit in (1, 50):  # more matches than the page shows, and fewer
        page = search(session, CaseFilter(text="噪音"), reach=mine, now=NOW, limit=limit)
        assert [c.number for c in page.cases] == [made[3].number, made[1].number][:limit]
        assert page.total == 2
    nothing = search(session, CaseFilter(text="噪音"), reach=col(Case.id) == other.id, now=NOW)
    assert (nothing.cases, nothing.total, nothing.next_cursor) == ([], 0, None)
