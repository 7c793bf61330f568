"""The task callables of the Airflow DAG `dags/streaming_pipeline_dag.py` (Airflow 3: MWAA or
self-hosted).

The DAG mirrors the original design's tasks:

    wait_for_stream_files → run_validation_job → check_validation_status → run_transform_job
      → check_transform_status → load_to_dynamodb → archive_streamed_data → notify_success
    (either check, on failure) → notify_failure

Each task is a few lines over pipeline stages. Tasks hand on nothing but the playcount run id
(the XCom of `run_validation_job`): every stage result lives in the lake under
`_playcount/staging/<run-id>/`, so any task can be retried or cleared on its own.

Compute, by the Airflow Variable `PLAYCOUNT_COMPUTE`:

- `local` (default): the three job tasks run their stages in the worker, on DuckDB, against the
  lake root `s3://<S3_BUCKET>/<PLAYCOUNT_LAKE_PREFIX>`;
- `glue`: they start the Glue jobs named by `GLUE_VALIDATION_JOB_NAME`, `GLUE_JOB_NAME` and
  `DYNAMODB_GLUE_JOB_NAME` with the run id and the lake root (`glue_arguments`), and wait.

`archive_streamed_data` and the notifications always run in the worker: a few S3 and SNS calls.
Variables are read when a task runs, never when the DAG file is parsed.

Only the DAG file imports this module, so Airflow is imported here at the top, guarded; the
pipeline (Ibis, DuckDB) is imported inside the callables to keep DAG parsing fast.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from pydantic import BaseModel

from playcount.aws import Aws
from playcount.errors import MissingExtraError, PlaycountError, SettingsError
from playcount.notify import Notification, notify_safely

try:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("apache-airflow", "airflow") from e

if TYPE_CHECKING:
    from airflow.sdk import Context

    from playcount.pipeline import Run, RunReport
    from playcount.pipeline.runner import Step
    from playcount.settings import Settings

__all__ = [
    "CONN_ID",
    "STREAM_FILES_KEY",
    "JOB_VARIABLES",
    "DagConfig",
    "ConnectionAws",
    "PlaycountJobOperator",
    "read_config",
    "new_run_id",
    "run_id_of",
    "glue_arguments",
    "run_step_locally",
    "run_report",
    "has_stream_files",
    "check_validation_status",
    "check_transform_status",
    "archive_streamed_data",
    "notify_success",
    "notify_failure",
    "notify_task_failure",
]

log = logging.getLogger("playcount.airflow")
T = TypeVar("T")

CONN_ID = "aws_default"
DEFAULT_STREAMING_PREFIX = "raw_data/streams"
STREAM_FILES_KEY = "{{ var.value.get('S3_STREAMING_PREFIX', '" + DEFAULT_STREAMING_PREFIX + "') | trim('/') }}/*.csv*"
"""The sensor's wildcard key: `*.csv` and `*.csv.gz` under S3_STREAMING_PREFIX (`has_stream_files`
drops anything else the wildcard lets through)."""

VALIDATION_TASK = "run_validation_job"
TRANSFORM_TASK = "run_transform_job"
LOAD_TASK = "load_to_dynamodb"
NOTIFY_FAILURE_TASK = "notify_failure"
GLUE_LINK_XCOM = "glue_job_run_details"
"""The XCom of the Glue job run's console link (`GlueJobRunDetailsLink.key`)."""

JobStep = Literal["validate", "transform", "load"]
"""The steps that are jobs (in the worker, or a Glue job each); the sequencer's `STEPS` says
which stages each runs."""
JOB_VARIABLES: dict[str, str] = {
    "validate": "GLUE_VALIDATION_JOB_NAME",
    "transform": "GLUE_JOB_NAME",
    "load": "DYNAMODB_GLUE_JOB_NAME",
}
"""The Variable naming each step's Glue job (`glue` compute)."""
_SET_BY_VARIABLES = ("root", "streams_prefix", "notify")


# -- configuration: the Airflow Variables ------------------------------------------------------


def _variable(name: str, what: str, *, default: str | None = None, required: bool = False) -> str | None:
    value = Variable.get(name, default=None)
    if value is None or not str(value).strip():
        if required:
            raise SettingsError(
                f"the Airflow Variable `{name}` ({what}) is not set",
                fix=f"set it under Admin > Variables (or the environment variable AIRFLOW_VAR_{name})",
                key=name,
            )
        return default
    return str(value).strip()


@dataclass(frozen=True)
class DagConfig:
    """What the DAG's Airflow Variables say."""

    bucket: str
    streams_prefix: str
    """Key prefix of the stream files in the bucket (`S3_STREAMING_PREFIX`)."""
    lake_prefix: str
    """Key prefix of the lake root in the bucket (`PLAYCOUNT_LAKE_PREFIX`, default: none)."""
    topic_arn: str
    compute: Literal["local", "glue"]
    jobs: dict[str, str]
    """Step -> Glue job name (`glue` compute only)."""
    extra: dict[str, Any]
    """Further playcount settings (`PLAYCOUNT_SETTINGS`, a JSON object)."""

    @property
    def root(self) -> str:
        return f"s3://{self.bucket}/{self.lake_prefix}" if self.lake_prefix else f"s3://{self.bucket}"

    def landing_prefix(self) -> str:
        """`S3_STREAMING_PREFIX` relative to the lake root: the setting `streams_prefix`."""
        if not self.lake_prefix:
            return self.streams_prefix
        head = f"{self.lake_prefix}/"
        if not self.streams_prefix.startswith(head):
            raise SettingsError(
                f"S3_STREAMING_PREFIX `{self.streams_prefix}` is not under the lake root "
                f"`{self.root}` (PLAYCOUNT_LAKE_PREFIX `{self.lake_prefix}`)",
                fix=f"set S3_STREAMING_PREFIX to `{head}{DEFAULT_STREAMING_PREFIX}` or another prefix under it",
            )
        return self.streams_prefix[len(head) :]

    def settings(self) -> Settings:
        """The run's playcount settings: the lake on S3, DynamoDB KPI tables, SNS notifications."""
        from playcount.settings import load_settings

        extra = dict(self.extra)
        store = {**extra.pop("store", {}), "type": "dynamodb"}
        return load_settings(
            root=self.root,
            streams_prefix=self.landing_prefix(),
            store=store,
            notify={"type": "sns", "topic_arn": self.topic_arn},
            **extra,
        )


def read_config() -> DagConfig:
    """The Variables, checked: raises `SettingsError` naming the Variable that is missing or wrong."""
    bucket = cast(str, _variable("S3_BUCKET", "the lake bucket", required=True))
    if "/" in bucket or ":" in bucket:
        raise SettingsError(
            f"the Airflow Variable `S3_BUCKET` = `{bucket}` is not a bucket name",
            fix="give the bare bucket name; put a key prefix in PLAYCOUNT_LAKE_PREFIX",
        )
    compute = (_variable("PLAYCOUNT_COMPUTE", "local or glue", default="local") or "local").lower()
    if compute not in ("local", "glue"):
        raise SettingsError(
            f"the Airflow Variable `PLAYCOUNT_COMPUTE` = `{compute}` is not a compute mode",
            fix="set it to `local` (stages in the worker, on DuckDB) or `glue` (the Glue jobs)",
        )
    jobs: dict[str, str] = {}
    if compute == "glue":
        jobs = {
            step: cast(str, _variable(name, f"the Glue job of the {step} step", required=True))
            for step, name in JOB_VARIABLES.items()
        }
    raw = _variable("PLAYCOUNT_SETTINGS", "further playcount settings, JSON")
    try:
        extra = json.loads(raw) if raw else {}
    except ValueError as e:
        raise SettingsError(
            f"the Airflow Variable `PLAYCOUNT_SETTINGS` is not JSON: {e}",
            fix='give a JSON object, e.g. {"max_bad_row_ratio": 0.05, "store": {"table_prefix": "prod_"}}',
        ) from e
    if not isinstance(extra, dict) or set(extra) & set(_SET_BY_VARIABLES):
        raise SettingsError(
            f"the Airflow Variable `PLAYCOUNT_SETTINGS` = `{raw}` must be a JSON object of playcount "
            f"settings other than {', '.join(_SET_BY_VARIABLES)}",
            fix="the lake root, the landing prefix and the topic come from S3_BUCKET, "
            "PLAYCOUNT_LAKE_PREFIX, S3_STREAMING_PREFIX and SNS_TOPIC_ARN",
        )
    return DagConfig(
        bucket=bucket,
        streams_prefix=(_variable("S3_STREAMING_PREFIX", "the stream files' prefix") or DEFAULT_STREAMING_PREFIX).strip(
            "/"
        ),
        lake_prefix=(_variable("PLAYCOUNT_LAKE_PREFIX", "the lake root's prefix") or "").strip("/"),
        topic_arn=cast(str, _variable("SNS_TOPIC_ARN", "the run notifications' topic", required=True)),
        compute=cast(Literal["local", "glue"], compute),
        jobs=jobs,
        extra=extra,
    )


class ConnectionAws(Aws):
    """playcount's AWS client factory over an Airflow AWS connection: its credentials (or the
    worker's role), its region and its `endpoint_url` extra."""

    def __init__(self, conn_id: str = CONN_ID) -> None:
        hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
        super().__init__(region=hook.conn_region_name, endpoint_url=hook.conn_config.endpoint_url)
        self._hook = hook

    def session(self) -> Any:
        with self._mutex:
            if self._session is None:
                self._session = self._hook.get_session()
            return self._session


# -- the run of a DAG run ----------------------------------------------------------------------


def new_run_id(context: Context) -> str:
    """The playcount run id of this DAG run: its start time and a digest of the DAG run's id.

    The same on every try, so a retried `run_validation_job` reopens its run instead of starting
    another one.
    """
    dag_run = context["dag_run"]
    started = (dag_run.start_date or dag_run.run_after).astimezone(dt.UTC)
    digest = hashlib.sha256(f"{dag_run.dag_id}/{dag_run.run_id}".encode()).hexdigest()[:6]
    return f"{started:%Y%m%dT%H%M%SZ}-{digest}"


def run_id_of(context: Context) -> str:
    """The run id `run_validation_job` handed on; the same id computed again if it never did."""
    run_id = context["ti"].xcom_pull(task_ids=VALIDATION_TASK)
    return str(run_id) if run_id else new_run_id(context)


def _open_run(config: DagConfig, run_id: str) -> Run:
    from playcount import pipeline

    return pipeline.open_run(
        config.settings(),
        run_id=run_id,
        aws=ConnectionAws(),
        progress=lambda stage, message: log.info("%s: %s", stage, message),
    )


def _open(context: Context) -> Run:
    return _open_run(read_config(), run_id_of(context))


@contextmanager
def _terminal_fails_at_once() -> Iterator[None]:
    """A terminal playcount error (a setting, a file, a corrupt store: `transient` False) fails
    the task without its retries, which cannot mend it; anything else is left to the retries."""
    try:
        yield
    except PlaycountError as e:
        if not e.transient:
            raise AirflowFailException(str(e)) from e
        raise


def _terminal_fails(task: Callable[..., T]) -> Callable[..., T]:
    """A task callable whose terminal errors fail the task at once (`_terminal_fails_at_once`)."""

    @functools.wraps(task)
    def wrapped(*args: Any, **kwargs: Any) -> T:
        with _terminal_fails_at_once():
            return task(*args, **kwargs)

    return wrapped


def _step(config: DagConfig, run_id: str, step: Step, **kwargs: Any) -> Run:
    """Run one step of the run through the pipeline's sequencer (which takes the root's lease)."""
    from playcount import pipeline

    with _terminal_fails_at_once():
        run = _open_run(config, run_id)
        pipeline.run_step(run, step, **kwargs)
    return run


class TaskFailure(BaseModel):
    """Why a task of the run failed; staged for `check_*_status` and `notify_failure`."""

    task: str
    reason: str


# -- the job steps -----------------------------------------------------------------------------


def glue_arguments(settings: Settings, run_id: str, step: str, extra: dict[str, Any]) -> dict[str, str]:
    """The arguments each Glue job gets: the run to work on and where its lake is.

    Every job reopens the run by `--run-id` and runs its stages (the sequencer's `STEPS`); `--playcount-settings`
    (JSON) carries any further settings from the Variable PLAYCOUNT_SETTINGS. The load gets
    `--finish-run false`: the template's load job finishes the run by default (for its Glue
    workflow), while here `archive_streamed_data` and `notify_*` do.
    """
    args = {"--lake-root": settings.root, "--run-id": run_id, "--streams-prefix": settings.streams_prefix}
    if step == "load":
        args["--table-prefix"] = getattr(settings.store, "table_prefix", "")
        args["--finish-run"] = "false"
    if extra:
        args["--playcount-settings"] = json.dumps(extra, sort_keys=True)
    return args


def run_step_locally(config: DagConfig, run_id: str, step: JobStep) -> None:
    """Run a job step's stages in this worker (the sequencer stages a failure as `failed-<step>`
    for the check that follows, and raises it for Airflow's retries)."""
    _step(config, run_id, step)


class PlaycountJobOperator(GlueJobOperator):
    """A job step of the run: its stages in the worker (`local`) or its Glue job (`glue`).

    A `GlueJobOperator` whose job name and script arguments are decided when it runs, from the
    Variables. Returns the playcount run id in both modes (the only XCom the tasks exchange).
    """

    def __init__(self, *, step: JobStep, job_poll_interval: float = 15, **kwargs: Any) -> None:
        super().__init__(
            job_name=f"playcount-{step}",
            wait_for_completion=True,
            job_poll_interval=job_poll_interval,
            **kwargs,
        )
        self.step = step

    @_terminal_fails
    def execute(self, context: Context) -> str:
        config = read_config()
        run_id = new_run_id(context) if self.step == "validate" else run_id_of(context)
        if config.compute == "glue":
            self.job_name = config.jobs[self.step]
            self.script_args = {
                **self.script_args,
                **glue_arguments(config.settings(), run_id, self.step, config.extra),
            }
            self.log.info("run %s: Glue job %s with %s", run_id, self.job_name, self.script_args)
            super().execute(context)
        else:
            from playcount.pipeline import STEPS

            self.log.info("run %s: %s in the worker", run_id, " + ".join(STEPS[self.step]))
            run_step_locally(config, run_id, self.step)
            # no Glue job run, so no console link: an empty one, or the link Airflow computes
            # after the task would look for this XCom and log "XCom not found" as an error
            context["ti"].xcom_push(key=GLUE_LINK_XCOM, value={})
        return run_id


# -- the checks (branches) ---------------------------------------------------------------------


def _task_state(context: Context, task_id: str) -> str:
    ti = context["ti"]
    try:
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[task_id], run_ids=[ti.run_id])
        return str(states.get(ti.run_id, {}).get(task_id, "unknown"))
    except Exception:  # noqa: BLE001 - only for a better message
        return "unknown"


def _why_unfinished(context: Context, config: DagConfig, run: Run, task_id: str, step: str) -> str:
    """Why a job step left no result: its staged error, its Glue job run's error, or its state."""
    if run.staged(f"failed-{step}"):
        from playcount.pipeline import StepFailure

        return f"`{task_id}` failed: {run.load(f'failed-{step}', StepFailure).reason}"
    job_run_id = context["ti"].xcom_pull(task_ids=task_id, key="glue_job_run_id") if config.compute == "glue" else None
    if job_run_id:
        name = config.jobs[step]
        job = ConnectionAws().client("glue").get_job_run(JobName=name, RunId=job_run_id)["JobRun"]
        state = job.get("JobRunState", "?")
        if state == "SUCCEEDED":
            return (
                f"the Glue job `{name}` (run `{job_run_id}`) succeeded but left no result of the "
                f"{step} step for run `{run.run_id}`: the job must run the run of `--run-id`"
            )
        return f"the Glue job `{name}` (run `{job_run_id}`) ended {state}: {job.get('ErrorMessage') or 'no message'}"
    return f"`{task_id}` did not complete (state `{_task_state(context, task_id)}`); see its log"


def _fail(run: Run, task_id: str, reason: str) -> str:
    log.error("run %s failed at %s: %s", run.run_id, task_id, reason)
    run.save("failure", TaskFailure(task=task_id, reason=reason))
    return NOTIFY_FAILURE_TASK


@_terminal_fails
def check_validation_status(**context: Any) -> str:
    """Branch: `run_transform_job` if validation passed, else `notify_failure` (with the reason)."""
    from playcount.pipeline import Validation

    config = read_config()
    run = _open_run(config, run_id_of(cast("Context", context)))
    if not run.staged("validate"):
        return _fail(
            run, VALIDATION_TASK, _why_unfinished(cast("Context", context), config, run, VALIDATION_TASK, "validate")
        )
    validation = run.load("validate", Validation)
    if validation.status == "failed":
        return _fail(run, VALIDATION_TASK, f"validation failed: {validation.reason}")
    return TRANSFORM_TASK


@_terminal_fails
def check_transform_status(**context: Any) -> str:
    """Branch: `load_to_dynamodb` if the events and KPIs are written, else `notify_failure`."""
    config = read_config()
    run = _open_run(config, run_id_of(cast("Context", context)))
    if not (run.staged("transform") and run.staged("kpis")):
        return _fail(
            run, TRANSFORM_TASK, _why_unfinished(cast("Context", context), config, run, TRANSFORM_TASK, "transform")
        )
    return LOAD_TASK


# -- archive, report, notify -------------------------------------------------------------------


@_terminal_fails
def archive_streamed_data(**context: Any) -> None:
    """Move the consumed stream files to `archived/<run date>/` (copy, verify, delete)."""
    from playcount import pipeline

    run = _step(read_config(), run_id_of(cast("Context", context)), "archive")
    moved = run.load("archive", pipeline.ArchiveResult).moved if run.staged("archive") else {}
    log.info("run %s: %d file(s) archived", run.run_id, len(moved))


def run_report(run: Run, status: str = "succeeded", reason: str | None = None) -> RunReport:
    """The run report from the stage results staged so far."""
    from playcount.pipeline import RunStatus, staged_report

    return staged_report(run, RunStatus(status), reason)


@_terminal_fails
def notify_success(**context: Any) -> None:
    """Finish the run: mark its files done, write its report, publish the summary to SNS."""
    from playcount import pipeline

    run = _step(read_config(), run_id_of(cast("Context", context)), "finish")
    report = pipeline.RunReport.model_validate_json(run.storage.read_bytes(run.layout.run_report(run.run_id)))
    log.info("run %s %s: %s", run.run_id, report.status, report.summary())


@_terminal_fails
def notify_failure(**context: Any) -> None:
    """Finish the failed run (report + SNS, with the reason), then fail this task on purpose so
    the DAG run shows as failed; nothing was loaded or archived."""
    from playcount import pipeline

    run = _open(cast("Context", context))
    if run.staged("failure"):
        failure = run.load("failure", TaskFailure)
    else:
        failure = TaskFailure(task="?", reason="no failure was recorded for this run; see the task logs")
    _step(read_config(), run.run_id, "finish", status=pipeline.RunStatus.FAILED, reason=failure.reason)
    raise AirflowFailException(f"playcount run `{run.run_id}` failed (notified): {failure.reason}")


def notify_task_failure(context: Context) -> None:
    """`on_failure_callback`: a task failed for good (after its retries). Publish it with what the
    run has so far, and keep the run's staging so that clearing the task resumes the run."""
    ti = context["ti"]
    reason = f"task `{ti.task_id}` failed after {ti.try_number} attempt(s): {context.get('exception')}"
    try:
        run = _open(context)
    except Exception:  # noqa: BLE001 - a callback must not raise; without settings there is no topic
        log.exception("cannot notify the failure of %s", ti.task_id)
        return
    summary: dict[str, object] = {"status": "failed", "reason": reason}
    try:
        report = run_report(run, "failed", f"{reason}; fix the cause and clear the task to resume the run")
        report.finished_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        run.storage.write_bytes(run.layout.run_report(run.run_id), report.model_dump_json(indent=2).encode())
        summary = report.summary()
    except Exception:  # noqa: BLE001 - notify even when the lake is what failed
        log.warning("run %s: no report for the failure notification", run.run_id, exc_info=True)
    subject = f"playcount run {run.run_id} FAILED at {ti.task_id}"
    notify_safely(run.notifier, Notification(run.run_id, "failed", subject[:100], summary))


# -- the sensor --------------------------------------------------------------------------------


def has_stream_files(files: list[dict[str, Any]]) -> bool:
    """`check_fn` of `wait_for_stream_files`: a `.csv` or `.csv.gz` object among the matches."""
    return any(str(f.get("Key", "")).lower().endswith((".csv", ".csv.gz")) for f in files)
