"""The page's location reaches every notifier; runs whose stages run as separate tasks or jobs
(Airflow's final task, Glue's load job with --finish-run) write the page too, in `finish`."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import tiny_lake
from playcount import pipeline
from playcount.notify import LogNotifier, Notification, WebhookNotifier
from playcount.settings import load_settings

NOTE = Notification("R1", "succeeded", "playcount run R1 succeeded", {"clean": 3}, report="s3://b/lake/r.html")


def test_webhook_and_log_carry_the_report_location() -> None:
    bodies: list[dict[str, object]] = []

    def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        bodies.append(json.loads(body))
        return 200

    WebhookNotifier("https://hooks.example/x", post=post).send(NOTE)
    assert bodies[0]["report"] == "s3://b/lake/r.html"
    assert str(bodies[0]["text"]).splitlines()[-1] == "• report: s3://b/lake/r.html"
    lines: list[bytes] = []
    LogNotifier(lines.append).send(NOTE)
    assert json.loads(lines[0])["report"] == "s3://b/lake/r.html"


def test_a_run_finished_from_its_staged_results_writes_its_page(tmp_path: Path) -> None:
    """The sequence the Airflow tasks and the Glue jobs run: each stage on its own, then
    `finish(staged_report(run))` (integrations/airflow.py `notify_success`, glue.py `_load`)."""
    root = tiny_lake(tmp_path, {"a.csv": "1,T1,2024-06-25 10:00:00\n2,T3,2024-06-25 11:00:00\n"})
    run = pipeline.open_run(load_settings(root=str(root)))
    run.save("discover", pipeline.discover(run))
    assert pipeline.validate(run).status == "passed"
    pipeline.transform(run)
    pipeline.compute_kpis(run)
    pipeline.load(run)
    pipeline.archive(run)
    report = pipeline.finish(run, pipeline.staged_report(run))
    assert report.status == "succeeded"
    html = (root / "_playcount/reports" / f"{run.run_id}.html").read_text()
    assert '<dd data-key="rows_in">2</dd>' in html
    # pop (T1) and rock (T3) on 2024-06-25: two bars
    assert 'data-chart="top_genres" data-rows="2"' in html
    note = json.loads((root / "_playcount/notifications.jsonl").read_text().splitlines()[-1])
    assert note["report"] == str(root / "_playcount/reports" / f"{run.run_id}.html")
