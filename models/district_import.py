"""Loading a district from its spreadsheets: the unit tree, the staff and the paired
agencies (CSV; units also as GeoJSON). Time limits are loaded by
:mod:`models.policy_load`.

Each import is idempotent and all-or-nothing: every row is checked first and *every*
mistake is reported with its file, row and column (:class:`~models.tabular.ImportRefused`)
before anything is written; a row equal to what the database holds is left alone, so
running the same file twice changes nothing. Rows of the database missing from the file
are *left* as they are (never deleted): deactivate staff or move units explicitly.

Each import that changes something appends one entry to the administration log
(:mod:`models.admin_log`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict
from sqlalchemy import func, literal, update
from sqlmodel import Session, col, select

from models import pii, web_sessions
from models.admin_log import record
from models.case import Case
from models.enums import Category, Labelled, StaffRole, UnitLevel
from models.errors import ValidationError
from models.sign_in import issue_link, link_url
from models.staff import Staff
from models.tabular import ImportRefused, Problem, Row, problems_from, read_csv, read_geojson
from models.unit import Pairing, Unit

UNIT_COLUMNS = ("code", "name", "name_en", "level", "parent_code", "address", "lat", "lon")
STAFF_COLUMNS = ("username", "name", "role", "unit_code", "skills", "phone", "active")
STAFF_OPTIONAL = ("capacity", "away", "employer")
PAIRING_COLUMNS = ("community_code", "category", "agency_code")

# Which level a unit's parent must have. A district may be the top of an installation.
PARENT_LEVELS: dict[UnitLevel, tuple[UnitLevel, ...]] = {
    UnitLevel.CITY: (),
    UnitLevel.DISTRICT: (UnitLevel.CITY,),
    UnitLevel.AGENCY: (UnitLevel.DISTRICT, UnitLevel.CITY),
    UnitLevel.STREET: (UnitLevel.DISTRICT,),
    UnitLevel.COMMUNITY: (UnitLevel.STREET,),
    UnitLevel.COMPOUND: (UnitLevel.COMMUNITY,),
    UnitLevel.BUILDING: (UnitLevel.COMPOUND,),
}
ROOT_LEVELS = (UnitLevel.CITY, UnitLevel.DISTRICT)
E = TypeVar("E", bound=Labelled)
M = TypeVar("M", bound="_Row")
_TRUE = {"yes", "y", "true", "1", "是", "在职", "启用"}
_FALSE = {"no", "n", "false", "0", "否", "停用", "离职"}


@dataclass
class ImportReport:
    """What an import added, changed (with the fields), left unchanged, and found in the
    database but not in the file (left alone)."""

    kind: str
    added: list[str] = field(default_factory=list)
    changed: list[tuple[str, list[str]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)
    # (username, one-time sign-in link) of each new account; shown once, never stored.
    sign_in_links: list[tuple[str, str]] = field(default_factory=list)

    def note(self, key: str, changed: list[str]) -> None:
        """``key`` was in the file and already in the database: changed (naming the
        fields) if ``changed`` names any, else unchanged."""
        if changed:
            self.changed.append((key, changed))
        else:
            self.unchanged.append(key)

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed)

    def summary(self) -> str:
        return (
            f"{self.kind}: {len(self.added)} added 新增, {len(self.changed)} changed 修改, "
            f"{len(self.unchanged)} unchanged 未变, {len(self.not_in_file)} not in the file "
            "(left alone) 文件中没有（保留不动）"
        )


def _apply(record: Any, fields: dict[str, Any]) -> list[str]:
    """Set on ``record`` each of ``fields`` whose value differs; the names of those set."""
    changed = [name for name, value in fields.items() if getattr(record, name) != value]
    for name in changed:
        setattr(record, name, fields[name])
    return changed


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- parsing cells ---------------------------------------------------------------------


def parse_enum(enum_cls: type[E], raw: str, what: str) -> E:
    """A member by its value or its Chinese label (``"labour"`` or ``"劳资"``)."""
    value = raw.strip()
    for member in enum_cls:
        if value.lower() == member.value or value == member.zh:
            return member
    known = ", ".join(f"{m.value} ({m.zh})" for m in enum_cls)
    zh, _, en = what.partition(" ")
    raise ValueError(f"未知的{zh} {value!r}，可用：{known} / unknown {en or zh} {value!r}")


def _bool(raw: str, default: bool) -> bool:
    value = raw.strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"应为 yes/no（是/否），而不是 {raw!r} / expected yes or no, not {raw!r}")


def _plain(value: str, what: str, max_length: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what}不能为空 / {what} must not be empty")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ValueError(f"{what}含控制字符 / {what} contains control characters")
    if len(value) > max_length:
        raise ValueError(f"{what}超过 {max_length} 个字符 / longer than {max_length} characters")
    return value


def _code(value: str) -> str:
    value = value.strip()
    if (
        not value
        or len(value) > 32
        or not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in value)
    ):
        raise ValueError(
            f"编码 {value!r} 应为 1–32 位字母、数字或 - _ . / code {value!r} must be 1-32 "
            "letters, digits or - _ ."
        )
    return value


def _coordinate(raw: str | None, low: float, high: float) -> float | None:
    if raw is None or not str(raw).strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} 不是数字 / {raw!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{value} 超出范围 {low}…{high} / {value} is outside {low}..{high}")
    return value


# --- the columns' readers ---------------------------------------------------------------
# Each column of a row is read by one rule, named in its type below; a reader sees the raw
# cell text (pydantic's "before" validation) and raises ValueError with both languages.


def _or_blank(read: Callable[[str], Any], blank: Any = None) -> BeforeValidator:
    """A column that may be left empty (then ``blank``); otherwise read by ``read``."""
    return BeforeValidator(lambda v: read(v) if v is not None and str(v).strip() else blank)


def _text(what: str, max_length: int) -> Callable[[str], str]:
    """Plain text named ``what``: trimmed, not empty, no control characters, at most
    ``max_length`` characters."""
    return lambda v: _plain(v, what, max_length)


def _member(enum_cls: type[E], what: str) -> Callable[[str], E]:
    """A member of ``enum_cls`` by its value or Chinese label (:func:`parse_enum`)."""
    return lambda v: parse_enum(enum_cls, v, what)


def _username(v: str) -> str:
    value = v.strip().lower()
    if not (2 <= len(value) <= 64) or not all(
        ch.isascii() and (ch.isalnum() or ch in "-_.@") for ch in value
    ):
        raise ValueError(
            f"用户名 {v!r} 应为 2–64 位字母、数字或 - _ . @ / username {v!r} must be "
            "2-64 letters, digits or - _ . @"
        )
    return value


def _skills(v: str) -> list[Category]:
    parts = [p for p in str(v).replace("|", ";").replace("、", ";").split(";") if p.strip()]
    return list(dict.fromkeys(parse_enum(Category, p, "类别 category") for p in parts))


def _phone(v: str) -> str:
    try:
        return pii.normalise_phone(v)
    except ValidationError as exc:
        raise ValueError(f"{exc.message_zh} / {exc.message_en}") from None


def _capacity(v: str) -> int:
    if not str(v).strip().isdigit() or int(v) > 1000:
        raise ValueError(
            f"容量应为 0–1000 的整数，而不是 {v!r} / capacity must be a whole number 0-1000"
        )
    return int(v)


Code = Annotated[str, BeforeValidator(_code)]
CodeOrNone = Annotated[str | None, _or_blank(_code)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore")


class UnitRow(_Row):
    code: Code
    name: Annotated[str, BeforeValidator(_text("名称 name", 100))]
    name_en: Annotated[str, _or_blank(_text("英文名 name_en", 100), "")] = ""
    level: Annotated[UnitLevel, BeforeValidator(_member(UnitLevel, "层级 level"))]
    parent_code: CodeOrNone = None
    address: Annotated[str | None, _or_blank(_text("地址 address", 200))] = None
    lat: Annotated[float | None, BeforeValidator(lambda v: _coordinate(v, -90, 90))] = None
    lon: Annotated[float | None, BeforeValidator(lambda v: _coordinate(v, -180, 180))] = None


class StaffRow(_Row):
    username: Annotated[str, BeforeValidator(_username)]
    name: Annotated[str, BeforeValidator(_text("姓名 name", 64))]
    role: Annotated[StaffRole, BeforeValidator(_member(StaffRole, "角色 role"))]
    unit_code: CodeOrNone = None
    skills: Annotated[list[Category], BeforeValidator(_skills)] = []
    phone: Annotated[str | None, _or_blank(_phone)] = None
    active: Annotated[bool, BeforeValidator(lambda v: _bool(v, True))] = True
    capacity: Annotated[int | None, _or_blank(_capacity)] = None
    away: Annotated[bool | None, _or_blank(lambda v: _bool(v, False))] = None
    # In-service Party members (在职党员) registered with a community: their home unit.
    employer: str | None = None


class PairingRow(_Row):
    community_code: Code
    category: Annotated[Category, BeforeValidator(_member(Category, "类别 category"))]
    agency_code: Code


def _parse(model: type[M], rows: list[Row], file: str) -> tuple[list[tuple[Row, M]], list[Problem]]:
    parsed: list[tuple[Row, M]] = []
    problems: list[Problem] = []
    for row in rows:
        try:
            parsed.append((row, model.model_validate(row.cells)))
        except pydantic.ValidationError as exc:
            problems += problems_from(exc, file, row.number)
    return parsed, problems


def _unknown_units_of_refused_rows(
    rows: list[Row],
    parsed: list[tuple[Row, Any]],
    problems: list[Problem],
    columns: tuple[str, ...],
    units: Mapping[str, Unit],
    file: str,
) -> list[Problem]:
    """Unknown unit codes on the rows that failed to parse, so that one pass tells every
    problem (a row with a bad phone number and an unknown unit said the second only once
    the first was mended). A cell already reported (a malformed code) is not told twice."""
    ok = {row.number for row, _spec in parsed}
    told = {(p.row, p.column) for p in problems}
    found: list[Problem] = []
    for row in rows:
        for column in columns:
            code = (row.cells.get(column) or "").strip()
            if row.number in ok or not code or code in units or (row.number, column) in told:
                continue
            zh, en = (
                f"单位编码 {code} 不存在（请先导入单位）",
                f"unknown unit {code} (import the units first)",
            )
            found.append(_problem(file, row.number, column, zh, en))
    return found


def _refuse_if(problems: list[Problem]) -> None:
    if problems:
        raise ImportRefused(sorted(problems, key=lambda p: (p.file, p.row, p.column)))


def _problem(file: str, row: int, column: str, zh: str, en: str) -> Problem:
    return Problem(file, row, column, zh, en)


# --- units ------------------------------------------------------------------------------


def read_unit_rows(path: Path) -> list[Row]:
    if path.suffix.lower() in (".geojson", ".json"):
        return read_geojson(path, columns=UNIT_COLUMNS)
    return read_csv(path, required=UNIT_COLUMNS)


def _check_units(
    parsed: list[tuple[Row, UnitRow]], existing: dict[str, Unit], file: str
) -> tuple[dict[str, tuple[Row, UnitRow]], list[Problem]]:
    problems: list[Problem] = []
    in_file: dict[str, tuple[Row, UnitRow]] = {}
    for row, unit in parsed:
        if unit.code in in_file:
            first = in_file[unit.code][0].number
            problems.append(
                _problem(
                    file,
                    row.number,
                    "code",
                    f"编码 {unit.code} 重复（第 {first} 行已有）",
                    f"duplicate code {unit.code} (already on row {first})",
                )
            )
        else:
            in_file[unit.code] = (row, unit)

    def level_of(code: str) -> UnitLevel | None:
        if code in in_file:
            return in_file[code][1].level
        return existing[code].level if code in existing else None

    for code, (row, unit) in in_file.items():
        old = existing.get(code)
        if old is not None and old.level != unit.level:
            problems.append(
                _problem(
                    file,
                    row.number,
                    "level",
                    f"{code} 已是{old.level.zh}，不能改为{unit.level.zh}",
                    f"{code} is already a {old.level.en}; its level cannot change",
                )
            )
        allowed = PARENT_LEVELS[unit.level]
        if unit.parent_code is None:
            if unit.level not in ROOT_LEVELS:
                problems.append(
                    _problem(
                        file,
                        row.number,
                        "parent_code",
                        f"{unit.level.zh}必须填写上级编码",
                        f"a {unit.level.en} needs a parent_code",
                    )
                )
            continue
        parent_level = level_of(unit.parent_code)
        if parent_level is None:
            problems.append(
                _problem(
                    file,
                    row.number,
                    "parent_code",
                    f"上级编码 {unit.parent_code} 不存在（文件和数据库中都没有）",
                    f"unknown parent {unit.parent_code} (neither in the file nor the database)",
                )
            )
        elif parent_level not in allowed:
            want_zh = "或".join(lv.zh for lv in allowed) or "无"
            want_en = " or ".join(lv.en for lv in allowed) or "nothing"
            problems.append(
                _problem(
                    file,
                    row.number,
                    "level",
                    f"层级顺序错误：{unit.level.zh}的上级应为{want_zh}，"
                    f"而 {unit.parent_code} 是{parent_level.zh}",
                    f"wrong level order: a {unit.level.en} sits under a {want_en}, "
                    f"but {unit.parent_code} is a {parent_level.en}",
                )
            )
    return in_file, problems


def import_units(
    session: Session,
    rows: list[Row],
    *,
    file: str,
    actor: str,
    digest: str = "",
    action: str | None = None,
) -> ImportReport:
    """Add and update units from ``rows``; a changed parent moves the unit (and its
    subtree, and the cases filed there) without touching any case's history."""
    parsed, problems = _parse(UnitRow, rows, file)
    existing = {u.code: u for u in session.exec(select(Unit)).all()}
    in_file, more = _check_units(parsed, existing, file)
    _refuse_if(problems + more)
    report = ImportReport("units 单位")
    parents_in_file = {u.parent_code for _, u in in_file.values() if u.parent_code}
    order = _parents_first(list(in_file.values()))
    for row, spec in order:
        parent = existing.get(spec.parent_code) if spec.parent_code else None
        fields: dict[str, Any] = {
            "name_zh": spec.name,
            "name_en": spec.name_en or spec.name,
            "address": spec.address,
            "lat": spec.lat,
            "lon": spec.lon,
        }
        if row.extra and "boundary" in row.extra:
            fields["boundary"] = row.extra["boundary"]
        unit = existing.get(spec.code)
        if unit is None:
            unit = Unit(
                code=spec.code,
                level=spec.level,
                parent_id=parent.id if parent else None,
                path=(parent.path if parent else "/") + spec.code + "/",
                **fields,
            )
            session.add(unit)
            if spec.code in parents_in_file:
                session.flush()  # its children need the id
            existing[spec.code] = unit
            report.added.append(spec.code)
            continue
        changed = _apply(unit, fields)
        if (parent.id if parent else None) != unit.parent_id:
            move_unit(session, unit, parent)
            changed.append("parent_code")
        if changed:
            session.add(unit)
        report.note(spec.code, changed)
    session.flush()
    report.not_in_file = sorted(set(existing) - set(in_file))
    log_import(session, report, actor=actor, file=file, digest=digest, action=action)
    return report


def _parents_first(rows: list[tuple[Row, UnitRow]]) -> list[tuple[Row, UnitRow]]:
    """File order, except that a unit waits for a parent listed after it."""
    codes = {u.code for _, u in rows}
    placed: set[str] = set()
    out: list[tuple[Row, UnitRow]] = []
    pending = rows
    while pending:
        waiting: list[tuple[Row, UnitRow]] = []
        for row, unit in pending:
            if unit.parent_code in codes and unit.parent_code not in placed:
                waiting.append((row, unit))
            else:
                out.append((row, unit))
                placed.add(unit.code)
        pending = waiting  # levels are strictly ordered, so this ends within 6 passes
    return out


def move_unit(session: Session, unit: Unit, parent: Unit | None) -> None:
    """Put ``unit`` under ``parent``: its subtree's paths and the reach paths of the cases
    filed there follow; case events are not touched, so every history stays whole."""
    session.flush()
    old = unit.path
    new = (parent.path if parent else "/") + unit.code + "/"
    tail = func.substr(col(Unit.path), len(old) + 1)
    session.exec(
        update(Unit)
        .where(col(Unit.path).startswith(old, autoescape=True))
        .values(path=literal(new) + tail)
        .execution_options(synchronize_session="fetch")
    )
    session.exec(
        update(Case)
        .where(col(Case.unit_path).startswith(old, autoescape=True))
        .values(unit_path=literal(new) + func.substr(col(Case.unit_path), len(old) + 1))
        .execution_options(synchronize_session="fetch")
    )
    unit.parent_id = parent.id if parent else None
    unit.path = new
    session.add(unit)
    session.flush()


# --- staff ------------------------------------------------------------------------------


def _staff_fields(spec: StaffRow, unit_id: int | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "display_name": spec.name,
        "role": spec.role,
        "unit_id": unit_id,
        "skills": [c.value for c in spec.skills],
        "active": spec.active,
    }
    if spec.capacity is not None:
        fields["capacity"] = spec.capacity
    if spec.away is not None:
        fields["away"] = spec.away
    if spec.employer:
        fields["employer"] = spec.employer.strip()[:100]
    return fields


def _phone_of(staff: Staff) -> str | None:
    return pii.decrypt(staff.phone_enc) if staff.phone_enc else None


def _set_phone(staff: Staff, phone: str | None) -> None:
    staff.phone_enc = pii.encrypt(phone) if phone else None
    staff.phone_masked = pii.mask_phone(phone) if phone else None


def import_staff(
    session: Session,
    rows: list[Row],
    *,
    file: str,
    actor: str,
    digest: str = "",
    password_hash: str | None = None,
    action: str | None = None,
) -> ImportReport:
    """Add and update staff accounts. A new account gets a one-time sign-in link (in the
    report, shown once) unless ``password_hash`` is given (the demo city's documented
    shared sign-in only)."""
    parsed, problems = _parse(StaffRow, rows, file)
    units = {u.code: u for u in session.exec(select(Unit)).all()}
    seen: dict[str, int] = {}
    for row, spec in parsed:
        if spec.username in seen:
            problems.append(
                _problem(
                    file,
                    row.number,
                    "username",
                    f"用户名 {spec.username} 重复（第 {seen[spec.username]} 行已有）",
                    f"duplicate username {spec.username} (already on row {seen[spec.username]})",
                )
            )
        seen.setdefault(spec.username, row.number)
        if spec.unit_code is None and spec.role != StaffRole.ADMIN:
            problems.append(
                _problem(
                    file,
                    row.number,
                    "unit_code",
                    "除系统管理员外必须填写所属单位",
                    "unit_code is required (only an admin may leave it blank)",
                )
            )
        elif spec.unit_code is not None and spec.unit_code not in units:
            problems.append(
                _problem(
                    file,
                    row.number,
                    "unit_code",
                    f"单位编码 {spec.unit_code} 不存在（请先导入单位）",
                    f"unknown unit {spec.unit_code} (import the units first)",
                )
            )
    problems += _unknown_units_of_refused_rows(rows, parsed, problems, ("unit_code",), units, file)
    _refuse_if(problems)
    existing = {s.username: s for s in session.exec(select(Staff)).all()}
    report = ImportReport("staff 工作人员")
    for _row, spec in parsed:
        unit = units.get(spec.unit_code) if spec.unit_code else None
        fields = _staff_fields(spec, unit.id if unit else None)
        member = existing.get(spec.username)
        if member is None:
            member = Staff(username=spec.username, password_hash=password_hash, **fields)
            _set_phone(member, spec.phone)
            session.add(member)
            session.flush()
            assert member.id is not None
            report.added.append(spec.username)
            if password_hash is None:
                report.sign_in_links.append(
                    (spec.username, link_url(issue_link(session, member.id)))
                )
            continue
        changed = _apply(member, fields)
        if _phone_of(member) != spec.phone:
            _set_phone(member, spec.phone)
            changed.append("phone")
        if changed:
            session.add(member)
        if "active" in changed and not member.active:
            assert member.id is not None
            # Signed-in pages end now; API tokens within the principal cache's 5 s.
            web_sessions.revoke_sessions(session, member.id, why="deactivated")
        report.note(spec.username, changed)
    session.flush()
    report.not_in_file = sorted(set(existing) - set(seen))
    log_import(session, report, actor=actor, file=file, digest=digest, action=action)
    return report


# --- pairings ---------------------------------------------------------------------------


def import_pairings(
    session: Session, rows: list[Row], *, file: str, actor: str, digest: str = ""
) -> ImportReport:
    """Pair communities with agencies per category (结对共建)."""
    parsed, problems = _parse(PairingRow, rows, file)
    units = {u.code: u for u in session.exec(select(Unit)).all()}
    seen: dict[tuple[str, Category], int] = {}
    for row, spec in parsed:
        key = (spec.community_code, spec.category)
        if key in seen:
            problems.append(
                _problem(
                    file,
                    row.number,
                    "category",
                    f"{spec.community_code} 的{spec.category.zh}类已在第 {seen[key]} 行结对",
                    f"{spec.community_code} is already paired for {spec.category.en} "
                    f"on row {seen[key]}",
                )
            )
        seen.setdefault(key, row.number)
        for column, code, level in (
            ("community_code", spec.community_code, UnitLevel.COMMUNITY),
            ("agency_code", spec.agency_code, UnitLevel.AGENCY),
        ):
            unit = units.get(code)
            if unit is None:
                problems.append(
                    _problem(
                        file, row.number, column, f"单位编码 {code} 不存在", f"unknown unit {code}"
                    )
                )
            elif unit.level != level:
                problems.append(
                    _problem(
                        file,
                        row.number,
                        column,
                        f"{code} 是{unit.level.zh}，不是{level.zh}",
                        f"{code} is a {unit.level.en}, not a {level.en}",
                    )
                )
    columns = ("community_code", "agency_code")
    problems += _unknown_units_of_refused_rows(rows, parsed, problems, columns, units, file)
    _refuse_if(problems)
    by_id = {u.id: u.code for u in units.values()}
    existing = {(by_id[p.community_id], p.category): p for p in session.exec(select(Pairing)).all()}
    report = ImportReport("pairings 结对")
    for _row, spec in parsed:
        key = (spec.community_code, spec.category)
        label = f"{spec.community_code}/{spec.category.value}"
        agency_id = units[spec.agency_code].id
        pairing = existing.get(key)
        if pairing is None:
            community_id = units[spec.community_code].id
            assert community_id is not None and agency_id is not None
            session.add(
                Pairing(community_id=community_id, agency_id=agency_id, category=spec.category)
            )
            report.added.append(label)
        elif pairing.agency_id != agency_id:
            assert agency_id is not None
            pairing.agency_id = agency_id
            session.add(pairing)
            report.changed.append((label, ["agency_code"]))
        else:
            report.unchanged.append(label)
    session.flush()
    report.not_in_file = sorted(f"{c}/{cat.value}" for c, cat in set(existing) - set(seen))
    log_import(session, report, actor=actor, file=file, digest=digest)
    return report


def log_import(
    session: Session,
    report: ImportReport,
    *,
    actor: str,
    file: str,
    digest: str,
    action: str | None = None,
) -> None:
    """One administration-log entry for an import that changed something."""
    if not report.touched:
        return
    record(
        session,
        actor=actor,
        action=action or f"import.{report.kind.split()[0]}",
        target=file,
        detail={
            "sha256": digest,
            "added": len(report.added),
            "changed": len(report.changed),
            "unchanged": len(report.unchanged),
            # Codes and field names, never values: a phone number stays out of the log.
            "items": [*report.added, *(f"{k}: {', '.join(f)}" for k, f in report.changed)][:50],
        },
    )


def read_staff_rows(path: Path) -> list[Row]:
    return read_csv(path, required=STAFF_COLUMNS, optional=STAFF_OPTIONAL)


def read_pairing_rows(path: Path) -> list[Row]:
    return read_csv(path, required=PAIRING_COLUMNS)
