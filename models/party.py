"""Parties of a case. Personal fields are stored encrypted, with a keyed hash for
look-ups and a masked copy for display; the clear value never touches the table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import field_validator
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from models import text as text_rules
from models.enums import ConsentMethod, PartyKind, PartySide
from models.errors import ValidationError
from models.pii import normalise_id_number, normalise_phone
from models.types import UTCDateTime, enum_type


class Party(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    side: PartySide = Field(sa_type=enum_type(PartySide))
    kind: PartyKind = Field(sa_type=enum_type(PartyKind))
    # Firms and agencies are not personal data: their names stay readable.
    org_name: str | None = Field(default=None, max_length=200)
    name_enc: str | None = None
    name_hash: str | None = Field(default=None, max_length=64, index=True)
    name_masked: str | None = Field(default=None, max_length=64)
    phone_enc: str | None = None
    phone_hash: str | None = Field(default=None, max_length=64, index=True)
    phone_masked: str | None = Field(default=None, max_length=32)
    id_number_enc: str | None = None
    id_number_hash: str | None = Field(default=None, max_length=64, index=True)
    id_number_masked: str | None = Field(default=None, max_length=32)
    address_enc: str | None = None
    # An agent (委托代理人) acting for the party: a person, so stored like the party's name.
    agent_name_enc: str | None = None
    agent_name_masked: str | None = Field(default=None, max_length=64)
    agent_phone_enc: str | None = None
    agent_phone_masked: str | None = Field(default=None, max_length=32)
    # Whose consent mediation needs (申请人 and 被申请人 by default; a 第三人 when joined).
    consent_required: bool = True
    consented: bool = False
    refused: bool = False


class PartyConsent(SQLModel, table=True):
    """A party's answer to mediation (同意/拒绝调解), and how it was given."""

    __tablename__ = "party_consent"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    party_id: int = Field(foreign_key="party.id", index=True)
    given: bool
    how: ConsentMethod = Field(sa_type=enum_type(ConsentMethod))
    note: str = Field(default="", max_length=500)
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    recorded_at: datetime = Field(sa_type=UTCDateTime)


def _normalised(value: str | None, normalise: Callable[[str], str]) -> str | None:
    """A number given (blank is none) in its one stored form; a wrong one is refused with
    the message in both languages."""
    if value is None or not value.strip():
        return None
    try:
        return normalise(value)
    except ValidationError as exc:
        raise ValueError(f"{exc.message_zh} / {exc.message_en}") from None


class PartyCreate(SQLModel):
    """A party as typed at intake; personal fields are validated here and never stored
    in clear (see :func:`models.cases.build_party`)."""

    model_config = SQLModelConfig(extra="forbid")

    side: PartySide
    kind: PartyKind = PartyKind.PERSON
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    id_number: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=200)
    agent_name: str | None = Field(default=None, max_length=100, description="委托代理人")
    agent_phone: str | None = Field(default=None, max_length=32)
    consent_required: bool | None = Field(
        default=None, description="whose consent mediation needs; default: not for a 第三人"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = text_rules.check(value, multiline=False)
        if not value:
            raise ValueError("姓名/名称不能为空 / name must not be empty")
        return value

    @field_validator("agent_name")
    @classmethod
    def _agent_name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return text_rules.check(value, multiline=False) or None

    @property
    def needs_consent(self) -> bool:
        if self.consent_required is not None:
            return self.consent_required
        return self.side != PartySide.THIRD_PARTY

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        """One line, no NUL or invisible characters (it is stored encrypted, unseen)."""
        return None if value is None else (text_rules.check(value, multiline=False) or None)

    @field_validator("phone", "agent_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return _normalised(value, normalise_phone)

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str | None) -> str | None:
        return _normalised(value, normalise_id_number)


class PartyPublic(SQLModel):
    """A party as shown to staff: masked unless the reader may see personal data."""

    id: int
    side: PartySide
    kind: PartyKind
    name: str
    phone: str | None
    id_number: str | None
    agent_name: str | None = None
    agent_phone: str | None = None
    consent_required: bool = True
    consented: bool
    refused: bool = False
