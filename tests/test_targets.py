"""Stores, notifiers and AWS settings that need no AWS: the webhook (a local HTTP server),
SNS subjects, the `store`/`notify`/`aws` settings and flags, and what pure code may import."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import run_json, tiny_lake
from playcount.errors import PlaycountError, SettingsError
from playcount.notify import Notification, WebhookNotifier, notify_safely
from playcount.notify.sns import sns_subject
from playcount.settings import load_settings

NOTE = Notification(
    "20240627T120000Z-abc123",
    "succeeded",
    "playcount run 20240627T120000Z-abc123 succeeded: 4 clean / 3 bad rows",
    {
        "status": "succeeded",
        "clean": 4,
        "bad": 3,
        "dates": ["2024-06-25"],
        "kpi_rows": {"genre_kpis": 2},
        "rejected_files": [],
    },
)


class _Receiver(http.server.BaseHTTPRequestHandler):
    statuses: list[int] = []
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers["Content-Length"])
        type(self).bodies.append({"type": self.headers["Content-Type"], **json.loads(self.rfile.read(length))})
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    """A webhook receiver on 127.0.0.1 that answers with the queued statuses (then 200)."""
    handler = type("Receiver", (_Receiver,), {"statuses": [], "bodies": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token", handler
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_slack_compatible_json(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    WebhookNotifier(url, timeout=2, retries=0).send(NOTE)
    [got] = handler.bodies
    assert got["type"] == "application/json"
    assert got["text"].splitlines()[0] == f":white_check_mark: *{NOTE.subject}*"
    assert "• clean: 4" in got["text"] and "• kpi rows: genre_kpis 2" in got["text"]
    assert (got["run_id"], got["status"], got["summary"]["bad"]) == (NOTE.run_id, "succeeded", 3)


def test_webhook_retries_transient_failures_only(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    handler.statuses = [503, 429]
    WebhookNotifier(url, timeout=2, retries=2, sleep=lambda s: None).send(NOTE)
    assert len(handler.bodies) == 3
    handler.bodies.clear()
    handler.statuses = [404]
    with pytest.raises(PlaycountError, match=r"HTTP 404") as caught:
        WebhookNotifier(url, timeout=2, retries=3, sleep=lambda s: None).send(NOTE)
    assert len(handler.bodies) == 1  # a 4xx is not retried
    assert "secret-token" not in str(caught.value)  # webhook paths are secrets


def test_webhook_down_is_logged_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifier = WebhookNotifier(f"http://127.0.0.1:{port}/x", timeout=1, retries=1, sleep=lambda s: None)
    assert notify_safely(notifier, NOTE) is False
    assert "notification for run" in caplog.text and "did not accept" in caplog.text


def test_failing_webhook_leaves_the_run_succeeded(
    tmp_path: Path, receiver: tuple[str, type[_Receiver]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = receiver
    handler.statuses = [500, 500, 500, 500]
    monkeypatch.setenv("PLAYCOUNT_NOTIFY__URL", url)
    monkeypatch.setenv("PLAYCOUNT_NOTIFY__RETRIES", "1")
    root = tiny_lake(tmp_path, {"a.csv": "1,T1,2024-06-25 10:00:00\n"})
    code, report = run_json(root, "--notify", "webhook")
    assert (code, report["status"]) == (0, "succeeded")
    assert len(handler.bodies) == 2 and handler.bodies[0]["run_id"] == report["run_id"]


def test_sns_subject_is_printable_ascii_of_at_most_100_chars() -> None:
    assert sns_subject("playcount run x succeeded: 1 clean") == "playcount run x succeeded: 1 clean"
    assert sns_subject("line\nbreak – ünïcode") == "line break ? ?n?code"
    assert len(sns_subject("x" * 300)) == 100
    assert sns_subject("\n") == "playcount run"


def test_store_and_notify_settings_are_typed_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(store={"type": "dynamodb"}, notify={"type": "webhook", "url": "https://hooks.example/x"})
    assert (s.store.type, s.store.table_prefix) == ("dynamodb", "playcount_")  # type: ignore[union-attr]
    assert (s.notify.timeout, s.notify.retries) == (10.0, 3)  # type: ignore[union-attr]
    # a key implies its type; the environment fills in the flag's section
    monkeypatch.setenv("PLAYCOUNT_NOTIFY__TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:runs")
    monkeypatch.setenv("PLAYCOUNT_STORE__TABLE_PREFIX", "prod_")
    monkeypatch.setenv("PLAYCOUNT_AWS__REGION", "eu-west-1")
    s = load_settings(store={"type": "dynamodb"})
    assert (s.notify.type, s.store.table_prefix, s.aws.region) == ("sns", "prod_", "eu-west-1")  # type: ignore[union-attr]
    monkeypatch.delenv("PLAYCOUNT_NOTIFY__TOPIC_ARN")
    with pytest.raises(SettingsError, match="`notify.sns.topic_arn` is required"):
        load_settings(notify={"type": "sns"})
    with pytest.raises(SettingsError, match="type must be duckdb, dynamodb or memory"):
        load_settings(store={"type": "dynamo"})
    with pytest.raises(SettingsError, match="unknown setting `store.dynamodb.path`"):
        load_settings(store={"type": "dynamodb", "path": "x"})
    with pytest.raises(SettingsError, match="unknown setting `aws.secret_key`"):
        load_settings(aws={"secret_key": "x"})


def test_duckdb_store_on_an_s3_root_needs_a_local_path() -> None:
    from playcount.aws import Aws
    from playcount.wiring import open_store

    with pytest.raises(SettingsError, match="needs a local `store.path`"):
        open_store(load_settings(root="s3://bucket/lake"), Aws())


def test_pure_code_imports_neither_boto3_nor_the_lake() -> None:
    code = (
        "import sys\n"
        "import playcount.contracts, playcount.validation, playcount.transform, playcount.kpis\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'boto3' or m.startswith(('playcount.lake', "
        "'playcount.stores', 'playcount.notify', 'playcount.aws'))]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
