"""AWS Glue job entry points (or any Spark: EMR, spark-submit): the run as three Spark jobs.

| script | entry point | stages |
|---|---|---|
| `glue/validate_job.py` | `validate_job` | discover + validate |
| `glue/transform_job.py` | `transform_job` | transform + kpis |
| `glue/load_to_dynamodb.py` | `load_job` | load (+ archive + finish with `--finish-run true`) |

The jobs hand on nothing but the run id: every stage result is in the lake under
`_playcount/staging/<run-id>/`. Each job takes the SparkSession it runs in (Glue's), runs the
pure code on the Spark engine, and holds the root's run lock while it works.

Job arguments (those the Airflow DAG passes, `integrations.airflow.glue_arguments`):

| argument | |
|---|---|
| `--lake-root` (or `--root`) | the lake root (setting `root`): `s3://bucket/prefix`, or a folder |
| `--run-id` | the run; the validate job starts a new one when it is absent |
| `--streams-prefix` | setting `streams_prefix` |
| `--table-prefix` | the KPI store is DynamoDB, tables with this prefix |
| `--playcount-settings` | further settings, a JSON object (`{"run_date": "2024-06-25"}`) |
| `--config` | a `playcount.toml` on the driver |
| `--finish-run` | load job: `true` also archives, marks the files done, reports and notifies |

Leave `--finish-run` out when an orchestrator finishes the run (the Airflow DAG's
`archive_streamed_data` and `notify_*` tasks); pass `true` when the three jobs are the whole run
(a Glue workflow, Step Functions, spark-submit by hand).

`getResolvedOptions` reads them when `awsglue` is importable (on Glue), argparse otherwise, so
the scripts run unchanged on a local Spark.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from playcount import pipeline
from playcount.errors import PlaycountError, SettingsError
from playcount.settings import Settings, load_settings

__all__ = ["JobArgs", "job_args", "job_session", "validate_job", "transform_job", "load_job", "main"]

log = logging.getLogger("playcount.glue")

# option -> other spellings (Glue passes `--name value`; underscores are common in Glue consoles)
_OPTIONS: dict[str, tuple[str, ...]] = {
    "lake-root": ("root", "lake_root"),
    "run-id": ("run_id",),
    "streams-prefix": ("streams_prefix",),
    "table-prefix": ("table_prefix",),
    "playcount-settings": ("playcount_settings",),
    "config": (),
    "finish-run": ("finish_run",),
}


@dataclass(frozen=True)
class JobArgs:
    """A job's arguments, resolved into settings."""

    run_id: str | None
    settings: Settings
    finish_run: bool


def _given(argv: Sequence[str]) -> dict[str, str]:
    """The job's arguments by canonical option name (those present only)."""
    spellings = {s: name for name, others in _OPTIONS.items() for s in (name, *others)}
    present = [s for s in spellings if f"--{s}" in argv]
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        parser = argparse.ArgumentParser(prog="playcount Glue job", allow_abbrev=False)
        for s in present:
            parser.add_argument(f"--{s}", dest=s)
        parsed, _ = parser.parse_known_args(list(argv[1:]))  # Glue adds its own (--JOB_NAME, ...)
        values = vars(parsed)
    else:  # pragma: no cover - on Glue
        resolved = getResolvedOptions(list(argv), present)
        values = {s: resolved[s.replace("-", "_")] for s in present}
    return {spellings[s]: v for s, v in values.items() if v is not None}


def job_args(argv: Sequence[str] | None = None) -> JobArgs:
    """Settings from the job arguments (`sys.argv` by default): engine `spark`; raises
    `SettingsError` naming a bad argument."""
    given = _given(sys.argv if argv is None else argv)
    try:
        extra = json.loads(given.get("playcount-settings", "{}"))
    except ValueError as e:
        raise SettingsError(
            f"--playcount-settings is not JSON: {e}", fix='give a JSON object, e.g. {"run_date": "2024-06-25"}'
        ) from e
    if not isinstance(extra, dict):
        raise SettingsError("--playcount-settings must be a JSON object", fix='e.g. {"max_bad_row_ratio": 0.05}')
    flags: dict[str, Any] = {**extra, "engine": "spark"}
    if "lake-root" in given:
        flags["root"] = given["lake-root"]
    if "streams-prefix" in given:
        flags["streams_prefix"] = given["streams-prefix"]
    if "table-prefix" in given:
        flags["store"] = {**flags.get("store", {}), "type": "dynamodb", "table_prefix": given["table-prefix"]}
    finish = given.get("finish-run", "false").strip().lower()
    if finish not in ("true", "false"):
        raise SettingsError(f"--finish-run `{finish}` is not true or false", fix="pass --finish-run true or false")
    return JobArgs(given.get("run-id"), load_settings(given.get("config"), **flags), finish == "true")


def job_session() -> Any:
    """The job's SparkSession: Glue's when `awsglue` is importable, else the active or a local one."""
    try:
        from awsglue.context import GlueContext
    except ImportError:
        from playcount.engines.spark import local_session

        return local_session()
    from pyspark.context import SparkContext  # pragma: no cover - on Glue

    return GlueContext(SparkContext.getOrCreate()).spark_session  # pragma: no cover


def _run_job(
    step: str, argv: Sequence[str] | None, session: Any, work: Callable[[pipeline.Run, JobArgs], None]
) -> str:
    from playcount.engines.spark import SparkEngine

    args = job_args(argv)
    if args.run_id is None and step != "validate":
        raise SettingsError(f"the {step} job needs --run-id", fix="pass the run id the validate job started")
    engine = SparkEngine(session if session is not None else job_session())
    try:
        run = pipeline.open_run(
            args.settings,
            run_id=args.run_id,
            engine=engine,
            progress=lambda stage, message: log.info("%s: %s", stage, message),
        )
        log.info("run %s: %s job on %s", run.run_id, step, run.storage.root)
        with run.storage.lock(run.layout.lock, run.run_id):
            work(run, args)
        return run.run_id
    finally:
        engine.close()


def _validate(run: pipeline.Run, args: JobArgs) -> None:
    pipeline.clear_stale_staging(run)  # a crashed run's leftovers, as `run_pipeline` does
    discovery = pipeline.discover(run)
    run.save("discover", discovery)
    result = pipeline.validate(run, discovery)
    log.info("run %s: validation %s%s", run.run_id, result.status, f": {result.reason}" if result.reason else "")


def _validation(run: pipeline.Run) -> pipeline.Validation:
    return run.load("validate", pipeline.Validation)


def _transform(run: pipeline.Run, args: JobArgs) -> None:
    if _validation(run).status == "failed":
        log.info("run %s: validation failed, nothing to transform", run.run_id)
        return
    pipeline.transform(run)
    pipeline.compute_kpis(run)


def _load(run: pipeline.Run, args: JobArgs) -> None:
    validation = _validation(run)
    if validation.status == "passed":
        pipeline.load(run)
        if args.finish_run:
            pipeline.archive(run)
    if args.finish_run:
        report = pipeline.finish(run, pipeline.staged_report(run))
        log.info("run %s %s: %s", run.run_id, report.status, report.summary())


def validate_job(argv: Sequence[str] | None = None, session: Any = None) -> str:
    """Discover and validate (`glue/validate_job.py`). Returns the run id (new unless given)."""
    return _run_job("validate", argv, session, _validate)


def transform_job(argv: Sequence[str] | None = None, session: Any = None) -> str:
    """Transform and compute the KPIs of the run `--run-id` (`glue/transform_job.py`)."""
    return _run_job("transform", argv, session, _transform)


def load_job(argv: Sequence[str] | None = None, session: Any = None) -> str:
    """Load the KPIs of the run `--run-id` into the store; with `--finish-run true` also archive,
    mark done, report and notify (`glue/load_to_dynamodb.py`)."""
    return _run_job("load", argv, session, _load)


def main(job: Callable[[Sequence[str] | None, Any], str]) -> None:
    """What a Glue script runs: the job on `sys.argv`; an error is logged and ends the job failed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_id = job(sys.argv, None)
    except PlaycountError as e:
        log.error("%s", e)
        raise
    print(f"playcount run {run_id}")
