"""Staff passwords are stored as salted Argon2id hashes and checked without surprises."""

from __future__ import annotations

import pytest

from models.passwords import hash_password, needs_rehash, verify_password


def test_hash_and_verify() -> None:
    first = hash_password("tiaojie-demo")
    second = hash_password("tiaojie-demo")
    assert first.startswith("$argon2id$") and "tiaojie-demo" not in first
    assert first != second  # a fresh salt each time
    assert verify_password("tiaojie-demo", first) and verify_password("tiaojie-demo", second)
    assert not verify_password("tiaojie-dem0", first)
    assert not needs_rehash(first)


def test_missing_or_malformed_hashes_never_sign_in() -> None:
    assert not verify_password("anything", None)
    assert not verify_password("anything", "")
    assert not verify_password("anything", "not-an-argon2-hash")
    assert not verify_password("", hash_password("x"))
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
