"""Build the DOCX templates of the mediation documents (models/documents/templates/*.docx).

Run after changing a layout: ``.venv/bin/python scripts/build_doc_templates.py``. The
templates are plain Word documents with docxtpl (Jinja) tags; the data they receive is
:func:`models.documents.context.build`. A secretary may also open a template in Word,
restyle it and save it back: the tags are all that must stay.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

OUT = Path(__file__).resolve().parents[1] / "models" / "documents" / "templates"
FONT = "宋体"


def new_document() -> DocumentObject:
    doc = Document()
    section = doc.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)
    section.left_margin = section.right_margin = Cm(2.4)
    style = doc.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(11)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), FONT)
    return doc


def title(doc: DocumentObject, text: str) -> None:
    p = doc.add_paragraph()
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = p.add_run(text)
    run.bold = True
    run.font.size = Pt(18)
    number = doc.add_paragraph("编号：{{ case.number }}")
    number.alignment = WD_ALIGN_PARAGRAPH.RIGHT


def section(doc: DocumentObject, text: str) -> None:
    run = doc.add_paragraph().add_run(text)
    run.bold = True
    run.font.size = Pt(12.5)


def fields(doc: DocumentObject, rows: list[tuple[str, str]]) -> None:
    table = doc.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, tag in rows:
        cells = table.add_row().cells
        cells[0].text = label
        cells[1].text = tag


def loop_table(doc: DocumentObject, headers: list[str], loop: str, cells: list[str]) -> None:
    """A table with a header row and one row per item (docxtpl ``{%tr %}`` rows)."""
    table = doc.add_table(rows=1, cols=len(headers))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, headers, strict=True):
        cell.text = text
    table.add_row().cells[0].text = f"{{%tr for {loop} %}}"
    row = table.add_row().cells
    for cell, text in zip(row, cells, strict=True):
        cell.text = text
    table.add_row().cells[0].text = "{%tr endfor %}"


def parties_table(doc: DocumentObject) -> None:
    loop_table(
        doc,
        ["身份", "类别", "姓名/名称", "联系电话", "身份证号码", "委托代理人"],
        "p in parties",
        [
            "{{ p.side }}",
            "{{ p.kind }}",
            "{{ p.name }}",
            "{{ p.phone }}",
            "{{ p.id_number }}",
            "{{ p.agent }}",
        ],
    )


def sign(doc: DocumentObject, who: str) -> None:
    doc.add_paragraph(f"{who}（签名）：________________    日期：____________")


def application(doc: DocumentObject) -> None:
    title(doc, "人民调解申请书")
    section(doc, "申请人与被申请人")
    parties_table(doc)
    section(doc, "纠纷简要情况及申请事项")
    doc.add_paragraph("{{ case.description }}")
    fields(
        doc,
        [
            ("纠纷类别", "{{ case.category }}"),
            ("纠纷地点", "{{ case.address }}"),
            ("涉及人数", "{{ case.people_affected }}"),
            ("登记时间", "{{ case.registered }}"),
        ],
    )
    doc.add_paragraph(
        "申请人自愿申请{{ committee }}调解上述纠纷。人民调解不收取任何费用，"
        "不影响当事人依法通过仲裁、行政、司法等途径维护自己的权利。"
    )
    sign(doc, "申请人")


def acceptance(doc: DocumentObject) -> None:
    title(doc, "人民调解受理登记表")
    fields(
        doc,
        [
            ("受理单位", "{{ committee }}"),
            ("登记时间", "{{ case.registered }}"),
            ("纠纷类别", "{{ case.category }}"),
            ("纠纷地点", "{{ case.address }}"),
            ("承办人", "{{ case.handler }}"),
        ],
    )
    section(doc, "当事人")
    parties_table(doc)
    section(doc, "纠纷简要情况")
    doc.add_paragraph("{{ case.description }}")
    section(doc, "受理审查")
    fields(
        doc,
        [
            ("审查结论", "{{ acceptance.decision }}"),
            ("不予受理事由", "{{ acceptance.reason }}"),
            ("法律依据", "{{ acceptance.legal_basis }}"),
            ("告知途径", "{{ acceptance.route }}"),
            ("审查人", "{{ acceptance.decided_by }}"),
            ("审查时间", "{{ acceptance.decided_at }}"),
        ],
    )
    doc.add_paragraph(
        "{% if not acceptance.accepted %}告知事项：{{ acceptance.guidance }}{% endif %}"
    )
    section(doc, "调解员")
    loop_table(
        doc,
        ["调解员", "指定时间", "状态"],
        "m in mediators",
        ["{{ m.name }}", "{{ m.named_at }}", "{{ m.status }}"],
    )


def minutes(doc: DocumentObject) -> None:
    title(doc, "人民调解笔录")
    doc.add_paragraph("{%p for s in sessions %}")
    section(doc, "第 {{ s.n }} 次调解")
    doc.add_paragraph("时间：{{ s.held_at }}    地点：{{ s.place }}")
    doc.add_paragraph("参加人：{{ s.participants }}    记录人：{{ s.recorded_by }}")
    doc.add_paragraph("{{ s.minutes }}")
    sign(doc, "当事人")
    sign(doc, "调解员")
    doc.add_paragraph("{%p endfor %}")


def agreement(doc: DocumentObject) -> None:
    title(doc, "人民调解协议书")
    section(doc, "当事人基本情况")
    doc.add_paragraph("{%p for p in parties %}")
    doc.add_paragraph(
        "{{ p.side }}：{{ p.name }}（{{ p.kind }}），联系电话：{{ p.phone }}，"
        "身份证号码：{{ p.id_number }}，住址：{{ p.address }}"
        "{% if p.agent %}；委托代理人：{{ p.agent }}{% endif %}。"
    )
    doc.add_paragraph("{%p endfor %}")
    section(doc, "纠纷主要事实、争议事项")
    doc.add_paragraph("{{ agreement.facts }}")
    doc.add_paragraph("争议事项：{{ agreement.disputed_matters }}")
    section(doc, "各方当事人的责任")
    doc.add_paragraph("{{ agreement.responsibility }}")
    section(doc, "经调解，双方自愿达成如下协议")
    loop_table(
        doc,
        ["序号", "协议内容", "履行期限", "履行方式"],
        "t in agreement.terms",
        ["{{ t.n }}", "{{ t.text }}", "{{ t.due }}", "{{ t.how }}"],
    )
    doc.add_paragraph("履行方式：{{ agreement.performance }}")
    doc.add_paragraph(
        "本协议自各方当事人签字、调解员签字并加盖人民调解委员会印章之日起生效。"
        "双方当事人可以自本协议生效之日起三十日内共同向人民法院申请司法确认"
        "（截止：{{ agreement.deadline }}）。本协议一式三份，当事人各执一份，"
        "人民调解委员会留存一份。"
    )
    doc.add_paragraph("{%p for p in parties %}")
    sign(doc, "{{ p.side }}")
    doc.add_paragraph("{%p endfor %}")
    sign(doc, "调解员")
    end = doc.add_paragraph("{{ committee }}（印章）\n{{ agreement.signed_at }}")
    end.alignment = WD_ALIGN_PARAGRAPH.RIGHT


def confirmation(doc: DocumentObject) -> None:
    title(doc, "司法确认申请书")
    section(doc, "申请人")
    doc.add_paragraph("{%p for p in parties %}")
    doc.add_paragraph(
        "{{ p.side }}：{{ p.name }}，联系电话：{{ p.phone }}，身份证号码：{{ p.id_number }}，"
        "住址：{{ p.address }}。"
    )
    doc.add_paragraph("{%p endfor %}")
    section(doc, "请求事项")
    doc.add_paragraph(
        "请求人民法院确认申请人于{{ agreement.signed_at }}经{{ committee }}主持调解达成的"
        "人民调解协议有效。"
    )
    section(doc, "事实与理由")
    doc.add_paragraph(
        "{{ agreement.facts }}经{{ committee }}调解，双方当事人自愿达成调解协议（协议生效日："
        "{{ agreement.effective_on }}）。依照《中华人民共和国人民调解法》第三十三条的规定，"
        "双方当事人共同申请司法确认。申请期限截至{{ agreement.deadline }}。"
    )
    doc.add_paragraph("此致\n{{ agreement.court_name }}")
    doc.add_paragraph("{%p for p in parties %}")
    sign(doc, "{{ p.side }}")
    doc.add_paragraph("{%p endfor %}")


def return_visit(doc: DocumentObject) -> None:
    title(doc, "人民调解回访记录")
    fields(doc, [("纠纷类别", "{{ case.category }}"), ("案件状态", "{{ case.status }}")])
    loop_table(
        doc,
        [
            "回访类型",
            "计划时间",
            "回访时间",
            "履行情况",
            "是否解决",
            "是否满意",
            "回访情况",
            "回访人",
        ],
        "f in follow_ups",
        [
            "{{ f.kind }}",
            "{{ f.due }}",
            "{{ f.done }}",
            "{{ f.outcome }}",
            "{{ f.resolved }}",
            "{{ f.satisfaction }}",
            "{{ f.notes }}",
            "{{ f.by }}",
        ],
    )


BUILDERS: dict[str, Callable[[DocumentObject], None]] = {
    "application": application,
    "acceptance": acceptance,
    "minutes": minutes,
    "agreement": agreement,
    "confirmation": confirmation,
    "return_visit": return_visit,
}


def main() -> None:
    for kind, build in BUILDERS.items():
        doc = new_document()
        build(doc)
        target = OUT / f"{kind}.docx"
        doc.core_properties.title = kind
        doc.core_properties.author = "Tiaojie"
        doc.save(str(target))
        print(f"wrote {target.relative_to(OUT.parents[2])}")


if __name__ == "__main__":
    main()
