"""Audit of the append-only case timeline: walk every case's hash chain.

Each :class:`~models.event.CaseEvent` carries the SHA-256 of its content chained to the
previous event of the same case (see :mod:`models.lifecycle`). An edited, deleted or
re-ordered event breaks the chain at that event's ``seq``; :func:`verify_all` reports
each break with the case number so that an auditor can find it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from models.case import Case
from models.lifecycle import ChainProblem, verify_chain

REASONS_ZH = {
    "sequence gap": "事件序号不连续",
    "previous hash differs": "与上一事件的哈希不衔接",
    "content edited": "事件内容被修改",
    "last event missing": "最后的事件缺失",
}


@dataclass(frozen=True)
class AuditFinding:
    """One break of one case's chain, with the readable case number."""

    case_number: str
    problem: ChainProblem

    @property
    def reason_zh(self) -> str:
        return REASONS_ZH.get(self.problem.reason, self.problem.reason)


def case_ids(session: Session) -> list[int]:
    return [i for i in session.exec(select(Case.id).order_by(col(Case.id))).all() if i is not None]


def verify_all(
    session: Session,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[ChainProblem]:
    """Verify every case's event chain; ``progress(done, total)`` is called per case."""
    ids = case_ids(session)
    problems: list[ChainProblem] = []
    for done, case_id in enumerate(ids, start=1):
        problems.extend(verify_chain(session, case_id=case_id))
        if progress is not None:
            progress(done, len(ids))
    return problems


def describe(session: Session, problems: list[ChainProblem]) -> list[AuditFinding]:
    """Attach case numbers to problems (for people, not machines)."""
    numbers: dict[int, str] = {}
    findings: list[AuditFinding] = []
    for problem in problems:
        if problem.case_id not in numbers:
            case = session.get(Case, problem.case_id)
            numbers[problem.case_id] = case.number if case else f"#{problem.case_id}"
        findings.append(AuditFinding(numbers[problem.case_id], problem))
    return findings
