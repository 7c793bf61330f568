"""Benchmark: `playcount run` against DuckDB merely counting the rows of the same stream files.

    python benchmarks/run_benchmark.py                # 10M events in 10 files, 90k songs, 200k users
    python benchmarks/run_benchmark.py --streams 1000000
    python benchmarks/run_benchmark.py --engine both  # DuckDB and Spark local[2], side by side

The landing zone is generated once into benchmarks/data/<size>/ (git-ignored) and copied to a
fresh root for every run, since a run archives what it consumes. Each measurement is a separate
process; peak RSS is the largest resident set of the child and its descendants together (Spark:
the Python driver, the JVM and its Python workers), sampled every 0.1 s. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FLOOR = r"""
import duckdb, glob, sys
files = sorted(glob.glob(sys.argv[1] + '/raw_data/streams/*.csv'))
cols = {'user_id': 'VARCHAR', 'track_id': 'VARCHAR', 'listen_time': 'VARCHAR'}
rel = duckdb.read_csv(files, header=True, columns=cols, sep=',', quotechar='"', escapechar='"', auto_detect=False,
                      ignore_errors=True)
print(rel.count('*').fetchone()[0])
"""


def _tree_rss(pid: int) -> int:
    """Resident KiB of `pid` and all its descendants (Linux /proc; 0 elsewhere)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/status").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip())
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(p, 0) for p in tree)


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB, the process tree) and stdout of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sampled = [0]

    def sample() -> None:
        while proc.poll() is None:
            sampled[0] = max(sampled[0], _tree_rss(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    sampler.join()
    if proc.returncode not in (0,):
        sys.exit(f"{cmd[:3]} failed ({proc.returncode}):\n{err[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far: measure the largest first
    return elapsed, max(peak, before, sampled[0]) / 1024, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=10_000_000)
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--songs", type=int, default=90_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--bad-ratio", type=float, default=0.01)
    p.add_argument(
        "--engine",
        choices=("duckdb", "spark", "both"),
        default="duckdb",
        help="spark: a local[2] session (the `spark` extra)",
    )
    p.add_argument("--spark-driver-memory", default="4g", help="the local Spark JVM's heap")
    args = p.parse_args()

    data = HERE / "data" / f"{args.streams}-{args.files}-{args.songs}-{args.users}-{args.bad_ratio}"
    if not (data / "raw_data").exists():
        shutil.rmtree(data, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "playcount.cli",
                "generate",
                "--out",
                str(data),
                "--songs",
                str(args.songs),
                "--users",
                str(args.users),
                "--streams",
                str(args.streams),
                "--files",
                str(args.files),
                "--bad-ratio",
                str(args.bad_ratio),
            ],
            check=True,
        )
        print(f"generated {data} in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    engines = ["duckdb", "spark"] if args.engine == "both" else [args.engine]
    results = []
    for engine in engines:
        env = dict(os.environ)
        if engine == "spark":
            env["PLAYCOUNT_SPARK_MASTER"] = "local[2]"
            env["PLAYCOUNT_SPARK_CONF"] = json.dumps({"spark.driver.memory": args.spark_driver_memory})
        with tempfile.TemporaryDirectory(prefix="playcount-bench-") as tmp:
            root = Path(tmp) / "lake"
            shutil.copytree(data, root)
            run_s, run_rss, out = _timed(
                [
                    sys.executable,
                    "-c",
                    "from playcount.cli import main; main()",
                    "run",
                    "--root",
                    str(root),
                    "--json",
                    "--engine",
                    engine,
                ],
                env,
            )
        report = json.loads(out)
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in report["stages"].items())
        print(f"# {engine}: status {report['status']}; stages: {stages}")
        results.append((engine, run_s, run_rss))
    floor_s, floor_rss, count = _timed([sys.executable, "-c", FLOOR, str(data)])
    print(f"# {int(count):,} rows in {args.files} files")
    print("| events | files | engine | DuckDB count floor | playcount run | ratio | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for engine, run_s, run_rss in results:
        name = "Spark local[2]" if engine == "spark" else "DuckDB"
        print(
            f"| {args.streams:,} | {args.files} | {name} | {floor_s:.1f} s | {run_s:.1f} s | {run_s / floor_s:.1f}x | "
            f"{run_rss:,.0f} MiB |"
        )


if __name__ == "__main__":
    main()
