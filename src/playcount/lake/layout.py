"""Paths of SPEC §4, relative to the lake root."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["Layout", "DATASETS", "CSV_SUFFIXES"]

DATASETS = ("songs", "users", "streams")
CSV_SUFFIXES = (".csv", ".csv.gz")


@dataclass(frozen=True)
class Layout:
    """Where everything lives under one root. `streams_prefix` is configurable (SPEC §4)."""

    streams_prefix: str = "raw_data/streams"

    def landing(self, dataset: str) -> str:
        return self.streams_prefix if dataset == "streams" else f"raw_data/{dataset}"

    def dimension_dir(self, dataset: str) -> str:
        return f"processed_data/{dataset}"

    def dimension(self, dataset: str, version: int) -> str:
        """Version `version` of the merged `songs` or `users` dimension (SPEC §5): each write is a
        new file, the newest one is the dimension (`songs.parquet`, without a number, is version 0)."""
        return f"processed_data/{dataset}/{dataset}.v{version:06d}.parquet"

    def events(self, date: dt.date, fingerprint: str) -> str:
        return f"processed_data/streams/date={date.isoformat()}/{fingerprint}.parquet"

    events_root = "processed_data/streams"

    def events_dir(self, date: dt.date) -> str:
        return f"processed_data/streams/date={date.isoformat()}"

    def kpi(self, table: str, date: dt.date) -> str:
        return f"processed_data/{table}/date={date.isoformat()}/{table}.parquet"

    def bad_rows(self, dataset: str, run_id: str) -> str:
        return f"{self.bad_rows_dir(dataset)}/{run_id}.csv"

    def bad_rows_dir(self, dataset: str) -> str:
        return f"bad_rows/{dataset}"

    def rejected(self, run_id: str, name: str) -> str:
        return f"rejected/{run_id}/{name}"

    def archived(self, run_date: dt.date, name: str) -> str:
        return f"archived/{run_date.isoformat()}/{name}"

    ledger = "_playcount/ledger"
    runs = "_playcount/runs"
    lock = "_playcount/lock"
    notifications = "_playcount/notifications.jsonl"
    inflight = "_playcount/inflight"
    """One record per source file whose events are written but which is not done yet."""
    stale_dates = "_playcount/stale_dates.json"
    """Dates whose events changed without their KPIs being recomputed yet (a withdraw cut short)."""

    def run_report(self, run_id: str) -> str:
        return f"{self.runs}/{run_id}.json"
