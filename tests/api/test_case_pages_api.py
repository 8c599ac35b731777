"""The REST case list pages by keyset (``after`` = the page's ``next_cursor``, ``next``
its link), as the web list and the exports do; numbered pages still answer."""

from __future__ import annotations

from datetime import timedelta

from models import clock
from models.db import write_session
from tests.api.conftest import Api
from tests.factories import make_case


def _add(api: Api, count: int, *, days_ago: int = 10, **overrides: str) -> None:
    start = clock.now() - timedelta(days=days_ago)
    with write_session(api.engine) as session:
        for i in range(count):
            make_case(session, place_code="BA1", at=start + timedelta(minutes=i), **overrides)


def _follow(worker: object, first: str) -> tuple[list[int], list[dict[str, object]]]:
    """Every page from ``first`` on, through the ``next`` links."""
    ids: list[int] = []
    pages: list[dict[str, object]] = []
    url: str | None = first
    while url is not None:
        answer = worker.get(url)  # type: ignore[attr-defined]
        assert answer.status_code == 200, answer.text[:300]
        body = answer.json()
        pages.append(body)
        ids += [c["id"] for c in body["items"]]
        url = body["next"]
        assert (url is None) == (body["next_cursor"] is None)
    return ids, pages


def test_next_links_walk_every_case_once_newest_first(api: Api) -> None:
    _add(api, 7)
    worker = api.as_("workerA")
    everything = worker.get("/api/v1/cases", params={"page_size": 100}).json()
    assert everything["total"] == 7 and everything["next"] is None
    ids, pages = _follow(worker, "/api/v1/cases?page_size=3")
    assert ids == [c["id"] for c in everything["items"]]
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert all(p["total"] == 7 and p["total_capped"] is False for p in pages)
    # The numbered pages (offset) still give the same rows, and a cursor to go on with.
    second = worker.get("/api/v1/cases", params={"page_size": 3, "page": 2}).json()
    assert [c["id"] for c in second["items"]] == ids[3:6] and second["page"] == 2
    third = worker.get("/api/v1/cases", params={"page_size": 3, "after": second["next_cursor"]})
    assert [c["id"] for c in third.json()["items"]] == ids[6:]


def test_a_case_recorded_meanwhile_neither_repeats_nor_skips_a_row(api: Api) -> None:
    _add(api, 4)
    worker = api.as_("workerA")
    first = worker.get("/api/v1/cases", params={"page_size": 2}).json()
    _add(api, 1, days_ago=0)  # newer than every listed case: it would shift offset pages
    rest, _ = _follow(worker, first["next"])
    listed = [c["id"] for c in first["items"]] + rest
    assert len(listed) == len(set(listed)) == 4


def test_the_next_link_keeps_the_filters(api: Api) -> None:
    _add(api, 3, category="environment", description="工地夜间施工噪声扰民")
    _add(api, 3)
    worker = api.as_("workerA")
    first = worker.get("/api/v1/cases", params={"page_size": 2, "category": "environment"})
    assert "category=environment" in first.json()["next"]
    ids, _ = _follow(worker, first.json()["next"])
    assert len(ids) == 1
    noise, _ = _follow(worker, "/api/v1/cases?page_size=2&q=%E5%99%AA%E5%A3%B0")  # 噪声
    assert len(noise) == 3


def test_a_spoiled_cursor_starts_from_the_first_page(api: Api) -> None:
    _add(api, 2)
    worker = api.as_("workerA")
    answer = worker.get("/api/v1/cases", params={"after": "not-a-cursor"})
    assert answer.status_code == 200 and len(answer.json()["items"]) == 2
    assert worker.get("/api/v1/cases", params={"after": "x" * 201}).status_code == 422
