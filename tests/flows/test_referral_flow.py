"""A referral is a loop, not an exit: under the workflow, a case referred to the paired
agency waits for the agency (which is notified) and gets its return visit only once the
agency has signed for it and recorded its outcome; the visit is the referring
community's."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from models.case import Case
from models.clock import VirtualClock
from models.db import read_session, write_session
from models.enums import CaseStatus, Category, ReferralOutcome, ReferralTarget, StaffRole
from models.follow_up import FollowUp
from models.notification import Notification
from models.referrals import record_referral_outcome, sign_referral
from models.routing import refer_case
from tests.factories import City, add_staff, make_case
from tests.flows.conftest import Receiver
from tests.flows.helpers import drive, staff_actor, verbs

pytestmark = pytest.mark.prefect


def test_referral_waits_for_the_agency_then_the_community_visits(
    case_db: Engine, city: City, receiver: Receiver, vclock: VirtualClock, aloop: Any
) -> None:
    with write_session(case_db) as s:
        officer = add_staff(
            s, city, "labour_officer", StaffRole.MEDIATOR, "AG-LAB", [Category.LABOUR]
        )
        case_id = make_case(s, people_affected=1).id
    assert case_id is not None
    drive(aloop, case_db)  # triage and assignment: the grid worker of compound A
    grid = staff_actor(case_db, city, "gridA")
    with write_session(case_db) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == CaseStatus.ASSIGNED
        refer_case(
            s,
            case_id=case_id,
            target=ReferralTarget.AGENCY,
            agency_code=None,
            reason="劳动关系认定须由人社部门依职权作出",
            actor=grid,
            expected_version=case.version,
        )
    drive(aloop, case_db)
    with read_session(case_db) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == CaseStatus.REFERRED
        assert s.exec(select(FollowUp).where(FollowUp.case_id == case_id)).all() == []
        told = s.exec(
            select(Notification).where(
                Notification.case_id == case_id, col(Notification.kind) == "referred"
            )
        ).all()
        assert len(told) == 1
    agency = staff_actor(case_db, city, "labour_officer")
    with write_session(case_db) as s:
        case = s.get(Case, case_id)
        assert case is not None
        sign_referral(s, case_id=case_id, actor=agency, expected_version=case.version)
    drive(aloop, case_db)
    with write_session(case_db) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == CaseStatus.REFERRED
        record_referral_outcome(
            s,
            case_id=case_id,
            action_taken="劳动监察大队立案，责令补发工资，已补发。",
            outcome=ReferralOutcome.RESOLVED,
            actor=agency,
            expected_version=case.version,
        )
    drive(aloop, case_db)
    with read_session(case_db) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == CaseStatus.FOLLOW_UP
        visits = s.exec(select(FollowUp).where(FollowUp.case_id == case_id)).all()
        assert [v.visitor_id for v in visits] == [city.staff["gridA"].id]
    assert officer.id is not None
    timeline = verbs(case_db, case_id)
    assert timeline[-4:] == ["referred", "referral_signed", "referral_concluded", "follow_up_due"]
