"""Finding 1 (default secret): the installation's keys are generated, private, separate,
and `tiaojie up` will not run on the public development key."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from api import security
from models import keys, pii
from models.settings import reset_settings


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home with no keys and no shared secret in the environment."""
    home = tmp_path / "home"
    monkeypatch.setenv("TIAOJIE_HOME", str(home))
    monkeypatch.delenv("TIAOJIE_SECRET_KEY", raising=False)
    reset_settings()
    keys.forget_cached_keys()
    umask = os.umask(0o022)
    os.umask(umask)
    yield home
    os.umask(umask)  # `tiaojie up` and `init` make the process's files private
    keys.forget_cached_keys()


def _forged_admin_token() -> str:
    """What the attacker of finding 1 did: sign with the key derived from the public
    default secret."""
    key = hashlib.sha256(b"tiaojie-jwt-signing:" + keys.DEV_SECRET.encode()).digest()
    now = datetime.now(UTC)
    claims = {
        "iss": "tiaojie",
        "aud": "tiaojie",
        "sub": "1",
        "role": "admin",
        "unit": None,
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    return jwt.encode(claims, key, algorithm="HS256")


def test_init_writes_private_separate_keys_and_never_replaces_them(fresh_home: Path) -> None:
    written = keys.init_keys()
    folder = fresh_home / "keys"
    assert set(written) == {"token.key", "session.key", "lookup.key", "field.json", "prefect-auth"}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    material = {keys.key("token"), keys.key("session"), keys.key("lookup")}
    ring = keys.keyring()
    material.add(ring.keys[ring.current])
    assert len(material) == 4  # four independent keys
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert keys.init_keys() == []
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert keys.default_sources() == []


def test_a_token_forged_with_the_public_default_key_is_refused(fresh_home: Path) -> None:
    keys.init_keys()
    with pytest.raises(security.AuthError):
        security.verify_token(_forged_admin_token())
    own = security.create_token(subject="1", role="admin", unit=None)
    assert security.verify_token(own)["role"] == "admin"


def test_a_copied_database_is_unreadable_with_the_public_default_key(fresh_home: Path) -> None:
    keys.init_keys()
    stored = pii.encrypt("13800138000")
    assert "13800138000" not in stored
    # The attacker's decryption: the old derivation from the public secret.
    from base64 import urlsafe_b64encode

    from cryptography.fernet import Fernet, InvalidToken

    guess = hashlib.sha256(b"tiaojie-field-encryption:" + keys.DEV_SECRET.encode()).digest()
    with pytest.raises(InvalidToken):
        Fernet(urlsafe_b64encode(guess)).decrypt(stored.partition("$")[2].encode())
    assert pii.decrypt(stored) == "13800138000"


def test_keys_come_from_the_environment_first(
    fresh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys.init_keys()
    monkeypatch.setenv("TIAOJIE_TOKEN_KEY", "x" * 40)
    reset_settings()
    assert keys.key_source("token") == "env"
    assert keys.key("token") == hashlib.sha256(b"x" * 40).digest()
    monkeypatch.setenv("TIAOJIE_TOKEN_KEY", "too-short")
    reset_settings()
    with pytest.raises(keys.KeyFileError):
        keys.key("token")


def test_the_public_default_given_as_shared_secret_counts_as_default(
    fresh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIAOJIE_SECRET_KEY", keys.DEV_SECRET)
    reset_settings()
    assert set(keys.default_sources()) == {"token", "session", "lookup", "field"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_refuses_the_public_default_and_says_how_to_fix_it(
    fresh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tiaojie_cli.up import run_up

    code = run_up(port=_free_port(), prefect_port=_free_port(), demo=False)
    out = capsys.readouterr().out
    assert code == 1
    assert "tiaojie init" in out
    assert not (fresh_home / "run" / "up.pid").exists()
    # Nothing was created besides the (private) home itself.
    assert stat.S_IMODE(fresh_home.stat().st_mode) == 0o700


def test_the_app_will_not_start_on_key_files_others_may_read(fresh_home: Path) -> None:
    """A key folder copied or unpacked with the umask's bits (a backup restored by hand)
    left the signing and encryption keys readable by every account of the machine, and
    nothing said so. Now the app refuses to start and says which files to chmod."""
    from api.app import create_app
    from models.settings import Settings

    keys.init_keys()
    create_app(Settings())  # private files: starts
    (fresh_home / "keys" / "token.key").chmod(0o644)
    with pytest.raises(keys.KeyFileError, match=r"token\.key.*chmod 600"):
        create_app(Settings())
    (fresh_home / "keys" / "token.key").chmod(0o600)
    create_app(Settings())


def test_the_database_and_its_journal_are_owner_only(fresh_home: Path) -> None:
    from sqlalchemy import text

    from models.db import get_engine, reset_engines

    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    files = sorted(fresh_home.glob("tiaojie.db*"))
    assert files and any(f.name.endswith("-wal") for f in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    reset_engines()
