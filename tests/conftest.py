"""Shared fixtures. Unmarked tests are fast; tiers are marked (see pyproject).

The moto server fixtures serve every tier that talks to AWS (`aws`, `airflow`): a real moto
server on 127.0.0.1 over HTTP, started once per session; `aws_env` gives a test an empty
account and an environment whose credential chain leads to it. No boto3 call is mocked.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aws_helpers import BUCKET, REGION, TABLE_PREFIX
from playcount.aws import Aws
from playcount.engine import DuckDBEngine, Engine

if TYPE_CHECKING:
    from playcount.bootstrap import BootstrapResult

# Test lakes are written a moment before they are run: no settle wait (SPEC §5), except in the
# tests of the wait itself, which set it.
os.environ.setdefault("PLAYCOUNT_SETTLE_SECONDS", "0")

# Property-based tests (tests/hostile): a small default for CI; `--hypothesis-profile=long` for deep runs.
try:
    from hypothesis import settings as _hypothesis

    _hypothesis.register_profile("ci", max_examples=40, deadline=None)
    _hypothesis.register_profile("long", max_examples=600, deadline=None)
    _hypothesis.load_profile("ci")
except ImportError:  # pragma: no cover - the dev extra brings it
    pass

# py4j logs at INFO from finalizers at interpreter exit, after the handlers that the Airflow tier
# installs have closed their streams: that would print "Logging error" tracebacks after the summary.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """One local SparkSession for the whole test session: 2 cores; tiny data, so 1 partition."""
    pytest.importorskip("pyspark", reason="the spark tier needs the `spark` extra")
    from playcount.engine.spark import local_session

    session = local_session("local[2]", {"spark.sql.shuffle.partitions": "1", "spark.default.parallelism": "1"})
    yield session
    session.stop()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The engine the pure rule and KPI tests run on: each test runs on DuckDB and on Spark."""
    if request.param == "duckdb":
        yield DuckDBEngine(threads=2)
        return
    from playcount.engine.spark import SparkEngine

    spark = SparkEngine(request.getfixturevalue("spark_session"))
    yield spark
    spark.close()


# -- a moto server (the aws and airflow tiers) --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "moto_server"
    found = str(script) if script.exists() else shutil.which("moto_server")
    base = [found] if found else [sys.executable, "-m", "moto.server"]
    return [*base, "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on a free local port, for the whole session."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen(_server_command(port), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {url} (see {log.name})") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """An empty moto account and an environment whose credential chain leads to it."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    for key in list(os.environ):
        if key.startswith(("AWS_", "PLAYCOUNT_")) and key != "PLAYCOUNT_SETTLE_SECONDS":
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.chdir(tmp_path)  # no stray ./playcount.toml
    return moto_url


@pytest.fixture
def aws(aws_env: str) -> Aws:
    """A client factory for the moto server (what `open_run(aws=...)` receives)."""
    return Aws(region=REGION, endpoint_url=aws_env)


@pytest.fixture
def infra(aws: Aws) -> BootstrapResult:
    """The bucket, the three tables and the topic, made by `playcount aws bootstrap`'s code."""
    from playcount.bootstrap import bootstrap

    return bootstrap(aws, bucket=BUCKET, prefix="lake", table_prefix=TABLE_PREFIX, topic="playcount-runs")
