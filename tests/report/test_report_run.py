"""Every run writes its page; `report`, `runs`, `kpis --csv` and tables that fit, through the CLI."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path

import pytest
from rich.console import Console

from helpers import cli, run_json, tiny_lake, write
from playcount.report import charts
from playcount.report.tables import KPI_COLUMNS, fit_table

STREAMS = {
    # T1, T2 pop, T3 rock; 9 clean rows and one of the unknown user 9 (10%: the file is accepted)
    "a.csv": "".join(
        f"{u},{t},2024-06-{d} {h:02d}:00:00\n"
        for u, t, d, h in [
            (1, "T1", 25, 10),
            (2, "T1", 25, 11),
            (1, "T2", 25, 12),
            (2, "T2", 25, 13),
            (9, "T2", 25, 14),
            (1, "T3", 26, 9),
            (2, "T3", 26, 10),
            (1, "T1", 26, 11),
            (2, "T1", 26, 12),
            (1, "T2", 26, 13),
        ]
    ),
}


def _notes(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (root / "_playcount/notifications.jsonl").read_text().splitlines()]


def test_a_run_writes_its_page_and_latest_and_the_notification_says_where(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, STREAMS)
    code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded"
    page = root / "_playcount/reports" / f"{report['run_id']}.html"
    assert page.read_bytes() == (root / "_playcount/reports/latest.html").read_bytes()
    html = page.read_text()
    assert '<dd data-key="rows_in">10</dd>' in html and '<dd data-key="bad">1</dd>' in html
    assert "unknown user_id" in html and 'data-chart="rules" data-rows="1"' in html
    # top genres: pop on 06-25; pop and rock on 06-26: 3 bars; trend: pop 2 dates + rock 1 = 3 points
    assert 'data-chart="top_genres" data-rows="3"' in html and 'data-chart="trend" data-rows="3"' in html
    assert _notes(root)[-1]["report"] == str(page)
    # a run with nothing to do writes its own page but leaves latest.html on the run that did work
    code, again = run_json(root)
    assert again["status"] == "nothing_to_do"
    assert (root / "_playcount/reports" / f"{again['run_id']}.html").exists()
    assert (root / "_playcount/reports/latest.html").read_bytes() == page.read_bytes()


def test_a_page_that_cannot_be_drawn_is_logged_and_the_run_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(spec: object) -> str:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(charts, "svg", broken)
    root = tiny_lake(tmp_path, STREAMS)
    with caplog.at_level(logging.ERROR, logger="playcount.report"):
        code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded"
    assert not (root / "_playcount/reports").exists()
    assert "renderer exploded" in caplog.text
    assert _notes(root)[-1]["status"] == "succeeded" and "report" not in _notes(root)[-1]


def test_report_and_runs_commands(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, STREAMS)
    first = run_json(root)[1]["run_id"]
    time.sleep(1.05)  # run ids carry their start second: the history orders by it
    write(root / "raw_data/streams/b.csv", "user_id,track\n1,T1\n")  # rejected: no listen_time
    write(root / "raw_data/streams/c.csv", "user_id,track_id,listen_time\n2,T3,2024-06-26 15:00:00\n")
    second = run_json(root)[1]["run_id"]
    code, out, err = cli("runs", "--root", str(root), "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == [second, first]  # newest first
    assert [(r["status"], r["files"], r["events"], r["bad_rows"], r["rejected_files"]) for r in rows] == [
        ("succeeded", 4, 1, 0, 1),  # songs, users, b (rejected), c (1 event)
        ("succeeded", 3, 9, 1, 0),  # songs, users, a (9 events, 1 bad)
    ]
    assert json.loads(cli("runs", "--root", str(root), "--json", "--limit", "1")[1])[0]["run_id"] == second
    code, out, _ = cli("runs", "--root", str(root))
    assert code == 0 and first in out and second in out
    # report --run --out: the first run's page again, to a file
    target = tmp_path / "first.html"
    code, out, err = cli("report", "--root", str(root), "--run", first, "--out", str(target))
    assert code == 0, err
    assert out.strip() == str(target) and f'<code data-key="run_id">{first}</code>' in target.read_text()
    # without --out: the newest run's page in the lake; the rejected file's .error.json is on it
    code, out, _ = cli("report", "--root", str(root))
    assert out.strip() == str(root / "_playcount/reports" / f"{second}.html")
    assert "b.csv.error.json" in Path(out.strip()).read_text()
    code, _, err = cli("report", "--root", str(root), "--run", "nope")
    assert code == 3 and "no run `nope`" in err


def test_kpis_as_csv_and_tables_that_fit_80_columns(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, STREAMS)
    run_json(root)
    code, out, _ = cli("kpis", "top-songs", "--root", str(root), "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["date"], r["genre"], r["rank"], r["track_id"], r["title"], r["stream_count"]) for r in rows] == [
        ("2024-06-25", "pop", "1", "T1", 'Song, "One"', "2"),
        ("2024-06-25", "pop", "2", "T2", "Two", "2"),
        ("2024-06-26", "pop", "1", "T1", 'Song, "One"', "2"),
        ("2024-06-26", "pop", "2", "T2", "Two", "1"),
        ("2024-06-26", "rock", "1", "T3", "Three", "2"),
    ]
    # a wide row at 80 columns: one line per row, nothing wider than 80; the id is left out whole
    long = {
        "date": "2024-06-25",
        "genre": "alt-rock",
        "rank": 1,
        "track_id": "4OAiYwa27jSuQl6wo5x7es",
        "title": "A title that is much too long for any terminal column",
        "artist": "[red]Markup[/red] Band",
        "stream_count": 1234567,
        "date#genre": "2024-06-25#alt-rock",
    }
    for width, want_id in ((80, False), (140, True)):
        console = Console(width=width, record=True, file=io.StringIO())
        rows = [long, {**long, "genre": "pop", "rank": 2}]
        table, dropped = fit_table(rows, KPI_COLUMNS["top_songs"], width, "top_songs")
        console.print(table)
        lines = console.export_text().splitlines()
        assert max(len(line) for line in lines) <= width
        body = [line for line in lines if "A title" in line]
        assert len(body) == 2 and "1,234,567" in body[0]  # numbers never cut
        assert ("4OAiYwa27jSuQl6wo5x7es" in body[0]) is want_id and ("track id" in dropped) is not want_id
        assert "[red]Markup" in body[0] or "[red]Mark" in body[0]  # markup printed as text
        assert "date 2024-06-25" in lines[0]  # one date: in the title, not a column


def test_progress_is_timestamped_lines_off_a_terminal_and_a_live_display_on_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from playcount import cli as cli_module

    root = tiny_lake(tmp_path, STREAMS)
    code, _, err = cli("run", "--root", str(root))
    assert code == 0
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ validate streams: 10 rows in [\d.]+s \([\d,]+ rows/s\)", err)
    assert "report: " in err
    # on a terminal: the live display (stages done of all) as well as the lines above it
    screen = io.StringIO()
    monkeypatch.setattr(cli_module, "console", Console(file=screen, force_terminal=True, width=120))
    write(root / "raw_data/streams/b.csv", "user_id,track_id,listen_time\n2,T3,2024-06-27 10:00:00\n")
    code, _, _ = cli("run", "--root", str(root))
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen.getvalue())
    assert code == 0 and "/7 stages" in shown and "archive   1 file(s) archived" in shown
