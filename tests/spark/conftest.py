"""The spark tier: an adversarial landing zone, and what the DuckDB engine makes of it.

The SparkSession (`spark_session`) is the root conftest's, shared with the engine-parametrised
rule and KPI tests.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from spark_helpers import RUN_DATE, Outcome, outcome

from helpers import copy_lake_inputs, run_json
from playcount.generate import generate_landing_zone


@pytest.fixture
def run_date(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PLAYCOUNT_RUN_DATE", RUN_DATE)
    return RUN_DATE


def _adversarial(out: Path) -> Path:
    """A small generated landing zone (every rule fires) made harder for the readers: a gzip file,
    BOM + CRLF, blank lines, a newline inside a quoted field, empty trailing fields, stray quotes,
    and files rejected whole (not UTF-8, header only, a column missing)."""
    generate_landing_zone(out, songs=300, users=200, streams=3000, files=3, days=2, bad_ratio=0.03, seed=11)
    streams = out / "raw_data/streams"
    first = streams / "streams_001.csv"
    (streams / "streams_001.csv.gz").write_bytes(gzip.compress(first.read_bytes()))
    first.unlink()
    second = streams / "streams_002.csv"
    second.write_bytes(b"\xef\xbb\xbf" + second.read_bytes().replace(b"\n", b"\r\n"))
    header, *lines = (streams / "streams_003.csv").read_text(encoding="utf-8").splitlines()
    good = lines[:120]
    user, track, when = good[0].split(",")
    odd = [
        *good[:10],
        "",  # a blank line
        *good[10:20],
        f'{user},"{track}",{when}',  # needless quotes
        f"{user},{track},{when},",
        f'{user},{track},{when},""',  # an empty field too many
        f'{user},"{track}"x,{when}',  # a stray character after a closing quote
        f'{user},"{track}\nx",{when}',  # a newline in a quoted field
        *good[20:120],
        "",
    ]
    (streams / "odd.csv").write_text(header + "\n" + "\n".join(odd) + "\n", encoding="utf-8")
    (streams / "latin1.csv").write_bytes((header + "\n" + "\n".join(good[:5]) + "\n9,caf\u00e9,x\n").encode("latin-1"))
    (streams / "header_only.csv").write_text(header + "\n", encoding="utf-8")
    (streams / "nocol.csv").write_text("user_id,track\n1,x\n", encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The adversarial landing zone (inputs only: copy it before running on it)."""
    return _adversarial(tmp_path_factory.mktemp("landing"))


@pytest.fixture(scope="session")
def duckdb_outcome(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """`playcount run` on DuckDB over a copy of `landing`, at `RUN_DATE`."""
    root = copy_lake_inputs(landing, tmp_path_factory.mktemp("duckdb") / "lake")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAYCOUNT_RUN_DATE", RUN_DATE)
        code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded", report
    yield outcome(root, report)
