"""A Spark standalone cluster on 127.0.0.1 for the spark tier: one master and two workers, each a
separate JVM started from the installed pyspark (`$SPARK_HOME/bin/spark-class`), so that a run
on it has a cluster manager, executors in their own processes and Python workers under them, as
on EMR or any cluster (Glue's is YARN's, not this one, but the driver/executor split is the same).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: Each worker offers this much to executors: two workers of one core, one small executor each.
WORKER_CORES = 1
WORKER_MEMORY = "1g"
EXECUTOR_MEMORY = "512m"
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster: its master URL (`spark://127.0.0.1:PORT`) and web UI."""

    master: str
    ui: str
    logs: Path

    def state(self) -> dict[str, Any]:
        """The master's state (its web UI's `/json/`): workers, running and completed apps."""
        with urllib.request.urlopen(f"{self.ui}/json/", timeout=5) as r:
            data: dict[str, Any] = json.load(r)
        return data

    def log_text(self) -> str:
        logs = sorted(self.logs.glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in logs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _env() -> dict[str, str]:
    return {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}


def _start(args: list[str], log: IO[str]) -> subprocess.Popen[bytes]:
    # a process group of its own: the worker's executors (and their Python workers) are in it too
    return subprocess.Popen(
        [str(spark_home() / "bin" / "spark-class"), *args],
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each process group we started (workers first), SIGKILL to what outlives it."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group: an executor that outlived its worker
        proc.wait()


@contextlib.contextmanager
def standalone_cluster(work: Path, workers: int = 2) -> Iterator[Cluster]:
    """Start a master and `workers` workers on free ports of 127.0.0.1; wait until every worker
    has registered; stop them all on exit, whatever happened (the ports are then free again)."""
    work.mkdir(parents=True, exist_ok=True)
    port, ui_port = free_port(), free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", work)
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[IO[str]] = []
    try:
        log = (work / "master.log").open("w")
        logs.append(log)
        master_cmd = ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
        procs.append(_start([*master_cmd, "--port", str(port), "--webui-port", str(ui_port)], log))
        for i in range(workers):
            log = (work / f"worker{i}.log").open("w")
            logs.append(log)
            args = ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--port", str(free_port())]
            args += ["--webui-port", str(free_port()), "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY]
            args += ["--work-dir", str(work / f"worker{i}"), cluster.master]
            procs.insert(0, _start(args, log))  # stopped before the master
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            dead = [p.args for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a Spark daemon exited: {dead}\n{cluster.log_text()}")
            with contextlib.suppress(OSError, ValueError):
                alive = [w for w in cluster.state()["workers"] if w["state"] == "ALIVE"]
                if len(alive) == workers:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not start in {START_TIMEOUT:.0f} s\n{cluster.log_text()}")
            time.sleep(0.5)
        yield cluster
    finally:
        _stop(procs)
        for log in logs:
            log.close()


def cluster_env(cluster: Cluster) -> dict[str, str]:
    """The environment of a `playcount` process whose Spark engine runs on `cluster`: the master
    and small executors through playcount's own settings, the driver on 127.0.0.1, and the
    executors' Python the one that has playcount installed (as a cluster's nodes must have it)."""
    import sys

    conf = {
        "spark.executor.memory": EXECUTOR_MEMORY,
        "spark.executor.cores": str(WORKER_CORES),
        "spark.cores.max": str(2 * WORKER_CORES),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.pyspark.python": sys.executable,
        "spark.sql.shuffle.partitions": "4",
    }
    return {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PLAYCOUNT_SPARK_MASTER": cluster.master,
        "PLAYCOUNT_SPARK_CONF": json.dumps(conf),
    }
