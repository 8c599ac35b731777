"""Adaptive batching: how many runs the cases waiting for a batchable step get.

A step with a batch flow (``intake`` → ``intake-batch``) has a lane of
``settings.relay_batch_lane`` runs in flight. While the lane has room each case gets a
run of its own; cases that arrive while it is full wait in the outbox and share the
next free run, up to ``settings.relay_batch_max`` cases. Batch size so follows the
arrival rate with nothing to tune. Plain Python, used by the relay's loop.
"""

from __future__ import annotations

from datetime import datetime

from models.outbox import Job, is_urgent


def fresh_lane(step: str) -> str:
    """The name runs of ``step`` in its kept lane are counted under (see
    :func:`plan_fresh_runs`)."""
    return f"{step} fresh"


def plan_fresh_runs(
    jobs: list[Job], *, free_slots: int, batch_max: int, now: datetime
) -> tuple[list[list[Job]], list[Job]]:
    """The runs kept for emergencies and fresh cases (``settings.relay_fresh_lane``).
    Only ahead of a backlog: when older rows wait too, the urgent ones among ``jobs``
    (:func:`models.outbox.is_urgent`) get up to ``free_slots`` runs of their own
    (:func:`plan_runs`), so a new complaint neither waits for a backlog's batch run to
    end nor rides in one; the step's lane goes on with the rest, oldest first. Without
    older rows it plans nothing: the lane's adaptive batching serves fresh work best
    (one lane kept up at the highest rates, see the README). Returns those runs and
    every case left, in claim order."""
    urgent = [job for job in jobs if is_urgent(job, now)]
    if not urgent or len(urgent) == len(jobs):
        return [], list(jobs)
    runs, _left = plan_runs(urgent, free_slots=free_slots, batch_max=batch_max)
    started = {job.outbox_id for run in runs for job in run}
    return runs, [job for job in jobs if job.outbox_id not in started]


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
