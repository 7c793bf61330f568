"""The run history: the run reports under `_playcount/runs/`, newest first."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from playcount.errors import PlaycountError
from playcount.lake import Storage
from playcount.report.record import RunRecord, report_path

__all__ = ["RunSummary", "history", "load_record", "RUNS"]

log = logging.getLogger("playcount.report")

RUNS = "_playcount/runs"


@dataclass(frozen=True)
class RunSummary:
    """One line of `playcount runs`."""

    run_id: str
    status: str
    started_at: str
    duration: float | None
    files: int
    events: int
    bad_rows: int
    rejected_files: int
    report: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ids(storage: Storage) -> list[str]:
    names = [f.name for f in storage.list(RUNS) if f.name.endswith(".json")]
    # run ids start with their start time (`YYYYMMDDTHHMMSSZ-...`): name order is time order
    return sorted((n[: -len(".json")] for n in names), reverse=True)


def load_record(storage: Storage, run_id: str | None = None) -> RunRecord:
    """The report of run `run_id`, or of the newest run."""
    if run_id is None:
        ids = _ids(storage)
        if not ids:
            raise PlaycountError(f"no run report under `{storage.uri(RUNS)}`", fix="run `playcount run` first")
        run_id = ids[0]
    path = f"{RUNS}/{run_id}.json"
    if "/" in run_id or not storage.exists(path):
        raise PlaycountError(
            f"no run `{run_id}` in `{storage.root}`", fix="`playcount runs` lists the runs of this root"
        )
    return RunRecord.model_validate_json(storage.read_bytes(path))


def history(storage: Storage, limit: int | None = 20) -> list[RunSummary]:
    """The newest `limit` runs (all with None), newest first. An unreadable report is skipped."""
    out: list[RunSummary] = []
    for run_id in _ids(storage)[: limit if limit is not None else None]:
        try:
            r = load_record(storage, run_id)
        except Exception as e:  # noqa: BLE001 - one broken report must not hide the others
            log.warning("skipping the run report of `%s`: %s", run_id, e)
            continue
        out.append(
            RunSummary(
                run_id=r.run_id,
                status=r.status,
                started_at=f"{r.started_at:%Y-%m-%d %H:%M:%S}",
                duration=r.duration,
                files=len(r.files),
                events=r.events,
                bad_rows=r.quarantined,
                rejected_files=r.count("rejected"),
                report=storage.uri(report_path(r.run_id)),
            )
        )
    return out
