"""The merged song and user dimensions in the lake (SPEC §5): read the current version, write the
next one.

Each write is a new file (`Layout.dimension`), written under a temporary name and renamed, and the
older versions are deleted after it: a kill at any point leaves the newest complete version as
the dimension, never a half-written one, and the engine never writes a file it is reading.
"""

from __future__ import annotations

import re

import ibis.expr.types as ir

from playcount.pipeline.run import Run

__all__ = ["read_dimension", "write_dimension"]


def _versions(run: Run, dataset: str) -> list[tuple[int, str]]:
    """(version, path) of the dimension's complete files, oldest first."""
    pattern = re.compile(rf"{dataset}(?:\.v(\d+))?\.parquet")
    out = []
    for f in run.storage.list(run.layout.dimension_dir(dataset)):
        m = pattern.fullmatch(f.name)
        if m and f.path == f"{run.layout.dimension_dir(dataset)}/{f.name}":
            out.append((int(m.group(1) or 0), f.path))
    return sorted(out)


def read_dimension(run: Run, dataset: str) -> ir.Table | None:
    """The current `songs` or `users` dimension, or None before the first run wrote one."""
    versions = _versions(run, dataset)
    return run.engine.read_parquet([run.storage.uri(versions[-1][1])]) if versions else None


def write_dimension(run: Run, dataset: str, table: ir.Table) -> str:
    """Write `table` (computed already: it may read the current version) as the next version of
    the dimension; returns its path."""
    versions = _versions(run, dataset)
    path = run.layout.dimension(dataset, versions[-1][0] + 1 if versions else 1)
    folder = run.layout.dimension_dir(dataset)
    tmp = f"{folder}/_writing-{run.run_id}.parquet"
    run.engine.write_parquet(table, run.storage.prepare(tmp))
    run.storage.move(tmp, path)
    for f in run.storage.list(folder):  # older versions, and what a killed write left
        if f.path != path and (f.name.startswith("_writing-") or any(f.path == p for _, p in versions)):
            run.storage.delete(f.path)
    return path
