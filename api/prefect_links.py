"""Links into the Prefect UI for a case (case page, case API, dashboard).

The runs of a case carry the tag ``case:<number>`` (a run of its own and the batch runs
it shared alike). The Prefect UI's runs page shows only the last 7 days unless the link
names a range, so every link gives one that covers the case's whole life: from an hour
before it was received to a day after it ended (or after now, while it is open). The
page reads the range from ``type=range&startDate=…&endDate=…`` (ISO 8601).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from models import clock
from models.case import Case
from models.settings import get_settings

BEFORE = timedelta(hours=1)
AFTER = timedelta(days=1)


def _iso(moment: datetime) -> str:
    return clock.ensure_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def prefect_runs_url(case: Case, *, now: datetime | None = None) -> str:
    """The case's flow runs in the Prefect UI, over its whole life."""
    base = get_settings().prefect_ui_url.rstrip("/")
    ended = case.closed_at or case.withdrawn_at or case.merged_at
    if case.is_open or ended is None:
        ended = now or clock.now()
    query = {
        "tag": f"case:{case.number}",
        "type": "range",
        "startDate": _iso(clock.ensure_utc(case.created_at) - BEFORE),
        "endDate": _iso(clock.ensure_utc(ended) + AFTER),
    }
    return f"{base}/runs?{urlencode(query)}"
