"""The landing-zone source (orders_platform.sources.landing) on real files in tmp_path.

Every physical record of a file is exactly one row: a data row with the values as
written, or a malformed row (`_malformed` reason, `_raw_line`, source columns null).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from orders_platform.sources.base import MALFORMED_COLUMN, RawSource
from orders_platform.sources.demo import generate_orders
from orders_platform.sources.landing import LandingSource, landing_schema
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

DAY = date(2026, 3, 17)
CHUNK = 1_000
N_GOOD = 5_500
COLS = list(ORDER_SOURCE_COLUMNS)


def _day_dir(root: Path, kind: str = "orders", day: date = DAY) -> Path:
    d = root / kind / f"dt={day.isoformat()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _demo_rows(n: int) -> pl.DataFrame:
    """Realistic messy order rows (commas in amounts and notes, IST offsets, null
    spellings); nulls become "" because that is how a CSV writes them."""
    rows = generate_orders(DAY, n).head(n)
    assert rows.height == n
    return rows


def _csv_line(values: list[str | None]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def _extract(source: LandingSource, kind: str = "orders") -> tuple[pl.DataFrame, list[int]]:
    frames = list(source.extract_orders(DAY) if kind == "orders" else source.extract_events(DAY))
    for f in frames:
        assert f.schema == pl.Schema(
            landing_schema(ORDER_SOURCE_COLUMNS if kind == "orders" else EVENT_SOURCE_COLUMNS)
        )
    return pl.concat(frames), [f.height for f in frames]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def big_csv(tmp_path: Path) -> tuple[Path, pl.DataFrame, dict[int, str]]:
    """BOM + CRLF CSV: header, 5 500 good rows and, spread through the file, a quoted field
    with an embedded comma and newline, a wrong column count, invalid UTF-8 bytes and a
    short line. Returns the path, the expected good rows (with their start lines) and the
    expected malformed reasons by line."""
    good = _demo_rows(N_GOOD)
    path = _day_dir(tmp_path) / "orders-001.csv"
    expected_rows: list[dict] = []
    malformed: dict[int, str] = {}
    line_no = 1
    with path.open("wb") as f:
        f.write(b"\xef\xbb\xbf" + _csv_line(COLS).encode())
        for i, row in enumerate(good.iter_rows(named=True)):
            values = ["" if row[c] is None else row[c] for c in COLS]
            if i == 10:
                values[COLS.index("notes")] = 'gate 3, "back door"\r\nring twice'
            line_no += 1
            text = _csv_line(values)
            f.write(text.encode())
            expected_rows.append({**dict(zip(COLS, values, strict=True)), "_line": line_no})
            line_no += text.count("\n") - 1
            if i == 1500:
                line_no += 1
                f.write(_csv_line(values[:15]).encode())
                malformed[line_no] = "wrong_column_count: expected 17 got 15"
            if i == 2500:
                line_no += 1
                f.write(b"1,2,\xff\xfe stray latin-1," + _csv_line(values[4:]).encode())
                malformed[line_no] = "bad_encoding: invalid UTF-8 on line"
            if i == 4200:
                line_no += 1
                f.write(b"just one field\r\n")
                malformed[line_no] = "wrong_column_count: expected 17 got 1"
    expected = pl.DataFrame(
        expected_rows, schema={**{c: pl.String for c in COLS}, "_line": pl.Int64}
    )
    return path, expected, malformed


def test_large_csv_every_record_is_one_row_in_bounded_chunks(big_csv, tmp_path: Path) -> None:
    path, expected, malformed = big_csv
    source = LandingSource(root=str(tmp_path), chunk_rows=CHUNK)
    assert isinstance(source, RawSource) and source.name == "landing"
    df, heights = _extract(source)

    records = N_GOOD + len(malformed)
    assert df.height == records
    assert max(heights) <= CHUNK and len(heights) >= records // CHUNK
    physical_lines = path.read_bytes().count(b"\n")
    assert df.get_column("_line").max() == physical_lines  # the last line is a record
    assert df.get_column("_line").is_unique().all()
    assert df.get_column("_file").unique().to_list() == [path.name]

    good = df.filter(pl.col(MALFORMED_COLUMN).is_null())
    assert good.select(*COLS, "_line").equals(expected)
    assert good.get_column("_raw_line").null_count() == good.height
    # values as written: the multi-line quoted field and "1,234.50"-style amounts
    assert good.filter(pl.col("notes").str.contains("back door")).item(0, "notes") == (
        'gate 3, "back door"\r\nring twice'
    )
    assert good.get_column("order_amount").str.contains(",").any()

    bad = df.filter(pl.col(MALFORMED_COLUMN).is_not_null()).sort("_line")
    assert bad.get_column("_line").to_list() == sorted(malformed)
    for row in bad.iter_rows(named=True):
        assert row[MALFORMED_COLUMN].startswith(malformed[row["_line"]])
        assert all(row[c] is None for c in COLS)
        assert row["_raw_line"]
    enc = bad.filter(pl.col(MALFORMED_COLUMN).str.starts_with("bad_encoding"))
    assert "\ufffd" in enc.item(0, "_raw_line")

    stats = source.last_extract_stats()
    json.dumps(stats)  # JSON-serialisable metadata
    assert stats["rows_extracted"] == records
    assert stats["rows_malformed"] == len(malformed)
    (f,) = stats["files"]
    assert f == {
        **f,
        "name": path.name,
        "format": "csv",
        "sha256": _sha(path),
        "bytes": path.stat().st_size,
        "rows": records,
        "malformed": len(malformed),
    }
    assert stats["skipped_files"] == [] and stats["unknown_columns"] == []


def test_large_ndjson_values_as_written(tmp_path: Path) -> None:
    good = _demo_rows(N_GOOD)
    path = _day_dir(tmp_path) / "orders-002.ndjson"
    lines: list[bytes] = []
    for row in good.iter_rows(named=True):
        lines.append(json.dumps(row, ensure_ascii=False).encode())
    # numbers stay their literal text (exact money), booleans and nested values as JSON
    lines[7] = b'{"order_id": 42, "order_amount": 1234.50, "delivery_fee": 1e2, "notes": true}'
    lines[8] = b'{"order_id": "43", "notes": {"a": [1, 2]}, "surprise": 1}'
    malformed = {
        1200: (b'{"order_id": "1", "status": ', "malformed_json: "),
        2300: (b'["not", "an", "object"]', "malformed_json: expected a JSON object, got array"),
        3400: (b'{"order_id": "\xff\xfe"}', "bad_encoding"),
        4500: (b'"just a string"', "malformed_json: expected a JSON object, got string"),
    }
    for at, (raw, _) in sorted(malformed.items()):
        lines.insert(at - 1, raw)
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")  # BOM, CRLF

    source = LandingSource(root=str(tmp_path), chunk_rows=CHUNK)
    df, heights = _extract(source)
    assert df.height == len(lines) == N_GOOD + len(malformed)
    assert max(heights) <= CHUNK
    assert df.get_column("_line").to_list() == list(range(1, len(lines) + 1))

    bad = df.filter(pl.col(MALFORMED_COLUMN).is_not_null())
    assert bad.get_column("_line").to_list() == sorted(malformed)
    for row in bad.iter_rows(named=True):
        raw, reason = malformed[row["_line"]]
        assert row[MALFORMED_COLUMN].startswith(reason)
        assert row["_raw_line"] == raw.decode("utf-8", "replace")
        assert all(row[c] is None for c in COLS)

    data = df.filter(pl.col(MALFORMED_COLUMN).is_null())
    special = data.filter(pl.col("_line").is_in([8, 9])).sort("_line")
    assert special.row(0, named=True) == {
        **{c: None for c in COLS},
        "order_id": "42",
        "order_amount": "1234.50",
        "delivery_fee": "1e2",
        "notes": "true",
        "_file": path.name,
        "_line": 8,
        MALFORMED_COLUMN: None,
        "_raw_line": None,
    }
    assert special.item(1, "notes") == '{"a":[1,2]}'
    rest = data.filter(~pl.col("_line").is_in([8, 9])).select(COLS)
    expected = good.with_row_index().filter(~pl.col("index").is_in([7, 8])).drop("index")
    assert rest.equals(expected)
    stats = source.last_extract_stats()
    assert stats["files"][0]["sha256"] == _sha(path)
    assert stats["files"][0]["malformed"] == len(malformed)
    assert stats["unknown_columns"] == ["surprise"]


def test_duplicate_file_is_skipped_and_recorded(big_csv, tmp_path: Path) -> None:
    path, expected, malformed = big_csv
    copy = path.with_name("orders-002-resend-of-001.csv")
    shutil.copyfile(path, copy)
    other = path.with_name("orders-003.csv")
    other.write_text(_csv_line(COLS) + _csv_line(["9"] * 17), encoding="utf-8")
    source = LandingSource(root=str(tmp_path), chunk_rows=CHUNK)
    df, _ = _extract(source)
    assert df.height == N_GOOD + len(malformed) + 1
    assert sorted(df.get_column("_file").unique().to_list()) == [path.name, other.name]
    stats = source.last_extract_stats()
    assert [f["name"] for f in stats["files"]] == [path.name, other.name]
    assert stats["skipped_files"] == [
        {
            "name": copy.name,
            "sha256": _sha(path),
            "bytes": path.stat().st_size,
            "duplicate_of": path.name,
        }
    ]
    # same day, same partition: re-running reads the same set again, identically
    again, _ = _extract(source)
    assert again.equals(df)


def test_unterminated_quote_costs_one_line(tmp_path: Path) -> None:
    d = _day_dir(tmp_path)
    body = (
        _csv_line(COLS)
        + _csv_line(["1"] * 17)
        + '2,"open quote never closed,x' + ",x" * 15 + "\n"
        + _csv_line(["3"] * 17)
        + _csv_line(["4", "5", "6", "7", '"quoted, with comma"', *(["8"] * 12)])
        + _csv_line(["9"] * 17)
    )  # fmt: skip
    (d / "o.csv").write_text(body, encoding="utf-8")
    df, _ = _extract(LandingSource(root=str(tmp_path)))
    assert df.get_column("_line").to_list() == [2, 3, 4, 5, 6]
    assert df.get_column("order_id").to_list() == ["1", None, "3", "4", "9"]
    assert df.item(1, MALFORMED_COLUMN).startswith("malformed_csv: unterminated quoted field")
    assert df.item(3, "order_amount") == '"quoted, with comma"'


def test_headerless_csv_keeps_every_line_as_malformed(tmp_path: Path) -> None:
    (_day_dir(tmp_path) / "o.csv").write_text(_csv_line(["1"] * 17) * 3, encoding="utf-8")
    df, _ = _extract(LandingSource(root=str(tmp_path)))
    assert df.height == 3
    assert df.get_column(MALFORMED_COLUMN).str.starts_with("no_known_columns").all()


def test_columns_by_name_extra_ignored_missing_null(tmp_path: Path) -> None:
    d = _day_dir(tmp_path)
    header = ["Notes", "ORDER_ID", "extra_col", " status "]
    (d / "o.csv").write_text(
        _csv_line(header) + _csv_line(["n1", "1", "x", "placed"]), encoding="utf-8"
    )
    source = LandingSource(root=str(tmp_path))
    df, _ = _extract(source)
    row = df.row(0, named=True)
    assert (row["order_id"], row["status"], row["notes"], row["customer_id"]) == (
        "1",
        "placed",
        "n1",
        None,
    )
    f = source.last_extract_stats()["files"][0]
    assert f["unknown_columns"] == ["extra_col"]
    assert "customer_id" in f["missing_columns"] and "order_id" not in f["missing_columns"]


def test_line_too_long_is_malformed_and_next_line_read(tmp_path: Path) -> None:
    d = _day_dir(tmp_path)
    (d / "o.ndjson").write_text(
        '{"order_id": "1"}\n{"notes": "' + "x" * 5000 + '"}\n{"order_id": "3"}\n', encoding="utf-8"
    )
    source = LandingSource(root=str(tmp_path), max_line_bytes=1024)
    df, _ = _extract(source)
    assert df.get_column("order_id").to_list() == ["1", None, "3"]
    assert df.item(1, MALFORMED_COLUMN).startswith("line_too_long")
    assert df.item(1, "_raw_line").startswith('{"notes": "xxx')
    # "notes" only appeared on the too-long line: it is reported missing
    assert source.last_extract_stats()["files"][0]["missing_columns"] == [
        c for c in COLS if c != "order_id"
    ]


def test_events_gzip_and_ignored_files(tmp_path: Path) -> None:
    d = _day_dir(tmp_path, "events")
    events = [
        {"user_id": "u1", "event_timestamp": "2026-03-17T10:00:00Z", "event_type": "login"},
        {"user_id": "u1", "event_timestamp": "2026-03-17T10:05:00Z", "event_type": "purchase",
         "order_id": 7},
    ]  # fmt: skip
    with gzip.open(d / "e.ndjson.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(e) for e in events) + "\n")
    (d / "e2.csv").write_text(
        "user_id,event_timestamp,event_type,order_id\r\nu2,2026-03-17 11:00:00,view_page,\r\n",
        encoding="utf-8",
    )
    (d / "_SUCCESS").write_text("")
    (d / ".e3.csv.tmp").write_text("partial")
    (d / "readme.txt").write_text("hi")
    source = LandingSource(root=str(tmp_path))
    df, _ = _extract(source, "events")
    assert df.select(EVENT_SOURCE_COLUMNS).rows() == [
        ("u1", "2026-03-17T10:00:00Z", "login", None),
        ("u1", "2026-03-17T10:05:00Z", "purchase", "7"),
        ("u2", "2026-03-17 11:00:00", "view_page", ""),
    ]
    stats = source.last_extract_stats()
    assert sorted(stats["ignored_files"]) == [".e3.csv.tmp", "_SUCCESS", "readme.txt"]
    assert [f["format"] for f in stats["files"]] == ["ndjson", "csv"]
    assert [f["missing_columns"] for f in stats["files"]] == [[], []]


def test_missing_day_directory_yields_an_empty_frame(tmp_path: Path) -> None:
    source = LandingSource(root=str(tmp_path))
    frames = list(source.extract_orders(DAY))
    assert len(frames) == 1 and frames[0].height == 0
    assert frames[0].schema == pl.Schema(landing_schema(ORDER_SOURCE_COLUMNS))
    stats = source.last_extract_stats()
    assert stats["directory_exists"] is False and stats["rows_extracted"] == 0


def test_invalid_knobs_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ORDERS_LANDING_CHUNK_ROWS"):
        list(LandingSource(root=str(tmp_path), chunk_rows=0).extract_orders(DAY))


_FRAGMENTS = (
    _csv_line([str(i) for i in range(17)]),
    _csv_line(["1", "2", "₹3,80.00", *(["x"] * 14)]),
    _csv_line(["a", 'multi\nline, "quoted"', *(["y"] * 15)]),
    _csv_line(["b", "many\n\n\nlines\n\n\n\n\nhere", *(["z"] * 15)]),
    "1,2,3\r\n",  # wrong column count
    '9,"never closed,' + ",q" * 15 + "\n",  # stray quote
    '"a"b,' + ",c" * 15 + "\n",  # text after a closing quote (non-strict: kept)
    "\r\n",
    "   \n",
    "bad\r" + ",r" * 16 + "\n",  # a lone CR in an unquoted field
    "\xff\xfe" + ",e" * 16 + "\n",  # invalid UTF-8 (written as latin-1 bytes below)
    "L" * 1500 + ",l" * 16 + "\n",  # longer than max_line_bytes=1024
)


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_gives_exactly_the_careful_parsers_rows(seed: int, tmp_path: Path) -> None:
    """Random mixes of good and bad records, cut into tiny chunks (quoted fields across
    block ends, records longer than a block, EOF inside a quoted field): the native path
    must give the same rows, line numbers and stats as the careful parser alone."""
    import random

    rng = random.Random(seed)
    parts = [_csv_line(COLS).encode()]
    for _ in range(rng.randint(0, 60)):
        frag = rng.choices(_FRAGMENTS, weights=[30, 10, 5, 3, 2, 1, 1, 1, 1, 1, 1, 1])[0]
        parts.append(frag.encode("latin-1") if frag.startswith("\xff") else frag.encode())
    body = b"".join(parts)
    if rng.random() < 0.3:
        body = body.rstrip(b"\r\n")  # no newline at the end of the file
    if rng.random() < 0.1:
        body += b'7,"open at EOF\nstill open'
    (_day_dir(tmp_path) / "o.csv").write_bytes(body)
    chunk_rows = rng.choice((1, 2, 3, 5, 8, 1000))

    def run(native: bool) -> tuple[pl.DataFrame, dict]:
        source = LandingSource(
            root=str(tmp_path), chunk_rows=chunk_rows, max_line_bytes=1024, native_reader=native
        )
        frames = list(source.extract_orders(DAY))
        assert all(f.height <= chunk_rows for f in frames)
        stats = source.last_extract_stats()
        stats.pop("seconds")
        return pl.concat(frames), stats

    fast_df, fast_stats = run(True)
    careful_df, careful_stats = run(False)
    assert fast_df.equals(careful_df)
    assert fast_stats == careful_stats
    assert fast_df.get_column("_line").is_unique().all()
    assert fast_df.get_column("_line").is_sorted()


def test_a_file_still_being_written_fails_the_run(tmp_path: Path) -> None:
    path = _day_dir(tmp_path) / "o.csv"
    path.write_text(_csv_line(COLS) + _csv_line(["1"] * 17) * 5, encoding="utf-8")
    source = LandingSource(root=str(tmp_path), chunk_rows=2)
    frames = source.extract_orders(DAY)
    next(frames)
    with path.open("a", encoding="utf-8") as f:  # the upstream appends mid-read
        f.write(_csv_line(["2"] * 17))
    with pytest.raises(RuntimeError, match="changed while it was being read"):
        list(frames)
