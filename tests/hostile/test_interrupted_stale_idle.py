"""A withdraw killed before its dates are recomputed; the changed file is then taken away by its
writer: the next runs have nothing new, and the stale dates are never recomputed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import STREAMS_HEADER, kpis, run_json, tiny_lake, write
from playcount import pipeline
from playcount.settings import load_settings


class _Killed(BaseException):
    pass


def test_stale_dates_wait_for_new_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from playcount.pipeline import stages

    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n", "b.csv": "1,T2,2024-06-26 10:00:00\n"})
    target = root / "raw_data/streams/b.csv"

    def rewrite(at: str) -> None:
        if at == "load":
            write(target, f"{STREAMS_HEADER}\n1,T3,2024-06-27 10:00:00\n")
            os.utime(target, (time.time() + 5, time.time() + 5))

    def killed(run: Any) -> Any:
        raise _Killed()

    with monkeypatch.context() as m:
        m.setattr(stages, "compute_kpis", killed)
        with pytest.raises(_Killed):
            pipeline.run_pipeline(pipeline.open_run(load_settings(root=str(root))), after_stage=rewrite)
    target.unlink()  # the writer gave up on b.csv
    code, report = run_json(root)
    dates = sorted({str(r["date"]) for r in kpis(root)["genre_kpis"]})
    print(
        "exit",
        code,
        report["status"],
        "store dates",
        dates,
        "journal:",
        (root / "_playcount/stale_dates.json").exists(),
    )
    assert dates == ["2024-06-25"]
