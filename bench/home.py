"""A Tiaojie installation for one benchmark: its home folder, database, generated city,
a staff token, and the environment its processes run with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from bench.citygen import GenCity, build_city, create_database
from bench.common import Workspace
from models.enums import PartyKind, PartySide, StaffRole
from models.staff import Staff
from models.unit import Unit

SECRET = "bench-secret-key-not-for-production-0123456789abcdef"
PLACE = "D1S1C1P1"  # a compound of the generated city
# Valid test identities (check digits correct); never real people.
PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"


@dataclass
class Home:
    root: Path
    db_file: Path
    env: dict[str, str]
    city: GenCity
    token: str

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_file}"


def prepare(ws: Workspace, name: str, **env_extra: str) -> Home:
    """Migrate a fresh database, generate the city, mint a community worker's token."""
    root = ws.dir(name)
    db_file = root / "tiaojie.db"
    env = ws.base_env(
        TIAOJIE_HOME=str(root),
        TIAOJIE_DATABASE_URL=f"sqlite:///{db_file}",
        TIAOJIE_SECRET_KEY=SECRET,
        **env_extra,
    )
    # Tokens are signed with a key derived from the secret: mint them with the same one.
    os.environ["TIAOJIE_SECRET_KEY"] = SECRET
    from models.settings import reset_settings

    reset_settings()
    engine = create_database(db_file)
    with Session(engine) as session:
        city = build_city(session, districts=2, streets=2, communities=3)
        session.commit()
        worker = session.exec(select(Staff).where(Staff.username == "d1s1c1_worker")).one()
        unit = session.get(Unit, worker.unit_id)
        assert unit is not None and worker.role == StaffRole.COMMUNITY_WORKER
        token = staff_token(worker, unit)
    engine.dispose()
    return Home(root=root, db_file=db_file, env=env, city=city, token=token)


def staff_token(staff: Staff, unit: Unit) -> str:
    from api.security import create_token

    return create_token(subject=str(staff.id), role=staff.role.value, unit=unit.code)


def case_body(i: int) -> dict[str, Any]:
    """A realistic complaint: a person (phone, ID number) against a firm; varied text."""
    from bench.citygen import CATEGORIES, DESCRIPTIONS

    return {
        "category": CATEGORIES[i % 3],
        "description": f"{DESCRIPTIONS[i % len(DESCRIPTIONS)]}（编号{i}）",
        "place_code": PLACE,
        "address_text": f"柳河街道{i % 40 + 1}号楼",
        "people_affected": 1 + i % 5,
        "channel": "walk_in",
        "parties": [
            {
                "side": PartySide.COMPLAINANT.value,
                "kind": PartyKind.PERSON.value,
                "name": "王小明",
                "phone": PHONE,
                "id_number": ID_NUMBER,
            },
            {
                "side": PartySide.RESPONDENT.value,
                "kind": PartyKind.FIRM.value,
                "name": f"江心市第{i % 50}电子厂",
            },
        ],
    }
