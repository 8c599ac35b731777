"""Parties after intake: add a party (申请人, 被申请人, 第三人; a person or an organisation,
with an agent) and edit one. Personal fields are stored as intake stores them (encrypted,
hashed, masked: :func:`models.cases.party_values`); the timeline records which fields
changed, never their values. A new party whose consent is needed means mediation waits
for that consent too.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator
from sqlmodel import Session, SQLModel
from sqlmodel._compat import SQLModelConfig

from models import lifecycle
from models.case import Case
from models.cases import party_values
from models.enums import PartyKind, PartySide
from models.errors import ConflictError, FieldProblem, NotFound, ValidationError
from models.lifecycle import Actor
from models.party import Party, PartyCreate

# Editing replaces these groups of stored columns as a whole.
_GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("org_name", "name_enc", "name_hash", "name_masked"),
    "phone": ("phone_enc", "phone_hash", "phone_masked"),
    "id_number": ("id_number_enc", "id_number_hash", "id_number_masked"),
    "address": ("address_enc",),
    "agent_name": ("agent_name_enc", "agent_name_masked"),
    "agent_phone": ("agent_phone_enc", "agent_phone_masked"),
}


class PartyUpdate(SQLModel):
    """Fields to change (absent: unchanged; an empty string clears an optional field)."""

    model_config = SQLModelConfig(extra="forbid")

    side: PartySide | None = None
    kind: PartyKind | None = None
    name: str | None = None
    phone: str | None = None
    id_number: str | None = None
    address: str | None = None
    agent_name: str | None = None
    agent_phone: str | None = None
    consent_required: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("姓名/名称不能为空 / name must not be empty")
        return value


def _begin(
    session: Session, case: Case, actor: Actor, expected_version: int | None
) -> lifecycle.Step:
    """A change of the case's parties: by staff, while the case is open."""
    step = lifecycle.step_on(session, case, actor, expected_version)
    lifecycle.require_staff(actor, "recording parties", "登记当事人")
    if not case.is_open:
        raise ConflictError(
            f"case {case.number} is {case.status.value}", f"案件已{case.status.zh}，不能修改当事人"
        )
    return step


def _wait_for_consent(case: Case, party: Party) -> None:
    if party.consent_required and not party.consented:
        case.consent_at = None


def add_party(
    session: Session,
    *,
    case: Case,
    data: PartyCreate,
    actor: Actor,
    expected_version: int | None,
) -> Party:
    step = _begin(session, case, actor, expected_version)
    assert case.id is not None
    party = Party(**party_values(case_id=case.id, data=data))
    session.add(party)
    session.flush()
    _wait_for_consent(case, party)
    step.record(
        "party_added", {"party_id": party.id, "side": party.side.value, "kind": party.kind.value}
    )
    return party


def edit_party(
    session: Session,
    *,
    case: Case,
    party_id: int,
    changes: PartyUpdate,
    actor: Actor,
    expected_version: int | None,
) -> Party:
    step = _begin(session, case, actor, expected_version)
    party = session.get(Party, party_id)
    if party is None or party.case_id != case.id:
        raise NotFound(f"no party {party_id} on this case", f"本案没有当事人 {party_id}")
    sent = changes.model_dump(exclude_unset=True)
    if not sent:
        raise ValidationError(
            "send at least one field to change",
            "请至少填写一项要修改的内容",
            problems=[FieldProblem("body", "没有要修改的内容", "nothing to change")],
        )
    merged = _merged(party, sent)
    try:
        validated = PartyCreate.model_validate(merged)
    except Exception as exc:  # pydantic's error: the same messages as at intake
        raise ValidationError(f"party: {exc}", f"当事人信息有误：{exc}") from None
    assert case.id is not None
    fresh = party_values(case_id=case.id, data=validated)
    for group, columns in _GROUPS.items():
        if group in sent or (group == "name" and "kind" in sent):
            for column in columns:
                setattr(party, column, fresh[column])
    party.side = validated.side
    party.kind = validated.kind
    party.consent_required = fresh["consent_required"]
    session.add(party)
    _wait_for_consent(case, party)
    step.record("party_edited", {"party_id": party.id, "fields": sorted(sent)})
    return party


def _merged(party: Party, sent: dict[str, Any]) -> dict[str, Any]:
    """The party as intake would take it: stored values (decrypted) with the changes."""
    from models import pii

    def clear(token: str | None) -> str | None:
        return pii.decrypt(token) if token else None

    current: dict[str, Any] = {
        "side": party.side,
        "kind": party.kind,
        "name": party.org_name or clear(party.name_enc) or "",
        "phone": clear(party.phone_enc),
        "id_number": clear(party.id_number_enc),
        "address": clear(party.address_enc),
        "agent_name": clear(party.agent_name_enc),
        "agent_phone": clear(party.agent_phone_enc),
        "consent_required": party.consent_required,
    }
    for key, value in sent.items():
        current[key] = value if value != "" else None
    return current
