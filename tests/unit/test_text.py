"""Finding 7 (odds and ends) and the artifact half of finding 5: one text rule for every
model, and Markdown artifacts that cannot be turned into links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markdown_it import MarkdownIt
from pydantic import ValidationError as SchemaError

from flows.reports import rates_markdown
from models.case import CaseCreate
from models.follow_up import FollowUpRecord
from models.mediation import SessionCreate
from models.party import PartyCreate
from models.text import markdown_escape

SNEAKY = [
    "房东\u202e金租退不\u202c押金",  # right-to-left override
    "电话\u200b138\u200b0013\u200b8000",  # zero-width spaces hide a number from masking
    "\u2066隔离\u2069",  # bidi isolate
    "见\ufeff附件",  # byte-order mark inside
    "NUL\x00here",
]


@pytest.mark.parametrize("text", SNEAKY)
def test_invisible_and_reordering_characters_are_refused_everywhere(text: str) -> None:
    with pytest.raises(SchemaError, match="U\\+"):
        CaseCreate(category="labour", description=text)  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="U\\+"):
        CaseCreate(category="labour", description="正常描述", address_text=text)  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="U\\+"):
        SessionCreate(held_at=datetime.now(UTC), place="调解室", participants="双方", minutes=text)
    with pytest.raises(SchemaError, match="U\\+"):
        FollowUpRecord(outcome="resolved", notes=text)  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="U\\+"):
        PartyCreate(side="complainant", name=text)  # type: ignore[arg-type]


def test_nul_in_a_party_address_is_refused_and_line_breaks_only_in_multiline_text() -> None:
    with pytest.raises(SchemaError, match="U\\+0000"):
        PartyCreate(side="complainant", name="王小明", address="桂花路\x001号")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="U\\+000A"):
        PartyCreate(side="complainant", name="王小明", address="桂花路\n1号")  # type: ignore[arg-type]
    ok = CaseCreate(category="labour", description="第一行\n第二行\t制表")  # type: ignore[arg-type]
    assert ok.description == "第一行\n第二行\t制表"


@pytest.mark.parametrize("lat", [1e308, -1e308, 90.5, float("nan"), float("inf")])
def test_coordinates_are_range_checked(lat: float) -> None:
    with pytest.raises(SchemaError):
        CaseCreate(category="labour", description="噪音扰民", lat=lat, lon=120.1)  # type: ignore[arg-type]


def render(markdown: str) -> str:
    """A permissive renderer (raw HTML on, every link scheme allowed): what an escaped
    text must survive whatever the UI's renderer filters by itself."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.validateLink = lambda _url: True  # type: ignore[method-assign]
    return md.render(markdown)


ATTACKS = [
    "[点此查看](javascript:alert(document.cookie))",
    "<javascript:alert(1)>",
    "<a href='javascript:alert(1)'>x</a>",
    "![x](javascript:alert(1))",
    "[x]: javascript:alert(1)\n[x]",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_markdown_escape_never_makes_a_link_or_html(attack: str) -> None:
    html = render(markdown_escape(attack))
    assert "<a" not in html and "<img" not in html and "<script" not in html
    assert "<a" in render(attack) or "<img" in render(attack)  # the attack is real


def test_the_ranking_artifact_escapes_unit_names() -> None:
    rows = [{"rank": 1, "unit_name": ATTACKS[0], "unit_code": "CMA", "cases": 3}]
    markdown = rates_markdown(rows, month="2026-11")
    html = render(markdown)
    assert "<table>" in html and "<a " not in html
