"""On an S3 root (a moto server): the run writes its page and latest.html to the bucket, the SNS
message says where, and `runs` / `report` read the history from the bucket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aws_helpers import BUCKET, TABLE_PREFIX, body, keys, receive_all, subscribe_queue
from helpers import cli
from playcount import pipeline
from playcount.aws import Aws
from playcount.bootstrap import BootstrapResult
from playcount.settings import load_settings

pytestmark = pytest.mark.aws

FILES = {
    "raw_data/songs/songs.csv": "track_id,artists,album_name,track_name,duration_ms,track_genre\n"
    "T1,Ann,A,One,200000,pop\nT2,Bob,B,Two,100000,rock\n",
    "raw_data/users/users.csv": "user_id,user_name,user_age,user_country,created_at\n"
    "1,U1,30,NG,2024-01-01\n2,U2,40,GH,2024-01-01\n",
    "raw_data/streams/a.csv": "user_id,track_id,listen_time\n1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 11:00:00\n"
    "1,T2,2024-06-25 12:00:00\n",
}


def test_a_run_on_s3_writes_both_pages_and_the_notification_says_where(
    aws: Aws, infra: BootstrapResult, tmp_path: Path
) -> None:
    for key, text in FILES.items():
        aws.client("s3").put_object(Bucket=BUCKET, Key=f"lake/{key}", Body=text.encode())
    queue = subscribe_queue(aws, infra.topic_arn)
    settings = load_settings(
        root=infra.root,
        store={"type": "dynamodb", "table_prefix": TABLE_PREFIX},
        notify={"type": "sns", "topic_arn": infra.topic_arn},
    )
    report = pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
    assert report.status == "succeeded"
    key = f"lake/_playcount/reports/{report.run_id}.html"
    assert {key, "lake/_playcount/reports/latest.html"} <= set(keys(aws, BUCKET, "lake/_playcount/reports/"))
    page = body(aws, BUCKET, key).decode()
    assert body(aws, BUCKET, "lake/_playcount/reports/latest.html").decode() == page
    assert '<dd data-key="rows_in">3</dd>' in page and '<dd data-key="clean">3</dd>' in page
    # top genres of 2024-06-25 read back from DynamoDB: pop 1 (T1), rock 2 (T2 twice): two bars
    assert 'data-chart="top_genres" data-rows="2"' in page
    [envelope] = receive_all(aws, queue)
    location = f"s3://{BUCKET}/{key}"
    assert json.loads(envelope["Message"])["report"] == location
    assert envelope["MessageAttributes"]["report"]["Value"] == location

    # the history and a local copy of the page, from the bucket (the CLI: credentials from the env)
    code, out, err = cli("runs", "--root", infra.root, "--json")
    assert code == 0, err
    [run] = json.loads(out)
    assert (run["run_id"], run["events"], run["report"]) == (report.run_id, 3, location)
    target = tmp_path / "copy.html"
    code, _, err = cli(
        "report", "--root", infra.root, "--out", str(target), "--store", "dynamodb", "--config", _toml(infra, tmp_path)
    )
    assert code == 0, err
    assert '<dd data-key="rows_in">3</dd>' in target.read_text()
    assert 'data-chart="top_genres" data-rows="2"' in target.read_text()


def _toml(infra: BootstrapResult, folder: Path) -> str:
    path = folder / "playcount.toml"
    path.write_text(infra.settings_toml())
    return str(path)
