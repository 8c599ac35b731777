"""A district's folder of files, imported in one go: ``units.csv`` (or ``units.geojson``),
``staff.csv``, ``pairings.csv`` and ``policies.toml``, each when present, in that order
(staff and pairings refer to units). Used by ``tiaojie init --district DIR`` and by the
demo city, which ships in exactly these files."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from models.district_import import (
    file_digest,
    import_pairings,
    import_staff,
    import_units,
    read_pairing_rows,
    read_staff_rows,
    read_unit_rows,
)
from models.policy_load import load_policies, read_policy_file

FILES = ("units.csv | units.geojson", "staff.csv", "pairings.csv", "policies.toml")


def load_district(
    session: Session, folder: Path, *, actor: str, password_hash: str | None = None
) -> tuple[list[str], list[tuple[str, str]]]:
    """Import every file of ``folder`` in the caller's transaction. Returns the summaries
    and the one-time sign-in links of new staff (none when ``password_hash`` is given).
    Raises :class:`~models.tabular.ImportRefused` on the first file with mistakes."""
    summaries: list[str] = []
    links: list[tuple[str, str]] = []
    units = next((p for p in (folder / "units.csv", folder / "units.geojson") if p.exists()), None)
    if units is not None:
        report = import_units(
            session, read_unit_rows(units), file=units.name, actor=actor, digest=file_digest(units)
        )
        summaries.append(report.summary())
    staff = folder / "staff.csv"
    if staff.exists():
        report = import_staff(
            session,
            read_staff_rows(staff),
            file=staff.name,
            actor=actor,
            digest=file_digest(staff),
            password_hash=password_hash,
        )
        summaries.append(report.summary())
        links = report.sign_in_links
    pairings = folder / "pairings.csv"
    if pairings.exists():
        report = import_pairings(
            session,
            read_pairing_rows(pairings),
            file=pairings.name,
            actor=actor,
            digest=file_digest(pairings),
        )
        summaries.append(report.summary())
    policies = folder / "policies.toml"
    if policies.exists():
        text = read_policy_file(policies.read_bytes(), policies.name)
        summaries.append(load_policies(session, text, file=policies.name, actor=actor).summary())
    return summaries, links
