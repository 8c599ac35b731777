"""Group cases (群体性): what makes a case one, written once.

A case is a group case when

* many people are affected by it: ``people_affected`` reaches
  ``settings.group_case_threshold``; or
* several *distinct* complainants (``settings.group_distinct_complainants``, counting
  this case's) complained about the same grievance within the duplicate window
  (``settings.dedup_window_days``): the same respondent in the same community, or the
  same respondent and a similar complaint; with no respondent named, the same place and
  category and a similar complaint.

Not any three open cases against one firm: one resident complaining three times is one
complainant; three residents of different streets complaining about three different
things a big firm did are about one respondent, and do count. Complainants are told
apart by the keyed hash of their ID number, else of their phone, else of their name
(never the clear values).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from models.case import Case
from models.enums import PartySide
from models.party import Party
from models.settings import get_settings

# Bigram similarity above which two complaints are about the same thing (as triage's
# "related" threshold).
SIMILAR = 0.2


def complainant_keys(session: Session, case_ids: Iterable[int]) -> set[str]:
    """One key per distinct complainant of these cases."""
    ids = sorted(set(case_ids))
    if not ids:
        return set()
    rows = session.exec(
        select(Party.case_id, Party.id_number_hash, Party.phone_hash, Party.name_hash).where(
            col(Party.case_id).in_(ids), Party.side == PartySide.COMPLAINANT
        )
    ).all()
    keys: set[str] = set()
    for case_id, id_hash, phone_hash, name_hash in rows:
        key = id_hash or phone_hash or name_hash
        # A complainant nobody can tell apart counts once per case.
        keys.add(key if key else f"case:{case_id}")
    return keys


def about_the_same(case: Case, other: Case, *, similarity: float, community: str | None) -> bool:
    """The same grievance: the same respondent at the same community, or the same
    respondent and a similar complaint (a firm's workers live all over the district); with
    no respondent named, the same place, category and a similar complaint."""
    similar = similarity >= SIMILAR
    if case.respondent_key:
        if other.respondent_key != case.respondent_key:
            return False
        same_community = community is not None and (other.unit_path or "").startswith(community)
        return similar or same_community
    same_place = (case.place_unit_id is not None and other.place_unit_id == case.place_unit_id) or (
        bool(case.address_text) and other.address_text == case.address_text
    )
    return same_place and other.category == case.category and similar


def is_group_case(
    session: Session,
    *,
    case: Case,
    nearby: Iterable[tuple[Case, float]],
    community_path: str | None = None,
) -> bool:
    """Whether ``case`` is a group case (module docstring). ``nearby``: cases in the
    window that share its respondent or place, each with the similarity of its text (the
    triage candidates); ``community_path``: the path of the case's community."""
    settings = get_settings()
    if case.people_affected >= settings.group_case_threshold:
        return True
    assert case.id is not None
    same = [
        o.id
        for o, score in nearby
        if o.id is not None
        and o.id != case.id
        and about_the_same(case, o, similarity=score, community=community_path)
    ]
    if not same:
        return False
    return len(complainant_keys(session, [case.id, *same])) >= settings.group_distinct_complainants
