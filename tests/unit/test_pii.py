"""Personal data: phone and resident-ID validation, masking, scrubbing free text,
field encryption and the keyed look-up hash."""

from __future__ import annotations

import sys

import pytest

from models import pii
from models.errors import InvalidIdNumber, InvalidPhone
from models.party import PartyCreate
from models.settings import reset_settings
from tests.factories import ID_NUMBER, PHONE

VALID_X = "11010519491231002X"  # GB 11643 example, check digit X


def make_id(first17: str) -> str:
    return first17 + pii.id_check_digit(first17)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        (" 138 0013 8000 ", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("19912345678", "19912345678"),
    ],
)
def test_valid_phones_are_normalised(raw: str, expected: str) -> None:
    assert pii.normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "１３８００１３８０００",  # full-width digits: refused, not guessed
        "12800138000",  # no mobile prefix 12
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "010-62345678",  # a landline
        "1380013800a",
        "",
    ],
)
def test_invalid_phones_are_refused_with_bilingual_messages(raw: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        pii.normalise_phone(raw)
    err = info.value
    assert err.problems and err.problems[0].field == "phone"
    assert err.message_zh != err.message_en and err.code == "invalid_phone"


def test_id_check_digit_including_x() -> None:
    assert pii.id_check_digit(VALID_X[:17]) == "X"
    assert pii.normalise_id_number(VALID_X) == VALID_X
    assert pii.normalise_id_number(VALID_X.lower()) == VALID_X  # a typed lower-case x
    assert pii.normalise_id_number(ID_NUMBER) == ID_NUMBER
    generated = make_id("36990119880229123")  # 29 Feb of a leap year
    assert pii.normalise_id_number(generated) == generated


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("110105194912310021", "check digit"),  # last digit altered
        ("110105194912310020", "check digit"),
        ("１１０１０５１９４９１２３１００２Ｘ", "full-width"),
        ("11010519491231002", "18"),  # 17 characters
        ("1101051949123100X2", "18"),  # X not at the end
        (make_id("36990119890229123"), "birth date"),  # 29 Feb of a common year
        (make_id("36990119881301123"), "birth date"),  # month 13
        (make_id("36990119880431123"), "birth date"),  # 31 April
    ],
)
def test_invalid_id_numbers_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdNumber) as info:
        pii.normalise_id_number(raw)
    assert reason in info.value.message_en or reason in info.value.message_zh


def test_party_create_validates_and_reports_both_languages() -> None:
    ok = PartyCreate(side="complainant", name=" 王小明 ", phone="138 0013 8000", id_number=VALID_X)
    assert (ok.name, ok.phone, ok.id_number) == ("王小明", PHONE, VALID_X)
    with pytest.raises(ValueError, match="校验位不正确") as info:
        PartyCreate(side="complainant", name="王小明", id_number="110105194912310021")
    assert "check digit" in str(info.value)


def test_masking() -> None:
    assert pii.mask_phone("13800138000") == "138****8000"
    assert pii.mask_id_number(VALID_X) == "110105********002X"
    assert pii.mask_name("王小明") == "王**"
    assert pii.mask_name("欧阳") == "欧*"
    assert pii.mask_name("李") == "*"
    assert pii.mask_name("Zhang Wei") == "Z******"
    assert pii.mask_name("  ") == ""


def test_scrub_text_masks_numbers_typed_into_free_text() -> None:
    text = (
        f"申请人王某，电话{PHONE}，又留了 +86 139-1234-5678，身份证号{VALID_X}；"
        "欠薪 13800 元，订单号 2026113012345678。"
    )
    scrubbed = pii.scrub_text(text)
    assert PHONE not in scrubbed and VALID_X not in scrubbed and "5678" in scrubbed
    assert "138****8000" in scrubbed and "139****5678" in scrubbed
    assert "110105********002X" in scrubbed
    # Amounts and other numbers are left alone.
    assert "欠薪 13800 元" in scrubbed and "2026113012345678" in scrubbed
    assert pii.scrub_text("没有个人信息") == "没有个人信息"


def test_the_quick_digit_count_misses_no_character_read_as_a_digit() -> None:
    """find_numbers skips a text with fewer than 11 digit-like characters after one
    regular-expression pass: that expression must match every character _digit_of
    reads as a digit, over all of Unicode (else a number typed with it would be missed)."""
    missed = [
        hex(i)
        for i in range(sys.maxunicode + 1)
        if pii._digit_of(chr(i)) is not None and not pii._DIGITISH.match(chr(i))
    ]
    assert missed == []
    # Ten digits in any form are no number; the eleventh makes the phone.
    assert pii.find_numbers("电话 １３８ 0013 800") == []
    assert pii.scrub_text("电话 １３８ 0013 8000") == "电话 138****8000"
    assert pii.scrub_text("幺三八-零零幺三-八零零零") == "138****8000"
    assert pii.scrub_text("①③⑧ 0013 8000") == "138****8000"


def test_encryption_round_trip_and_no_clear_text() -> None:
    token = pii.encrypt(VALID_X)
    assert VALID_X not in token and token != pii.encrypt(VALID_X)  # random IV each time
    assert pii.decrypt(token) == VALID_X
    assert pii.decrypt(pii.encrypt("王小明")) == "王小明"
    assert pii.decrypt("not-a-token") == "[无法解密 undecryptable]"


def test_keyed_hash_is_stable_normalised_and_depends_on_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = pii.lookup_hash(PHONE)
    assert first == pii.lookup_hash(f" {PHONE} ") and len(first) == 64 and PHONE not in first
    assert pii.lookup_hash(VALID_X) == pii.lookup_hash(VALID_X.lower())
    assert pii.lookup_hash("13800138001") != first
    token = pii.encrypt(PHONE)
    monkeypatch.setenv("TIAOJIE_SECRET_KEY", "another-key-for-another-installation-000000")
    reset_settings()
    assert pii.lookup_hash(PHONE) != first
    assert pii.decrypt(token) == "[无法解密 undecryptable]"
