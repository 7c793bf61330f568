"""Helpers for the pipeline tests: tiny landing zones, runs, reading the store back."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from playcount.cli import app
from playcount.stores import DuckDBStore

SONGS_HEADER = "id,track_id,artists,album_name,track_name,popularity,duration_ms,explicit,track_genre"
USERS_HEADER = "user_id,user_name,user_age,user_country,created_at"
STREAMS_HEADER = "user_id,track_id,listen_time"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tiny_lake(root: Path, streams: dict[str, str]) -> Path:
    """Three songs (pop, pop, rock), three users, and the given stream files (bodies only)."""
    write(
        root / "raw_data/songs/songs.csv",
        f"{SONGS_HEADER}\n"
        '0,T1,Ann,A,"Song, ""One""",50,200000,False,Pop\n'
        "1,T2,Bob,B,Two,60,100000,True,pop\n"
        "2,T3,Cy,C,Three,70,300000,false,Rock\n",
    )
    write(
        root / "raw_data/users/users.csv",
        f"{USERS_HEADER}\n1,U1,30,NG,2024-01-01\n2,U2,40,GH,2024-01-01\n3,U3,50,KE,2024-07-01\n",
    )
    for name, body in streams.items():
        write(root / "raw_data/streams" / name, f"{STREAMS_HEADER}\n{body}")
    return root


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process (with `env` set for it): (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    # rich wraps long lines: compare messages with their whitespace collapsed
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def run_json(root: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("run", "--root", str(root), "--json", *extra)
    assert out.strip(), err
    return code, json.loads(out)


def kpis(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Every KPI table of the root's DuckDB store, as sorted lists of rows."""
    store = DuckDBStore(root / "kpis.duckdb")
    return {t: store.read(t).to_pylist() for t in ("genre_kpis", "top_songs", "top_genres")}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def copy_lake_inputs(src: Path, dst: Path, stream_files: list[str] | None = None) -> Path:
    """Copy songs, users and (some of) the stream files of a generated landing zone."""
    for ds in ("songs", "users"):
        shutil.copytree(src / "raw_data" / ds, dst / "raw_data" / ds)
    (dst / "raw_data/streams").mkdir(parents=True)
    for f in sorted((src / "raw_data/streams").iterdir()):
        if stream_files is None or f.name in stream_files:
            shutil.copy(f, dst / "raw_data/streams" / f.name)
    return dst
