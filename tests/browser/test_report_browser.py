"""The run's page as a person sees it: rendered by Chromium, offline, with hostile data.

Each page is opened once; the checks are against the run's JSON report and the KPI store,
computed here independently of the page's own code.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers import run_json, tiny_lake, write
from playcount.generate import generate_landing_zone
from playcount.stores import DuckDBStore

pytestmark = pytest.mark.browser

SCRIPT = "<script>window.pwned=1</script>"
HOSTILE_FILE = "<img src=x onerror=window.pwned=2>.csv"
REJECTED_FILE = "<svg onload=window.pwned=3>.csv"
GENRE = "<i>emo</i>"


@dataclass
class Opened:
    report: dict[str, Any]
    store: DuckDBStore
    text: str
    keys: dict[str, str]
    marks: dict[str, int]
    rows_attr: dict[str, int]
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pwned: Any = None
    active: int = 0


def _open(browser: Any, root: Path, report: dict[str, Any]) -> Opened:
    page_file = root / "_playcount/reports" / f"{report['run_id']}.html"
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    url = page_file.as_uri()
    page.goto(url, wait_until="load")
    page.wait_for_timeout(200)  # anything late (an image, a font) would show up by now
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true })")  # as a reader would
    opened = Opened(
        report=report,
        store=DuckDBStore(root / "kpis.duckdb"),
        text=page.evaluate("document.body.innerText"),
        keys=page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('[data-key]')].map(e => [e.dataset.key, e.textContent]))"
        ),
        marks=page.evaluate(
            """Object.fromEntries([...document.querySelectorAll('figure[data-chart]')].map(f => [f.dataset.chart,
                 f.querySelectorAll('g.mark-rect.role-mark > path, g.mark-symbol.role-mark > path').length]))"""
        ),
        rows_attr={
            k: int(v)
            for k, v in page.evaluate(
                "Object.fromEntries([...document.querySelectorAll('figure[data-chart]')]"
                ".map(f => [f.dataset.chart, f.dataset.rows]))"
            ).items()
        },
        requests=[u for u in requests if u != url],
        errors=errors,
        pwned=page.evaluate("window.pwned"),
        active=page.evaluate("document.querySelectorAll('script, img, iframe, object, embed, i, b').length"),
    )
    page.close()
    return opened


def _ran(root: Path) -> dict[str, Any]:
    """Run; the run report as stored in the lake (the page is drawn from it, in `finish`)."""
    code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded"
    return json.loads((root / "_playcount/runs" / f"{report['run_id']}.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def hostile(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Opened:
    """A tiny lake whose file names, cell values and a genre are markup."""
    root = tiny_lake(tmp_path_factory.mktemp("hostile"), {})
    with (root / "raw_data/songs/songs.csv").open("a") as f:
        f.write(f'3,T4,"<b>Dee</b>",D,"<script>alert(1)</script>",10,240000,False,{GENRE}\n')
    good = [f"{1 + i % 2},T{1 + i % 4},2024-06-25 1{i}:00:00" for i in range(9)]
    write(
        root / "raw_data/streams" / HOSTILE_FILE,
        "user_id,track_id,listen_time\n" + "\n".join([*good, f"1,{SCRIPT},2024-06-25 20:00:00"]) + "\n",
    )
    write(root / "raw_data/streams" / REJECTED_FILE, "user_id,track\n1,T1\n")
    return _open(browser, root, _ran(root))


@pytest.fixture(scope="module")
def generated(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Opened:
    """A generated lake (faults of every kind, two dates), like the demo's, smaller."""
    root = tmp_path_factory.mktemp("generated")
    generate_landing_zone(root, songs=300, users=150, streams=3000, files=3, days=2, bad_ratio=0.02, seed=11)
    return _open(browser, root, _ran(root))


@pytest.fixture(params=["hostile", "generated"])
def opened(request: pytest.FixtureRequest) -> Opened:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_renders_offline_without_errors(opened: Opened) -> None:
    assert opened.requests == []
    assert opened.errors == []


def test_every_chart_has_one_mark_per_data_row(opened: Opened) -> None:
    r = opened.report
    dates = [dt.date.fromisoformat(d) for d in r["dates"]]
    # bars per (rule, file), from the report's per-file rule counts
    rules = sum(1 for f in r["files"] for n in f["rules"].values() if n)
    top = {d: opened.store.read("top_genres", date=d).to_pylist() for d in dates}
    last_top = [row["genre"] for row in top[max(dates)]]
    # points: every date (≤ the last touched, at most 30) of the last date's top genres
    trend = sum(
        1 for g in last_top for row in opened.store.read("genre_kpis", genre=g).to_pylist() if row["date"] <= max(dates)
    )
    want = {"rules": rules, "top_genres": sum(len(v) for v in top.values()), "trend": trend, "stages": len(r["stages"])}
    assert all(n > 0 for n in want.values()), want
    assert opened.marks == want
    assert opened.rows_attr == want


def test_the_numbers_on_the_page_are_the_run_reports(opened: Opened) -> None:
    r = opened.report
    streams = [f for f in r["files"] if f["dataset"] == "streams"]

    def n(x: int) -> str:
        return f"{x:,}"

    assert opened.keys["run_id"] == r["run_id"]
    assert opened.keys["status"] == r["status"]
    assert opened.keys["run_date"] == r["run_date"]
    assert opened.keys["files_in"] == n(len(r["files"]))
    for status in ("accepted", "rejected", "skipped"):
        assert opened.keys[status] == n(sum(1 for f in r["files"] if f["status"] == status))
    assert opened.keys["rows_in"] == n(sum(f["rows"] for f in streams))
    assert opened.keys["clean"] == n(sum(f["clean"] for f in streams))
    assert opened.keys["bad"] == n(sum(f["bad"] for f in streams))
    for f in r["files"]:  # the per-file table: name and counts on one row
        assert f"{f['name']}\t{f['status']}\t{n(f['rows'])}\t{n(f['clean'])}\t{n(f['bad'])}" in opened.text


def test_hostile_names_and_values_show_as_text(hostile: Opened) -> None:
    assert hostile.pwned is None and hostile.active == 0
    for text in (HOSTILE_FILE, REJECTED_FILE, SCRIPT, GENRE, "<b>Dee</b>", "<script>alert(1)</script>"):
        assert text in hostile.text, text
    # the rejected file's .error.json text is on the page (inside its <details>)
    assert json.dumps(REJECTED_FILE)[1:-1] in hostile.text or REJECTED_FILE in hostile.text
