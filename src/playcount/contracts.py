"""The data contract of songs, users and streams (SPEC §1), as data: columns, keys and rules.

Each rule is a named value: the reason a failing row gets and its predicate (an Ibis boolean
over the row's raw text and its typed values, `_t_<column>`, which validation computes). The
readers use `required` to reject files whose header lacks a column; the generator writes
`columns` in this order; validation evaluates every rule to one boolean column per rule and
counts the rules from those booleans (dataframely's `Rule` is the model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

__all__ = [
    "Rule",
    "Contract",
    "SONGS",
    "USERS",
    "STREAMS",
    "CONTRACTS",
    "META_COLUMNS",
    "TYPED",
    "DUPLICATE",
    "MALFORMED",
    "blank",
]

#: Columns every raw table carries besides the file's own: where a row came from.
META_COLUMNS = ("_source_file", "_line")
#: The prefix of a column's typed value during validation (`_t_user_age`).
TYPED = "_t_"
#: The reason of a row whose key repeats an earlier row's (judged among rows that pass every rule).
DUPLICATE = "duplicate"
#: The reason of a row with the wrong number of fields (found by the reader, before any rule).
MALFORMED = "malformed row"

Predicate = Callable[[ir.Table, Mapping[str, Any]], ir.BooleanValue]
"""A rule's test: True where the row fails it, given the checked table and the run's parameters
(`min_age`, `max_age`, `today`, `latest`)."""


def blank(s: ir.StringValue) -> ir.BooleanValue:
    """Null, empty or only whitespace."""
    return s.isnull() | (s.strip() == "")


@dataclass(frozen=True)
class Rule:
    """One rule of a dataset: its name, the reason a failing row gets, and its predicate."""

    name: str
    """Stable and unique within the dataset (`user_age_range`): the rule's boolean column."""
    reason: str
    """What a failing row's `_reasons` says and what the counts are keyed by; may name a run
    parameter in braces (`[{min_age},{max_age}]`)."""
    failed: Predicate
    needs: tuple[str, ...] = ()
    """Optional columns the rule reads: a file without one of them is not checked by it."""

    def reason_for(self, params: Mapping[str, Any]) -> str:
        return self.reason.format(**params)

    def applies(self, columns: tuple[str, ...] | list[str]) -> bool:
        return all(c in columns for c in self.needs)


def _t(t: ir.Table, column: str) -> ir.Value:
    return t[f"{TYPED}{column}"]


@dataclass(frozen=True)
class Contract:
    """What a dataset's CSV files must look like."""

    dataset: str
    columns: tuple[str, ...]
    """The canonical layout, in order (the generator writes exactly this header)."""
    required: tuple[str, ...]
    """Columns a file must have; a file without one of them is rejected whole."""
    key: tuple[str, ...]
    """Columns whose values must be unique (later occurrences are `duplicate` bad rows)."""
    key_per_file: bool
    """True: uniqueness is judged within each file; False: over all files of the dataset. Songs
    and users are unique per file: across the files of a run the last file by name wins per key
    (the merged dimension, `playcount.dimensions`), so a later file can correct an earlier one."""
    large: bool = False
    """Tens of millions of rows (streams): duplicates are found by a key-hash aggregate and a
    join, not a window sort over every row."""
    rules: tuple[Rule, ...] = field(default=())
    """Every rule a row must pass, in the order its reasons are listed (then `duplicate`)."""

    def rule(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)


SONGS = Contract(
    dataset="songs",
    columns=(
        "id",
        "track_id",
        "artists",
        "album_name",
        "track_name",
        "popularity",
        "duration_ms",
        "explicit",
        "danceability",
        "energy",
        "key",
        "loudness",
        "mode",
        "speechiness",
        "acousticness",
        "instrumentalness",
        "liveness",
        "valence",
        "tempo",
        "time_signature",
        "track_genre",
    ),
    required=("track_id", "track_genre", "duration_ms", "track_name", "artists"),
    key=("track_id",),
    key_per_file=True,
    rules=(
        Rule("track_id_empty", "track_id is empty", lambda t, p: blank(t.track_id)),
        Rule("track_genre_empty", "track_genre is empty", lambda t, p: blank(t.track_genre)),
        Rule("duration_ms_type", "duration_ms is not an integer", lambda t, p: _t(t, "duration_ms").isnull()),
        Rule(
            "duration_ms_range",
            "duration_ms out of range [1,86400000]",
            lambda t, p: _t(t, "duration_ms").notnull() & ~_t(t, "duration_ms").between(1, 86_400_000),
        ),
        Rule(
            "popularity_type",
            "popularity is not an integer",
            lambda t, p: ~blank(t.popularity) & _t(t, "popularity").isnull(),
            needs=("popularity",),
        ),
        Rule(
            "popularity_range",
            "popularity out of range [0,100]",
            lambda t, p: _t(t, "popularity").notnull() & ~_t(t, "popularity").between(0, 100),
            needs=("popularity",),
        ),
        Rule(
            "explicit_type",
            "explicit is not True/False",
            lambda t, p: ~blank(t.explicit) & ~t.explicit.strip().lower().isin(["true", "false"]),
            needs=("explicit",),
        ),
    ),
)

USERS = Contract(
    dataset="users",
    columns=("user_id", "user_name", "user_age", "user_country", "created_at"),
    required=("user_id", "user_age", "created_at", "user_name", "user_country"),
    key=("user_id",),
    key_per_file=True,
    rules=(
        Rule("user_id_type", "user_id is not an integer", lambda t, p: _t(t, "user_id").isnull()),
        Rule("user_age_type", "user_age is not an integer", lambda t, p: _t(t, "user_age").isnull()),
        Rule(
            "user_age_range",
            "user_age out of range [{min_age},{max_age}]",
            lambda t, p: _t(t, "user_age").notnull() & ~_t(t, "user_age").between(p["min_age"], p["max_age"]),
        ),
        Rule("created_at_type", "created_at is not a date", lambda t, p: _t(t, "created_at").isnull()),
        Rule(
            "created_at_future",
            "created_at is after the processing date",
            lambda t, p: _t(t, "created_at").notnull() & (_t(t, "created_at") > ibis.literal(p["today"])),
        ),
    ),
)

STREAMS = Contract(
    dataset="streams",
    columns=("user_id", "track_id", "listen_time"),
    required=("user_id", "track_id", "listen_time"),
    key=("user_id", "track_id", "listen_time"),
    key_per_file=True,
    large=True,
    rules=(
        Rule("user_id_type", "user_id is not an integer", lambda t, p: _t(t, "user_id").isnull()),
        # `_known_user` / `_known_track`: the key joined from the clean users / songs (validation)
        Rule("user_id_unknown", "unknown user_id", lambda t, p: _t(t, "user_id").notnull() & t._known_user.isnull()),
        Rule("track_id_empty", "track_id is empty", lambda t, p: _t(t, "track_id").isnull()),
        Rule(
            "track_id_unknown",
            "unknown track_id",
            lambda t, p: _t(t, "track_id").notnull() & t._known_track.isnull(),
        ),
        Rule("listen_time_type", "listen_time is not a timestamp", lambda t, p: _t(t, "listen_time").isnull()),
        Rule(
            "listen_time_future",
            "listen_time is more than 1 day after the processing time",
            lambda t, p: _t(t, "listen_time").notnull() & (_t(t, "listen_time") > ibis.literal(p["latest"])),
        ),
    ),
)

CONTRACTS = {c.dataset: c for c in (SONGS, USERS, STREAMS)}
