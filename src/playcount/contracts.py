"""The data contract of songs, users and streams (SPEC §1), as data.

Validation turns these into Ibis predicates; the readers use `required` to reject files whose
header lacks a column; the generator writes `columns` in this order.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Contract", "SONGS", "USERS", "STREAMS", "CONTRACTS", "META_COLUMNS"]

#: Columns every raw table carries besides the file's own: where a row came from.
META_COLUMNS = ("_source_file", "_line")


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
    """True: uniqueness is judged within each file; False: over all files of the dataset."""


SONGS = Contract(
    dataset="songs",
    columns=(
        "id", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
        "explicit", "danceability", "energy", "key", "loudness", "mode", "speechiness",
        "acousticness", "instrumentalness", "liveness", "valence", "tempo", "time_signature",
        "track_genre",
    ),
    required=("track_id", "track_genre", "duration_ms", "track_name", "artists"),
    key=("track_id",),
    key_per_file=False,
)

USERS = Contract(
    dataset="users",
    columns=("user_id", "user_name", "user_age", "user_country", "created_at"),
    required=("user_id", "user_age", "created_at", "user_name", "user_country"),
    key=("user_id",),
    key_per_file=False,
)

STREAMS = Contract(
    dataset="streams",
    columns=("user_id", "track_id", "listen_time"),
    required=("user_id", "track_id", "listen_time"),
    key=("user_id", "track_id", "listen_time"),
    key_per_file=True,
)

CONTRACTS = {c.dataset: c for c in (SONGS, USERS, STREAMS)}
