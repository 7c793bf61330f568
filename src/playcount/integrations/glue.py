"""AWS Glue job entry points (or any Spark: EMR, spark-submit): the run as three Spark jobs.

| script | entry point | stages |
|---|---|---|
| `glue/validate_job.py` | `validate_job` | discover + validate |
| `glue/transform_job.py` | `transform_job` | transform + kpis |
| `glue/load_to_dynamodb.py` | `load_job` | load (+ archive + finish with `--finish-run true`) |

The jobs hand on nothing but the run id: every stage result is in the lake under
`_playcount/staging/<run-id>/`. Each job takes the SparkSession it runs in (Glue's), runs the
pure code on the Spark engine, and holds the root's run lock while it works.

The run id travels in one of two ways:

- as `--run-id` (the Airflow DAG, spark-submit by hand);
- in a Glue workflow run (`infra/cloudformation.yaml`, `RunWorkflow`): Glue gives each job of a
  workflow `--WORKFLOW_NAME` and `--WORKFLOW_RUN_ID`. The validate job starts a new run and puts
  its id into the workflow run's properties as `playcount_run_id` (before any work, so a retried
  job reopens the same run); the transform and load jobs read it from there.

Job arguments (those the Airflow DAG passes, `integrations.airflow.glue_arguments`):

| argument | |
|---|---|
| `--lake-root` (or `--root`) | the lake root (setting `root`): `s3://bucket/prefix`, or a folder |
| `--run-id` | the run; the validate job starts a new one when it is absent |
| `--streams-prefix` | setting `streams_prefix` |
| `--table-prefix` | the KPI store is DynamoDB, tables with this prefix |
| `--topic-arn` | notifications go to this SNS topic (setting `notify.topic_arn`) |
| `--WORKFLOW_NAME`, `--WORKFLOW_RUN_ID` | given by Glue in a workflow: the run id is its `playcount_run_id` |
| `--playcount-settings` | further settings, a JSON object (`{"run_date": "2024-06-25"}`) |
| `--config` | a `playcount.toml` on the driver |
| `--finish-run` | load job: `true` also archives, marks the files done, reports and notifies |

Pass `--finish-run false` when an orchestrator finishes the run (the Airflow DAG's
`archive_streamed_data` and `notify_*` tasks do); `true` when the three jobs are the whole run
(the template's Glue workflow: its load job has `--finish-run true` among its default
arguments, spark-submit by hand).

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
from typing import TYPE_CHECKING, Any

from playcount import pipeline
from playcount.aws import Aws
from playcount.engine import connect
from playcount.errors import PlaycountError, SettingsError
from playcount.settings import Settings, load_settings
from playcount.wiring import open_aws

if TYPE_CHECKING:
    from playcount.pipeline.runner import Step

__all__ = [
    "RUN_ID_PROPERTY",
    "JobArgs",
    "job_args",
    "workflow_run_id",
    "job_session",
    "validate_job",
    "transform_job",
    "load_job",
    "main",
]

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
    "topic-arn": ("topic_arn",),
    "WORKFLOW_NAME": (),
    "WORKFLOW_RUN_ID": (),
}

RUN_ID_PROPERTY = "playcount_run_id"
"""The workflow run property that carries the playcount run id from job to job."""


@dataclass(frozen=True)
class JobArgs:
    """A job's arguments, resolved into settings."""

    run_id: str | None
    settings: Settings
    finish_run: bool
    workflow: tuple[str, str] | None = None
    """(`--WORKFLOW_NAME`, `--WORKFLOW_RUN_ID`) when Glue runs the job in a workflow."""


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
    if "topic-arn" in given:
        flags["notify"] = {"type": "sns", "topic_arn": given["topic-arn"]}
    finish = given.get("finish-run", "false").strip().lower()
    if finish not in ("true", "false"):
        raise SettingsError(f"--finish-run `{finish}` is not true or false", fix="pass --finish-run true or false")
    workflow = None
    if "WORKFLOW_NAME" in given or "WORKFLOW_RUN_ID" in given:
        if not (given.get("WORKFLOW_NAME") and given.get("WORKFLOW_RUN_ID")):
            raise SettingsError(
                f"a Glue workflow job needs both --WORKFLOW_NAME and --WORKFLOW_RUN_ID, got "
                f"`{given.get('WORKFLOW_NAME', '')}` and `{given.get('WORKFLOW_RUN_ID', '')}`",
                fix="start the job from its workflow (aws glue start-workflow-run), not on its own",
            )
        workflow = (given["WORKFLOW_NAME"], given["WORKFLOW_RUN_ID"])
    settings = load_settings(given.get("config"), **flags)
    return JobArgs(given.get("run-id"), settings, finish == "true", workflow)


def workflow_run_id(glue: Any, workflow: tuple[str, str]) -> str | None:
    """The playcount run id in the properties of a Glue workflow run, if one is there yet."""
    name, run = workflow
    properties = glue.get_workflow_run_properties(Name=name, RunId=run).get("RunProperties") or {}
    value = properties.get(RUN_ID_PROPERTY)
    return str(value) if value else None


def _resolve_run_id(step: str, args: JobArgs, aws: Aws) -> str | None:
    """The run this job works on: `--run-id`, else the workflow run's; None: validate starts one."""
    if args.run_id is not None or args.workflow is None:
        return args.run_id
    run_id = workflow_run_id(aws.client("glue"), args.workflow)
    if run_id is None and step != "validate":
        name, run = args.workflow
        raise SettingsError(
            f"the {step} job's workflow run `{run}` of `{name}` has no `{RUN_ID_PROPERTY}` property",
            fix="the validate job sets it: start the workflow from its start trigger, with the validate job first",
        )
    return run_id


def job_session() -> Any:
    """The job's SparkSession: Glue's when `awsglue` is importable, else None (the engine then
    takes the active session or starts a local one)."""
    try:
        from awsglue.context import GlueContext
    except ImportError:
        return None
    from pyspark.context import SparkContext  # pragma: no cover - on Glue

    return GlueContext(SparkContext.getOrCreate()).spark_session  # pragma: no cover


def _run_job(step: str, argv: Sequence[str] | None, session: Any, steps: Callable[[JobArgs], list[Step]]) -> str:
    """Open the run of the job (new for validate, else `--run-id`) and run its steps through the
    pipeline's sequencer, which takes the root's lease for each."""
    args = job_args(argv)
    aws = open_aws(args.settings)
    run_id = _resolve_run_id(step, args, aws)
    if run_id is None and step != "validate":
        raise SettingsError(
            f"the {step} job needs --run-id", fix="pass the run id the validate job started, or run it in the workflow"
        )
    engine = connect("spark", session=session if session is not None else job_session())
    try:
        run = pipeline.open_run(
            args.settings,
            run_id=run_id,
            engine=engine,
            aws=aws,
            progress=lambda stage, message: log.info("%s: %s", stage, message),
        )
        if args.workflow is not None and run_id is None:  # hand the new run on, before any work
            name, workflow_run = args.workflow
            aws.client("glue").put_workflow_run_properties(
                Name=name, RunId=workflow_run, RunProperties={RUN_ID_PROPERTY: run.run_id}
            )
            log.info("run %s: put into the workflow run %s of %s", run.run_id, workflow_run, name)
        log.info("run %s: %s job on %s", run.run_id, step, run.storage.root)
        pipeline.run_steps(run, steps(args))  # one hold of the root's lease
        if run.staged("validate"):
            val = run.load("validate", pipeline.Validation)
            log.info("run %s: validation %s%s", run.run_id, val.status, f": {val.reason}" if val.reason else "")
        return run.run_id
    finally:
        engine.close()


def validate_job(argv: Sequence[str] | None = None, session: Any = None) -> str:
    """Discover and validate (`glue/validate_job.py`). Returns the run id (new unless given)."""
    return _run_job("validate", argv, session, lambda args: ["validate"])


def transform_job(argv: Sequence[str] | None = None, session: Any = None) -> str:
    """Transform and compute the KPIs of the run `--run-id` (`glue/transform_job.py`); nothing
    when its validation failed."""
    return _run_job("transform", argv, session, lambda args: ["transform"])


def load_job(argv: Sequence[str] | None = None, session: Any = None) -> str:
    """Load the KPIs of the run `--run-id` into the store; with `--finish-run true` also archive,
    mark done, report and notify (`glue/load_to_dynamodb.py`)."""
    return _run_job("load", argv, session, lambda args: ["load", "archive", "finish"] if args.finish_run else ["load"])


def main(job: Callable[[Sequence[str] | None, Any], str]) -> None:
    """What a Glue script runs: the job on `sys.argv`; an error is logged and ends the job failed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_id = job(sys.argv, None)
    except PlaycountError as e:
        log.error("%s", e)
        raise
    print(f"playcount run {run_id}")
