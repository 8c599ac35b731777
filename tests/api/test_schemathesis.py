"""Property-based requests generated from ``/openapi.json`` (schemathesis v4) against the
real app with an admin token: no 5xx, whatever the input. CI keeps the examples per
operation low; set ``TIAOJIE_SCHEMATHESIS_EXAMPLES`` for a longer run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.security import create_open311_key
from tests.api.conftest import Api, make_api

EXAMPLES = int(os.environ.get("TIAOJIE_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture
def fuzz_api() -> Iterator[Api]:
    # No rate limit here: the point is the answers, not the throttle.
    yield from make_api(open311_rate_limit_per_min=0)


def test_no_server_errors_anywhere(fuzz_api: Api) -> None:
    api = fuzz_api
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    # A few real cases so that ids in paths sometimes exist.
    worker = api.as_("workerA")
    for place in ("BA1", "CPA"):
        r = worker.post(
            "/api/v1/cases",
            json={"category": "neighbour", "description": "楼上噪声扰民", "place_code": place},
        )
        assert r.status_code == 201
    headers = api.headers("admin")
    open311_key = create_open311_key()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    seen: dict[int, int] = {}
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), use_key=st.booleans())
        def check(case: object, use_key: bool) -> None:
            body = getattr(case, "body", None)
            if use_key and isinstance(body, dict) and "api_key" in body:
                body["api_key"] = open311_key
            response = case.call(headers=headers)  # type: ignore[attr-defined]
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code}")  # type: ignore[attr-defined]
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500

        check()
    assert failures == []
    # The generated requests got past authentication and validation, not only refused.
    assert seen.get(200, 0) + seen.get(201, 0) > 0, seen
    assert sum(seen.values()) >= len(operations), seen
