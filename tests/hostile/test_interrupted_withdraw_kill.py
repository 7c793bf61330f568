"""A kill inside _withdraw after the journal is written, before the events are deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import STREAMS_HEADER, kpis, run_json, tiny_lake, write
from playcount import pipeline
from playcount.lake import LocalStorage
from playcount.settings import load_settings


class _Killed(BaseException):
    pass


def total(root: Path) -> int:
    return sum(r["total_streams"] for r in kpis(root)["genre_kpis"])


@pytest.mark.parametrize("where", ["journal", "delete"])
def test_kill_in_withdraw_double_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    from playcount.pipeline import stages

    monkeypatch.setenv("PLAYCOUNT_MAX_BAD_ROW_RATIO", "0.9")
    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n", "b.csv": "1,T2,2024-06-26 10:00:00\n"})
    target = root / "raw_data/streams/b.csv"

    def grow(at: str) -> None:
        if at == "load":  # the writer appends a row to b.csv before it is archived
            write(target, f"{STREAMS_HEADER}\n2,T3,2024-06-26 11:00:00\n")  # rewritten
            os.utime(target, (time.time() + 5, time.time() + 5))

    real_delete = LocalStorage.delete
    real_set = stages._set_journal

    def delete(self: Any, path: str) -> None:
        if where == "delete" and path.startswith("processed_data/streams/"):
            raise _Killed(path)
        real_delete(self, path)

    def set_stale(run: Any, dates: Any, events: Any = ()) -> None:
        if where == "journal":
            raise _Killed("before the journal")  # after run.save('validate') marked b pending
        real_set(run, dates, events)

    with monkeypatch.context() as m:
        m.setattr(LocalStorage, "delete", delete)
        m.setattr(stages, "_set_journal", set_stale)
        with pytest.raises(_Killed):
            pipeline.run_pipeline(pipeline.open_run(load_settings(root=str(root))), after_stage=grow)
    code, report = run_json(root)
    print("exit", code, "events files:", sorted(p.name for p in (root / "processed_data/streams").rglob("*.parquet")))
    # final content: a.csv 1 row, b.csv 1 row => 2 streams
    print("total_streams", total(root), "expected 2")
    assert total(root) == 2
