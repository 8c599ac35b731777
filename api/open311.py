"""Open311 GeoReport v2 at ``/open311/v2`` (JSON and XML), with FixMyStreet's
``servicerequestupdates``.

- A service is a case category; its definition has four attributes: ``people_affected``
  (number), ``respondent`` (string: who the complaint is against; a person, whose name
  is personal data and stored encrypted, unless ``respondent_type`` says firm or
  agency), ``respondent_type`` and ``urgency`` (singlevaluelists).
- ``POST requests`` (form-encoded, ``api_key`` required) records a case (channel
  ``open311``). ``address_id`` is a building, compound or community code from the unit
  tree; ``lat``/``long`` or ``address_string`` are resolved by triage (nothing found:
  the district's intake desk). ``first_name``/``last_name``/``phone`` become the
  complainant party (validated, stored encrypted, never echoed back); ``email`` is
  validated and not stored.
- ``service_request_id`` is the case number. ``agency_responsible`` is the handling
  unit, ``expected_datetime`` the resolution deadline (+08:00). Public answers list only
  cases filed through Open311 (staff cannot choose that channel), with phone and ID
  numbers in the description masked (they are stored masked), people's names masked,
  the place shown as the unit's name, coordinates rounded to about 100 m, and never the
  parties. A confidential case (不公开:
  family disputes, or at a party's request) is in no listing and no update feed; asked
  for by its id it shows its category and status only.
- Errors: ``[{"code", "description"}]`` / ``<errors><error>``; 400 bad request, 403 bad
  ``api_key``, 404 unknown service or request, 413 too large, 415 not a form, 429 rate
  limited (with ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import Session, col, select

from api.client import client_address
from api.deps import engine_of
from api.errors import validation_fields
from api.security import AuthError, open311_client
from models import clock, keys, pii
from models.access import PLACE_LEVELS, Principal, place_for_filing
from models.case import Case, CaseCreate
from models.cases import create_case
from models.confidentiality import public_may_see_details
from models.db import read_session, write_session
from models.enums import CaseStatus, Category, Channel, PartyKind, PartySide, Priority
from models.errors import FieldProblem, NotFound, PermissionDenied, ValidationError
from models.event import CaseEvent
from models.party import Party
from models.unit import Unit

PREFIX = "/open311/v2"
Fmt = Literal["json", "xml"]
MAX_RANGE = timedelta(days=90)
LIST_LIMIT = 200
_EMAIL = re.compile(r"^[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[A-Za-z]{2,24}$")

URGENCY = {
    "normal": (Priority.NORMAL, "一般 Normal"),
    "high": (Priority.HIGH, "重要 High"),
    "emergency": (Priority.EMERGENCY, "紧急 Emergency"),
}

# FixMyStreet's richer states beside the core open/closed.
FMS_STATUS = {
    CaseStatus.SUBMITTED: "OPEN",
    CaseStatus.TRIAGED: "INVESTIGATING",
    CaseStatus.ASSIGNED: "ACTION_SCHEDULED",
    CaseStatus.IN_MEDIATION: "IN_PROGRESS",
    CaseStatus.AGREEMENT: "IN_PROGRESS",
    CaseStatus.MEDIATION_FAILED: "INTERNAL_REFERRAL",
    CaseStatus.FOLLOW_UP: "IN_PROGRESS",
    CaseStatus.CLOSED: "FIXED",
    CaseStatus.ESCALATED: "INTERNAL_REFERRAL",
    CaseStatus.REFERRED: "NOT_COUNCILS_RESPONSIBILITY",
    CaseStatus.MERGED: "DUPLICATE",
    CaseStatus.WITHDRAWN: "NO_FURTHER_ACTION",
    CaseStatus.REOPENED: "IN_PROGRESS",
}


class BadRequest(ValidationError):
    code = "bad_request"
    http_status = 400


def _limit_ip(request: Request) -> None:
    client = client_address(request)
    request.app.state.open311_ip_limiter.hit(f"ip:{client}")


router = APIRouter(prefix=PREFIX, tags=["Open311 GeoReport v2"], dependencies=[Depends(_limit_ip)])

FmtPath = Annotated[Fmt, Path(description="json or xml")]
# start_date and end_date of the lists: see _range.
DateQuery = Annotated[
    str | None, Query(max_length=40, description="W3C datetime, e.g. 2026-11-30T09:00:00+08:00")
]


# --- rendering -------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml(root: str, item: str, rows: Sequence[dict[str, Any]]) -> bytes:
    top = ET.Element(root)
    for row in rows:
        node = ET.SubElement(top, item)
        _fill(node, row)
    return b'<?xml version="1.0" encoding="utf-8"?>' + bytes(ET.tostring(top, encoding="utf-8"))


def _fill(node: ET.Element, row: dict[str, Any]) -> None:
    for key, value in row.items():
        if isinstance(value, list):
            holder = ET.SubElement(node, key)
            singular = {"attributes": "attribute", "values": "value", "keywords": "keyword"}
            for element in value:
                child = ET.SubElement(holder, singular.get(key, "item"))
                if isinstance(element, dict):
                    _fill(child, element)
                else:
                    child.text = _text(element)
        else:
            ET.SubElement(node, key).text = _text(value)


def render(
    fmt: Fmt, root: str, item: str, rows: Sequence[dict[str, Any]], status: int = 200
) -> Response:
    if fmt == "xml":
        return Response(_xml(root, item, rows), status_code=status, media_type="text/xml")
    return JSONResponse(list(rows), status_code=status)


def w3c(value: datetime | None) -> str | None:
    return clock.to_local(value).isoformat(timespec="seconds") if value else None


# --- services --------------------------------------------------------------------------


def service_row(category: Category) -> dict[str, Any]:
    return {
        "service_code": category.value,
        "service_name": f"{category.zh} {category.en}",
        "description": f"{category.zh}：向社区反映纠纷，调解员跟进处理。 {category.en}: a dispute "
        "for community mediation.",
        "metadata": True,
        "type": "realtime",
        "keywords": f"{category.zh},{category.value},调解,mediation",
        "group": "矛盾纠纷 Disputes",
    }


def attributes() -> list[dict[str, Any]]:
    return [
        {
            "variable": True,
            "code": "people_affected",
            "datatype": "number",
            "required": False,
            "datatype_description": "整数 1-100000 / a whole number from 1 to 100000",
            "order": 1,
            "description": "受影响人数 How many people are affected",
            "values": [],
        },
        {
            "variable": True,
            "code": "respondent",
            "datatype": "string",
            "required": False,
            "datatype_description": "单位或个人名称，最多100字 / a firm or person, up to 100 "
            "characters",
            "order": 2,
            "description": "被投诉方 Who the complaint is against",
            "values": [],
        },
        {
            "variable": True,
            "code": "respondent_type",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "选择一项，默认个人 / pick one; a person unless given",
            "order": 3,
            "description": "被投诉方类型 What the respondent is",
            "values": [{"key": k.value, "name": f"{k.zh} {k.en}"} for k in PartyKind],
        },
        {
            "variable": True,
            "code": "urgency",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "选择一项 / pick one",
            "order": 4,
            "description": "紧急程度 How urgent",
            "values": [{"key": k, "name": name} for k, (_p, name) in URGENCY.items()],
        },
    ]


def _category(code: str) -> Category:
    try:
        return Category(code)
    except ValueError:
        raise NotFound(f"service_code {code} not found", f"服务代码 {code} 不存在") from None


@router.get("/services.{fmt}", summary="Service list (case categories)")
def services(fmt: FmtPath) -> Response:
    return render(fmt, "services", "service", [service_row(c) for c in Category])


@router.get("/services/{service_code}.{fmt}", summary="Service definition")
def service_definition(service_code: Annotated[str, Path(max_length=32)], fmt: FmtPath) -> Response:
    category = _category(service_code)
    row = {"service_code": category.value, "attributes": attributes()}
    if fmt == "xml":
        top = ET.Element("service_definition")
        _fill(top, row)
        body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8")
        return Response(body, media_type="text/xml")
    return JSONResponse(row)


# --- request tokens --------------------------------------------------------------------


def request_token(case_id: int) -> str:
    sig = hmac.new(
        keys.key("token"), f"open311-token:{case_id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t{case_id}-{sig[:20]}"


def case_id_of_token(token: str) -> int | None:
    match = re.fullmatch(r"t([0-9]{1,12})-[0-9a-f]{20}", token)  # ASCII digits only
    if not match:
        return None
    case_id = int(match.group(1))
    return case_id if hmac.compare_digest(request_token(case_id), token) else None


# --- filing a request ------------------------------------------------------------------


# The text fields of the form that files a request (GeoReport v2 names) and the longest
# value each accepts, written once: read by :func:`_one` and published in the OpenAPI
# schema.
TEXT_FIELDS: dict[str, int] = {
    "api_key": 4096,
    "service_code": 32,
    "address_id": 32,
    "address_string": 200,
    "description": 4000,
    "first_name": 50,
    "last_name": 50,
    "phone": 32,
    "email": 254,
    "attribute[people_affected]": 12,
    "attribute[respondent]": 100,
    "attribute[respondent_type]": 16,
    "attribute[urgency]": 16,
}
# The coordinates: numbers within these bounds (read by :func:`_float`).
NUMBER_FIELDS: dict[str, tuple[float, float]] = {"lat": (-90, 90), "long": (-180, 180)}
NUMBER_MAX_LENGTH = 32
# GeoReport v2 fields a client may send; accepted and not used.
UNUSED_FIELDS = ("device_id", "account_id", "media_url")


def _form_schema() -> dict[str, Any]:
    """The OpenAPI schema of the filing form, from :data:`TEXT_FIELDS` and :data:`NUMBER_FIELDS`."""
    texts = {name: {"type": "string", "maxLength": n} for name, n in TEXT_FIELDS.items()}
    unused = {name: {"type": "string"} for name in UNUSED_FIELDS}
    numbers = {
        name: {"type": "number", "minimum": low, "maximum": high}
        for name, (low, high) in NUMBER_FIELDS.items()
    }
    return {
        "type": "object",
        "required": ["api_key", "service_code"],
        "properties": texts | numbers | unused,
    }


def _one(form: dict[str, list[str]], name: str) -> str | None:
    """The field's last value, stripped (None when empty); longer than its limit: 400."""
    max_length = TEXT_FIELDS.get(name, NUMBER_MAX_LENGTH)
    values = form.get(name)
    if not values:
        return None
    value = values[-1].strip()
    if len(value) > max_length:
        raise BadRequest(
            f"{name}: at most {max_length} characters",
            f"{name}：最多 {max_length} 个字符",
            problems=[
                FieldProblem(name, f"最多 {max_length} 个字符", f"at most {max_length} characters")
            ],
        )
    return value or None


def _float(form: dict[str, list[str]], name: str) -> float | None:
    low, high = NUMBER_FIELDS[name]
    raw = _one(form, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (low <= value <= high):
        raise BadRequest(
            f"{name}: a number from {low} to {high}",
            f"{name}：应为 {low} 至 {high} 之间的数字",
            problems=[FieldProblem(name, "坐标无效", "invalid coordinate")],
        )
    return value


def _party_kind(value: str | None) -> PartyKind:
    if value is None:
        return PartyKind.PERSON
    try:
        return PartyKind(value)
    except ValueError:
        raise BadRequest(
            "attribute[respondent_type]: one of " + ", ".join(k.value for k in PartyKind),
            "attribute[respondent_type]：可选值为 " + "、".join(k.value for k in PartyKind),
        ) from None


def _check_api_key(request: Request, api_key: str | None) -> str:
    if not api_key:
        raise PermissionDenied("api_key is required", "缺少 api_key")
    try:
        return open311_client(api_key, keys_since=request.app.state.settings.open311_keys_since)
    except AuthError as exc:
        raise PermissionDenied(exc.message_en, exc.message_zh) from None


def _build_case(form: dict[str, list[str]]) -> tuple[CaseCreate, str | None]:
    code = _one(form, "service_code")
    if code is None:
        raise BadRequest("service_code is required", "缺少 service_code")
    try:
        category = Category(code)
    except ValueError:
        raise BadRequest(f"service_code {code} not found", f"服务代码 {code} 不存在") from None
    address_id = _one(form, "address_id")
    lat = _float(form, "lat")
    lon = _float(form, "long")
    address = _one(form, "address_string")
    if (lat is None) != (lon is None):
        raise BadRequest("lat and long go together", "lat 与 long 须同时提供")
    if address_id is None and lat is None and address is None:
        raise BadRequest(
            "a location is required: address_id, lat and long, or address_string",
            "请提供位置：address_id、lat 与 long，或 address_string",
        )
    description = _one(form, "description")
    people = _one(form, "attribute[people_affected]")
    respondent = _one(form, "attribute[respondent]")
    urgency = _one(form, "attribute[urgency]")
    respondent_kind = _party_kind(_one(form, "attribute[respondent_type]"))
    if urgency is not None and urgency not in URGENCY:
        raise BadRequest(
            "attribute[urgency]: one of " + ", ".join(URGENCY),
            "attribute[urgency]：可选值为 " + "、".join(URGENCY),
        )
    email = _one(form, "email")
    if email is not None and not _EMAIL.match(email):
        raise BadRequest("email: not an e-mail address", "email：邮箱格式不正确")
    parties: list[dict[str, Any]] = []
    name = "".join(filter(None, [_one(form, "last_name"), _one(form, "first_name")]))
    phone = _one(form, "phone")
    if name or phone:
        parties.append(
            {
                "side": PartySide.COMPLAINANT,
                "kind": PartyKind.PERSON,
                "name": name or "匿名居民",
                "phone": phone,
            }
        )
    if respondent:
        # A person unless the client says otherwise: a name is personal data until known
        # to be a firm's.
        parties.append({"side": PartySide.RESPONDENT, "kind": respondent_kind, "name": respondent})
    data: dict[str, Any] = {
        "category": category,
        "channel": Channel.OPEN311,
        "description": description
        or f"公众上报：{category.zh} Reported via Open311: {category.en}",
        "address_text": address,
        "lat": lat,
        "lon": lon,
        "place_code": address_id,
        "parties": parties,
        "category_locked": True,
    }
    if people is not None:
        data["people_affected"] = people
    if urgency is not None:
        data["priority"] = URGENCY[urgency][0]
        data["priority_locked"] = True
    try:
        return CaseCreate.model_validate(data), address_id
    except PydanticValidationError as exc:
        fields = validation_fields(exc.errors())
        names = {
            "people_affected": "attribute[people_affected]",
            "parties.0.phone": "phone",
            "parties.0.name": "last_name",
            "parties.1.name": "attribute[respondent]",
            "address_text": "address_string",
            "lon": "long",
            "place_code": "address_id",
        }
        raise BadRequest(
            "the request is not valid",
            "请求数据无效",
            problems=[
                FieldProblem(names.get(f["field"], f["field"]), f["message"], f["message_en"])
                for f in fields
            ],
        ) from None


def _file(request: Request, form: dict[str, list[str]]) -> dict[str, Any]:
    client = _check_api_key(request, _one(form, "api_key"))
    request.app.state.open311_key_limiter.hit(f"key:{client}")
    data, address_id = _build_case(form)
    with write_session(engine_of(request)) as session:
        if address_id is not None:
            try:
                place_for_filing(session, Principal.public(client), address_id)
            except ValidationError:
                raise BadRequest(
                    "address_id must be the code of a building, compound or community",
                    "address_id 应为已知的楼幢、小区或社区编码",
                ) from None
        case = create_case(session, data=data, actor=Principal.public(client))
        assert case.id is not None
        return {
            "service_request_id": case.number,
            "token": request_token(case.id),
            "service_notice": "已受理，社区将尽快联系您。Received; the community will contact you.",
            "account_id": None,
        }


@router.post(
    "/requests.{fmt}",
    summary="File a service request (form-encoded, api_key required)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _form_schema()}},
        }
    },
)
async def post_request(request: Request, fmt: FmtPath) -> Response:
    try:
        raw = await request.form(max_files=0, max_fields=100)
    except Exception:
        raise BadRequest("the form could not be read", "无法解析表单") from None
    form: dict[str, list[str]] = {}
    for key, value in raw.multi_items():
        if isinstance(value, str):
            form.setdefault(key, []).append(value)
    row = await run_in_threadpool(_file, request, form)
    return render(fmt, "service_requests", "request", [row])


# --- reading requests ------------------------------------------------------------------


def _parse_when(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        moment = clock.within_years(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        raise BadRequest(
            f"{name}: a W3C datetime such as 2026-11-30T09:00:00+08:00",
            f"{name}：日期时间格式应如 2026-11-30T09:00:00+08:00",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.SHANGHAI)
    return clock.ensure_utc(moment)


def _range(start: str | None, end: str | None, default: timedelta) -> tuple[datetime, datetime]:
    until = _parse_when(end, "end_date") or clock.now()
    since = _parse_when(start, "start_date") or (until - default)
    if since > until:
        raise BadRequest("start_date is after end_date", "start_date 晚于 end_date")
    if until - since > MAX_RANGE:
        raise BadRequest(
            "start_date and end_date may be at most 90 days apart",
            "start_date 与 end_date 相隔不能超过 90 天",
        )
    return since, until


def public_text(session: Session, case: Case) -> str:
    """The description as the public may read it: phone and ID numbers masked, and the
    names of the case's own people masked where the text repeats them."""
    names = [
        pii.decrypt(token)
        for token in session.exec(
            select(Party.name_enc).where(Party.case_id == case.id, col(Party.name_enc).is_not(None))
        ).all()
        if token
    ]
    return pii.scrub_names(pii.scrub_text(case.description), names)


def confidential_row(case: Case) -> dict[str, Any]:
    """All the public sees of a confidential case: category and status."""
    return {
        "service_request_id": case.number,
        "status": "open" if case.is_open else "closed",
        "status_notes": f"{case.status.zh} {case.status.en}",
        "service_name": f"{case.category.zh} {case.category.en}",
        "service_code": case.category.value,
        "description": None,
    }


def public_coordinate(value: float | None) -> float | None:
    """Rounded to three decimals (about 100 m: the compound, never the filer's door)."""
    return None if value is None else round(value, 3)


def request_row(session: Session, case: Case) -> dict[str, Any]:
    assert case.id is not None
    if not public_may_see_details(case):
        return confidential_row(case)
    place = session.get(Unit, case.place_unit_id) if case.place_unit_id else None
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    # The confidential row's fields, each in its place, then the details.
    return confidential_row(case) | {
        "description": public_text(session, case),
        "agency_responsible": unit.name_zh if unit else None,
        "service_notice": None,
        "requested_datetime": w3c(case.created_at),
        "updated_datetime": w3c(case.updated_at),
        "expected_datetime": w3c(case.resolution_due_at),
        "address": place.name_zh if place else None,
        "address_id": place.code if place and place.level in PLACE_LEVELS else None,
        "zipcode": None,
        "lat": public_coordinate(case.lat),
        "long": public_coordinate(case.lon),
        "media_url": None,
    }


def _public(*, listed: bool = True) -> list[Any]:
    """Which cases the public reads: those filed through Open311. A confidential case is
    never listed (nor its updates); its own page shows category and status only."""
    clauses: list[Any] = [Case.channel == Channel.OPEN311]
    return [*clauses, col(Case.confidential).is_(False)] if listed else clauses


def _public_cases(session: Session, *, listed: bool = True) -> Any:
    return select(Case).where(*_public(listed=listed))


@router.get("/requests.{fmt}", summary="Service requests (filed through Open311)")
def list_requests(
    request: Request,
    fmt: FmtPath,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=200)] = None,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    with read_session(engine_of(request)) as session:
        stmt = _public_cases(session)
        if service_request_id:
            ids = [s.strip() for s in service_request_id.split(",") if s.strip()][:LIST_LIMIT]
            stmt = stmt.where(col(Case.number).in_(ids))
        else:
            if service_code:
                codes = [c.strip() for c in service_code.split(",") if c.strip()]
                for code in codes:
                    _category(code)
                stmt = stmt.where(col(Case.category).in_(codes))
            if status:
                wanted = {s.strip().lower() for s in status.split(",") if s.strip()}
                if not wanted <= {"open", "closed"}:
                    raise BadRequest("status: open or closed", "status：应为 open 或 closed")
                if wanted == {"open"}:
                    stmt = stmt.where(col(Case.is_open).is_(True))
                elif wanted == {"closed"}:
                    stmt = stmt.where(col(Case.is_open).is_(False))
            since, until = _range(start_date, end_date, MAX_RANGE)
            stmt = stmt.where(col(Case.created_at) >= since, col(Case.created_at) <= until)
        rows = session.exec(stmt.order_by(col(Case.created_at).desc()).limit(LIST_LIMIT)).all()
        return render(fmt, "service_requests", "request", [request_row(session, c) for c in rows])


@router.get("/requests/{service_request_id}.{fmt}", summary="One service request")
def get_request(
    request: Request,
    service_request_id: Annotated[str, Path(max_length=32)],
    fmt: FmtPath,
) -> Response:
    with read_session(engine_of(request)) as session:
        case = session.exec(
            _public_cases(session, listed=False).where(Case.number == service_request_id)
        ).first()
        if case is None:
            raise NotFound(
                f"service_request_id {service_request_id} not found",
                f"诉求编号 {service_request_id} 不存在",
            )
        return render(fmt, "service_requests", "request", [request_row(session, case)])


@router.get("/tokens/{token}.{fmt}", summary="The request id for a token")
def get_token(
    request: Request, token: Annotated[str, Path(max_length=64)], fmt: FmtPath
) -> Response:
    case_id = case_id_of_token(token)
    with read_session(engine_of(request)) as session:
        case = session.get(Case, case_id) if case_id is not None else None
        if case is None or case.channel != Channel.OPEN311:
            raise NotFound(f"token {token[:64]} not found", "令牌不存在")
        return render(
            fmt,
            "service_requests",
            "request",
            [{"service_request_id": case.number, "token": token}],
        )


@router.get("/servicerequestupdates.{fmt}", summary="Updates since a time (FixMyStreet)")
def request_updates(
    request: Request,
    fmt: FmtPath,
    start_date: DateQuery = None,
    end_date: DateQuery = None,
) -> Response:
    since, until = _range(start_date, end_date, timedelta(days=1))
    with read_session(engine_of(request)) as session:
        rows = session.exec(
            select(CaseEvent, Case)
            .join(Case, col(Case.id) == col(CaseEvent.case_id))
            .where(
                *_public(),
                col(CaseEvent.at) >= since,
                col(CaseEvent.at) <= until,
                col(CaseEvent.from_status).is_not(None),
            )
            .order_by(col(CaseEvent.at), col(CaseEvent.id))
            .limit(1000)
        ).all()
        updates = []
        for event, case in rows:
            status = event.to_status
            if event.from_status == status:
                continue
            updates.append(
                {
                    # The step in the case's own timeline: the event's row id told how
                    # much happened on every other case in between.
                    "update_id": f"{case.number}-{event.seq}",
                    "service_request_id": case.number,
                    "status": "open" if status.is_open else "closed",
                    "external_status_code": FMS_STATUS.get(status, "OPEN"),
                    "updated_datetime": w3c(event.at),
                    "description": f"{status.zh} {status.en}",
                    "media_url": None,
                }
            )
        return render(fmt, "service_request_updates", "request_update", updates)


__all__ = ["router"]
