"""The `playcount` command. Thin: parse, call the pipeline, print, map errors to exit codes.

Exit codes: 0 success (also `nothing_to_do`, and runs where some files were rejected),
1 validation failed (nothing loaded), 2 usage or settings error, 3 unexpected failure
(safe to re-run).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType, TracebackType
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as LiveProgress
from rich.table import Table
from rich.text import Text

from playcount import pipeline
from playcount.errors import LockedError, MissingExtraError, PlaycountError, SettingsError
from playcount.report import report_path
from playcount.report.tables import KPI_COLUMNS, RUNS_COLUMNS, Col, fit_table
from playcount.settings import Settings, load_settings

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="playcount: music-streaming analytics pipeline.")
console = Console(stderr=True)
out = Console()

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3

Root = Annotated[str | None, typer.Option("--root", help="lake root: a folder or s3://bucket/prefix (setting `root`)")]
Config = Annotated[Path | None, typer.Option("--config", help="settings file (default ./playcount.toml)")]
AsJson = Annotated[bool, typer.Option("--json", help="print the machine-readable report on stdout")]
Store = Annotated[
    str | None, typer.Option("--store", help="KPI store: duckdb | dynamodb | memory (setting `store.type`)")
]
Notify = Annotated[str | None, typer.Option("--notify", help="notifier: log | sns | webhook (setting `notify.type`)")]
EngineFlag = Annotated[
    str | None, typer.Option("--engine", help="engine: duckdb | spark (setting `engine`; spark: the `spark` extra)")
]


def _typed(kind: str | None) -> dict[str, str] | None:
    """A `--store`/`--notify` flag as a settings section (merged with the file's and env's keys)."""
    return {"type": kind} if kind else None


def _emit_json(text: str) -> None:
    """Machine output: the JSON as is on stdout (rich would wrap long lines and break it)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _cells(*values: object) -> list[Text]:
    """Table cells as plain text: a file name or value like `x[/z].csv` is never rich markup."""
    return [Text(str(v)) for v in values]


@contextmanager
def _errors(what: str = "command") -> Iterator[None]:
    """The one error handler of every command: an error as its message and the README's exit code.

    Settings and a missing package: 2 (fix the command line or the settings). Another run holding
    the lock, any other playcount error, or an unexpected one: 3, with "safe to run again" when a
    re-run may succeed as is (`is_transient`).
    """
    try:
        yield
    except typer.Exit:
        raise
    except SettingsError as e:
        console.print(f"[red]settings error:[/] {escape(str(e))}")
        raise typer.Exit(EXIT_USAGE) from e
    except MissingExtraError as e:  # e.g. --engine spark without the extra
        console.print(f"[red]missing package:[/] {escape(str(e))}")
        raise typer.Exit(EXIT_USAGE) from e
    except LockedError as e:
        console.print(f"[red]locked:[/] {escape(str(e))}")
        raise typer.Exit(EXIT_ERROR) from e
    except PlaycountError as e:  # named: its message says what to do
        again = "\nIt is safe to run again." if e.transient else ""
        console.print(f"[red]{what} failed:[/] {escape(str(e))}{again}")
        raise typer.Exit(EXIT_ERROR) from e
    except Exception as e:  # noqa: BLE001 - an unexpected failure: report, exit 3
        console.print(f"[red]{what} failed unexpectedly:[/] {escape(str(e))}\nIt is safe to run again.")
        raise typer.Exit(EXIT_ERROR) from e


def _settings(config: Path | None, **flags: Any) -> Settings:
    with _errors():
        return load_settings(config, **flags)


class _Progress:
    """What a run shows while it runs, on stderr: on a terminal a live display (the stage, stages
    done of all, the stage's last message, e.g. rows per second, and the time elapsed) above
    which each message stays as a line; elsewhere (Airflow logs, CI) plain timestamped lines.
    Quiet (`--json`): nothing."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live: LiveProgress | None = None
        self.task: TaskID | None = None
        self.seen: set[str] = set()

    def __enter__(self) -> _Progress:
        if not self.quiet and console.is_terminal:
            self.live = LiveProgress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[stage]:<9}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("stages"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[message]}"),
                console=console,
                transient=True,
            )
            self.live.start()
            self.task = self.live.add_task("run", total=len(pipeline.STAGES), stage="", message="")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def __call__(self, stage: str, message: str) -> None:
        if self.quiet:
            return
        if self.live is not None and self.task is not None:
            self.seen.add(stage)
            done = len(self.seen) - 1 if message == "started" else len(self.seen)
            self.live.update(self.task, completed=done, stage=stage, message=message)
            console.print(Text.assemble((f"{dt.datetime.now():%H:%M:%S} ", "dim"), (f"{stage:<9} ", "bold"), message))
        else:
            stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
            console.print(f"{stamp} {stage:<9} {message}", markup=False, highlight=False, soft_wrap=True)


def _progress(quiet: bool) -> pipeline.Progress:
    """Timestamped progress lines (commands that run a stage or two, not a whole run)."""
    return _Progress(quiet)


def _fitted(rows: list[dict[str, Any]], cols: list[Col], title: str, to: Console | None = None) -> None:
    """A table of `rows` that fits the console's width; says which columns it left out."""
    target = to or out
    table, dropped = fit_table(rows, cols, target.width, title)
    target.print(table)
    if dropped:
        console.print(f"[dim]left out for the width: {escape(', '.join(dropped))} (--json or --csv has all)[/]")


def _report_line(run: pipeline.Run, run_id: str) -> str | None:
    """Where run `run_id`'s HTML page is, if it was written."""
    path = report_path(run_id)
    return run.storage.uri(path) if run.storage.exists(path) else None


def _print_report(report: pipeline.RunReport) -> None:
    colour = {"succeeded": "green", "failed": "red", "nothing_to_do": "yellow"}[report.status]
    reason = f": {report.reason}" if report.reason else ""
    console.print(f"[bold {colour}]{report.status}[/] run {report.run_id}{escape(reason)}")
    if report.files:
        t = Table("dataset", "file", "status", "rows", "clean", "bad", "reason")
        for f in report.files:
            t.add_row(*_cells(f.dataset, f.name, f.status, f"{f.rows:,}", f"{f.clean:,}", f"{f.bad:,}", f.reason or ""))
        console.print(t)
    if report.kpi_rows:
        console.print("KPI rows: " + ", ".join(f"{k} {n}" for k, n in report.kpi_rows.items()))
    for ds, path in report.bad_rows.items():
        console.print(f"bad {ds} rows: {escape(path)}")


def _run(
    settings: Settings, as_json: bool, progress: bool = True, quiet_when_idle: bool = False
) -> tuple[pipeline.RunReport, pipeline.Run]:
    with _errors("run"), _Progress(as_json or not progress) as show:
        run = pipeline.open_run(settings, progress=show)
        report = pipeline.run_pipeline(run, quiet_when_idle=quiet_when_idle)
    return report, run


@app.command()
def run(
    root: Root = None,
    config: Config = None,
    as_json: AsJson = False,
    store: Store = None,
    notify: Notify = None,
    engine: EngineFlag = None,
) -> None:
    """Run the whole pipeline once over the lake root."""
    report, opened = _run(
        _settings(config, root=root, store=_typed(store), notify=_typed(notify), engine=engine), as_json
    )
    if as_json:
        _emit_json(report.model_dump_json(indent=2))
    else:
        _print_report(report)
        page = _report_line(opened, report.run_id)
        if page:
            console.print(Text(f"report: {page}"), soft_wrap=True)
    raise typer.Exit(EXIT_FAILED if report.status == "failed" else EXIT_OK)


@app.command()
def validate(root: Root = None, config: Config = None, as_json: AsJson = False) -> None:
    """Validate the landing zone only: per-file, per-rule outcome. Writes, moves and loads nothing."""
    settings = _settings(config, root=root)
    with _errors():
        r = pipeline.open_run(settings, progress=_progress(as_json))
        val = pipeline.validate(r, pipeline.discover(r), dry_run=True)
    if as_json:
        _emit_json(val.model_dump_json(indent=2))
    else:
        t = Table("dataset", "file", "status", "rows", "bad", "rules failed", "reason")
        for f in val.files:
            rules = ", ".join(f"{k}: {n}" for k, n in f.rules.items())
            t.add_row(*_cells(f.dataset, f.name, f.status, f"{f.rows:,}", f"{f.bad:,}", rules, f.reason or ""))
        out.print(t)
        out.print(Text(f"validation {val.status}" + (f": {val.reason}" if val.reason else "")))
    raise typer.Exit(EXIT_FAILED if val.status == "failed" else EXIT_OK)


class KpiTable(StrEnum):
    genres = "genres"
    top_songs = "top-songs"
    top_genres = "top-genres"


_KPI_NAMES = {"genres": "genre_kpis", "top-songs": "top_songs", "top-genres": "top_genres"}


def _print_table(rows: pa.Table, table: str, title: str | None = None) -> None:
    """KPI table `table`'s rows, fitted to the terminal's width."""
    _fitted(rows.to_pylist(), KPI_COLUMNS[table], title or table)


def _emit_csv(rows: pa.Table) -> None:
    """Machine output: the rows as CSV (RFC 4180) on stdout, every column."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(rows.column_names)
    for r in rows.to_pylist():
        writer.writerow("" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in r.values())
    sys.stdout.flush()


@app.command()
def kpis(
    table: Annotated[KpiTable, typer.Argument(help="which KPI table")],
    root: Root = None,
    config: Config = None,
    date: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD")] = None,
    genre: Annotated[str | None, typer.Option("--genre")] = None,
    as_json: AsJson = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print the rows as CSV on stdout")] = False,
    store: Store = None,
) -> None:
    """Read a KPI table from the KPI store (a table that fits the terminal, or --json / --csv)."""
    from playcount.wiring import open_aws, open_store

    settings = _settings(config, root=root, store=_typed(store))
    try:
        day = dt.date.fromisoformat(date) if date else None
    except ValueError as e:
        console.print(f"[red]--date `{escape(str(date))}` is not a date[/]: use YYYY-MM-DD")
        raise typer.Exit(EXIT_USAGE) from e
    name = _KPI_NAMES[table.value]
    with _errors():
        if getattr(settings.store, "type", None) == "duckdb" and not getattr(settings.store, "path", None):
            _lake(settings)  # the store is in the root: a root that does not exist is exit 2
        kpi_store = open_store(settings, open_aws(settings))
        rows = kpi_store.read(name, date=day, genre=genre.lower() if genre else None)
    if as_json:
        _emit_json(json.dumps(rows.to_pylist(), default=str, indent=2))
    elif as_csv:
        _emit_csv(rows)
    else:
        _print_table(rows, name)


@app.command()
def rebuild(
    root: Root = None,
    config: Config = None,
    dates: Annotated[
        list[str] | None, typer.Option("--date", help="YYYY-MM-DD; repeat for several (default: every date)")
    ] = None,
    as_json: AsJson = False,
    store: Store = None,
    engine: EngineFlag = None,
) -> None:
    """Recompute the KPI tables of every date (or the given dates) from the processed events and
    replace them in the KPI store: for a lost or a new store, or after a catalogue change."""
    settings = _settings(config, root=root, store=_typed(store), engine=engine)
    wanted: list[dt.date] | None = None
    if dates:
        wanted = []
        for d in dates:
            try:
                wanted.append(dt.date.fromisoformat(d))
            except ValueError as e:
                console.print(f"[red]--date `{escape(d)}` is not a date[/]: use YYYY-MM-DD")
                raise typer.Exit(EXIT_USAGE) from e
    with _errors("rebuild"), _Progress(as_json) as show:
        opened = pipeline.open_run(settings, progress=show)
        report = pipeline.rebuild(opened, wanted)
    if as_json:
        _emit_json(report.model_dump_json(indent=2))
    else:
        out.print(Text(f"rebuilt {len(report.dates)} date(s) in {settings.root}"))
        for name, n in report.kpi_rows.items():
            out.print(Text(f"{name}: {n:,} rows"))
    raise typer.Exit(EXIT_OK)


@app.command()
def replay(
    root: Root = None, config: Config = None, as_json: AsJson = False, store: Store = None, engine: EngineFlag = None
) -> None:
    """Take in the landing zone's songs and users files, then re-validate every quarantined stream
    row (`bad_rows/streams/`) against them: rows that pass now count in the KPIs of their dates,
    the others stay quarantined with their current reasons. Safe to repeat and to kill."""
    settings = _settings(config, root=root, store=_typed(store), engine=engine)
    with _errors("replay"), _Progress(as_json) as show:
        opened = pipeline.open_run(settings, progress=show)
        report = pipeline.replay(opened)
    if as_json:
        _emit_json(report.model_dump_json(indent=2))
    else:
        if report.status != "succeeded":
            console.print(Text(f"replay failed: {report.reason}"))
        if report.replay is not None:
            r = report.replay
            out.print(Text(f"{r.replayed:,} quarantined row(s) replayed, {r.still_bad:,} still bad"))
            for rule, n in sorted(r.rules.items(), key=lambda kv: -kv[1]):
                out.print(Text(f"  still bad: {rule}: {n:,}"))
            if r.dates:
                out.print(Text("dates recomputed: " + ", ".join(d.isoformat() for d in r.dates)))
            for path, why in r.refused.items():
                console.print(Text(f"not replayed: {path}: {why}", style="red"))
            if r.ignored:
                out.print(Text(f"left alone (their runs did not succeed): {', '.join(r.ignored)}"))
    raise typer.Exit(EXIT_OK if report.status == "succeeded" else EXIT_FAILED)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the landing zone into")],
    songs: int = 2000,
    users: int = 1000,
    streams: int = 20000,
    files: int = 3,
    days: int = 1,
    start: Annotated[str, typer.Option(help="first event date, YYYY-MM-DD")] = "2024-06-25",
    bad_ratio: Annotated[float, typer.Option(help="share of bad rows injected")] = 0.0,
    seed: int = 42,
    cover_streams: Annotated[
        Path | None, typer.Option(help="write only a songs file covering the track ids of these stream files")
    ] = None,
) -> None:
    """Generate a realistic synthetic landing zone (or a songs file covering existing streams)."""
    from playcount.generate import cover_streams as cover
    from playcount.generate import generate_landing_zone

    if cover_streams is not None:
        target = out_dir / "raw_data" / "songs" / "songs.csv"
        n = cover(cover_streams, target, seed=seed, extra_songs=songs if songs != 2000 else 0)
        console.print(Text(f"wrote {n:,} songs covering `{cover_streams}` to {target}"))
        return
    try:
        first = dt.date.fromisoformat(start)
    except ValueError as e:
        console.print(f"[red]--start `{escape(start)}` is not a date[/]: use YYYY-MM-DD")
        raise typer.Exit(EXIT_USAGE) from e
    result = generate_landing_zone(
        out_dir,
        songs=songs,
        users=users,
        streams=streams,
        files=files,
        days=days,
        start=first,
        bad_ratio=bad_ratio,
        seed=seed,
    )
    console.print(
        Text(
            f"wrote {result.songs:,} songs, {result.users:,} users, {result.streams:,} stream events in "
            f"{len(result.stream_files)} file(s) to {result.out}"
        )
    )


@app.command()
def demo(
    root: Annotated[Path, typer.Option("--root", help="demo lake folder")] = Path("playcount-demo"),
) -> None:
    """Generate a small landing zone (if absent), run the pipeline, show top genres and songs."""
    from playcount.generate import generate_landing_zone

    if not (root / "raw_data").exists():
        generate_landing_zone(root, songs=2000, users=1000, streams=30000, files=3, days=2, bad_ratio=0.02)
        console.print(Text(f"generated a demo landing zone in {root}/raw_data"))
    settings = _settings(None, root=str(root))
    report, opened = _run(settings, as_json=False)
    _print_report(report)
    store = opened.store
    for d in report.dates:
        _print_table(store.read("top_genres", date=d), "top_genres", "top genres")
    if report.dates:
        top = store.read("top_songs", date=report.dates[-1])
        _print_table(top.filter(pa.compute.less_equal(top["rank"], 1)), "top_songs", "top song per genre")
    if report.status == "nothing_to_do":
        console.print(Text(f"nothing new in {root}: delete the folder to start the demo again"))
    page = _report_line(opened, report.run_id)
    out.print(Text(f"report: {page}" if page else "report: not written (see the log above)"), soft_wrap=True)


@app.command()
def watch(
    root: Root = None,
    config: Config = None,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 30.0,
    once: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Poll the landing zone; run whenever new stream files appear. Ctrl-C stops between runs."""
    settings = _settings(config, root=root)
    stop = {"now": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["now"] = True
        console.print("stopping after the current run")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    console.print(Text(f"watching {settings.root} every {interval:g}s (Ctrl-C to stop)"))
    while not stop["now"]:
        try:
            report, opened = _run(settings, as_json=False, quiet_when_idle=True)
            if report.status != "nothing_to_do":
                _print_report(report)
                page = _report_line(opened, report.run_id)
                if page:
                    console.print(Text(f"report: {page}"), soft_wrap=True)
        except typer.Exit as e:
            if e.exit_code == EXIT_USAGE:
                raise
        except Exception:  # noqa: BLE001 - printing a report must never end the watch
            logging.getLogger("playcount").exception("watch: could not show the run's outcome")
        if once:
            break
        deadline = time.monotonic() + interval
        while not stop["now"] and time.monotonic() < deadline:
            time.sleep(min(0.2, interval))


RunId = Annotated[str | None, typer.Option("--run", help="run id (default: the newest run; see `playcount runs`)")]


def _lake(settings: Settings) -> Any:
    """The lake root's storage; a local root that does not exist is a settings error (exit 2)."""
    from playcount.lake import LocalStorage, open_storage
    from playcount.wiring import open_aws

    lake = open_storage(settings.root, aws=open_aws(settings))
    if isinstance(lake, LocalStorage) and not lake.path.is_dir():
        raise SettingsError(f"the lake root `{lake.root}` does not exist", fix="pass --root with the lake's folder")
    return lake


@app.command("report")
def report_page(
    root: Root = None,
    config: Config = None,
    run_id: RunId = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="write the page to this file, not the lake")] = None,
    store: Store = None,
) -> None:
    """Draw a run's HTML report again (KPIs as the store holds them now); print where it is.

    Without --out the page goes to `_playcount/reports/<run-id>.html` in the lake (local or S3).
    """
    from playcount import report as rp
    from playcount.wiring import open_aws, open_store

    settings = _settings(config, root=root, store=_typed(store))
    with _errors():
        lake = _lake(settings)
        record = rp.load_record(lake, run_id)
        try:
            kpi_store = open_store(settings, open_aws(settings))
        except PlaycountError as e:  # the page still shows the run; its KPI section says why not
            console.print(f"[yellow]no KPI store:[/] {escape(str(e))}")
            kpi_store = None
        if out_file is not None:
            out_file.write_text(rp.render_run(record, lake, kpi_store), encoding="utf-8")
            where = str(out_file)
        else:
            where = rp.write_record(lake, kpi_store, record, latest=run_id is None and record.status != "nothing_to_do")
    out.print(Text(where), soft_wrap=True)


@app.command()
def runs(
    root: Root = None,
    config: Config = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="newest N runs")] = 20,
    as_json: AsJson = False,
) -> None:
    """The run history, newest first: status, start, duration, files, events, bad rows, rejected files."""
    from playcount.report import history

    settings = _settings(config, root=root)
    with _errors():
        rows = history(_lake(settings), limit)
    if as_json:
        _emit_json(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if not rows:
        console.print(f"no runs yet in {escape(settings.root)}")
        return
    _fitted([r.as_dict() for r in rows], RUNS_COLUMNS, f"runs in {settings.root}")


aws_app = typer.Typer(no_args_is_help=True, help="Set up and check playcount on AWS.")
app.add_typer(aws_app, name="aws")


@aws_app.command("bootstrap")
def aws_bootstrap(
    bucket: Annotated[str, typer.Option("--bucket", help="the lake bucket (created if missing)")],
    prefix: Annotated[str, typer.Option("--prefix", help="the lake root's prefix in the bucket")] = "",
    table_prefix: Annotated[str, typer.Option("--table-prefix", help="prefix of the KPI table names")] = "playcount_",
    topic: Annotated[str, typer.Option("--topic", help="SNS topic name")] = "playcount-runs",
    settings_file: Annotated[
        str,
        typer.Option(
            "--settings-file",
            help="where to write the settings to use (`-`: print them); not playcount.toml, which "
            "every command in its folder would read",
        ),
    ] = "playcount.aws.toml",
    config: Config = None,
) -> None:
    """Create the bucket, the three KPI tables and the topic if missing; write the settings to use
    to playcount.aws.toml (used only with `--config playcount.aws.toml`).

    Idempotent. Credentials, region and endpoint come from the `aws` settings and the standard
    AWS chain (AWS_PROFILE, AWS_* variables, an instance role).
    """
    from playcount.bootstrap import bootstrap
    from playcount.settings import CONFIG_FILE
    from playcount.wiring import open_aws

    settings = _settings(config)
    target = None if settings_file == "-" else Path(settings_file)
    with _errors("bootstrap"):  # AWS errors too: say what failed, exit 3
        result = bootstrap(open_aws(settings), bucket=bucket, prefix=prefix, table_prefix=table_prefix, topic=topic)
    for what in result.created:
        console.print(f"[green]created[/] {what}")
    for what in result.existing:
        console.print(f"[dim]exists[/]  {what}")
    for note in result.notes:
        console.print(f"[yellow]note[/]    {escape(note)}")
    text = result.settings_toml()
    warning = (
        "[yellow]these settings use DynamoDB and SNS:[/] saved as "
        f"{CONFIG_FILE}, they would apply to every playcount command run in its folder"
    )
    if target is None:
        console.print(f"{warning}; save them under another name (e.g. playcount.aws.toml) and pass --config")
        out.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    if target.name == CONFIG_FILE:
        console.print(f"{warning} (here: {escape(str(target))})")
    previous = target.read_text(encoding="utf-8") if target.is_file() else None
    if previous is not None and previous != text:
        console.print(
            f"[red]{escape(str(target))} exists with other settings[/]: not overwritten; the settings "
            "for these resources follow. Remove the file, or pass --settings-file with another name"
        )
        out.print(text, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)
    if previous is None:
        target.write_text(text, encoding="utf-8")
    console.print(
        f"settings {'written to' if previous is None else 'unchanged in'} {escape(str(target))}; "
        f"use them with: playcount run --config {escape(str(target))}"
    )


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    app()


if __name__ == "__main__":
    main()
