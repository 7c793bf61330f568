"""The airflow tier: the DAG of `dags/` run in-process by `dag.test()` against the moto server.

Airflow reads its configuration when it is first imported, so this conftest points it at a
temporary AIRFLOW_HOME (SQLite metadata database, no examples, our DAG folder) before any test
module of the tier imports it; the session fixture `airflow_db` migrates that database once.
Connections and Variables are given per test as `AIRFLOW_CONN_*` / `AIRFLOW_VAR_*` variables.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("airflow") is None or importlib.util.find_spec("moto") is None:
    pytest.skip("the airflow tier needs the `airflow`, `aws` and `dev` extras", allow_module_level=True)

_HOME = tempfile.mkdtemp(prefix="playcount-airflow-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ.update(
    {
        "AIRFLOW_HOME": _HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parents[2] / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": f"{_HOME}/logs",
    }
)

from airflow_helpers import DAGS, LAKE, RUN_DATE  # noqa: E402

from aws_helpers import BUCKET, REGION, TABLE_PREFIX  # noqa: E402
from playcount.aws import Aws  # noqa: E402
from playcount.bootstrap import BootstrapResult  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Airflow's metadata database, migrated once per session (`airflow db migrate`)."""
    airflow = Path(sys.executable).parent / "airflow"
    command = [str(airflow)] if airflow.exists() else [sys.executable, "-m", "airflow"]
    done = subprocess.run([*command, "db", "migrate"], env=os.environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return _HOME


@pytest.fixture(scope="session")
def dag(airflow_db: str) -> Any:
    """The DAG as the DAG processor loads it from the DAG folder (no import errors)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.get_dag("streaming_pipeline")


@pytest.fixture
def fast(dag: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The DAG with test-sized waits: 1 s between retries, Glue polled every 0.1 s."""
    for task in dag.tasks:
        monkeypatch.setattr(task, "retry_delay", timedelta(seconds=1))
        if hasattr(task, "job_poll_interval"):
            monkeypatch.setattr(task, "job_poll_interval", 0.1)
    return dag


@pytest.fixture
def airflow_env(aws_env: str, aws: Aws, infra: BootstrapResult, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The Variables and the connection `aws_default` for the lake, tables and topic of `infra`.

    `AWS_ENDPOINT_URL` is removed: the tasks reach moto only through the connection's
    `endpoint_url` extra, as a self-hosted Airflow reaches an S3-compatible store.
    """
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"region_name": REGION, "endpoint_url": aws_env},
    }
    variables = {
        "S3_BUCKET": BUCKET,
        "PLAYCOUNT_LAKE_PREFIX": LAKE,
        "S3_STREAMING_PREFIX": f"{LAKE}/raw_data/streams",
        "SNS_TOPIC_ARN": infra.topic_arn,
        "PLAYCOUNT_SETTINGS": json.dumps({"run_date": RUN_DATE, "store": {"table_prefix": TABLE_PREFIX}}),
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    for name, value in variables.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_{name}", value)
    return variables
