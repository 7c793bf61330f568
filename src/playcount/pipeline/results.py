"""The typed results of the stages and the run report (SPEC §5): what each stage stages under
`_playcount/staging/<run-id>/` and what a run reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum
from typing import Literal, TypeVar

from pydantic import BaseModel, Field

Progress = Callable[[str, str], None]
M = TypeVar("M", bound=BaseModel)


# -- results -----------------------------------------------------------------------------------


class InputFile(BaseModel):
    """A file of the landing zone."""

    dataset: str
    path: str
    name: str
    """Its path under the dataset's landing prefix (the file name for a flat folder)."""
    fingerprint: str
    size: int
    modified: float | None = None
    """`FileInfo.modified`: set for local files, which may still be being written."""
    signature: str | None = None
    """`Storage.signature` when it was fingerprinted (local files): a later different one means it
    changed."""
    problem: str | None = None
    """Why it can never be read (a symlink out of the root, a pipe): it is rejected."""
    waiting: str | None = None
    """Why it is left in the landing zone for a later run (still being written)."""


class FileStatus(StrEnum):
    """What became of an input file (its value is what reports and `--json` show)."""

    ACCEPTED = "accepted"
    """Validated and counted."""
    REJECTED = "rejected"
    """Moved to `rejected/` whole."""
    SKIPPED = "skipped"
    """Already done (same content): archived without counting."""
    PENDING = "pending"
    """Left in the landing zone for a later run: still being written, changed under the run, or
    not validated because the run failed."""


class RunStatus(StrEnum):
    """How a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOTHING_TO_DO = "nothing_to_do"


class ValidationStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class FileOutcome(BaseModel):
    """What became of one input file."""

    dataset: str
    name: str
    path: str
    fingerprint: str
    signature: str | None = None
    rows: int = 0
    clean: int = 0
    bad: int = 0
    status: FileStatus = FileStatus.ACCEPTED
    reason: str | None = None
    rules: dict[str, int] = Field(default_factory=dict)
    warnings: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def of(cls, f: InputFile, status: FileStatus = FileStatus.ACCEPTED, reason: str | None = None) -> FileOutcome:
        """The outcome of the landing file `f` (its dataset, names, fingerprint and signature)."""
        return cls(
            dataset=f.dataset,
            name=f.name,
            path=f.path,
            fingerprint=f.fingerprint,
            signature=f.signature,
            status=status,
            reason=reason,
        )


class Discovery(BaseModel):
    new: list[InputFile]
    skipped: list[InputFile]
    """Stream files already done (same content, any name), or repeated within this run."""
    songs: list[InputFile]
    users: list[InputFile]
    pending: list[InputFile] = Field(default_factory=list)
    """Landing files left for a later run (`waiting` says why): still being written."""
    unusable: list[InputFile] = Field(default_factory=list)
    """Landing files that cannot be read (`problem`): rejected."""

    @property
    def nothing_to_do(self) -> bool:
        return not self.new and not self.skipped and not self.unusable


class StagedPart(BaseModel):
    """The clean events of one accepted stream file on one date, staged by validate as
    `staging/<run-id>/events/date=D/<fingerprint>.parquet` for transform to move into place."""

    file: str
    date: dt.date
    rows: int


class Validation(BaseModel):
    status: ValidationStatus
    reason: str | None = None
    files: list[FileOutcome]
    bad_rows: dict[str, str] = Field(default_factory=dict)
    """Dataset -> bad rows file written."""
    parts: list[StagedPart] = Field(default_factory=list)
    """The event parts of the accepted stream files, staged by validate (a dry run lists them and
    writes nothing)."""

    def accepted(self, dataset: str = "streams") -> list[FileOutcome]:
        return [f for f in self.files if f.dataset == dataset and f.status == FileStatus.ACCEPTED]


class TransformResult(BaseModel):
    dates: list[dt.date]
    events: int
    files: dict[str, list[str]] = Field(default_factory=dict)
    """Source file name -> event files written."""


class KpiResult(BaseModel):
    dates: list[dt.date]
    rows: dict[str, int]


class LoadResult(BaseModel):
    dates: list[dt.date]
    rows: dict[str, int]


class ArchiveResult(BaseModel):
    moved: dict[str, str]
    """Source path -> archived path."""
    changed: list[str] = Field(default_factory=list)
    """Stream files that changed after the run read them: withdrawn, left in the landing zone."""


class ReplayFile(BaseModel):
    """What `replay` did with one bad-rows file."""

    path: str
    rows: int
    """Quarantined rows it held."""
    replayed: int
    """Rows that passed every rule now: events since."""
    still_bad: int
    rules: dict[str, int] = Field(default_factory=dict)
    """Rule -> rows still bad by it (a row may fail several)."""
    dates: list[dt.date] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    """Event files written."""


class ReplayResult(BaseModel):
    """What `replay` did with the quarantine: the sums of its files."""

    replayed: int = 0
    still_bad: int = 0
    rules: dict[str, int] = Field(default_factory=dict)
    dates: list[dt.date] = Field(default_factory=list)
    """Dates that gained events (their KPIs are recomputed)."""
    files: list[ReplayFile] = Field(default_factory=list)
    refused: dict[str, str] = Field(default_factory=dict)
    """Bad-rows files that could not be replayed (edited by hand, empty) -> why: left as they are."""
    ignored: list[str] = Field(default_factory=list)
    """Bad-rows files of runs that did not succeed (killed or failed after validate): not replayed,
    their files are quarantined anew by the run that takes them."""


class RunReport(BaseModel):
    """The run report: printed by `--json`, written to `_playcount/runs/<run-id>.json`."""

    run_id: str
    status: RunStatus
    reason: str | None = None
    kind: Literal["run", "rebuild", "replay"] = "run"
    """What ran: a pipeline run, a `rebuild` of KPI dates from the processed events, or a `replay`
    of the quarantined stream rows."""
    root: str
    run_date: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    files: list[FileOutcome] = Field(default_factory=list)
    dates: list[dt.date] = Field(default_factory=list)
    kpi_rows: dict[str, int] = Field(default_factory=dict)
    bad_rows: dict[str, str] = Field(default_factory=dict)
    archived: dict[str, str] = Field(default_factory=dict)
    stages: dict[str, float] = Field(default_factory=dict)
    """Stage -> seconds."""
    replay: ReplayResult | None = None
    """What a `replay` did (kind `replay` only)."""

    def summary(self) -> dict[str, object]:
        streams = [f for f in self.files if f.dataset == "streams"]
        return {
            "status": self.status,
            "reason": self.reason,
            "stream_files": len(streams),
            "rows_in": sum(f.rows for f in streams),
            "clean": sum(f.clean for f in streams),
            "bad": sum(f.bad for f in streams),
            "rejected_files": [f.name for f in self.files if f.status == FileStatus.REJECTED],
            "skipped_files": [f.name for f in self.files if f.status == FileStatus.SKIPPED],
            "pending_files": [f.name for f in self.files if f.status == FileStatus.PENDING],
            "dates": [d.isoformat() for d in self.dates],
            "kpi_rows": self.kpi_rows,
            **(
                {
                    "replayed": self.replay.replayed,
                    "still_bad": self.replay.still_bad,
                    "still_bad_by_rule": self.replay.rules,
                }
                if self.replay is not None
                else {}
            ),
        }
