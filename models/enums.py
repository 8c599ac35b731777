"""Enumerations with their zh-CN and English labels."""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class Labelled(StrEnum):
    """A string enum whose members carry ``zh`` and ``en`` labels, declared with the
    member itself: ``CITY = "city", "市", "City"`` (value, Chinese, English). The value
    alone is what is stored and compared; the labels are for people. Members of different
    enums may share a value ("agency" is a unit level, a party kind and a referral
    target) and keep labels of their own."""

    _zh: str
    _en: str

    # ``*labels`` rather than ``zh, en``: a look-up by value (``Category("labour")``) is
    # typed against this signature, though it never calls it.
    def __new__(cls, value: str, *labels: str) -> Self:
        zh, en = labels  # every member declares both labels
        member = str.__new__(cls, value)
        member._value_ = value
        member._zh = zh
        member._en = en
        return member

    @property
    def zh(self) -> str:
        return self._zh

    @property
    def en(self) -> str:
        return self._en

    @property
    def label(self) -> str:
        return f"{self.zh} {self.en}"


class UnitLevel(Labelled):
    CITY = "city", "市", "City"
    DISTRICT = "district", "区", "District"
    STREET = "street", "街道", "Street"
    COMMUNITY = "community", "社区", "Community"
    COMPOUND = "compound", "小区", "Compound"
    BUILDING = "building", "楼幢", "Building"
    AGENCY = "agency", "结对部门", "Paired agency"

    @property
    def rank(self) -> int:
        """Bottom of the tree is 0 (building); agencies sit beside districts."""
        return _LEVEL_RANK[self]


_LEVEL_RANK = {
    UnitLevel.BUILDING: 0,
    UnitLevel.COMPOUND: 1,
    UnitLevel.COMMUNITY: 2,
    UnitLevel.STREET: 3,
    UnitLevel.DISTRICT: 4,
    UnitLevel.CITY: 5,
    UnitLevel.AGENCY: 4,
}


class Category(Labelled):
    RELOCATION = "relocation", "动迁/拆迁纠纷", "Relocation compensation"
    LABOUR = "labour", "劳动争议/欠薪", "Layoffs and unpaid wages"
    ENVIRONMENT = "environment", "环境投诉", "Environmental complaint"
    NEIGHBOUR = "neighbour", "邻里纠纷", "Neighbour dispute"
    PROPERTY = "property", "物业纠纷", "Property management"
    FAMILY = "family", "婚姻家庭纠纷", "Family and marriage"
    TENANCY = "tenancy", "房屋租赁纠纷", "Landlord and tenant"
    OTHER = "other", "其他", "Other"


class Priority(Labelled):
    EMERGENCY = "emergency", "紧急", "Emergency"
    HIGH = "high", "重要", "High"
    NORMAL = "normal", "一般", "Normal"
    CONSULTATION = "consultation", "咨询求助", "Consultation"


class CaseStatus(Labelled):
    SUBMITTED = "submitted", "已登记", "Submitted"
    TRIAGED = "triaged", "已研判分流", "Triaged"
    ASSIGNED = "assigned", "已派单", "Assigned"
    IN_MEDIATION = "in_mediation", "调解中", "In mediation"
    AGREEMENT = "agreement", "达成协议", "Agreement"
    MEDIATION_FAILED = "mediation_failed", "调解不成", "Mediation failed"
    FOLLOW_UP = "follow_up", "回访中", "Follow-up"
    CLOSED = "closed", "已办结", "Closed"
    ESCALATED = "escalated", "已提级督办", "Escalated"
    REFERRED = "referred", "已移交", "Referred"
    MERGED = "merged", "已合并", "Merged"
    WITHDRAWN = "withdrawn", "已撤回", "Withdrawn"
    REOPENED = "reopened", "重新办理", "Reopened"

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL_STATUSES


# A referred case stays open: it still gets its return visit before it is closed.
TERMINAL_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.MERGED, CaseStatus.WITHDRAWN})


class StaffRole(Labelled):
    COMMUNITY_WORKER = "community_worker", "社区工作者", "Community worker"
    GRID_WORKER = "grid_worker", "网格员", "Grid worker"
    MEDIATOR = "mediator", "人民调解员", "Mediator"
    INSTRUCTOR = "instructor", "党建指导员", "Party-building instructor"
    SUPERVISOR = "supervisor", "督办人员", "Supervisor"
    ADMIN = "admin", "系统管理员", "Administrator"
    VOLUNTEER = "volunteer", "志愿者", "Volunteer"
    RETURN_VISITOR = "return_visitor", "回访员", "Return visitor"
    PARTY_MEMBER = (
        "party_member",
        "在职党员",
        "In-service Party member",
    )  # in-service Party member registered with a community


class PartyKind(Labelled):
    PERSON = "person", "个人", "Person"
    HOUSEHOLD = "household", "家庭", "Household"
    FIRM = "firm", "企业", "Firm"
    AGENCY = "agency", "单位/部门", "Agency"


class PartySide(Labelled):
    COMPLAINANT = "complainant", "申请人", "Complainant"
    RESPONDENT = "respondent", "被申请人", "Respondent"
    THIRD_PARTY = "third_party", "第三人", "Third party"


class Channel(Labelled):
    WALK_IN = "walk_in", "来访", "Walk-in"
    PHONE = "phone", "来电", "Phone"
    GRID_PATROL = "grid_patrol", "网格巡查", "Grid patrol"
    OPEN311 = "open311", "公众上报", "Open311"
    HOTLINE_12345 = "hotline_12345", "12345转办", "12345 hotline"
    POLICE = "police", "公安转办", "Police referral"
    WEB = "web", "网页登记", "Web form"


class LinkKind(Labelled):
    DUPLICATE_OF = "duplicate_of", "重复件", "Duplicate of"
    RELATED_TO = "related_to", "关联件", "Related to"
    CLUSTER = "cluster", "同源聚集", "Cluster"


class FollowUpKind(Labelled):
    AFTER_CLOSURE = "after_closure", "办结回访", "After closure"
    BEFORE_TERM_DUE = "before_term_due", "履约回访", "Before a term is due"
    AFTER_AGREEMENT = "after_agreement", "协议回访", "After agreement"


class FollowUpOutcome(Labelled):
    CARRIED_OUT = "carried_out", "已履行", "Carried out"
    PARTLY = "partly", "部分履行", "Partly carried out"
    NOT_CARRIED_OUT = "not_carried_out", "未履行", "Not carried out"
    UNREACHABLE = "unreachable", "未联系上", "Unreachable"


class ContactMethod(Labelled):
    """How the handler first reached the complainant (an automatic assignment is not
    a contact)."""

    PHONE = "phone", "电话联系", "Phone call"
    VISIT = "visit", "上门走访", "Home visit"
    IN_PERSON = "in_person", "当面接谈", "In person"
    MESSAGE = "message", "短信/微信联系", "Text message"


class VisitChannel(Labelled):
    """How a return visit's answers were given."""

    PHONE = "phone", "电话回访", "Phone call"
    IN_PERSON = "in_person", "上门回访", "In person"
    RESIDENT_LINK = "resident_link", "居民自评链接", "Resident's own link"


class ResolvedAnswer(Labelled):
    RESOLVED = "resolved", "已解决", "Resolved"
    BASICALLY = "basically", "基本解决", "Basically resolved"
    UNRESOLVED = "unresolved", "未解决", "Not resolved"


class SatisfiedAnswer(Labelled):
    SATISFIED = "satisfied", "满意", "Satisfied"
    BASICALLY = "basically", "基本满意", "Basically satisfied"
    DISSATISFIED = "dissatisfied", "不满意", "Dissatisfied"


class BreachKind(Labelled):
    RESPONSE = "response", "响应超时", "Response limit passed"
    RESOLUTION = "resolution", "办理超期", "Resolution limit passed"


class Rate(Labelled):
    """The three rates (三率) a case is judged on, once each (:mod:`models.decisions`)."""

    RESPONSE = "response", "响应率", "Response rate"
    RESOLUTION = "resolution", "解决率", "Resolution rate"
    SATISFACTION = "satisfaction", "满意率", "Satisfaction rate"


class ReferralTarget(Labelled):
    ARBITRATION = "arbitration", "劳动人事争议仲裁", "Labour and personnel arbitration"
    COURT = "court", "法院", "Court"
    AGENCY = "agency", "结对部门", "Paired agency"
    ADMIN_REVIEW = "admin_review", "行政复议", "Administrative review"
    POLICE = "police", "公安机关", "Police"


class ReferralReason(Labelled):
    """Why a case leaves people's mediation. The first four are the legal grounds on
    which a case may be referred at assignment (人民调解法 第十八条: a dispute the law
    gives to another authority, or one already before a court or arbitration); the last
    two only arise later, when the grassroots had its turn."""

    CRIMINAL = "criminal", "涉嫌违法犯罪，移送公安机关", "Criminal matter, for the police"
    IN_COURT = "in_court", "已进入诉讼程序", "Already before a court"
    IN_ARBITRATION = "in_arbitration", "已申请仲裁", "Already before arbitration"
    ADMINISTRATIVE = (
        "administrative",
        "须由行政机关依职权处理",
        "A decision only an administrative agency can make",
    )
    LIMIT_PASSED = "limit_passed", "基层办理时限届满", "Time at the grassroots ran out"
    MEDIATION_FAILED = "mediation_failed", "调解不成", "Mediation failed"

    @property
    def at_assignment(self) -> bool:
        """May a case be referred for this reason before anyone at the grassroots has
        worked it?"""
        return self in LEGAL_REFERRAL_REASONS

    @property
    def target(self) -> ReferralTarget:
        return _REASON_TARGET.get(self, ReferralTarget.AGENCY)


class ReferralState(Labelled):
    """Where a referral to a unit inside the system stands (签收/退单/办结)."""

    PENDING = "pending", "待签收", "Awaiting signature"
    SIGNED = "signed", "已签收", "Signed for"
    RETURNED = "returned", "已退单", "Sent back"
    CONCLUDED = "concluded", "已反馈办理结果", "Outcome recorded"


class ReferralOutcome(Labelled):
    RESOLVED = "resolved", "已解决", "Resolved"
    PARTLY = "partly", "部分解决", "Partly resolved"
    NOT_RESOLVED = "not_resolved", "未解决", "Not resolved"


class ExpiryAction(Labelled):
    """What happens when a level's resolution limit passes (after the reminder)."""

    ESCALATE = "escalate", "提级督办", "Escalate one level up"
    REFER = "refer", "转结对部门", "Refer to the paired agency"


class HelperRole(Labelled):
    """What a helper added to a case does there."""

    ASSIST_MEDIATION = "assist_mediation", "协助调解", "Assists the mediation"
    VISIT = "visit", "走访", "Visits the parties"
    LEGAL_EDUCATION = "legal_education", "普法", "Explains the law"


class HelperTaskKind(Labelled):
    VISIT = "visit", "走访", "Visit"
    SESSION = "session", "协助调解会", "Mediation session"
    LEGAL_TALK = "legal_talk", "普法宣讲", "Legal talk"


class ExtensionState(Labelled):
    REQUESTED = "requested", "待审批", "Requested"
    GRANTED = "granted", "已批准", "Granted"
    REFUSED = "refused", "未批准", "Refused"


class NotAcceptedReason(Labelled):
    """Why a dispute is outside people's mediation (受理审查不予受理的事由)."""

    BEFORE_COURT = "before_court", "已诉至人民法院", "Already before a court"
    BEFORE_ARBITRATION = "before_arbitration", "已申请仲裁", "Already before arbitration"
    BEFORE_ADMINISTRATION = (
        "before_administration",
        "已由行政机关受理或处理",
        "Already before an administrative authority",
    )
    CRIMINAL = "criminal", "涉嫌违法犯罪", "A criminal matter"
    PARTY_REFUSES = "party_refuses", "当事人拒绝调解", "A party refuses mediation"


class ConsentMethod(Labelled):
    IN_PERSON = "in_person", "当面", "In person"
    PHONE = "phone", "电话", "By phone"
    RESIDENT_LINK = "resident_link", "居民链接", "Resident's link"


class MediatorEnd(Labelled):
    """Why a named mediator stopped mediating a case."""

    RECUSED = "recused", "回避", "Recused"
    PARTY_REQUEST = "party_request", "当事人要求更换", "Replaced at a party's request"
    REPLACED = "replaced", "调委会更换", "Replaced by the committee"


class TerminationReason(Labelled):
    """人民调解法 第二十六条: mediation that fails is ended; the parties are told their routes."""

    NO_AGREEMENT = "no_agreement", "经调解未达成协议", "No agreement reached"
    PARTY_WITHDRAWS = "party_withdraws", "当事人要求终止调解", "A party asks to end mediation"
    PARTY_REFUSES = "party_refuses", "当事人拒绝调解", "A party refuses mediation"
    OTHER = "other", "其他原因", "Other reason"


class ConfirmationStatus(Labelled):
    """Judicial confirmation of an agreement (司法确认, 人民调解法 第三十三条)."""

    NOT_APPLIED = "not_applied", "未申请", "Not applied"
    APPLIED = "applied", "已申请", "Applied"
    CONFIRMED = "confirmed", "已确认", "Confirmed"
    REFUSED = "refused", "不予确认", "Refused"


class OutboxState(Labelled):
    PENDING = "pending", "待投递", "Pending"
    DELIVERED = "delivered", "已投递", "Delivered"
    FAILED = "failed", "投递失败", "Failed"


LEGAL_REFERRAL_REASONS = frozenset(
    {
        ReferralReason.CRIMINAL,
        ReferralReason.IN_COURT,
        ReferralReason.IN_ARBITRATION,
        ReferralReason.ADMINISTRATIVE,
    }
)
_REASON_TARGET = {
    ReferralReason.CRIMINAL: ReferralTarget.POLICE,
    ReferralReason.IN_COURT: ReferralTarget.COURT,
    ReferralReason.IN_ARBITRATION: ReferralTarget.ARBITRATION,
}
