"""documents: how long the mediation documents take to make, as a mediator waits for them.

One case is mediated to closure through the domain (acceptance, a named mediator,
consent, ``sessions`` sessions with their minutes, an agreement with three terms, its
scan and a photo attached, the return visit), then its agreement PDF and its archive
(卷宗: cover, contents, every document and both attachments in one PDF) are generated
``runs`` times each, as ``GET /api/v1/cases/{id}/documents/{kind}.pdf`` generates them
(reading the case included). Target: p95 under 1 s each.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.common import Workspace
from bench.config import Sizes

PHOTO = Path(__file__).resolve().parents[1] / "models" / "documents" / "testdata" / "stamp.png"


COMPLAINANT = {"side": "complainant", "kind": "person", "name": "王小明", "phone": "13800138000"}
RESPONDENT = {"side": "respondent", "kind": "firm", "name": "江心市恒达电子厂"}

VISIT = {
    "outcome": "carried_out",
    "resolved": "resolved",
    "satisfied": "satisfied",
    "notes": "已按期履行",
}


def _city(session: Any) -> tuple[Any, Any]:
    from models.enums import Category, StaffRole, UnitLevel
    from models.policy import TimeLimitPolicy
    from models.staff import Staff
    from models.unit import Unit

    path = "/"
    parent = None
    units = {}
    for code, level, name in (
        ("C", UnitLevel.CITY, "江心市"),
        ("D1", UnitLevel.DISTRICT, "东湖区"),
        ("S1", UnitLevel.STREET, "柳河街道"),
        ("CMA", UnitLevel.COMMUNITY, "桂花社区"),
        ("BA1", UnitLevel.BUILDING, "1号楼"),
    ):
        path = f"{path}{code}/"
        unit = Unit(code=code, name_zh=name, name_en=code, level=level, path=path)
        unit.parent_id = parent
        session.add(unit)
        session.flush()
        parent = unit.id
        units[code] = unit
    mediator = Staff(
        username="mediator",
        display_name="陈调解",
        role=StaffRole.MEDIATOR,
        unit_id=units["CMA"].id,
        skills=[c.value for c in Category],
    )
    session.add(mediator)
    session.add(TimeLimitPolicy(name="complaint"))
    session.flush()
    return units, mediator


def _closed_case(session: Any, sessions: int) -> int:
    from models import clock, lifecycle
    from models.acceptance import review_acceptance
    from models.attachments import add_attachment
    from models.case import CaseCreate
    from models.cases import create_case
    from models.documents import render
    from models.follow_up import FollowUpRecord
    from models.follow_ups import record_follow_up, schedule_follow_ups, settle_after_follow_up
    from models.mediating import record_consent, record_session, sign_agreement, start_mediation
    from models.mediation import AgreementCreate, SessionCreate
    from models.mediators import name_mediators

    units, mediator = _city(session)
    system = lifecycle.Actor.system()
    actor = lifecycle.Actor(kind="staff", staff_id=mediator.id, role=mediator.role)
    case = create_case(
        session,
        data=CaseCreate.model_validate(
            {
                "category": "labour",
                "description": "电子厂拖欠二十名工人三个月工资，工人多次讨要未果。",
                "place_code": "BA1",
                "people_affected": 20,
                "parties": [COMPLAINANT, RESPONDENT],
            }
        ),
        actor=system,
    )
    cid = case.id or 0
    case.unit_id, case.unit_path = units["CMA"].id, units["CMA"].path
    case.resolution_due_at = clock.now() + timedelta(days=20)
    case.assignee_id = mediator.id
    lifecycle.apply(session, case=case, verb="triaged", actor=system)
    lifecycle.apply(session, case=case, verb="assigned", actor=system)
    review_acceptance(
        session, case_id=cid, accepted=True, reason=None, route=None, note="",
        actor=actor, expected_version=None,
    )  # fmt: skip
    name_mediators(session, case=case, staff_ids=[mediator.id], actor=actor, expected_version=None)
    record_consent(session, case_id=cid, party_ids=None, actor=actor, expected_version=None)
    start_mediation(session, case_id=cid, actor=actor)
    for n in range(sessions):
        record_session(
            session, case_id=cid, actor=actor, expected_version=None,
            data=SessionCreate(
                held_at=clock.now(), place="桂花社区人民调解室", participants="王小明、厂方负责人、调解员",
                minutes=f"第{n + 1}次调解：" + "双方陈述各自意见，调解员释明劳动法律规定。" * 12,
            ),
        )  # fmt: skip
    today = clock.to_local(clock.now()).date()
    terms = [
        {"text": f"支付第{i}期工资 20,000 元", "due_on": (today + timedelta(days=10 * i)).isoformat(),
         "how": "银行转账"}
        for i in (1, 2, 3)
    ]  # fmt: skip
    sign_agreement(
        session, case_id=cid, actor=actor, expected_version=None,
        data=AgreementCreate.model_validate({
            "summary": "厂方分三期支付拖欠工资。", "facts": "厂方拖欠工资。",
            "responsibility": "厂方承担支付责任。", "performance": "银行转账。",
            "signed_on_paper": True, "committee_sealed": True, "terms": terms,
        }),
    )  # fmt: skip
    scan = render.render(session, case, "agreement", "pdf")[1]
    for name, content, kind in (("协议书签章扫描件.pdf", scan, "agreement_scan"),
                                ("现场照片.png", PHOTO.read_bytes(), "photo")):  # fmt: skip
        add_attachment(session, case=case, filename=name, content=content, kind=kind, actor=actor)
    visits = schedule_follow_ups(session, case_id=cid, actor=system)
    clock.get_clock().set(clock.now() + timedelta(days=3))  # type: ignore[attr-defined]
    for visit in visits:
        record_follow_up(
            session, case_id=cid, actor=actor, expected_version=None,
            data=FollowUpRecord.model_validate(VISIT | {"follow_up_id": visit.id}),
        )  # fmt: skip
    settle_after_follow_up(session, case_id=cid, actor=system)
    assert case.status.value == "closed", case.status
    return cid


def _timed(fn: Any, runs: int) -> tuple[list[float], Any]:
    times = []
    out = None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    from pypdf import PdfReader

    from models import clock
    from models.case import Case
    from models.db import build_engine, write_session
    from models.documents import render
    from models.settings import reset_settings
    from models.tables import metadata

    runs = 10 if sizes.name == "quick" else 30
    sessions = 10
    saved = {k: os.environ.get(k) for k in ("TIAOJIE_HOME",)}
    os.environ["TIAOJIE_HOME"] = str(ws.dir("documents-home"))
    reset_settings()
    previous = clock.get_clock()
    clock.set_clock(clock.VirtualClock(datetime(2026, 11, 30, 1, tzinfo=UTC)))
    engine = build_engine(f"sqlite:///{ws.path('documents.db')}")
    try:
        metadata.create_all(engine)
        with write_session(engine) as session:
            case_id = _closed_case(session, sessions)

        def agreement() -> bytes:
            with write_session(engine) as s:
                case = s.get(Case, case_id)
                return render.render(s, case, "agreement", "pdf")[1]  # type: ignore[arg-type]

        def archive() -> bytes:
            with write_session(engine) as s:
                case = s.get(Case, case_id)
                return render.render(s, case, "archive", "pdf")[1]  # type: ignore[arg-type]

        agreement()  # the first compile loads the fonts
        a_times, a_pdf = _timed(agreement, runs)
        r_times, r_pdf = _timed(archive, runs)
        import io

        out = {
            "sessions": sessions,
            "runs": runs,
            "agreement_pdf_p50_ms": round(statistics.median(a_times), 1),
            "agreement_pdf_p95_ms": _pct(a_times, 0.95),
            "archive_pdf_p50_ms": round(statistics.median(r_times), 1),
            "archive_pdf_p95_ms": _pct(r_times, 0.95),
            "archive_pages": len(PdfReader(io.BytesIO(r_pdf)).pages),
            "archive_kb": round(len(r_pdf) / 1024, 1),
            "agreement_kb": round(len(a_pdf) / 1024, 1),
        }
        console.print(out)
        return out
    finally:
        engine.dispose()
        clock.set_clock(previous)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
