"""The only place that chooses a backend: DuckDB (embedded) is the default; Spark with the
`spark` extra.

The package: `base` (the `Engine` protocol, `RawRead`), `reading` (CSV reading shared by every
engine), `duckdb` and `spark` (the implementations, which import `base` and `reading` only).
This module is the chooser and the only importer of the implementations.
"""

from __future__ import annotations

from typing import Any

from playcount.engine.base import CsvSource, Engine, Opener, RawRead, ReadResult
from playcount.engine.duckdb import DuckDBEngine, duckdb_literal
from playcount.errors import SettingsError

__all__ = [  # noqa: F822 - SparkEngine: lazy
    "Engine",
    "CsvSource",
    "ReadResult",
    "DuckDBEngine",
    "SparkEngine",
    "RawRead",
    "Opener",
    "connect",
    "duckdb_literal",
]


def connect(
    engine: str = "duckdb",
    *,
    threads: int | None = None,
    memory_limit: str | None = "1GB",
    spark_master: str | None = None,
    spark_conf: dict[str, str] | None = None,
    session: Any = None,
) -> Engine:
    """The engine named by the `engine` setting.

    `spark`: on `session` (an existing SparkSession: Glue's, EMR's) if given, else on a session
    for `spark_master` (default `local[*]`) with `spark_conf`.
    """
    if engine == "duckdb":
        return DuckDBEngine(threads=threads, memory_limit=memory_limit)
    if engine == "spark":
        from playcount.engine.spark import SparkEngine

        return SparkEngine(session, master=spark_master, conf=spark_conf)
    raise SettingsError(f"unknown engine `{engine}`", fix="use `duckdb` or `spark`", key="engine")


def __getattr__(name: str) -> Any:
    # `SparkEngine` without importing pyspark for everyone who imports this module
    if name == "SparkEngine":
        from playcount.engine.spark import SparkEngine

        return SparkEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
