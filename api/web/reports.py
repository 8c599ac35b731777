"""The monthly report (月报) for supervisors: ``/web/reports/monthly/YYYY-MM.xlsx``.

An administrator (whole city) gets the copy the scheduled flow kept, or a fresh one if
there is none yet; a supervisor gets the report of their own subtree, made on request
from the same metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.web.routes import PREFIX, TimedRoute, render, signed_in_page
from models import actions, clock, monthly_report
from models.access import Principal
from models.errors import ValidationError

router = APIRouter(route_class=TimedRoute, include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(f"{PREFIX}/reports/monthly/{{month}}.xlsx")
def monthly(request: Request, month: str) -> Response:
    return signed_in_page(request, lambda session, user: _monthly(request, session, user, month))


def _monthly(request: Request, session: Session, user: Principal, month: str) -> Response:
    if not actions.role_may(user, actions.Duty.REPORT):
        return render(request, "error.html", {"status": 403}, user=user, status_code=403)
    try:
        first = monthly_report.month_of(month)
    except ValidationError as exc:
        message = f"{exc.message_zh} / {exc.message_en}"
        status = exc.http_status
        return render(
            request,
            "error.html",
            {"status": status, "message": message},
            user=user,
            status_code=status,
        )
    kept = monthly_report.stored_path(month)
    if user.reach_path is None and kept.exists():
        body = kept.read_bytes()
    else:
        report = monthly_report.build(session, first, now=clock.now(), within_path=user.reach_path)
        body = monthly_report.to_xlsx(report)
    return Response(
        body,
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="monthly-report-{month}.xlsx"',
            "Cache-Control": "no-store",
        },
    )
