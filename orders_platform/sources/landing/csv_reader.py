"""CSV files: the header, the careful record parser, and the loop that hands well-formed
stretches to the native parser (`csv_native`) and everything else to the careful one.

The careful parser is Python's ``csv`` module fed one physical line at a time (RFC 4180:
quoted fields may hold commas, doubled quotes and newlines; CRLF or LF line ends). A
quoted field that is never closed would swallow the lines after it, so a record spanning
several physical lines that fails (wrong field count, syntax error, or more than
``max_record_lines`` lines) is not accepted: its *first* line becomes a ``malformed_csv``
row and parsing restarts on the next physical line. One stray quote costs one line.

Both parsers give identical rows for any input (the careful one is the oracle: see the
property test); the native one only ever reads stretches that start at a record boundary
and that it can prove it reads the same way, so switching between them at record
boundaries changes nothing.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, BinaryIO

import polars as pl

from orders_platform.sources.landing.csv_native import NativeCsv
from orders_platform.sources.landing.frames import Chunk, FileStats, ReadOptions
from orders_platform.sources.landing.lines import ByteReader, Line, LineSource, joined_raw

NO_KNOWN_COLUMNS = "no_known_columns: the header names none of the source columns"


def norm(name: str) -> str:
    """A column name as matched to the source columns."""
    return name.strip().lower()


class _RecordTooLong(Exception):
    pass


class _Feed:
    """The line iterator handed to csv.reader by the careful parser: serves `pending`
    lines first, then more from the stream; remembers which physical lines the current
    record consumed and lets the caller push lines back to re-parse them."""

    def __init__(self, more: Iterator[Line], max_record_lines: int) -> None:
        self.pending: deque[Line] = deque()
        self._more = more
        self._max = max_record_lines
        self.consumed: list[Line] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if len(self.consumed) >= self._max:
            raise _RecordTooLong
        line = self.pending.popleft() if self.pending else next(self._more)
        self.consumed.append(line)
        # A too-long line is never parsed: its truncated text could open a quoted field.
        return "\n" if line.too_long else line.text

    def push_back(self, lines: Sequence[Line]) -> None:
        self.pending.extendleft(reversed(lines))


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
            self.project = itemgetter(*self.idx)
        elif self.idx:
            only = self.idx[0]
            self.project = lambda fields: (fields[only],)
        else:
            self.project = lambda fields: ()


def read_csv(
    stream: BinaryIO, name: str, columns: Sequence[str], fstats: FileStats, opts: ReadOptions
) -> Iterator[pl.DataFrame]:
    """The file's records as frames of at most ``opts.chunk_rows`` rows."""
    if csv.field_size_limit() < opts.max_line_bytes:
        csv.field_size_limit(opts.max_line_bytes)
    reader = ByteReader(stream)
    source = LineSource(reader, opts.max_line_bytes)
    header_line = None
    for line in source:  # the header is the first non-blank line
        if line.text.strip():
            header_line = line
            break
        fstats.blank_lines += 1
    if header_line is None:
        return
    ctx = _header_context(header_line, columns, fstats)
    chunk = Chunk(name, columns, ctx.present, opts.chunk_rows)
    if not ctx.present:
        chunk.add_malformed(header_line.number, NO_KNOWN_COLUMNS, header_line.raw_text())
    parser = _Careful(_Feed(source, opts.max_record_lines), chunk, ctx, fstats, opts)
    # needs known columns, and more than one: with one column a line of spaces is a value
    # to Arrow but a blank line to the careful parser
    if opts.native and ctx.present and ctx.expected > 1:
        yield from _mixed(reader, source, parser, chunk, ctx, opts)
    else:
        while parser.record():
            yield from chunk.full()
    yield from chunk.rest()
    fstats.malformed += chunk.malformed_total


def _header_context(header_line: Line, columns: Sequence[str], fstats: FileStats) -> _CsvContext:
    header_text = header_line.data.decode("utf-8", "replace")
    try:
        header = next(csv.reader([header_text.rstrip("\r\n")]), [])
    except csv.Error:
        header = []
    wanted = {c: i for i, c in enumerate(columns)}
    source_index: dict[str, int] = {}
    for i, raw_name in enumerate(header):
        key = norm(raw_name)
        if key in wanted and key not in source_index:
            source_index[key] = i
        elif key in wanted:
            fstats.duplicate_columns.append(raw_name)
        else:
            fstats.unknown_columns.append(raw_name)
    present = [c for c in columns if c in source_index]
    fstats.missing_columns = [c for c in columns if c not in source_index]
    return _CsvContext(
        expected=len(header), present=present, idx=[source_index[c] for c in present]
    )


def _mixed(
    reader: ByteReader,
    source: LineSource,
    parser: _Careful,
    chunk: Chunk,
    ctx: _CsvContext,
    opts: ReadOptions,
) -> Iterator[pl.DataFrame]:
    """Native blocks where they are accepted, the careful parser around the spots where
    they are not. A refused block is halved and retried down to ``min_native_bytes``, then
    read carefully; after a success the block size doubles again. Every block starts at a
    record boundary: after a native block (which ends with a complete record) or after
    the careful parser has finished a record with no lines pending."""
    native = NativeCsv(ctx.expected, ctx.idx, ctx.present)
    # a block never holds a line longer than max_line_bytes, which the careful path flags
    largest = max(1, min(opts.native_block_bytes, opts.max_line_bytes))
    smallest = max(1, min(opts.min_native_bytes, largest))
    size = largest
    while True:
        block = reader.read_lines(size)
        if not block:
            if reader.at_end():
                break
            # the next line is longer than the block size (after refusals shrank it, or
            # than any block): the careful parser reads that record
            parser.record()
            yield from chunk.full()
            size = smallest
            continue
        lines = block.count(b"\n") + (not block.endswith(b"\n"))
        parsed = native.parse(block, lines, source.number + 1, opts.max_record_lines)
        if parsed is not None:
            source.number += lines
            chunk.add_frame(*parsed)
            yield from chunk.full()
            size = min(size * 2, largest)
            continue
        reader.unread(len(block))
        if len(block) > smallest and lines > 1:
            size = max(smallest, len(block) // 2)
            continue
        # read this stretch carefully; its last record may run on past it
        end = source.number + lines
        while source.number < end or parser.feed.pending:
            if not parser.record():
                break
            yield from chunk.full()
        size = smallest


class _Careful:
    """The careful parser: one record at a time from the feed into the chunk."""

    def __init__(
        self,
        feed: _Feed,
        chunk: Chunk,
        ctx: _CsvContext,
        fstats: FileStats,
        opts: ReadOptions,
    ) -> None:
        self.feed = feed
        self.reader = csv.reader(feed, strict=False)
        self.chunk = chunk
        self.ctx = ctx
        self.fstats = fstats
        self.opts = opts

    def record(self) -> bool:
        """Parse one record into the chunk; False at the end of the file."""
        feed, chunk, ctx = self.feed, self.chunk, self.ctx
        feed.consumed = []
        error: str | None = None
        fields: list[str] = []
        try:
            fields = next(self.reader)
        except StopIteration:
            return False
        except _RecordTooLong:
            error = (
                f"unterminated quoted field (a record may span at most "
                f"{self.opts.max_record_lines} lines)"
            )
        except csv.Error as exc:
            error = str(exc)
        consumed = feed.consumed
        first = consumed[0]
        expected = ctx.expected
        if error is None and len(consumed) == 1 and not first.text.strip():
            self.fstats.blank_lines += 1
            return True
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
            return True
        if any(line.too_long for line in consumed):
            long_line = next(line for line in consumed if line.too_long)
            chunk.add_malformed(
                first.number,
                f"line_too_long: line {long_line.number} is longer than "
                f"{self.opts.max_line_bytes} bytes",
                joined_raw(consumed),
            )
        elif any(line.bad_encoding for line in consumed):
            bad = next(line for line in consumed if line.bad_encoding)
            chunk.add_malformed(
                first.number,
                f"bad_encoding: invalid UTF-8 on line {bad.number}",
                joined_raw(consumed),
            )
        elif len(fields) != expected:
            chunk.add_malformed(
                first.number,
                f"wrong_column_count: expected {expected} got {len(fields)}",
                joined_raw(consumed),
            )
        elif not ctx.present:
            chunk.add_malformed(first.number, NO_KNOWN_COLUMNS, joined_raw(consumed))
        else:
            chunk.add(first.number, fields if ctx.identity else ctx.project(fields))
        return True
