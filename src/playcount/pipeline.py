"""The run: seven stages (SPEC §5), each a function of the lake that returns a typed result.

Every stage reads what it needs from the lake (the previous stages' results are saved under
`_playcount/staging/<run-id>/`), so any stage can be re-run on its own with the run id, and a
crash at any point is repaired by the next run:

- events are written per (source file, date) and named by the file's fingerprint, so
  re-processing a file overwrites instead of duplicating;
- KPIs of a date are recomputed from *all* events of that date, and the store replaces that
  date's rows, so no stale rank survives;
- a file is marked done in the ledger only after its events are loaded and it is archived.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, Field

from playcount import kpis as kpi
from playcount import validation as v
from playcount.aws import Aws
from playcount.contracts import CONTRACTS, Contract
from playcount.engine import Engine, RawRead, connect
from playcount.errors import PlaycountError, SchemaError, SettingsError, StorageError
from playcount.lake import Layout, Ledger, LocalStorage, Storage, open_storage
from playcount.lake.layout import CSV_SUFFIXES
from playcount.lake.s3 import S3Storage
from playcount.notify import Notification, Notifier, notify_safely
from playcount.report import write_report_safely
from playcount.settings import Settings
from playcount.stores import KpiStore
from playcount.transform import enrich_streams
from playcount.wiring import open_aws, open_notifier, open_store

__all__ = [
    "Run",
    "InputFile",
    "FileOutcome",
    "Discovery",
    "Validation",
    "TransformResult",
    "KpiResult",
    "LoadResult",
    "ArchiveResult",
    "RunReport",
    "open_run",
    "discover",
    "validate",
    "transform",
    "compute_kpis",
    "load",
    "archive",
    "finish",
    "run_pipeline",
    "staged_report",
    "clear_stale_staging",
    "STAGES",
]

log = logging.getLogger("playcount")

STAGES = ("discover", "validate", "transform", "kpis", "load", "archive", "finish")
Progress = Callable[[str, str], None]
M = TypeVar("M", bound=BaseModel)


# -- results -----------------------------------------------------------------------------------


class InputFile(BaseModel):
    """A file of the landing zone."""

    dataset: str
    path: str
    name: str
    """Its path under the dataset's landing prefix (the file name for a flat folder)."""
    fingerprint: str
    size: int
    modified: float | None = None
    """`FileInfo.modified`: set for local files, which may still be being written."""
    signature: str | None = None
    """`Storage.signature` when it was fingerprinted (local files): a later different one means it
    changed."""
    problem: str | None = None
    """Why it can never be read (a symlink out of the root, a pipe): it is rejected."""
    waiting: str | None = None
    """Why it is left in the landing zone for a later run (still being written)."""


FileStatus = Literal["accepted", "rejected", "skipped", "pending"]
"""accepted: validated and counted; rejected: moved to `rejected/` whole; skipped: already done
(same content), archived without counting; pending: left in the landing zone for a later run
(still being written, changed under the run, or not validated because the run failed)."""


class FileOutcome(BaseModel):
    """What became of one input file."""

    dataset: str
    name: str
    path: str
    fingerprint: str
    signature: str | None = None
    rows: int = 0
    clean: int = 0
    bad: int = 0
    status: FileStatus = "accepted"
    reason: str | None = None
    rules: dict[str, int] = Field(default_factory=dict)
    warnings: dict[str, int] = Field(default_factory=dict)


class Discovery(BaseModel):
    new: list[InputFile]
    skipped: list[InputFile]
    """Stream files already done (same content, any name), or repeated within this run."""
    songs: list[InputFile]
    users: list[InputFile]
    pending: list[InputFile] = Field(default_factory=list)
    """Landing files left for a later run (`waiting` says why): still being written."""
    unusable: list[InputFile] = Field(default_factory=list)
    """Landing files that cannot be read (`problem`): rejected."""

    @property
    def nothing_to_do(self) -> bool:
        return not self.new and not self.skipped and not self.unusable


class Validation(BaseModel):
    status: Literal["passed", "failed"]
    reason: str | None = None
    files: list[FileOutcome]
    bad_rows: dict[str, str] = Field(default_factory=dict)
    """Dataset -> bad rows file written."""

    def accepted(self, dataset: str = "streams") -> list[FileOutcome]:
        return [f for f in self.files if f.dataset == dataset and f.status == "accepted"]


class TransformResult(BaseModel):
    dates: list[dt.date]
    events: int
    files: dict[str, list[str]] = Field(default_factory=dict)
    """Source file name -> event files written."""


class KpiResult(BaseModel):
    dates: list[dt.date]
    rows: dict[str, int]


class LoadResult(BaseModel):
    dates: list[dt.date]
    rows: dict[str, int]


class ArchiveResult(BaseModel):
    moved: dict[str, str]
    """Source path -> archived path."""
    changed: list[str] = Field(default_factory=list)
    """Stream files that changed after the run read them: withdrawn, left in the landing zone."""


class RunReport(BaseModel):
    """The run report: printed by `--json`, written to `_playcount/runs/<run-id>.json`."""

    run_id: str
    status: Literal["succeeded", "failed", "nothing_to_do"]
    reason: str | None = None
    root: str
    run_date: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    files: list[FileOutcome] = Field(default_factory=list)
    dates: list[dt.date] = Field(default_factory=list)
    kpi_rows: dict[str, int] = Field(default_factory=dict)
    bad_rows: dict[str, str] = Field(default_factory=dict)
    archived: dict[str, str] = Field(default_factory=dict)
    stages: dict[str, float] = Field(default_factory=dict)
    """Stage -> seconds."""

    def summary(self) -> dict[str, object]:
        streams = [f for f in self.files if f.dataset == "streams"]
        return {
            "status": self.status,
            "reason": self.reason,
            "stream_files": len(streams),
            "rows_in": sum(f.rows for f in streams),
            "clean": sum(f.clean for f in streams),
            "bad": sum(f.bad for f in streams),
            "rejected_files": [f.name for f in self.files if f.status == "rejected"],
            "skipped_files": [f.name for f in self.files if f.status == "skipped"],
            "pending_files": [f.name for f in self.files if f.status == "pending"],
            "dates": [d.isoformat() for d in self.dates],
            "kpi_rows": self.kpi_rows,
        }


# -- the run context ---------------------------------------------------------------------------


@dataclass
class Run:
    """Everything a stage needs: settings, the lake, the engine, the store, the notifier."""

    settings: Settings
    storage: Storage
    engine: Engine
    store: KpiStore
    notifier: Notifier
    run_id: str
    started_at: dt.datetime
    layout: Layout = field(default_factory=Layout)
    progress: Progress = field(default=lambda stage, msg: None)
    handoff: dict[str, Any] | None = None
    """Set by `run_pipeline`, which runs every stage in this process: a stage leaves its tables
    here for the next instead of staging them in the lake (a crashed run is re-run whole, so
    nothing is lost). None: stages stage their results, to run as separate tasks or jobs."""

    @property
    def run_date(self) -> dt.date:
        return self.settings.run_date or self.started_at.date()

    @property
    def processing_time(self) -> dt.datetime:
        """When the run started (UTC): what "in the future" is checked against, whatever the run
        date (SPEC §5: a backfill checks the data exactly as a run today would)."""
        return self.started_at

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.storage, self.layout)

    def staging(self, name: str) -> str:
        return f"_playcount/staging/{self.run_id}/{name}"

    def save(self, name: str, result: BaseModel) -> None:
        self.storage.write_bytes(self.staging(f"{name}.json"), result.model_dump_json(indent=2).encode())

    def staged(self, name: str) -> bool:
        """Whether this run's `name` stage result is staged."""
        return self.storage.exists(self.staging(f"{name}.json"))

    def load(self, name: str, model: type[M]) -> M:
        path = self.staging(f"{name}.json")
        if not self.storage.exists(path):
            raise PlaycountError(
                f"run `{self.run_id}` has no `{name}` result (`{path}`)",
                fix=f"run the `{name}` stage of this run first",
            )
        return model.model_validate_json(self.storage.read_bytes(path))


def new_run_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def run_started_at(run_id: str) -> dt.datetime | None:
    """The start time a run id carries (`YYYYMMDDTHHMMSSZ-...`), or None for another form."""
    try:
        return dt.datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None


def open_run(
    settings: Settings,
    *,
    run_id: str | None = None,
    store: KpiStore | None = None,
    notifier: Notifier | None = None,
    engine: Engine | None = None,
    progress: Progress | None = None,
    aws: Aws | None = None,
) -> Run:
    """A run over `settings.root` with the configured (or given) engine, store and notifier.

    `aws` makes every AWS client (S3 root, DynamoDB store, SNS notifier); default: from the
    `aws` settings and the standard credential chain. `run_id` reopens that run (to run one
    stage of it): its start time, so its default run date, is the one the id carries.
    """
    aws = aws or open_aws(settings)
    storage = open_storage(settings.root, aws=aws, lease_seconds=settings.aws.lease_seconds)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    layout = Layout(streams_prefix=settings.streams_prefix.strip("/"))
    if store is None:
        store = open_store(settings, aws)
    if notifier is None:
        notifier = open_notifier(settings, aws, functools.partial(storage.append_bytes, layout.notifications))
    run = Run(
        settings=settings,
        storage=storage,
        engine=engine
        or connect(
            settings.engine, threads=settings.threads, memory_limit=settings.memory_limit,
            spark_master=settings.spark_master,
            spark_conf=settings.spark_conf,
        ),
        store=store,
        notifier=notifier,
        run_id=run_id or new_run_id(now),
        # a run reopened by id keeps its start time, so its run date and run time never drift
        started_at=(run_started_at(run_id) if run_id else None) or now,
        layout=layout,
        progress=progress or (lambda stage, msg: None),
    )
    if isinstance(storage, S3Storage):
        # the engine reads and writes the lake's data files itself (DuckDB: httpfs)
        use_s3 = getattr(run.engine, "use_s3", None)
        if use_s3 is not None:
            use_s3(aws.s3_access())
    return run


# -- 1. discover -------------------------------------------------------------------------------


def is_landing_file(name: str) -> bool:
    """Whether a path below a landing prefix is a landing file (SPEC §5): a name ending in `.csv`
    or `.csv.gz`, any case, and no component starting with `.` or `_` (in-progress or
    bookkeeping files: `_temporary/`, `.part`, `_SUCCESS`)."""
    return name.lower().endswith(CSV_SUFFIXES) and not any(p.startswith((".", "_")) for p in name.split("/"))


def _landing(run: Run, dataset: str) -> list[InputFile]:
    """The dataset's landing files, not yet fingerprinted (`problem` set for unreadable ones)."""
    prefix = run.layout.landing(dataset)
    out = []
    for f in run.storage.list(prefix, problems=True):
        name = f.path[len(prefix) + 1:]
        if is_landing_file(name):
            signature = run.storage.signature(f.path) if f.modified is not None else None
            out.append(
                InputFile(
                    dataset=dataset, path=f.path, name=name, fingerprint="", size=f.size, modified=f.modified,
                    signature=signature, problem=f.problem,
                )
            )
    return out


def _settle(run: Run, files: list[InputFile]) -> list[InputFile]:
    """Wait for the local files modified within `settle_seconds` until they are that old; those
    that changed meanwhile get their `problem` (still being written). S3 objects are complete
    once listed and have no signature here."""
    settle = run.settings.settle_seconds
    now = time.time()
    young = [f for f in files if f.modified is not None and not f.problem and now - f.modified < settle]
    if young:
        # (a modification time in the future, a skewed clock, waits the whole settle time)
        wait = min(settle, max(settle - (now - f.modified) for f in young if f.modified is not None))
        run.progress("discover", f"waiting {wait:.1f}s for {len(young)} file(s) modified in the last {settle:g}s")
        time.sleep(wait)
        for f in young:
            if _signature(run, f.path) != f.signature:
                f.waiting = _still_written(run, f)
    return files


def _signature(run: Run, path: str) -> str | None:
    try:
        return run.storage.signature(path)
    except FileNotFoundError:
        return None


def _still_written(run: Run, f: InputFile) -> str:
    return (
        f"`{f.name}` is still being written (it changed within {run.settings.settle_seconds:g}s): left in the "
        "landing zone for the next run"
    )


def _fingerprinted(run: Run, files: list[InputFile]) -> list[InputFile]:
    """Each usable file with its fingerprint. A local file whose signature moved while it was hashed
    is still being written: its `problem` says so. Unusable files get a fingerprint of what they are."""
    for f in files:
        if f.waiting:
            continue
        try:
            f.fingerprint = run.storage.fingerprint(f.path)  # of the link itself, for a bad symlink
        except FileNotFoundError:
            f.waiting = f"`{f.name}` disappeared while the run looked at it"
            continue
        if f.signature is not None and _signature(run, f.path) != f.signature:
            f.waiting = _still_written(run, f)
    return files


def _require_root(run: Run) -> None:
    if isinstance(run.storage, LocalStorage) and not run.storage.path.is_dir():
        raise SettingsError(
            f"the lake root `{run.storage.root}` does not exist",
            fix="pass --root with a folder holding raw_data/{songs,users,streams}/ (or run `playcount demo`)",
        )


def discover(run: Run) -> Discovery:
    """New stream files (fingerprint not done in the ledger) and the current reference files, each
    once complete (SPEC §5: settled; unusable ones apart)."""
    _require_root(run)
    found = {ds: _landing(run, ds) for ds in ("streams", "songs", "users")}
    _settle(run, [f for files in found.values() for f in files])
    for files in found.values():
        _fingerprinted(run, files)
    unusable = [f for files in found.values() for f in files if f.problem and not f.waiting]
    pending = [f for files in found.values() for f in files if f.waiting]
    ok = {ds: [f for f in files if not f.problem and not f.waiting] for ds, files in found.items()}
    done = run.ledger.done()
    new: list[InputFile] = []
    skipped: list[InputFile] = []
    seen: set[str] = set()
    for f in ok["streams"]:
        (skipped if f.fingerprint in done or f.fingerprint in seen else new).append(f)
        seen.add(f.fingerprint)
    result = Discovery(
        new=new, skipped=skipped, songs=ok["songs"], users=ok["users"], pending=pending, unusable=unusable
    )
    waiting = f", {len(pending)} still being written" if pending else ""
    run.progress("discover", f"{len(new)} new stream file(s), {len(skipped)} already done{waiting}")
    return result


# -- 2. validate -------------------------------------------------------------------------------


@dataclass
class _Checked:
    """One dataset after the rules: the checked table, malformed rows, per-file outcomes."""

    checked: v.Checked | None
    malformed: list[ir.Table]
    outcomes: dict[str, FileOutcome]


def _read(run: Run, files: list[InputFile], contract: Contract) -> tuple[list[RawRead], dict[str, FileOutcome]]:
    reads: list[RawRead] = []
    outcomes: dict[str, FileOutcome] = {}
    for done, f in enumerate(files):
        if len(files) > 1:  # files done of all, for the progress display
            run.progress("validate", f"{f.dataset}: reading file {done + 1} of {len(files)}")
        outcome = FileOutcome(
            dataset=f.dataset, name=f.name, path=f.path, fingerprint=f.fingerprint, signature=f.signature
        )
        outcomes[f.name] = outcome
        raw: RawRead | None = None
        try:
            raw = run.engine.read_csv(
                run.storage.uri(f.path),
                lambda path=f.path: run.storage.open(path),  # type: ignore[misc]
                f.name,
                required=contract.required,
            )
        except SchemaError as e:
            outcome.status, outcome.reason = "rejected", str(e)
        except FileNotFoundError:
            outcome.status, outcome.reason = "pending", f"`{f.name}` disappeared while the run read it"
            continue
        if f.signature is not None and _signature(run, f.path) != f.signature:
            # read while it changed: what was read is not its content; the next run takes it whole
            outcome.status = "pending"
            outcome.reason = f"`{f.name}` changed while the run read it: left in the landing zone for the next run"
            if raw is not None:
                raw.release()
            continue
        if raw is not None:
            reads.append(raw)
    return reads, outcomes


def _check(
    run: Run, files: list[InputFile], contract: Contract, check: Callable[[ir.Table, v.Persist], v.Checked]
) -> _Checked:
    """Read, check and count one dataset; reject files over `max_bad_row_ratio`."""
    started = time.perf_counter()
    reads, outcomes = _read(run, files, contract)
    if not reads:
        return _Checked(None, [], outcomes)
    raw = run.engine.union([r.table for r in reads], prefix=f"raw_{contract.dataset}")
    checked = replace(
        check(raw, lambda t: run.engine.materialize(t, f"checked_{contract.dataset}")),
        raw_columns=tuple(dict.fromkeys(c for r in reads for c in r.columns)),
    )
    for r in reads:
        r.release()  # what the checks persisted is all that is used from here on
    counts = run.engine.to_arrow(v.rule_counts(checked)).to_pylist()
    by_file = {row.pop("_source_file"): row for row in counts}
    limit = run.settings.max_bad_row_ratio
    total = 0
    for r in reads:
        src = outcomes[r.source]
        c = by_file.get(src.name, {"rows": 0, "bad": 0})
        malformed = r.rows - int(c["rows"])
        src.rows = r.rows
        src.bad = int(c["bad"]) + malformed
        src.clean = src.rows - src.bad
        src.rules = {k: int(n) for k, n in c.items() if k not in ("rows", "bad") and n}
        if malformed:
            src.rules[v.MALFORMED] = malformed
        total += r.rows
        share = src.bad / src.rows
        if share > limit:
            src.status = "rejected"
            src.reason = (
                f"`{src.name}`: {src.bad} of {src.rows} rows are bad ({share:.1%}), more than "
                f"max_bad_row_ratio {limit:.0%}; most common: {_top_rules(src.rules)}"
            )
    elapsed = time.perf_counter() - started
    run.progress(
        "validate",
        f"{contract.dataset}: {total:,} rows in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} rows/s)",
    )
    return _Checked(checked, [r.malformed for r in reads], outcomes)


def _top_rules(rules: dict[str, int]) -> str:
    top = sorted(rules.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{k} ({n})" for k, n in top) or "none"


def _accepted_filter(t: ir.Table, names: list[str]) -> ir.Table:
    return t.filter(t._source_file.isin(names)) if names else t.filter(ibis.literal(False))


def _write_bad_rows(run: Run, dataset: str, c: _Checked) -> str | None:
    accepted = [o.name for o in c.outcomes.values() if o.status == "accepted"]
    parts = []
    if c.checked is not None:
        parts.append(_accepted_filter(v.bad_rows(c.checked), accepted))
    parts += [_accepted_filter(m, accepted) for m in c.malformed]
    if not parts or not sum(o.bad for o in c.outcomes.values() if o.status == "accepted"):
        return None
    bad = run.engine.union(parts, prefix=f"bad_{dataset}")
    cols = [x for x in bad.columns if x not in ("_source_file", "_line", "_reasons", "_raw")]
    ordered = bad.select(*cols, *(["_raw"] if "_raw" in bad.columns else []), "_source_file", "_line", "_reasons")
    path = run.layout.bad_rows(dataset, run.run_id)
    run.engine.write_csv(ordered.order_by(["_source_file", "_line"]), run.storage.prepare(path))
    return path


def _reject(
    run: Run, outcome: FileOutcome, fix: str = "correct the file and drop it into the landing zone again"
) -> None:
    dst = run.layout.rejected(run.run_id, outcome.name)
    run.storage.move(outcome.path, dst)
    error = {
        "run_id": run.run_id,
        "file": outcome.name,
        "dataset": outcome.dataset,
        "fingerprint": outcome.fingerprint,
        "reason": outcome.reason,
        "rows": outcome.rows,
        "bad": outcome.bad,
        "rules": outcome.rules,
        "fix": fix,
    }
    run.storage.write_bytes(dst + ".error.json", json.dumps(error, indent=2).encode())
    outcome.path = dst


def validate(run: Run, discovery: Discovery | None = None, *, dry_run: bool = False) -> Validation:
    """SPEC §1-2 over the reference files and the new stream files.

    Writes bad rows, moves rejected files, writes the clean reference data and stages the clean
    stream rows for `transform`. With `dry_run`, only reports: writes and moves nothing.
    `discovery` defaults to this run's saved `discover` result.
    """
    d = discovery or run.load("discover", Discovery)
    s = run.settings
    missing = [
        f"no {ds} file: put the {ds} CSV in `{run.storage.uri(run.layout.landing(ds))}/`"
        for ds, files in (("songs", d.songs), ("users", d.users))
        if not files
    ]
    files: list[FileOutcome] = []
    bad_paths: dict[str, str] = {}

    def done(status: Literal["passed", "failed"], reason: str | None) -> Validation:
        files.extend(
            FileOutcome(
                dataset="streams", name=f.name, path=f.path, fingerprint=f.fingerprint, signature=f.signature,
                status="skipped", reason="already processed (same content)",
            )
            for f in d.skipped
        )
        files.extend(
            FileOutcome(
                dataset=f.dataset, name=f.name, path=f.path, fingerprint=f.fingerprint, status="pending",
                reason=f.waiting,
            )
            for f in d.pending
        )
        result = Validation(status=status, reason=reason, files=files, bad_rows=bad_paths)
        if not dry_run:
            run.save("validate", result)
        return result

    def pending(reason: str) -> list[FileOutcome]:
        return [
            FileOutcome(
                dataset="streams", name=f.name, path=f.path, fingerprint=f.fingerprint, signature=f.signature,
                status="pending", reason=f"not validated, left in the landing zone: {reason}",
            )
            for f in d.new
        ]

    unusable = [
        FileOutcome(
            dataset=f.dataset, name=f.name, path=f.path, fingerprint=f.fingerprint, status="rejected",
            reason=f"`{f.name}` is {f.problem}",
        )
        for f in d.unusable
    ]
    files.extend(unusable)
    if not dry_run:
        for o in unusable:
            _reject(run, o, fix="replace the link or special file with the CSV file itself")
    waiting_ref = [f.waiting for f in d.pending if f.dataset != "streams"]
    if waiting_ref:
        reason = "reference data still being written: " + "; ".join(str(w) for w in waiting_ref)
        files.extend(pending(reason))
        return done("failed", reason)

    if missing:
        reason = "; ".join(missing)
        files.extend(pending(reason))
        return done("failed", reason)

    songs = _check(run, d.songs, CONTRACTS["songs"], v.check_songs)
    users = _check(
        run, d.users, CONTRACTS["users"],
        lambda raw, persist: v.check_users(
            raw, today=run.processing_time.date(), min_age=s.min_user_age, max_age=s.max_user_age, persist=persist
        ),
    )
    ref_outcomes = [*songs.outcomes.values(), *users.outcomes.values()]
    files.extend(ref_outcomes)
    changed_ref = [o for o in ref_outcomes if o.status == "pending"]
    if changed_ref:
        reason = "reference data changed while the run read it: " + "; ".join(str(o.reason) for o in changed_ref)
        files.extend(pending(reason))
        return done("failed", reason)
    rejected_ref = [o for o in ref_outcomes if o.status == "rejected"]
    unusable_ref = [o for o in unusable if o.dataset != "streams"]
    rejected_ref += unusable_ref
    if rejected_ref:
        reason = "reference data rejected: " + "; ".join(str(o.reason) for o in rejected_ref)
        if not dry_run:
            for o in rejected_ref[: len(rejected_ref) - len(unusable_ref)]:  # the unusable ones are moved
                _reject(run, o)
        files.extend(pending(reason))
        return done("failed", reason)
    assert songs.checked is not None and users.checked is not None
    clean_songs = run.engine.materialize(v.clean_rows(songs.checked), "clean_songs")
    clean_users = run.engine.materialize(v.clean_rows(users.checked), "clean_users")
    if not dry_run:
        for ds, c in (("songs", songs), ("users", users)):
            path = _write_bad_rows(run, ds, c)
            if path:
                bad_paths[ds] = path
        for ds, t in (("songs", clean_songs), ("users", clean_users)):
            run.engine.write_parquet(t, run.storage.prepare(run.layout.reference(ds)))

    streams = _check(
        run, d.new, CONTRACTS["streams"],
        lambda raw, persist: v.check_streams(
            raw, songs=clean_songs, users=clean_users, now=run.processing_time, persist=persist
        ),
    )
    outcomes = list(streams.outcomes.values())
    files.extend(outcomes)
    accepted = [o.name for o in outcomes if o.status == "accepted"]
    if streams.checked is not None and accepted:
        clean = _accepted_filter(v.clean_rows(streams.checked), accepted)
        summary = run.engine.to_arrow(v.clean_summary(clean, clean_users)).to_pylist()
        for row in summary:
            if row["early"]:
                warnings = streams.outcomes[row["_source_file"]].warnings
                key = "listen_time before created_at"
                warnings[key] = warnings.get(key, 0) + int(row["early"])
        if run.handoff is not None:
            run.handoff["clean_streams"] = clean
            run.handoff["clean_parts"] = [(r["_source_file"], r["date"], r["rows"]) for r in summary]
        elif not dry_run:
            run.engine.write_parquet(clean, run.storage.prepare(run.staging("clean_streams.parquet")))
    if not dry_run:
        path = _write_bad_rows(run, "streams", streams)
        if path:
            bad_paths["streams"] = path
        for o in outcomes:
            if o.status == "rejected":
                _reject(run, o)
    if d.new and not accepted and all(o.status == "rejected" for o in outcomes):
        return done("failed", "every new stream file was rejected: " + "; ".join(str(o.reason) for o in outcomes))
    return done("passed", None)


# -- 3. transform ------------------------------------------------------------------------------


def transform(run: Run) -> TransformResult:
    """Enrich the clean streams (staged, or handed over by `validate` in `run_pipeline`); write one
    Parquet file per (source file, date)."""
    val = run.load("validate", Validation)
    accepted = val.accepted()
    if not accepted:
        result = TransformResult(dates=[], events=0)
        run.save("transform", result)
        return result
    songs = run.engine.read_parquet([run.storage.uri(run.layout.reference("songs"))])
    handoff = run.handoff or {}
    streams = handoff.pop("clean_streams", None)
    if streams is None:
        streams = run.engine.read_parquet([run.storage.uri(run.staging("clean_streams.parquet"))])
    # not materialised: the (file, date) parts are written straight from the clean rows
    events = enrich_streams(streams, songs)
    if "clean_parts" in handoff:  # validate counted them already
        pairs = [{"_source_file": f, "date": d, "n": n} for f, d, n in sorted(handoff.pop("clean_parts"))]
    else:
        pairs = run.engine.to_arrow(
            events.group_by(["_source_file", "date"]).aggregate(n=events.count()).order_by(["_source_file", "date"])
        ).to_pylist()
    fp = {o.name: o.fingerprint for o in accepted}
    written: dict[str, list[str]] = {}
    parts: dict[tuple[Any, ...], str] = {}
    for p in pairs:
        path = run.layout.events(p["date"], fp[p["_source_file"]])
        parts[(p["_source_file"], p["date"])] = run.storage.prepare(path)
        written.setdefault(p["_source_file"], []).append(path)
    run.engine.write_parquet_parts(events, ("_source_file", "date"), parts)
    dates = sorted({p["date"] for p in pairs})
    result = TransformResult(dates=dates, events=sum(p["n"] for p in pairs), files=written)
    run.save("transform", result)
    run.progress("transform", f"{result.events:,} events over {len(dates)} date(s)")
    return result


# -- 4. kpis -----------------------------------------------------------------------------------


def compute_kpis(run: Run) -> KpiResult:
    """Recompute the three KPI tables for the touched dates, from every event of those dates."""
    tr = run.load("transform", TransformResult)
    rows: dict[str, int] = dict.fromkeys(kpi.KPI_TABLES, 0)
    if tr.dates:
        files = [
            run.storage.uri(f.path)
            for d in tr.dates
            for f in run.storage.list(run.layout.events_dir(d))
            if f.name.endswith(".parquet")
        ]
        enriched = run.engine.read_parquet(files)
        # not materialised: each table below scans the events once, the repeated keys are small
        repeated = run.engine.materialize(kpi.repeated_keys(enriched), "repeated")
        events = kpi.unique_events(enriched, repeated)
        songs = run.engine.read_parquet([run.storage.uri(run.layout.reference("songs"))])
        titles = kpi.song_titles(songs)
        genres = run.engine.materialize(kpi.genre_kpis(events), "genre_kpis")
        tables = {
            "genre_kpis": genres,
            "top_songs": kpi.top_songs(events, titles, run.settings.top_songs_n),
            "top_genres": kpi.top_genres(genres, run.settings.top_genres_n),
        }
        for name, t in tables.items():
            t = run.engine.materialize(t, name)
            for d in tr.dates:
                part = t.filter(t.date == d)
                run.engine.write_parquet(part, run.storage.prepare(run.layout.kpi(name, d)))
            rows[name] = int(run.engine.scalar(t.count()))  # type: ignore[call-overload]
    result = KpiResult(dates=tr.dates, rows=rows)
    run.save("kpis", result)
    run.progress("kpis", ", ".join(f"{k}: {n}" for k, n in rows.items()))
    return result


# -- 5. load -----------------------------------------------------------------------------------


def load(run: Run) -> LoadResult:
    """Replace the touched dates' rows in the KPI store."""
    k = run.load("kpis", KpiResult)
    rows: dict[str, int] = {}
    for name in kpi.KPI_TABLES:
        if not k.dates:
            rows[name] = 0
            continue
        t = run.engine.read_parquet([run.storage.uri(run.layout.kpi(name, d)) for d in k.dates])
        rows[name] = run.store.replace(name, k.dates, run.engine.to_arrow(t))
    result = LoadResult(dates=k.dates, rows=rows)
    run.save("load", result)
    run.progress("load", ", ".join(f"{k}: {n}" for k, n in rows.items()))
    return result


# -- 6. archive --------------------------------------------------------------------------------


def archive(run: Run) -> ArchiveResult:
    """Move the accepted and skipped stream files to `archived/<run date>/`.

    A different file already archived under the same name is never overwritten: this one gets
    its fingerprint in its name instead. A local file is checked again before and after its move:
    one that changed since the run read it is withdrawn (`_withdraw`) and left in the landing
    zone, so that its final content counts exactly once, in a later run.
    """
    val = run.load("validate", Validation)
    moved: dict[str, str] = {}
    changed: list[FileOutcome] = []
    for o in val.files:
        if o.dataset != "streams" or o.status not in ("accepted", "skipped"):
            continue
        dst = _archive_path(run, o)
        if not run.storage.exists(o.path):
            if run.storage.exists(dst) and run.storage.fingerprint(dst) == o.fingerprint:
                moved[o.path] = dst  # moved by an earlier attempt of this stage
            continue
        if o.signature is not None and _signature(run, o.path) != o.signature:
            changed.append(o)
            continue
        run.storage.move(o.path, dst)
        if o.signature is not None and _signature(run, dst) != o.signature:
            # a writer still holding the file wrote to it after the check: back where it was
            run.storage.move(dst, o.path)
            changed.append(o)
            continue
        moved[o.path] = dst
    if changed:
        _withdraw(run, val, changed)
    result = ArchiveResult(moved=moved, changed=[o.name for o in changed])
    run.save("archive", result)
    gone = f"; {len(changed)} changed after it was read, withdrawn and left for the next run" if changed else ""
    run.progress("archive", f"{len(moved)} file(s) archived{gone}")
    return result


def _archive_path(run: Run, o: FileOutcome) -> str:
    dst = run.layout.archived(run.run_date, o.name)
    if run.storage.exists(dst) and run.storage.fingerprint(dst) != o.fingerprint:
        folder, slash, base = o.name.rpartition("/")
        stem, dot, ext = base.partition(".")
        dst = run.layout.archived(run.run_date, f"{folder}{slash}{stem}.{o.fingerprint[:12]}{dot}{ext}")
    return dst


def _withdraw(run: Run, val: Validation, changed: list[FileOutcome]) -> None:
    """Take back what the run counted of files that changed after it read them: their events,
    their bad rows; then the KPIs of the dates they touched again, and the store."""
    names = {o.name for o in changed if o.status == "accepted"}
    for o in changed:
        o.status, o.rows, o.clean, o.bad, o.rules, o.warnings = "pending", 0, 0, 0, {}, {}
        o.reason = (
            f"`{o.name}` changed after the run read it: what was counted of it is withdrawn, and it is left in the "
            "landing zone for the next run"
        )
    if names and "streams" in val.bad_rows and not _drop_bad_rows(run, val.bad_rows["streams"], names):
        run.storage.delete(val.bad_rows.pop("streams"))
    run.save("validate", val)
    if not names:
        return
    tr = run.load("transform", TransformResult)
    for name in names:
        for path in tr.files.pop(name, []):
            run.storage.delete(path)
    run.save("transform", tr)
    compute_kpis(run)
    load(run)


def _drop_bad_rows(run: Run, path: str, names: set[str]) -> int:
    """Rewrite a bad-rows CSV without the rows of `names`; the rows left."""
    text = run.storage.read_bytes(path).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    at = header.index("_source_file")
    kept = [r for r in body if r[at] not in names]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *kept])
    run.storage.write_bytes(path, buf.getvalue().encode("utf-8"))
    return len(kept)


# -- 7. finish ---------------------------------------------------------------------------------


def finish(run: Run, report: RunReport) -> RunReport:
    """Mark files done, write the run report, notify, and drop the run's staging."""
    if report.status == "succeeded":
        for o in report.files:
            if o.dataset == "streams" and o.status in ("accepted", "skipped") and o.path in report.archived:
                run.ledger.mark_done(
                    o.fingerprint,
                    {"run_id": run.run_id, "file": o.name, "archived": report.archived[o.path]},
                )
    report.finished_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    report_json = report.model_dump_json(indent=2).encode()
    run.storage.write_bytes(run.layout.run_report(run.run_id), report_json)
    # the HTML page (`_playcount/reports/`); a page that cannot be drawn is logged, the run stands
    page = write_report_safely(run.storage, run.store, report_json)
    words = {"succeeded": "succeeded", "failed": "FAILED", "nothing_to_do": "nothing to do"}
    subject = f"playcount run {run.run_id} {words[report.status]}"
    if report.status == "succeeded":
        s = report.summary()
        subject += f": {s['clean']:,} clean / {s['bad']:,} bad rows, {len(report.dates)} date(s)"
    if report.status != "nothing_to_do" or run.settings.notify.on_nothing_to_do:
        notify_safely(
            run.notifier, Notification(run.run_id, report.status, subject[:100], report.summary(), report=page)
        )
    else:  # a cron'd run with nothing new would notify every time: a log line only (SPEC §7)
        log.info("%s", subject)
    for f in run.storage.list(f"_playcount/staging/{run.run_id}"):
        run.storage.delete(f.path)
    return report


def staged_report(
    run: Run, status: Literal["succeeded", "failed"] = "succeeded", reason: str | None = None
) -> RunReport:
    """The run report from the stage results staged so far, for runs whose stages ran as separate
    jobs or tasks (Glue, Airflow); `run_pipeline` builds the same report as it goes."""
    report = RunReport(
        run_id=run.run_id, status=status, reason=reason, root=run.storage.root, run_date=run.run_date,
        started_at=run.started_at,
    )
    if status == "succeeded" and run.staged("discover") and run.load("discover", Discovery).nothing_to_do:
        report.status, report.reason = "nothing_to_do", "no new stream files"
    if run.staged("validate"):
        validation = run.load("validate", Validation)
        report.files, report.bad_rows = validation.files, validation.bad_rows
        if report.status == "succeeded" and validation.status == "failed":
            report.status, report.reason = "failed", validation.reason
    if run.staged("transform"):
        report.dates = run.load("transform", TransformResult).dates
    if run.staged("load"):
        report.kpi_rows = run.load("load", LoadResult).rows
    if run.staged("archive"):
        report.archived = run.load("archive", ArchiveResult).moved
    return report


# -- the whole run -----------------------------------------------------------------------------


@contextmanager
def _timed(report: RunReport, stage: str, run: Run) -> Iterator[None]:
    started = time.perf_counter()
    run.progress(stage, "started")
    try:
        yield
    finally:
        report.stages[stage] = round(time.perf_counter() - started, 3)


def _lock(run: Run) -> AbstractContextManager[Any]:
    """The root's run lock: a file lock on a folder, a lease object on S3."""
    return run.storage.lock(run.layout.lock, run.run_id)


#: The folders a run writes into (SPEC §4): each must be a folder, or absent, before it moves anything.
_WRITTEN = ("processed_data", "bad_rows", "rejected", "archived", "_playcount/ledger", "_playcount/runs",
            "_playcount/staging")


def check_writable(run: Run) -> None:
    """Fail before anything is moved when a folder the run writes into cannot be written (a file
    where the folder should be, no write permission): not after archiving, half done."""
    if not isinstance(run.storage, LocalStorage):
        return
    for folder in _WRITTEN:
        p = run.storage.path
        for part in folder.split("/"):
            p = p / part
            if p.exists() and not p.is_dir():
                raise StorageError(
                    f"`{p}` is a file, but the run writes into a folder `{folder}/` there",
                    fix="move that file out of the lake root",
                    path=str(p),
                )
            if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
                raise StorageError(
                    f"the folder `{p}` is not writable", fix="give the user running playcount write access to it",
                    path=str(p),
                )


#: Staged results of a run this old are a crashed run's leftovers. Younger ones may belong to a
#: run whose stages run as separate tasks (Airflow, Glue) and are kept.
STALE_STAGING = dt.timedelta(days=1)


def clear_stale_staging(run: Run) -> None:
    """Drop staged results older than `STALE_STAGING` (a crashed run's leftovers)."""
    for f in run.storage.list("_playcount/staging"):
        started = run_started_at(f.path.split("/")[2])
        if started is None or run.started_at - started > STALE_STAGING:
            run.storage.delete(f.path)


def run_pipeline(
    run: Run, *, after_stage: Callable[[str], None] | None = None, quiet_when_idle: bool = False
) -> RunReport:
    """All seven stages under the root's lock. Returns the report (status failed on failed
    validation); re-raises an unexpected error after reporting it (the run is safe to re-run).

    `after_stage` is called after each stage (tests use it to simulate a crash there).
    `quiet_when_idle` (`watch`): a run with nothing to do leaves no report and sends nothing.
    """
    hook = after_stage or (lambda stage: None)
    report = RunReport(
        run_id=run.run_id, status="succeeded", root=run.storage.root, run_date=run.run_date,
        started_at=run.started_at,
    )
    _require_root(run)
    run.handoff = {}
    with _lock(run):
        clear_stale_staging(run)
        try:
            with _timed(report, "discover", run):
                d = discover(run)
            if d.nothing_to_do:
                report.status = "nothing_to_do"
                report.reason = "no new stream files" + (
                    f"; {len(d.pending)} still being written, left for the next run" if d.pending else ""
                )
                report.files = [
                    FileOutcome(
                        dataset=f.dataset, name=f.name, path=f.path, fingerprint=f.fingerprint, status="pending",
                        reason=f.waiting,
                    )
                    for f in d.pending
                ]
                if quiet_when_idle:
                    log.debug("run %s: nothing to do", run.run_id)
                    return report
                return finish(run, report)
            check_writable(run)
            run.save("discover", d)
            hook("discover")
            with _timed(report, "validate", run):
                val = validate(run)
                report.files = val.files
                report.bad_rows = val.bad_rows
            hook("validate")
            if val.status == "failed":
                report.status, report.reason = "failed", val.reason
                return finish(run, report)
            with _timed(report, "transform", run):
                tr = transform(run)
                report.dates = tr.dates
            hook("transform")
            with _timed(report, "kpis", run):
                compute_kpis(run)
            hook("kpis")
            with _timed(report, "load", run):
                report.kpi_rows = load(run).rows
            hook("load")
            with _timed(report, "archive", run):
                archived = archive(run)
                report.archived = archived.moved
                if archived.changed:  # withdrawn: the outcomes and the KPI rows were redone
                    report.files = run.load("validate", Validation).files
                    report.bad_rows = run.load("validate", Validation).bad_rows
                    report.kpi_rows = run.load("load", LoadResult).rows
            hook("archive")
            with _timed(report, "finish", run):
                finish(run, report)
            return report
        except Exception as e:
            report.status = "failed"
            if isinstance(e, PlaycountError) and not e.retryable:  # its message says what to do first
                report.reason = str(e)
            else:
                report.reason = f"unexpected error: {e} (safe to re-run)"
            log.exception("run %s failed", run.run_id)
            finish(run, report)
            raise
