"""Benchmark: `playcount run` side by side with the convert floor and two lean peers, on the same landing zone.

    python benchmarks/run_benchmark.py                    # 10M events in 10 files, 90k songs, 200k users, 1% bad;
                                                          # both shapes: all events on 1 date, and over 30 dates
    python benchmarks/run_benchmark.py --streams 1M --shape one
    python benchmarks/run_benchmark.py --repeat 3         # 3 rounds of every measurement: the fastest of each
    python benchmarks/run_benchmark.py --engine both      # also playcount on Spark local[2] and the PySpark peer
    python benchmarks/run_benchmark.py --streams 1M --engine spark --only pyspark --only outputs --only playcount
    python benchmarks/run_benchmark.py --spark-scaling --streams 10M --shape one   # local[1] vs local[2],
                                                          # one 10M file vs ten 1M files (Spark)
    python benchmarks/run_benchmark.py --streams 100M --shape one   # 100M: 5 GB of CSV, 10-15 min to generate;
                                                          # the Polars peer then needs about 20 GB

Measured, each in its own process, on the same landing zone:

- **floor**: DuckDB reads the stream CSVs typed and writes them as Parquet partitioned by date, no checks;
- **DuckDB peer** (`peers/duckdb_peer.py`) and **Polars peer** (`peers/polars_peer.py`): the run as a
  lean script, the same checks and KPIs (`peers/check_peers.py` proves they equal playcount's);
- **PySpark peer** (`peers/pyspark_peer.py`, with `--engine spark` or `both`): the run as a plain
  PySpark job (Spark's CSV reader, broadcast joins, `partitionBy` by date), on local[2];
- **PySpark peer + outputs** (`peers/pyspark_outputs_peer.py`, with `--engine spark` or `both`): the
  peer plus the line numbers, reasons, rule counts and bad-row files a run must give, as lean
  PySpark, on local[2];
- **playcount**: `playcount run --json` (its per-stage seconds are printed too).

`--spark-scaling` measures instead playcount on Spark at local[1] and local[2] on the ten-file lake,
and at local[2] on a lake of the same events in one file (the PySpark peer beside each).

Two shapes: `one` (every event on one date, `generate --days 1`) and `thirty` (events over 30 dates in
every file, `--days 30`). A landing zone is generated once into benchmarks/data/<size>/ (git-ignored);
playcount gets a fresh copy for every run, since a run archives what it consumes. Peak RSS is the
largest resident set of the child and its descendants together (Spark: the Python driver, the JVM and
its Python workers), sampled every 0.1 s. Before each measurement the benchmark waits until the
other processes leave the CPUs idle (`--idle`, `--patience`): the machine may be shared. DuckDB
(floor, peer, playcount) runs with the same `--memory-limit` (playcount's default, 1GB); Polars has no
such setting. The Polars peer needs `pip install polars` (not a playcount dependency). Prints Markdown
tables: seconds and peak RSS, the ratios, the peers' steps and playcount's stages.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
SHAPES = {"one": 1, "thirty": 30}
DATA = Path(os.environ.get("BENCHMARK_DATA") or HERE / "data")
"""Where the generated landing zones live (a 100M one is 5 GB: put it on a disk with room)."""

FLOOR = r"""
import duckdb, glob, sys, tempfile
root, out, memory_limit = sys.argv[1:4]
con = duckdb.connect()
con.execute(f"SET memory_limit = '{memory_limit}'; SET temp_directory = '{tempfile.mkdtemp()}'; "
            "SET enable_progress_bar = false")
files = sorted(glob.glob(root + '/raw_data/streams/*.csv'))
cols = {'user_id': 'BIGINT', 'track_id': 'VARCHAR', 'listen_time': 'TIMESTAMP'}
rel = con.read_csv(files, header=True, columns=cols, sep=',', quotechar='"', escapechar='"', auto_detect=False,
                   ignore_errors=True)
con.execute(f"COPY (SELECT *, CAST(listen_time AS DATE) AS date FROM rel) TO '{out}' "
            "(FORMAT parquet, PARTITION_BY (date))")
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


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str, str]:
    """Wall seconds, peak RSS (MiB, the process tree), stdout and stderr of one child process."""
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
    if proc.returncode != 0:
        sys.exit(f"{cmd[:3]} failed ({proc.returncode}):\n{err[-3000:]}")
    # ru_maxrss of children is the largest single process of all children so far: it tells this
    # child's peak only when this child raised it; the samples cover the rest (and process trees)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak if peak > before else 0, sampled[0]) / 1024, out, err


def _busy(seconds: float = 2.0) -> float:
    """The share of the machine's CPU time spent busy over `seconds` (Linux /proc/stat; 0 elsewhere)."""

    def sample() -> tuple[int, int]:
        try:
            values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except OSError:
            return 0, 0
        return sum(values), values[3] + values[4]  # total, idle + iowait

    (t0, i0), _, (t1, i1) = sample(), time.sleep(seconds), sample()
    return 1 - (i1 - i0) / (t1 - t0) if t1 > t0 else 0.0


def wait_idle(threshold: float, patience: float) -> float:
    """Wait (at most `patience` seconds) until other processes use less than `threshold` of the CPUs;
    returns the share last seen. The machine is shared: a measurement next to someone's test suite
    takes two to four times as long."""
    deadline = time.monotonic() + patience
    busy = _busy()
    while busy > threshold and time.monotonic() < deadline:
        time.sleep(5)
        busy = _busy()
    return busy


def count(text: str) -> int:
    """`10M`, `20k`, `100000000` -> an integer."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def data_dir(
    streams: int, files: int = 10, songs: int = 90_000, users: int = 200_000, bad_ratio: float = 0.01, days: int = 1
) -> Path:
    """Where the landing zone of these sizes lives (`profile_run.py` and `lower_bound.py` use it too):
    under `$BENCHMARK_DATA`, else `benchmarks/data/`."""
    return DATA / (f"{streams}-{files}-{songs}-{users}-{bad_ratio}" + (f"-{days}d" if days > 1 else ""))


def generate(data: Path, args: argparse.Namespace, days: int) -> None:
    if (data / "raw_data").exists():
        return
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
            "--days",
            str(days),
        ],
        check=True,
    )
    print(f"generated {data} in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def measure(name: str, data: Path, args: argparse.Namespace) -> tuple[float, float, dict[str, float]]:
    """Seconds, peak RSS (MiB) and the seconds per step: playcount's stages (its report), a peer's steps
    (the lines `  1.23s  name` it prints on stderr)."""
    with tempfile.TemporaryDirectory(prefix="playcount-bench-", dir=args.tmp) as tmp:
        out = str(Path(tmp) / "out")
        env = dict(os.environ, PLAYCOUNT_MEMORY_LIMIT=args.memory_limit)
        if name == "floor":
            cmd = [sys.executable, "-c", FLOOR, str(data), out, args.memory_limit]
        elif name == "DuckDB peer":
            cmd = [sys.executable, str(PEERS / "duckdb_peer.py"), str(data), out, "--memory-limit", args.memory_limit]
        elif name == "Polars peer":
            cmd = [sys.executable, str(PEERS / "polars_peer.py"), str(data), out]
        elif name.startswith("PySpark peer"):  # the peer, or the peer + outputs
            master = re.search(r"local\[\d+\]", name)
            script = "pyspark_outputs_peer.py" if name.startswith("PySpark peer + outputs") else "pyspark_peer.py"
            cmd = [sys.executable, str(PEERS / script), str(data), out]
            cmd += ["--master", master[0] if master else "local[2]", "--driver-memory", args.spark_driver_memory]
        else:
            engine = "spark" if "Spark" in name else "duckdb"
            if engine == "spark":
                master = re.search(r"local\[\d+\]", name)
                env["PLAYCOUNT_SPARK_MASTER"] = master[0] if master else "local[2]"
                env["PLAYCOUNT_SPARK_CONF"] = json.dumps({"spark.driver.memory": args.spark_driver_memory})
            root = Path(tmp) / "lake"
            shutil.copytree(data, root)
            cmd = [
                sys.executable,
                "-c",
                "from playcount.cli import main; main()",
                "run",
                "--root",
                str(root),
                "--json",
                "--engine",
                engine,
            ]
        seconds, rss, stdout, stderr = _timed(cmd, env)
    if not name.startswith("playcount"):
        found = (re.fullmatch(r"\s*([\d.]+)s  (.+)", line) for line in stderr.splitlines())
        return seconds, rss, {m[2]: float(m[1]) for m in found if m}
    report = json.loads(stdout)
    if report["status"] != "succeeded":
        sys.exit(f"{name}: {report['status']}: {report['reason']}")
    return seconds, rss, report["stages"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=count, default=10_000_000, help="events (10M, 100M, 20k, ...)")
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--songs", type=count, default=90_000)
    p.add_argument("--users", type=count, default=200_000)
    p.add_argument("--bad-ratio", type=float, default=0.01)
    p.add_argument(
        "--shape",
        choices=("one", "thirty", "both"),
        default="both",
        help="one: all events on 1 date; thirty: over 30 dates in every file",
    )
    p.add_argument("--repeat", type=int, default=1, help="measure each N times, round after round; keep the fastest")
    p.add_argument("--memory-limit", default="1GB", help="DuckDB's, for the floor, the DuckDB peer and playcount")
    p.add_argument(
        "--engine",
        choices=("duckdb", "spark", "both"),
        default="duckdb",
        help="playcount's engine; spark: a local[2] session (the `spark` extra)",
    )
    p.add_argument(
        "--spark-scaling",
        action="store_true",
        help="playcount on Spark at local[1] and local[2], and on the same events in one file (see above)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=("floor", "duckdb", "polars", "pyspark", "outputs", "playcount"),
        help="measure only these (repeatable; default: all). The ratios need both peers and the floor",
    )
    p.add_argument("--spark-driver-memory", default="4g", help="the local Spark JVM's heap")
    p.add_argument(
        "--idle",
        type=float,
        default=0.3,
        help="before each measurement, wait until the other processes use less than this share of the "
        "CPUs (1 to never wait)",
    )
    p.add_argument("--patience", type=float, default=120, help="the longest wait for --idle, seconds")
    p.add_argument("--tmp", help="folder for the outputs and playcount's copy of the lake (default: the system's)")
    args = p.parse_args()

    shapes = list(SHAPES) if args.shape == "both" else [args.shape]
    if args.spark_scaling:
        scaling(args, shapes)
        return
    names = ["floor", "DuckDB peer", "Polars peer"]
    names += {
        "duckdb": ["playcount"],
        "spark": ["PySpark peer", "PySpark peer + outputs", "playcount (Spark local[2])"],
        "both": ["PySpark peer", "PySpark peer + outputs", "playcount", "playcount (Spark local[2])"],
    }[args.engine]
    if args.only:
        short = {
            "floor": "floor",
            "DuckDB peer": "duckdb",
            "Polars peer": "polars",
            "PySpark peer": "pyspark",
            "PySpark peer + outputs": "outputs",
        }
        names = [n for n in names if short.get(n, "playcount") in args.only]
    best: dict[tuple[str, str], tuple[float, float]] = {}
    steps: dict[tuple[str, str], dict[str, float]] = {}  # of the fastest round
    lakes = {s: data_dir(args.streams, args.files, args.songs, args.users, args.bad_ratio, SHAPES[s]) for s in shapes}
    for shape, data in lakes.items():
        generate(data, args, SHAPES[shape])
    # round after round over every shape and measurement, so that each sees the machine's moods alike
    for i in range(args.repeat):
        for shape, data in lakes.items():
            for name in names:
                busy = wait_idle(args.idle, args.patience)
                seconds, rss, timings = measure(name, data, args)
                print(
                    f"# {shape}, {name}, round {i + 1}: {seconds:.1f} s, {rss:,.0f} MiB (CPUs {busy:.0%} busy before)",
                    file=sys.stderr,
                    flush=True,
                )
                old = best.get((shape, name))
                if old is None or seconds < old[0]:
                    steps[(shape, name)] = timings
                best[(shape, name)] = (min(seconds, old[0]) if old else seconds, max(rss, old[1]) if old else rss)

    label = {"one": "1 date", "thirty": "30 dates"}
    print(
        f"\n{args.streams:,} events in {args.files} files, {args.songs:,} songs, {args.users:,} users, "
        f"{args.bad_ratio:.0%} bad rows; DuckDB memory_limit {args.memory_limit}"
        + (f"; fastest of {args.repeat}" if args.repeat > 1 else "")
        + "\n"
    )
    print("| |" + "".join(f" {label[s]}: seconds | {label[s]}: peak RSS |" for s in shapes))
    print("|---|" + "---|---|" * len(shapes))
    for name in names:
        print(f"| {name} |" + "".join(f" {best[(s, name)][0]:.1f} s | {best[(s, name)][1]:,.0f} MiB |" for s in shapes))
    peers = [n for n in ("DuckDB peer", "Polars peer") if n in names]
    refs = {"faster peer": peers, "floor": ["floor"] if "floor" in names else []}
    for name in (n for n in names if n.startswith("playcount") or n == "PySpark peer + outputs"):
        spark = "Spark" in name
        for ref, of in (
            {
                "PySpark peer": ["PySpark peer"] if "PySpark peer" in names else [],
                "PySpark peer + outputs": ["PySpark peer + outputs"]
                if "PySpark peer + outputs" in names and name.startswith("playcount")
                else [],
            }
            if spark
            else refs
        ).items():
            if of:
                cells = "".join(f" {best[(s, name)][0] / min(best[(s, r)][0] for r in of):.1f}x | |" for s in shapes)
                print(f"| {name} / {ref} |{cells}")
    for name in (n for n in names if n != "floor"):
        what = "stage (`playcount run --json`)" if name.startswith("playcount") else "step (its stderr)"
        print(f"\n{name}, seconds per {what}, the fastest round:\n")
        print("| |" + "".join(f" {label[s]} |" for s in shapes))
        print("|---|" + "---|" * len(shapes))
        for k in steps[(shapes[0], name)]:
            print(f"| {k} |" + "".join(f" {steps[(s, name)].get(k, 0):.1f} |" for s in shapes))


def scaling(args: argparse.Namespace, shapes: list[str]) -> None:
    """playcount on Spark (and the PySpark peer, and the peer + outputs) at local[1] and local[2] over
    `args.files` files, and at local[2] over the same events in one file; the fastest of `--repeat`
    rounds; a Markdown table."""
    runs = [
        (f"{args.files} files", "local[1]"),
        (f"{args.files} files", "local[2]"),
        ("1 file", "local[2]"),
    ]
    short = {"PySpark peer": "pyspark", "PySpark peer + outputs": "outputs", "playcount (Spark": "playcount"}
    whos = [w for w, only in short.items() if not args.only or only in args.only]
    best: dict[tuple[str, str, str, str], float] = {}
    for shape in shapes:
        lakes = {
            f"{args.files} files": data_dir(
                args.streams, args.files, args.songs, args.users, args.bad_ratio, SHAPES[shape]
            ),
            "1 file": data_dir(args.streams, 1, args.songs, args.users, args.bad_ratio, SHAPES[shape]),
        }
        for lake, data in lakes.items():
            generate(data, argparse.Namespace(**{**vars(args), "files": int(lake.split()[0])}), SHAPES[shape])
        for i in range(args.repeat):
            for lake, master in runs:
                for who in whos:
                    name = f"{who} {master}" + (")" if who.startswith("playcount") else "")
                    busy = wait_idle(args.idle, args.patience)
                    seconds, rss, _ = measure(name, lakes[lake], args)
                    print(
                        f"# {shape}, {lake}, {name}, round {i + 1}: {seconds:.1f} s, {rss:,.0f} MiB "
                        f"(CPUs {busy:.0%} busy before)",
                        file=sys.stderr,
                        flush=True,
                    )
                    key = (shape, lake, master, who)
                    best[key] = min(seconds, best.get(key, seconds))
    print(f"\n{args.streams:,} events, {args.songs:,} songs, {args.users:,} users, {args.bad_ratio:.0%} bad rows")
    for shape in shapes:
        print(f"\n{shape}: seconds" + (f", fastest of {args.repeat}" if args.repeat > 1 else "") + "\n")
        heads = {
            "PySpark peer": "PySpark peer",
            "PySpark peer + outputs": "peer + outputs",
            "playcount (Spark": "playcount on Spark",
        }
        print("| |" + "".join(f" {heads[w]} |" for w in whos) + "\n|---|" + "---|" * len(whos))
        for lake, master in runs:
            cells = " | ".join(f"{best[(shape, lake, master, w)]:.1f} s" for w in whos)
            print(f"| {lake}, {master} | {cells} |")
        many, one = f"{args.files} files", "1 file"
        for label, a, b in (
            ("local[1] / local[2]", (many, "local[1]"), (many, "local[2]")),
            (f"1 file / {many}, local[2]", (one, "local[2]"), (many, "local[2]")),
        ):
            cells = " | ".join(f"{best[(shape, *a, w)] / best[(shape, *b, w)]:.2f}x" for w in whos)
            print(f"| {label} | {cells} |")


if __name__ == "__main__":
    main()
