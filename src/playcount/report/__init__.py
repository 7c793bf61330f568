"""The run's HTML page and the run history (`playcount report`, `playcount runs`).

`write_report` draws a run's page from its JSON report, the lake and the KPI store, and writes
it to `_playcount/reports/<run-id>.html` and `latest.html` through the lake's storage.
`pipeline.finish` calls `write_report_safely`: a page that cannot be drawn is logged and the
run's outcome stands.
"""

from __future__ import annotations

import logging
import time

from playcount.lake import Storage
from playcount.report.data import ReportData, build
from playcount.report.history import RunSummary, history, load_record
from playcount.report.page import render
from playcount.report.record import LATEST, REPORTS, FileRecord, RunRecord, report_path
from playcount.stores import KpiStore

__all__ = [
    "RunRecord",
    "FileRecord",
    "ReportData",
    "RunSummary",
    "build",
    "render",
    "render_run",
    "write_report",
    "write_report_safely",
    "write_record",
    "history",
    "load_record",
    "report_path",
    "REPORTS",
    "LATEST",
]

log = logging.getLogger("playcount.report")


def render_run(record: RunRecord, storage: Storage, store: KpiStore | None) -> str:
    """The page of run `record`, as HTML."""
    return render(build(record, storage, store))


def write_report(storage: Storage, store: KpiStore | None, report_json: bytes, *, latest: bool | None = None) -> str:
    """Draw the page of the run whose JSON report is `report_json`; write it to the lake, and to
    `latest.html` when `latest` (default: when the run found work, so that idle `watch` polls
    never hide the last run that did something). Returns the page's location (`storage.uri`)."""
    record = RunRecord.model_validate_json(report_json)
    return write_record(storage, store, record, latest=record.status != "nothing_to_do" if latest is None else latest)


def write_record(storage: Storage, store: KpiStore | None, record: RunRecord, *, latest: bool) -> str:
    """Draw run `record`'s page, write it (and `latest.html` when `latest`); return its location."""
    started = time.perf_counter()
    page = render_run(record, storage, store).encode("utf-8")
    path = report_path(record.run_id)
    storage.write_bytes(path, page)
    if latest:
        storage.write_bytes(LATEST, page)
    log.debug("run %s: report page in %.2fs", record.run_id, time.perf_counter() - started)
    return storage.uri(path)


def write_report_safely(storage: Storage, store: KpiStore | None, report_json: bytes) -> str | None:
    """`write_report`, logging (never raising) a failure: the run's outcome stands without its page."""
    try:
        return write_report(storage, store, report_json)
    except Exception as e:  # noqa: BLE001 - a page that cannot be drawn must not fail the run
        log.error("the HTML report could not be written: %s", e, exc_info=True)
        return None
