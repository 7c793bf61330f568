"""Helpers for the airflow tier: running the DAG, reading KPIs back, a stand-in for AWS Glue."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_helpers import TABLE_PREFIX
from playcount.aws import Aws
from playcount.stores import DynamoDBStore

DAGS = Path(__file__).resolve().parents[2] / "dags"
LAKE = "lake"
RUN_DATE = "2024-06-27"
JOBS = {"validate": "playcount-validate", "transform": "playcount-transform", "load": "playcount-load"}
KPI_TABLES = ("genre_kpis", "top_songs", "top_genres")


def run_dag(dag: Any) -> tuple[Any, dict[str, str]]:
    """One DAG run through `dag.test()`: the DagRun and each task's final state."""
    dag_run = dag.test()
    return dag_run, {ti.task_id: state(ti) for ti in dag_run.get_task_instances()}


def state(instance: Any) -> str:
    """A DagRun's or TaskInstance's state as its plain name (`success`, `skipped`, ...)."""
    return str(getattr(instance.state, "value", instance.state))


def try_numbers(dag_run: Any) -> dict[str, int]:
    return {ti.task_id: ti.try_number for ti in dag_run.get_task_instances()}


def dynamodb_kpis(aws: Aws) -> dict[str, list[dict[str, Any]]]:
    """Every KPI table in DynamoDB, as the store reads it back."""
    store = DynamoDBStore(aws.client("dynamodb"), table_prefix=TABLE_PREFIX)
    return {t: store.read(t).to_pylist() for t in KPI_TABLES}


def _moto_api(moto_url: str, action: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{moto_url}/moto-api/state-manager/{action}", data=json.dumps(body).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()


class GlueStandIn:
    """Plays AWS Glue for moto, whose job runs execute nothing.

    Job runs are held in STARTING; when one appears, the stand-in runs what the job's script
    would (`work(job_name, arguments)`), then lets moto finish the run, so the operator polling
    it sees SUCCEEDED only after the job's work is in the lake.
    """

    _MODEL = "glue::job_run"

    def __init__(self, aws: Aws, moto_url: str, work: Callable[[str, dict[str, str]], None]) -> None:
        self.glue = aws.client("glue")
        self.moto_url = moto_url
        self.work = work
        self.runs: list[tuple[str, dict[str, str]]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glue-stand-in", daemon=True)

    def _hold(self) -> None:
        _moto_api(
            self.moto_url,
            "set-transition",
            {"model_name": self._MODEL, "transition": {"progression": "manual", "times": 10**9}},
        )

    def _loop(self) -> None:
        seen: set[str] = set()
        while not self._stop.wait(0.05):
            for job in JOBS.values():
                for run in self.glue.get_job_runs(JobName=job)["JobRuns"]:
                    if run["Id"] in seen:
                        continue
                    seen.add(run["Id"])
                    args = dict(run.get("Arguments") or {})
                    self.runs.append((job, args))
                    try:
                        self.work(job, args)
                    except BaseException as e:  # noqa: BLE001 - reported by the test
                        self.errors.append(e)
                    # let moto finish this run (our own read makes it SUCCEEDED), then hold again
                    _moto_api(
                        self.moto_url,
                        "set-transition",
                        {"model_name": self._MODEL, "transition": {"progression": "immediate"}},
                    )
                    self.glue.get_job_run(JobName=job, RunId=run["Id"])
                    self._hold()

    def __enter__(self) -> GlueStandIn:
        self._hold()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        _moto_api(self.moto_url, "unset-transition", {"model_name": self._MODEL})
