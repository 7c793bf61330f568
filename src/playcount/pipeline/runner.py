"""The one stage sequencer: the CLI (`run_pipeline`), the Airflow tasks and the Glue jobs all run
the stages through `run_step`, so which stages a step runs, when a stage is skipped, how staging
is cleaned and how a failure is staged are decided here only.

A step is a list of stages (`STEPS`). Every stage stages its result under
`_playcount/staging/<run-id>/`, so a step can run in another process than the one before it (an
Airflow task, a Glue job) and be retried on its own. `run_pipeline` runs every step in one
process under one lock.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from playcount import kpis as kpi
from playcount.errors import MissingStoreError, PlaycountError
from playcount.pipeline.discover import _require_root, discover
from playcount.pipeline.replay import replay_quarantine
from playcount.pipeline.results import (
    Discovery,
    FileOutcome,
    FileStatus,
    ReplayResult,
    RunReport,
    RunStatus,
    TransformResult,
    Validation,
    ValidationStatus,
)
from playcount.pipeline.run import Run, _lock, check_writable, clear_stale_staging
from playcount.pipeline.stages import (
    archive,
    compute_kpis,
    drop_staging,
    finish,
    load,
    recompute_stale,
    staged_report,
    transform,
    withdraw_orphans,
)
from playcount.pipeline.validate import validate

__all__ = [
    "STAGES",
    "STEPS",
    "Step",
    "StepFailure",
    "run_step",
    "run_steps",
    "run_pipeline",
    "rebuild",
    "replay",
    "failure_reason",
]

log = logging.getLogger("playcount")

Step = Literal["validate", "transform", "load", "archive", "finish", "rebuild", "replay"]
STEPS: dict[Step, tuple[str, ...]] = {
    "validate": ("discover", "validate"),
    "transform": ("transform", "kpis"),
    "load": ("load",),
    "archive": ("archive",),
    "finish": ("finish",),
    "rebuild": ("kpis", "load"),
    "replay": ("intake", "replay", "kpis", "load"),
}
"""The steps of a run, in order, and the stages each runs: one Airflow task or Glue job each (the
Glue load job runs load, archive and finish when it finishes the run); `rebuild` runs the kpis
and load stages alone, for the dates it is given; `replay` takes in the reference files
(`intake`: discover and validate them alone), replays the quarantine, then kpis and load for the
dates that gained events."""
STAGES = tuple(stage for step, stages in STEPS.items() if step not in ("rebuild", "replay") for stage in stages)


class StepFailure(BaseModel):
    """Why a step of the run failed: staged as `failed-<step>` for whoever reports the run."""

    step: str
    reason: str
    transient: bool


def failure_reason(e: BaseException) -> str:
    """The reason a run report gives for an error: a terminal playcount error's own message (it
    says what to fix first); anything else, with the promise that a re-run is safe."""
    if isinstance(e, PlaycountError) and not e.transient:
        return str(e)
    return f"unexpected error: {e} (safe to re-run)" if not isinstance(e, PlaycountError) else f"{e} (safe to re-run)"


def _record_seconds(run: Run, stage: str, seconds: float) -> None:
    """Stage -> seconds, staged, so that a report built in another process shows them too."""
    path = run.staging("stages.json")
    timings = json.loads(run.storage.read_bytes(path)) if run.storage.exists(path) else {}
    timings[stage] = round(seconds, 3)
    run.storage.write_bytes(path, json.dumps(timings).encode())


def _validation(run: Run) -> Validation | None:
    return run.load("validate", Validation) if run.staged("validate") else None


def _passed(run: Run) -> bool:
    val = _validation(run)
    return val is not None and val.status == ValidationStatus.PASSED


def _landing(d: Discovery) -> set[str]:
    """The fingerprints of every file in the landing zone now."""
    return {f.fingerprint for f in (*d.new, *d.skipped, *d.pending, *d.unusable, *d.songs, *d.users)}


def _stage(run: Run, stage: str, *, status: RunStatus | None, reason: str | None) -> bool:
    """Run one stage; False when the run has nothing more to do after it (nothing new)."""
    if stage == "discover":
        check_writable(run)  # before anything is written: staging, reports, moves
        clear_stale_staging(run)
        d = discover(run)
        run.save("discover", d)
        withdraw_orphans(run, _landing(d))
        if d.nothing_to_do:
            # a validation with nothing in it: the later steps of a run in separate processes
            # (Airflow, Glue) then do nothing, and its report says nothing_to_do
            pending = [FileOutcome.of(f, FileStatus.PENDING, f.waiting) for f in d.pending]
            run.save("validate", Validation(status=ValidationStatus.PASSED, files=pending))
            recompute_stale(run)  # a withdraw cut short: its dates do not wait for a new file
            return False
    elif stage == "validate":
        validate(run, run.load("discover", Discovery))
    elif stage == "intake":
        check_writable(run)
        clear_stale_staging(run)
        d = discover(run)
        withdraw_orphans(
            run, {f.fingerprint for f in (*d.new, *d.skipped, *d.pending, *d.unusable, *d.songs, *d.users)}
        )
        reference = Discovery(
            new=[],
            skipped=[],
            songs=d.songs,
            users=d.users,
            pending=[f for f in d.pending if f.dataset != "streams"],
            unusable=[f for f in d.unusable if f.dataset != "streams"],
        )
        validate(run, reference)  # not staged as `discover`: that would make it a run with nothing to do
    elif stage == "replay":
        if _passed(run):
            replay_quarantine(run)
    elif stage == "transform":
        if _passed(run):
            transform(run)
    elif stage == "kpis":
        if _passed(run):
            compute_kpis(run)
    elif stage == "load":
        if _passed(run):
            load(run)
    elif stage == "archive":
        if _passed(run):
            archive(run)
    elif stage == "finish":
        if not run.staged("validate") and run.storage.exists(run.layout.run_report(run.run_id)):
            log.info("run %s: finished already (a retried finish step)", run.run_id)
        else:
            finish(run, staged_report(run, status or RunStatus.SUCCEEDED, reason))
    else:
        raise ValueError(f"unknown stage `{stage}`")
    return True


def _run_stages(
    run: Run, step: Step, hook: Callable[[str], None], *, status: RunStatus | None = None, reason: str | None = None
) -> bool:
    """The stages of `step` (no lock taken); a failure is staged as `failed-<step>` and raised."""
    try:
        for stage in STEPS[step]:
            if step in ("transform", "load", "archive") and not run.staged("validate"):
                raise PlaycountError(
                    f"run `{run.run_id}` has no validation result, so its {step} step cannot run",
                    fix="run its validate step first",
                )
            started = time.perf_counter()
            run.progress(stage, "started")
            going = _stage(run, stage, status=status, reason=reason)
            if stage != "finish":  # finish wrote the report and dropped the staging
                _record_seconds(run, stage, time.perf_counter() - started)
            hook(stage)
            if not going:
                return False
        return True
    except Exception as e:
        transient = not isinstance(e, PlaycountError) or e.transient
        try:
            run.save(f"failed-{step}", StepFailure(step=step, reason=failure_reason(e), transient=transient))
        except Exception:  # noqa: BLE001 - the lake itself may be what failed
            log.warning("run %s: could not stage the failure of its %s step", run.run_id, step, exc_info=True)
        raise


def run_step(run: Run, step: Step, *, status: RunStatus | None = None, reason: str | None = None) -> bool:
    """Run one step of `run` under the root's lock (an Airflow task, a Glue job). Returns False
    when the run has nothing more to do (the validate step found nothing new).

    `status`/`reason` are for the finish step of a run that failed elsewhere (the report says so).
    """
    return run_steps(run, [step], status=status, reason=reason)


def run_steps(run: Run, steps: list[Step], *, status: RunStatus | None = None, reason: str | None = None) -> bool:
    """`run_step` of several steps under one hold of the lock (the Glue load job that finishes the
    run: no other run can start between its load, archive and finish). Stops after a step that
    leaves nothing more to do."""
    _require_root(run)
    with _lock(run):
        return all(_run_stages(run, step, lambda stage: None, status=status, reason=reason) for step in steps)


def run_pipeline(
    run: Run, *, after_stage: Callable[[str], None] | None = None, quiet_when_idle: bool = False
) -> RunReport:
    """Every step in this process under the root's lock. Returns the report (status failed on
    failed validation); re-raises an unexpected error after reporting it (the run is safe to
    re-run).

    `after_stage` is called after each stage (tests use it to simulate a crash there).
    `quiet_when_idle` (`watch`): a run with nothing to do leaves no report and sends nothing.
    """
    hook = after_stage or (lambda stage: None)
    _require_root(run)
    with _lock(run):
        try:
            if not _run_stages(run, "validate", hook):
                report = staged_report(run)
                if quiet_when_idle:
                    log.debug("run %s: nothing to do", run.run_id)
                    drop_staging(run)
                    return report
                return finish(run, report)
            for step in ("transform", "load", "archive"):
                _run_stages(run, step, hook)
            report = staged_report(run)
            finish(run, report)
            hook("finish")
            return report
        except Exception as e:
            log.exception("run %s failed", run.run_id)
            finish(run, staged_report(run, RunStatus.FAILED, failure_reason(e)))
            raise


def _all_dates(run: Run) -> list[dt.date]:
    """Every date with events in the lake, and every date the KPI store holds rows of (a date whose
    events are gone is rebuilt as empty: its rows leave the store)."""
    dates: set[dt.date] = set()
    for f in run.storage.list(run.layout.events_root):
        part = f.path.split("/")[2] if f.path.count("/") >= 3 else ""
        if part.startswith("date=") and f.name.endswith(".parquet"):
            dates.add(dt.date.fromisoformat(part.removeprefix("date=")))
    for table in kpi.KPI_TABLES:
        try:
            rows = run.store.read(table)
        except MissingStoreError:  # no store yet (lost, or new): no dates; the load writes it (or says why not)
            log.info("rebuild %s: the KPI store holds no %s yet", run.run_id, table)
            continue
        dates.update(d for d in rows.column("date").to_pylist() if d is not None)
    return sorted(dates)


def rebuild(
    run: Run, dates: list[dt.date] | None = None, *, after_stage: Callable[[str], None] | None = None
) -> RunReport:
    """Recompute the KPI tables of `dates` (default: every date, `_all_dates`) from the processed
    events and the current songs, and replace them in the KPI store, under the root's lock: the
    kpis and load stages of a run, so as crash-safe as theirs (a rebuild killed at any point and
    run again gives the same store). For a lost or a new store, or after a catalogue change."""
    hook = after_stage or (lambda stage: None)
    _require_root(run)
    with _lock(run):
        try:
            wanted = sorted(set(dates)) if dates is not None else _all_dates(run)
            run.save("validate", Validation(status=ValidationStatus.PASSED, files=[]))
            run.save("transform", TransformResult(dates=wanted, events=0))
            _run_stages(run, "rebuild", hook)
            report = staged_report(run)
            report.kind = "rebuild"
            finish(run, report)
            return report
        except Exception as e:
            log.exception("rebuild %s failed", run.run_id)
            report = staged_report(run, RunStatus.FAILED, failure_reason(e))
            report.kind = "rebuild"
            finish(run, report)
            raise


def replay(run: Run, *, after_stage: Callable[[str], None] | None = None) -> RunReport:
    """Take in the landing zone's reference files, then replay the quarantined stream rows against
    the dimensions (`pipeline.replay`), recompute the KPIs of the dates that gained events and
    load them; under the root's lock, like a run. The report's `replay` says how many rows were
    replayed, how many are still bad and by which rule."""
    hook = after_stage or (lambda stage: None)
    _require_root(run)
    with _lock(run):
        try:
            _run_stages(run, "replay", hook)
            report = _replay_report(run, staged_report(run))
            finish(run, report)
            return report
        except Exception as e:
            log.exception("replay %s failed", run.run_id)
            report = _replay_report(run, staged_report(run, RunStatus.FAILED, failure_reason(e)))
            finish(run, report)
            raise


def _replay_report(run: Run, report: RunReport) -> RunReport:
    report.kind = "replay"
    if run.staged("replay"):
        report.replay = run.load("replay", ReplayResult)
    return report
