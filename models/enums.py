"""Enumerations with their zh-CN and English labels."""

from __future__ import annotations

from enum import StrEnum


class Labelled(StrEnum):
    """A string enum whose members carry ``zh`` and ``en`` labels."""

    @property
    def zh(self) -> str:
        return _LABELS[(type(self), self.value)][0]

    @property
    def en(self) -> str:
        return _LABELS[(type(self), self.value)][1]

    @property
    def label(self) -> str:
        return f"{self.zh} {self.en}"


class UnitLevel(Labelled):
    CITY = "city"
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    COMPOUND = "compound"
    BUILDING = "building"
    AGENCY = "agency"

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
    RELOCATION = "relocation"
    LABOUR = "labour"
    ENVIRONMENT = "environment"
    NEIGHBOUR = "neighbour"
    PROPERTY = "property"
    FAMILY = "family"
    TENANCY = "tenancy"
    OTHER = "other"


class Priority(Labelled):
    EMERGENCY = "emergency"
    HIGH = "high"
    NORMAL = "normal"
    CONSULTATION = "consultation"


class CaseStatus(Labelled):
    SUBMITTED = "submitted"
    TRIAGED = "triaged"
    ASSIGNED = "assigned"
    IN_MEDIATION = "in_mediation"
    AGREEMENT = "agreement"
    MEDIATION_FAILED = "mediation_failed"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"
    ESCALATED = "escalated"
    REFERRED = "referred"
    MERGED = "merged"
    WITHDRAWN = "withdrawn"
    REOPENED = "reopened"

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL_STATUSES


# A referred case stays open: it still gets its return visit before it is closed.
TERMINAL_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.MERGED, CaseStatus.WITHDRAWN})


class StaffRole(Labelled):
    COMMUNITY_WORKER = "community_worker"
    GRID_WORKER = "grid_worker"
    MEDIATOR = "mediator"
    INSTRUCTOR = "instructor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    VOLUNTEER = "volunteer"
    RETURN_VISITOR = "return_visitor"
    PARTY_MEMBER = "party_member"  # in-service Party member registered with a community


class PartyKind(Labelled):
    PERSON = "person"
    HOUSEHOLD = "household"
    FIRM = "firm"
    AGENCY = "agency"


class PartySide(Labelled):
    COMPLAINANT = "complainant"
    RESPONDENT = "respondent"
    THIRD_PARTY = "third_party"


class Channel(Labelled):
    WALK_IN = "walk_in"
    PHONE = "phone"
    GRID_PATROL = "grid_patrol"
    OPEN311 = "open311"
    HOTLINE_12345 = "hotline_12345"
    POLICE = "police"
    WEB = "web"


class LinkKind(Labelled):
    DUPLICATE_OF = "duplicate_of"
    RELATED_TO = "related_to"
    CLUSTER = "cluster"


class FollowUpKind(Labelled):
    AFTER_CLOSURE = "after_closure"
    BEFORE_TERM_DUE = "before_term_due"
    AFTER_AGREEMENT = "after_agreement"


class FollowUpOutcome(Labelled):
    CARRIED_OUT = "carried_out"
    PARTLY = "partly"
    NOT_CARRIED_OUT = "not_carried_out"
    UNREACHABLE = "unreachable"


class ContactMethod(Labelled):
    """How the handler first reached the complainant (an automatic assignment is not
    a contact)."""

    PHONE = "phone"
    VISIT = "visit"
    IN_PERSON = "in_person"
    MESSAGE = "message"


class VisitChannel(Labelled):
    """How a return visit's answers were given."""

    PHONE = "phone"
    IN_PERSON = "in_person"
    RESIDENT_LINK = "resident_link"


class ResolvedAnswer(Labelled):
    RESOLVED = "resolved"
    BASICALLY = "basically"
    UNRESOLVED = "unresolved"


class SatisfiedAnswer(Labelled):
    SATISFIED = "satisfied"
    BASICALLY = "basically"
    DISSATISFIED = "dissatisfied"


class BreachKind(Labelled):
    RESPONSE = "response"
    RESOLUTION = "resolution"


class Rate(Labelled):
    """The three rates (三率) a case is judged on, once each (:mod:`models.decisions`)."""

    RESPONSE = "response"
    RESOLUTION = "resolution"
    SATISFACTION = "satisfaction"


class ReferralTarget(Labelled):
    ARBITRATION = "arbitration"
    COURT = "court"
    AGENCY = "agency"
    ADMIN_REVIEW = "admin_review"
    POLICE = "police"


class ReferralReason(Labelled):
    """Why a case leaves people's mediation. The first four are the legal grounds on
    which a case may be referred at assignment (人民调解法 第十八条: a dispute the law
    gives to another authority, or one already before a court or arbitration); the last
    two only arise later, when the grassroots had its turn."""

    CRIMINAL = "criminal"
    IN_COURT = "in_court"
    IN_ARBITRATION = "in_arbitration"
    ADMINISTRATIVE = "administrative"
    LIMIT_PASSED = "limit_passed"
    MEDIATION_FAILED = "mediation_failed"

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

    PENDING = "pending"
    SIGNED = "signed"
    RETURNED = "returned"
    CONCLUDED = "concluded"


class ReferralOutcome(Labelled):
    RESOLVED = "resolved"
    PARTLY = "partly"
    NOT_RESOLVED = "not_resolved"


class ExpiryAction(Labelled):
    """What happens when a level's resolution limit passes (after the reminder)."""

    ESCALATE = "escalate"
    REFER = "refer"


class HelperRole(Labelled):
    """What a helper added to a case does there."""

    ASSIST_MEDIATION = "assist_mediation"
    VISIT = "visit"
    LEGAL_EDUCATION = "legal_education"


class HelperTaskKind(Labelled):
    VISIT = "visit"
    SESSION = "session"
    LEGAL_TALK = "legal_talk"


class ExtensionState(Labelled):
    REQUESTED = "requested"
    GRANTED = "granted"
    REFUSED = "refused"


class NotAcceptedReason(Labelled):
    """Why a dispute is outside people's mediation (受理审查不予受理的事由)."""

    BEFORE_COURT = "before_court"
    BEFORE_ARBITRATION = "before_arbitration"
    BEFORE_ADMINISTRATION = "before_administration"
    CRIMINAL = "criminal"
    PARTY_REFUSES = "party_refuses"


class ConsentMethod(Labelled):
    IN_PERSON = "in_person"
    PHONE = "phone"
    RESIDENT_LINK = "resident_link"


class MediatorEnd(Labelled):
    """Why a named mediator stopped mediating a case."""

    RECUSED = "recused"
    PARTY_REQUEST = "party_request"
    REPLACED = "replaced"


class TerminationReason(Labelled):
    """人民调解法 第二十六条: mediation that fails is ended; the parties are told their routes."""

    NO_AGREEMENT = "no_agreement"
    PARTY_WITHDRAWS = "party_withdraws"
    PARTY_REFUSES = "party_refuses"
    OTHER = "other"


class ConfirmationStatus(Labelled):
    """Judicial confirmation of an agreement (司法确认, 人民调解法 第三十三条)."""

    NOT_APPLIED = "not_applied"
    APPLIED = "applied"
    CONFIRMED = "confirmed"
    REFUSED = "refused"


class OutboxState(Labelled):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


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

_LABEL_PAIRS: tuple[tuple[Labelled, tuple[str, str]], ...] = (
    (UnitLevel.CITY, ("市", "City")),
    (UnitLevel.DISTRICT, ("区", "District")),
    (UnitLevel.STREET, ("街道", "Street")),
    (UnitLevel.COMMUNITY, ("社区", "Community")),
    (UnitLevel.COMPOUND, ("小区", "Compound")),
    (UnitLevel.BUILDING, ("楼幢", "Building")),
    (UnitLevel.AGENCY, ("结对部门", "Paired agency")),
    (Category.RELOCATION, ("动迁/拆迁纠纷", "Relocation compensation")),
    (Category.LABOUR, ("劳动争议/欠薪", "Layoffs and unpaid wages")),
    (Category.ENVIRONMENT, ("环境投诉", "Environmental complaint")),
    (Category.NEIGHBOUR, ("邻里纠纷", "Neighbour dispute")),
    (Category.PROPERTY, ("物业纠纷", "Property management")),
    (Category.FAMILY, ("婚姻家庭纠纷", "Family and marriage")),
    (Category.TENANCY, ("房屋租赁纠纷", "Landlord and tenant")),
    (Category.OTHER, ("其他", "Other")),
    (Priority.EMERGENCY, ("紧急", "Emergency")),
    (Priority.HIGH, ("重要", "High")),
    (Priority.NORMAL, ("一般", "Normal")),
    (Priority.CONSULTATION, ("咨询求助", "Consultation")),
    (CaseStatus.SUBMITTED, ("已登记", "Submitted")),
    (CaseStatus.TRIAGED, ("已研判分流", "Triaged")),
    (CaseStatus.ASSIGNED, ("已派单", "Assigned")),
    (CaseStatus.IN_MEDIATION, ("调解中", "In mediation")),
    (CaseStatus.AGREEMENT, ("达成协议", "Agreement")),
    (CaseStatus.MEDIATION_FAILED, ("调解不成", "Mediation failed")),
    (CaseStatus.FOLLOW_UP, ("回访中", "Follow-up")),
    (CaseStatus.CLOSED, ("已办结", "Closed")),
    (CaseStatus.ESCALATED, ("已提级督办", "Escalated")),
    (CaseStatus.REFERRED, ("已移交", "Referred")),
    (CaseStatus.MERGED, ("已合并", "Merged")),
    (CaseStatus.WITHDRAWN, ("已撤回", "Withdrawn")),
    (CaseStatus.REOPENED, ("重新办理", "Reopened")),
    (StaffRole.COMMUNITY_WORKER, ("社区工作者", "Community worker")),
    (StaffRole.GRID_WORKER, ("网格员", "Grid worker")),
    (StaffRole.MEDIATOR, ("人民调解员", "Mediator")),
    (StaffRole.INSTRUCTOR, ("党建指导员", "Party-building instructor")),
    (StaffRole.SUPERVISOR, ("督办人员", "Supervisor")),
    (StaffRole.ADMIN, ("系统管理员", "Administrator")),
    (StaffRole.VOLUNTEER, ("志愿者", "Volunteer")),
    (StaffRole.RETURN_VISITOR, ("回访员", "Return visitor")),
    (StaffRole.PARTY_MEMBER, ("在职党员", "In-service Party member")),
    (PartyKind.PERSON, ("个人", "Person")),
    (PartyKind.HOUSEHOLD, ("家庭", "Household")),
    (PartyKind.FIRM, ("企业", "Firm")),
    (PartyKind.AGENCY, ("单位/部门", "Agency")),
    (PartySide.COMPLAINANT, ("申请人", "Complainant")),
    (PartySide.RESPONDENT, ("被申请人", "Respondent")),
    (Channel.WALK_IN, ("来访", "Walk-in")),
    (Channel.PHONE, ("来电", "Phone")),
    (Channel.GRID_PATROL, ("网格巡查", "Grid patrol")),
    (Channel.OPEN311, ("公众上报", "Open311")),
    (Channel.HOTLINE_12345, ("12345转办", "12345 hotline")),
    (Channel.POLICE, ("公安转办", "Police referral")),
    (Channel.WEB, ("网页登记", "Web form")),
    (LinkKind.DUPLICATE_OF, ("重复件", "Duplicate of")),
    (LinkKind.RELATED_TO, ("关联件", "Related to")),
    (LinkKind.CLUSTER, ("同源聚集", "Cluster")),
    (FollowUpKind.AFTER_CLOSURE, ("办结回访", "After closure")),
    (FollowUpKind.BEFORE_TERM_DUE, ("履约回访", "Before a term is due")),
    (FollowUpKind.AFTER_AGREEMENT, ("协议回访", "After agreement")),
    (FollowUpOutcome.CARRIED_OUT, ("已履行", "Carried out")),
    (FollowUpOutcome.PARTLY, ("部分履行", "Partly carried out")),
    (FollowUpOutcome.NOT_CARRIED_OUT, ("未履行", "Not carried out")),
    (FollowUpOutcome.UNREACHABLE, ("未联系上", "Unreachable")),
    (ContactMethod.PHONE, ("电话联系", "Phone call")),
    (ContactMethod.VISIT, ("上门走访", "Home visit")),
    (ContactMethod.IN_PERSON, ("当面接谈", "In person")),
    (ContactMethod.MESSAGE, ("短信/微信联系", "Text message")),
    (VisitChannel.PHONE, ("电话回访", "Phone call")),
    (VisitChannel.IN_PERSON, ("上门回访", "In person")),
    (VisitChannel.RESIDENT_LINK, ("居民自评链接", "Resident's own link")),
    (ResolvedAnswer.RESOLVED, ("已解决", "Resolved")),
    (ResolvedAnswer.BASICALLY, ("基本解决", "Basically resolved")),
    (ResolvedAnswer.UNRESOLVED, ("未解决", "Not resolved")),
    (SatisfiedAnswer.SATISFIED, ("满意", "Satisfied")),
    (SatisfiedAnswer.BASICALLY, ("基本满意", "Basically satisfied")),
    (SatisfiedAnswer.DISSATISFIED, ("不满意", "Dissatisfied")),
    (BreachKind.RESPONSE, ("响应超时", "Response limit passed")),
    (BreachKind.RESOLUTION, ("办理超期", "Resolution limit passed")),
    (Rate.RESPONSE, ("响应率", "Response rate")),
    (Rate.RESOLUTION, ("解决率", "Resolution rate")),
    (Rate.SATISFACTION, ("满意率", "Satisfaction rate")),
    (ReferralTarget.ARBITRATION, ("劳动人事争议仲裁", "Labour and personnel arbitration")),
    (ReferralTarget.COURT, ("法院", "Court")),
    (ReferralTarget.AGENCY, ("结对部门", "Paired agency")),
    (ReferralTarget.POLICE, ("公安机关", "Police")),
    (ReferralReason.CRIMINAL, ("涉嫌违法犯罪，移送公安机关", "Criminal matter, for the police")),
    (ReferralReason.IN_COURT, ("已进入诉讼程序", "Already before a court")),
    (ReferralReason.IN_ARBITRATION, ("已申请仲裁", "Already before arbitration")),
    (
        ReferralReason.ADMINISTRATIVE,
        (
            "须由行政机关依职权处理",
            "A decision only an administrative agency can make",
        ),
    ),
    (ReferralReason.LIMIT_PASSED, ("基层办理时限届满", "Time at the grassroots ran out")),
    (ReferralReason.MEDIATION_FAILED, ("调解不成", "Mediation failed")),
    (ReferralState.PENDING, ("待签收", "Awaiting signature")),
    (ReferralState.SIGNED, ("已签收", "Signed for")),
    (ReferralState.RETURNED, ("已退单", "Sent back")),
    (ReferralState.CONCLUDED, ("已反馈办理结果", "Outcome recorded")),
    (ReferralOutcome.RESOLVED, ("已解决", "Resolved")),
    (ReferralOutcome.PARTLY, ("部分解决", "Partly resolved")),
    (ReferralOutcome.NOT_RESOLVED, ("未解决", "Not resolved")),
    (ExpiryAction.ESCALATE, ("提级督办", "Escalate one level up")),
    (ExpiryAction.REFER, ("转结对部门", "Refer to the paired agency")),
    (HelperRole.ASSIST_MEDIATION, ("协助调解", "Assists the mediation")),
    (HelperRole.VISIT, ("走访", "Visits the parties")),
    (HelperRole.LEGAL_EDUCATION, ("普法", "Explains the law")),
    (HelperTaskKind.VISIT, ("走访", "Visit")),
    (HelperTaskKind.SESSION, ("协助调解会", "Mediation session")),
    (HelperTaskKind.LEGAL_TALK, ("普法宣讲", "Legal talk")),
    (ExtensionState.REQUESTED, ("待审批", "Requested")),
    (ExtensionState.GRANTED, ("已批准", "Granted")),
    (ExtensionState.REFUSED, ("未批准", "Refused")),
    (PartySide.THIRD_PARTY, ("第三人", "Third party")),
    (ReferralTarget.ADMIN_REVIEW, ("行政复议", "Administrative review")),
    (NotAcceptedReason.BEFORE_COURT, ("已诉至人民法院", "Already before a court")),
    (NotAcceptedReason.BEFORE_ARBITRATION, ("已申请仲裁", "Already before arbitration")),
    (NotAcceptedReason.CRIMINAL, ("涉嫌违法犯罪", "A criminal matter")),
    (NotAcceptedReason.PARTY_REFUSES, ("当事人拒绝调解", "A party refuses mediation")),
    (ConsentMethod.IN_PERSON, ("当面", "In person")),
    (ConsentMethod.PHONE, ("电话", "By phone")),
    (ConsentMethod.RESIDENT_LINK, ("居民链接", "Resident's link")),
    (MediatorEnd.RECUSED, ("回避", "Recused")),
    (MediatorEnd.PARTY_REQUEST, ("当事人要求更换", "Replaced at a party's request")),
    (MediatorEnd.REPLACED, ("调委会更换", "Replaced by the committee")),
    (TerminationReason.NO_AGREEMENT, ("经调解未达成协议", "No agreement reached")),
    (TerminationReason.PARTY_REFUSES, ("当事人拒绝调解", "A party refuses mediation")),
    (TerminationReason.OTHER, ("其他原因", "Other reason")),
    (ConfirmationStatus.NOT_APPLIED, ("未申请", "Not applied")),
    (ConfirmationStatus.APPLIED, ("已申请", "Applied")),
    (ConfirmationStatus.CONFIRMED, ("已确认", "Confirmed")),
    (ConfirmationStatus.REFUSED, ("不予确认", "Refused")),
    (
        NotAcceptedReason.BEFORE_ADMINISTRATION,
        ("已由行政机关受理或处理", "Already before an administrative authority"),
    ),
    (TerminationReason.PARTY_WITHDRAWS, ("当事人要求终止调解", "A party asks to end mediation")),
    (OutboxState.PENDING, ("待投递", "Pending")),
    (OutboxState.DELIVERED, ("已投递", "Delivered")),
    (OutboxState.FAILED, ("投递失败", "Failed")),
)
# Keyed by (enum, value): members of different enums may share a value ("agency" is a
# unit level, a party kind and a referral target), and a plain dict would keep one label.
_LABELS: dict[tuple[type, str], tuple[str, str]] = {
    (type(member), member.value): labels for member, labels in _LABEL_PAIRS
}
