"""The run context (`Run`), opening a run, and the rules every way of running shares: the
root's lock, the folders a run writes, and which staging is a crashed run's leftovers."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from playcount.aws import Aws
from playcount.engine import Engine, connect
from playcount.errors import PlaycountError, StorageError
from playcount.lake import Layout, Ledger, LocalStorage, Storage, open_storage
from playcount.lake.s3 import S3Storage
from playcount.notify import Notifier
from playcount.pipeline.results import (
    M,
    Progress,
)
from playcount.settings import Settings
from playcount.stores import KpiStore
from playcount.wiring import open_aws, open_notifier, open_store

log = logging.getLogger("playcount")


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
            settings.engine,
            threads=settings.threads,
            memory_limit=settings.memory_limit,
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


def _lock(run: Run) -> AbstractContextManager[Any]:
    """The root's run lock: a file lock on a folder, a lease object on S3."""
    return run.storage.lock(run.layout.lock, run.run_id)


#: The folders a run writes into (SPEC §4): each must be a folder, or absent, before it moves anything.
_WRITTEN = (
    "processed_data",
    "bad_rows",
    "rejected",
    "archived",
    "_playcount/ledger",
    "_playcount/runs",
    "_playcount/staging",
)


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
                    transient=False,
                    path=str(p),
                )
            if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
                raise StorageError(
                    f"the folder `{p}` is not writable",
                    fix="give the user running playcount write access to it",
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
