"""The nightly retention flow: a case that ended before the retention period loses its
personal data, a recent one keeps it, old sign-in attempts go, and the run's artifact
holds counts and dates only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import Engine
from sqlmodel import Session, select

from flows.retention import retention
from models.clock import VirtualClock
from models.db import write_session
from models.login import SignInAttempt
from models.settings import reset_settings
from tests.factories import PHONE, City
from tests.flows.conftest import LoopRunner
from tests.unit.test_retention import blobs, closed_case

pytestmark = pytest.mark.prefect


def test_retention_anonymises_ended_cases_and_prunes_sign_ins(
    case_db: Engine,
    city: City,
    vclock: VirtualClock,
    aloop: LoopRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIAOJIE_RETENTION_DAYS", "30")
    reset_settings()
    with write_session() as session:
        old = closed_case(session, city)
    vclock.advance(timedelta(days=40))
    with write_session() as session:
        recent = closed_case(session, city)
        for days in (200, 2):
            session.add(
                SignInAttempt(
                    at=vclock.now() - timedelta(days=days),
                    channel="api",
                    name_key="k" * 16,
                    address="203.0.113.7",
                    outcome="wrong_password",
                )
            )

    answer = aloop.run(retention())
    assert answer == {"cases_anonymised": 1, "sign_in_attempts_deleted": 1}
    with Session(case_db) as session:
        assert not blobs(session, old) and blobs(session, recent)
        assert len(session.exec(select(SignInAttempt)).all()) == 1
    assert aloop.run(retention()) == {"cases_anonymised": 0, "sign_in_attempts_deleted": 0}

    async def artifact() -> Any:
        async with get_client() as client:
            found = await client.read_latest_artifacts(limit=50)
            return next(a for a in found if a.key == "tiaojie-retention")

    text = str(aloop.run(artifact()).data)
    assert "anonymised: 0" in text and PHONE not in text
