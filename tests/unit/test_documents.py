"""The documents of a case: typeset PDF (Typst, CJK font) and DOCX (docxtpl), with the
facts the law asks an agreement to state, and the archive at closure."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import datetime

import pytest
from docx import Document
from sqlmodel import Session

from models import clock, lifecycle
from models.attachments import add_attachment
from models.case import Case
from models.documents import render
from models.documents.context import load
from models.errors import NotFound
from models.follow_up import FollowUpRecord
from models.follow_ups import record_follow_up, schedule_follow_ups, settle_after_follow_up
from models.mediating import record_consent, record_session, sign_agreement, start_mediation
from models.mediation import AgreementCreate, SessionCreate
from tests.factories import (
    NAME,
    PHONE,
    City,
    accept_for_mediation,
    advance_to_assigned,
    build_city,
    make_case,
    staff_actor,
)

SH = clock.SHANGHAI
FIRM = "江心市恒达电子厂"
TERMS = [("支付第一期工资 30,000 元", "2026-12-10"), ("支付第二期工资 30,000 元", "2026-12-31")]
needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")

VISIT = {
    "outcome": "carried_out",
    "resolved": "resolved",
    "satisfied": "satisfied",
    "notes": "已按期履行",
}


def pdf_text(data: bytes) -> str:
    out = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    )
    return out.stdout.decode("utf-8")


def settled_case(session: Session, *, sessions: int = 1) -> tuple[Case, City]:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    accept_for_mediation(session, case, city)
    actor = staff_actor(city, "mediatorA")
    cid = case.id or 0
    record_consent(session, case_id=cid, party_ids=None, actor=actor, expected_version=None)
    start_mediation(session, case_id=cid, actor=actor)
    for n in range(sessions):
        record_session(
            session,
            case_id=cid,
            data=SessionCreate(
                held_at=clock.now(),
                place="桂花社区人民调解室",
                participants=f"{NAME}、厂方负责人、调解员",
                minutes=f"第{n + 1}次：双方陈述，厂方同意分期支付。",
            ),
            actor=actor,
            expected_version=None,
        )
    sign_agreement(
        session,
        case_id=cid,
        data=AgreementCreate.model_validate(
            {
                "summary": "厂方分两期支付拖欠工资。",
                "facts": "厂方拖欠二十名工人三个月工资。",
                "disputed_matters": "欠薪数额与支付期限。",
                "responsibility": "厂方承担全部支付责任。",
                "performance": "银行转账。",
                "signed_on_paper": True,
                "committee_sealed": True,
                "terms": [{"text": t, "due_on": d, "how": "银行转账"} for t, d in TERMS],
            }
        ),
        actor=actor,
        expected_version=None,
    )
    return case, city


@needs_pdftotext
def test_the_agreement_pdf_states_parties_terms_deadlines_and_the_committee(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, _city = settled_case(session)
    kind, data = render.render(session, case, "agreement", "pdf")
    assert data.startswith(b"%PDF-") and kind.title == "人民调解协议书"
    text = pdf_text(data)
    for needed in (NAME, FIRM, PHONE, "桂花社区人民调解委员会", "厂方承担全部支付责任"):
        assert needed in text, needed
    for term, due in TERMS:
        y, m, d = (int(x) for x in due.split("-"))
        assert term in text and f"{y}年{m}月{d}日" in text
    assert "2027年1月29日" not in text and "2026年12月30日" in text  # 30 days after 30 Nov


def test_the_agreement_docx_is_filled_from_the_case(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, _city = settled_case(session)
    _kind, data = render.render(session, case, "agreement", "docx")
    doc = Document(io.BytesIO(data))
    text = "\n".join(p.text for p in doc.paragraphs)
    cells = "\n".join(c.text for t in doc.tables for r in t.rows for c in r.cells)
    assert NAME in text and FIRM in text and "桂花社区人民调解委员会" in text
    assert all(term in cells for term, _ in TERMS) and "2026年12月31日" in cells
    assert "{{" not in text + cells and "{%" not in text + cells


def test_documents_exist_as_the_case_advances_and_others_are_not_found(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    kinds = [k.kind for k in render.available(load(session, case))]
    assert kinds == ["application"]
    with pytest.raises(NotFound):
        render.render(session, case, "agreement", "pdf")
    with pytest.raises(NotFound):
        render.render(session, case, "archive", "docx")
    accept_for_mediation(session, case, city)
    kinds = [k.kind for k in render.available(load(session, case))]
    assert kinds == ["application", "acceptance"]
    for kind in kinds:
        for fmt in ("pdf", "docx"):
            assert render.render(session, case, kind, fmt)[1]


@needs_pdftotext
def test_the_archive_has_a_cover_contents_every_document_and_the_attachments(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, city = settled_case(session, sessions=2)
    actor = staff_actor(city, "mediatorA")
    agreement_pdf = render.render(session, case, "agreement", "pdf")[1]
    add_attachment(
        session, case=case, filename="协议书签章扫描件.pdf", content=agreement_pdf,
        kind="agreement_scan", actor=actor,
    )  # fmt: skip
    signed = render.context.load(session, case).agreement
    assert signed is not None and signed.scan_attachment_id is not None
    png = (render.TEMPLATES.parent / "testdata" / "stamp.png").read_bytes()
    add_attachment(
        session, case=case, filename="现场照片.png", content=png, kind="photo", actor=actor
    )
    visits = schedule_follow_ups(session, case_id=case.id or 0, actor=lifecycle.Actor.system())
    vclock.set(datetime(2026, 12, 1, 10, tzinfo=SH))
    for visit in visits:
        record_follow_up(
            session,
            case_id=case.id or 0,
            data=FollowUpRecord.model_validate(VISIT | {"follow_up_id": visit.id}),
            actor=actor,
            expected_version=None,
        )
    settle_after_follow_up(session, case_id=case.id or 0, actor=lifecycle.Actor.system())
    assert case.status.value == "closed"
    text = pdf_text(render.render(session, case, "archive", "pdf")[1])
    assert "人民调解卷宗" in text and "卷内目录" in text
    for title in (
        "人民调解申请书", "人民调解受理登记表", "人民调解笔录", "人民调解协议书",
        "司法确认申请书", "人民调解回访记录", "附件 1：协议书签章扫描件.pdf", "附件 2：现场照片.png",
    ):  # fmt: skip
        assert text.count(title) >= 2, title  # in the contents and on its page
    assert "第 2 次调解" in text
