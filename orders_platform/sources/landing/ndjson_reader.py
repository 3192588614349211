"""NDJSON files: one JSON object per physical line.

Values are delivered as text by the shared JSON-to-text rule (`sources.json_text`):
strings as they are, numbers as their literal text (``1234.50`` stays ``1234.50``, never a
float), ``true``/``false``, ``null`` as null; nested arrays/objects as compact JSON.
Object keys are matched to the source columns trimmed and lower-cased; unknown ones are
ignored and listed in the stats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import polars as pl

from orders_platform.sources.json_text import EXACT_NUMBER_HOOKS, JsonNumber, json_text
from orders_platform.sources.landing.csv_reader import norm
from orders_platform.sources.landing.frames import PART_ROWS, Chunk, FileStats, ReadOptions
from orders_platform.sources.landing.lines import LineSource, gc_paused, make_line, raw_text

_MAX_KEYS = 10_000  # distinct JSON keys remembered per file
_MAX_NAMES = 100  # unknown column names reported per file
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_KINDS = {list: "array", str: "string", JsonNumber: "number", bool: "boolean"}


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
        self.decoder = json.JSONDecoder(**EXACT_NUMBER_HOOKS)


def read_ndjson(
    stream: BinaryIO, name: str, columns: Sequence[str], fstats: FileStats, opts: ReadOptions
) -> Iterator[pl.DataFrame]:
    """The file's lines as frames of at most ``opts.chunk_rows`` rows."""
    ctx = _NdjsonContext(columns)
    chunk = Chunk(name, columns, columns, opts.chunk_rows)
    source = LineSource(stream, opts.max_line_bytes)
    while True:
        start = source.number + 1
        block, too_long = source.block(min(opts.chunk_rows, PART_ROWS))
        if not block:
            break
        with gc_paused():
            _ndjson_block(block, start, too_long, chunk, ctx, fstats, opts.max_line_bytes)
        yield from chunk.full()
    for key in ctx.seen_keys:
        ctx.key_index.setdefault(key, ctx.wanted[key])
    fstats.unknown_columns = list(ctx.unknown)[:_MAX_NAMES]
    seen = set(ctx.key_index.values())
    fstats.missing_columns = [c for i, c in enumerate(columns) if i not in seen]
    yield from chunk.rest()
    fstats.malformed += chunk.malformed_total


def _ndjson_block(
    block: list[bytes],
    start: int,
    too_long: set[int],
    chunk: Chunk,
    ctx: _NdjsonContext,
    fstats: FileStats,
    max_line_bytes: int,
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
                f"line_too_long: longer than {max_line_bytes} bytes",
                make_line(number, data, True).raw_text(),
            )
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            chunk.add_malformed(number, "bad_encoding: invalid UTF-8", raw_text(data))
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
                reason = f"malformed_json: {exc.msg} at column {exc.colno}"
                chunk.add_malformed(number, reason, raw_text(data))
                continue
            except RecursionError:
                chunk.add_malformed(number, "malformed_json: nested too deeply", raw_text(data))
                continue
        if type(obj) is not dict:
            kind = _JSON_KINDS.get(type(obj), "scalar")
            reason = f"malformed_json: expected a JSON object, got {kind}"
            chunk.add_malformed(number, reason, raw_text(data))
            continue
        keys = obj.keys()
        if keys <= exact:  # the common case: exact column names
            row = list(map(obj.get, columns))
            if not set(map(type, row)) <= plain:  # numbers, booleans, nesting
                row = [json_text(v) for v in row]
            if keys != ctx.last_keys:
                ctx.last_keys = set(keys)
                ctx.seen_keys |= ctx.last_keys
        else:
            row = [None] * width
            for key, value in obj.items():
                i = key_index.get(key, -1)
                if i == -1:
                    i = wanted.get(norm(key))
                    if len(key_index) < _MAX_KEYS:
                        key_index[key] = i
                    if i is None and len(unknown) < _MAX_NAMES:
                        unknown[key] = None
                if i is not None:
                    row[i] = json_text(value)
        if "\\u" in text and _SURROGATE_ESCAPE.search(text) and not _valid_utf8(row):
            reason = "bad_encoding: JSON string holds a lone UTF-16 surrogate"
            chunk.add_malformed(number, reason, raw_text(data))
            continue
        chunk.add(number, row)


def _valid_utf8(values: Sequence[str | None]) -> bool:
    try:
        for v in values:
            if v is not None:
                v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
