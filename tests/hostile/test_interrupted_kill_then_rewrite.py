"""A run killed after load (before archive); the landing file is then corrected; the next run."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import STREAMS_HEADER, kpis, run_json, tiny_lake, write
from playcount import pipeline
from playcount.settings import load_settings


class _Killed(BaseException):
    pass


def test_kill_after_load_then_corrected_file(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path / "lake", {"b.csv": "1,T2,2024-06-26 10:00:00\n"})

    def kill(at: str) -> None:
        if at == "load":
            raise _Killed(at)

    with pytest.raises(_Killed):
        pipeline.run_pipeline(pipeline.open_run(load_settings(root=str(root))), after_stage=kill)
    write(root / "raw_data/streams/b.csv", f"{STREAMS_HEADER}\n2,T3,2024-06-26 11:00:00\n")  # corrected
    code, _ = run_json(root)
    total = sum(r["total_streams"] for r in kpis(root)["genre_kpis"])
    print(
        "exit",
        code,
        "total_streams",
        total,
        "expected 1",
        sorted(p.name for p in (root / "processed_data/streams").rglob("*.parquet")),
    )
    assert total == 1
