"""The resident's tracking code (查询码): a receipt that lets the complainant follow the
case without signing in.

The code is 16 Crockford base32 characters (80 bits), shown as ``XXXX-XXXX-XXXX-XXXX``
so that it can be read aloud over the phone. It is derived from the case number with a
keyed HMAC (the ``lookup`` key, its own label), so it cannot be guessed without the key
and staff can be shown it again without storing it in clear; the case keeps only the
keyed hash of the code (``cases.tracking_hash``) to find the case by code.
"""

from __future__ import annotations

import hashlib
import hmac

from models import keys, pii

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 16  # 16 x 5 bits = 80 bits
_LABEL = b"tiaojie-tracking-code:"
# Crockford's decoding: letters people confuse with digits read as the digits.
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


def code_for(number: str) -> str:
    """The tracking code of the case numbered ``number``, grouped for reading aloud."""
    digest = hmac.new(keys.key("lookup"), _LABEL + number.encode("utf-8"), hashlib.sha256)
    value = int.from_bytes(digest.digest()[:10], "big")
    chars = [ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(LENGTH))]
    plain = "".join(chars)
    return "-".join(plain[i : i + 4] for i in range(0, LENGTH, 4))


def normalise(raw: str) -> str | None:
    """A code as a resident types it (lower case, spaces, dashes, O for 0), as 16
    characters; None when it cannot be a code."""
    text = "".join(ch for ch in raw.upper() if ch not in " -\t").translate(_READ_AS)
    if len(text) != LENGTH or any(ch not in ALPHABET for ch in text):
        return None
    return text


def hash_of(code: str) -> str:
    """The keyed hash a case keeps of its code (``code`` as typed or as shown)."""
    plain = normalise(code) or code
    return pii.lookup_hash("tracking:" + plain)


def hash_for(number: str) -> str:
    return hash_of(code_for(number))
