"""The Airflow DAG: its shape, and whole DAG runs through `dag.test()` against the moto server."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from airflow_helpers import DAGS, JOBS, LAKE, RUN_DATE, GlueStandIn, dynamodb_kpis, run_dag, state, try_numbers

from aws_helpers import BUCKET, TABLE_PREFIX, body, keys, receive_all, subscribe_queue, upload_tree
from helpers import kpis as duckdb_kpis
from playcount import pipeline
from playcount.aws import Aws
from playcount.bootstrap import BootstrapResult
from playcount.errors import ArchiveConflictError, StorageError, StoreError
from playcount.generate import generate_landing_zone
from playcount.pipeline import runner
from playcount.settings import load_settings

pytestmark = [
    pytest.mark.airflow,
    # Airflow's in-process API server (dag.test) imports starlette's test client
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]

TASKS = {
    "wait_for_stream_files": ["run_validation_job"],
    "run_validation_job": ["check_validation_status"],
    "check_validation_status": ["notify_failure", "run_transform_job"],
    "run_transform_job": ["check_transform_status"],
    "check_transform_status": ["load_to_dynamodb", "notify_failure"],
    "load_to_dynamodb": ["archive_streamed_data"],
    "archive_streamed_data": ["notify_success"],
    "notify_success": [],
    "notify_failure": [],
}
SUCCEEDED = {task: "success" for task in TASKS} | {"notify_failure": "skipped"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small landing zone with faults of every kind, over two days."""
    root = tmp_path_factory.mktemp("generated")
    generate_landing_zone(root, songs=200, users=100, streams=1500, files=2, days=2, bad_ratio=0.02, seed=11)
    return root


@pytest.fixture(scope="module")
def local(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same files run locally (a folder, the DuckDB store): the report and the KPIs."""
    root = tmp_path_factory.mktemp("local") / "lake"
    shutil.copytree(generated, root)
    report = pipeline.run_pipeline(pipeline.open_run(load_settings(root=str(root), run_date=RUN_DATE)))
    assert report.status == "succeeded"
    return {"report": report, "kpis": duckdb_kpis(root)}


def _stream_files(generated: Path) -> list[str]:
    return sorted(p.name for p in (generated / "raw_data/streams").iterdir())


def _message(aws: Aws, queue: str) -> tuple[dict[str, Any], dict[str, Any]]:
    [envelope] = receive_all(aws, queue)
    return envelope, json.loads(envelope["Message"])


# -- the DAG's shape ---------------------------------------------------------------------------


def test_the_dag_folder_imports_without_errors(airflow_db: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert bag.dag_ids == ["streaming_pipeline"]


def test_task_ids_dependencies_and_trigger_rules(dag: Any) -> None:
    from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    from playcount.integrations import airflow as pc

    assert {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} == TASKS
    rules = {t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule) for t in dag.tasks}
    assert rules == {task: "all_success" for task in TASKS} | {
        "check_validation_status": "none_skipped",  # runs when its job failed, to say why
        "check_transform_status": "none_skipped",
        "notify_failure": "none_failed_min_one_success",  # whichever check chose it
    }
    assert dag.max_active_runs == 1 and not dag.catchup
    sensor = dag.get_task("wait_for_stream_files")
    assert isinstance(sensor, S3KeySensor)
    assert (sensor.mode, sensor.wildcard_match, sensor.soft_fail) == ("reschedule", True, True)
    assert sensor.bucket_name == "{{ var.value.S3_BUCKET }}" and sensor.bucket_key == pc.STREAM_FILES_KEY
    assert pc.has_stream_files([{"Key": "raw_data/streams/a.csv"}, {"Key": "raw_data/streams/b.csvx"}])
    assert pc.has_stream_files([{"Key": "raw_data/streams/b.CSV.GZ"}])
    assert not pc.has_stream_files([{"Key": "raw_data/streams/c.csv.tmp"}])
    for task_id in ("run_validation_job", "run_transform_job", "load_to_dynamodb"):
        assert isinstance(dag.get_task(task_id), GlueJobOperator)
    for task in dag.tasks:
        assert task.retries == 3 and task.retry_exponential_backoff == 2.0
    notified = {t.task_id for t in dag.tasks if pc.notify_task_failure in (t.on_failure_callback or [])}
    # the job tasks' and the sensor's failures reach notify_failure through the checks instead
    assert notified == {
        "check_validation_status",
        "check_transform_status",
        "load_to_dynamodb",
        "archive_streamed_data",
        "notify_success",
    }


# -- whole DAG runs ----------------------------------------------------------------------------


def test_local_mode_loads_archives_and_notifies_like_a_local_run(
    fast: Any, airflow_env: dict[str, str], aws: Aws, infra: BootstrapResult, generated: Path, local: dict[str, Any]
) -> None:
    upload_tree(aws, generated, BUCKET, LAKE)
    queue = subscribe_queue(aws, infra.topic_arn)

    dag_run, states = run_dag(fast)

    assert states == SUCCEEDED
    assert state(dag_run) == "success"
    # the KPI items in DynamoDB equal the local run's KPIs
    assert dynamodb_kpis(aws) == local["kpis"]
    assert all(local["kpis"].values())
    # the stream files moved to archived/<run date>/; the landing zone is empty
    assert not keys(aws, BUCKET, f"{LAKE}/raw_data/streams/")
    archived = keys(aws, BUCKET, f"{LAKE}/archived/")
    assert archived == [f"{LAKE}/archived/{RUN_DATE}/{name}" for name in _stream_files(generated)]
    # the SNS message, with the run report's summary, reached the subscribed queue
    envelope, message = _message(aws, queue)
    run_id = envelope["MessageAttributes"]["run_id"]["Value"]
    assert envelope["MessageAttributes"]["status"]["Value"] == "succeeded"
    assert envelope["Subject"].startswith(f"playcount run {run_id} succeeded")
    assert message["summary"] == json.loads(json.dumps(local["report"].summary()))
    # the run id is the one run_validation_job handed on; its report is in the lake, its staging gone
    assert dag_run.get_task_instance("run_validation_job").xcom_pull(task_ids="run_validation_job") == run_id
    report = json.loads(body(aws, BUCKET, f"{LAKE}/_playcount/runs/{run_id}.json"))
    assert report["status"] == "succeeded" and report["kpi_rows"] == local["report"].kpi_rows
    assert not keys(aws, BUCKET, f"{LAKE}/_playcount/staging/")
    assert len(keys(aws, BUCKET, f"{LAKE}/_playcount/ledger/")) == len(_stream_files(generated))


def _without_column(data: bytes, column: str) -> bytes:
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    out = io.StringIO()
    writer = csv.DictWriter(out, [c for c in rows[0] if c != column], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_a_songs_file_without_a_required_column_notifies_failure_and_loads_nothing(
    fast: Any, airflow_env: dict[str, str], aws: Aws, infra: BootstrapResult, generated: Path, tmp_path: Path
) -> None:
    landing = shutil.copytree(generated, tmp_path / "landing")
    [songs] = (landing / "raw_data/songs").iterdir()
    songs.write_bytes(_without_column(songs.read_bytes(), "track_genre"))
    upload_tree(aws, landing, BUCKET, LAKE)
    queue = subscribe_queue(aws, infra.topic_arn)

    dag_run, states = run_dag(fast)

    assert states == {
        "wait_for_stream_files": "success",
        "run_validation_job": "success",
        "check_validation_status": "success",
        "run_transform_job": "skipped",
        "check_transform_status": "skipped",
        "load_to_dynamodb": "skipped",
        "archive_streamed_data": "skipped",
        "notify_success": "skipped",
        "notify_failure": "failed",  # it notified, then failed the DAG run on purpose
    }
    assert state(dag_run) == "failed"
    envelope, message = _message(aws, queue)
    run_id = envelope["MessageAttributes"]["run_id"]["Value"]
    assert envelope["MessageAttributes"]["status"]["Value"] == "failed"
    assert envelope["Subject"] == f"playcount run {run_id} FAILED"
    reason = message["summary"]["reason"]
    assert reason.startswith("validation failed: reference data rejected")
    assert "`track_genre`" in reason and songs.name in reason
    # nothing loaded, nothing archived; the stream files wait in the landing zone
    assert dynamodb_kpis(aws) == {"genre_kpis": [], "top_songs": [], "top_genres": []}
    assert not keys(aws, BUCKET, f"{LAKE}/archived/")
    landed = keys(aws, BUCKET, f"{LAKE}/raw_data/streams/")
    assert landed == [f"{LAKE}/raw_data/streams/{name}" for name in _stream_files(generated)]
    # the songs file is rejected with its reason beside it
    error = json.loads(body(aws, BUCKET, f"{LAKE}/rejected/{run_id}/{songs.name}.error.json"))
    assert "`track_genre`" in error["reason"]
    assert json.loads(body(aws, BUCKET, f"{LAKE}/_playcount/runs/{run_id}.json"))["status"] == "failed"


def _run_with_broken_stage(
    dag: Any,
    aws: Aws,
    infra: BootstrapResult,
    generated: Path,
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
    task_id: str,
    error: str,
    kind: type[Exception] = StorageError,
) -> tuple[Any, dict[str, str], str]:
    """Run the DAG over the generated files with pipeline `stage` failing every time (`task_id`
    retried once): the DAG run, its task states and the queue subscribed to the topic."""

    def broken(run: pipeline.Run) -> Any:
        raise kind(error)

    monkeypatch.setattr(runner, stage, broken)  # the sequencer calls the stages
    monkeypatch.setattr(dag.get_task(task_id), "retries", 1)
    upload_tree(aws, generated, BUCKET, LAKE)
    queue = subscribe_queue(aws, infra.topic_arn)
    dag_run, states = run_dag(dag)
    return dag_run, states, queue


def test_a_transform_job_that_keeps_failing_goes_to_notify_failure_with_its_error(
    fast: Any,
    airflow_env: dict[str, str],
    aws: Aws,
    infra: BootstrapResult,
    generated: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dag_run, states, queue = _run_with_broken_stage(
        fast, aws, infra, generated, monkeypatch, "transform", "run_transform_job", "injected: cannot write the events"
    )

    assert states == SUCCEEDED | {
        "run_transform_job": "failed",
        "load_to_dynamodb": "skipped",
        "archive_streamed_data": "skipped",
        "notify_success": "skipped",
        "notify_failure": "failed",  # it notified, then failed the DAG run on purpose
    }
    assert try_numbers(dag_run)["run_transform_job"] == 2
    envelope, message = _message(aws, queue)  # one message: notify_failure's, not the callback's
    assert envelope["MessageAttributes"]["status"]["Value"] == "failed"
    reason = "`run_transform_job` failed: injected: cannot write the events (safe to re-run)"
    assert message["summary"]["reason"] == reason
    assert dynamodb_kpis(aws) == {"genre_kpis": [], "top_songs": [], "top_genres": []}
    assert not keys(aws, BUCKET, f"{LAKE}/archived/")


def test_glue_mode_starts_the_named_jobs_with_the_run_id_and_the_lake(
    fast: Any,
    airflow_env: dict[str, str],
    aws: Aws,
    aws_env: str,
    infra: BootstrapResult,
    generated: Path,
    local: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    glue = aws.client("glue")
    for name in JOBS.values():
        glue.create_job(
            Name=name,
            Role="arn:aws:iam::123456789012:role/playcount-glue",
            Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/glue/{name}.py", "PythonVersion": "3"},
        )
    monkeypatch.setenv("AIRFLOW_VAR_PLAYCOUNT_COMPUTE", "glue")
    monkeypatch.setenv("AIRFLOW_VAR_GLUE_VALIDATION_JOB_NAME", JOBS["validate"])
    monkeypatch.setenv("AIRFLOW_VAR_GLUE_JOB_NAME", JOBS["transform"])
    monkeypatch.setenv("AIRFLOW_VAR_DYNAMODB_GLUE_JOB_NAME", JOBS["load"])
    upload_tree(aws, generated, BUCKET, LAKE)
    queue = subscribe_queue(aws, infra.topic_arn)
    steps = {name: step for step, name in JOBS.items()}

    def glue_job(job: str, args: dict[str, str]) -> None:
        """What the job's script does, on DuckDB instead of Spark: read the arguments as the Glue
        scripts do (`integrations.glue.job_args`), reopen the run of `--run-id`, run its stages."""
        from playcount.integrations.glue import job_args

        given = job_args(["glue-job", *(part for item in args.items() for part in item)])
        settings = given.settings.model_copy(update={"engine": "duckdb"})
        run = pipeline.open_run(settings, run_id=given.run_id, aws=aws)
        pipeline.run_step(run, steps[job])  # what the Glue job runs, on DuckDB

    with GlueStandIn(aws, aws_env, glue_job) as stand_in:
        dag_run, states = run_dag(fast)
    assert not stand_in.errors

    assert states == SUCCEEDED
    envelope, message = _message(aws, queue)
    run_id = envelope["MessageAttributes"]["run_id"]["Value"]
    common = {
        "--lake-root": f"s3://{BUCKET}/{LAKE}",
        "--run-id": run_id,
        "--streams-prefix": "raw_data/streams",
        "--playcount-settings": json.dumps({"run_date": RUN_DATE, "store": {"table_prefix": TABLE_PREFIX}}),
    }
    started = {name: [r["Arguments"] for r in glue.get_job_runs(JobName=name)["JobRuns"]] for name in JOBS.values()}
    assert started == {
        JOBS["validate"]: [common],
        JOBS["transform"]: [common],
        JOBS["load"]: [common | {"--table-prefix": TABLE_PREFIX, "--finish-run": "false"}],
    }
    assert [job for job, _ in stand_in.runs] == list(JOBS.values())  # in the DAG's order
    # the operators hand on the playcount run id; the Glue job run ids are their own XComs
    for task_id in ("run_validation_job", "run_transform_job", "load_to_dynamodb"):
        ti = dag_run.get_task_instance(task_id)
        assert ti.xcom_pull(task_ids=task_id) == run_id
        assert str(ti.xcom_pull(task_ids=task_id, key="glue_job_run_id")).startswith("jr_")
    # what the jobs did is what a local run does; the worker archived and notified
    assert dynamodb_kpis(aws) == local["kpis"]
    assert message["summary"] == json.loads(json.dumps(local["report"].summary()))
    assert len(keys(aws, BUCKET, f"{LAKE}/archived/{RUN_DATE}/")) == len(_stream_files(generated))


def test_a_task_retried_after_a_transient_failure_gives_identical_results(
    fast: Any,
    airflow_env: dict[str, str],
    aws: Aws,
    infra: BootstrapResult,
    generated: Path,
    local: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_load = pipeline.load
    loads: list[str] = []

    def load_then_drop(run: pipeline.Run) -> pipeline.LoadResult:
        result = real_load(run)  # the items are written ...
        loads.append(run.run_id)
        if len(loads) == 1:  # ... and the first time, the task dies before it can report it
            raise StoreError("injected: the connection dropped after the write")
        return result

    monkeypatch.setattr(runner, "load", load_then_drop)
    upload_tree(aws, generated, BUCKET, LAKE)
    queue = subscribe_queue(aws, infra.topic_arn)

    dag_run, states = run_dag(fast)

    assert states == SUCCEEDED
    assert try_numbers(dag_run)["load_to_dynamodb"] == 2
    assert len(loads) == 2 and len(set(loads)) == 1  # the retry reopened the same run
    assert dynamodb_kpis(aws) == local["kpis"]
    assert len(keys(aws, BUCKET, f"{LAKE}/archived/{RUN_DATE}/")) == len(_stream_files(generated))
    envelope, message = _message(aws, queue)  # one message: the recovered failure notified nobody
    assert envelope["MessageAttributes"]["status"]["Value"] == "succeeded"
    assert message["summary"] == json.loads(json.dumps(local["report"].summary()))


def test_a_task_that_keeps_failing_is_notified_by_the_failure_callback(
    fast: Any,
    airflow_env: dict[str, str],
    aws: Aws,
    infra: BootstrapResult,
    generated: Path,
    local: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dag_run, states, queue = _run_with_broken_stage(
        fast, aws, infra, generated, monkeypatch, "archive", "archive_streamed_data", "injected: S3 is down"
    )

    assert states == SUCCEEDED | {
        "archive_streamed_data": "failed",
        "notify_success": "upstream_failed",
        "notify_failure": "skipped",
    }
    assert state(dag_run) == "failed"
    assert try_numbers(dag_run)["archive_streamed_data"] == 2
    envelope, message = _message(aws, queue)
    run_id = envelope["MessageAttributes"]["run_id"]["Value"]
    assert envelope["MessageAttributes"]["status"]["Value"] == "failed"
    assert envelope["Subject"] == f"playcount run {run_id} FAILED at archive_streamed_data"
    reason = message["summary"]["reason"]
    assert "`archive_streamed_data` failed after 2 attempt(s)" in reason and "injected: S3 is down" in reason
    assert message["summary"]["kpi_rows"] == local["report"].kpi_rows  # loaded before it failed
    # the run's staging is kept: clearing the task resumes the run
    assert keys(aws, BUCKET, f"{LAKE}/_playcount/staging/{run_id}/")
    assert len(keys(aws, BUCKET, f"{LAKE}/raw_data/streams/")) == len(_stream_files(generated))


def test_a_terminal_error_fails_its_task_at_once_and_a_transient_one_is_retried(
    fast: Any,
    airflow_env: dict[str, str],
    aws: Aws,
    infra: BootstrapResult,
    generated: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The retries follow the error's own `transient` property, not a list of class names."""
    dag_run, states, queue = _run_with_broken_stage(
        fast,
        aws,
        infra,
        generated,
        monkeypatch,
        "archive",
        "archive_streamed_data",
        "injected: a different file is already archived",
        ArchiveConflictError,
    )
    assert states["archive_streamed_data"] == "failed"
    assert try_numbers(dag_run)["archive_streamed_data"] == 1  # retries=1, unused: no retry mends it
    _, message = _message(aws, queue)
    assert "a different file is already archived" in message["summary"]["reason"]


def test_a_wrong_variable_fails_at_once_instead_of_retrying(
    fast: Any, airflow_env: dict[str, str], aws: Aws, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_PLAYCOUNT_COMPUTE", "emr")
    upload_tree(aws, generated, BUCKET, LAKE)

    dag_run, states = run_dag(fast)

    assert state(dag_run) == "failed"
    assert (states["run_validation_job"], states["check_validation_status"]) == ("failed", "failed")
    tries = try_numbers(dag_run)
    assert (tries["run_validation_job"], tries["check_validation_status"]) == (1, 1)  # retries=3, unused
    assert not keys(aws, BUCKET, f"{LAKE}/_playcount/")  # nothing was started


def test_a_run_reopened_by_id_keeps_the_date_of_its_start() -> None:
    from playcount.pipeline import run_started_at

    assert str(run_started_at("20240627T231500Z-abc123")) == "2024-06-27 23:15:00"
    assert run_started_at("custom-id") is None


def test_under_the_dag_the_templates_load_job_leaves_finishing_to_the_worker() -> None:
    """The template's load job finishes the run by default (its Glue workflow); the DAG's
    arguments, which Glue lays over the defaults, turn that off: archive and notify are tasks."""
    from cfn_helpers import load_template
    from playcount.integrations.airflow import glue_arguments
    from playcount.integrations.glue import job_args

    defaults = load_template()["Resources"]["LoadJob"]["Properties"]["DefaultArguments"]
    settings = load_settings(root="s3://lake/prefix", store={"type": "dynamodb", "table_prefix": "prod_"})
    given = {k: v for k, v in defaults.items() if isinstance(v, str)} | glue_arguments(settings, "r1", "load", {})
    args = job_args(["load_to_dynamodb.py", *(part for item in given.items() for part in item)])
    assert (args.run_id, args.finish_run, args.settings.root) == ("r1", False, "s3://lake/prefix")
    assert job_args(["load_to_dynamodb.py", "--finish-run", defaults["--finish-run"]]).finish_run


def test_a_failed_dag_run_resumes_after_the_next_dag_run_has_run(
    fast: Any,
    airflow_env: dict[str, str],
    aws: Aws,
    infra: BootstrapResult,
    generated: Path,
    local: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A DAG run's load fails for good (the failure callback notifies and keeps the run's staging);
    the next scheduled DAG run starts (a run of its own) and processes the files; then the first
    run's failed task is cleared. Its staging is still there (a new DAG run drops only staging
    older than a day), it resumes, and nothing counts twice."""
    with monkeypatch.context() as m:
        dag_run, states, _ = _run_with_broken_stage(
            fast, aws, infra, generated, m, "load", "load_to_dynamodb", "injected: DynamoDB is down", StoreError
        )
    assert states["load_to_dynamodb"] == "failed"
    first = dag_run.get_task_instance("run_validation_job").xcom_pull(task_ids="run_validation_job")

    second_run, second = run_dag(fast)
    assert second == SUCCEEDED
    assert second_run.get_task_instance("run_validation_job").xcom_pull(task_ids="run_validation_job") != first
    assert keys(aws, BUCKET, f"{LAKE}/_playcount/staging/{first}/")  # kept for the clear below
    assert dynamodb_kpis(aws) == local["kpis"]

    from playcount.integrations import airflow as pc

    config = pc.read_config()  # what the cleared tasks of the first run do, in order
    pc.run_step_locally(config, first, "load")
    for step in ("archive", "finish"):
        pipeline.run_step(pc._open_run(config, first), step)
    assert dynamodb_kpis(aws) == local["kpis"]
    report = json.loads(body(aws, BUCKET, f"{LAKE}/_playcount/runs/{first}.json"))
    assert report["status"] == "succeeded"
    assert not keys(aws, BUCKET, f"{LAKE}/_playcount/staging/")
    assert len(keys(aws, BUCKET, f"{LAKE}/_playcount/ledger/")) == len(_stream_files(generated))
