"""A policy-simulation scenario (情景), read from a TOML file.

A scenario says what differs from the district as it is: the time limits (a policy
document as ``tiaojie policies load`` reads it, inline or in a file beside the scenario),
staffing changes, the people's behaviour, and where the complaints come from::

    name = "劳资环境动迁：社区先办7个工作日 Heavy cases: 7 working days at the community"
    policies = "policies-7days.toml"     # optional: else the district's policies in force

    [[staffing]]                          # optional, any number
    unit = "D01-S01"                   # a unit's code
    role = "mediator"                     # a StaffRole value
    add = 2                               # people added (negative: taken away)

    [behaviour]                           # optional: any BehaviourModel field
    satisfied = 0.9
    refer_after_failure = 0.4
    [behaviour.rates.labour]              # optional: a category's chances
    success = 0.7

    [arrivals]                            # optional: default "replay"
    mode = "generate"                     # replay (history's own cases) | generate
    per_working_day = 12                  # generate: complaints per working day
    mix = { labour = 0.2, neighbour = 0.5, environment = 0.3 }
    seasonality = { 1 = 1.5, 2 = 1.3 }    # month -> factor (wage claims before 春节)

Inline limits are ``[[limit]]`` tables exactly as in a policy file. Every mistake is
reported at once, with the file's name, and the simulation does not start.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.enums import Category, StaffRole
from models.policy_load import parse_policies
from models.tabular import ImportRefused


class ScenarioError(ValueError):
    """A scenario file that cannot be used (message in both languages)."""


class StaffChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str = Field(min_length=1, max_length=32)
    role: StaffRole = StaffRole.MEDIATOR
    add: int = Field(ge=-50, le=50)


class RateOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    settle_directly: float | None = Field(default=None, ge=0, le=1)
    consent: float | None = Field(default=None, ge=0, le=1)
    success: float | None = Field(default=None, ge=0, le=1)
    mediation_days: tuple[float, float] | None = None


class Arrivals(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["replay", "generate"] = "replay"
    per_working_day: float = Field(default=10.0, gt=0, le=10000)
    mix: dict[Category, float] = Field(default_factory=dict)
    seasonality: dict[int, float] = Field(default_factory=dict)
    group_share: float = Field(default=0.03, ge=0, le=1)


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    policies: str | None = None
    limit: list[dict[str, Any]] = Field(default_factory=list)
    staffing: list[StaffChange] = Field(default_factory=list)
    behaviour: dict[str, Any] = Field(default_factory=dict)
    arrivals: Arrivals = Field(default_factory=Arrivals)


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: ``policy_text`` is a policy document (None: keep the
    district's), ``behaviour`` the overrides of :class:`models.behaviour.BehaviourModel`."""

    key: str  # the file's stem: names the scenario in summary.json and the report
    name: str
    description: str
    policy_text: str | None
    staffing: tuple[StaffChange, ...]
    behaviour: dict[str, Any]
    rates: dict[Category, RateOverride]
    arrivals: Arrivals
    source: str = field(default="")


_BEHAVIOUR_FIELDS = {
    "contact_hours",
    "settle_days",
    "consultation_settles",
    "sign_hours",
    "agency_returns",
    "agency_days",
    "refer_after_failure",
    "visit_hours",
    "satisfied",
    "respond_hours",
    "absence",
    "capacity",
}


def _dump_limits(limits: list[dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    blocks = [
        "[[limit]]\n" + "\n".join(f"{k} = {value(v)}" for k, v in row.items()) for row in limits
    ]
    return "\n\n".join(blocks) + "\n"


def _behaviour(
    raw: dict[str, Any], file: str
) -> tuple[dict[str, Any], dict[Category, RateOverride]]:
    rates_raw = raw.get("rates", {})
    unknown = sorted(set(raw) - _BEHAVIOUR_FIELDS - {"rates"})
    if unknown:
        raise ScenarioError(
            f"{file}: [behaviour] 无此参数 {unknown} / unknown behaviour parameters {unknown}; "
            f"known: {sorted(_BEHAVIOUR_FIELDS)}"
        )
    plain: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "rates":
            continue
        plain[key] = tuple(value) if isinstance(value, list) else value
    try:
        rates = {Category(k): RateOverride.model_validate(v) for k, v in rates_raw.items()}
    except (ValueError, ValidationError) as exc:
        raise ScenarioError(f"{file}: [behaviour.rates] {exc}") from None
    return plain, rates


def parse_scenario(text: str, *, file: str, folder: Path | None = None) -> Scenario:
    """The scenario of a TOML document (``folder``: where a ``policies`` file is looked up)."""
    try:
        doc = ScenarioFile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{file}: TOML 格式错误 / not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ScenarioError(f"{file}: 情景文件有误 / the scenario is not valid:\n{exc}") from None
    if doc.policies and doc.limit:
        raise ScenarioError(
            f"{file}: policies 与 [[limit]] 只能二选一 / "
            "give either policies or [[limit]], not both"
        )
    policy_text: str | None = None
    if doc.policies:
        path = (folder or Path(".")) / doc.policies
        if not path.is_file():
            raise ScenarioError(f"{file}: 找不到时限文件 / policy file not found: {doc.policies}")
        policy_text = path.read_text(encoding="utf-8")
    elif doc.limit:
        policy_text = _dump_limits(doc.limit)
    if policy_text is not None:
        try:
            parse_policies(policy_text, doc.policies or file)
        except ImportRefused as exc:
            lines = "\n".join(str(p) for p in exc.file_problems)
            raise ScenarioError(
                f"{file}: 时限有误 / the time limits are not valid:\n{lines}"
            ) from None
    behaviour, rates = _behaviour(doc.behaviour, file)
    return Scenario(
        key=Path(file).stem,
        name=doc.name,
        description=doc.description,
        policy_text=policy_text,
        staffing=tuple(doc.staffing),
        behaviour=behaviour,
        rates=rates,
        arrivals=doc.arrivals,
        source=file,
    )


def read_scenario(path: Path) -> Scenario:
    return parse_scenario(path.read_text(encoding="utf-8"), file=path.name, folder=path.parent)
