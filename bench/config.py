"""Sizes of the quick and the full run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    name: str
    # Escalation
    open_cases: int
    due_fraction: float
    due_query_runs: int
    sweep_batch: int
    naive_escalation_sample: int
    # Intake API
    intake_concurrency: int
    intake_seconds: float
    intake_warmup: int
    paced_rate: float
    paced_seconds: float
    # End to end
    e2e_rate: float  # arrivals a second for the latency figure
    e2e_seconds: float
    e2e_burst_rates: tuple[float, ...]  # higher rates to find the sustained throughput
    e2e_burst_seconds: float
    e2e_drain_s: float
    naive_cases: int
    # End to end with a backlog: complaints waiting in the outbox while new ones arrive
    # at e2e_rate for backlog_arrival_seconds (bench/backlog.py)
    backlog_cases: int
    backlog_arrival_seconds: float
    backlog_drain_timeout_s: float
    # Memory
    idle_settle_s: float
    # Case export (.xlsx and CSV of the whole list)
    export_cases: int = 2_000
    # Policy simulator: days of a 50,000-cases-a-year district simulated as the sample (a
    # whole year, 365, is ~25 minutes at today's pace: too long for one section)
    simulate_days: int = 5
    start_stack_first: bool = False
    # Scale-out (PostgreSQL, process work pool, one then two workers): full run only
    scale_out: bool = False
    scale_out_cases: int = 600  # one closed burst per worker count
    scale_out_timeout_s: float = 120.0  # for the burst to be assigned (section ~5 min)
    # Pages at scale: cases in the saved city, requests per page (report and export fewer)
    pages_cases: int = 20_000
    pages_requests: int = 20
    pages_slow_requests: int = 2
    pages_pg_cases: int = 0  # the same pages on PostgreSQL (full run only; 0: not run)
    pages_budget_s: float = 10.0  # per page, once 20 requests are made


QUICK = Sizes(
    name="quick",
    open_cases=50_000,
    due_fraction=0.01,
    due_query_runs=5,
    sweep_batch=500,
    naive_escalation_sample=2,
    intake_concurrency=16,
    intake_seconds=2.0,
    intake_warmup=20,
    paced_rate=100.0,
    paced_seconds=1.5,
    e2e_rate=2.0,
    e2e_seconds=3.0,
    e2e_burst_rates=(4.0,),
    e2e_burst_seconds=3.0,
    e2e_drain_s=6.0,
    naive_cases=2,
    backlog_cases=200,
    backlog_arrival_seconds=10.0,
    backlog_drain_timeout_s=180.0,
    idle_settle_s=1.0,
    start_stack_first=True,
)

FULL = Sizes(
    name="full",
    open_cases=1_000_000,
    due_fraction=0.01,
    due_query_runs=9,
    sweep_batch=500,
    naive_escalation_sample=30,
    intake_concurrency=32,
    intake_seconds=20.0,
    intake_warmup=200,
    paced_rate=100.0,
    paced_seconds=15.0,
    e2e_rate=2.0,
    e2e_seconds=60.0,
    e2e_burst_rates=(5.0, 8.0, 12.0),
    e2e_burst_seconds=30.0,
    e2e_drain_s=60.0,
    naive_cases=20,
    backlog_cases=1_000,
    backlog_arrival_seconds=60.0,
    backlog_drain_timeout_s=900.0,
    idle_settle_s=15.0,
    export_cases=10_000,
    simulate_days=60,
    scale_out=True,
    pages_cases=1_000_000,
    pages_requests=200,
    pages_slow_requests=5,
    pages_pg_cases=1_000_000,  # kept between runs under bench/.city (bench.pgcity)
    pages_budget_s=60.0,
)
