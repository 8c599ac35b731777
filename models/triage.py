"""Triage (研判分流): classify a complaint, link duplicates and clusters, route it and set its
time limits.

Classification is the trained text classifier (models.machine_triage, models.assessment);
:func:`classify_text`, the earlier weighted keywords, stays as the baseline the
classifier is measured against (``tiaojie triage evaluate``, ``make bench``). Duplicate
detection compares cases about the same respondent or the same place within
``settings.dedup_window_days`` by the Jaccard similarity of their character bigrams.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from models import clock, groups, lifecycle, machine_triage, pii
from models.access import Actor
from models.case import Case, CaseLink
from models.cases import normalise_org_name
from models.confidentiality import confidential_by_default
from models.deadlines import compute_deadlines
from models.enums import CaseStatus, Category, LinkKind, Priority, UnitLevel
from models.routing import Directory, locate
from models.settings import get_settings
from models.triage_tables import RiskWarning
from models.unit import Unit, unit_by_code

# --- classification ---------------------------------------------------------------

# fmt: off
KEYWORDS: dict[Category, dict[str, float]] = {
    Category.RELOCATION: {
        "拆迁": 3, "动迁": 3, "征收": 3, "征地": 3, "补偿款": 2, "补偿": 2, "安置": 2,
        "安置房": 2, "回迁": 2, "强拆": 3, "棚改": 2, "旧改": 2, "搬迁": 1.5, "评估价": 1,
    },
    Category.LABOUR: {
        "工资": 3, "欠薪": 3, "拖欠": 1.5, "讨薪": 3, "裁员": 3, "下岗": 3, "辞退": 2.5,
        "解除劳动合同": 3, "劳动合同": 2, "社保": 2.5, "五险一金": 2.5, "公积金": 1.5,
        "加班费": 2.5, "加班": 1.5, "工伤": 2.5, "经济补偿金": 2, "农民工": 2, "包工头": 2,
        "工人": 1, "员工": 1, "老板": 1, "失业": 2,
    },
    Category.ENVIRONMENT: {
        "噪音": 2.5, "噪声": 2.5, "油烟": 3, "异味": 3, "臭味": 2.5, "污水": 3, "排污": 3,
        "粉尘": 3, "扬尘": 3, "排放": 2, "废气": 3, "污染": 2.5, "烟尘": 2.5, "夜间施工": 3,
        "施工": 1, "刺鼻": 2, "黑烟": 2.5, "垃圾站": 1.5,
    },
    Category.NEIGHBOUR: {
        "邻居": 3, "邻里": 3, "楼上": 2, "楼下": 2, "对门": 2, "隔壁": 2, "漏水": 2,
        "渗水": 2, "占用楼道": 2.5, "楼道": 1, "宠物": 1.5, "狗": 1, "堆放杂物": 2,
        "装修": 1, "采光": 1.5, "私搭乱建": 2, "违建": 1.5,
    },
    Category.PROPERTY: {
        "物业": 3, "物业费": 3, "电梯": 2.5, "停车": 2, "车位": 2, "业委会": 3, "业主": 1,
        "维修基金": 2.5, "门禁": 1.5, "保安": 1, "小区绿化": 1.5, "供暖": 1.5,
    },
    Category.FAMILY: {
        "离婚": 3, "赡养": 3, "抚养": 3, "抚养费": 3, "家暴": 3, "家庭暴力": 3,
        "婚姻": 2.5, "夫妻": 2, "老人": 1, "子女": 1.5, "遗产": 2.5, "继承": 2.5,
        "彩礼": 2.5, "婆媳": 2.5,
    },
    Category.TENANCY: {
        "房东": 3, "租客": 3, "租户": 3, "押金": 2.5, "房租": 3, "租金": 3, "租房": 2.5,
        "租赁": 2.5, "退租": 3, "中介": 1.5, "合租": 2, "转租": 2.5,
    },
}

EMERGENCY_WORDS = (
    "跳楼", "轻生", "自杀", "堵路", "堵门", "打架", "斗殴", "持刀", "动刀", "煤气",
    "燃气泄漏", "起火", "着火", "爆炸", "围堵", "扬言", "伤人",
)
GROUP_WORDS = ("集体", "群体", "联名", "多户", "几十名", "上百")
CONSULTATION_WORDS = ("咨询", "请问", "想了解", "问一下", "如何办理", "怎么办理")
# fmt: on

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise_text(text: str) -> str:
    """Width-folded (full-width digits and letters to half-width), lower case, single
    spaces."""
    folded = unicodedata.normalize("NFKC", text or "").lower()
    return " ".join(folded.split())


@dataclass(frozen=True)
class Classification:
    category: Category
    priority: Priority
    confidence: float  # 0..1: the winner's share of all keyword weight found
    matched: tuple[str, ...]  # keywords found (category words, then priority words)


def _found(text: str, words: dict[str, float]) -> dict[str, float]:
    # A shorter keyword inside a longer one found already does not count twice.
    hits: dict[str, float] = {}
    for word in sorted(words, key=len, reverse=True):
        if word in text and not any(word in longer for longer in hits):
            hits[word] = words[word]
    return hits


def classify_text(text: str, *, people_affected: int = 1) -> Classification:
    """Category from weighted keywords; priority from emergency words (emergency), group
    size or group words (high), consultation words (consultation), else normal."""
    norm = normalise_text(text)
    scores: dict[Category, float] = {}
    words: dict[Category, list[str]] = {}
    for category, table in KEYWORDS.items():
        hits = _found(norm, table)
        if hits:
            scores[category] = sum(hits.values())
            words[category] = list(hits)
    if scores:
        # Ties go to the order of KEYWORDS (the three main kinds first).
        category = max(scores, key=lambda c: (scores[c], -list(KEYWORDS).index(c)))
        confidence = round(scores[category] / sum(scores.values()), 3)
        matched = list(words[category])
    else:
        category, confidence, matched = Category.OTHER, 0.0, []

    emergency = [w for w in EMERGENCY_WORDS if w in norm]
    group = [w for w in GROUP_WORDS if w in norm]
    consult = [w for w in CONSULTATION_WORDS if w in norm]
    if emergency:
        priority, matched = Priority.EMERGENCY, matched + emergency
    elif group or people_affected >= get_settings().group_case_threshold:
        priority, matched = Priority.HIGH, matched + group
    elif consult:
        priority, matched = Priority.CONSULTATION, matched + consult
    else:
        priority = Priority.NORMAL
    return Classification(category, priority, confidence, tuple(matched))


def keyword_category(text: str) -> str:
    """The keyword rules' category code for ``text``: the baseline the trained model is
    measured against (``make model-report``, ``bench triage``)."""
    return classify_text(text).category.value


# --- similarity -----------------------------------------------------------------------

DUPLICATE_THRESHOLD = 0.5  # same respondent or place, and this similar: the same complaint
RELATED_THRESHOLD = 0.2  # same place and this similar: about the same thing
MAX_LINKS = 10
MAX_CANDIDATES = 300


def bigrams(text: str) -> frozenset[str]:
    clean = _PUNCT.sub("", normalise_text(text))
    if len(clean) < 2:
        return frozenset({clean}) if clean else frozenset()
    return frozenset(clean[i : i + 2] for i in range(len(clean) - 1))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of character bigrams (0..1)."""
    x, y = bigrams(a), bigrams(b)
    if not x or not y:
        return 0.0
    return len(x & y) / len(x | y)


def respondent_key_for(name: str) -> str:
    return pii.lookup_hash(normalise_org_name(name))[:32]


# --- triage -------------------------------------------------------------------------


@dataclass(frozen=True)
class TriageResult:
    case_id: int
    number: str
    category: Category
    priority: Priority
    unit_code: str | None
    duplicate_of_id: int | None
    related_ids: tuple[int, ...]
    cluster_key: str | None
    cluster_size: int
    cluster_warning: bool
    is_group: bool
    held_for_assessment: bool = False
    risk_level: str | None = None  # red | orange | yellow when a warning is open
    # This case opened an assessment task whose leader has not been told yet.
    warning_owed: bool = False

    @property
    def warning_event(self) -> str | None:
        """The early-warning event this triage raises, if any: one per assessment task
        whose leader has not heard of it (the automation on it starts ``risk-notice``).
        So a cluster warns its leader once, when its task opens (again when a higher
        level opens a new one), not once per complaint of the cluster: every complaint
        after the fifth against one firm started a run of its own (a new process) and
        starved a district's intake during a backlog. A cluster's task is a
        ``tiaojie.cluster.warning``, any other a ``tiaojie.risk.warning``."""
        if not self.warning_owed:
            return None
        return "tiaojie.cluster.warning" if self.cluster_warning else "tiaojie.risk.warning"


@dataclass(frozen=True)
class _Candidate:
    case: Case
    score: float
    same_respondent: bool
    same_place: bool


def _window_start(now: datetime) -> datetime:
    return now - timedelta(days=get_settings().dedup_window_days)


def _candidates(session: Session, case: Case, since: datetime) -> list[_Candidate]:
    conditions = []
    if case.respondent_key:
        conditions.append(col(Case.respondent_key) == case.respondent_key)
    if case.place_unit_id is not None:
        conditions.append(col(Case.place_unit_id) == case.place_unit_id)
    if case.address_text:
        conditions.append(col(Case.address_text) == case.address_text)
    if not conditions:
        return []
    rows = session.exec(
        select(Case)
        .where(
            or_(*conditions),
            col(Case.id) != case.id,
            col(Case.created_at) >= since,
            col(Case.status).not_in([CaseStatus.MERGED, CaseStatus.WITHDRAWN]),
        )
        .order_by(col(Case.id).desc())
        .limit(MAX_CANDIDATES)
    ).all()
    mine = bigrams(case.description)
    out = []
    for other in rows:
        theirs = bigrams(other.description)
        score = len(mine & theirs) / len(mine | theirs) if mine and theirs else 0.0
        same_respondent = bool(case.respondent_key) and other.respondent_key == case.respondent_key
        same_place = (
            case.place_unit_id is not None and other.place_unit_id == case.place_unit_id
        ) or (bool(case.address_text) and other.address_text == case.address_text)
        out.append(_Candidate(other, round(score, 3), same_respondent, same_place))
    return out


def cluster_key_for(case: Case, place: Unit | None) -> str | None:
    """Cases against one respondent form a cluster; without a named respondent, cases
    of one category at one place (the restaurant nobody named)."""
    if case.respondent_key:
        return f"r:{case.respondent_key}"
    if place is not None:
        return f"p:{place.code}:{case.category.value}"[:64]
    return None


def _cluster_size(session: Session, *, cluster_key: str | None, since: datetime) -> int:
    if not cluster_key:
        return 1
    n = session.exec(
        select(func.count())
        .select_from(Case)
        .where(
            col(Case.cluster_key) == cluster_key,
            col(Case.created_at) >= since,
            col(Case.status).not_in([CaseStatus.WITHDRAWN]),
        )
    ).one()
    return max(int(n), 1)


def _current_result(
    session: Session,
    case: Case,
    *,
    size: int | None = None,
    related: list[int] | None = None,
) -> TriageResult:
    """The case's triage as it stands; ``size`` and ``related``: its cluster's size and
    the cases it is related to, when triage has just found them."""
    assert case.id is not None
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    if related is None:
        related = list(
            session.exec(
                select(CaseLink.other_case_id)
                .where(CaseLink.case_id == case.id, CaseLink.kind == LinkKind.RELATED_TO)
                .order_by(col(CaseLink.other_case_id))
            ).all()
        )
    if size is None:
        since = _window_start(clock.ensure_utc(case.created_at))
        size = _cluster_size(session, cluster_key=case.cluster_key, since=since)
    return TriageResult(
        case_id=case.id,
        number=case.number,
        category=case.category,
        priority=case.priority,
        unit_code=unit.code if unit else None,
        duplicate_of_id=case.duplicate_of_id,
        related_ids=tuple(related),
        cluster_key=case.cluster_key,
        cluster_size=size,
        cluster_warning=size >= get_settings().cluster_warning_threshold,
        is_group=case.is_group,
        held_for_assessment=case.held_for_assessment,
        risk_level=case.risk_level,
        warning_owed=_warning_owed(session, case.id),
    )


def _warning_owed(session: Session, case_id: int) -> bool:
    """The case has its own open assessment task and its leader has not been told."""
    return (
        session.exec(
            select(RiskWarning.id).where(
                RiskWarning.case_id == case_id,
                RiskWarning.status == "open",
                col(RiskWarning.leader_id).is_not(None),
                col(RiskWarning.notified_at).is_(None),
            )
        ).first()
        is not None
    )


def _limits_start(case: Case, now: datetime) -> datetime:
    """Limits run from when the complaint was received (waiting for triage counts against
    the unit); a reopened case starts afresh when it is reopened."""
    if case.status == CaseStatus.REOPENED:
        return now
    return clock.ensure_utc(case.received_at or case.created_at)


def triage_case(session: Session, *, case_id: int, actor: Actor) -> TriageResult:
    """Classify, link duplicates and clusters, route and set the time limits of a
    submitted (or reopened) case, then move it to ``triaged``. Called again on a case
    already past triage, it changes nothing and returns the current result."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=None)
    case = step.case
    assert case.id is not None
    if case.status not in (CaseStatus.SUBMITTED, CaseStatus.REOPENED):
        return _current_result(session, case)
    now = clock.now()

    # 1. Classify with the trained model, keeping what a person chose on purpose; an
    # unsure reading holds the case for a person (研判, models.machine_triage).
    found = machine_triage.classify_case(session, case=case)
    # Family and marriage disputes are confidential (不公开) from the moment they are known.
    case.confidential = case.confidential or confidential_by_default(case.category)

    # 2. Place (an address or coordinates that name a building become its place).
    place, how = locate(session, case=case)
    if how in ("address", "coordinates"):
        case.place_unit_id = place.id

    # 3. Duplicates, related cases and the cluster.
    since = _window_start(clock.ensure_utc(case.created_at))
    # Until the cluster is counted, triage's reads (other cases, this case's links, the
    # units, the parties) do not depend on what it has changed so far (this case, its
    # suggestion, its new links): they are not flushed before each read but once, when
    # the count needs the case's key. One flush and one UPDATE a case fewer.
    with session.no_autoflush:
        candidates = _candidates(session, case, since)
    duplicate: _Candidate | None = None
    related: list[_Candidate] = []
    for cand in sorted(candidates, key=lambda c: (-c.score, c.case.id or 0)):
        near = cand.same_respondent or cand.same_place
        if (
            duplicate is None
            and near
            and cand.score >= DUPLICATE_THRESHOLD
            and cand.case.is_open
            and (cand.case.id or 0) < case.id
        ):
            duplicate = cand
        elif cand.same_respondent or (cand.same_place and cand.score >= RELATED_THRESHOLD):
            related.append(cand)
    if duplicate is not None:
        # The oldest of equally similar open cases is the one to follow.
        best = [
            c
            for c in candidates
            if c.score == duplicate.score and c.case.is_open and (c.same_respondent or c.same_place)
        ]
        duplicate = min(best, key=lambda c: c.case.id or 0)
        related = [c for c in related if c.case.id != duplicate.case.id]
    related = sorted(related, key=lambda c: (-c.score, c.case.id or 0))[: MAX_LINKS - 1]

    with session.no_autoflush:
        existing = {
            (link.other_case_id, link.kind)
            for link in session.exec(select(CaseLink).where(CaseLink.case_id == case.id)).all()
        }
    links: list[tuple[_Candidate, LinkKind]] = []
    if duplicate is not None:
        links.append((duplicate, LinkKind.DUPLICATE_OF))
        case.duplicate_of_id = duplicate.case.id
    links += [(c, LinkKind.RELATED_TO) for c in related]
    new_links: list[dict[str, object]] = []
    for cand, kind in links:
        assert cand.case.id is not None
        if (cand.case.id, kind) in existing:
            continue
        session.add(
            CaseLink(
                case_id=case.id,
                other_case_id=cand.case.id,
                kind=kind,
                score=cand.score,
                created_at=now,
            )
        )
        new_links.append(
            {
                "other_case_id": cand.case.id,
                "other_number": cand.case.number,
                "kind": kind.value,
                "score": round(cand.score, 3),
            }
        )
    if new_links:
        # One timeline entry for all the links found at triage (a repeated complaint can
        # relate to many; one event each flooded the timeline and the event feed).
        step.record("duplicate_linked", {**new_links[0], "links": new_links})

    case.cluster_key = cluster_key_for(case, place)
    with session.no_autoflush:
        directory = Directory.load_branch(session, place)
        community = directory.ancestor_at(place, UnitLevel.COMMUNITY)
        case.is_group = groups.is_group_case(
            session,
            case=case,
            nearby=[(c.case, c.score) for c in candidates],
            community_path=community.path if community else None,
        )
    if (
        case.is_group
        and not case.priority_locked
        and case.priority
        in (
            Priority.NORMAL,
            Priority.CONSULTATION,
        )
    ):
        case.priority = Priority.HIGH

    # 4. Handling unit and time limits at its level.
    unit = directory.handling_unit_for(place, case.category, group=case.is_group)
    if case.held_for_assessment:
        unit = machine_triage.intake_desk(directory, place, unit)
    policy = directory.policy(category=case.category, priority=case.priority, level=unit.level)
    deadlines = compute_deadlines(policy, start=_limits_start(case, now))
    case.unit_id = unit.id
    case.unit_path = unit.path
    case.response_due_at = deadlines.response_due_at
    case.resolution_due_at = deadlines.resolution_due_at
    case.next_reminder_at = deadlines.next_reminder_at
    case.escalation_level = 0
    case.reminded_level = None
    case.assignee_id = None
    size = _cluster_size(session, cluster_key=case.cluster_key, since=since)
    risk_found = machine_triage.assess_risk(
        session,
        case=case,
        found=found,
        cluster_warning=size >= get_settings().cluster_warning_threshold,
    )
    step.record(
        "triaged",
        {
            "category": case.category.value,
            "priority": case.priority.value,
            "unit": unit.code,
            "place_found_by": how,
            "policy": deadlines.policy_name,
            "is_group": case.is_group,
            "duplicate_of_id": case.duplicate_of_id,
            "confidence": round(found.confidence, 3),
            "held_for_assessment": case.held_for_assessment,
            "risk": risk_found.level.value,
        },
    )
    # The cluster was counted above, with this case's key and window, and the case's
    # links are the ones it had and the ones just added (only triage links a case, one
    # row per other case and kind): neither is read again (two statements a case).
    related_ids = {other for other, kind in existing if kind == LinkKind.RELATED_TO}
    related_ids |= {c.case.id for c, kind in links if kind == LinkKind.RELATED_TO and c.case.id}
    return _current_result(session, case, size=size, related=sorted(related_ids))


# --- suggestions while typing ----------------------------------------------------------


@dataclass(frozen=True)
class DuplicateSuggestion:
    case_id: int
    number: str
    category: Category
    status: CaseStatus
    score: float
    reason_zh: str
    reason_en: str


def suggest_duplicates(
    session: Session,
    *,
    place_code: str | None,
    respondent: str | None,
    description: str | None,
    limit: int = 5,
    reach_path: str | None = None,
) -> list[DuplicateSuggestion]:
    """Open cases that may be the one being typed in (same respondent, same place,
    similar description, within the dedup window), best first. ``reach_path`` limits
    them to a subtree of units (what the worker may see)."""
    now = clock.now()
    since = _window_start(now)
    place = unit_by_code(session, place_code) if place_code else None
    key = respondent_key_for(respondent) if respondent and respondent.strip() else None
    text = description or ""
    conditions = []
    if key:
        conditions.append(col(Case.respondent_key) == key)
    if place is not None:
        conditions.append(col(Case.place_unit_id) == place.id)
    query = select(Case).where(col(Case.is_open), col(Case.created_at) >= since)
    if conditions:
        query = query.where(or_(*conditions))
    elif len(bigrams(text)) < 4:
        return []
    if reach_path:
        # A complaint filed minutes ago may not be triaged yet (no handling unit): its
        # place decides whether the worker may see it.
        places_in_reach = select(Unit.id).where(
            col(Unit.path).startswith(reach_path, autoescape=True)
        )
        query = query.where(
            or_(
                col(Case.unit_path).startswith(reach_path, autoescape=True),
                and_(col(Case.unit_path).is_(None), col(Case.place_unit_id).in_(places_in_reach)),
            )
        )
    rows = session.exec(query.order_by(col(Case.id).desc()).limit(MAX_CANDIDATES)).all()
    mine = bigrams(text)
    out: list[DuplicateSuggestion] = []
    for case in rows:
        assert case.id is not None
        sim = 0.0
        if mine:
            theirs = bigrams(case.description)
            sim = len(mine & theirs) / len(mine | theirs) if theirs else 0.0
        zh: list[str] = []
        en: list[str] = []
        score = sim
        if key and case.respondent_key == key:
            score += 0.4
            zh.append("同一被申请人")
            en.append("same respondent")
        if place is not None and case.place_unit_id == place.id:
            score += 0.2
            zh.append("同一地点")
            en.append("same place")
        if sim >= RELATED_THRESHOLD:
            zh.append(f"描述相似度 {sim:.0%}")
            en.append(f"description {sim:.0%} similar")
        if not zh:
            continue
        out.append(
            DuplicateSuggestion(
                case_id=case.id,
                number=case.number,
                category=case.category,
                status=case.status,
                score=round(min(score, 1.0), 3),
                reason_zh="，".join(zh),
                reason_en=", ".join(en),
            )
        )
    out.sort(key=lambda s: (-s.score, -s.case_id))
    return out[:limit]
