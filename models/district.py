"""A district's folder of files, imported in one go: ``units.csv`` (or ``units.geojson``),
``staff.csv``, ``pairings.csv`` and ``policies.toml``, each when present, in that order
(staff and pairings refer to units). Used by ``tiaojie init --district DIR`` and by the
demo city, which ships in exactly these files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session

from models.district_import import (
    ImportReport,
    file_digest,
    import_pairings,
    import_staff,
    import_units,
    read_pairing_rows,
    read_staff_rows,
    read_unit_rows,
)
from models.policy_load import load_policies, read_policy_file
from models.tabular import Row

FILES = ("units.csv | units.geojson", "staff.csv", "pairings.csv", "policies.toml")

# A table's file (None: absent), how its rows are read, how they are imported, and what
# else that import takes.
_Table = tuple[
    Path | None, Callable[[Path], list[Row]], Callable[..., ImportReport], dict[str, Any]
]


def load_district(
    session: Session, folder: Path, *, actor: str, password_hash: str | None = None
) -> tuple[list[str], list[tuple[str, str]]]:
    """Import every file of ``folder`` in the caller's transaction. Returns the summaries
    and the one-time sign-in links of new staff (none when ``password_hash`` is given).
    Raises :class:`~models.tabular.ImportRefused` on the first file with mistakes."""
    summaries: list[str] = []
    links: list[tuple[str, str]] = []
    units = next((p for p in (folder / "units.csv", folder / "units.geojson") if p.exists()), None)
    staff_hash: dict[str, Any] = {"password_hash": password_hash}
    tables: list[_Table] = [
        (units, read_unit_rows, import_units, {}),
        (folder / "staff.csv", read_staff_rows, import_staff, staff_hash),
        (folder / "pairings.csv", read_pairing_rows, import_pairings, {}),
    ]
    for path, read_rows, import_rows, extra in tables:
        if path is None or not path.exists():
            continue
        report = import_rows(
            session, read_rows(path), file=path.name, actor=actor, digest=file_digest(path), **extra
        )
        summaries.append(report.summary())
        links += report.sign_in_links  # only new staff have them
    policies = folder / "policies.toml"
    if policies.exists():
        text = read_policy_file(policies.read_bytes(), policies.name)
        summaries.append(load_policies(session, text, file=policies.name, actor=actor).summary())
    return summaries, links
