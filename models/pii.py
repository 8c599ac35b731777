"""Personal data: validation, masking, field encryption and keyed look-up hashes.

Phones are mainland mobile numbers (11 digits, 1[3-9]xxxxxxxxx); resident ID numbers
are 18 characters with a GB 11643 check digit (which may be ``X``). Clear values are
encrypted (Fernet, under the field key of :mod:`models.keys`, tagged with its key id)
before they reach a table, and looked up through an HMAC (the look-up key) so that a
dump of the database shows neither.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
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


# --- numbers in free text ---------------------------------------------------------------

# Digits as people write them: ASCII, full-width (folded by NFKC) and the Chinese words
# read out digit by digit (幺三八…). 十/百 are positional, never a digit of a number.
_DIGIT_WORDS = dict(zip("零〇○洞幺一二两三四五六七八九", "001011223456789", strict=True))
# What may stand between the digits of one number (at most _MAX_GAP of them in a row).
_SEPARATORS = frozenset(" \t\u00a0\u3000.-_/\\·•,，、．—–~～()（）[]【】:：|")
_MAX_GAP = 3
_PLAUSIBLE_ID = re.compile(
    r"^\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX]$"
)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_NUMBER_DIGITS = 11
"""The fewest digits a number has (a mobile number; an ID number has 17 and a check)."""
# Every character _digit_of reads as a digit, and more: the decimal digits of any script
# (\d), the other characters NFKC folds to a digit (superscripts, subscripts, circled
# digits) and the digit words. A text with fewer than _NUMBER_DIGITS of them holds no
# number, which one pass of this expression tells (tests/unit/test_pii.py checks that it
# covers every character _digit_of reads, over all of Unicode).
_DIGITISH = re.compile(
    "[\\d\u00b2\u00b3\u00b9\u2070-\u2079\u2080-\u2089\u2460-\u2468\u24ea"
    + "".join(sorted(_DIGIT_WORDS))
    + "]"
)


@dataclass(frozen=True)
class FoundNumber:
    """A phone or ID number found in free text: where it was, what it is, its mask."""

    start: int
    end: int
    kind: str  # "phone" or "id_number"
    value: str
    masked: str


def _digit_of(ch: str) -> str | None:
    if ch in _DIGIT_WORDS:
        return _DIGIT_WORDS[ch]
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) == 1 and folded.isascii() and folded.isdigit():
        return folded
    return None


def _runs(text: str) -> list[list[tuple[int, str]]]:
    """Runs of digits (with their positions) joined by at most _MAX_GAP separators; an
    ``X`` right after a digit ends a run (the check character of an ID number)."""
    runs: list[list[tuple[int, str]]] = []
    run: list[tuple[int, str]] = []
    gap = 0
    for i, ch in enumerate(text):
        digit = _digit_of(ch)
        if digit is not None:
            run.append((i, digit))
            gap = 0
            continue
        if run and gap == 0 and unicodedata.normalize("NFKC", ch) in ("X", "x"):
            run.append((i, "X"))
            runs.append(run)
            run, gap = [], 0
            continue
        if run and ch in _SEPARATORS and gap < _MAX_GAP:
            gap += 1
            continue
        if len(run) >= 11:
            runs.append(run)
        run, gap = [], 0
    if len(run) >= 11:
        runs.append(run)
    return runs


def _boundaries(run: list[tuple[int, str]]) -> set[int]:
    """Where a number may start or end in a run: its ends, and wherever the writer put
    a separator (so a number inside a longer digit string, such as an order number, is
    left alone)."""
    cuts = {0, len(run)}
    cuts.update(j for j in range(1, len(run)) if run[j][0] > run[j - 1][0] + 1)
    if run and run[-1][1] == "X":
        cuts.add(len(run) - 1)  # "…8000x": a phone followed by a letter
    return cuts


def _match_at(digits: str, i: int, cuts: set[int]) -> tuple[int, int, str] | None:
    """(start, end, kind) of a number starting at digit ``i``, if one does."""
    if i + 18 in cuts and _PLAUSIBLE_ID.match(digits[i : i + 18]):
        return i, i + 18, "id_number"
    if i + 11 in cuts and _MOBILE.match(digits[i : i + 11]):
        return i, i + 11, "phone"
    if digits.startswith("86", i) and i + 13 in cuts and _MOBILE.match(digits[i + 2 : i + 13]):
        return i, i + 13, "phone"
    return None


def find_numbers(text: str) -> list[FoundNumber]:
    """Every mobile phone and resident ID number in ``text``, however typed: any
    separators, full-width digits, Chinese digit words, a +86 prefix."""
    found: list[FoundNumber] = []
    if len(_DIGITISH.findall(text)) < _NUMBER_DIGITS:
        return found  # too few digits for any number: no need to read it character by character
    for run in _runs(text):
        digits = "".join(d for _i, d in run)
        cuts = _boundaries(run)
        starts = sorted(cuts)
        k = 0
        while k < len(starts) and starts[k] < len(run):
            match = _match_at(digits, starts[k], cuts)
            if match is None:
                k += 1
                continue
            start, end, kind = match
            value = digits[start:end][-11:] if kind == "phone" else digits[start:end]
            masked = mask_phone(value) if kind == "phone" else mask_id_number(value)
            begin = run[start][0]
            if begin > 0 and text[begin - 1] in "+＋":
                begin -= 1
            found.append(FoundNumber(begin, run[end - 1][0] + 1, kind, value, masked))
            k = bisect.bisect_left(starts, end)  # a number ends on a cut: go on from there
    return found


def scrub_text(text: str) -> str:
    """Phone and ID numbers in free text replaced by their masks (however typed)."""
    if not text:
        return text
    found = find_numbers(text)
    if not found:
        return text
    parts: list[str] = []
    last = 0
    for item in found:
        parts.append(text[last : item.start])
        parts.append(item.masked)
        last = item.end
    parts.append(text[last:])
    return "".join(parts)


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
