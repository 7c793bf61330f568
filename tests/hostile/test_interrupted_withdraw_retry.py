"""Steps run one by one (as Airflow/Glue do); the archive step's withdraw hits a transient storage
error while deleting the changed file's events; the archive step is retried (Airflow retries)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import STREAMS_HEADER, kpis, run_json, tiny_lake, write
from playcount import pipeline
from playcount.errors import StorageError
from playcount.lake import LocalStorage
from playcount.settings import load_settings


def test_archive_retry_after_failed_withdraw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYCOUNT_MAX_BAD_ROW_RATIO", "0.9")
    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n", "b.csv": "1,T2,2024-06-26 10:00:00\n"})
    settings = load_settings(root=str(root))
    run = pipeline.open_run(settings)
    for step in ("validate", "transform", "load"):
        pipeline.run_step(pipeline.open_run(settings, run_id=run.run_id), step)
    write(root / "raw_data/streams/b.csv", f"{STREAMS_HEADER}\n2,T3,2024-06-26 11:00:00\n")  # rewritten
    os.utime(root / "raw_data/streams/b.csv", (time.time() + 5, time.time() + 5))
    real = LocalStorage.delete

    def flaky(self: Any, path: str) -> None:
        if path.startswith("processed_data/streams/"):
            raise StorageError(f"transient: could not delete `{path}`")
        real(self, path)

    with monkeypatch.context() as m:
        m.setattr(LocalStorage, "delete", flaky)
        with pytest.raises(StorageError):
            pipeline.run_step(pipeline.open_run(settings, run_id=run.run_id), "archive")
    pipeline.run_step(pipeline.open_run(settings, run_id=run.run_id), "archive")  # the retry
    pipeline.run_step(pipeline.open_run(settings, run_id=run.run_id), "finish")
    code, _ = run_json(root)  # the next run takes the final b.csv
    total = sum(r["total_streams"] for r in kpis(root)["genre_kpis"])
    print("exit", code, "total_streams", total, "expected 2")
    assert total == 2
