"""The sign-in service: the limit per name and per address, the back-off after a run of
failures, and an audit record of every attempt that holds no password."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models import clock
from models.db import get_engine, reset_engines
from models.login import BACKOFF_AFTER, SignInAttempt, recent_attempts, sign_in
from models.passwords import hash_password
from models.settings import reset_settings
from models.tables import metadata
from tests.factories import build_city
from tiaojie_cli.main import app as cli

PASSWORD = "correct horse 马"


@pytest.fixture
def city_engine(engine: Engine, vclock: clock.VirtualClock) -> Engine:
    with Session(engine) as session:
        city = build_city(session)
        city.staff["workerA"].password_hash = hash_password(PASSWORD)
        city.staff["workerB"].password_hash = hash_password(PASSWORD)
        city.staff["workerB"].active = False
        session.commit()
    return engine


def _try(engine: Engine, name: str, password: str, address: str = "10.0.0.1") -> str:
    return sign_in(engine, username=name, password=password, address=address, channel="api").outcome


def test_the_eleventh_check_within_a_minute_is_refused_per_name(
    city_engine: Engine, vclock: clock.VirtualClock
) -> None:
    # Ten wrong passwords from ten addresses: each is checked and refused.
    assert {_try(city_engine, "workerA", "guess", f"10.0.1.{i}") for i in range(10)} == {
        "wrong_password"
    }
    # The 11th within the minute is not even checked, the right password included.
    answer = sign_in(
        city_engine, username=" WorkerA ", password=PASSWORD, address="10.0.2.1", channel="web"
    )
    assert answer.outcome == "rate_limited" and answer.staff is None
    assert answer.retry_after_s is not None and 1 <= answer.retry_after_s <= 60
    # Ten failures in a row also start the back-off (2 minutes from the last one).
    vclock.advance(timedelta(seconds=121))
    assert _try(city_engine, "workerA", PASSWORD, "10.0.2.1") == "ok"


def test_the_eleventh_check_within_a_minute_is_refused_per_address(
    city_engine: Engine, vclock: clock.VirtualClock
) -> None:
    outcomes = [_try(city_engine, f"nobody{i}", "guess") for i in range(10)]
    assert outcomes == ["unknown_user"] * 10
    assert _try(city_engine, "workerA", PASSWORD) == "rate_limited"
    assert _try(city_engine, "workerA", PASSWORD, "10.9.9.9") == "ok"  # another address


def test_an_offices_successful_sign_ins_from_one_address_are_not_limited(
    city_engine: Engine,
) -> None:
    # A community workstation: everyone signs in behind one address within the minute.
    outcomes = [_try(city_engine, "workerA", PASSWORD, "10.0.7.1") for _ in range(15)]
    assert outcomes == ["ok"] * 15
    # Failures from that address still count: ten wrong, then the eleventh is refused.
    assert {_try(city_engine, f"nobody{i}", "guess", "10.0.7.1") for i in range(10)} == {
        "unknown_user"
    }
    assert _try(city_engine, "workerA", PASSWORD, "10.0.7.1") == "rate_limited"


def test_back_off_grows_after_a_run_of_failures_and_a_success_clears_it(
    city_engine: Engine, vclock: clock.VirtualClock
) -> None:
    for i in range(BACKOFF_AFTER):
        assert _try(city_engine, "workerA", "guess", f"10.0.3.{i}") == "wrong_password"
    vclock.advance(timedelta(seconds=61))  # out of the minute, still within the back-off
    refused = sign_in(
        city_engine, username="workerA", password=PASSWORD, address="a", channel="api"
    )
    assert refused.outcome == "backoff" and refused.retry_after_s is not None
    vclock.advance(timedelta(seconds=refused.retry_after_s))
    assert _try(city_engine, "workerA", "guess", "b") == "wrong_password"  # 11 in a row
    vclock.advance(timedelta(seconds=200))
    # The wait doubled: 240 s after the last failure.
    assert _try(city_engine, "workerA", PASSWORD, "c") == "backoff"
    vclock.advance(timedelta(seconds=40))
    assert _try(city_engine, "workerA", PASSWORD, "d") == "ok"
    assert _try(city_engine, "workerA", "guess", "e") == "wrong_password"
    assert _try(city_engine, "workerA", PASSWORD, "f") == "ok"  # the run was cleared


def test_unknown_inactive_and_wrong_are_refused_alike(city_engine: Engine) -> None:
    assert _try(city_engine, "nobody", PASSWORD) == "unknown_user"
    assert _try(city_engine, "workerB", PASSWORD) == "inactive"
    assert _try(city_engine, "mediatorA", PASSWORD) == "unknown_user"  # no password set
    for name in ("nobody", "workerB", "mediatorA"):
        answer = sign_in(city_engine, username=name, password=PASSWORD, address="x", channel="web")
        assert answer.staff is None and answer.retry_after_s is None


def test_every_attempt_is_audited_without_the_password_or_the_name_typed(
    city_engine: Engine,
) -> None:
    typed = "13912345678-秘密"  # a password typed into the name field
    _try(city_engine, typed, PASSWORD)
    _try(city_engine, "workerA", "wrong-秘密")
    _try(city_engine, "workerA", PASSWORD)
    with Session(city_engine) as session:
        rows = session.exec(select(SignInAttempt).order_by(col(SignInAttempt.id))).all()
        worker_a = session.exec(
            select(SignInAttempt.staff_id).where(col(SignInAttempt.outcome) == "ok")
        ).one()
    assert [r.outcome for r in rows] == ["unknown_user", "wrong_password", "ok"]
    assert [r.staff_id is None for r in rows] == [True, False, False] and worker_a
    assert rows[1].name_key == rows[2].name_key != rows[0].name_key
    text = " ".join(str(r.model_dump()) for r in rows)
    for secret in (typed, PASSWORD, "wrong-秘密", "秘密", "13912345678"):
        assert secret not in text


def test_the_audit_reads_back_accounts_and_outcomes_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vclock: clock.VirtualClock
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", url)
    reset_settings()
    reset_engines()
    engine = get_engine(url)
    metadata.create_all(engine)
    with Session(engine) as session:
        city = build_city(session)
        city.staff["workerA"].password_hash = hash_password(PASSWORD)
        session.commit()
    _try(engine, "workerA", PASSWORD, "10.1.1.1")
    _try(engine, "workerA", "guess", "10.1.1.2")
    _try(engine, "13912345678", "guess", "10.1.1.3")
    with Session(engine) as session:
        failed = recent_attempts(session, since=clock.now() - timedelta(hours=1), failed_only=True)
    assert [(r.username, r.outcome) for r in failed] == [
        (None, "unknown_user"),
        ("workerA", "wrong_password"),
    ]
    shown = CliRunner().invoke(cli, ["audit", "sign-ins", "--hours", "1"])
    assert shown.exit_code == 0, shown.output
    assert "workerA" in shown.output and "10.1.1.3" in shown.output
    assert "unknown_user" in shown.output and "13912345678" not in shown.output
    reset_engines()


def test_guesses_sent_together_are_held_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vclock: clock.VirtualClock
) -> None:
    """Attempts that arrive while earlier ones are still being checked count too. The
    limit was read before the check and the attempt recorded after it, so a batch of
    guesses sent at once were all checked (every request in flight saw none of the
    others): the limit bounded nothing but the time one Argon2 check takes."""
    import models.login as login
    from models.db import build_engine

    # A file: each attempt has its own connection, as concurrent requests do.
    city_engine = build_engine(f"sqlite:///{tmp_path / 'together.db'}")
    metadata.create_all(city_engine)
    with Session(city_engine) as session:
        build_city(session).staff["workerA"].password_hash = hash_password(PASSWORD)
        session.commit()
    checked: list[str] = []
    real = login.verify_password

    def while_checking(password: str, stored: str) -> bool:
        # The next guess of the batch arrives while this one is being checked.
        checked.append(password)
        if len(checked) < 15:
            _try(city_engine, "workerA", f"guess {len(checked)}", f"10.0.3.{len(checked)}")
        return real(password, stored)

    monkeypatch.setattr(login, "verify_password", while_checking)
    _try(city_engine, "workerA", "guess 0", "10.0.3.0")
    assert len(checked) == 10  # signin_per_minute: the 11th and later were refused unchecked
    with Session(city_engine) as session:
        outcomes = sorted(a.outcome for a in session.exec(select(SignInAttempt)))
    assert outcomes == ["rate_limited"] + ["wrong_password"] * 10
    city_engine.dispose()
