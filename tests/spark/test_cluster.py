"""The whole pipeline on a real Spark cluster manager: a standalone master and two workers on
127.0.0.1 (`spark_cluster.py`), `playcount run --engine spark` with `spark_master` set to it, in a
process of its own (the driver), and the same result as a DuckDB run of the same landing zone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from spark_cluster import cluster_env, standalone_cluster
from spark_helpers import RUN_DATE, outcome, rules_fired

from helpers import copy_lake_inputs, run_json
from playcount.generate import generate_landing_zone

pytestmark = pytest.mark.spark

PLAYCOUNT = str(Path(sys.executable).parent / "playcount")


def test_pipeline_on_a_standalone_cluster_gives_the_duckdb_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYCOUNT_RUN_DATE", RUN_DATE)
    landing = tmp_path / "landing"
    generate_landing_zone(landing, songs=300, users=200, streams=4000, files=4, days=3, bad_ratio=0.03, seed=23)
    duck_root = copy_lake_inputs(landing, tmp_path / "duck")
    spark_root = copy_lake_inputs(landing, tmp_path / "spark")
    code, report = run_json(duck_root)
    assert code == 0 and report["status"] == "succeeded", report
    duck = outcome(duck_root, report)

    with standalone_cluster(tmp_path / "cluster") as cluster:
        assert len(cluster.state()["workers"]) == 2
        proc = subprocess.run(
            [PLAYCOUNT, "run", "--root", str(spark_root), "--json", "--engine", "spark"],
            env=cluster_env(cluster),
            capture_output=True,
            text=True,
            timeout=240,
        )
        state = cluster.state()
        assert proc.returncode == 0, f"{proc.stderr[-4000:]}\n{cluster.log_text()}"
        # the run was the cluster's: one application, finished, with executors on both workers
        apps = state["completedapps"]
        assert [a["name"] for a in apps] == ["playcount"] and apps[0]["state"] == "FINISHED"
        assert state["activeapps"] == []
        executors = [p for p in (tmp_path / "cluster").glob("worker*/app-*/*") if p.is_dir()]
        assert sorted({p.parts[-3] for p in executors}) == ["worker0", "worker1"], executors
    port = int(cluster.master.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):  # the cluster is gone: nothing listens on its port
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

    spark_report = json.loads(proc.stdout)
    assert spark_report["status"] == "succeeded"
    spark = outcome(spark_root, spark_report)
    assert spark.files() == duck.files()
    assert spark.report["dates"] == duck.report["dates"] and len(duck.report["dates"]) == 3
    assert spark.kpis == duck.kpis
    assert spark.bad_rows == duck.bad_rows
    # what was compared is not trivial: rows on every date, rules that fired, bad rows
    assert all(duck.kpis[t] for t in duck.kpis)
    assert rules_fired(duck)["unknown track_id"] > 0 and duck.bad_rows["streams"]
