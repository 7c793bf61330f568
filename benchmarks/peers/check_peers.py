"""Do the peers compute playcount's KPIs? Runs `playcount run` and the peers on one small lake and compares.

    python benchmarks/peers/check_peers.py                       # 20k events over 3 dates, 1% bad rows
    python benchmarks/peers/check_peers.py --streams 200000 --days 30
    python benchmarks/peers/check_peers.py --lab                 # also the real lab data (../shared/lab-data)

The lake is generated (`playcount generate`, bad rows of every rule) with three more stream files
of edge cases beside it: every timestamp form (offsets, `Z`, fractions, no seconds, blanks), blanks
and signs around ids, quoted fields, CRLF and a BOM, reordered and extra columns, malformed rows
(a trailing empty field), duplicates equal only once typed, a repeat across files, invalid offsets
and years, and a file over the bad-row limit (rejected whole). Compares per stream file rows, bad
rows and rejection with playcount's run report, the unique events with its Parquet events, and the
three KPI tables row for row (exact values) with its KPI store. Exit 1 on any difference.
Needs Polars for the Polars peer (`pip install polars`) and the `spark` extra for the PySpark peer.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
PEERS = {
    "duckdb peer": HERE / "duckdb_peer.py",
    "polars peer": HERE / "polars_peer.py",
    "pyspark peer": HERE / "pyspark_peer.py",
}
KPIS = ("genre_kpis", "top_songs", "top_genres")
LAB = HERE.parents[2] / "shared" / "lab-data"


def _unique_rows(path: Path, key: str) -> list[dict[str, str]]:
    """The well-formed rows of a CSV whose `key` occurs once."""
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if None not in r and None not in r.values()]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[key]] = counts.get(r[key], 0) + 1
    return [r for r in rows if counts[r[key]] == 1]


def _valid_ids(raw: Path) -> tuple[list[str], list[str]]:
    """A few user ids and track ids that are clean in the generated reference data."""
    users = [
        r["user_id"]
        for r in _unique_rows(raw / "users" / "users.csv", "user_id")
        if r["user_id"].isdigit()
        and r["user_age"].isdigit()
        and 13 <= int(r["user_age"]) <= 120
        and r["created_at"][:2] in ("19", "20")
    ]
    tracks = [
        r["track_id"]
        for r in _unique_rows(raw / "songs" / "songs.csv", "track_id")
        if r["track_id"].strip() == r["track_id"] != ""
        and r["track_genre"].strip()
        and r["duration_ms"].isdigit()
        and 0 < int(r["duration_ms"]) <= 86_400_000
        and r["popularity"].isdigit()
        and int(r["popularity"]) <= 100
        and r["explicit"] in ("True", "False")
    ]
    return users[:40], tracks[:40]


def write_edge_files(raw: Path) -> None:
    """Three stream files of edge cases (see the module docstring) beside the generated ones."""
    users, tracks = _valid_ids(raw)
    u, t = users[0], tracks[0]
    first = (raw / "streams" / "streams_001.csv").read_text().splitlines()[1]
    times = [  # clean
        "2024-06-25T10:00:03Z",
        "2024-06-25T12:00:04+02:00",
        "2024-06-25T12:00:05+0200",
        "2024-06-25T12:00:06+02",
        "2024-06-25 23:30:00-05:00",
        "2024-06-25T10:00:07.123456Z",
        "2024-06-25T10:08",
        "2024-06-25 10:00:09 +01:00",
        " 2024-06-25T10:00:10 ",
        "2024-06-24T23:59:59-14:00",
        "2024-06-25 10:00:12.5",
    ]
    bad_times = [
        "2024-06-25 24:00:00",
        "2024-06-26T24:00:00.000+01:00",
        "2024-06-25T10:00:00+14:60",
        "2024-06-25T10:00:00+15:00",
        "2024-06-25 10:00:00+99:99",
        "0000-01-01 00:00:00",
        "0001-01-01T00:30:00+01:00",
        "2024-02-30 10:00:00",
        "2024-06-25",
        "9999-12-31 23:59:59",
        "2024-06-25 23:59:60",
        "2024-06-25 24:00:01",
        "2024-06-25T10:00:27.1234567Z",
        '2024-06-25 10:00:26"',
    ]
    ok = [
        f" {u} , {t} ,2024-06-25 10:00:00",
        f"+{u},{t},2024-06-25 10:00:01",
        f'"{u}","{t}","2024-06-25 10:00:02"',
        f"{u},\t{t}\x0b,2024-06-25 10:00:11",
        f"0{u},{t},2024-06-25 10:00:13",
        first,
        *[f"{u},{t},{x}" for x in times + bad_times],
        f"1e3,{t},2024-06-25 10:00:20",
        f"{u}.0,{t},2024-06-25 10:00:21",
        f"1_0,{t},2024-06-25 10:00:22",
        f"{u},{t.lower()},2024-06-25 10:00:23",
        f"{u},{t},2024-06-25 10:00:24,",
        f"{u},{t}",
        f"{u},{t},2024-06-25 10:00:25,x,y",
        f"{u},{t},2024-06-25 10:00:03",
        f"{u}, {t},2024-06-25T10:00:03Z",
    ]
    filler = [
        f"{users[i % len(users)]},{tracks[(i * 7) % len(tracks)]},2024-06-{25 + i % 3} 11:{i // 60 % 60:02d}:"
        f"{i % 60:02d}"
        for i in range(600)
    ]
    (raw / "streams" / "zz_edge.csv").write_bytes(
        ("\ufeffuser_id,track_id,listen_time\r\n" + "\r\n".join(ok + filler) + "\r\n").encode()
    )
    cols = [f'2024-06-26 09:{i // 60:02d}:{i % 60:02d},"x, ""y""",{users[i % 9]},{tracks[i % 11]}' for i in range(90)]
    (raw / "streams" / "zz_edge_columns.csv").write_text("listen_time,extra,user_id,track_id\n" + "\n".join(cols))
    bad = [f"{users[i]},{tracks[i]},2024-06-27 08:00:{i:02d}" for i in range(18)] + [f"x{i},y,z" for i in range(3)]
    (raw / "streams" / "zz_edge_rejected.csv").write_text("user_id,track_id,listen_time\n" + "\n".join(bad) + "\n")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def _diff(con: duckdb.DuckDBPyConnection, a: str, b: str, limit: int) -> list[tuple[object, ...]]:
    """Rows of `a` not in `b` ('-') and of `b` not in `a` ('+'), as multisets."""
    return con.execute(
        f"(SELECT '-' AS side, * FROM {a} EXCEPT ALL SELECT '-', * FROM {b}) UNION ALL "
        f"(SELECT '+', * FROM {b} EXCEPT ALL SELECT '+', * FROM {a}) ORDER BY ALL LIMIT {limit}"
    ).fetchall()


def check(lake: Path, work: Path, limit: int) -> int:
    """Run playcount and the peers on `lake` (left as it is); print the differences; return their number."""
    root = work / "playcount"
    shutil.copytree(lake, root)
    env = dict(os.environ, PLAYCOUNT_SETTLE_SECONDS="0")
    report = json.loads(_run([sys.executable, "-m", "playcount.cli", "run", "--root", str(root), "--json"], env))
    print(
        f"playcount: {report['status']}, dates {report['dates'][0]}..{report['dates'][-1]}, kpi rows "
        f"{report['kpi_rows']}"
    )
    pc_files = {f["name"]: f for f in report["files"] if f["dataset"] == "streams"}
    print(
        "  "
        + ", ".join(
            f"{n} {f['rows']}/{f['bad']} bad{' REJECTED' if f['status'] == 'rejected' else ''}"
            for n, f in sorted(pc_files.items())
        )
    )
    con = duckdb.connect()
    con.execute(f"ATTACH '{root / 'kpis.duckdb'}' AS store (READ_ONLY)")
    events = root / "processed_data" / "streams" / "*" / "*.parquet"
    unique = con.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT user_id, track_id, listen_time FROM '{events}')"
    ).fetchone()[0]  # type: ignore[index]
    problems = 0
    for name, script in PEERS.items():
        out = work / name.replace(" ", "_")
        summary = json.loads(_run([sys.executable, str(script), str(lake), str(out)]))
        found = []
        for f, pc in sorted(pc_files.items()):
            peer = summary["files"].get(f)
            rejected = pc["status"] == "rejected"
            if peer is None or (peer["rows"], peer["bad"], peer["rejected"]) != (pc["rows"], pc["bad"], rejected):
                found.append(f"  {f}: playcount rows {pc['rows']} bad {pc['bad']} {pc['status']}; {name} {peer}")
        if summary["events"] != unique:
            found.append(f"  unique events: playcount {unique}, {name} {summary['events']}")
        for t in KPIS:
            kpi = out / "kpis" / (t + ".parquet")  # the PySpark peer's is a folder of Parquet files
            rows = _diff(con, f"store.{t}", f"'{kpi if kpi.exists() else out / 'kpis' / t / '*.parquet'}'", limit)
            found += [f"  {t} {'playcount' if r[0] == '-' else name:>11}: {r[1:]}" for r in rows]
        print(
            f"{name}: {'same as playcount' if not found else f'{len(found)} difference(s)'} "
            f"({summary['events']:,} events, kpi rows {summary['kpi_rows']})"
        )
        if found:
            print("\n".join(found))
        problems += len(found)
    return problems


def lab_lake(work: Path) -> Path:
    """The real lab files (users, 3 stream files) and a songs catalogue covering them, in a new lake."""
    lake = work / "lab"
    for sub in ("users", "streams", "songs"):
        (lake / "raw_data" / sub).mkdir(parents=True)
    shutil.copy(LAB / "users.csv", lake / "raw_data" / "users")
    for f in sorted(LAB.glob("streams*.csv")):
        shutil.copy(f, lake / "raw_data" / "streams")
    _run(
        [
            sys.executable,
            "-m",
            "playcount.cli",
            "generate",
            "--out",
            str(lake),
            "--cover-streams",
            str(lake / "raw_data" / "streams"),
        ]
    )
    return lake


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=20_000)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--files", type=int, default=3)
    p.add_argument("--bad-ratio", type=float, default=0.01)
    p.add_argument("--no-edge", action="store_true", help="without the three stream files of edge cases")
    p.add_argument("--lab", action="store_true", help=f"also check on the real lab data ({LAB})")
    p.add_argument("--limit", type=int, default=20, help="differing rows shown per KPI table")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="playcount-check-") as tmp:
        work = Path(tmp)
        lake = work / "generated"
        _run(
            [
                sys.executable,
                "-m",
                "playcount.cli",
                "generate",
                "--out",
                str(lake),
                "--songs",
                "2000",
                "--users",
                "1000",
                "--streams",
                str(args.streams),
                "--files",
                str(args.files),
                "--days",
                str(args.days),
                "--bad-ratio",
                str(args.bad_ratio),
            ]
        )
        if not args.no_edge:
            write_edge_files(lake / "raw_data")
        print(
            f"# generated: {args.streams:,} events in {args.files} files over {args.days} date(s)"
            + ("" if args.no_edge else " + 3 files of edge cases")
        )
        problems = check(lake, work / "generated-out", args.limit)
        if args.lab:
            print(f"# lab data: {LAB}")
            problems += check(lab_lake(work), work / "lab-out", args.limit)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
