"""Helpers of the spark tier: a run's observable outcome, the real lab data's landing zone."""

from __future__ import annotations

import collections
import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import kpis

RUN_DATE = "2024-06-27"


@dataclass(frozen=True)
class Outcome:
    """A run's observable result: report, KPI tables, quarantined rows."""

    root: Path
    report: dict[str, Any]
    kpis: dict[str, list[dict[str, Any]]]
    bad_rows: dict[str, list[dict[str, str]]]

    def files(self) -> list[dict[str, Any]]:
        """Per-file outcomes without what depends on the root (`path`)."""
        keep = ("dataset", "name", "fingerprint", "rows", "clean", "bad", "status", "reason", "rules", "warnings")
        return sorted(({k: f[k] for k in keep} for f in self.report["files"]), key=lambda f: (f["dataset"], f["name"]))


def outcome(root: Path, report: dict[str, Any]) -> Outcome:
    bad = {}
    for dataset, path in report["bad_rows"].items():
        with (root / path).open(newline="", encoding="utf-8") as f:
            bad[dataset] = list(csv.DictReader(f))
    return Outcome(root, report, kpis(root), bad)


def rules_fired(o: Outcome) -> collections.Counter[str]:
    fired: collections.Counter[str] = collections.Counter()
    for f in o.report["files"]:
        fired.update(f["rules"])
    return fired


def lab_root(tmp: Path, lab: Path) -> Path:
    """The real lab files in a fresh landing zone, with a covering songs file."""
    from playcount.generate import cover_streams

    (tmp / "raw_data/users").mkdir(parents=True)
    shutil.copy(lab / "users.csv", tmp / "raw_data/users/users.csv")
    (tmp / "raw_data/streams").mkdir(parents=True)
    for f in sorted(lab.glob("streams*.csv")):
        shutil.copy(f, tmp / "raw_data/streams" / f.name)
    cover_streams(tmp / "raw_data/streams", tmp / "raw_data/songs/songs.csv")
    return tmp
