"""Shared fixtures. Unmarked tests are fast; tiers are marked (see pyproject)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from playcount.engine import DuckDBEngine


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    """The engine the pure rule and KPI tests run on (DuckDB; Spark joins here later)."""
    yield DuckDBEngine(threads=2)
