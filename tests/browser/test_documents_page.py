"""The mediator prints and files: from the case page, the agreement downloads as PDF (its
text, read back with pdftotext, names both parties, every term with its deadline and the
committee) and as DOCX; a scan uploads; the closed case's archive (卷宗) has its contents
page. Page images of the agreement and the archive's contents go to test-artifacts
(the README's are copies of them)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from sqlmodel import select

from models import lifecycle
from models.case import Case
from models.db import build_engine, write_session
from models.follow_up import FollowUpRecord
from models.follow_ups import record_follow_up, schedule_follow_ups, settle_after_follow_up
from models.mediating import record_consent, record_session, sign_agreement, start_mediation
from models.mediation import AgreementCreate, SessionCreate
from models.routing import assign_case
from models.staff import Staff
from models.triage import triage_case
from tests.browser.conftest import SCREENSHOTS, Site, sign_in
from tests.factories import NAME, PHONE

pytestmark = pytest.mark.browser

FIRM = "江心市恒达电子厂"
COMMITTEE = "桂花社区人民调解委员会"
TERMS = [
    ("厂方支付第一期拖欠工资 30,000 元", "2099-01-10", "2099年1月10日"),
    ("厂方支付第二期拖欠工资 30,000 元", "2099-02-10", "2099年2月10日"),
]

VISIT = {
    "outcome": "carried_out",
    "resolved": "resolved",
    "satisfied": "satisfied",
    "notes": "已按期履行",
}


def _settle(site: Site, *, close: bool) -> str:
    """A labour case mediated to an agreement by the community's mediator (as the API
    and flows would record it); closed after its return visit when ``close``."""
    from models import clock
    from models.acceptance import review_acceptance
    from models.mediators import name_mediators
    from tests.factories import make_case

    engine = build_engine(site.database_url)
    system = lifecycle.Actor.system()
    try:
        with write_session(engine) as s:
            mediator = s.exec(select(Staff).where(Staff.username == "mediatorA")).one()
            actor = lifecycle.Actor(kind="staff", staff_id=mediator.id, role=mediator.role)
            case = make_case(s, place_code="BA1")
            cid = case.id or 0
            triage_case(s, case_id=cid, actor=system)
            assign_case(s, case_id=cid, actor=system)
            review_acceptance(
                s, case_id=cid, accepted=True, reason=None, route=None, note="",
                actor=actor, expected_version=None,
            )  # fmt: skip
            name_mediators(
                s, case=case, staff_ids=[mediator.id or 0], actor=actor, expected_version=None
            )
            record_consent(s, case_id=cid, party_ids=None, actor=actor, expected_version=None)
            start_mediation(s, case_id=cid, actor=actor)
            record_session(
                s, case_id=cid, actor=actor, expected_version=None,
                data=SessionCreate(held_at=clock.now(), place="桂花社区人民调解室",
                                   participants=f"{NAME}、厂方负责人", minutes="双方同意分期支付。"),
            )  # fmt: skip
            sign_agreement(
                s, case_id=cid, actor=actor, expected_version=None,
                data=AgreementCreate.model_validate({
                    "summary": "厂方分两期支付拖欠工资。",
                    "facts": "恒达电子厂拖欠二十余名工人三个月工资。",
                    "disputed_matters": "欠薪数额与支付期限。",
                    "responsibility": "厂方承担全部支付责任；工人代表配合核对名单。",
                    "performance": "银行转账至工人工资卡。",
                    "signed_on_paper": True, "committee_sealed": True,
                    "terms": [{"text": t, "due_on": d, "how": "银行转账"} for t, d, _ in TERMS],
                }),
            )  # fmt: skip
            number = case.number
            if close:
                for visit in schedule_follow_ups(s, case_id=cid, actor=system):
                    record_follow_up(
                        s, case_id=cid, actor=actor, expected_version=None,
                        data=FollowUpRecord(outcome="carried_out", resolved="resolved", satisfied="satisfied",
                                            follow_up_id=visit.id, notes="已按期履行"),
                    )  # fmt: skip
                settle_after_follow_up(s, case_id=cid, actor=system)
                assert s.get(Case, cid).status.value == "closed"  # type: ignore[union-attr]
    finally:
        engine.dispose()
    return number


def _pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def _page_image(pdf: Path, page: int, name: str) -> Path:
    target = SCREENSHOTS / name
    pages = ["-f", str(page), "-l", str(page)]
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", *pages, "-singlefile", str(pdf), str(target)], check=True
    )
    return target.with_suffix(".png")


def _download(page: Any, selector: str, folder: Path) -> Path:
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    target = folder / download.suggested_filename
    download.save_as(str(target))
    return target


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_the_mediator_downloads_the_agreement_and_files_the_archive(
    site: Site, new_page: Any, tmp_path: Path
) -> None:
    number = _settle(site, close=False)
    page = new_page()
    sign_in(page, site, "mediatorA")
    page.goto(site.url(f"/web/cases/{number}"))
    docs = page.locator("#documents")
    for title in ("人民调解申请书", "人民调解受理登记表", "人民调解协议书", "司法确认申请书"):
        assert title in docs.inner_text()

    pdf = _download(page, "#documents .doc-agreement a:has-text('PDF')", tmp_path)
    assert pdf.name == f"{number}-人民调解协议书.pdf" and pdf.read_bytes().startswith(b"%PDF-")
    text = _pdf_text(pdf)
    for needed in (NAME, FIRM, PHONE, COMMITTEE, "人民调解协议书"):
        assert needed in text, needed
    for term, _due, printed in TERMS:
        assert term in text and printed in text, term
    _page_image(pdf, 1, "agreement-page-1")

    docx = _download(page, "#documents .doc-agreement a:has-text('DOCX')", tmp_path)
    document = Document(io.BytesIO(docx.read_bytes()))
    body = "\n".join(p.text for p in document.paragraphs)
    cells = "\n".join(c.text for t in document.tables for r in t.rows for c in r.cells)
    assert NAME in body and FIRM in body and COMMITTEE in body
    assert all(term in cells and printed in cells for term, _d, printed in TERMS)

    # The signed, sealed agreement is scanned back onto the case.
    page.set_input_files("#attachments input[type=file]", str(pdf))
    page.select_option("#att-kind", "agreement_scan")
    page.click("#attachments button:has-text('上传')")
    page.wait_for_url("**done=attachment_added**")
    assert pdf.name in page.locator("#attachments").inner_text()
    # A file that is not a PDF, JPEG or PNG is refused, with the reason on the page.
    fake = tmp_path / "scan.pdf"
    fake.write_bytes(b"this is not a pdf")
    page.set_input_files("#attachments input[type=file]", str(fake))
    page.click("#attachments button:has-text('上传')")
    page.wait_for_url("**upload_error=**")
    assert "PDF" in page.locator(".alert.error").inner_text()
    assert page.locator("#attachments li a").count() == 1

    closed = _settle(site, close=True)
    page.goto(site.url(f"/web/cases/{closed}"))
    archive = _download(page, "#documents .doc-archive a:has-text('PDF')", tmp_path)
    text = _pdf_text(archive)
    assert "人民调解卷宗" in text and "卷内目录" in text and COMMITTEE in text
    _page_image(archive, 2, "archive-contents")

    # A worker of the community (not entitled to personal data) gets no documents.
    other = new_page()
    sign_in(other, site, "workerA")
    other.goto(site.url(f"/web/cases/{number}"))
    assert other.locator("#documents").count() == 0
    response = other.goto(site.url(f"/web/cases/{number}/documents/agreement.pdf"))
    assert response is not None and response.status == 404
