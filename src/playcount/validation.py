"""Validation: the contract of SPEC §1-2 as named Ibis predicates. Pure: no I/O.

`check_songs` / `check_users` / `check_streams` take the raw table of a dataset (every column a
string, plus `_source_file` and `_line`) and return a `Checked`: the same rows with their typed
values and `_reasons` (every failed rule, joined with "; ", empty when the row is clean).
`clean_rows`, `bad_rows` and `rule_counts` split it. Given `persist` (the engine's `materialize`),
the checks persist what every split shares (the typed rows with their reasons; for streams, the
duplicate candidates and the duplicate rows; the bad rows' original text), so the rules run once
per row and the raw rows can be freed.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from playcount.contracts import DUPLICATE, MALFORMED, SONGS, STREAMS, TYPED, USERS, Contract

__all__ = [
    "Checked",
    "REASON_SEPARATOR",
    "MALFORMED",
    "DUPLICATE",
    "check_songs",
    "check_users",
    "check_streams",
    "clean_rows",
    "bad_rows",
    "rule_counts",
    "parse_timestamp_utc",
    "clean_summary",
    "EARLY",
]

REASON_SEPARATOR = "; "

_INT = r"^\s*[+-]?\d{1,18}\s*$"
_PLAIN_INT = r"^[+-]?\d{1,18}$"
#: A UTC offset that exists: hours 00-14, minutes 00-59 (`+99:99` and `+14:60` are not offsets).
_OFFSET = r"Z|[+-](?:0\d|1[0-4])(?::?[0-5]\d)?"
_DATE_OR_TS = r"^\s*(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:" + _OFFSET + r")?)?\s*$"
#: A time of day that exists: hours 00-23, minutes and seconds 00-59. Engines disagree beyond it
#: (DuckDB reads `24:00:00` as the next midnight, Spark as null), so neither decides.
_HM = r"(?:[01]\d|2[0-3]):[0-5]\d"
_TS = (
    r"^\s*(\d{4}-\d{2}-\d{2})[T ](" + _HM + r"(?::[0-5]\d(?:\.\d{1,6})?)?)\s*"
    r"(" + _OFFSET + r")?\s*$"
)
#: Years 1-9999 only (SPEC §1): engines take year 0 and BC dates, which no Parquet reader,
#: Python or DynamoDB client can hold; outside the range a value is not a date.
_FIRST_TS, _LAST_TS = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
_FIRST_DATE, _LAST_DATE = dt.date(1, 1, 1), dt.date(9999, 12, 31)
_TYPED = TYPED
EARLY = "_early"
"""A clean stream row's warning flag: its listen_time's date is before its user's created_at
(SPEC §1: a warning, not a rule). `check_streams` sets it; `clean_rows` carries it."""
_RULE = "_r_"
"""The prefix of a rule's boolean column (`_r_user_age_range`): True where the row fails it."""

Persist = Callable[[ir.Table], ir.Table]
"""Computes a table once and returns it (an engine's `materialize`); pure code only calls it."""


def _as_is(t: ir.Table) -> ir.Table:
    return t


@dataclass(frozen=True)
class Checked:
    """A dataset's rows after every rule: raw text, typed values (`_t_*`) and `_reasons`."""

    contract: Contract
    table: ir.Table
    raw_columns: tuple[str, ...]
    """The file's own columns, in header order (kept as text in bad rows)."""
    rules: tuple[str, ...]
    """Every reason this dataset can give, for counting."""
    rule_columns: dict[str, str]
    """Reason -> the boolean column of its rule (every reason but `duplicate`, counted apart)."""
    bad_text: ir.Table
    """The original text of the bad rows (every raw column, `_source_file`, `_line`), for `bad_rows`."""
    before_duplicates: ir.Table | None = None
    """Large datasets (streams): the persisted rows with `_pre`, every other rule's reasons."""
    duplicates: ir.Table | None = None
    """Large datasets (streams): `_source_file`, `_line` of the rows marked `duplicate` (a few).

    With these two, the counts and the bad rows need no join of every row with the duplicates
    (`table` is `before_duplicates` with the mark joined on: `clean_rows` takes it).
    """


def _trimmed(s: ir.StringValue) -> ir.StringValue:
    """`s.strip()`, skipped when `s` neither starts nor ends with whitespace (almost every value).

    Trimming is slow on DuckDB (about 0.35 s per million values, ten times a comparison): a
    first and last character above " " need none. Control characters take the exact path.
    """
    untouched = (s.substr(0, 1) > " ") & (s.right(1) > " ")
    return ibis.ifelse(untouched, s, s.strip())


def _text(s: ir.StringValue) -> ir.StringValue:
    """Trimmed text, empty as null."""
    return _trimmed(s).nullif("")


def _integer(s: ir.StringValue) -> ir.IntegerValue:
    """The integer a string holds, or null when it is not a plain integer (`12.5`, `1e3` are not).

    The pattern decides what is an integer; engines' casts accept more (DuckDB reads `1e3`,
    `1_000`, `0x10` and rounds `12.5`). Values without surrounding blanks skip the trim.
    """
    return ibis.ifelse(
        s.re_search(_PLAIN_INT),
        s.try_cast("int64"),
        ibis.ifelse(s.re_search(_INT), s.strip().try_cast("int64"), ibis.null("int64")),
    )


_PLAIN_TS = r"^\d{4}-\d{2}-\d{2} " + _HM + r":[0-5]\d$"


def _is_plain_timestamp(s: ir.StringValue) -> ir.BooleanValue:
    """Exactly `YYYY-MM-DD HH:MM:SS`: most rows, parsed by a plain cast (no offset: UTC).

    A pattern, not a length and a space: `2024-06-25 23:30+02` has both, and the cast reads it
    as null; nor a LIKE of the separators: the cast also takes forms ISO 8601 does not
    (`2024-06-25 10:00:0Z`, a leading blank). Costs 1 to 3 s more per ten million rows.
    """
    return s.re_search(_PLAIN_TS)


def _parse_iso_utc(s: ir.StringValue) -> ir.TimestampValue:
    """ISO 8601 with optional offset (`Z`, `+hh`, `+hh:mm`, `+hhmm`) as a UTC timestamp; else null.

    The result may fall outside years 1-9999 (`0001-01-01T00:30:00+01:00` is in 1 BC):
    `parse_timestamp_utc` turns that into null."""
    date_part = s.re_extract(_TS, 1).nullif("")
    time_part = s.re_extract(_TS, 2).nullif("")
    offset = s.re_extract(_TS, 3).nullif("")
    base = (date_part + " " + time_part).try_cast("timestamp")
    digits = offset.replace(":", "")
    sign = ibis.ifelse(offset.substr(0, 1) == "-", -1, 1)
    minutes = ibis.ifelse(
        offset.isnull() | (offset == "Z"),
        0,
        sign
        * (
            digits.substr(1, 2).cast("int32") * 60
            + ibis.ifelse(digits.length() > 3, digits.substr(3, 2).cast("int32"), 0)
        ),
    )
    return base - minutes.as_interval("m")


def parse_timestamp_utc(s: ir.StringValue) -> ir.TimestampValue:
    """`YYYY-MM-DD HH:MM:SS` or ISO 8601 with optional offset, as a UTC timestamp; else null.

    One CASE: the plain form takes a cast, only the other rows the regular expressions (DuckDB
    1.5 evaluates the branch for its rows alone). Splitting the table in two instead, as this
    once did, scans the rows twice: 3 s more at ten million rows.
    """
    ts = ibis.ifelse(_is_plain_timestamp(s), s.try_cast("timestamp"), _parse_iso_utc(s))
    return ibis.ifelse(ts.between(ibis.literal(_FIRST_TS), ibis.literal(_LAST_TS)), ts, ibis.null("timestamp"))


def _parse_date(s: ir.StringValue) -> ir.DateValue:
    """`YYYY-MM-DD`, or the date of an ISO timestamp; else null."""
    d = s.re_extract(_DATE_OR_TS, 1).nullif("").try_cast("date")
    return ibis.ifelse(d.between(ibis.literal(_FIRST_DATE), ibis.literal(_LAST_DATE)), d, ibis.null("date"))


def _reasons(t: ir.Table, columns: dict[str, str]) -> ir.StringValue:
    """Every failed rule's reason joined by "; ", "" when none failed (from the rules' booleans).

    The text is built only for rows that failed something (about one in a hundred): an OR of
    the booleans is far cheaper than joining one string per rule on every row.
    """
    parts = [ibis.ifelse(t[c], ibis.literal(reason), ibis.null("string")) for reason, c in columns.items()]
    any_failed = functools.reduce(operator.or_, [t[c] for c in columns.values()])
    return ibis.ifelse(any_failed, ibis.literal(REASON_SEPARATOR).join(parts), ibis.literal(""))


def _without_raw_text(t: ir.Table) -> ir.Table:
    """`t` without the original text of the columns it has typed (`bad_rows` joins it back from
    the raw rows): a third of the width of streams."""
    typed = {c[len(_TYPED) :] for c in t.columns if c.startswith(_TYPED)}
    return t.select(*[c for c in t.columns if c not in typed])


@ibis.udf.scalar.builtin(name="hash")
def _key_hash(user_id: int, track_id: str, listen_time: dt.datetime, source_file: str) -> int:  # type: ignore[empty-body]
    """The engine's own hash of a stream key in its file (DuckDB: 64 bits, Spark: 32 bits), only ever
    compared with itself (declared int64: Spark has no unsigned type for DuckDB's UBIGINT)."""


def _with_duplicates(
    t: ir.Table, contract: Contract, typed_key: list[str], persist: Persist
) -> tuple[ir.Table, ir.Table | None, ir.Table | None]:
    """`_reasons` from `_pre` (the other rules' reasons); `duplicate` is judged among rows that
    pass every other rule. Returns the checked table and, for large datasets, the persisted rows
    with `_pre` and the duplicate rows (see `Checked`).

    The first such row in file order (file name, then line) is kept. Large datasets (streams,
    tens of millions of rows) use an aggregate and a join, much cheaper than a window sort.
    """
    if contract.large:
        t = persist(_without_raw_text(t))
        keys = [*typed_key, "_source_file"]
        ok = t.filter(t._pre == "")
        # Only keys whose hash repeats can repeat: one pass groups the rows by one integer, and
        # the exact grouping by the key's values (strings, tens of millions of groups) runs on
        # those few candidates alone. Collisions only add candidates, never drop a duplicate.
        # (Each use starts from `t` itself: a shared derived table becomes a CTE that DuckDB
        # materialises, a whole extra copy of the rows.)
        repeated = ok.group_by(_rh=_key_hash(*[ok[k] for k in keys])).aggregate(_hn=ok.count())
        repeated = repeated.filter(repeated._hn > 1)
        cand = t.semi_join(repeated, _key_hash(*[t[k] for k in keys]) == repeated._rh)
        cand = persist(cand.filter(cand._pre == "").select(*keys, "_line"))
        firsts = cand.group_by(keys).aggregate(_first=cand._line.min())
        firsts = firsts.select(*[firsts[k].name(f"_k{i}") for i, k in enumerate(keys)], "_first")
        later = cand.join(firsts, [cand[k] == firsts[f"_k{i}"] for i, k in enumerate(keys)])
        later = later.filter(later._line > later._first)
        dups = persist(later.select("_source_file", "_line"))
        d = dups.select(_df=dups._source_file, _dl=dups._line)
        j = t.left_join(d, [t._source_file == d._df, t._line == d._dl])
        table = j.mutate(_reasons=ibis.ifelse(j._dl.notnull(), ibis.literal(DUPLICATE), j._pre)).select(
            *[c for c in t.columns if c != "_pre"], "_reasons"
        )
        return table, t, dups
    group = [t[c] for c in typed_key] + [t._pre == ""] + ([t._source_file] if contract.key_per_file else [])
    rank = ibis.row_number().over(group_by=group, order_by=[t._source_file, t._line])
    dup = (t._pre == "") & (rank > 0)
    return persist(t.mutate(_reasons=ibis.ifelse(dup, ibis.literal(DUPLICATE), t._pre)).drop("_pre")), None, None


def _bad_lines(table: ir.Table, pre: ir.Table | None, dups: ir.Table | None) -> ir.Table:
    """`_bf`, `_bl`, `_reasons` of the bad rows: from `pre` and `dups` when there are (see `Checked`)."""
    if pre is None or dups is None:
        return table.filter(table._reasons != "").select(
            _bf=table._source_file, _bl=table._line, _reasons=table._reasons
        )
    return (
        pre.filter(pre._pre != "")
        .select(_bf=pre._source_file, _bl=pre._line, _reasons=pre._pre)
        .union(dups.select(_bf=dups._source_file, _bl=dups._line, _reasons=ibis.literal(DUPLICATE)))
    )


def _finish(
    t: ir.Table,
    raw: ir.Table,
    contract: Contract,
    params: dict[str, object],
    persist: Persist = _as_is,
    helpers: tuple[str, ...] = (),
) -> Checked:
    """Every rule of the contract that applies to the file's columns, evaluated to its boolean
    column; `_reasons` from those; then the duplicates. `helpers` are columns only the rules
    use, dropped once they ran."""
    typed_key = [f"{_TYPED}{c}" for c in contract.key]
    rules = [r for r in contract.rules if r.applies(_raw_columns(raw))]
    columns = {r.reason_for(params): f"{_RULE}{r.name}" for r in rules}
    t = t.mutate(**{f"{_RULE}{r.name}": r.failed(t, params).fill_null(False) for r in rules})
    t = t.mutate(_pre=_reasons(t, columns).fill_null("")).drop(*helpers)
    table, pre, dups = _with_duplicates(t, contract, typed_key, persist)
    # the original text of the bad rows alone: once persisted, nothing refers to `raw` any more
    bad = _bad_lines(table, pre, dups).select("_bf", "_bl")
    bad_text = persist(raw.semi_join(bad, [raw._source_file == bad._bf, raw._line == bad._bl]))
    return Checked(contract, table, tuple(_raw_columns(raw)), (*columns, DUPLICATE), columns, bad_text, pre, dups)


def _raw_columns(raw: ir.Table) -> list[str]:
    return [c for c in raw.columns if c not in ("_source_file", "_line")]


def check_songs(raw: ir.Table, persist: Persist = _as_is) -> Checked:
    """SPEC §1 songs (`SONGS.rules`): track_id, track_genre, duration_ms, popularity, explicit."""
    cols = _raw_columns(raw)
    typed: dict[str, ir.Value] = {
        f"{_TYPED}track_id": _text(raw.track_id),
        f"{_TYPED}track_genre": raw.track_genre.strip().lower().nullif(""),
        f"{_TYPED}duration_ms": _integer(raw.duration_ms),
    }
    if "popularity" in cols:
        typed[f"{_TYPED}popularity"] = _integer(raw.popularity)
    if "explicit" in cols:
        flag = raw.explicit.strip().lower()
        typed[f"{_TYPED}explicit"] = flag.cases(("true", True), ("false", False), else_=None)
    return _finish(raw.mutate(**typed), raw, SONGS, {}, persist)


def check_users(
    raw: ir.Table, *, today: dt.date, min_age: int = 13, max_age: int = 120, persist: Persist = _as_is
) -> Checked:
    """SPEC §1 users (`USERS.rules`): user_id, user_age, created_at (not after `today`, the
    processing date)."""
    t = raw.mutate(
        **{
            f"{_TYPED}user_id": _integer(raw.user_id),
            f"{_TYPED}user_age": _integer(raw.user_age),
            f"{_TYPED}created_at": _parse_date(raw.created_at),
        }
    )
    return _finish(t, raw, USERS, {"today": today, "min_age": min_age, "max_age": max_age}, persist)


def check_streams(
    raw: ir.Table, *, songs: ir.Table, users: ir.Table, now: dt.datetime, persist: Persist = _as_is
) -> Checked:
    """SPEC §1 streams (`STREAMS.rules`) against the *clean* songs and users (`clean_rows` of
    their checks); a listen_time may be at most a day after `now`, the processing time.

    `persist` (an engine's `materialize`) computes the tables every use of the result shares once.
    """
    t = raw.mutate(**{f"{_TYPED}listen_time": parse_timestamp_utc(raw.listen_time)})
    t = t.mutate(**{f"{_TYPED}user_id": _integer(t.user_id), f"{_TYPED}track_id": _text(t.track_id)})
    # Membership by equi-join on the distinct keys, not `isin(subquery)`: Spark runs an IN
    # subquery inside an expression as a nested-loop join (rows x users), a join hashes.
    # The users dimension has one row per user_id: its created_at comes along for the warning
    # (`EARLY`), computed here on the rows already joined instead of by a second join later.
    # (grouped, not distinct: a dimension edited by hand to hold a user twice multiplies no row)
    known_users = users.group_by(_known_user=users.user_id).aggregate(_created=users.created_at.min())
    known_tracks = songs.select(_known_track=songs.track_id).distinct()
    t = t.left_join(known_users, t[f"{_TYPED}user_id"] == known_users._known_user)
    t = t.left_join(known_tracks, t[f"{_TYPED}track_id"] == known_tracks._known_track)
    t = t.mutate(**{EARLY: (t[f"{_TYPED}listen_time"].date() < t._created).fill_null(False)})
    latest = now.replace(tzinfo=None) + dt.timedelta(days=1)
    return _finish(t, raw, STREAMS, {"latest": latest}, persist, helpers=("_known_user", "_known_track", "_created"))


def clean_rows(checked: Checked) -> ir.Table:
    """The rows that passed every rule: typed key columns, then the other columns as text."""
    # From the whole table, the duplicate mark joined on: the rows before the mark less the
    # duplicates (an anti join, or a left join and a null test) made DuckDB misjudge their number
    # and build its song join's hash table on ten million rows (transform 12 s instead of 5 s).
    t = checked.table.filter(checked.table._reasons == "")
    typed = [c for c in t.columns if c.startswith(_TYPED)]
    names = {c[len(_TYPED) :] for c in typed}
    rest = [c for c in checked.raw_columns if c not in names]
    early = [EARLY] if EARLY in t.columns else []
    return t.select(*[t[c].name(c[len(_TYPED) :]) for c in typed], *rest, "_source_file", "_line", *early)


def bad_rows(checked: Checked) -> ir.Table:
    """The rows that failed a rule: every original text value, `_source_file`, `_line`, `_reasons`.

    The text comes from `checked.bad_text`, joined on (`_source_file`, `_line`): bad rows are
    few, so the checked table need not carry every row's text.
    """
    bad = _bad_lines(checked.table, checked.before_duplicates, checked.duplicates)
    text = checked.bad_text
    j = text.join(bad, [text._source_file == bad._bf, text._line == bad._bl])
    return j.select(*checked.raw_columns, "_source_file", "_line", "_reasons")


def rule_counts(checked: Checked) -> ir.Table:
    """Rows per file: `rows`, `bad`, and one count column per rule (named by its reason)."""
    pre, dups = checked.before_duplicates, checked.duplicates  # both set, or neither
    t = checked.table if pre is None else pre.rename(_reasons="_pre")
    files = t.group_by("_source_file").aggregate(rows=t.count(), bad=(t._reasons != "").sum())
    # each rule's boolean, summed over the bad rows alone (about one in a hundred)
    b = t.filter(t._reasons != "")
    cols = checked.rule_columns
    rules = b.group_by(_f=b._source_file).aggregate(
        # `duplicate` is a row's only reason when it is one (judged among rows that pass every rule)
        **{
            rule: (b[cols[rule]] if rule in cols else b._reasons == DUPLICATE).cast("int64").sum()
            for rule in checked.rules
        }
    )
    j = files.left_join(rules, files._source_file == rules._f)
    counts = j.select("_source_file", "rows", "bad", *[j[r].fill_null(0).name(r) for r in checked.rules])
    if dups is None:
        return counts
    # the rows before the duplicate mark, plus the duplicates (rows that passed every other rule)
    d = dups.group_by(_g=dups._source_file).aggregate(_d=dups.count())
    j = counts.left_join(d, counts._source_file == d._g)
    extra = j._d.fill_null(0)
    return j.select(
        "_source_file",
        "rows",
        (j.bad + extra).name("bad"),
        *[(j[r] + extra if r == DUPLICATE else j[r]).name(r) for r in checked.rules],
    )


def clean_summary(clean_streams: ir.Table) -> ir.Table:
    """Per file and UTC date of the clean stream rows (`clean_rows` of `check_streams`): `rows`,
    and `early`, the events whose listen_time is before their user's created_at (a warning, not
    a rule; `EARLY`)."""
    t = clean_streams
    return t.group_by(_source_file=t._source_file, date=t.listen_time.date()).aggregate(
        rows=t.count(), early=t[EARLY].cast("int64").sum()
    )
