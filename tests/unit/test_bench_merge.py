"""``python -m bench --only X --merge``: the sections not measured stay as they were, with
where they were measured, and the file keeps its order."""

from __future__ import annotations

from bench.__main__ import merge_previous


def test_a_merge_keeps_the_other_sections_their_origin_and_the_files_order() -> None:
    previous = {
        "commit": "aaa",
        "when": "2026-11-30T21:59:46+00:00",
        "load_average_at_start": [0.8, 0.9, 1.6],
        "note": "quick run: tiaojie up started during the intake benchmark",
        "intake_api": {"p95_ms": 12.0},
        "simulate": {"cases_per_s": 25.0},
        "total_s": 300.0,
    }
    results = {
        "commit": "bbb",
        "when": "2026-12-01T02:46:56+00:00",
        "load_average_at_start": [0.9, 1.1, 2.2],
        "simulate": {"cases_per_s": 30.0},
        "memory": {"error": "end-to-end run did not run"},
        "total_s": 40.0,
    }
    merged = merge_previous(results, previous, ["simulate"])
    assert merged["simulate"] == {"cases_per_s": 30.0}
    assert merged["intake_api"] == {"p95_ms": 12.0}
    origin = merged["sections_from"]["intake_api"]
    assert origin["commit"] == "aaa" and origin["note"] == previous["note"]
    assert "simulate" not in merged["sections_from"]
    assert [k for k in merged if k in previous] == [k for k in previous if k in merged]
    again = merge_previous(dict(merged), merged, ["simulate"])
    assert again["sections_from"]["intake_api"]["commit"] == "aaa"  # carried, not re-dated
