"""Personal data: validation, masking, field encryption and keyed look-up hashes.

Phones are mainland mobile numbers (11 digits, 1[3-9]xxxxxxxxx); resident ID numbers
are 18 characters with a GB 11643 check digit (which may be ``X``). Clear values are
encrypted (Fernet, under the field key of :mod:`models.keys`, tagged with its key id)
before they reach a table, and looked up through an HMAC (the look-up key) so that a
dump of the database shows neither.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from models import keys
from models.errors import FieldProblem, InvalidIdNumber, InvalidPhone

_PHONE = re.compile(r"^1[3-9]\d{9}$")
_ID = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# Digits and separators as people type them; full-width forms are refused, not guessed.
_PHONE_SEPARATORS = re.compile(r"[\s\-]")
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[\s\-]?)?1[3-9]\d(?:[\s\-]?\d){8}(?!\d)")
_ID_IN_TEXT = re.compile(
    r"(?<![\dA-Za-z])\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[\dXx](?![\dA-Za-z])"
)


def _has_fullwidth(value: str) -> bool:
    return any(unicodedata.east_asian_width(ch) == "F" for ch in value)


def normalise_phone(raw: str, *, field: str = "phone") -> str:
    """Return the 11-digit mobile number, or raise :class:`InvalidPhone`."""
    value = raw.strip()
    if _has_fullwidth(value):
        raise _phone_error(field, "full-width characters are not accepted", "请使用半角数字")
    value = _PHONE_SEPARATORS.sub("", value)
    if value.startswith("+86"):
        value = value[3:]
    if not _PHONE.match(value):
        raise _phone_error(
            field,
            "not a mainland mobile number (11 digits starting 13-19)",
            "不是有效的手机号码（11位，以13-19开头）",
        )
    return value


def _phone_error(field: str, en: str, zh: str) -> InvalidPhone:
    return InvalidPhone(f"{field}: {en}", f"{field}：{zh}", problems=[FieldProblem(field, zh, en)])


def id_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def normalise_id_number(raw: str, *, field: str = "id_number") -> str:
    """Return the 18-character resident ID number, or raise :class:`InvalidIdNumber`."""
    value = raw.strip()
    if _has_fullwidth(value):
        raise _id_error(field, "full-width characters are not accepted", "请使用半角字符")
    value = value.upper()
    if not _ID.match(value):
        raise _id_error(
            field, "must be 17 digits followed by a digit or X", "应为18位：17位数字加1位数字或X"
        )
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise _id_error(
            field, "the birth date in it is not a real date", "其中的出生日期无效"
        ) from None
    if id_check_digit(value[:17]) != value[17]:
        raise _id_error(field, "the check digit is wrong", "校验位不正确")
    return value


def _id_error(field: str, en: str, zh: str) -> InvalidIdNumber:
    return InvalidIdNumber(
        f"{field}: {en}", f"{field}：{zh}", problems=[FieldProblem(field, zh, en)]
    )


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"


def mask_id_number(id_number: str) -> str:
    return f"{id_number[:6]}********{id_number[-4:]}" if len(id_number) >= 10 else "****"


def mask_name(name: str) -> str:
    name = name.strip()
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    if all(ord(ch) < 128 for ch in name):
        return name[0] + "*" * min(len(name) - 1, 6)
    return name[0] + "*" * (len(name) - 1)


def scrub_text(text: str) -> str:
    """Mask phone and ID numbers typed into free text (for anything shown publicly)."""
    text = _ID_IN_TEXT.sub(lambda m: mask_id_number(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(re.sub(r"\D", "", m.group(0))[-11:]), text)


def scrub_names(text: str, names: Iterable[str], *, replacement: str | None = None) -> str:
    """Mask the given people's names (a case's own parties) where free text repeats them.

    Names of one character are left alone (they would mask ordinary words)."""
    wanted = {n.strip() for n in names if n and len(n.strip()) >= 2}
    for name in sorted(wanted, key=len, reverse=True):
        text = text.replace(name, replacement if replacement is not None else mask_name(name))
    return text


@lru_cache(maxsize=16)
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def encrypt(value: str) -> str:
    """``<key id>$<Fernet token>`` under the current field key."""
    ring = keys.keyring()
    fernet_key = ring.fernet_key(ring.current)
    assert fernet_key is not None
    token = _fernet(fernet_key).encrypt(value.encode("utf-8")).decode("ascii")
    return f"{ring.current}${token}"


def key_id_of(token: str) -> str:
    """The id of the key a stored value was encrypted with."""
    head, sep, _rest = token.partition("$")
    return head if sep else keys.LEGACY_KEY_ID


def decrypt(token: str) -> str:
    key_id = key_id_of(token)
    body = token.partition("$")[2] if "$" in token else token
    fernet_key = keys.keyring().fernet_key(key_id)
    if fernet_key is None:
        # A key added by a rotation in another process since our last look.
        keys.forget_cached_keys()
        fernet_key = keys.keyring().fernet_key(key_id)
    if fernet_key is None:
        return UNDECRYPTABLE
    try:
        return _fernet(fernet_key).decrypt(body.encode("ascii")).decode("utf-8")
    except InvalidToken:
        return UNDECRYPTABLE


UNDECRYPTABLE = "[无法解密 undecryptable]"


def lookup_hash(value: str) -> str:
    """Keyed hash for equality look-ups (same phone, same ID, same respondent)."""
    key = keys.key("lookup")
    return hmac.new(key, value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()
