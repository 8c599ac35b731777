"""Links into the Prefect UI for a case (case page, case API, dashboard).

The runs of a case carry the tag ``case:<number>`` (a run of its own and the batch runs
it shared alike). The Prefect UI's runs page shows only the last 7 days unless the link
names a range, so every link gives one that covers the case's whole life: from an hour
before it was received to a day after it ended (or after now, while it is open). The
page reads the range from ``type=range&startDate=…&endDate=…`` (ISO 8601).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import quote_plus

from models import clock
from models.settings import get_settings

BEFORE = timedelta(hours=1)
AFTER = timedelta(days=1)


class CaseTimes(Protocol):
    """What a link is made of: a :class:`models.case.Case`, or the columns of one."""

    @property
    def number(self) -> str: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def withdrawn_at(self) -> datetime | None: ...
    @property
    def merged_at(self) -> datetime | None: ...


def _iso(moment: datetime) -> str:
    """The moment as the query string carries it: ISO 8601, its colons percent-encoded
    (the one character of it that ``urlencode`` would encode)."""
    return clock.ensure_utc(moment).strftime("%Y-%m-%dT%H%%3A%M%%3A%S.000Z")


def prefect_runs_url(case: CaseTimes, *, now: datetime | None = None) -> str:
    """The case's flow runs in the Prefect UI, over its whole life."""
    base = get_settings().prefect_ui_url.rstrip("/")
    ended = case.closed_at or case.withdrawn_at or case.merged_at
    if case.is_open or ended is None:
        ended = now or clock.now()
    # As urlencode() writes it, without its per-value machinery (the dashboard makes one
    # link per row): only the case number needs quoting.
    return (
        f"{base}/runs?tag={quote_plus(f'case:{case.number}')}&type=range"
        f"&startDate={_iso(clock.ensure_utc(case.created_at) - BEFORE)}"
        f"&endDate={_iso(clock.ensure_utc(ended) + AFTER)}"
    )
