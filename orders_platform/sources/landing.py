"""The landing-zone source: files dropped per day as CSV or NDJSON (SPEC §8).

Layout: ``{root}/orders/dt=YYYY-MM-DD/`` and ``{root}/events/dt=YYYY-MM-DD/`` hold
``*.csv`` (a header row with the source column names, UTF-8) and ``*.ndjson`` (one JSON
object per line) files; ``.jsonl`` is read as NDJSON and a ``.gz`` suffix on either is
decompressed on the fly. Names starting with ``.`` or ``_`` (in-flight uploads, ``_SUCCESS``
markers) and other extensions are ignored and listed in the stats. ``root`` is a local path
or any fsspec URL (``s3://bucket/landing``).

Bounded memory, whatever the file size: a file is read as a stream of physical lines
(each at most ``max_line_bytes``) and turned into Polars frames of at most ``chunk_rows``
rows, so files larger than memory work. Every frame has the source columns (strings,
null when a file lacks the column) plus ``_file`` (file name), ``_line`` (1-based
physical line number where the record starts; the CSV header is line 1),
``_malformed`` and ``_raw_line``.

Every physical record becomes exactly one row — a data row, or a malformed row whose
``_malformed`` holds ``<code>: <detail>``, whose ``_raw_line`` holds the raw text (invalid
bytes replaced by U+FFFD, at most ``RAW_LINE_MAX_CHARS``) and whose source columns are null:

* ``bad_encoding`` — the record is not valid UTF-8 (or, in JSON, holds a lone surrogate);
* ``malformed_json`` — not JSON, or JSON that is not an object;
* ``wrong_column_count`` — a CSV record whose field count differs from the header's;
* ``malformed_csv`` — a CSV syntax error, or an unterminated quoted field (see below);
* ``line_too_long`` — a physical line longer than ``max_line_bytes``;
* ``no_known_columns`` — a CSV whose header names none of the source columns (a file
  without a header, say): its header line and every record are kept as malformed rows.

Blank (whitespace-only) lines are not records: they are skipped and counted per file.

CSV is parsed by Python's ``csv`` module (RFC 4180: quoted fields may hold commas,
doubled quotes and newlines; CRLF or LF line ends; a UTF-8 BOM is removed). A quoted
field that is never closed would swallow the lines after it, so a record spanning several
physical lines that fails (wrong field count, syntax error, or more than
``max_record_lines`` lines) is not accepted: its *first* line becomes a ``malformed_csv``
row and parsing restarts on the next physical line. One stray quote costs one line.

NDJSON values are delivered as text exactly as written: strings as they are, numbers as
their literal text (``1234.50`` stays ``1234.50``, never a float), ``true``/``false``,
``null`` as null; nested arrays/objects are re-serialised as compact JSON. Object keys
and CSV header names are matched to the source columns trimmed and lower-cased; unknown
ones are ignored and listed in the stats (``unknown_columns``).

Idempotence: every file's SHA-256, size, rows and malformed rows are recorded
(``files``); a file whose checksum equals an earlier file's of the same day (names in
sorted order) is not read again and is listed in ``skipped_files`` with the name of the
file it duplicates. Re-materializing a partition re-reads the directory and replaces the
partition, so a file is never loaded twice into it.
"""

from __future__ import annotations

import csv
import gc
import gzip
import hashlib
import io
import json
import posixpath
import re
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any, BinaryIO

import fsspec
import polars as pl
from fsspec.implementations.local import LocalFileSystem

from orders_platform.sources.base import MALFORMED_COLUMN, Increment, RawSource
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

__all__ = [
    "FILE_COLUMN",
    "LINE_COLUMN",
    "RAW_LINE_COLUMN",
    "RAW_LINE_MAX_CHARS",
    "LandingSource",
    "landing_schema",
]

FILE_COLUMN = "_file"
LINE_COLUMN = "_line"
RAW_LINE_COLUMN = "_raw_line"
RAW_LINE_MAX_CHARS = 65_536

_BOM = b"\xef\xbb\xbf"
_READ_BUFFER = 1 << 20
_HASH_BLOCK = 8 << 20
_CSV_SUFFIXES = (".csv", ".csv.gz")
_NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
_MAX_KEYS = 10_000  # distinct JSON keys remembered per file
_MAX_NAMES = 100  # unknown column names reported per file
_NO_KNOWN_COLUMNS = "no_known_columns: the header names none of the source columns"
# Tests switch the block fast path off to check it gives exactly the careful parser's rows.
_FAST_PATH = True
# Lines parsed per block, and rows buffered as Python objects before they become a Polars
# part: memory stays ~ chunk_rows compact rows + this many Python rows.
_PART_ROWS = 10_000
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def landing_schema(columns: Sequence[str]) -> dict[str, pl.DataType]:
    """The schema of every frame the landing source yields for `columns`."""
    return {
        **{c: pl.String() for c in columns},
        FILE_COLUMN: pl.String(),
        LINE_COLUMN: pl.Int64(),
        MALFORMED_COLUMN: pl.String(),
        RAW_LINE_COLUMN: pl.String(),
    }


# --------------------------------------------------------------------------- lines


@dataclass(slots=True)
class _Line:
    number: int
    data: bytes  # raw bytes incl. the line terminator (truncated when too long)
    text: str  # decoded (surrogateescape when bad) for the parser
    bad_encoding: bool
    too_long: bool

    def raw_text(self) -> str:
        text = self.data.decode("utf-8", "replace").rstrip("\r\n")
        if self.too_long:
            text = text[:RAW_LINE_MAX_CHARS] + " …[truncated: line too long]"
        elif len(text) > RAW_LINE_MAX_CHARS:
            text = text[:RAW_LINE_MAX_CHARS] + " …[truncated]"
        return text


def _make_line(number: int, data: bytes, too_long: bool) -> _Line:
    try:
        return _Line(number, data, data.decode("utf-8"), False, too_long)
    except UnicodeDecodeError:
        return _Line(number, data, data.decode("utf-8", "surrogateescape"), True, too_long)


class _LineSource:
    """Physical lines of a binary stream, numbered from 1 (split on LF; CRLF is kept for
    the CSV parser; a UTF-8 BOM is removed from line 1). A line longer than
    `max_line_bytes` is truncated and the rest of it skipped, never held in memory.

    `block(n)` returns up to n raw lines at C speed for the fast path; iterating yields
    decoded `_Line` objects (each line decoded on its own: one bad byte spoils one line).
    """

    def __init__(self, stream: BinaryIO, max_line_bytes: int) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self.number = 0  # lines read so far
        self.exhausted = False

    def _skip_rest_of_line(self) -> None:
        while True:
            rest = self._stream.readline(_READ_BUFFER)
            if not rest or rest.endswith(b"\n"):
                return

    def block(self, n: int) -> tuple[list[bytes], set[int]]:
        """Up to `n` raw lines and the line numbers among them that were too long."""
        readline, limit, maximum = self._stream.readline, self._max + 1, self._max
        out: list[bytes] = []
        too_long: set[int] = set()
        for _ in range(n):
            data = readline(limit)
            if not data:
                self.exhausted = True
                break
            if len(data) > maximum and not data.endswith(b"\n"):
                too_long.add(self.number + len(out) + 1)
                self._skip_rest_of_line()
            out.append(data)
        if out and self.number == 0 and out[0].startswith(_BOM):
            out[0] = out[0][len(_BOM) :]
        self.number += len(out)
        return out, too_long

    def __iter__(self) -> _LineSource:
        return self

    def __next__(self) -> _Line:
        lines, too_long = self.block(1)
        if not lines:
            raise StopIteration
        return _make_line(self.number, lines[0], bool(too_long))


def _as_lines(block: Sequence[bytes], start: int, too_long: set[int]) -> list[_Line]:
    return [_make_line(start + i, d, (start + i) in too_long) for i, d in enumerate(block)]


def _fast_csv(
    block: list[bytes], start: int, expected: int
) -> tuple[list[tuple[int, list[str]]], int, int] | None:
    """Parse a block of raw lines at C speed when nothing in it is wrong: returns the
    records with their first line numbers, the blank lines, and where an incomplete last
    record (a quoted field continuing into the next block) begins. None means "something
    needs the careful parser" (bad UTF-8, a syntax error, a wrong field count)."""
    try:
        texts = [d.decode("utf-8") for d in block]
    except UnicodeDecodeError:
        return None
    reader = csv.reader(texts, strict=True)  # strict only adds errors, never changes rows
    records: list[tuple[int, list[str]]] = []
    append = records.append
    blanks = 0
    done = 0  # lines fully consumed by complete records
    with _gc_paused():
        try:
            for fields in reader:
                if len(fields) != expected:
                    if fields:
                        return None
                    blanks += 1  # an empty line
                else:
                    append((start + done, fields))
                done = reader.line_num
        except csv.Error as exc:
            if str(exc) != "unexpected end of data" or reader.line_num != len(texts):
                return None
    return records, blanks, done


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one bounded block is parsed: its lists
    and dicts hold only strings (no cycles), but keeping thousands alive makes the
    collector rescan them over and over (~40 % of the parse time). Never held across a
    yield."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _RecordTooLong(Exception):
    pass


class _Feed:
    """The line iterator handed to csv.reader by the careful parser: serves `pending`
    lines first, then more from the stream; remembers which physical lines the current
    record consumed and lets the caller push lines back to re-parse them."""

    def __init__(self, more: Iterator[_Line], max_record_lines: int) -> None:
        self.pending: deque[_Line] = deque()
        self._more = more
        self._max = max_record_lines
        self.consumed: list[_Line] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if len(self.consumed) >= self._max:
            raise _RecordTooLong
        line = self.pending.popleft() if self.pending else next(self._more)
        self.consumed.append(line)
        # A too-long line is never parsed: its truncated text could open a quoted field.
        return "\n" if line.too_long else line.text

    def push_back(self, lines: Sequence[_Line]) -> None:
        self.pending.extendleft(reversed(lines))


# --------------------------------------------------------------------------- chunks


@dataclass
class _FileStats:
    name: str
    format: str
    sha256: str
    bytes: int
    rows: int = 0
    malformed: int = 0
    blank_lines: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    duplicate_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "rows": self.rows,
            "malformed": self.malformed,
            "blank_lines": self.blank_lines,
            "unknown_columns": self.unknown_columns,
            "missing_columns": self.missing_columns,
            "duplicate_columns": self.duplicate_columns,
        }


class _Chunk:
    """Rows of one file accumulated into a frame of at most `chunk_rows` rows. Rows are
    buffered as Python values for at most `_PART_ROWS` rows, then sealed into a compact
    Polars part, so the Python objects alive at any time stay few (memory and GC)."""

    def __init__(self, file_name: str, columns: Sequence[str], present: Sequence[str]) -> None:
        self.file_name = file_name
        self.columns = tuple(columns)
        self.present = tuple(present)
        self._nulls = (None,) * len(self.present)
        self.rows: list[Sequence[str | None]] = []
        self.lines: list[int] = []
        self.bad: list[tuple[int, str, str]] = []  # (row index in buffer, reason, raw text)
        self.parts: list[pl.DataFrame] = []
        self.sealed_rows = 0
        self.malformed_total = 0

    def __len__(self) -> int:
        return self.sealed_rows + len(self.rows)

    def add(self, line: int, values: Sequence[str | None]) -> None:
        self.rows.append(values)
        self.lines.append(line)
        if len(self.rows) >= _PART_ROWS:
            self._seal()

    def extend(self, lines: list[int], rows: list[Sequence[str | None]]) -> None:
        self.rows.extend(rows)
        self.lines.extend(lines)
        if len(self.rows) >= _PART_ROWS:
            self._seal()

    def add_malformed(self, line: int, reason: str, raw: str) -> None:
        self.bad.append((len(self.rows), reason, raw))
        self.malformed_total += 1
        self.add(line, self._nulls)

    def _seal(self) -> None:
        n = len(self.rows)
        if not n:
            return
        if self.present:
            data = pl.DataFrame(
                self.rows, schema={c: pl.String for c in self.present}, orient="row"
            )
        else:
            data = pl.DataFrame({"_": pl.Series([None] * n, dtype=pl.String)})
        malformed = pl.Series(MALFORMED_COLUMN, [None] * n, dtype=pl.String)
        raw = pl.Series(RAW_LINE_COLUMN, [None] * n, dtype=pl.String)
        if self.bad:
            at = [b[0] for b in self.bad]
            malformed = malformed.scatter(at, pl.Series([b[1] for b in self.bad], dtype=pl.String))
            raw = raw.scatter(at, pl.Series([b[2] for b in self.bad], dtype=pl.String))
        part = data.with_columns(
            *(pl.lit(None, pl.String).alias(c) for c in self.columns if c not in self.present),
            pl.lit(self.file_name, pl.String).alias(FILE_COLUMN),
            pl.Series(LINE_COLUMN, self.lines, dtype=pl.Int64),
            malformed,
            raw,
        ).select(*self.columns, FILE_COLUMN, LINE_COLUMN, MALFORMED_COLUMN, RAW_LINE_COLUMN)
        self.parts.append(part)
        self.sealed_rows += n
        self.rows, self.lines, self.bad = [], [], []

    def take(self) -> pl.DataFrame:
        """The accumulated rows as one frame; the chunk starts empty again."""
        self._seal()
        frame = self.parts[0] if len(self.parts) == 1 else pl.concat(self.parts, rechunk=False)
        self.parts, self.sealed_rows = [], 0
        return frame


def _norm(name: str) -> str:
    return name.strip().lower()


class _Number(str):
    """A JSON number kept as its literal text (never a float: money stays exact)."""

    __slots__ = ()


_JSON_KINDS = {list: "array", str: "string", _Number: "number", bool: "boolean"}


def _json_text(value: Any) -> str | None:
    """A JSON value as source text: strings as they are, numbers as written,
    true/false, null as None, arrays/objects as compact JSON (numbers as written)."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value) if type(value) is _Number else value
    return _json_compact(value)


def _json_compact(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is _Number:
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = (
            json.dumps(k, ensure_ascii=False) + ":" + _json_compact(v) for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    return "[" + ",".join(_json_compact(v) for v in value) + "]"


def _json_error(exc: json.JSONDecodeError) -> str:
    return f"{exc.msg} at column {exc.colno}"


def _valid_utf8(values: Sequence[str | None]) -> bool:
    try:
        for v in values:
            if v is not None:
                v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --------------------------------------------------------------------------- resource


class LandingSource(RawSource):
    """Raw orders and events from CSV / NDJSON files in the landing zone
    (``ORDERS_SOURCE=landing``).

    Suggested settings: ``ORDERS_LANDING_DIR`` (root), ``ORDERS_LANDING_CHUNK_ROWS``
    (100 000), ``ORDERS_LANDING_MAX_LINE_BYTES`` (16 MiB).
    """

    root: str
    chunk_rows: int = 100_000
    max_line_bytes: int = 16 << 20
    max_record_lines: int = 1_000
    storage_options: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return "landing"

    def extract_orders(self, day: date) -> Iterator[pl.DataFrame]:
        yield from self._extract("orders", day, ORDER_SOURCE_COLUMNS)

    def extract_orders_increment(self, day: date, increment: Increment) -> Iterator[pl.DataFrame]:
        """The open day's files whose checksum the lake partition does not hold yet."""
        yield from self._extract("orders", day, ORDER_SOURCE_COLUMNS, increment.seen_files)

    @property
    def incremental_by_files(self) -> bool:
        return True

    def extract_events(self, day: date) -> Iterator[pl.DataFrame]:
        yield from self._extract("events", day, EVENT_SOURCE_COLUMNS)

    # ------------------------------------------------------------------ internals

    def _check_knobs(self) -> None:
        problems = []
        if not (isinstance(self.root, str) and self.root.strip()):
            problems.append("ORDERS_LANDING_DIR is empty")
        if self.chunk_rows < 1:
            problems.append(f"ORDERS_LANDING_CHUNK_ROWS must be positive, got {self.chunk_rows}")
        if self.max_line_bytes < 1024:
            problems.append(
                f"ORDERS_LANDING_MAX_LINE_BYTES must be at least 1024, got {self.max_line_bytes}"
            )
        if self.max_record_lines < 1:
            problems.append(f"max_record_lines must be positive, got {self.max_record_lines}")
        if problems:
            raise ValueError("; ".join(problems))

    def day_directory(self, kind: str, day: date | datetime) -> str:
        if isinstance(day, datetime):
            day = day.date()
        return f"{self.root.rstrip('/')}/{kind}/dt={day.isoformat()}"

    def _extract(
        self,
        kind: str,
        day: date,
        columns: Sequence[str],
        already_read: frozenset[str] = frozenset(),
    ) -> Iterator[pl.DataFrame]:
        self._check_knobs()
        self._record_stats()
        started = time.perf_counter()
        directory = self.day_directory(kind, day)
        fs, path = fsspec.core.url_to_fs(directory, **self.storage_options)
        stats: dict[str, Any] = {
            "directory": directory,
            "directory_exists": False,
            "rows_extracted": 0,
            "rows_malformed": 0,
            "rows_in_overlap": 0,
            "blank_lines": 0,
            "files": [],
            "skipped_files": [],
            "ignored_files": [],
            "unknown_columns": [],
        }
        yielded = False
        if fs.isdir(path):
            stats["directory_exists"] = True
            entries = sorted(
                (e for e in fs.ls(path, detail=True) if e.get("type") == "file"),
                key=lambda e: posixpath.basename(e["name"].rstrip("/")),
            )
            seen: dict[str, str] = {}
            unknown: set[str] = set()
            for entry in entries:
                file_path = entry["name"]
                name = posixpath.basename(file_path.rstrip("/"))
                fmt = _format_of(name)
                if fmt is None or name.startswith((".", "_")):
                    stats["ignored_files"].append(name)
                    continue
                digest, size = self._checksum(fs, file_path)
                if digest in already_read:  # an intraday tick: the lake holds this file
                    stats["skipped_files"].append(
                        {"name": name, "sha256": digest, "bytes": size, "already_read": True}
                    )
                    continue
                if digest in seen:
                    stats["skipped_files"].append(
                        {
                            "name": name,
                            "sha256": digest,
                            "bytes": size,
                            "duplicate_of": seen[digest],
                        }
                    )
                    continue
                seen[digest] = name
                fstats = _FileStats(name=name, format=fmt, sha256=digest, bytes=size)
                stats["files"].append(fstats)
                with _open(fs, file_path, name) as stream:
                    reader = self._read_csv if fmt == "csv" else self._read_ndjson
                    for frame in reader(stream, name, columns, fstats):
                        fstats.rows += frame.height
                        stats["rows_extracted"] += frame.height
                        yielded = True
                        yield frame
                fs.invalidate_cache(file_path)
                if fs.size(file_path) != size:
                    raise RuntimeError(
                        f"landing file {name} in {directory} changed while it was being read "
                        f"({size} bytes when checksummed, {fs.size(file_path)} now): upload "
                        "files under a name starting with '.' or '_' and rename them when "
                        "complete; re-run the partition once the file is final"
                    )
                stats["rows_malformed"] += fstats.malformed
                stats["blank_lines"] += fstats.blank_lines
                unknown.update(fstats.unknown_columns)
                stats["unknown_columns"] = sorted(unknown)
                self._record_stats(**_public(stats, started))
        self._record_stats(**_public(stats, started))
        if not yielded:
            yield pl.DataFrame(schema=landing_schema(columns))

    def _checksum(self, fs: fsspec.AbstractFileSystem, path: str) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        with fs.open(path, "rb") as f:
            while block := f.read(_HASH_BLOCK):
                digest.update(block)
                size += len(block)
        return digest.hexdigest(), size

    # ------------------------------------------------------------------ CSV

    def _read_csv(
        self, stream: BinaryIO, name: str, columns: Sequence[str], fstats: _FileStats
    ) -> Iterator[pl.DataFrame]:
        """CSV records as rows. Blocks of up to `chunk_rows` lines go through the C parser
        in one call when nothing in them is wrong (`_fast_csv`); a block with anything odd
        in it — bad UTF-8, a too-long line, a wrong field count, a syntax error, a record
        longer than a block — is parsed record by record (`_careful_csv_record`), which
        gives identical rows for good records and isolates the bad ones."""
        if csv.field_size_limit() < self.max_line_bytes:
            csv.field_size_limit(self.max_line_bytes)
        source = _LineSource(stream, self.max_line_bytes)
        header_line = None
        for line in source:  # the header is the first non-blank line
            if line.text.strip():
                header_line = line
                break
            fstats.blank_lines += 1
        if header_line is None:
            return
        header_text = header_line.data.decode("utf-8", "replace")
        try:
            header = next(csv.reader([header_text.rstrip("\r\n")]), [])
        except csv.Error:
            header = []
        wanted = {c: i for i, c in enumerate(columns)}
        source_index: dict[str, int] = {}
        for i, raw_name in enumerate(header):
            key = _norm(raw_name)
            if key in wanted and key not in source_index:
                source_index[key] = i
            elif key in wanted:
                fstats.duplicate_columns.append(raw_name)
            else:
                fstats.unknown_columns.append(raw_name)
        present = [c for c in columns if c in source_index]
        fstats.missing_columns = [c for c in columns if c not in source_index]
        ctx = _CsvContext(
            expected=len(header),
            present=present,
            idx=[source_index[c] for c in present],
        )
        chunk = _Chunk(name, columns, present)
        if not present:
            chunk.add_malformed(header_line.number, _NO_KNOWN_COLUMNS, header_line.raw_text())

        feed = _Feed(source, self.max_record_lines)
        reader = csv.reader(feed, strict=False)
        # the fast path needs known columns, and >1 of them: with one column a line of
        # spaces is a value to the C parser but a blank line to the careful one
        fast = _FAST_PATH and len(present) > 0 and ctx.expected > 1
        carry: list[bytes] = []  # an incomplete last record, continued in the next block
        carry_start = 0

        def careful() -> Iterator[pl.DataFrame]:
            while feed.pending:
                if len(chunk) >= self.chunk_rows:
                    yield chunk.take()
                self._careful_csv_record(feed, reader, chunk, ctx, fstats)

        while True:
            room = min(self.chunk_rows, _PART_ROWS) - len(carry)
            if carry and (room <= 0 or len(carry) >= self.max_record_lines):
                feed.pending.extend(_as_lines(carry, carry_start, set()))
                carry = []
                yield from careful()
                continue
            start = carry_start if carry else source.number + 1
            new, too_long = source.block(room)
            block = carry + new if carry else new
            carry = []
            if not block:
                break
            parsed = _fast_csv(block, start, ctx.expected) if fast and not too_long else None
            if parsed is None:
                feed.pending.extend(_as_lines(block, start, too_long))
                yield from careful()
                continue
            records, blanks, done = parsed
            fstats.blank_lines += blanks
            if len(chunk) + len(records) > self.chunk_rows:
                yield chunk.take()
            if records:
                lines = [r[0] for r in records]
                if ctx.identity:
                    chunk.extend(lines, [r[1] for r in records])
                else:
                    chunk.extend(lines, [ctx.project(r[1]) for r in records])
            if done < len(block):
                carry, carry_start = block[done:], start + done
                if source.exhausted:  # the file ends inside a quoted field
                    feed.pending.extend(_as_lines(carry, carry_start, set()))
                    carry = []
                    yield from careful()
        if len(chunk):
            yield chunk.take()
        fstats.malformed += chunk.malformed_total

    def _careful_csv_record(
        self,
        feed: _Feed,
        reader: Any,
        chunk: _Chunk,
        ctx: _CsvContext,
        fstats: _FileStats,
    ) -> None:
        """Parse one record from `feed` (its pending lines first) into `chunk`."""
        feed.consumed = []
        error: str | None = None
        fields: list[str] = []
        try:
            fields = next(reader)
        except StopIteration:  # pragma: no cover - only called with pending lines
            return
        except _RecordTooLong:
            error = (
                f"unterminated quoted field (a record may span at most "
                f"{self.max_record_lines} lines)"
            )
        except csv.Error as exc:
            error = str(exc)
        consumed = feed.consumed
        first = consumed[0]
        expected = ctx.expected
        if error is None and len(consumed) == 1 and not first.text.strip():
            fstats.blank_lines += 1
            return
        if error is None and len(fields) != expected and len(consumed) > 1:
            error = (
                f"unterminated quoted field (record on lines {first.number}-"
                f"{consumed[-1].number} has {len(fields)} fields, expected {expected})"
            )
        if error is not None:
            # re-parse everything after the record's first line: one stray quote costs
            # one line, not the lines it swallowed
            feed.push_back(consumed[1:])
            chunk.add_malformed(first.number, f"malformed_csv: {error}", first.raw_text())
            return
        if any(line.too_long for line in consumed):
            long_line = next(line for line in consumed if line.too_long)
            chunk.add_malformed(
                first.number,
                f"line_too_long: line {long_line.number} is longer than "
                f"{self.max_line_bytes} bytes",
                _joined_raw(consumed),
            )
        elif any(line.bad_encoding for line in consumed):
            bad = next(line for line in consumed if line.bad_encoding)
            chunk.add_malformed(
                first.number,
                f"bad_encoding: invalid UTF-8 on line {bad.number}",
                _joined_raw(consumed),
            )
        elif len(fields) != expected:
            chunk.add_malformed(
                first.number,
                f"wrong_column_count: expected {expected} got {len(fields)}",
                _joined_raw(consumed),
            )
        elif not ctx.present:
            chunk.add_malformed(first.number, _NO_KNOWN_COLUMNS, _joined_raw(consumed))
        else:
            chunk.add(first.number, fields if ctx.identity else ctx.project(fields))

    # ------------------------------------------------------------------ NDJSON

    def _read_ndjson(
        self, stream: BinaryIO, name: str, columns: Sequence[str], fstats: _FileStats
    ) -> Iterator[pl.DataFrame]:
        ctx = _NdjsonContext(columns)
        chunk = _Chunk(name, columns, columns)
        source = _LineSource(stream, self.max_line_bytes)
        while True:
            start = source.number + 1
            block, too_long = source.block(min(self.chunk_rows, _PART_ROWS))
            if not block:
                break
            if len(chunk) + len(block) > self.chunk_rows:
                yield chunk.take()
            with _gc_paused():
                self._ndjson_block(block, start, too_long, chunk, ctx, fstats)
        for key in ctx.seen_keys:
            ctx.key_index.setdefault(key, ctx.wanted[key])
        fstats.unknown_columns = list(ctx.unknown)[:_MAX_NAMES]
        seen = set(ctx.key_index.values())
        fstats.missing_columns = [c for i, c in enumerate(columns) if i not in seen]
        if len(chunk):
            yield chunk.take()
        fstats.malformed += chunk.malformed_total

    def _ndjson_block(
        self,
        block: list[bytes],
        start: int,
        too_long: set[int],
        chunk: _Chunk,
        ctx: _NdjsonContext,
        fstats: _FileStats,
    ) -> None:
        """One block of NDJSON lines into `chunk` (no yield: runs with the GC paused)."""
        columns, exact, wanted, width = ctx.columns, ctx.exact, ctx.wanted, len(ctx.columns)
        key_index, unknown, plain = ctx.key_index, ctx.unknown, ctx.plain
        decoder = ctx.decoder
        scan_once = decoder.scan_once  # the C scanner: no Python wrapper per line
        for number, data in enumerate(block, start):
            if too_long and number in too_long:
                chunk.add_malformed(
                    number,
                    f"line_too_long: longer than {self.max_line_bytes} bytes",
                    _make_line(number, data, True).raw_text(),
                )
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                chunk.add_malformed(number, "bad_encoding: invalid UTF-8", _raw_text(data))
                continue
            try:
                obj, end = scan_once(text, 0)
                if end != len(text) and text[end:].strip():
                    raise ValueError
            except (StopIteration, ValueError, RecursionError):
                # not one bare JSON value from column 1: blank, padded or malformed
                if not text.strip():
                    fstats.blank_lines += 1
                    continue
                try:
                    obj = decoder.decode(text)
                except json.JSONDecodeError as exc:
                    reason = f"malformed_json: {_json_error(exc)}"
                    chunk.add_malformed(number, reason, _raw_text(data))
                    continue
                except RecursionError:
                    reason = "malformed_json: nested too deeply"
                    chunk.add_malformed(number, reason, _raw_text(data))
                    continue
            if type(obj) is not dict:
                kind = _JSON_KINDS.get(type(obj), "scalar")
                reason = f"malformed_json: expected a JSON object, got {kind}"
                chunk.add_malformed(number, reason, _raw_text(data))
                continue
            keys = obj.keys()
            if keys <= exact:  # the common case: exact column names
                row = list(map(obj.get, columns))
                if not set(map(type, row)) <= plain:  # numbers, booleans, nesting
                    row = [_json_text(v) for v in row]
                if keys != ctx.last_keys:
                    ctx.last_keys = set(keys)
                    ctx.seen_keys |= ctx.last_keys
            else:
                row = [None] * width
                for key, value in obj.items():
                    i = key_index.get(key, -1)
                    if i == -1:
                        i = wanted.get(_norm(key))
                        if len(key_index) < _MAX_KEYS:
                            key_index[key] = i
                        if i is None and len(unknown) < _MAX_NAMES:
                            unknown[key] = None
                    if i is not None:
                        row[i] = _json_text(value)
            if "\\u" in text and _SURROGATE_ESCAPE.search(text) and not _valid_utf8(row):
                reason = "bad_encoding: JSON string holds a lone UTF-16 surrogate"
                chunk.add_malformed(number, reason, _raw_text(data))
                continue
            chunk.add(number, row)


class _NdjsonContext:
    """Per-file state of the NDJSON reader: key → column mapping and what was seen."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.exact = frozenset(columns)
        self.wanted = {c: i for i, c in enumerate(columns)}
        self.key_index: dict[str, int | None] = {}
        self.unknown: dict[str, None] = {}
        self.seen_keys: set[str] = set()
        self.last_keys: set[str] = set()
        self.plain = {str, type(None)}
        self.decoder = json.JSONDecoder(
            parse_float=_Number, parse_int=_Number, parse_constant=_Number
        )


@dataclass
class _CsvContext:
    """How CSV fields map to the output columns of one file."""

    expected: int
    present: list[str]
    idx: list[int]
    identity: bool = field(init=False)
    project: Any = field(init=False)

    def __post_init__(self) -> None:
        self.identity = self.idx == list(range(self.expected))
        if len(self.idx) > 1:
            getter = itemgetter(*self.idx)
            self.project = getter
        elif self.idx:
            only = self.idx[0]
            self.project = lambda fields: (fields[only],)
        else:
            self.project = lambda fields: ()


def _raw_text(data: bytes) -> str:
    text = data.decode("utf-8", "replace").rstrip("\r\n")
    return text if len(text) <= RAW_LINE_MAX_CHARS else text[:RAW_LINE_MAX_CHARS] + " …[truncated]"


@contextmanager
def _open(fs: fsspec.AbstractFileSystem, path: str, name: str) -> Iterator[BinaryIO]:
    """A buffered binary stream over the file (decompressed for ``.gz``), closed on exit."""
    with ExitStack() as stack:
        if isinstance(fs, LocalFileSystem):
            raw: Any = stack.enter_context(open(path, "rb", buffering=_READ_BUFFER))
        else:
            remote = stack.enter_context(fs.open(path, "rb"))
            raw = stack.enter_context(io.BufferedReader(remote, buffer_size=_READ_BUFFER))
        if name.lower().endswith(".gz"):
            raw = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        yield raw


def _joined_raw(lines: Sequence[_Line]) -> str:
    if len(lines) == 1:
        return lines[0].raw_text()
    text = "\n".join(line.raw_text() for line in lines)
    return text if len(text) <= RAW_LINE_MAX_CHARS else text[:RAW_LINE_MAX_CHARS] + " …[truncated]"


def _format_of(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(_CSV_SUFFIXES):
        return "csv"
    if lower.endswith(_NDJSON_SUFFIXES):
        return "ndjson"
    return None


def _public(stats: dict[str, Any], started: float) -> dict[str, Any]:
    out = dict(stats)
    out["files"] = [f.as_dict() if isinstance(f, _FileStats) else f for f in stats["files"]]
    out["skipped_files"] = list(stats["skipped_files"])
    out["ignored_files"] = list(stats["ignored_files"])
    out["seconds"] = round(time.perf_counter() - started, 3)
    out["files_read"] = [f["sha256"] for f in out["files"]]
    return out
