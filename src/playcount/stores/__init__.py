"""KPI stores: where the three KPI tables are loaded (SPEC §6)."""

from playcount.stores.base import KPI_SCHEMAS, KpiStore
from playcount.stores.duckdb import DuckDBStore
from playcount.stores.dynamodb import DynamoDBStore
from playcount.stores.memory import FaultyStore, MemoryStore

__all__ = ["KpiStore", "KPI_SCHEMAS", "DuckDBStore", "DynamoDBStore", "MemoryStore", "FaultyStore"]
