"""Language of the pages: zh-CN first, English on request (``?lang=en`` or the cookie)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request, Response

from models.lifecycle import TRANSITIONS

LANG_COOKIE = "tj_lang"
LANGS = ("zh", "en")

# Event verbs as they appear on a timeline (the state machine's own zh labels first).
VERB_LABELS: dict[str, tuple[str, str]] = {
    "submitted": ("登记受理", "Submitted"),
    "triaged": ("研判分流", "Triaged"),
    "assessed": ("研判确认", "Category confirmed"),
    "reclassified": ("改类", "Category or priority changed"),
    "assigned": ("派单", "Assigned"),
    "mediation_started": ("开始调解", "Mediation started"),
    "agreement_signed": ("达成协议", "Agreement signed"),
    "mediation_failed": ("调解不成（终止调解）", "Mediation failed"),
    "follow_up_due": ("转入回访", "Follow-up due"),
    "closed": ("办结", "Closed"),
    "escalated": ("提级督办", "Escalated"),
    "referred": ("移交", "Referred"),
    "merged": ("合并", "Merged"),
    "withdrawn": ("撤回", "Withdrawn"),
    "reopened": ("重新办理", "Reopened"),
    "consent_recorded": ("记录调解同意", "Consent recorded"),
    "session_recorded": ("记录调解笔录", "Session recorded"),
    "reminded": ("催办", "Reminder sent"),
    "duplicate_linked": ("关联重复件", "Duplicate linked"),
    "follow_up_recorded": ("记录回访", "Follow-up recorded"),
    "notified": ("已通知", "Notified"),
    "mediation_extended": ("延长调解期限", "Mediation extended"),
    "acceptance_reviewed": ("受理审查", "Acceptance review"),
    "not_accepted": ("不予受理", "Not accepted"),
    "mediation_refused": ("当事人拒绝调解", "A party refused mediation"),
    "resident_consent_refused": ("当事人不同意调解（本人答复）", "A party declined mediation"),
    "times_proposed": ("当事人提出调解时间", "Times proposed by a party"),
    "mediators_named": ("指定调解员", "Mediators named"),
    "mediator_recused": ("调解员回避", "Mediator recused"),
    "mediator_replaced": ("更换调解员", "Mediator replaced"),
    "party_added": ("增加当事人", "Party added"),
    "party_edited": ("修改当事人", "Party edited"),
    "marked_confidential": ("设为不公开", "Marked confidential"),
    "attachment_added": ("上传附件", "Attachment added"),
    "court_confirmation_recorded": ("记录司法确认", "Court confirmation recorded"),
    "court_confirmation_reminded": ("司法确认提醒", "Court confirmation reminder"),
    "contacted": ("首次联系群众", "First contact"),
    "handed_to_committee": ("转人民调解委员会", "Handed to the mediation committee"),
    "assignment_returned": ("退单（退回派单单位）", "Sent back to the routing unit"),
    "referral_signed": ("签收", "Referral signed for"),
    "referral_returned": ("退单（退回移交单位）", "Referral sent back"),
    "referral_concluded": ("反馈办理结果", "Referral outcome recorded"),
    "extension_requested": ("申请延期", "Extension asked for"),
    "extension_decided": ("延期审批", "Extension decided"),
    "helper_added": ("增加协办人员", "Helper added"),
    "helper_task_recorded": ("记录协办任务", "Helper task recorded"),
}


def pick_lang(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    return cookie if cookie in LANGS else "zh"


def remember_lang(request: Request, response: Response) -> None:
    asked = request.query_params.get("lang")
    if asked in LANGS and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="lax", path="/")


@dataclass(frozen=True)
class Translator:
    lang: str

    def __call__(self, zh: str, en: str) -> str:
        return en if self.lang == "en" else zh

    def label(self, value: StrEnum | None) -> str:
        if value is None:
            return "—"
        zh = getattr(value, "zh", str(value))
        en = getattr(value, "en", str(value))
        return self(zh, en)

    def verb(self, verb: str) -> str:
        zh, en = VERB_LABELS.get(
            verb, (TRANSITIONS[verb].zh if verb in TRANSITIONS else verb, verb)
        )
        return self(zh, en)

    def both(self, zh: str, en: str) -> str:
        """Chinese with English beside (validation messages)."""
        return f"{zh} / {en}" if zh != en else zh
