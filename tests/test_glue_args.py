"""The Glue jobs' arguments (`playcount.integrations.glue.job_args`), as Glue passes them. Fast:
no Spark (the jobs themselves run in tests/spark/test_glue.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playcount.errors import SettingsError
from playcount.integrations.glue import job_args
from playcount.settings import DynamoDBStoreSettings, SnsNotifySettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("PLAYCOUNT_ROOT", "PLAYCOUNT_ENGINE", "PLAYCOUNT_STORE__TYPE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./playcount.toml


def test_the_airflow_dags_arguments() -> None:
    # what `integrations.airflow.glue_arguments` passes, among Glue's own arguments
    args = job_args(
        [
            "load_to_dynamodb.py",
            "--JOB_NAME",
            "playcount-load",
            "--job-bookmark-option",
            "job-bookmark-disable",
            "--lake-root",
            "s3://lake/prefix",
            "--run-id",
            "20240625T120000Z-abcdef",
            "--streams-prefix",
            "in/streams",
            "--table-prefix",
            "prod_",
            "--playcount-settings",
            json.dumps({"run_date": "2024-06-25", "top_songs_n": 5}),
        ]
    )
    s = args.settings
    assert (args.run_id, args.finish_run) == ("20240625T120000Z-abcdef", False)
    assert (s.root, s.streams_prefix, s.engine, s.top_songs_n, str(s.run_date)) == (
        "s3://lake/prefix",
        "in/streams",
        "spark",
        5,
        "2024-06-25",
    )
    assert isinstance(s.store, DynamoDBStoreSettings) and s.store.table_prefix == "prod_"


def test_other_spellings_and_finish_run(tmp_path: Path) -> None:
    args = job_args(["x.py", "--root", str(tmp_path), "--run_id", "r1", "--finish-run", "TRUE"])
    assert (args.settings.root, args.run_id, args.finish_run, args.settings.store.type) == (
        str(tmp_path),
        "r1",
        True,
        "duckdb",
    )
    assert job_args(["x.py", "--lake_root", "/lake"]).run_id is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--playcount-settings", "{nope"], "--playcount-settings is not JSON"),
        (["--playcount-settings", "[1]"], "must be a JSON object"),
        (["--finish-run", "maybe"], "--finish-run `maybe`"),
        (["--playcount-settings", '{"colour": "red"}'], "unknown setting `colour`"),
    ],
)
def test_bad_arguments_name_what_is_wrong(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        job_args(["x.py", "--lake-root", "/lake", *argv])


def test_a_topic_arn_sends_the_notifications_to_sns() -> None:
    args = job_args(["x.py", "--lake-root", "/lake", "--topic-arn", "arn:aws:sns:eu-west-1:123456789012:runs"])
    assert isinstance(args.settings.notify, SnsNotifySettings)
    assert args.settings.notify.topic_arn == "arn:aws:sns:eu-west-1:123456789012:runs"


def test_a_workflow_job_gets_the_workflow_and_its_run() -> None:
    # what Glue adds to a job that a workflow's trigger started
    args = job_args(["x.py", "--lake-root", "/lake", "--WORKFLOW_NAME", "playcount-run", "--WORKFLOW_RUN_ID", "wr_1"])
    assert (args.run_id, args.workflow) == (None, ("playcount-run", "wr_1"))
    assert job_args(["x.py", "--lake-root", "/lake"]).workflow is None
    with pytest.raises(SettingsError, match="needs both --WORKFLOW_NAME and --WORKFLOW_RUN_ID, got `playcount-run`"):
        job_args(["x.py", "--lake-root", "/lake", "--WORKFLOW_NAME", "playcount-run"])
