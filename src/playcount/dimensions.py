"""The merged song and user dimensions of SPEC §5. Pure Ibis: clean reference rows in, the new
version of a dimension out.

A dimension holds one row per key: the contract's columns (typed where the contract types them,
text otherwise; columns a file lacks are null) and `_source_file`, the landing file the row's
version came from. Extra columns of a reference file are checked and carried into its bad rows,
not into the dimension: two files with different extras could not be merged into one table.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from playcount.contracts import SONGS, USERS, Contract

__all__ = ["DIMENSIONS", "schema", "conform", "latest", "merge"]

DIMENSIONS: dict[str, Contract] = {"songs": SONGS, "users": USERS}

#: The typed columns of each dimension (as validation types them); the others are text.
_TYPES: dict[str, dict[str, str]] = {
    "songs": {"duration_ms": "int64", "popularity": "int64", "explicit": "boolean"},
    "users": {"user_id": "int64", "user_age": "int64", "created_at": "date"},
}


def schema(dataset: str) -> dict[str, str]:
    """Column -> type of the `dataset` dimension, in order."""
    types = _TYPES[dataset]
    return {**{c: types.get(c, "string") for c in DIMENSIONS[dataset].columns}, "_source_file": "string"}


def conform(t: ir.Table, dataset: str) -> ir.Table:
    """`t` (clean rows, or a dimension written by an earlier version) with exactly the
    dimension's columns and types."""
    return t.select(
        **{c: t[c].cast(ty) if c in t.columns else ibis.null(ty) for c, ty in schema(dataset).items()}  # type: ignore[arg-type]
    )


def latest(rows: ir.Table, dataset: str) -> ir.Table:
    """One row per key: the one of the last file by name (each file's keys are unique already:
    later duplicates within a file are bad rows)."""
    key = DIMENSIONS[dataset].key
    rank = ibis.row_number().over(group_by=[rows[k] for k in key], order_by=rows._source_file.desc())
    return rows.mutate(_n=rank).filter(lambda t: t._n == 0).drop("_n")


def merge(clean: ir.Table, old: ir.Table | None, dataset: str) -> ir.Table:
    """The new dimension: every key of `clean` (this run's clean rows, the last file by name per
    key) and every key of `old` (the dimension so far) that `clean` does not have, as it was."""
    new = latest(conform(clean, dataset), dataset)
    if old is None:
        return new
    key = list(DIMENSIONS[dataset].key)
    kept = conform(old, dataset).anti_join(new, key)
    return new.union(kept)
