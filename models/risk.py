"""Danger and unrest detectors: what in a complaint says someone is in danger now, or
that people are about to gather, petition or block a road; each finding carries its
reason in both languages.

* :func:`danger` — danger to life or safety now (self-harm threats, weapons, violence
  in progress, threats to kill or hurt someone, fire or gas, people locked in or
  trapped, children at risk). A finding makes the case an emergency. A clause that
  speaks of the past (去年着火那次), of a mere possibility (万一着火) or denies the act
  (没打起来, 怕着火) does not count, except that a threat — to others or to oneself — is
  conditional by nature (要是再不给钱就砍了他) and counts unless it is in the past.
* :func:`unrest` — instability risk signals in the text (threats to gather, petition,
  block roads or gates, banners, going to a government office, many workers unpaid
  before the Spring Festival).
* :func:`warning_level` — the early-warning level (red/orange/yellow) from the text's
  signals, the number of people, the growth of related cases, repeat complainants and
  the spread across communities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class WarningLevel(StrEnum):
    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    NONE = "none"

    @property
    def zh(self) -> str:
        return {"red": "红色预警", "orange": "橙色预警", "yellow": "黄色预警", "none": "无"}[self]

    @property
    def rank(self) -> int:
        return {"red": 3, "orange": 2, "yellow": 1, "none": 0}[self]


@dataclass(frozen=True)
class Finding:
    kind: str
    zh: str
    en: str
    weight: int
    matched: str

    def reason(self) -> str:
        return f"{self.zh}（{self.matched}）/ {self.en}"


# Verbs of "hitting" that are not violence (打官司, 打电话, 打工, 打了12345 ...).
_NOT_HIT = (
    r"了?(?:\d|官司|电话|热线|市长|工|听|游戏|麻将|扫|卡|算|印|车|针|折|包|理|扰|招呼|桩|球|"
    r"牌|字|架子)"
)
_HIT = rf"(?:打(?!{_NOT_HIT})|砸|动手|殴打)"
# Whom a threat is against: a person, not a price (砍价), a tree (砍树) or a chicken.
_WHOM = (
    r"(?:了|死)?(?:他|她|你|我|人|那|这|全家|一家|老板|包工头|工头|房东|邻居|物业|老婆|"
    r"老公|媳妇|丈夫|妻子|对方|经理|领导|主任|干部)"
)
_KID = r"(?:孩子|小孩|娃|儿子|闺女|女儿|孙子|孙女|外孙|宝宝|学生)"

# fmt: off
_DANGER: list[tuple[str, str, str, str]] = [
    ("self_harm", "自伤自杀风险", "self-harm threat",
     r"跳楼|跳下去|跳河|跳江|轻生|自杀|不想活|活不下去|去死|寻死|割腕|喝了?农药|吞了?.{0,3}药|安眠药|"
     r"同归于尽|爬上了?.{0,4}(?:塔吊|楼顶|天台|桥)|站在.{0,4}(?:楼顶|天台|桥|河边|塔吊)|不活了|一起走"),
    ("weapon", "持械", "weapon",
     r"持刀|动刀|菜刀|砍刀|水果刀|匕首|(?:拿|揣|带|攥|举)着.{0,3}(?:刀|斧|枪|钢管|棍|铁棍|锤)|手持|"
     r"枪支|(?:钢管|棍棒|铁棍)"),
    ("threat", "扬言伤人", "threat to kill or hurt someone",
     r"(?:扬言|威胁|放话|放狠话|叫嚣|发狠).{0,10}(?:杀|砍|捅|弄死|打死|整死|弄残|报复|灭了|"
     r"炸了|烧了|泼汽油|同归于尽|拼了|要.{0,2}命)|"
     rf"(?:要|就|去|会|准备|打算|非得?|迟早)(?:去|把.{{0,6}})?(?:杀|砍|捅|宰|弄死|打死|整死){_WHOM}|"
     r"(?:拿|带|揣|提|抄|磨)(?:上|起|了|好)?.{0,2}(?:刀|斧头?|汽油|炸药|钢管|铁棍|锤子).{0,4}"
     r"(?:去|找|砍|杀|捅|堵|拼)|跟.{1,6}拼了|打断.{0,4}(?:腿|手)|泼.{0,3}(?:硫酸|汽油|开水)"),
    ("violence", "暴力正在发生", "violence in progress",
     rf"(?:正在|还在|现在|又在|正).{{0,3}}{_HIT}|打起来了?|动手了|见血|头破血流|打伤|伤了人|伤人|"
     r"砍人|弄死(?!了)|打死|出人命|斗殴|打砸|撞了人|往人群|快来人|救命|"
     r"又再?(?:在|一次)?打(?:老婆|媳妇|妻子|老公|孩子|小孩|老人|人|我)"),
    ("fire_gas", "火情或燃气泄漏", "fire or gas leak",
     r"着火|起火|失火|火灾|烧起来|火(?:往上|越来越|势)|烟(?:越来越大|往上)|"
     r"(?:楼下|隔壁|楼道|屋里|家里|厂房|房子|门厅|电动车|电瓶车).{0,4}冒.{0,5}烟|"
     r"(?:煤气|燃气).{0,4}(?:拧开|打开)|煤气味|燃气味|漏气|燃气泄漏|煤气泄漏|爆炸|炸了|嘶嘶|"
     r"(?:煤气|燃气|液化气)(?:灶|罐|瓶|管道?|表)?.{0,2}(?:还在|一直|正在|老是|又)漏"),
    ("trapped", "有人被困", "people trapped or locked in",
     r"困在|被困|困人|被反?(?:锁|关)在|"
     r"(?:人|老人|孩子|小孩|工人|员工|我|他|她|娃).{0,3}(?:锁|关)在.{0,4}(?:里|屋|车|厂|宿舍)|"
     rf"出不来|喊救命|呼救|(?:人|{_KID}|他|她|我|俺).{{0,4}}(?:压在下面|埋在)|"
     r"被埋|不让出来|不让走"),
    ("child", "儿童处于危险", "a child at risk",
     rf"{_KID}.{{0,8}}(?:走丢|不见了|被.{{0,4}}带走|锁在(?!门外)|窗台|阳台外|烫|虐待|冻着|被打|"
     r"青一块紫一块|身上都是伤|遍体鳞伤)|"
     rf"(?:走丢|被拐).{{0,4}}{_KID}"),
]

_UNREST: list[tuple[str, str, str, int, str]] = [
    ("petition", "扬言上访", "threat to petition", 3, r"上访|信访|进京|去北京|到省里|越级|告到"),
    ("government", "到政府部门聚集", "going to a government office", 3,
     r"(?:政府|市委|区委|县委|街道办?|信访局|政府大楼|镇政府|乡政府).{0,4}(?:门口|讨说法|静坐|闹|聚集|拦)|"
     r"(?:到|去)(?:政府|区里|市里|省里)"),
    ("block", "堵路堵门", "blocking roads or gates", 3,
     r"堵路|堵门|堵.{0,3}门口|拦车|堵(?:高速|国道|马路)|围堵|堵在|围在|围住|上国道|高速路口"),
    ("banner", "拉横幅举牌", "banners or placards", 2, r"拉横幅|打横幅|挂横幅|举牌|横幅|标语"),
    ("gather", "集体行动", "collective action", 2,
     r"集体|联名|一起去|相约|约好|建了群|罢工|停工|聚集|聚在|静坐|联合起来|带头的?"),
    ("grievance", "讨说法", "demanding redress", 2,
     r"讨说法|讨个说法|要个说法|讨公道|闹一闹|闹大|出大事"),
    ("media", "扬言曝光", "threat to go to the media", 1,
     r"曝光|找媒体|找记者|发抖音|上热搜|发网上"),
    ("festival_wages", "年关欠薪", "unpaid wages before the Spring Festival", 2,
     r"(?:过年|春节|年底|年前|年关).{0,12}(?:工资|工钱|欠薪|讨薪)|"
     r"(?:工资|工钱|欠薪).{0,12}(?:过年|春节|年关)"),
]
# fmt: on

_CLAUSE = re.compile(r"[，。；！？!?;,\s]+")
_PAST = re.compile(r"去年|上回|以前|之前|早几年|上个月|那次")
_MAYBE = re.compile(r"万一|要是|如果|假如|一旦|消防通道|以后")
# Kinds that are threats: conditional by nature, so a possibility does not excuse them.
_THREATS = frozenset({"self_harm", "threat"})
# The act denied or feared just before it: 没打起来, 没有着火, 怕着火, 以免起火.
_DENIED = re.compile(r"(?:没有?|未|怕|担心|以免|避免|防止?|不会)$")
_PEOPLE = re.compile(
    r"(\d{1,5}|[一二两三四五六七八九十百千几]{1,4})\s*(?:多|来|余)?\s*(?:个|名|位)?\s*"
    r"(?:人|户|名|工人|员工|农民工|业主|村民|居民|住户|工友|家)"
)


def _clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE.split(text) if c.strip()]


def danger(text: str) -> list[Finding]:
    """Findings of danger now, one per kind, first match shown."""
    out: dict[str, Finding] = {}
    for clause in _clauses(text):
        if _PAST.search(clause):
            continue
        maybe = _MAYBE.search(clause) is not None
        for kind, zh, en, pattern in _DANGER:
            if kind in out or (maybe and kind not in _THREATS):
                continue
            m = re.search(pattern, clause)
            if m and not _DENIED.search(clause[max(0, m.start() - 2) : m.start()]):
                out[kind] = Finding(kind, zh, en, 3, m.group(0))
    return list(out.values())


def unrest(text: str) -> list[Finding]:
    """Findings of instability risk in the text, one per kind."""
    out: list[Finding] = []
    for kind, zh, en, weight, pattern in _UNREST:
        m = re.search(pattern, text)
        if m:
            out.append(Finding(kind, zh, en, weight, m.group(0)))
    return out


_NUMERALS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}


def _number(token: str) -> int:
    """A count as written: 36, 四五十 (40), 几十 (30), 上百 (100), 十几 (10)."""
    if token.isdigit():
        return int(token)
    if "百" in token or "千" in token:
        return 100
    if "几十" in token:
        return 30
    if "十" in token:
        head = token.split("十")[0]
        return _NUMERALS.get(head[:1], 1) * 10
    return _NUMERALS.get(token[:1], 3)


def people_mentioned(text: str) -> int:
    """The largest number of people or households the text speaks of (0 if none)."""
    best = 0
    for m in _PEOPLE.finditer(text):
        best = max(best, _number(m.group(1)))
    return best


@dataclass(frozen=True)
class Warning:
    level: WarningLevel
    score: int
    reasons: tuple[str, ...]


def warning_level(
    signals: list[Finding],
    *,
    people: int = 1,
    related_recent: int = 0,
    repeat_complainant: bool = False,
    communities: int = 1,
) -> Warning:
    """The early-warning level. Points: the text's signals (petition, government office,
    blocking 3; banners, collective action, demanding redress, festival wages 2; media
    1), people (50+: 3, 20+: 2, 5+: 1), related cases in the last week (5+: 2, 3+: 1),
    a repeat complainant 1, spread over communities (3+: 2, 2: 1). Red at 8, orange at
    5, yellow at 3; without any text signal the level is at most yellow (a large
    group alone is a group case, not yet unrest)."""
    reasons = [f.reason() for f in signals]
    score = sum(f.weight for f in signals)
    for limit, points in ((50, 3), (20, 2), (5, 1)):
        if people >= limit:
            score += points
            reasons.append(f"涉及约 {people} 人 / about {people} people")
            break
    for limit, points in ((5, 2), (3, 1)):
        if related_recent >= limit:
            score += points
            reasons.append(
                f"近7日相关案件 {related_recent} 件 / {related_recent} related cases this week"
            )
            break
    if repeat_complainant:
        score += 1
        reasons.append("同一人重复反映 / repeat complainant")
    if communities >= 2:
        score += 2 if communities >= 3 else 1
        reasons.append(f"涉及 {communities} 个社区 / spread over {communities} communities")
    if score >= 8:
        level = WarningLevel.RED
    elif score >= 5:
        level = WarningLevel.ORANGE
    elif score >= 3:
        level = WarningLevel.YELLOW
    else:
        level = WarningLevel.NONE
    if not signals and level.rank > WarningLevel.YELLOW.rank:
        level = WarningLevel.YELLOW
    return Warning(level, score, tuple(reasons))
