"""The installation's keys: where they come from, how they are made, how the field key
is rotated.

Four independent keys, each for one purpose, so that one leaking does not give away the
others:

======================  ====================================================  ==============
key                     protects                                              file
======================  ====================================================  ==============
token                   staff bearer tokens, Open311 api_keys and tokens      ``token.key``
session                 the web pages' session cookie                         ``session.key``
field (a keyring)       encrypted columns (``*_enc``: names, phones, IDs)     ``field.json``
lookup                  keyed hashes for equality look-ups (``*_hash``)        ``lookup.key``
======================  ====================================================  ==============

Where a key comes from, first match wins:

1. its own environment variable (``TIAOJIE_TOKEN_KEY``, ``TIAOJIE_SESSION_KEY``,
   ``TIAOJIE_FIELD_KEY``, ``TIAOJIE_LOOKUP_KEY``);
2. its file in ``TIAOJIE_HOME/keys/`` (folder 0700, files 0600), written by
   ``tiaojie init`` (:func:`init_keys`);
3. derived from ``TIAOJIE_SECRET_KEY`` with a label per purpose (one shared secret for
   several machines; separate keys are better);
4. the built-in development key, which everyone knows: ``tiaojie up`` refuses to start
   on it (:func:`default_sources`).

Field encryption keeps a keyring ``{"current": id, "keys": {id: key}}``: values are
stored as ``<id>$<Fernet token>`` and decrypted with the key of their id, so that
``tiaojie keys rotate`` (:mod:`models.rotation`) can re-encrypt row by row while the
system runs. Values written before key ids existed (no ``$``) are read with the key
derived from ``TIAOJIE_SECRET_KEY`` (or the development key).

Lose the key folder and every encrypted field is unreadable and every look-up hash
useless: back it up apart from the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models.settings import get_settings

Purpose = Literal["token", "session", "lookup"]
PURPOSES: tuple[Purpose, ...] = ("token", "session", "lookup")
# Public on purpose: the key everyone knows, which `tiaojie up` refuses to run on.
DEV_SECRET = "tiaojie-dev-secret-change-me-in-production-0000"  # noqa: S105
LEGACY_KEY_ID = "0"
FIELD_FILE = "field.json"
PREFECT_AUTH_FILE = "prefect-auth"
# How often a running process looks at the keyring file for a rotation.
RELOAD_EVERY_S = 1.0

_LABELS = {
    "token": b"tiaojie-jwt-signing:",
    "session": b"tiaojie-web-session:",
    "lookup": b"tiaojie-lookup:",
    "field": b"tiaojie-field-encryption:",
}


class KeyFileError(RuntimeError):
    """A key file that is there but cannot be used."""


def keys_dir() -> Path:
    return get_settings().home / "keys"


def _derive(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(_LABELS[purpose] + secret.encode("utf-8")).digest()


def _shared_secret() -> tuple[str, str]:
    """The shared secret and where it came from ("env" or "default")."""
    value = get_settings().secret_key
    if value is not None and value.get_secret_value() not in ("", DEV_SECRET):
        return value.get_secret_value(), "env"
    return DEV_SECRET, "default"


def _decode(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raw = b""
    if len(raw) < 32:
        # An operator's own passphrase: long enough is all we ask, hashed to 32 bytes.
        if len(text) < 32:
            raise KeyFileError(f"{where}: a key must be at least 32 characters")
        return hashlib.sha256(text.encode("utf-8")).digest()
    return raw[:32]


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")


def _env_key(purpose: str) -> str | None:
    value = getattr(get_settings(), f"{purpose}_key", None)
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


def key_source(purpose: str) -> str:
    """Where a key comes from: ``env``, ``file``, ``secret`` (derived) or ``default``."""
    if _env_key(purpose):
        return "env"
    name = FIELD_FILE if purpose == "field" else f"{purpose}.key"
    if (keys_dir() / name).exists():
        return "file"
    return "secret" if _shared_secret()[1] == "env" else "default"


def key(purpose: Purpose) -> bytes:
    """The 32-byte key for tokens, sessions or look-up hashes."""
    env = _env_key(purpose)
    if env:
        return _decode(env, f"TIAOJIE_{purpose.upper()}_KEY")
    path = keys_dir() / f"{purpose}.key"
    if path.exists():
        return _cached_file_key(str(path), path.stat().st_mtime_ns)
    return _derive(_shared_secret()[0], purpose)


def _cached_file_key(path: str, _mtime: int) -> bytes:
    cached = _FILE_KEYS.get((path, _mtime))
    if cached is None:
        cached = _decode(Path(path).read_text(encoding="ascii"), path)
        _FILE_KEYS[(path, _mtime)] = cached
    return cached


_FILE_KEYS: dict[tuple[str, int], bytes] = {}


# --- the field keyring ---------------------------------------------------------------


@dataclass(frozen=True)
class Keyring:
    current: str
    keys: dict[str, bytes]

    def fernet_key(self, key_id: str) -> bytes | None:
        raw = self.keys.get(key_id)
        return base64.urlsafe_b64encode(raw) if raw is not None else None


_ring_lock = threading.Lock()
_ring_state: dict[str, object] = {}


def _legacy_field_key() -> bytes:
    return _derive(_shared_secret()[0], "field")


def _read_ring_file(path: Path) -> Keyring:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = {str(k): _decode(str(v), str(path)) for k, v in data["keys"].items()}
        current = str(data["current"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a readable keyring ({exc})") from None
    if current not in keys:
        raise KeyFileError(f"{path}: the current key {current!r} is not in the ring")
    keys.setdefault(LEGACY_KEY_ID, _legacy_field_key())
    return Keyring(current=current, keys=keys)


def keyring() -> Keyring:
    """The field keyring now: re-read (at most once a second) when its file changes, so a
    rotation reaches running processes without a restart."""
    env = _env_key("field")
    if env:
        return Keyring(
            current="e", keys={"e": _decode(env, "TIAOJIE_FIELD_KEY"), "0": _legacy_field_key()}
        )
    path = keys_dir() / FIELD_FILE
    legacy = _legacy_field_key()
    now = time.monotonic()
    with _ring_lock:
        ring = _ring_state.get("ring")
        if (
            isinstance(ring, Keyring)
            and _ring_state.get("path") == (str(path), legacy)
            and now - float(_ring_state.get("checked", 0.0)) < RELOAD_EVERY_S  # type: ignore[arg-type]
        ):
            return ring
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        stamp = (str(path), mtime, legacy)
        if not (isinstance(ring, Keyring) and _ring_state.get("stamp") == stamp):
            if mtime is None:
                ring = Keyring(current=LEGACY_KEY_ID, keys={LEGACY_KEY_ID: legacy})
            else:
                ring = _read_ring_file(path)
        _ring_state.update(ring=ring, path=(str(path), legacy), stamp=stamp, checked=now)
        assert isinstance(ring, Keyring)
        return ring


def forget_cached_keys() -> None:
    """Tests and rotation: read every key afresh."""
    with _ring_lock:
        _ring_state.clear()
    _FILE_KEYS.clear()


# --- writing key files ----------------------------------------------------------------


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically (a crash leaves the old one)."""
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_keyring(ring_current: str, keys: dict[str, str]) -> None:
    write_private(
        keys_dir() / FIELD_FILE,
        json.dumps({"current": ring_current, "keys": keys}, indent=2, sort_keys=True) + "\n",
    )
    forget_cached_keys()


def read_keyring_text() -> dict[str, str]:
    """The ring file's keys as stored (text), for rotation to extend."""
    path = keys_dir() / FIELD_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data["keys"].items()}


def init_keys() -> list[str]:
    """Generate every key that is neither in the environment nor on file yet (never
    overwrites one). Answers the names of the files written."""
    folder = keys_dir()
    _private_dir(folder)
    written: list[str] = []
    for purpose in PURPOSES:
        path = folder / f"{purpose}.key"
        if not _env_key(purpose) and not path.exists():
            write_private(path, new_key() + "\n")
            written.append(path.name)
    if not _env_key("field") and not (folder / FIELD_FILE).exists():
        write_keyring("1", {"1": new_key()})
        written.append(FIELD_FILE)
    if ensure_prefect_auth():
        written.append(PREFECT_AUTH_FILE)
    forget_cached_keys()
    return written


def ensure_prefect_auth() -> bool:
    """Generate the Prefect server's ``user:password`` unless there is one (True if
    written)."""
    auth = keys_dir() / PREFECT_AUTH_FILE
    if auth.exists():
        return False
    write_private(auth, f"tiaojie:{secrets.token_urlsafe(24)}\n")
    return True


def prefect_auth_string() -> str | None:
    """``user:password`` for the Prefect server's basic auth: ``PREFECT_API_AUTH_STRING``
    when set, else the generated file, if any."""
    env = os.environ.get("PREFECT_API_AUTH_STRING", "").strip()
    if env:
        return env
    path = keys_dir() / PREFECT_AUTH_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def loose_files() -> list[str]:
    """The files of the key folder that anyone but their owner may read or change
    (:func:`write_private` writes 0600; a copy restored or unpacked by hand gets the
    umask's bits, readable by every account of the machine)."""
    folder = keys_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.stat().st_mode & 0o077)


def refuse_loose_files() -> None:
    """:class:`KeyFileError` naming the :func:`loose_files`: the app and ``tiaojie up``
    will not start on them, as ssh will not use such a private key."""
    loose = loose_files()
    if loose:
        raise KeyFileError(
            f"{', '.join(loose)} in {keys_dir()} may be read by others than the owner: "
            f"chmod 600 {' '.join(loose)} (and chmod 700 the folder) before starting"
        )


def default_sources() -> list[str]:
    """The keys that fall back to the public development key (empty when none does)."""
    return [p for p in (*PURPOSES, "field") if key_source(p) == "default"]


__all__ = [
    "DEV_SECRET",
    "KeyFileError",
    "Keyring",
    "default_sources",
    "forget_cached_keys",
    "init_keys",
    "key",
    "key_source",
    "keyring",
    "keys_dir",
    "loose_files",
    "new_key",
    "prefect_auth_string",
    "refuse_loose_files",
    "write_keyring",
    "write_private",
]
