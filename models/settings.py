"""All configuration in one place: environment variables prefixed ``TIAOJIE_``.

Built lazily by :func:`get_settings` so that importing a module never reads the
environment; tests call :func:`reset_settings` after changing it.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIAOJIE_", env_file=None, extra="ignore")

    home: Path = Field(default=Path("var"), description="Folder holding every file Tiaojie writes.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the case database; default: SQLite file under home.",
    )
    # Keys (see models/keys.py): each from its own variable, else its file under
    # home/keys (written by `tiaojie init`), else derived from secret_key.
    secret_key: SecretStr | None = Field(
        default=None,
        description="One shared secret from which every key is derived when it has no "
        "variable or file of its own.",
    )
    token_key: SecretStr | None = Field(default=None, description="Signs bearer tokens.")
    session_key: SecretStr | None = Field(default=None, description="Signs session cookies.")
    field_key: SecretStr | None = Field(default=None, description="Encrypts personal fields.")
    lookup_key: SecretStr | None = Field(default=None, description="Keys look-up hashes.")
    timezone: str = "Asia/Shanghai"
    case_number_prefix: str = "JX"

    # Orchestration
    escalation_interval_s: int = 120
    reconcile_interval_s: int = 60
    reconcile_stuck_after_s: int = 300
    reminder_lead_working_hours: int = 8
    relay_batch_size: int = 200
    relay_poll_s: float = 0.5
    # Between polls the relay looks this often for a new submission (a new outbox row of
    # a batchable step, by primary key: cheap at any size) and polls at once for it.
    relay_wake_s: float = Field(default=0.1, gt=0)
    # Fresh work ahead of a backlog (models/outbox.py, claim_jobs): rows younger than
    # this go before older ones; this share of every batch is kept for the oldest rows.
    # Five minutes: a new case that waited longer than this for the runs kept for fresh
    # work (an overloaded machine) fell behind the whole backlog (bench/backlog.py: new
    # cases' p95 452 s with 60 s, at load 9 to 13).
    relay_fresh_s: float = 300.0
    relay_backlog_share: float = Field(default=0.25, gt=0, le=1)
    executor: Literal["inprocess", "deployment"] = Field(
        default="inprocess",
        description="inprocess: steps run in the serve process; deployment: on a work pool.",
    )
    # Step runs in flight at once, all steps together.
    executor_concurrency: int = 8
    # Runs of a batchable step (intake) in flight at once: cases that arrive while they
    # run share the next run, up to relay_batch_max cases (adaptive batching, see
    # flows/batching.py). Default: 1 in process (the bench measured one lane best against
    # a Prefect server on SQLite), executor_concurrency on a work pool.
    relay_batch_lane: int | None = None
    relay_batch_max: int = 50
    # Runs of a batchable step kept ahead of a backlog (flows/batching.py,
    # plan_kept_runs): for emergencies, and for fresh cases (models/outbox.py,
    # is_urgent), so that they do not wait for a backlog's batch run. 0: none kept.
    relay_emergency_lane: int = Field(default=1, ge=0)
    relay_fresh_lane: int = Field(default=1, ge=0)
    # While those runs are in flight, another batch run pauses between two of its cases
    # for at most this long (tasks/give_way.py); 0: never.
    relay_give_way_s: float = Field(default=2.0, ge=0)
    # Outbox rows of different cases delivered at once (run creations in flight).
    relay_concurrency: int = 8
    work_pool: str = "tiaojie"
    outbox_max_attempts: int = 10
    reports_cron: str = "30 0 * * *"
    # The monthly report (月报) of the month before, at 01:00 on the 1st (Asia/Shanghai).
    monthly_report_cron: str = "0 1 1 * *"

    # Notifications
    notifier_url: str | None = Field(default=None, description="Webhook URL; unset logs instead.")
    notifier_timeout_s: float = 5.0
    notifier_max_retries: int = 5
    # The SMS gateway (tasks/sms.py): the complainant's receipt. Unset: the receipt is
    # logged (masked) instead. `python -m api.fake_sms` is a local receiver to try it.
    sms_url: str | None = Field(default=None, description="SMS gateway URL (POST, JSON).")
    sms_key: SecretStr | None = Field(default=None, description="The gateway's API key.")
    sms_receipt_template: str = Field(
        default="TJ_RECEIPT", description="The gateway's template id for the receipt."
    )
    sms_link_template: str = Field(
        default="TJ_LINK", description="The gateway's template id for a one-use link."
    )
    simulation_max_hours: int = Field(
        default=12,
        ge=1,
        description=(
            "A simulation still queued or running this many hours after it was asked for "
            "is marked failed by the sweep (the largest the form allows takes about 3 hours)."
        ),
    )
    simulation_processes: int = Field(
        default=0,
        ge=0,
        le=32,
        description=(
            "Scenarios simulated at once, each in a process of its own (0: one per CPU; "
            "1: one after another). A scenario itself runs on one CPU."
        ),
    )
    sms_resend_hours: int = Field(
        default=72,
        ge=1,
        description="How long the sweep keeps re-sending a receipt or link that failed.",
    )

    # Duplicate and cluster detection
    dedup_window_days: int = 30
    cluster_warning_threshold: int = 5
    group_case_threshold: int = 5
    # Distinct complainants about one respondent or place within the dedup window that
    # make a group case (群体性) even when each complaint names one person.
    group_distinct_complainants: int = 3
    # How far back a worker may say a complaint was received (a walk-in written up later).
    received_max_age_days: int = 30

    # Machine triage (models/assessment.py, models/triage_learning.py)
    triage_confidence_threshold: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Below this category confidence a case waits for a person (研判).",
    )
    triage_retrain_min_corrections: int = Field(
        default=50, ge=1, description="New corrections that make a retraining due."
    )
    triage_retrain_cron: str = "15 2 * * *"
    risk_red_due_hours: int = 24  # the assessment of a red warning is due within a day
    risk_orange_due_days: int = 3  # working days
    risk_yellow_due_days: int = 5  # working days

    # The three rates (三率): weights of the composite score used for the monthly ranking
    # (the weights commonly reported for Beijing's 接诉即办 assessment).
    rate_weight_response: float = Field(default=0.10, ge=0, le=1)
    rate_weight_resolution: float = Field(default=0.45, ge=0, le=1)
    rate_weight_satisfaction: float = Field(default=0.45, ge=0, le=1)

    # HTTP
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    token_ttl_s: int = 8 * 3600
    max_body_bytes: int = 256 * 1024
    open311_rate_limit_per_min: int = 60
    open311_keys_since: datetime | None = Field(
        default=None,
        description="Open311 api_keys issued before this moment are refused: when a key "
        "leaks, set it to now and give every client a new key (tiaojie token create "
        "--role open311). ISO 8601 with a time zone.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed (default none).",
    )
    signin_per_minute: int = Field(
        default=10,
        description="Password checks a minute per user name and per client address "
        "(both sign-in paths; see models/login.py).",
    )
    ready_file: Path | None = Field(
        default=None,
        description="Set by `tiaojie up`: /healthz answers 503 until this file exists.",
    )
    public_url: str | None = Field(
        default=None,
        description="Address staff use to reach the web pages (for one-time sign-in links); "
        "default: http://api_host:api_port.",
    )
    sign_in_link_days: int = Field(default=7, description="How long a one-time sign-in link works.")
    prefect_ui_url: str = Field(
        default="http://127.0.0.1:4200",
        description="Base URL of the Prefect UI; case pages link to their flow runs there.",
    )
    scenarios_dir: Path | None = Field(
        default=None,
        description="Folder of the policy simulator's scenario files offered to supervisors "
        "(default: the repository's docs/scenarios).",
    )

    # Mediation (人民调解法): the mediation limit and its reminder, attachments
    mediation_limit_months: int = Field(
        default=1, ge=1, le=12, description="Mediation limit (about one month)."
    )
    mediation_reminder_days: int = Field(
        default=3, ge=0, le=30, description="Days before the mediation limit to remind."
    )
    committee_name: str | None = Field(
        default=None,
        description="Committee name on documents; default: the unit's name + 人民调解委员会.",
    )
    attachment_max_bytes: int = Field(
        default=10 * 1024 * 1024, description="Largest scan or photo accepted on a case."
    )

    # The resident's side (/r/{code}; models/resident.py)
    resident_lock_tries: int = Field(
        default=5, ge=1, description="Wrong phone checks after which a tracking code locks."
    )
    resident_lock_minutes: int = Field(
        default=30, ge=1, description="How long a code stays locked."
    )
    resident_session_minutes: int = Field(
        default=20, ge=1, description="How long a resident stays in after the phone check."
    )
    resident_per_minute: int = Field(
        default=30, description="Requests to /r/ pages a minute per client address (0: no limit)."
    )
    bench_sql_count: bool = Field(
        default=False,
        description="Benchmarks only: count the SQL statements of each request and report "
        "them in an X-SQL-Statements header (off in real use).",
    )
    resident_photo_max_bytes: int = Field(default=5_000_000, description="Largest photo accepted.")
    resident_photos_max: int = Field(default=3, description="Photos at most per submission.")
    resident_link_days: int = Field(
        default=7, ge=1, description="How long a one-use link sent by SMS stays valid."
    )
    resident_purge_hours: int = Field(
        default=24,
        ge=1,
        description="Expired sessions and links, and idle code locks, are deleted this long after.",
    )

    # Personal data
    retention_days: int = Field(
        default=3 * 365,
        ge=0,
        description="Cases that ended this many days ago have their personal data anonymised.",
    )
    sign_in_audit_days: int = Field(
        default=180, ge=1, description="Sign-in attempts (with their address) are kept this long."
    )
    # The retention flow (anonymisation, sign-in audit) at 03:30 every night.
    retention_cron: str = "30 3 * * *"

    @property
    def web_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'tiaojie.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
