"""Where a run's time goes: one in-process `playcount run` with every engine call timed.

    python benchmarks/profile_run.py                      # the 10M landing zone of run_benchmark.py
    python benchmarks/profile_run.py --streams 1000000
    python benchmarks/profile_run.py --calls              # also every call in order
    python benchmarks/profile_run.py --days 30            # the landing zone with events over 30 dates
    python benchmarks/profile_run.py --days 30 --set partitioned_write_max_open_files=1000   # a DuckDB setting

Uses the landing zone `run_benchmark.py` generated under benchmarks/data/ or `$BENCHMARK_DATA`
(run it first), copied to a temporary root. Prints the stage durations and the peak RSS of the
process, the engine calls that raised that peak (and to what), then the total seconds of each
engine method (materialisations by table name), largest first. For a single query, DuckDB's own profiler
(`PRAGMA enable_profiling='json'`) tells which operator costs what.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run_benchmark import data_dir  # this folder is on sys.path when run as a script

from playcount.engine import DuckDBEngine
from playcount.pipeline import open_run, run_pipeline
from playcount.settings import Settings

HERE = Path(__file__).resolve().parent
TIMED = (
    "read_csv",
    "read_csvs",
    "materialize",
    "write_parquet",
    "write_parquet_parts",
    "write_csv",
    "to_arrow",
    "read_parquet",
)


def _peak() -> float:
    """The process's peak resident set so far, MiB (Linux counts ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


raised: dict[str, float] = {}
"""Per engine call, the peak RSS (MiB) the last call of it that raised the process's peak reached."""
jobs: dict[str, int] = collections.defaultdict(int)
"""Spark: per engine call, the Spark jobs it ran (counted by Spark's status tracker)."""


def _jobs(engine: Any) -> int:
    """The Spark jobs the engine's session has run so far (0 on DuckDB)."""
    session = getattr(engine, "session", None)
    return len(session.sparkContext.statusTracker().getJobIdsForGroup(None)) if session is not None else 0


def _timed(
    totals: dict[str, float], calls: list[tuple[str, float]], name: str, method: Callable[..., Any]
) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: DuckDBEngine, *args: Any, **kwargs: Any) -> Any:
        started, peak, before = time.perf_counter(), _peak(), _jobs(self)
        try:
            return method(self, *args, **kwargs)
        finally:
            prefix = kwargs.get("prefix", args[1] if name == "materialize" and len(args) > 1 else "")
            seconds = time.perf_counter() - started
            key = f"{name} {prefix}".strip()
            totals[key] += seconds
            ran = _jobs(self) - before
            jobs[key] += ran
            calls.append((f"{key} ({ran} jobs)" if ran else key, seconds))
            if _peak() > peak:  # this call raised the process's peak resident set
                raised[key] = _peak()

    return call


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=1, help="the landing zone with events over this many dates")
    p.add_argument("--data", type=Path, help="a landing zone (default: run_benchmark.py's for --streams, --days)")
    p.add_argument("--calls", action="store_true", help="also list every call in order, not only the totals")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a DuckDB setting for the run's connection (what-if experiments; repeatable)",
    )
    p.add_argument(
        "--engine", choices=("duckdb", "spark"), default="duckdb", help="spark: local[2] (PLAYCOUNT_SPARK_MASTER)"
    )
    p.add_argument("--keep", type=Path, help="leave the lake after the run in this (new) folder, to look into")
    args = p.parse_args()
    data = args.data or data_dir(args.streams, days=args.days)
    if not (data / "raw_data").exists():
        shape = "one" if args.days == 1 else "thirty"
        sys.exit(f"no landing zone at {data}: run benchmarks/run_benchmark.py --streams {args.streams} --shape {shape}")
    totals: dict[str, float] = collections.defaultdict(float)
    calls: list[tuple[str, float]] = []
    engine_class: Any = DuckDBEngine
    if args.engine == "spark":
        from playcount.engine.spark import SparkEngine

        engine_class = SparkEngine
    for name in (*TIMED, "scalar", "union"):
        setattr(engine_class, name, _timed(totals, calls, name, getattr(engine_class, name)))
    if args.set:
        init = DuckDBEngine.__init__

        def with_settings(self: DuckDBEngine, *a: Any, **kw: Any) -> None:
            init(self, *a, **kw)
            for setting in args.set:
                name, _, value = setting.partition("=")
                self.db.execute(f"SET {name} = {value}")

        DuckDBEngine.__init__ = with_settings  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="playcount-profile-") as tmp:
        root = Path(tmp) / "lake"
        shutil.copytree(data, root)
        started = time.perf_counter()
        master = os.environ.get("PLAYCOUNT_SPARK_MASTER", "local[2]")
        report = run_pipeline(open_run(Settings(root=str(root), engine=args.engine, spark_master=master)))
        total = time.perf_counter() - started
        if args.keep:
            shutil.copytree(root, args.keep)
    print(
        f"run {report.status} in {total:.1f}s, peak RSS {_peak():,.0f} MiB: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in report.stages.items())
    )
    print(
        "peak RSS raised by: " + ", ".join(f"{k} {v:,.0f} MiB" for k, v in sorted(raised.items(), key=lambda kv: kv[1]))
    )
    if jobs:
        print(f"Spark jobs: {sum(jobs.values())} under the engine calls below (nested calls counted in each)")
    for key, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{seconds:7.2f}s  {key}" + (f"  ({jobs[key]} jobs)" if jobs.get(key) else ""))
    if args.calls:
        print("every call, in order:")
        for key, seconds in calls:
            print(f"{seconds:7.2f}s  {key}")


if __name__ == "__main__":
    main()
