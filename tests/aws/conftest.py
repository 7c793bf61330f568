"""The AWS tier: a real moto server on 127.0.0.1 over HTTP, started once per session.

Every test starts from an empty account (`POST /moto-api/reset`), with fake credentials and
`AWS_ENDPOINT_URL` pointing at the server, so code that uses the standard credential chain
(the CLI) talks to moto too. No boto3 call is mocked in-process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("boto3", reason="the aws tier needs the `aws` extra")
pytest.importorskip("moto", reason="the aws tier needs moto[server] (the `dev` extra)")

from aws_helpers import BUCKET, REGION, TABLE_PREFIX  # noqa: E402

from playcount.aws import Aws  # noqa: E402
from playcount.bootstrap import BootstrapResult, bootstrap  # noqa: E402


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


@pytest.fixture(autouse=True)
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """An empty moto account and an environment whose credential chain leads to it."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    for key in list(os.environ):
        if key.startswith(("AWS_", "PLAYCOUNT_")):
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
    return bootstrap(aws, bucket=BUCKET, prefix="lake", table_prefix=TABLE_PREFIX, topic="playcount-runs")
