"""Benchmark: `playcount run` against DuckDB merely counting the rows of the same stream files.

    python benchmarks/run_benchmark.py                # 10M events in 10 files, 90k songs, 200k users
    python benchmarks/run_benchmark.py --streams 1000000

The landing zone is generated once into benchmarks/data/<size>/ (git-ignored) and copied to a
fresh root for every run, since a run archives what it consumes. Each measurement is a separate
process; peak RSS is the child's maximum resident set size. Prints a Markdown table row.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
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


def _timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0,):
        sys.exit(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far: measure the largest first
    return elapsed, max(peak, before) / 1024, proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=10_000_000)
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--songs", type=int, default=90_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--bad-ratio", type=float, default=0.01)
    args = p.parse_args()

    data = HERE / "data" / f"{args.streams}-{args.files}-{args.songs}-{args.users}-{args.bad_ratio}"
    if not (data / "raw_data").exists():
        shutil.rmtree(data, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "playcount.cli", "generate", "--out", str(data), "--songs", str(args.songs),
             "--users", str(args.users), "--streams", str(args.streams), "--files", str(args.files),
             "--bad-ratio", str(args.bad_ratio)],
            check=True,
        )
        print(f"generated {data} in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="playcount-bench-") as tmp:
        root = Path(tmp) / "lake"
        shutil.copytree(data, root)
        run_s, run_rss, out = _timed(
            [sys.executable, "-c", "from playcount.cli import main; main()", "run", "--root", str(root), "--json"]
        )
        report = json.loads(out)
        floor_s, floor_rss, count = _timed([sys.executable, "-c", FLOOR, str(data)])
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report["stages"].items())
    print(f"# {int(count):,} rows in {args.files} files; status {report['status']}; stages: {stages}")
    print("| events | files | DuckDB count floor | playcount run | ratio | peak RSS |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.streams:,} | {args.files} | {floor_s:.1f} s | {run_s:.1f} s | {run_s / floor_s:.1f}x | "
        f"{run_rss:,.0f} MiB |"
    )


if __name__ == "__main__":
    main()
