"""The record of a policy simulation (模拟记录): the ``simulation_run`` table and its
status (how it is written: :mod:`models.sim_runs`)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlmodel import JSON, Column, Field, SQLModel, Text

from models.types import UTCDateTime, enum_type


class SimulationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def zh(self) -> str:
        return {"pending": "排队中", "running": "运行中", "done": "已完成", "failed": "失败"}[
            self.value
        ]

    @property
    def en(self) -> str:
        return {"pending": "Queued", "running": "Running", "done": "Done", "failed": "Failed"}[
            self.value
        ]


class SimulationRun(SQLModel, table=True):
    __tablename__ = "simulation_run"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_by_id: int | None = Field(default=None, foreign_key="staff.id")
    origin: str = Field(max_length=16)  # "web", "prefect" (its UI) or "cli"
    status: SimulationStatus = Field(sa_type=enum_type(SimulationStatus))
    period_start: date
    days: int
    seed: int
    # The request as given: scenario names and uploaded TOML texts (no personal data).
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    flow_run_id: str | None = Field(default=None, max_length=36)
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    report_html: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, max_length=2000)

    @property
    def scenario_keys(self) -> list[str]:
        return [*self.parameters.get("scenarios", []), *self.parameters.get("uploaded", {})]
