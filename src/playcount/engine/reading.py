"""Reading a CSV the same way on every engine: gzip, UTF-8 (BOM), the header and its names,
line counts and texts, and the exact reader (Python's `csv`) that both engines fall back on.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import IO

from playcount.engine.base import Opener
from playcount.errors import SchemaError

_CHUNK = 1 << 22


# the exact reader is used): a long value is a bad row in either reader, never a rejected file.
csv.field_size_limit(sys.maxsize)

#: Column names playcount adds to a dataset's rows; an input column may not use them.
RESERVED_PREFIX = "_"
#: Columns the transform and the KPIs derive from a stream row (an input column of that name would
#: collide with them downstream).
DERIVED_COLUMNS = frozenset({"date", "genre", "duration_ms", "listen_seconds", "title", "artist", "rank"})
#: What an input column with a reserved name is carried as: `input<name>` (`_line` -> `input_line`).
RENAMED_PREFIX = "input"


def is_gzip(name: str) -> bool:
    """Whether a landing file is gzip-compressed, by its name (`.gz`, any case)."""
    return name.lower().endswith(".gz")


def decompressed(stream: IO[bytes], name: str) -> IO[bytes]:
    return gzip.GzipFile(fileobj=stream) if is_gzip(name) else stream  # type: ignore[return-value]


def text_reader(stream: IO[bytes], name: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(decompressed(stream, name), encoding="utf-8-sig", newline="")


def carried_names(columns: tuple[str, ...], dataset_columns: tuple[str, ...]) -> tuple[str, ...]:
    """The names the rows carry a file's columns under: the contract's own columns as they are,
    other columns as they are unless playcount uses that name itself (`_line`, `_reasons`, ... or a
    derived column such as `date`), which become `input<name>` (`input_line`; `input_date`), with
    a number added while that is taken too. Never a crash on a header (SPEC §1)."""
    taken = set(columns)
    out: list[str] = []
    for c in columns:
        if c in dataset_columns or not (c.startswith(RESERVED_PREFIX) or c in DERIVED_COLUMNS):
            out.append(c)
            continue
        new = f"{RENAMED_PREFIX}{c}" if c.startswith(RESERVED_PREFIX) else f"{RENAMED_PREFIX}_{c}"
        base, n = new, 1
        while new in taken:
            n += 1
            new = f"{base}_{n}"
        taken.add(new)
        out.append(new)
    return tuple(out)


def unreadable(name: str, e: Exception, line: int | None = None) -> SchemaError:
    where = f"`{name}`" if line is None else f"`{name}` line `{line}`"
    if isinstance(e, UnicodeDecodeError):
        return SchemaError(
            f"{where} is not valid UTF-8 (byte {e.start}: {e.object[e.start : e.start + 4]!r})",
            fix="re-export the file as UTF-8",
            file=name,
            line=line,
        )
    return SchemaError(
        f"{where} cannot be read: {e}",
        fix="check that the file is a complete CSV (or .csv.gz) and drop it again",
        file=name,
        line=line,
    )


def unreadable_at(opener: Opener, name: str, e: Exception) -> SchemaError:
    """`_unreadable`, with the physical line of the first invalid UTF-8 byte when that is the cause.

    The text reader decodes ahead in chunks, so its position is not the bad line; lines are
    decoded one by one instead (a UTF-8 sequence never spans a newline).
    """
    if isinstance(e, UnicodeDecodeError):
        try:
            with opener() as stream:
                for number, line in enumerate(decompressed(stream, name), 1):
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError as found:
                        return unreadable(name, found, number)
        except (OSError, EOFError, zlib.error):
            pass
    return unreadable(name, e)


def read_header(opener: Opener, name: str) -> tuple[str, ...]:
    """The header row's column names; raises `SchemaError` when there is none or it is unusable."""
    try:
        with opener() as stream, text_reader(stream, name) as text:
            header = next(csv.reader(text), None)
    except (UnicodeDecodeError, OSError, EOFError, zlib.error, csv.Error) as e:
        raise unreadable_at(opener, name, e) from e
    if not header or all(not h.strip() for h in header):
        raise SchemaError(f"`{name}` is empty: no header row", fix="add the header row", file=name)
    cols = tuple(h.strip() for h in header)
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes or "" in cols:
        bad = ", ".join(f"`{c}`" for c in dupes) or "an empty name"
        raise SchemaError(
            f"`{name}` has a header with {bad} twice or unnamed",
            fix="give every column a unique name",
            file=name,
        )
    return cols


def read_columns(opener: Opener, name: str, required: tuple[str, ...]) -> tuple[str, ...]:
    """`read_header`, raising `SchemaError` when a required column is missing (every engine);
    the names the rows carry the columns under (`carried_names`)."""
    cols = read_header(opener, name)
    missing = [c for c in required if c not in cols]
    if missing:
        raise SchemaError(
            f"`{name}` lacks required column(s) {', '.join(f'`{c}`' for c in missing)} (header: {', '.join(cols)})",
            fix="add the column(s) to the header and drop the file again",
            file=name,
        )
    return carried_names(cols, required)


def no_data_rows(name: str) -> SchemaError:
    """The error of a file with a header and nothing else (every engine)."""
    return SchemaError(f"`{name}` has a header but no data rows", fix="drop a file with data", file=name)


def scan_lines(opener: Opener, name: str, wanted: Iterable[int] = ()) -> tuple[int, dict[int, str]]:
    """Physical lines of the (decompressed) file, not counting trailing blank lines, and the text
    of the `wanted` lines (1-based, without the line end): one pass in large chunks, a wanted line
    found by `_skip_lines`."""
    targets = sorted(set(wanted), reverse=True)
    texts: dict[int, str] = {}
    n = lone_cr = 0
    cr_before = False  # the chunk before ended in CR (a CRLF across chunks is no lone CR)
    tail = carry = b""
    try:
        with opener() as stream:
            raw = decompressed(stream, name)
            while chunk := raw.read(_CHUNK):
                ends = chunk.count(b"\n")
                if b"\r" in chunk:  # (most files have none: two passes over the chunk saved)
                    lone_cr += chunk.count(b"\r") - chunk.count(b"\r\n")
                lone_cr -= cr_before and chunk[:1] == b"\n"
                cr_before = chunk[-1:] == b"\r"
                if targets and targets[-1] <= n + ends:
                    buf, pos, line = carry + chunk, 0, n + 1  # buf[pos] starts line `line`
                    average = max(len(buf) // max(ends, 1), 1)
                    while targets and targets[-1] <= n + ends:
                        want = targets.pop()
                        pos, line = _skip_lines(buf, pos, want - line, average), want
                        texts[want] = buf[pos : buf.find(b"\n", pos)].decode("utf-8", "replace").strip("\r\n")
                if targets:
                    carry = chunk[chunk.rfind(b"\n") + 1 :] if ends else carry + chunk
                n += ends
                tail = chunk[-4096:] if len(chunk) >= 4096 else (tail + chunk)[-4096:]
    except (OSError, EOFError, zlib.error) as e:
        raise unreadable(name, e) from e
    if targets and targets[-1] == n + 1:  # the last line, without a line end
        texts[targets.pop()] = carry.decode("utf-8", "replace").strip("\r\n")
    stripped = tail.rstrip(b"\r\n")
    n -= tail[len(stripped) :].count(b"\n")
    if lone_cr > 0:
        # a CR without LF ends a line for the exact reader (Python's universal newlines), not for
        # these positions: one more line than can be, so that such a file takes the exact reader
        return n + (1 if stripped else 0) + lone_cr + 1, texts
    return n + (1 if stripped else 0), texts


def _skip_lines(buf: bytes, pos: int, k: int, average: int) -> int:
    """The position just after the `k`-th line end at or after `pos` (`buf` has that many).

    A guess from the average line length, corrected by a few finds: a handful of steps per
    wanted line instead of a Python step per line.
    """
    if k <= 0:
        return pos
    end = min(pos + k * average, len(buf))
    m = buf.count(b"\n", pos, end)
    while m < k:
        end = buf.find(b"\n", end) + 1
        m += 1
    while m > k:
        end = buf.rfind(b"\n", pos, end)
        m -= 1
    return buf.rfind(b"\n", pos, end) + 1


class CsvRecords:
    """The data records of a CSV text after its header: the exact reader's parse (Spark's too).

    Iterating yields `(line, fields, raw)` per record: its first physical line (1-based), its
    fields and, when it does not have `width` fields, its original text without the line end
    (what a malformed row keeps in `_raw`; None otherwise). Blank lines are skipped. `line` is
    where the record being read starts, for error messages.
    """

    def __init__(self, text: Iterable[str], width: int) -> None:
        self._text = text
        self._width = width
        self._taken: list[str] = []
        self.line = 1

    def _tee(self) -> Iterator[str]:
        for piece in self._text:
            self._taken.append(piece)
            yield piece

    def __iter__(self) -> Iterator[tuple[int, list[str], str | None]]:
        reader = csv.reader(self._tee())
        next(reader, None)
        taken = self._taken
        taken.clear()
        self.line = reader.line_num + 1
        for record in reader:
            if record:
                raw = None if len(record) == self._width else "".join(taken).strip("\r\n")
                yield self.line, record, raw
            taken.clear()
            self.line = reader.line_num + 1


def malformed_reason(expected: int, found: int) -> str:
    """The reason of a row with the wrong number of fields."""
    return f"malformed row (expected {expected} fields, found {found})"
