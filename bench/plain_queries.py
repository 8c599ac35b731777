"""The plain queries of the pages section: for each page, one SQL statement that fetches
just the rows the page shows, written as a person would write it by hand for this
schema. The section times each in its own process (the strict baseline) and, through
:mod:`bench.pages_app`, served over the same HTTP stack as the pages.

Named statements with bound parameters: the bench-only route runs only these, never a
statement sent to it.
"""

from __future__ import annotations

# The district and street every measured page reads (bench.pagegen's first ones).
DISTRICT_PATH = "/C/D1/"
STREET_PATH = "/C/D1/D1S1/"


def plain_queries(dialect: str) -> dict[str, str]:
    """SQL per plain query name, in ``dialect``."""
    pg = dialect == "postgresql"
    # SQLite: "+unit_id" so that the month is read from the created_at index (with a
    # plain unit_id it walks that column's index over every case).
    by_unit = "unit_id" if pg else "+unit_id"
    words = (
        "SELECT case_id FROM case_search WHERE string_to_array(terms, ' ') @> "
        "CAST(:words AS text[])"
        if pg
        else "SELECT rowid FROM case_search_fts WHERE case_search_fts MATCH :words"
    )
    search = (
        "SELECT * FROM cases WHERE {id} IN ({words}) AND unit_path LIKE "
        f"'{DISTRICT_PATH}%' ORDER BY created_at DESC, id DESC LIMIT 51"
    )
    return {
        "inbox": "SELECT * FROM cases WHERE is_open = :yes AND assignee_id = :staff "
        "ORDER BY resolution_due_at LIMIT 50",
        "case_page": "SELECT e.* FROM case_event e JOIN cases c ON c.id = e.case_id "
        "WHERE c.number = :number ORDER BY e.seq",
        # The rates table: the month's cases of each unit of the district.
        "dashboard": "SELECT unit_id, count(*), count(first_response_at), count(closed_at) "
        f"FROM cases WHERE created_at >= :since AND unit_path LIKE '{DISTRICT_PATH}%' "
        f"GROUP BY {by_unit}",
        "case_list": "SELECT * FROM cases WHERE status = 'in_mediation' AND category = "
        f":category AND unit_path LIKE '{STREET_PATH}%' "
        "ORDER BY created_at DESC, id DESC LIMIT 51",
        # Matches first, then sorted (a word in few cases) …
        "search": search.format(id="id", words=words),
        # … or the cases read newest first, each checked against the matches (a word in
        # thousands of cases: stops at the page's last row); the page chooses the same way.
        "search_scan": search.format(id="id" if pg else "id + 0", words=words),
        "monthly_report": "SELECT unit_id, status, count(*) FROM cases WHERE created_at >= "
        f":since AND created_at < :until AND unit_path LIKE '{DISTRICT_PATH}%' "
        f"GROUP BY {by_unit}, status",
        "export_10k": "SELECT number, created_at, category, status, resolution_due_at, "
        "description FROM cases WHERE created_at >= :since AND created_at < :until "
        "ORDER BY created_at DESC",
        "resident_page": "SELECT * FROM cases WHERE tracking_hash = :hash",
    }
