"""Staff: who works in which unit, with which skills and how much capacity."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import JSON, Column, Field, Session, SQLModel, col, select

from models.enums import StaffRole
from models.types import enum_type


class StaffBase(SQLModel):
    username: str = Field(max_length=64, index=True, unique=True)
    display_name: str = Field(max_length=64)
    role: StaffRole = Field(index=True, sa_type=enum_type(StaffRole))
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    skills: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    capacity: int = Field(default=10, ge=0)
    active: bool = True
    away: bool = False
    # In-service Party members (在职党员到社区报到) register with a community (``unit_id``)
    # and keep their home unit: the employer they work for.
    employer: str | None = Field(default=None, max_length=100)


class Staff(StaffBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str | None = Field(default=None, max_length=255)
    # A work mobile, encrypted like a party's (models.pii); shown masked.
    phone_enc: str | None = None
    phone_masked: str | None = Field(default=None, max_length=32)
    # Bearer tokens carry the number current when they were issued; ending the member's
    # sign-ins (models.web_sessions.revoke_sessions) moves it on, and the older tokens stop
    # working before they expire.
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


def staff_by_username(session: Session, username: str) -> Staff | None:
    """The staff member with this user name (user names are unique), or None: the one
    look-up of a person by the name they sign in with."""
    return session.exec(select(Staff).where(Staff.username == username)).first()


def display_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """The names shown for these staff ids (an id with no account is left out)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.exec(select(Staff).where(col(Staff.id).in_(wanted))).all()
    return {s.id: s.display_name for s in rows if s.id is not None}
