"""A run with nothing new but a file still being written: the report should list it as pending."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import tiny_lake
from playcount import pipeline
from playcount.pipeline import runner
from playcount.pipeline.results import Discovery, InputFile
from playcount.settings import load_settings


def test_idle_run_lists_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tiny_lake(tmp_path / "lake", {})
    f = InputFile(
        dataset="streams",
        path="raw_data/streams/g.csv",
        name="g.csv",
        fingerprint="x",
        size=1,
        waiting="`g.csv` is still being written",
    )
    monkeypatch.setattr(runner, "discover", lambda run: Discovery(new=[], skipped=[], songs=[], users=[], pending=[f]))
    report = pipeline.run_pipeline(pipeline.open_run(load_settings(root=str(root))))
    print("status", report.status, "| reason", report.reason, "| files", [(o.name, o.status) for o in report.files])
    assert [o.name for o in report.files] == ["g.csv"]
