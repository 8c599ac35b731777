"""Early warning (预警) and emergency notice: who hears of a dangerous or unsettling case.

* :func:`warning_context` — the facts beyond the text that raise a warning: related
  cases in the last week (same cluster), a repeat complainant (the same phone on
  another case in the dedup window), and how many communities the cluster spans.
* :func:`open_warning` — a yellow, orange or red warning opens one assessment task
  (研判任务) for the street, with its responsible leader (包案领导: a supervisor of the
  street, else the nearest above) and a deadline (red: ``risk_red_due_hours``; orange,
  yellow: working days from the settings). One task per case, and one per cluster: a
  case of a cluster whose task is open at the same level or higher opens none (a
  higher level opens a new one).
* :func:`close_warning` — the responsible leader (or a supervisor over the street)
  records the assessment's conclusion: resolved (化解稳控), monitoring (持续关注) or
  escalated (提级督办).
* :func:`emergency_recipients` — the community leader and the on-duty supervisor, who
  are told of an emergency at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from models import clock, workdays
from models.case import Case
from models.enums import StaffRole, UnitLevel
from models.errors import GuardFailed, NotFound, PermissionDenied, ValidationError
from models.lifecycle import Actor
from models.party import Party
from models.risk import Warning, WarningLevel
from models.settings import get_settings
from models.staff import Staff
from models.triage_tables import RiskWarning
from models.unit import Unit


@dataclass(frozen=True)
class Context:
    related_recent: int
    repeat_complainant: bool
    communities: int


def warning_context(session: Session, *, case: Case) -> Context:
    week_ago = clock.now() - timedelta(days=7)
    related = 0
    communities = 1
    if case.cluster_key:
        rows = session.exec(
            select(Case.unit_path).where(
                Case.cluster_key == case.cluster_key,
                col(Case.id) != case.id,
                col(Case.created_at) >= week_ago,
            )
        ).all()
        related = len(rows)
        comms = {_community_of(p) for p in rows if p} | {_community_of(case.unit_path or "")}
        communities = max(len({c for c in comms if c}), 1)
    phones = [
        p for p in session.exec(select(Party.phone_hash).where(Party.case_id == case.id)).all() if p
    ]
    repeat = False
    if phones:
        since = clock.now() - timedelta(days=get_settings().dedup_window_days)
        repeat = bool(
            session.exec(
                select(func.count())
                .select_from(Party)
                .join(Case, col(Case.id) == Party.case_id)
                .where(
                    col(Party.phone_hash).in_(phones),
                    Party.case_id != case.id,
                    col(Case.created_at) >= since,
                )
            ).one()
        )
    return Context(related, repeat, communities)


def _community_of(path: str) -> str:
    """The path down to the community: /C/D1/S1/CMA/CPA/ -> /C/D1/S1/CMA/."""
    parts = [p for p in path.split("/") if p]
    return "/" + "/".join(parts[:4]) + "/" if len(parts) >= 4 else ""


def _ancestors(session: Session, unit: Unit | None) -> list[Unit]:
    out: list[Unit] = []
    while unit is not None:
        out.append(unit)
        unit = session.get(Unit, unit.parent_id) if unit.parent_id else None
    return out


def _first_staff(session: Session, unit: Unit, roles: tuple[StaffRole, ...]) -> Staff | None:
    return session.exec(
        select(Staff)
        .where(
            Staff.unit_id == unit.id,
            col(Staff.role).in_(roles),
            col(Staff.active),
            col(Staff.away).is_(False),
        )
        .order_by(col(Staff.id))
        .limit(1)
    ).first()


def responsible_leader(session: Session, street: Unit) -> Staff | None:
    """包案领导: a supervisor of the street, else of the nearest unit above it."""
    for unit in _ancestors(session, street):
        found = _first_staff(session, unit, (StaffRole.SUPERVISOR,))
        if found is not None:
            return found
    return None


def case_units(session: Session, case: Case) -> list[Unit]:
    """The case's handling unit (else its place) and the units above it, bottom first."""
    start_id = case.unit_id or case.place_unit_id
    return _ancestors(session, session.get(Unit, start_id) if start_id else None)


def emergency_recipients(session: Session, case: Case) -> list[Staff]:
    """The community leader (its supervisor, else its first community worker) and the
    on-duty supervisor (the first supervisor present above the community)."""
    units = case_units(session, case)
    community = next((u for u in units if u.level == UnitLevel.COMMUNITY), None)
    out: list[Staff] = []
    if community is not None:
        leader = _first_staff(session, community, (StaffRole.SUPERVISOR,)) or _first_staff(
            session, community, (StaffRole.COMMUNITY_WORKER,)
        )
        if leader is not None:
            out.append(leader)
    above = [u for u in units if u.level.rank > UnitLevel.COMMUNITY.rank]
    for unit in above:
        duty = _first_staff(session, unit, (StaffRole.SUPERVISOR,))
        if duty is not None and all(duty.id != s.id for s in out):
            out.append(duty)
            break
    return out


def _due(level: WarningLevel, now: datetime) -> datetime:
    settings = get_settings()
    if level == WarningLevel.RED:
        return now + timedelta(hours=settings.risk_red_due_hours)
    days = (
        settings.risk_orange_due_days
        if level == WarningLevel.ORANGE
        else (settings.risk_yellow_due_days)
    )
    return workdays.add_working_days(now, days)


def _open_for_cluster(session: Session, case: Case) -> RiskWarning | None:
    """The open task of another case of the same cluster (the same source), if any."""
    if not case.cluster_key:
        return None
    return session.exec(
        select(RiskWarning)
        .join(Case, col(Case.id) == RiskWarning.case_id)
        .where(
            Case.cluster_key == case.cluster_key,
            RiskWarning.case_id != case.id,
            RiskWarning.status == "open",
        )
        .order_by(col(RiskWarning.id).desc())
        .limit(1)
    ).first()


def open_warning(session: Session, *, case: Case, warning: Warning) -> RiskWarning | None:
    """The assessment task for a warning (None below yellow, or without a street)."""
    assert case.id is not None
    if warning.level == WarningLevel.NONE:
        return None
    existing = session.exec(select(RiskWarning).where(RiskWarning.case_id == case.id)).first()
    if existing is not None:
        return existing
    same = _open_for_cluster(session, case)
    if same is not None and WarningLevel(same.level).rank >= warning.level.rank:
        return same  # the cluster's task is open already, at this level or higher
    units = case_units(session, case)
    street = next((u for u in units if u.level == UnitLevel.STREET), None)
    if street is None:
        street = next((u for u in units if u.level.rank >= UnitLevel.STREET.rank), None)
    if street is None or street.id is None:
        return None
    leader = responsible_leader(session, street)
    now = clock.now()
    row = RiskWarning(
        case_id=case.id,
        street_unit_id=street.id,
        level=warning.level.value,
        score=warning.score,
        reasons=list(warning.reasons),
        leader_id=leader.id if leader else None,
        due_at=_due(warning.level, now),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def mark_notified(session: Session, *, case_id: int) -> None:
    """The responsible leader has been told of the case's warning."""
    for warning in session.exec(
        select(RiskWarning).where(
            RiskWarning.case_id == case_id, col(RiskWarning.notified_at).is_(None)
        )
    ).all():
        warning.notified_at = clock.now()
        session.add(warning)


CONCLUSIONS = {
    "resolved": ("化解稳控", "settled and stable"),
    "monitoring": ("持续关注", "kept under watch"),
    "escalated": ("提级督办", "raised to a higher level"),
}


def warnings_within(
    session: Session, *, path: str | None, status: str | None = "open", limit: int = 200
) -> list[tuple[RiskWarning, Case, Unit]]:
    """Assessment tasks of streets inside ``path`` (None: all), most urgent first."""
    query = (
        select(RiskWarning, Case, Unit)
        .join(Case, col(Case.id) == RiskWarning.case_id)
        .join(Unit, col(Unit.id) == RiskWarning.street_unit_id)
    )
    if path is not None:
        query = query.where(col(Unit.path).startswith(path, autoescape=True))
    if status is not None:
        query = query.where(RiskWarning.status == status)
    rows = session.exec(query.order_by(col(RiskWarning.due_at), col(RiskWarning.id)).limit(limit))
    return [(w, c, u) for w, c, u in rows.all()]


def close_warning(
    session: Session, *, warning_id: int, actor: Actor, conclusion: str
) -> RiskWarning:
    warning = session.get(RiskWarning, warning_id)
    street = session.get(Unit, warning.street_unit_id) if warning is not None else None
    if warning is None or street is None:
        raise NotFound(f"no early warning {warning_id}", f"预警 {warning_id} 不存在")
    if conclusion not in CONCLUSIONS:
        raise ValidationError(
            f"conclusion: one of {', '.join(CONCLUSIONS)}",
            "研判结论须为：化解稳控、持续关注或提级督办",
        )
    leader = actor.staff_id is not None and actor.staff_id == warning.leader_id
    over_street = actor.role in (StaffRole.SUPERVISOR, StaffRole.ADMIN) and (
        actor.role == StaffRole.ADMIN or street.path.startswith(actor.unit_path or "\0")
    )
    if not (leader or over_street):
        raise PermissionDenied(
            "only the responsible leader or a supervisor over the street closes it",
            "只有包案领导或街道以上督办人员可以办结研判",
        )
    if warning.status != "open":
        raise GuardFailed("the assessment is closed already", "该研判已办结")
    warning.status = "closed"
    warning.conclusion = conclusion
    warning.closed_at = clock.now()
    warning.closed_by_id = actor.staff_id
    session.add(warning)
    session.flush()
    return warning
