"""The one stage sequencer (`pipeline.run_step`) that the CLI, the Airflow tasks and the Glue jobs
share: steps in separate processes give the KPIs of one run, a failed step is staged and can be
resumed even after another run has started, and errors carry whether a re-run can help."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from helpers import kpis, run_json, tiny_lake
from playcount import pipeline
from playcount.errors import (
    ArchiveConflictError,
    LockedError,
    PlaycountError,
    SchemaError,
    SettingsError,
    StorageError,
    StoreError,
    is_transient,
)
from playcount.pipeline import runner
from playcount.settings import load_settings
from playcount.stores.duckdb import CorruptStoreError

A = "1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 11:00:00\n1,T3,2024-06-26 09:00:00\n"
B = "3,T1,2024-06-25 12:00:00\n"


def _open(root: Path, run_id: str | None = None) -> pipeline.Run:
    return pipeline.open_run(load_settings(root=str(root)), run_id=run_id)


def _steps(root: Path, run_id: str | None, *steps: pipeline.Step) -> str:
    """Each step in its own `Run`, as separate Airflow tasks or Glue jobs open the run by id."""
    for step in steps:
        run = _open(root, run_id)
        run_id = run.run_id
        pipeline.run_step(run, step)
        run.engine.close()
    assert run_id is not None
    return run_id


def test_steps_in_separate_processes_give_the_kpis_and_report_of_one_run(tmp_path: Path) -> None:
    one = tiny_lake(tmp_path / "one", {"a.csv": A, "b.csv": B})
    assert run_json(one)[0] == 0
    steps = tiny_lake(tmp_path / "steps", {"a.csv": A, "b.csv": B})
    run_id = _steps(steps, None, "validate")
    _steps(steps, run_id, "transform", "load", "archive", "finish")
    assert kpis(steps) == kpis(one)
    report = pipeline.RunReport.model_validate_json((steps / f"_playcount/runs/{run_id}.json").read_text())
    assert report.status == "succeeded"
    assert [f.status for f in report.files if f.dataset == "streams"] == ["accepted", "accepted"]
    assert report.dates == [dt.date(2024, 6, 25), dt.date(2024, 6, 26)]
    # every stage's seconds, though each ran in another `Run` (the report is built from staging)
    assert set(report.stages) == {"discover", "validate", "transform", "kpis", "load", "archive"}
    assert not [p for p in (steps / "_playcount/staging").rglob("*") if p.is_file()]


def test_a_failed_step_is_staged_and_resumes_after_another_run_has_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Airflow case: a DAG run fails at transform; the next DAG run starts (and finishes); then
    the failed task is cleared. The first run's staging is still there, it resumes, and the KPIs
    are those of one run: nothing counted twice."""
    baseline = tiny_lake(tmp_path / "baseline", {"a.csv": A})
    assert run_json(baseline)[0] == 0
    root = tiny_lake(tmp_path / "lake", {"a.csv": A})
    first = _steps(root, None, "validate")

    def broken(run: pipeline.Run) -> Any:
        raise StorageError("injected: cannot write the events")

    with monkeypatch.context() as m:
        m.setattr(runner, "transform", broken)
        with pytest.raises(StorageError):
            _steps(root, first, "transform")
    failure = _open(root, first).load("failed-transform", pipeline.StepFailure)
    assert failure.reason == "injected: cannot write the events (safe to re-run)" and failure.transient

    second = _steps(root, None, "validate")  # another DAG run starts: a run of its own
    assert second != first
    assert (root / "_playcount/staging" / first / "validate.json").exists()  # not cleared by it
    _steps(root, second, "transform", "load", "archive", "finish")
    assert kpis(root) == kpis(baseline)

    _steps(root, first, "transform", "load", "archive", "finish")  # the failed task, cleared
    assert kpis(root) == kpis(baseline)
    assert sorted(p.name for p in (root / "archived").rglob("*.csv")) == ["a.csv"]


def test_steps_after_a_failed_validation_do_nothing_and_finish_reports_it(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": A})
    (root / "raw_data/users/users.csv").unlink()
    run_id = _steps(root, None, "validate", "transform", "load", "archive", "finish")
    report = pipeline.RunReport.model_validate_json((root / f"_playcount/runs/{run_id}.json").read_text())
    assert report.status == "failed" and "no users file" in str(report.reason)
    assert not (root / "processed_data/streams").exists()
    assert (root / "raw_data/streams/a.csv").exists()


def test_a_step_without_its_validation_is_a_named_error(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": A})
    run = _open(root)
    with pytest.raises(PlaycountError, match="has no validation result"):
        pipeline.run_step(run, "load")


def test_a_run_with_nothing_to_do_in_steps_reports_nothing_to_do(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {})
    (root / "raw_data/streams").mkdir(parents=True)
    run_id = _steps(root, None, "validate", "transform", "load", "archive", "finish")
    report = pipeline.RunReport.model_validate_json((root / f"_playcount/runs/{run_id}.json").read_text())
    assert report.status == "nothing_to_do"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (LockedError("held"), True),
        (StoreError("throttled"), True),
        (StorageError("timeout"), True),
        (ArchiveConflictError("a different file is there"), False),
        (CorruptStoreError("not a database"), False),
        (SettingsError("bad key"), False),
        (SchemaError("no header"), False),
        (PlaycountError("anything named"), False),
        (RuntimeError("a bug"), True),
    ],
)
def test_errors_say_whether_a_rerun_can_help(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
    reason = runner.failure_reason(error)
    assert reason.endswith("(safe to re-run)") is transient


def test_a_store_that_fails_once_fails_the_run_safely_and_the_next_run_loads(tmp_path: Path) -> None:
    """`store.type = "memory"` with `fail_first`: the store the settings select, failing on purpose."""
    baseline = tiny_lake(tmp_path / "baseline", {"a.csv": A})
    assert run_json(baseline)[0] == 0
    root = tiny_lake(tmp_path / "lake", {"a.csv": A})
    failing = pipeline.open_run(load_settings(root=str(root), store={"type": "memory", "fail_first": 1}))
    with pytest.raises(StoreError, match="injected store failure"):
        pipeline.run_pipeline(failing)
    report = pipeline.RunReport.model_validate_json((root / f"_playcount/runs/{failing.run_id}.json").read_text())
    assert report.status == "failed" and str(report.reason).endswith("(safe to re-run)")
    assert (root / "raw_data/streams/a.csv").exists() and not (root / "_playcount/ledger").exists()

    again = pipeline.open_run(load_settings(root=str(root), store={"type": "memory"}))
    assert pipeline.run_pipeline(again).status == "succeeded"
    expected = kpis(baseline)
    for table, rows in expected.items():
        got = again.store.read(table).to_pylist()
        assert [{k: str(v) for k, v in r.items()} for r in got] == [{k: str(v) for k, v in r.items()} for r in rows]
