"""Staff passwords: Argon2id hashes (argon2-cffi), never stored or logged in clear."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    # The library's defaults follow RFC 9106's recommended low-memory profile.
    return PasswordHasher()


def hash_password(password: str) -> str:
    """Return an Argon2id hash (with its own random salt and parameters) of ``password``."""
    if not password:
        raise ValueError("password must not be empty")
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches ``password_hash``; False for any mismatch or for a
    missing or malformed hash (an account without a password cannot sign in)."""
    if not password or not password_hash:
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return _hasher().check_needs_rehash(password_hash)
