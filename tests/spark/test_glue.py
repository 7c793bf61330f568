"""The Glue scripts, unchanged, on a local Spark: validate_job, transform_job, load_to_dynamodb
in sequence make the lake `playcount run` makes (and the same KPIs, outcomes, bad rows)."""

from __future__ import annotations

import datetime as dt
import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from spark_helpers import RUN_DATE, Outcome, outcome

from aws_helpers import BUCKET, TABLE_PREFIX, receive_all, subscribe_queue
from cfn_helpers import Resolver, deploy_glue, job_chain, load_template
from helpers import copy_lake_inputs, tiny_lake
from playcount.aws import Aws
from playcount.bootstrap import BootstrapResult
from playcount.stores import DynamoDBStore

pytestmark = pytest.mark.spark

GLUE = Path(__file__).resolve().parents[2] / "glue"


def script(name: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a Glue script as Glue does (as `__main__`, arguments in `sys.argv`), Glue's own
    arguments included."""
    monkeypatch.setattr(sys, "argv", [name, "--JOB_NAME", "playcount-test", *args])
    runpy.run_path(str(GLUE / name), run_name="__main__")


def lake_files(root: Path, run_id: str) -> set[str]:
    return {p.relative_to(root).as_posix().replace(run_id, "<run>") for p in root.rglob("*") if p.is_file()}


def parquet_rows(path: Path) -> list[str]:
    """A Parquet file's rows, in a canonical order; timestamps as UTC wall time."""
    rows = []
    for r in pq.read_table(path).to_pylist():
        rows.append(repr({k: v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v for k, v in r.items()}))
    return sorted(rows)


def test_the_three_scripts_make_the_lake_of_playcount_run(
    landing: Path,
    duckdb_outcome: Outcome,
    tmp_path: Path,
    spark_session: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = copy_lake_inputs(landing, tmp_path / "lake")
    common = ["--lake-root", str(root), "--playcount-settings", json.dumps({"run_date": RUN_DATE})]
    script("validate_job.py", common, monkeypatch)
    run_id = capsys.readouterr().out.split("playcount run ")[1].split()[0]  # a new run: its id is printed
    script("transform_job.py", [*common, "--run-id", run_id], monkeypatch)
    script("load_to_dynamodb.py", [*common, "--run-id", run_id, "--finish-run", "true"], monkeypatch)

    report = json.loads((root / f"_playcount/runs/{run_id}.json").read_text())
    assert report["status"] == "succeeded" and report["run_date"] == RUN_DATE
    glue = outcome(root, report)
    duck = duckdb_outcome
    assert glue.files() == duck.files()
    assert (report["dates"], report["kpi_rows"]) == (duck.report["dates"], duck.report["kpi_rows"])
    assert glue.kpis == duck.kpis
    assert glue.bad_rows == duck.bad_rows
    # the same objects in the lake (run ids aside) ...
    assert lake_files(root, run_id) == lake_files(duck.root, duck.report["run_id"])
    assert not list((root / "_playcount/staging").rglob("*.json"))
    # ... with the same rows in every Parquet file, and the same bytes in every archived file
    for path in sorted((duck.root / "processed_data").rglob("*.parquet")):
        assert parquet_rows(root / path.relative_to(duck.root)) == parquet_rows(path), path
    for path in sorted((duck.root / "archived").rglob("*")):
        if path.is_file():
            assert (root / path.relative_to(duck.root)).read_bytes() == path.read_bytes()


def test_failed_validation_stops_the_run_and_leaves_the_files(
    tmp_path: Path, spark_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tiny_lake(tmp_path, {"a.csv": "1,T1,2024-06-25 10:00:00\n"})
    (root / "raw_data/songs/songs.csv").unlink()
    run_id = "20240625T120000Z-abcdef"
    args = ["--root", str(root), "--run-id", run_id, "--playcount-settings", json.dumps({"run_date": "2024-06-25"})]
    script("validate_job.py", args, monkeypatch)
    script("transform_job.py", args, monkeypatch)  # nothing to transform: no Spark work at all
    script("load_to_dynamodb.py", [*args, "--finish-run", "true"], monkeypatch)
    report = json.loads((root / f"_playcount/runs/{run_id}.json").read_text())
    assert report["status"] == "failed" and "no songs file" in report["reason"]
    assert (root / "raw_data/streams/a.csv").exists()
    assert not (root / "kpis.duckdb").exists() and not (root / "processed_data").exists()


@pytest.mark.aws
def test_the_templates_glue_workflow_runs_the_three_scripts_as_one_run_that_ends_like_a_cli_run(
    tmp_path: Path, spark_session: Any, monkeypatch: pytest.MonkeyPatch, aws: Aws, infra: BootstrapResult
) -> None:
    """The template's Glue workflow in moto's Glue; each script run with what Glue gives it there:
    its job's default arguments and the workflow run's ids. moto runs no job, so the scripts run
    here, in the triggers' order; and a local Spark cannot read moto's S3, so `--lake-root` is a
    folder. DynamoDB, SNS and the workflow run properties are moto's."""
    template = load_template()
    names: dict[str, Any] = {k: v["Default"] for k, v in template["Parameters"].items() if "Default" in v}
    names |= {
        "AWS::StackName": "playcount",
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
        "LakeBucket": BUCKET,
        "RunsTopic": infra.topic_arn,
        "TablePrefix": TABLE_PREFIX,
    }
    deploy_glue(aws, Resolver(template, names), "arn:aws:iam::123456789012:role/playcount-glue")
    glue = aws.client("glue")
    chain = job_chain(aws, "playcount-run")
    assert chain == ["playcount-validate", "playcount-transform", "playcount-load"]
    scripts = {job: glue.get_job(JobName=job)["Job"]["Command"]["ScriptLocation"].rsplit("/", 1)[1] for job in chain}

    root = tiny_lake(
        tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n2,T1,2024-06-25 11:00:00\n2,T3,2024-06-25 12:00:00\n"}
    )
    queue = subscribe_queue(aws, infra.topic_arn)
    workflow_run = glue.start_workflow_run(Name="playcount-run")["RunId"]
    for job in chain:
        arguments = glue.get_job(JobName=job)["Job"]["DefaultArguments"] | {
            "--WORKFLOW_NAME": "playcount-run",
            "--WORKFLOW_RUN_ID": workflow_run,
            "--lake-root": str(root),
            "--playcount-settings": json.dumps({"run_date": "2024-07-02"}),
        }
        script(scripts[job], [part for item in arguments.items() for part in item], monkeypatch)

    properties = glue.get_workflow_run_properties(Name="playcount-run", RunId=workflow_run)["RunProperties"]
    run_id = properties["playcount_run_id"]
    report = json.loads((root / f"_playcount/runs/{run_id}.json").read_text())
    assert (report["status"], report["dates"], report["kpi_rows"]) == (
        "succeeded",
        ["2024-06-25"],
        {"genre_kpis": 2, "top_songs": 2, "top_genres": 2},
    )
    # archived, marked done in the ledger, staging dropped: as a CLI run leaves the lake
    assert not (root / "raw_data/streams/a.csv").exists()
    assert (root / "archived/2024-07-02/a.csv").is_file()
    [done] = (root / "_playcount/ledger").glob("*.json")
    assert json.loads(done.read_text())["run_id"] == run_id
    assert not list((root / "_playcount/staging").rglob("*.json"))
    # the KPIs in DynamoDB, the notification through SNS
    store = DynamoDBStore(aws.client("dynamodb"), table_prefix=TABLE_PREFIX)
    assert store.read("top_genres").to_pylist() == [
        {"date": dt.date(2024, 6, 25), "genre": "pop", "total_streams": 2, "rank": 1},
        {"date": dt.date(2024, 6, 25), "genre": "rock", "total_streams": 1, "rank": 2},
    ]
    [envelope] = receive_all(aws, queue)
    assert envelope["MessageAttributes"]["status"]["Value"] == "succeeded"
    assert envelope["MessageAttributes"]["run_id"]["Value"] == run_id
