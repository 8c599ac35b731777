"""Staff REST: create, list and read cases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.deps import DBRead, Staff, Writer
from api.prefect_links import prefect_runs_url
from api.v1.common import (
    cached_units,
    case_public,
    load_case,
    run_write_async,
    unit_cache_of,
    unit_codes,
)
from models import actions, case_search, clock, pii, respondent, text_numbers
from models.access import (
    Principal,
    place_for_filing,
    reach_clause,
    staff_id_of,
)
from models.actions import allowed_names
from models.case import Case, CaseCreate, CasePublic
from models.case_search import CaseFilter
from models.cases import create_case_with_parties, show_party
from models.enums import CaseStatus, Category, PartySide
from models.errors import FieldProblem, ValidationError
from models.event import CaseEvent
from models.follow_up import FollowUp, FollowUpPublic
from models.mediation import (
    Agreement,
    AgreementPublic,
    AgreementTerm,
    MediationSession,
    SessionPublic,
)
from models.party import Party, PartyPublic
from models.staff import display_names
from models.timeline import event_notes
from models.unit import unit_by_code

router = APIRouter(prefix="/cases", tags=["cases 案件"])


class CaseCreated(BaseModel):
    case: CasePublic
    parties: list[PartyPublic]
    allowed_actions: list[str]


class CaseList(BaseModel):
    items: list[CasePublic]
    total: int = Field(description="matching cases, counted up to 10,000 (see total_capped)")
    total_capped: bool = Field(False, description="more cases match than total says")
    page: int
    page_size: int
    next_cursor: str | None = Field(
        None, description="pass as `after` for the next page; null on the last page"
    )
    next: str | None = Field(None, description="the next page's URL (keyset); null on the last")


class TimelineEntry(BaseModel):
    seq: int
    verb: str
    label: str
    label_en: str
    from_status: CaseStatus | None
    to_status: CaseStatus
    actor: str
    actor_name: str | None
    at: datetime
    data: dict[str, Any]
    # Where the case went, to whom, which case it was linked to (models.timeline).
    note: str | None = None
    note_en: str | None = None


class MediatorView(BaseModel):
    staff_id: int
    name: str
    named_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class PartyAnswerView(BaseModel):
    """A party's own answer on mediation, through their page or a one-use link."""

    party_id: int
    side: PartySide
    accepted: bool
    slots: list[dict[str, str]] = Field(
        description="times proposed: day (YYYY-MM-DD) and part (am, pm, eve)"
    )
    slots_label: list[str]
    note: str
    at: datetime


class MediationView(BaseModel):
    """受理审查, the named mediators and the guidance the parties were given."""

    accepted: bool | None
    acceptance_reason: str | None
    legal_basis: str | None
    guidance: str | None
    mediators: list[MediatorView]
    mediation_due_at: datetime | None
    party_answers: list[PartyAnswerView] = Field(default_factory=list)
    blocked_by_refusal: bool = Field(
        default=False,
        description="a party declined mediation: it may not start (People's Mediation Law "
        "Art. 17) until staff record the refusal or the party's consent",
    )


def mediation_view(session: Session, case: Case) -> MediationView:
    from models.acceptance import latest_review
    from models.mediators import mediators_of

    assert case.id is not None
    review = latest_review(session, case_id=case.id)
    rows = mediators_of(session, case_id=case.id, serving=False)
    names = display_names(session, (m.staff_id for m in rows))
    guidance = review.guidance if review is not None and not review.accepted else None
    if guidance is None and case.status in (CaseStatus.MEDIATION_FAILED, CaseStatus.REFERRED):
        guidance = case.outcome_note
    return MediationView(
        accepted=review.accepted if review else None,
        acceptance_reason=review.reason.label if review and review.reason else None,
        legal_basis=review.legal_basis if review else None,
        guidance=guidance,
        mediators=[
            MediatorView(
                staff_id=m.staff_id,
                name=names.get(m.staff_id, str(m.staff_id)),
                named_at=m.named_at,
                ended_at=m.ended_at,
                end_reason=m.end_reason.label if m.end_reason else None,
            )
            for m in rows
        ],
        mediation_due_at=case.mediation_due_at,
        party_answers=[
            PartyAnswerView(
                party_id=a.party_id,
                side=a.side,
                accepted=a.accepted,
                slots=[slot.as_data() for slot in a.slots],
                slots_label=[slot.zh for slot in a.slots],
                note=a.note,
                at=a.at,
            )
            for a in respondent.party_answers(session, case_id=case.id)
        ],
        blocked_by_refusal=respondent.mediation_blocked(session, case_id=case.id),
    )


class CaseDetail(BaseModel):
    case: CasePublic
    status_label: str
    parties: list[PartyPublic]
    personal_data_visible: bool
    confidential: bool = False
    details_visible: bool = True
    mediation: MediationView | None = None
    timeline: list[TimelineEntry]
    sessions: list[SessionPublic]
    agreements: list[AgreementPublic]
    follow_ups: list[FollowUpPublic]
    allowed_actions: list[str]
    prefect_runs_url: str
    text_numbers: list[dict[str, str]] = Field(
        default_factory=list,
        description="Phone and ID numbers typed into the case's free text (stored "
        "encrypted; the text keeps their masks): clear only with personal_data_visible.",
    )


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return pii.scrub_text(value)
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _parties(session: Session, case: Case, *, reveal: bool) -> list[PartyPublic]:
    rows = session.exec(select(Party).where(Party.case_id == case.id).order_by(col(Party.id))).all()
    return [show_party(p, reveal=reveal) for p in rows]


def case_detail(session: Session, case: Case, principal: Principal) -> CaseDetail:
    from models.lifecycle import TRANSITIONS

    details = actions.details_visible(session, principal, case)
    reveal = actions.personal_data_visible(session, principal, case)
    events = session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.seq))
    ).all()
    staff_ids = {i for e in events if (i := staff_id_of(e.actor)) is not None}
    names = display_names(session, staff_ids)
    notes = event_notes(session, events, names)
    timeline = []
    for e in events:
        t = TRANSITIONS.get(e.verb)
        note = notes.get(e.id or 0)
        actor_name = None
        if (staff_id := staff_id_of(e.actor)) is not None:
            actor_name = names.get(staff_id)
        elif e.actor == "system":
            actor_name = "系统 system"
        elif e.actor == "open311":
            actor_name = "公众上报 Open311"
        elif e.actor.startswith("resident:"):
            actor_name = "当事人本人（查询页或短信链接）the party (own page or link)"
        timeline.append(
            TimelineEntry(
                seq=e.seq,
                verb=e.verb,
                label=t.zh if t else ("登记" if e.verb == "submitted" else e.verb),
                label_en=e.verb.replace("_", " "),
                from_status=e.from_status,
                to_status=e.to_status,
                actor=e.actor,
                actor_name=actor_name,
                at=e.at,
                data=(e.data if reveal else _scrub(e.data)) if details else {},
                note=note[0] if note and details else None,
                note_en=note[1] if note and details else None,
            )
        )
    sessions = session.exec(
        select(MediationSession)
        .where(MediationSession.case_id == case.id)
        .order_by(col(MediationSession.held_at))
    ).all()
    agreements = session.exec(
        select(Agreement).where(Agreement.case_id == case.id).order_by(col(Agreement.id))
    ).all()
    agreement_views = []
    for a in agreements:
        terms = session.exec(select(AgreementTerm).where(AgreementTerm.agreement_id == a.id)).all()
        agreement_views.append(AgreementPublic.of(a, list(terms), reveal=reveal))
    follow_ups = session.exec(
        select(FollowUp).where(FollowUp.case_id == case.id).order_by(col(FollowUp.due_at))
    ).all()
    return CaseDetail(
        case=case_public(session, case, reveal=reveal, details=details),
        status_label=case.status.label,
        parties=_parties(session, case, reveal=reveal) if details else [],
        personal_data_visible=reveal,
        confidential=case.confidential,
        details_visible=details,
        mediation=mediation_view(session, case) if details else None,
        timeline=timeline,
        sessions=[SessionPublic.of(s, reveal=reveal) for s in sessions] if details else [],
        agreements=agreement_views if details else [],
        follow_ups=[FollowUpPublic.of(f, reveal=reveal) for f in follow_ups],
        allowed_actions=allowed_names(session, principal, case),
        # By tag (batch runs carry every case's tag), over the case's whole life.
        prefect_runs_url=prefect_runs_url(case),
        text_numbers=text_numbers.numbers_of(session, case_id=case.id or 0, reveal=reveal),
    )


@router.post(
    "",
    status_code=201,
    response_model=CaseCreated,
    summary="登记案件 Record a complaint (with its parties)",
    responses={409: {"description": "Idempotency-Key reused with another body"}},
)
async def post_case(
    request: Request,
    data: CaseCreate,
    principal: Writer,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="A retry with the same key and body answers the first result.",
        ),
    ] = None,
) -> JSONResponse:
    lookup = cached_units(unit_cache_of(request))

    def produce(session: Session) -> tuple[int, Any]:
        place = None
        if data.place_code:
            place = place_for_filing(session, principal, data.place_code, lookup=lookup)
        case, parties = create_case_with_parties(
            session,
            data=data,
            actor=principal,
            created_by_id=principal.staff_id,
            place_unit_id=place.id if place else None,
        )
        # The answer is built from the rows just written (no read-back). It never shows
        # personal data in clear (it is also kept as the idempotent replay).
        answer = CaseCreated(
            case=case_public(
                session, case, unit_codes={place.id: place.code} if place and place.id else None
            ),
            parties=parties,
            allowed_actions=allowed_names(session, principal, case),
        )
        return 201, answer.model_dump(mode="json")

    return await run_write_async(request, principal, data, produce)


@router.get("", response_model=CaseList, summary="案件列表 List cases within reach")
def list_cases(
    request: Request,
    session: DBRead,
    principal: Staff,
    status: CaseStatus | None = None,
    category: Category | None = None,
    unit: Annotated[str | None, Query(max_length=32, description="unit code (subtree)")] = None,
    assignee: Annotated[
        str | None, Query(max_length=12, pattern=r"^(me|\d{1,12})$", description="staff id or me")
    ] = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="case number or text")] = None,
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            description="the `next_cursor` of the page before: the page after it, newest "
            "first (keyset: any page costs what the first does; `page` is then ignored)",
        ),
    ] = None,
    page: Annotated[
        int, Query(ge=1, le=100000, description="numbered pages (offset); prefer `next`")
    ] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CaseList:
    unit_path = None
    if unit is not None:
        found = unit_by_code(session, unit)
        if found is None:
            raise ValidationError(
                f"unit: no unit with code {unit!r}",
                f"unit：没有编码为 {unit} 的单位",
                problems=[FieldProblem("unit", "单位编码不存在", "no such unit code")],
            )
        unit_path = found.path
    wanted = CaseFilter(
        status=status,
        category=category,
        unit_path=unit_path,
        assignee_id=None
        if assignee is None
        else int(assignee)
        if assignee != "me"
        else (principal.staff_id if principal.staff_id is not None else -1),
        overdue=overdue,
        text=q,
        reader_unit_id=principal.unit_id,
    )
    # The web list's search and keyset pages (models.case_search), newest first.
    found_page = case_search.search(
        session,
        wanted,
        reach=reach_clause(principal),
        now=clock.now(),
        cursor=after,
        limit=page_size,
        offset=0 if after else (page - 1) * page_size,
    )
    rows = found_page.cases
    details = actions.details_visible_ids(session, principal, rows)
    codes = unit_codes(session, [i for c in rows for i in (c.unit_id, c.place_unit_id)])
    cursor = found_page.next_cursor
    return CaseList(
        items=[case_public(session, c, details=c.id in details, unit_codes=codes) for c in rows],
        total=found_page.total,
        total_capped=found_page.capped,
        page=1 if after else page,
        page_size=page_size,
        next_cursor=cursor,
        next=_next_link(request, cursor) if cursor else None,
    )


def _next_link(request: Request, cursor: str) -> str:
    """This request's path and query with ``after`` the cursor (and no page number)."""
    url = request.url.remove_query_params("page").include_query_params(after=cursor)
    return f"{url.path}?{url.query}"


@router.get(
    "/{case_ref}",
    response_model=CaseDetail,
    summary="案件详情 One case with parties, timeline and allowed actions",
    responses={404: {"description": "No such case, or out of reach"}},
)
def read_case(
    case_ref: Annotated[str, Path(max_length=32, description="case id or number")],
    session: DBRead,
    principal: Staff,
) -> CaseDetail:
    case = load_case(session, principal, case_ref)
    return case_detail(session, case, principal)
