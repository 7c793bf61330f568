"""Stream files checked in batches that fit the memory limit (`validate.batches`) give the run a
run of all files at once gives: outcomes, bad rows, events, KPIs."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from helpers import cli, csv_rows, kpis, run_json, write
from playcount import pipeline
from playcount.engine import DuckDBEngine
from playcount.engine import duckdb as duckdb_engine
from playcount.pipeline.results import InputFile
from playcount.settings import load_settings

HEADER = "user_id,track_id,listen_time"
# the module (`playcount.pipeline.validate` is also the name of its stage function)
validate_module = importlib.import_module("playcount.pipeline.validate")


def _file(name: str, size: int) -> InputFile:
    return InputFile(dataset="streams", path=f"raw_data/streams/{name}", name=name, fingerprint=name, size=size)


def test_batches_cut_the_files_in_order_within_the_budget_and_a_larger_file_is_a_batch_alone() -> None:
    files = [_file("a.csv", 40), _file("b.csv", 50), _file("c.csv", 20), _file("d.csv", 150), _file("e.csv", 10)]
    got = [[f.name for f in b] for b in validate_module.batches(files, 100)]
    assert got == [["a.csv", "b.csv"], ["c.csv"], ["d.csv"], ["e.csv"]]
    # a gzip file counts five times its size: 15 bytes of gzip are about 75 of text
    gz = [_file("a.csv", 30), _file("b.csv.gz", 15), _file("c.csv", 10)]
    assert [[f.name for f in b] for b in validate_module.batches(gz, 100)] == [["a.csv"], ["b.csv.gz", "c.csv"]]
    assert validate_module.batches(files, None) == [files]
    assert validate_module.batches([], 100) == [[]]


def test_the_duckdb_batch_is_an_eighth_of_the_memory_limit() -> None:
    engine = DuckDBEngine(memory_limit="1GiB")
    assert engine.batch_bytes == 2**30 // 8
    engine.close()
    assert duckdb_engine._bytes("953.6 MiB") == int(953.6 * 2**20)
    assert duckdb_engine._bytes("100 bytes") == 100


def _lake(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    code, _, err = cli(
        "generate", "--out", str(src), "--streams", "6000", "--files", "4", "--days", "3", "--bad-ratio", "0.01"
    )
    assert code == 0, err
    streams = src / "raw_data/streams"
    # a file over the bad-row limit (rejected), one with a malformed row and extra columns
    write(streams / "noisy.csv", f"{HEADER}\n" + "x,T1,2024-06-25 10:00:00\n" * 5)
    good = next(iter(sorted(streams.glob("streams_*.csv")))).read_text().splitlines()[1:4]
    write(
        streams / "odd.csv",
        "listen_time,extra,track_id,user_id\n"
        + "".join(f"{t},e{i},{tr},{u}\n" for i, (u, tr, t) in enumerate(line.split(",") for line in good))
        + "2024-06-25 10:00:00,too,many,fields,here\n",
    )
    return src


def _outcome(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            f["name"],
            f["status"],
            f["rows"],
            f["clean"],
            f["bad"],
            sorted(f["rules"].items()),
            sorted(f["warnings"].items()),
        )
        for f in report["files"]
        if f["dataset"] == "streams"
    )


def _events(root: Path) -> list[tuple[Any, ...]]:
    rows = []
    for p in sorted((root / "processed_data/streams").rglob("*.parquet")):
        t = pq.read_table(p)
        rows += [tuple(r.values()) for r in t.to_pylist()]
    return sorted(rows, key=repr)


def _bad_rows(root: Path) -> list[dict[str, str]]:
    (path,) = (root / "bad_rows/streams").rglob("*.csv")
    return csv_rows(path)


def test_a_run_in_batches_of_one_file_equals_a_run_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYCOUNT_MAX_BAD_ROW_RATIO", "0.5")
    src = _lake(tmp_path)
    once, each = tmp_path / "once", tmp_path / "each"
    shutil.copytree(src, once)
    shutil.copytree(src, each)
    code, at_once = run_json(once)
    assert code == 0 and at_once["status"] == "succeeded", at_once

    seen: list[int] = []
    dropped: list[int] = []
    real_batches, real_drop = validate_module.batches, DuckDBEngine.drop

    def spy(files: list[InputFile], budget: int | None) -> list[list[InputFile]]:
        found = real_batches(files, budget)
        seen.append(len(found))
        return found

    def drop(self: DuckDBEngine, tables: list[Any]) -> None:
        dropped.append(len(tables))
        real_drop(self, tables)
        names = [t.op().name for t in tables]
        left = self.db.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        assert not set(names) & {n for (n,) in left}  # gone, not only asked to go

    monkeypatch.setattr(duckdb_engine, "BATCH_SHARE", 2**62)  # a budget of 0 bytes: every file alone
    monkeypatch.setattr(validate_module, "batches", spy)
    monkeypatch.setattr(DuckDBEngine, "drop", drop)
    code, in_batches = run_json(each)
    assert code == 0 and in_batches["status"] == "succeeded", in_batches

    assert seen == [6]  # 4 generated files, noisy.csv, odd.csv
    assert len(dropped) == 6 and all(n >= 1 for n in dropped)  # each batch's checked tables
    assert _outcome(in_batches) == _outcome(at_once)
    statuses = {f["name"]: f["status"] for f in in_batches["files"]}
    assert statuses["noisy.csv"] == "rejected" and statuses["odd.csv"] == "accepted"
    assert _bad_rows(each) == _bad_rows(once)
    assert any(r["_source_file"] == "odd.csv" and r["_reasons"] for r in _bad_rows(each))
    assert _events(each) == _events(once) and len(_events(each)) > 5000
    assert kpis(each) == kpis(once)


def _run_once_and_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """The lake (`_lake`), a copy run at once (`once`), and a fresh copy to run step by step."""
    monkeypatch.setenv("PLAYCOUNT_MAX_BAD_ROW_RATIO", "0.5")
    src = _lake(tmp_path)
    once, split = tmp_path / "once", tmp_path / "split"
    shutil.copytree(src, once)
    shutil.copytree(src, split)
    assert run_json(once)[0] == 0
    return src, once, split


def test_split_steps_stage_the_events_per_file_and_date_and_a_retried_validate_replaces_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, once, split = _run_once_and_copy(tmp_path, monkeypatch)

    monkeypatch.setattr(duckdb_engine, "BATCH_SHARE", 2**62)
    run = pipeline.open_run(load_settings(root=str(split)))
    stale = split / run.staging("events/date=2024-01-01/0123456789abcdef.parquet")  # an earlier attempt's
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"not parquet")
    assert pipeline.run_step(run, "validate")
    val = run.load("validate", pipeline.Validation)
    accepted = {o.name: o.fingerprint for o in val.accepted()}
    assert sorted(accepted) == ["odd.csv", "streams_001.csv", "streams_002.csv", "streams_003.csv", "streams_004.csv"]
    # one part per (accepted file, date), named by the file's fingerprint; the stale one is gone
    staged = sorted(p.relative_to(split / run.staging("events")) for p in (split / run.staging("events")).rglob("*"))
    staged = [p for p in staged if p.suffix == ".parquet"]
    assert staged == sorted(Path(f"date={p.date}") / f"{accepted[p.file]}.parquet" for p in val.parts)
    assert {p.file for p in val.parts} == set(accepted)
    assert len({p.date for p in val.parts}) == 3  # generated over 3 dates
    assert not stale.exists()
    for p in val.parts:  # each part holds its file's events of its date, as counted
        t = pq.read_table(split / run.staging(f"events/date={p.date}/{accepted[p.file]}.parquet"))
        assert t.num_rows == p.rows
        assert set(t.column("_source_file").to_pylist()) == {p.file}
        assert {d.isoformat() for d in t.column("date").to_pylist()} == {p.date.isoformat()}
    assert sum(p.rows for p in val.parts) == len(_events(once))
    for step in ("transform", "load", "archive", "finish"):
        pipeline.run_step(run, step)  # type: ignore[arg-type]
    run.engine.close()
    assert _events(split) == _events(once)
    assert kpis(split) == kpis(once)


def test_a_retried_transform_moves_what_is_left_and_a_lost_staging_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playcount.errors import PlaycountError
    from playcount.lake import LocalStorage

    src, once, split = _run_once_and_copy(tmp_path, monkeypatch)

    run = pipeline.open_run(load_settings(root=str(split)))
    assert pipeline.run_step(run, "validate")
    moves = 0
    real_move = LocalStorage.move

    def killed_after_three(self: LocalStorage, a: str, b: str) -> None:
        nonlocal moves
        if moves == 3:
            raise OSError("killed")
        moves += 1
        real_move(self, a, b)

    monkeypatch.setattr(LocalStorage, "move", killed_after_three)
    with pytest.raises(OSError, match="killed"):
        pipeline.run_step(run, "transform")
    monkeypatch.setattr(LocalStorage, "move", real_move)
    inflight = sorted((split / "_playcount/inflight").glob("*.json"))
    assert len(inflight) == 5  # every accepted file's record came before its first event
    assert len(list((split / "processed_data/streams").rglob("*.parquet"))) == 3
    pipeline.run_step(run, "transform")  # the retry: three parts are in place, the others still staged
    assert not list((split / run.staging("events")).rglob("*.parquet"))
    for step in ("load", "archive", "finish"):
        pipeline.run_step(run, step)  # type: ignore[arg-type]
    run.engine.close()
    assert _events(split) == _events(once)
    assert kpis(split) == kpis(once)

    # a staging that is gone (neither staged nor in place) is an error that says what to do
    again = tmp_path / "again"
    shutil.copytree(src, again)
    run = pipeline.open_run(load_settings(root=str(again)))
    assert pipeline.run_step(run, "validate")
    shutil.rmtree(again / run.staging("events"))
    with pytest.raises(PlaycountError, match="staged events of .* are gone"):
        pipeline.run_step(run, "transform")
    run.engine.close()


def test_transform_refuses_a_validate_result_whose_staged_parts_do_not_add_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a validate result without parts (written by a version that staged the clean rows whole, or
    # edited): transform fails with the fix instead of moving nothing and letting archive take
    # the files as counted
    import json

    from playcount.errors import PlaycountError

    monkeypatch.setenv("PLAYCOUNT_MAX_BAD_ROW_RATIO", "0.5")
    lake = tmp_path / "lake"
    shutil.copytree(_lake(tmp_path), lake)
    run = pipeline.open_run(load_settings(root=str(lake)))
    assert pipeline.run_step(run, "validate")
    path = lake / run.staging("validate.json")
    result = json.loads(path.read_text())
    result["parts"] = [p for p in result["parts"] if p["file"] != "odd.csv"]
    path.write_text(json.dumps(result))
    with pytest.raises(PlaycountError, match=r"lists 0 staged events of `odd.csv`, which has 3 clean rows"):
        pipeline.run_step(run, "transform")
    assert not (lake / "processed_data/streams").exists()  # nothing moved, nothing half-counted
    run.engine.close()
