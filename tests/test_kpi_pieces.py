"""The KPIs computed in pieces of dates (`stages._kpi_pieces`) equal those computed at once."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from helpers import cli, kpis, run_json
from playcount.lake import FileInfo
from playcount.pipeline import stages

D = dt.date(2024, 6, 25)


def test_pieces_are_runs_of_dates_within_the_bound_and_a_large_date_is_a_piece_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stages, "KPI_PIECE_BYTES", 100)

    def files(*sizes: int) -> list[FileInfo]:
        return [FileInfo(f"f{i}.parquet", s) for i, s in enumerate(sizes)]

    days = [D + dt.timedelta(days=i) for i in range(6)]
    listed = dict(zip(days, [files(40, 20), files(30), files(), files(250), files(60), files(50)], strict=True))
    assert stages._kpi_pieces(listed) == [days[0:3], days[3:4], days[4:5], days[5:6]]
    assert stages._kpi_pieces({}) == []


def _run(tmp_path: Path, src: Path, name: str, piece_bytes: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    root = tmp_path / name
    shutil.copytree(src, root)
    pieces: list[int] = []
    real = stages._kpi_pieces

    def spy(listed: dict[dt.date, list[FileInfo]]) -> list[list[dt.date]]:
        found = real(listed)
        pieces.append(len(found))
        return found

    with monkeypatch.context() as m:
        m.setattr(stages, "KPI_PIECE_BYTES", piece_bytes)
        m.setattr(stages, "_kpi_pieces", spy)
        code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded", report
    return kpis(root), report["kpi_rows"], pieces


def test_kpis_in_pieces_of_dates_equal_the_kpis_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    # 1% bad rows of every rule: duplicates within a file, repeats across files (same date)
    code, _, err = cli(
        "generate", "--out", str(src), "--streams", "20000", "--files", "3", "--days", "6", "--bad-ratio", "0.01"
    )
    assert code == 0, err
    once, rows_once, pieces_once = _run(tmp_path, src, "once", 2**40, monkeypatch)
    each, rows_each, pieces_each = _run(tmp_path, src, "each", 1, monkeypatch)
    some, rows_some, pieces_some = _run(tmp_path, src, "some", 3 * 10**5, monkeypatch)
    assert pieces_once == [1] and pieces_each == [6] and 1 < pieces_some[0] < 6, (pieces_some, rows_some)
    assert sum(len(v) for v in once.values()) > 0
    assert each == once and some == once
    assert rows_each == rows_once == rows_some
