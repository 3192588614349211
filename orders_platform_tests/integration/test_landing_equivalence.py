"""Property test: the landing reader's native path gives exactly the careful parser's
output (rows, line numbers, reasons, raw text and per-file stats) on random messy files.

The careful line parser is the oracle. Files mix well-formed records (quoted commas,
doubled quotes, quoted CR/LF), long clean stretches (so that native blocks are accepted,
refused, halved and retried) and every kind of damage: wrong field counts, stray and
unterminated quotes, text after a closing quote, lone CRs, blank and whitespace lines,
invalid UTF-8, lines longer than the limit, a BOM, CRLF, no final newline, gzip.
"""

from __future__ import annotations

import gzip
import io
import random

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders_platform.sources.landing.csv_reader import read_csv
from orders_platform.sources.landing.frames import FileStats, ReadOptions, landing_schema

COLUMNS = ("order_id", "customer_id", "order_amount", "notes")

# characters a value is made of: delimiters, quotes, line ends, spaces, non-ASCII
_VALUE = st.lists(st.sampled_from([*'ab1 ,"\n\r\t₹é\x00', "\r\n", '""', "12.50"]), max_size=8).map(
    "".join
)
_JUNK = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
_DAMAGE = st.sampled_from(
    [
        b"1,2,3",  # too few fields
        b"1,2,3,4,5",  # too many
        b'9,"never closed,x,y',  # unterminated quote
        b'"a"b,2,3,4',  # text after a closing quote
        b'x"y,2,"3"z,4',
        b"bad\r,r,r,r",  # a lone CR
        b"",  # blank line
        b"   \t",  # whitespace line
        b"\xff\xfe,e,e,e",  # invalid UTF-8
        b"\xef\xbb\xbf1,2,3,4",  # a BOM that is not at the start of the file
        b"L" * 1500 + b",l,l,l",  # longer than max_line_bytes when that is 1024
    ]
)


def _quote(value: str) -> str:
    if any(c in value for c in ',"\r\n') or value.strip() != value:
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def _csv_file(draw: st.DrawFn) -> bytes:
    header = draw(st.permutations(["order_id", "customer_id", "order_amount", "notes"]))
    if draw(st.booleans()):
        header = [*header, "unknown_col"]
    width = len(header)
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    parts = [",".join(header).encode() + eol]
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["row", "row", "row", "clean", "damage", "junk"]))
        if kind == "row":
            values = draw(st.lists(_VALUE, min_size=width, max_size=width))
            parts.append(",".join(_quote(v) for v in values).encode() + eol)
        elif kind == "clean":  # a long clean stretch: native blocks of several KiB
            for i in range(rng.randint(1, 400)):
                values = [str(rng.randint(0, 10**6)), f'"{i},{i}.5"', "x" * rng.randint(0, 30)]
                values += ["y"] * (width - 3)
                parts.append(",".join(values).encode() + eol)
        elif kind == "damage":
            parts.append(draw(_DAMAGE) + eol)
        else:
            parts.append(draw(_JUNK) + eol)
    body = b"".join(parts)
    if draw(st.booleans()):
        body = b"\xef\xbb\xbf" + body
    ending = draw(st.sampled_from(["keep", "strip", "open_quote"]))
    if ending == "strip":
        body = body.rstrip(b"\r\n")
    elif ending == "open_quote":
        body += b'7,"open at EOF\nstill open'
    return body


def _read(body: bytes, opts: ReadOptions, gz: bool) -> tuple[pl.DataFrame, dict]:
    stream = io.BytesIO(gzip.compress(body) if gz else body)
    if gz:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    fstats = FileStats(name="o.csv", format="csv", sha256="-", bytes=len(body))
    frames = list(read_csv(stream, "o.csv", COLUMNS, fstats, opts))
    assert all(0 < f.height <= opts.chunk_rows for f in frames)
    schema = landing_schema(COLUMNS)
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    assert frame.schema == pl.Schema(schema)
    fstats.rows = frame.height
    return frame, fstats.as_dict()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    body=_csv_file(),
    chunk_rows=st.sampled_from([1, 3, 7, 100, 100_000]),
    max_line_bytes=st.sampled_from([1024, 1 << 20]),
    block=st.sampled_from([(256, 64), (4096, 512), (16 << 20, 16 << 10)]),
    gz=st.booleans(),
)
def test_native_csv_path_equals_the_careful_parser(
    body: bytes, chunk_rows: int, max_line_bytes: int, block: tuple[int, int], gz: bool
) -> None:
    common = dict(chunk_rows=chunk_rows, max_line_bytes=max_line_bytes)
    native_bytes, min_bytes = block
    fast, fast_stats = _read(
        body,
        ReadOptions(**common, native_block_bytes=native_bytes, min_native_bytes=min_bytes),
        gz,
    )
    careful, careful_stats = _read(body, ReadOptions(**common, native=False), gz)
    assert fast_stats == careful_stats
    assert fast.equals(careful), _first_difference(fast, careful)
    lines = fast.get_column("_line")
    assert lines.is_unique().all() and lines.is_sorted()


def _first_difference(a: pl.DataFrame, b: pl.DataFrame) -> str:
    pairs = zip(a.iter_rows(named=True), b.iter_rows(named=True), strict=False)
    for i, (x, y) in enumerate(pairs):
        if x != y:
            return f"row {i}: native {x} != careful {y}"
    return f"heights {a.height} != {b.height}"


def test_a_refused_line_longer_than_the_smallest_block() -> None:
    """Refusals shrink the block below the length of the line that is refused: the
    careful parser reads that line (this once looped forever)."""
    bad_long = ",".join(["1", "2", "n" * 600]).encode() + b"\n"  # 3 fields, not 4
    body = b"order_id,customer_id,order_amount,notes\n" + bad_long + b"1,2,3,4\n" * 40
    opts = ReadOptions(native_block_bytes=4096, min_native_bytes=512)
    fast, fast_stats = _read(body, opts, gz=False)
    careful, careful_stats = _read(body, ReadOptions(native=False), gz=False)
    assert fast.equals(careful) and fast_stats == careful_stats
    assert fast.height == 41 and fast_stats["malformed"] == 1
    assert fast.item(0, "_malformed") == "wrong_column_count: expected 4 got 3"
