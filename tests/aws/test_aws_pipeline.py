"""The whole run on S3 + DynamoDB + SNS (a moto server): the same outcome as a local run."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from aws_helpers import BUCKET, TABLE_PREFIX, body, keys, receive_all, subscribe_queue, upload_tree
from helpers import cli, write
from playcount import pipeline
from playcount.aws import Aws
from playcount.bootstrap import BootstrapResult
from playcount.errors import LockedError, PlaycountError
from playcount.generate import generate_landing_zone
from playcount.lake.s3 import S3Storage
from playcount.settings import Settings, load_settings

pytestmark = pytest.mark.aws

RUN_DATE = "2024-06-27"
TABLES = ("genres", "top-songs", "top-genres")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small landing zone with faults of every kind, a gzipped stream file with blank lines and
    CRLF (the exact Python reader, through `S3Storage.open`), and a file that is rejected whole."""
    root = tmp_path_factory.mktemp("generated")
    generate_landing_zone(root, songs=300, users=150, streams=3000, files=3, days=2, bad_ratio=0.02, seed=7)
    lines = (root / "raw_data/streams/streams_003.csv").read_text().splitlines()
    text = "\r\n".join([lines[0], *lines[1:20], "", *lines[20:40]]) + "\r\n"
    (root / "raw_data/streams/more.csv.gz").write_bytes(gzip.compress(text.encode()))
    write(root / "raw_data/streams/broken.csv", "user_id,track\n1,T1\n")  # no listen_time column
    return root


@pytest.fixture(scope="module")
def local(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same files run locally (folder + DuckDB store): report, KPIs as the CLI prints them."""
    root = tmp_path_factory.mktemp("local") / "lake"
    shutil.copytree(generated, root)
    settings = load_settings(root=str(root), run_date=RUN_DATE)
    report = pipeline.run_pipeline(pipeline.open_run(settings))
    assert report.status == "succeeded"
    return {"root": root, "report": report, "kpis": _cli_kpis(str(root))}


def _cli_kpis(root: str, *flags: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for table in TABLES:
        code, stdout, stderr = cli("kpis", table, "--root", root, "--json", *flags)
        assert code == 0, stderr
        out[table] = json.loads(stdout)
    return out


def _s3_settings(infra: BootstrapResult, **extra: Any) -> Settings:
    return load_settings(
        root=infra.root,
        run_date=RUN_DATE,
        store={"type": "dynamodb", "table_prefix": TABLE_PREFIX},
        notify={"type": "sns", "topic_arn": infra.topic_arn},
        **extra,
    )


def _digests(aws: Aws, prefix: str) -> list[str]:
    return sorted(
        hashlib.sha256(body(aws, BUCKET, k)).hexdigest()
        for k in keys(aws, BUCKET, prefix)
        if k.endswith((".csv", ".csv.gz"))
    )


def test_run_on_s3_with_dynamodb_and_sns_equals_a_local_run(
    generated: Path, local: dict[str, Any], aws: Aws, infra: BootstrapResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_tree(aws, generated, BUCKET, "lake")
    queue = subscribe_queue(aws, infra.topic_arn)
    # the CLI, as a user runs it: credentials and endpoint from the standard chain (AWS_ENDPOINT_URL)
    monkeypatch.setenv("PLAYCOUNT_RUN_DATE", RUN_DATE)
    monkeypatch.setenv("PLAYCOUNT_STORE__TABLE_PREFIX", TABLE_PREFIX)
    monkeypatch.setenv("PLAYCOUNT_NOTIFY__TOPIC_ARN", infra.topic_arn)
    code, out, err = cli("run", "--root", infra.root, "--store", "dynamodb", "--notify", "sns", "--json")
    assert code == 0, err
    report = json.loads(out)
    run_id = report["run_id"]
    assert report["status"] == "succeeded"
    assert report["root"] == "s3://playcount-lake/lake"
    status = {f["name"]: f["status"] for f in report["files"] if f["dataset"] == "streams"}
    assert status == {
        "broken.csv": "rejected",
        "more.csv.gz": "accepted",
        "streams_001.csv": "accepted",
        "streams_002.csv": "accepted",
        "streams_003.csv": "accepted",
    }
    more = next(f for f in report["files"] if f["name"] == "more.csv.gz")
    assert more["rows"] == 39 and more["clean"] + more["bad"] == 39
    want = local["report"]
    assert report["kpi_rows"] == want.kpi_rows
    assert [(f["name"], f["rows"], f["clean"], f["bad"]) for f in report["files"]] == [
        (f.name, f.rows, f.clean, f.bad) for f in want.files
    ]

    # the KPIs read back from DynamoDB equal the local DuckDB store's, row for row
    assert _cli_kpis(infra.root, "--store", "dynamodb") == local["kpis"]
    assert sum(len(rows) for rows in local["kpis"].values()) == sum(want.kpi_rows.values()) > 0
    # the items themselves: keys of SPEC §6, numbers as DynamoDB numbers
    ddb = aws.client("dynamodb")
    song = ddb.scan(TableName=f"{TABLE_PREFIX}top_songs", Limit=1)["Items"][0]
    assert song["date#genre"]["S"] == f"{song['date']['S']}#{song['genre']['S']}"
    assert set(song["rank"]) == {"N"} and set(song["stream_count"]) == {"N"}
    genre = ddb.scan(TableName=f"{TABLE_PREFIX}genre_kpis", Limit=1)["Items"][0]
    assert set(genre["avg_listen_time"]) == {"N"} and len(genre["date"]["S"]) == 10

    # the SNS message reached the subscribed queue, with filterable attributes
    [envelope] = receive_all(aws, queue)
    assert envelope["Subject"].startswith(f"playcount run {run_id} succeeded")
    assert len(envelope["Subject"]) <= 100
    assert envelope["MessageAttributes"]["status"]["Value"] == "succeeded"
    assert envelope["MessageAttributes"]["run_id"]["Value"] == run_id
    message = json.loads(envelope["Message"])
    assert message["summary"]["clean"] == sum(f.clean for f in want.files if f.dataset == "streams")
    assert message["summary"]["rejected_files"] == ["broken.csv"]

    # the lake layout of SPEC §4
    lake = set(keys(aws, BUCKET, "lake/"))
    assert not keys(aws, BUCKET, "lake/raw_data/streams/")
    assert {f"lake/archived/{RUN_DATE}/streams_00{i}.csv" for i in (1, 2, 3)} <= lake
    assert f"lake/archived/{RUN_DATE}/more.csv.gz" in lake
    assert {f"lake/rejected/{run_id}/broken.csv", f"lake/rejected/{run_id}/broken.csv.error.json"} <= lake
    error = json.loads(body(aws, BUCKET, f"lake/rejected/{run_id}/broken.csv.error.json"))
    assert "`listen_time`" in error["reason"]
    for dataset, path in want.bad_rows.items():
        assert report["bad_rows"][dataset] == f"bad_rows/{dataset}/{run_id}.csv"
        assert body(aws, BUCKET, f"lake/{report['bad_rows'][dataset]}") == (local["root"] / path).read_bytes()
    assert f"lake/_playcount/runs/{run_id}.json" in lake
    assert len(keys(aws, BUCKET, "lake/_playcount/ledger/")) == 4
    assert "lake/_playcount/lock" not in lake  # the lease was released
    assert not keys(aws, BUCKET, "lake/_playcount/staging/")
    assert {k for k in lake if k.startswith("lake/processed_data/streams/")}  # events on S3, by date
    # nothing new: the next run has nothing to do
    code, out, _ = cli("run", "--root", infra.root, "--store", "dynamodb", "--notify", "sns", "--json")
    assert (code, json.loads(out)["status"]) == (0, "nothing_to_do")


class _Killed(BaseException):
    """Stops a run dead at a stage boundary, as a kill would."""


def test_interrupted_between_load_and_archive_then_rerun_is_exactly_once(
    generated: Path, local: dict[str, Any], aws: Aws, infra: BootstrapResult
) -> None:
    upload_tree(aws, generated, BUCKET, "lake")
    inputs = _digests(aws, "lake/raw_data/streams/")
    settings = _s3_settings(infra)

    def die(stage: str) -> None:
        if stage == "load":
            raise _Killed(stage)

    with pytest.raises(_Killed):
        pipeline.run_pipeline(pipeline.open_run(settings, aws=aws), after_stage=die)
    assert len(keys(aws, BUCKET, "lake/raw_data/streams/")) == 4  # loaded, not archived (broken.csv: rejected)
    report = pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
    assert report.status == "succeeded"
    assert _cli_kpis(infra.root, "--store", "dynamodb", "--config", _toml(infra)) == local["kpis"]
    assert not keys(aws, BUCKET, "lake/raw_data/streams/")
    archived = _digests(aws, "lake/archived/")
    rejected = _digests(aws, "lake/rejected/")
    assert sorted(archived + rejected) == inputs  # every input once, none lost
    again = pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
    assert again.status == "nothing_to_do"


def _toml(infra: BootstrapResult) -> str:
    path = Path("playcount.toml")
    path.write_text(infra.settings_toml())
    return str(path)


def _tiny(aws: Aws) -> None:
    """Two songs, two users, one stream file: a lake that runs in a blink."""
    files = {
        "raw_data/songs/songs.csv": "track_id,artists,album_name,track_name,duration_ms,track_genre\n"
        "T1,Ann,A,One,200000,pop\nT2,Bob,B,Two,100000,rock\n",
        "raw_data/users/users.csv": "user_id,user_name,user_age,user_country,created_at\n"
        "1,U1,30,NG,2024-01-01\n2,U2,40,GH,2024-01-01\n",
        "raw_data/streams/a.csv": "user_id,track_id,listen_time\n1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 11:00:00\n",
    }
    for key, text in files.items():
        aws.client("s3").put_object(Bucket=BUCKET, Key=f"lake/{key}", Body=text.encode())


def test_lease_refuses_a_second_run_while_live_and_lets_it_in_once_lapsed(
    aws: Aws, infra: BootstrapResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tiny(aws)
    storage = S3Storage(infra.root, aws.client("s3"), lease_seconds=2)
    crashed = storage.lock("_playcount/lock", "crashed-run")
    crashed.acquire()  # and never released nor renewed: the run died
    settings = _s3_settings(infra, aws={"lease_seconds": 2})
    with pytest.raises(LockedError, match="crashed-run"):
        pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
    monkeypatch.setenv("PLAYCOUNT_STORE__TABLE_PREFIX", TABLE_PREFIX)
    code, _, err = cli("run", "--root", infra.root, "--store", "dynamodb")
    assert code == 3 and "crashed-run" in err
    assert keys(aws, BUCKET, "lake/raw_data/streams/") == ["lake/raw_data/streams/a.csv"]  # untouched
    deadline = time.monotonic() + 10
    while True:
        try:
            report = pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
            break
        except LockedError:
            assert time.monotonic() < deadline, "the lease never lapsed"
            time.sleep(0.5)
    assert report.status == "succeeded"
    assert "lake/_playcount/lock" not in keys(aws, BUCKET, "lake/_playcount/")
    crashed.release()  # the dead run's release must not touch anyone else's lease


def test_live_lease_is_renewed_and_a_taken_over_one_is_not_released(aws: Aws, infra: BootstrapResult) -> None:
    storage = S3Storage(infra.root, aws.client("s3"), lease_seconds=1.5)
    with storage.lock("_playcount/lock", "live"):
        time.sleep(3.2)  # twice its life: the heartbeat keeps it
        with pytest.raises(LockedError, match="live"):
            storage.lock("_playcount/lock", "second").acquire()
    with storage.lock("_playcount/lock", "third"):
        pass
    # an expired lease taken over: the old holder can neither renew nor delete it
    old = storage.lock("_playcount/lock", "old")
    old.acquire()
    time.sleep(2.6)
    new = storage.lock("_playcount/lock", "new").acquire()
    assert old.renew() is False and old.lost
    old.release()
    holder = json.loads(body(aws, BUCKET, "lake/_playcount/lock"))
    assert holder["run_id"] == "new" and holder["expires_at"] and holder["owner"]
    new.release()
    assert "lake/_playcount/lock" not in keys(aws, BUCKET, "lake/")


def test_copy_failing_during_archive_loses_nothing_and_the_next_run_finishes(
    generated: Path, local: dict[str, Any], aws: Aws, infra: BootstrapResult
) -> None:
    upload_tree(aws, generated, BUCKET, "lake")
    inputs = _digests(aws, "lake/raw_data/streams/")
    copies = {"n": 0}

    def fail_second_archive_copy(params: dict[str, Any], **kwargs: Any) -> None:
        copies["n"] += "/archived/" in params["Key"]
        if copies["n"] == 2:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "CopyObject")

    s3 = aws.client("s3")
    s3.meta.events.register("provide-client-params.s3.CopyObject", fail_second_archive_copy, unique_id="fail-copy")
    settings = _s3_settings(infra)
    with pytest.raises(Exception, match="injected"):
        pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
    s3.meta.events.unregister("provide-client-params.s3.CopyObject", unique_id="fail-copy")
    # every input is in the landing zone, the archive or rejected/: none lost, none doubled
    landing, archived = _digests(aws, "lake/raw_data/streams/"), _digests(aws, "lake/archived/")
    assert sorted(landing + archived + _digests(aws, "lake/rejected/")) == inputs
    assert landing and archived
    report = pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
    assert report.status == "succeeded"
    assert not keys(aws, BUCKET, "lake/raw_data/streams/")
    assert _cli_kpis(infra.root, "--store", "dynamodb", "--config", _toml(infra)) == local["kpis"]


def test_unverified_copy_keeps_the_source(aws: Aws, infra: BootstrapResult) -> None:
    storage = S3Storage(infra.root, aws.client("s3"))
    storage.write_bytes("raw_data/streams/a.csv", b"user_id,track_id,listen_time\n1,T1,2024-06-25 10:00:00\n")
    other = Aws(region=aws.region, endpoint_url=aws.endpoint_url).client("s3")

    def corrupt(**kwargs: Any) -> None:  # the copy lands damaged (a truncated object)
        other.put_object(Bucket=BUCKET, Key="lake/archived/x/a.csv", Body=b"user_id,track_id\n")

    storage.client.meta.events.register("after-call.s3.CopyObject", corrupt, unique_id="corrupt")
    try:
        with pytest.raises(PlaycountError, match="could not be verified") as caught:
            storage.move("raw_data/streams/a.csv", "archived/x/a.csv")
    finally:
        storage.client.meta.events.unregister("after-call.s3.CopyObject", unique_id="corrupt")
    assert caught.value.transient
    assert storage.exists("raw_data/streams/a.csv") and not storage.exists("archived/x/a.csv")
    storage.move("raw_data/streams/a.csv", "archived/x/a.csv")
    assert not storage.exists("raw_data/streams/a.csv")
    assert storage.read_bytes("archived/x/a.csv").startswith(b"user_id,track_id,listen_time\n1,T1")
    # a different object already at the destination is never overwritten
    storage.write_bytes("raw_data/streams/a.csv", b"user_id,track_id,listen_time\n2,T2,2024-06-25 10:00:00\n")
    with pytest.raises(PlaycountError, match="a different object is already there"):
        storage.move("raw_data/streams/a.csv", "archived/x/a.csv")
    assert storage.exists("raw_data/streams/a.csv")


def test_sns_failure_leaves_the_run_succeeded(
    aws: Aws, infra: BootstrapResult, caplog: pytest.LogCaptureFixture
) -> None:
    _tiny(aws)
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    settings = load_settings(
        root=infra.root,
        run_date=RUN_DATE,
        store={"type": "dynamodb", "table_prefix": TABLE_PREFIX},
        notify={"type": "sns", "topic_arn": missing},
    )
    report = pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
    assert report.status == "succeeded"
    assert "notification for run" in caplog.text and report.run_id in caplog.text
    assert not keys(aws, BUCKET, "lake/raw_data/streams/")


def test_log_notifier_appends_to_notifications_jsonl_on_s3(aws: Aws, infra: BootstrapResult) -> None:
    # S3 has no append: each run reads the object and writes it back with one more line
    _tiny(aws)
    settings = load_settings(
        root=infra.root,
        run_date=RUN_DATE,
        store={"type": "dynamodb", "table_prefix": TABLE_PREFIX},
        notify={"type": "log"},
    )
    first = pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))
    pipeline.run_pipeline(pipeline.open_run(settings, aws=aws))  # nothing to do: no notification (SPEC §7)
    asked = settings.model_copy(update={"notify": settings.notify.model_copy(update={"on_nothing_to_do": True})})
    third = pipeline.run_pipeline(pipeline.open_run(asked, aws=aws))
    lines = [json.loads(x) for x in body(aws, BUCKET, "lake/_playcount/notifications.jsonl").decode().splitlines()]
    assert [(n["run_id"], n["status"]) for n in lines] == [(first.run_id, "succeeded"), (third.run_id, "nothing_to_do")]


def test_append_on_s3_keeps_a_line_written_between_its_read_and_its_write(aws: Aws, infra: BootstrapResult) -> None:
    storage = S3Storage(infra.root, aws.client("s3"))
    other = S3Storage(infra.root, aws.client("s3"))
    read = storage._get
    raced = []

    def read_then_lose_the_race(path: str) -> Any:
        got = read(path)
        if not raced:  # another writer appends after this one has read
            raced.append(True)
            other.append_bytes(path, b"other\n")
        return got

    storage.append_bytes("x.jsonl", b"first\n")
    storage._get = read_then_lose_the_race  # type: ignore[method-assign]
    storage.append_bytes("x.jsonl", b"second\n")
    assert body(aws, BUCKET, "lake/x.jsonl") == b"first\nother\nsecond\n"


@pytest.mark.parametrize("name", ["lake[ab]", "lake*", "lake{a,b}"])
def test_an_s3_root_with_glob_characters_is_literal(
    aws: Aws, infra: BootstrapResult, tmp_path: Path, name: str
) -> None:
    """DuckDB reads `s3://` paths through httpfs, which expands globs as it does locally: the root
    `lake[ab]` must never read the sibling lake `lakea`, nor `lake*` every lake."""
    s3 = aws.client("s3")

    def put(prefix: str, streams: str) -> None:
        files = {
            "raw_data/songs/songs.csv": "track_id,artists,album_name,track_name,duration_ms,track_genre\n"
            "T1,Ann,A,One,200000,pop\nT2,Bob,B,Two,100000,rock\n",
            "raw_data/users/users.csv": "user_id,user_name,user_age,user_country,created_at\n"
            "1,U1,30,NG,2024-01-01\n2,U2,40,GH,2024-01-01\n",
            "raw_data/streams/a.csv": "user_id,track_id,listen_time\n" + streams,
        }
        for key, text in files.items():
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{key}", Body=text.encode())

    put("lakea", "1,T1,2024-06-25 10:00:00\n2,T1,2024-06-25 10:00:00\n1,T1,2024-06-25 11:00:00\n")
    assert (
        pipeline.run_pipeline(
            pipeline.open_run(load_settings(root=f"s3://{BUCKET}/lakea", store={"path": str(tmp_path / "a.duckdb")}))
        ).status
        == "succeeded"
    )  # a sibling lake, run before: its events are under lakea/processed_data/
    put(name, "2,T2,2024-06-25 12:00:00\n")
    settings = load_settings(root=f"s3://{BUCKET}/{name}", store={"path": str(tmp_path / "b.duckdb")})
    report = pipeline.run_pipeline(pipeline.open_run(settings))
    assert report.status == "succeeded", report.reason
    rows = pipeline.open_run(settings).store.read("genre_kpis").to_pylist()
    assert [(r["genre"], r["total_streams"]) for r in rows] == [("rock", 1)]


def test_an_s3_root_with_a_question_mark_is_a_settings_error_and_a_file_with_one_is_read(
    aws: Aws, infra: BootstrapResult, tmp_path: Path
) -> None:
    """httpfs takes what follows `?` in an s3:// URL as options: a root cannot hold one (the
    lake's Parquet is written through it); a landing file can, read by the exact reader."""
    from playcount.errors import SettingsError

    with pytest.raises(SettingsError, match="has a `\\?`"):
        pipeline.open_run(load_settings(root=f"s3://{BUCKET}/lake?x", store={"path": str(tmp_path / "k.duckdb")}))
    _tiny(aws)
    aws.client("s3").put_object(
        Bucket=BUCKET,
        Key="lake/raw_data/streams/what?.csv",
        Body=b"user_id,track_id,listen_time\n2,T2,2024-06-25 12:00:00\n",
    )
    settings = load_settings(root=infra.root, store={"path": str(tmp_path / "k.duckdb")})
    report = pipeline.run_pipeline(pipeline.open_run(settings))
    assert report.status == "succeeded", report.reason
    assert {f.name: f.status for f in report.files if f.dataset == "streams"} == {
        "a.csv": "accepted",
        "what?.csv": "accepted",
    }
    rows = pipeline.open_run(settings).store.read("genre_kpis").to_pylist()
    assert sorted((r["genre"], r["total_streams"]) for r in rows) == [("pop", 1), ("rock", 2)]


def test_replay_on_s3_with_dynamodb_counts_a_late_track_once(
    aws: Aws, infra: BootstrapResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream of a track that arrives a day late, quarantined on S3, replayed into DynamoDB; a
    second replay changes nothing."""
    _tiny(aws)
    s3 = aws.client("s3")
    good = "".join(f"{1 + i % 2},T{1 + i % 2},2024-06-25 12:{i:02d}:00\n" for i in range(20))
    late = "user_id,track_id,listen_time\n" + good + "1,T3,2024-06-26 10:00:00\n"
    s3.put_object(Bucket=BUCKET, Key="lake/raw_data/streams/b.csv", Body=late.encode())
    monkeypatch.setenv("PLAYCOUNT_STORE__TABLE_PREFIX", TABLE_PREFIX)
    flags = ("--root", infra.root, "--store", "dynamodb", "--json")
    code, out, err = cli("run", *flags)
    assert code == 0, err
    [bad] = [k for k in keys(aws, BUCKET, "lake/bad_rows/streams/")]
    assert body(aws, BUCKET, bad).decode().splitlines()[1:] == ["1,T3,2024-06-26 10:00:00,,b.csv,22,unknown track_id"]
    genres = {(r["date"], r["genre"]) for r in _cli_kpis(infra.root, "--store", "dynamodb")["genres"]}
    assert ("2024-06-26", "jazz") not in genres
    s3.put_object(
        Bucket=BUCKET,
        Key="lake/raw_data/songs/songs_late.csv",
        Body=b"track_id,artists,album_name,track_name,duration_ms,track_genre\nT3,Cy,C,Three,300000,jazz\n",
    )
    code, out, err = cli("replay", *flags)
    assert code == 0, err
    replay = json.loads(out)["replay"]
    assert (replay["replayed"], replay["still_bad"], replay["dates"]) == (1, 0, ["2024-06-26"])
    assert keys(aws, BUCKET, "lake/bad_rows/streams/") == []
    assert any(k.endswith(".parquet") and "/replay-" in k for k in keys(aws, BUCKET, "lake/processed_data/streams/"))
    [row] = [r for r in _cli_kpis(infra.root, "--store", "dynamodb")["genres"] if r["date"] == "2024-06-26"]
    assert (row["genre"], row["total_streams"], row["total_listen_time"]) == ("jazz", 1, 300.0)
    code, out, err = cli("replay", *flags)
    assert (code, json.loads(out)["replay"]["replayed"]) == (0, 0), err
    [again] = [r for r in _cli_kpis(infra.root, "--store", "dynamodb")["genres"] if r["date"] == "2024-06-26"]
    assert again == row
