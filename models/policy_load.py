"""Loading the time limits (时限规则) from a TOML file; the set it replaces is kept.

A file is a list of ``[[limit]]`` tables, most specific first where it matters::

    [[limit]]
    name = "劳资·社区：7个工作日后转结对部门 Labour at community: 7 working days"
    category = "labour"        # optional: relocation, labour, ... (or 劳资 ...)
    priority = "normal"        # optional: emergency, high, normal, consultation
    level = "community"        # optional: building ... district, agency
    respond = "1 working_day"  # N working_hours | N working_days | N calendar_days | same_day
    resolve = "7 working_days"
    when_passed = "refer"      # escalate (提级督办: one level up, default) | refer (paired agency)

A case takes the matching limit with the most of category, priority and level set; on a
tie, the one earlier in the file (:func:`models.deadlines.pick_policy`). The file must
have one limit that sets none of them (the default for everything else), and no two
limits may set the same selection (the second could never apply). Cases keep the
deadlines they were given; a new set applies to deadlines computed after it is loaded.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field

import pydantic
from pydantic import BaseModel, ConfigDict, field_validator
from sqlmodel import Session, col, delete, select

from models import clock
from models.admin_log import record
from models.district_import import parse_enum
from models.enums import Category, ExpiryAction, Priority, UnitLevel
from models.policy import LimitUnit, PolicySet, TimeLimitPolicy
from models.tabular import ImportRefused, Problem, decode, problems_from

_LIMIT = re.compile(r"^(\d{1,3})\s*(?:个)?\s*([a-z_]+|工作日|工作小时|自然日)$")
_UNITS = {
    "working_hour": LimitUnit.WORKING_HOURS,
    "working_hours": LimitUnit.WORKING_HOURS,
    "工作小时": LimitUnit.WORKING_HOURS,
    "working_day": LimitUnit.WORKING_DAYS,
    "working_days": LimitUnit.WORKING_DAYS,
    "工作日": LimitUnit.WORKING_DAYS,
    "calendar_day": LimitUnit.CALENDAR_DAYS,
    "calendar_days": LimitUnit.CALENDAR_DAYS,
    "自然日": LimitUnit.CALENDAR_DAYS,
}
WHEN_PASSED = {"escalate": ExpiryAction.ESCALATE, "refer": ExpiryAction.REFER}


def parse_limit(raw: str) -> tuple[int, LimitUnit]:
    """``"7 working_days"`` → ``(7, WORKING_DAYS)``; ``"same_day"`` or ``"当日"`` →
    ``(0, SAME_DAY)``."""
    value = raw.strip().lower()
    if value in ("same_day", "当日", "当日办结"):
        return 0, LimitUnit.SAME_DAY
    match = _LIMIT.match(value)
    if match is None or match.group(2) not in _UNITS or int(match.group(1)) == 0:
        raise ValueError(
            f"时限 {raw!r} 应写作「7 working_days」「4 working_hours」「30 calendar_days」或 "
            f"「same_day」 / limit {raw!r} must read like 7 working_days, 4 working_hours, "
            "30 calendar_days or same_day"
        )
    return int(match.group(1)), _UNITS[match.group(2)]


def format_limit(value: int, unit: LimitUnit) -> str:
    if unit == LimitUnit.SAME_DAY:
        return "same_day"
    word = unit.value.removesuffix("s") if value == 1 else unit.value
    return f"{value} {word}"


class LimitEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    category: Category | None = None
    priority: Priority | None = None
    level: UnitLevel | None = None
    respond: tuple[int, LimitUnit]
    resolve: tuple[int, LimitUnit]
    when_passed: str = "escalate"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not 1 <= len(v) <= 100:
            raise ValueError("名称应为 1–100 个字符 / name must be 1-100 characters")
        return v

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, v: str | None) -> Category | None:
        return parse_enum(Category, v, "类别 category") if v else None

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, v: str | None) -> Priority | None:
        return parse_enum(Priority, v, "优先级 priority") if v else None

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, v: str | None) -> UnitLevel | None:
        return parse_enum(UnitLevel, v, "层级 level") if v else None

    @field_validator("respond", "resolve", mode="before")
    @classmethod
    def _limit(cls, v: object) -> tuple[int, LimitUnit]:
        if not isinstance(v, str):
            raise ValueError('应为文字，如 "7 working_days" / must be text like "7 working_days"')
        return parse_limit(v)

    @field_validator("when_passed")
    @classmethod
    def _when(cls, v: str) -> str:
        if v not in WHEN_PASSED:
            raise ValueError(
                f"when_passed 应为 escalate（提级督办）或 refer（转结对部门），而不是 {v!r} / "
                f"when_passed must be escalate or refer, not {v!r}"
            )
        return v

    @property
    def selection(self) -> tuple[str | None, str | None, str | None]:
        return (self.category, self.priority, self.level)

    def to_row(self) -> TimeLimitPolicy:
        return TimeLimitPolicy(
            name=self.name,
            category=self.category,
            priority=self.priority,
            level=self.level,
            response_value=self.respond[0],
            response_unit=self.respond[1],
            resolution_value=self.resolve[0],
            resolution_unit=self.resolve[1],
            on_expiry=WHEN_PASSED[self.when_passed],
        )


def _key(row: TimeLimitPolicy) -> tuple[object, ...]:
    return (
        row.name,
        row.category,
        row.priority,
        row.level,
        row.response_value,
        row.response_unit,
        row.resolution_value,
        row.resolution_unit,
        row.on_expiry,
    )


def parse_policies(text: str, file: str) -> list[LimitEntry]:
    """The limits of a policy document, or :class:`ImportRefused` with every mistake
    (row = the line of the limit's ``[[limit]]`` header)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = int(m.group(1)) if (m := re.search(r"line (\d+)", str(exc))) else 0
        raise ImportRefused(
            [Problem(file, line, "", f"TOML 格式错误：{exc}", f"not valid TOML: {exc}")]
        ) from None
    lines = [n for n, s in enumerate(text.splitlines(), start=1) if s.strip() == "[[limit]]"]
    problems = [
        Problem(
            file, 0, key, f"未知的键 {key}（应为 [[limit]]）", f"unknown key {key} (use [[limit]])"
        )
        for key in doc
        if key != "limit"
    ]
    entries: list[tuple[int, LimitEntry]] = []
    for n, raw in enumerate(doc.get("limit", []), start=1):
        line = lines[n - 1] if n <= len(lines) else n
        try:
            entries.append((line, LimitEntry.model_validate(raw)))
        except pydantic.ValidationError as exc:
            problems += problems_from(exc, file, line)
    seen: dict[tuple[str | None, str | None, str | None], int] = {}
    for line, entry in entries:
        if entry.selection in seen:
            problems.append(
                Problem(
                    file,
                    line,
                    "",
                    f"与第 {seen[entry.selection]} 行的条件完全相同，永远不会生效",
                    f"same category/priority/level as line {seen[entry.selection]}: "
                    "it could never apply",
                )
            )
        seen.setdefault(entry.selection, line)
        if entry.resolve[1] == LimitUnit.SAME_DAY and entry.respond[1] not in (
            LimitUnit.SAME_DAY,
            LimitUnit.WORKING_HOURS,
        ):
            problems.append(
                Problem(
                    file,
                    line,
                    "respond",
                    "当日办结的案件应在数个工作小时内响应",
                    "a same-day case must be answered within working hours",
                )
            )
    if entries and (None, None, None) not in seen:
        problems.append(
            Problem(
                file,
                0,
                "",
                "缺少默认时限（不设 category、priority、level 的一条）",
                "no default limit (one that sets none of category, priority, level)",
            )
        )
    if not entries and not problems:
        problems.append(Problem(file, 0, "", "文件中没有 [[limit]]", "the file has no [[limit]]"))
    if problems:
        raise ImportRefused(sorted(problems, key=lambda p: (p.row, p.column)))
    return [entry for _, entry in entries]


@dataclass
class PolicyReport:
    limits: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: bool = False

    def summary(self) -> str:
        if self.unchanged:
            return (
                f"policies 时限规则: {self.limits} limits, the same as in force; nothing "
                "changed 与现行规则相同，未更改"
            )
        return (
            f"policies 时限规则: {self.limits} limits now in force 现行; {len(self.added)} new or "
            f"changed 新增或修改, {len(self.removed)} no longer in force 不再适用; "
            "the previous set "
            "is kept as history 旧规则已存档"
        )


def load_policies(session: Session, text: str, *, file: str, actor: str) -> PolicyReport:
    """Make the limits of ``text`` the ones in force (in file order), keeping the set they
    replace as history. Loading the set already in force changes nothing."""
    rows = [entry.to_row() for entry in parse_policies(text, file)]
    current = list(session.exec(select(TimeLimitPolicy).order_by(col(TimeLimitPolicy.id))).all())
    report = PolicyReport(limits=len(rows))
    old_keys, new_keys = [_key(r) for r in current], [_key(r) for r in rows]
    if old_keys == new_keys:
        report.unchanged = True
        return report
    report.added = [r.name for r in rows if _key(r) not in old_keys]
    report.removed = [r.name for r in current if _key(r) not in new_keys]
    for previous in session.exec(select(PolicySet).where(col(PolicySet.active))).all():
        previous.active = False
        session.add(previous)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    session.add(
        PolicySet(
            loaded_at=clock.now(),
            loaded_by=actor,
            source=file[:200],
            sha256=digest,
            limits=len(rows),
            document=text,
        )
    )
    session.exec(delete(TimeLimitPolicy))
    session.add_all(rows)
    session.flush()
    record(
        session,
        actor=actor,
        action="policies.load",
        target=file,
        detail={
            "sha256": digest,
            "limits": len(rows),
            "changed": len(report.added),
            "removed": len(report.removed),
        },
    )
    return report


def read_policy_file(data: bytes, file: str) -> str:
    return decode(data, file)


def policy_history(session: Session) -> list[PolicySet]:
    return list(session.exec(select(PolicySet).order_by(col(PolicySet.id).desc())).all())


def to_toml(rows: list[TimeLimitPolicy]) -> str:
    """The limits as a policy document (what :func:`load_policies` reads back)."""
    out: list[str] = []
    for row in rows:
        out.append("[[limit]]")
        out.append(f"name = {_quote(row.name)}")
        for key in ("category", "priority", "level"):
            value = getattr(row, key)
            if value is not None:
                out.append(f'{key} = "{value.value}"')
        out.append(f'respond = "{format_limit(row.response_value, row.response_unit)}"')
        out.append(f'resolve = "{format_limit(row.resolution_value, row.resolution_unit)}"')
        out.append(f'when_passed = "{row.on_expiry.value}"')
        out.append("")
    return "\n".join(out)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
