"""The local try-out recipe of docs/airflow.md (`docs/airflow-tryout.sh`), run as a user runs it:
a fresh AIRFLOW_HOME, `airflow db migrate`, moto, bootstrap, `airflow dags test streaming_pipeline`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docs" / "airflow-tryout.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_docs_show_the_script_that_this_test_runs() -> None:
    doc = (REPO / "docs" / "airflow.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", doc, flags=re.S)
    assert SCRIPT.read_text() in blocks, "docs/airflow.md must show docs/airflow-tryout.sh verbatim"


def test_the_tryout_recipe_runs_the_dag_against_moto_without_false_errors(tmp_path: Path) -> None:
    # a user's shell: the virtualenv's commands on the PATH, no AWS or Airflow settings
    env = {
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "MOTO_PORT": str(_free_port()),
        "LANG": "C.UTF-8",
        "COLUMNS": "200",
    }
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert re.search(r"DagRun Finished: dag_id=streaming_pipeline, .*state=success", output), output[-4000:]
    for task in ("run_validation_job", "run_transform_job", "load_to_dynamodb", "notify_success"):
        assert f"end task task_id={task}" in output
    # a successful local-mode run logs no error (no "XCom not found ... glue_job_run_details")
    assert "XCom not found" not in output
    assert not re.findall(r"\[error\s*\].*", output)
    # the KPIs read back from DynamoDB: 1000 clean streams over 2024-06-25, the top five genres
    # (one date: the table names it in its title; then rank, genre, streams)
    assert "2024-06-25" in done.stdout.rsplit("top_genres", 1)[-1]
    top = re.findall(r"^\s*(\d)\s+([\w-]+)\s+([\d,]+)\s*$", done.stdout.rsplit("top_genres", 1)[-1], re.M)
    assert [int(rank) for rank, _, _ in top] == [1, 2, 3, 4, 5], done.stdout[-3000:]
    assert "'clean': 1000, 'bad': 0" in output
