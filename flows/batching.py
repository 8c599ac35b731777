"""Adaptive batching: how many runs the cases waiting for a batchable step get.

A step with a batch flow (``intake`` → ``intake-batch``) has a lane of
``settings.relay_batch_lane`` runs in flight. While the lane has room each case gets a
run of its own; cases that arrive while it is full wait in the outbox and share the
next free run, up to ``settings.relay_batch_max`` cases. Batch size so follows the
arrival rate with nothing to tune. Plain Python, used by the relay's loop.
"""

from __future__ import annotations

from datetime import datetime

from models.outbox import Job, is_emergency, is_urgent


def emergency_lane(step: str) -> str:
    """The name the runs of ``step`` kept for emergencies are counted under."""
    return f"{step} emergency"


def fresh_lane(step: str) -> str:
    """The name the runs of ``step`` kept for fresh cases are counted under."""
    return f"{step} fresh"


def is_kept_lane(lane: str) -> bool:
    """A lane of runs kept for urgent work (:func:`emergency_lane`, :func:`fresh_lane`)."""
    return lane.endswith((" emergency", " fresh"))


def plan_kept_runs(
    jobs: list[Job],
    *,
    step: str,
    free: dict[str, int],
    batch_max: int,
    now: datetime,
    backlog: bool = False,
    started: datetime | None = None,
) -> tuple[list[tuple[list[Job], str]], list[Job]]:
    """The runs kept ahead of a backlog: ``free`` run slots by lane name, for
    emergencies first (:func:`emergency_lane`, ``settings.relay_emergency_lane``), then
    for fresh cases and the emergencies still waiting (:func:`fresh_lane`,
    ``settings.relay_fresh_lane``), the urgent rows of :func:`models.outbox.is_urgent`.
    Each lane's cases share its free runs (:func:`plan_runs`), so a new complaint
    neither waits for a backlog's batch run to end nor rides in one, and an emergency
    does not wait for a run of fresh cases; the step's lane goes on with the rest,
    oldest first. Only when older rows wait too (among ``jobs``, or ``backlog``: older
    rows of the step wait unclaimed while its lane is full): without a backlog the
    step's lane's adaptive batching serves fresh work best (one lane kept up at the
    highest rates, see the README). ``started``: when the relay started
    (:func:`models.outbox.fresh_since`). Returns (cases, lane) per run and every case left,
    in claim order."""
    if not backlog and all(is_urgent(job, now, started) for job in jobs):
        return [], list(jobs)
    lanes = (
        (emergency_lane(step), is_emergency),
        (fresh_lane(step), lambda job: is_urgent(job, now, started)),
    )
    out: list[tuple[list[Job], str]] = []
    left = list(jobs)
    for lane, wanted in lanes:
        picked = [job for job in left if wanted(job)]
        runs, _waiting = plan_runs(picked, free_slots=free.get(lane, 0), batch_max=batch_max)
        taken = {job.outbox_id for run in runs for job in run}
        left = [job for job in left if job.outbox_id not in taken]
        out += [(run, lane) for run in runs]
    return out, left


def plan_runs(
    jobs: list[Job], *, free_slots: int, batch_max: int
) -> tuple[list[list[Job]], list[Job]]:
    """Adaptive batching: at most ``free_slots`` runs for these waiting cases (in claim
    order: emergencies and fresh cases first, ``models/outbox.py``), each case its own
    run while there are enough free slots (the quiet case: a run per case, named by its
    number); beyond that, the cases share the free runs evenly, at most ``batch_max`` a
    run, and the rest wait for the next free slot. Returns the runs and the cases left
    waiting. Under load the slots stay busy while cases gather, so batches grow with the
    arrival rate and shrink again when it falls."""
    if not jobs or free_slots <= 0:
        return [], list(jobs)
    runs = min(free_slots, len(jobs))
    taken = jobs[: runs * max(1, batch_max)]
    size, extra = divmod(len(taken), runs)
    out: list[list[Job]] = []
    start = 0
    for i in range(runs):
        end = start + size + (1 if i < extra else 0)
        out.append(taken[start:end])
        start = end
    return out, jobs[len(taken) :]
