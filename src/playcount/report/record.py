"""The run report as the report package reads it: the JSON of `_playcount/runs/<run-id>.json`.

The page and the history are built from that JSON, not from the pipeline's objects, so a past
run's page can be drawn again from the lake alone, and `pipeline.finish` can call this package
without an import cycle. Unknown keys are ignored: older and newer reports both parse.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FileRecord", "ReplayRecord", "RunRecord", "REPORTS", "report_path", "LATEST"]

REPORTS = "_playcount/reports"
LATEST = f"{REPORTS}/latest.html"


def report_path(run_id: str) -> str:
    """Where a run's page lives in the lake."""
    return f"{REPORTS}/{run_id}.html"


class FileRecord(BaseModel):
    """One input file's outcome (the run report's `files` entries)."""

    model_config = ConfigDict(extra="ignore")

    dataset: str
    name: str
    path: str = ""
    rows: int = 0
    clean: int = 0
    bad: int = 0
    status: str = "accepted"
    reason: str | None = None
    rules: dict[str, int] = Field(default_factory=dict)
    warnings: dict[str, int] = Field(default_factory=dict)


class ReplayRecord(BaseModel):
    """What a `replay` did (the run report's `replay`)."""

    model_config = ConfigDict(extra="ignore")

    replayed: int = 0
    still_bad: int = 0
    rules: dict[str, int] = Field(default_factory=dict)
    dates: list[dt.date] = Field(default_factory=list)


class RunRecord(BaseModel):
    """One run's report."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    status: str
    reason: str | None = None
    kind: str = "run"
    """run, rebuild or replay."""
    replay: ReplayRecord | None = None
    root: str = ""
    run_date: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    files: list[FileRecord] = Field(default_factory=list)
    dates: list[dt.date] = Field(default_factory=list)
    kpi_rows: dict[str, int] = Field(default_factory=dict)
    bad_rows: dict[str, str] = Field(default_factory=dict)
    stages: dict[str, float] = Field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, None while unfinished."""
        if self.finished_at is None:
            return None
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)

    def streams(self) -> list[FileRecord]:
        return [f for f in self.files if f.dataset == "streams"]

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def events(self) -> int:
        """Clean rows of the accepted stream files: the events this run wrote."""
        return sum(f.clean for f in self.streams() if f.status == "accepted")

    @property
    def quarantined(self) -> int:
        """Bad rows of the accepted files (every dataset): the rows in `bad_rows/`."""
        return sum(f.bad for f in self.files if f.status == "accepted")
