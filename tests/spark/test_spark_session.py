"""The settings the Spark engine puts on its session."""

from __future__ import annotations

from typing import Any

import pytest

from playcount.engine.spark import SparkEngine

pytestmark = pytest.mark.spark

_RULES = "spark.sql.optimizer.excludedRules"
_OTHER = "org.apache.spark.sql.catalyst.optimizer.ConvertToLocalRelation"


def test_a_semi_join_stays_above_a_union_and_the_sessions_own_exclusions_stay(spark_session: Any) -> None:
    """The bad rows' text is a semi join of the union of every file's rows: pushed into each branch it
    was one broadcast job per file. A rule the session already excluded is kept."""
    before = spark_session.conf.get(_RULES, "")
    spark_session.conf.set(_RULES, _OTHER)
    try:
        SparkEngine(spark_session)
        rules = spark_session.conf.get(_RULES).split(",")
        assert rules == [_OTHER, "org.apache.spark.sql.catalyst.optimizer.PushDownLeftSemiAntiJoin"]
        a = spark_session.createDataFrame([(1, "x"), (2, "y")], "k INT, v STRING")
        b = spark_session.createDataFrame([(3, "z"), (4, "w")], "k INT, v STRING")
        keys = spark_session.createDataFrame([(2,), (3,)], "k INT")
        joined = a.union(b).join(keys, "k", "left_semi")
        plan = joined._jdf.queryExecution().optimizedPlan().toString()
        assert plan.count("LeftSemi") == 1, plan
        assert sorted(r.v for r in joined.collect()) == ["y", "z"]
    finally:
        spark_session.conf.set(_RULES, before or "")
