"""The landing-zone source: files dropped per day as CSV or NDJSON (SPEC §8).

Layout: ``{root}/orders/dt=YYYY-MM-DD/`` and ``{root}/events/dt=YYYY-MM-DD/`` hold
``*.csv`` (a header row with the source column names, UTF-8) and ``*.ndjson`` (one JSON
object per line) files; ``.jsonl`` is read as NDJSON and a ``.gz`` suffix on either is
decompressed on the fly. Names starting with ``.`` or ``_`` (in-flight uploads, ``_SUCCESS``
markers) and other extensions are ignored and listed in the stats. ``root`` is a local path
or any fsspec URL (``s3://bucket/landing``).

Bounded memory, whatever the file size: a file is read as a stream of byte blocks and
physical lines (each at most ``max_line_bytes``) and turned into Polars frames of at most
``chunk_rows`` rows, so files larger than memory work. Every frame has the source columns
(strings, null when a file lacks the column) plus ``_file`` (file name), ``_line`` (1-based
physical line number where the record starts; the CSV header is line 1), ``_malformed``
and ``_raw_line``.

Every physical record becomes exactly one row — a data row, or a malformed row whose
``_malformed`` holds ``<code>: <detail>``, whose ``_raw_line`` holds the raw text (invalid
bytes replaced by U+FFFD, at most ``RAW_LINE_MAX_CHARS``) and whose source columns are null:

* ``bad_encoding`` — the record is not valid UTF-8 (or, in JSON, holds a lone surrogate);
* ``malformed_json`` — not JSON, or JSON that is not an object;
* ``wrong_column_count`` — a CSV record whose field count differs from the header's;
* ``malformed_csv`` — a CSV syntax error, or an unterminated quoted field;
* ``line_too_long`` — a physical line longer than ``max_line_bytes``;
* ``no_known_columns`` — a CSV whose header names none of the source columns (a file
  without a header, say): its header line and every record are kept as malformed rows.

Blank (whitespace-only) lines are not records: they are skipped and counted per file.

Modules: `lines` (opening, buffering and numbering physical lines), `csv_reader` (the
careful CSV parser and the loop around the native one), `csv_native` (Arrow's CSV reader
on well-formed blocks), `ndjson_reader`, `files` (which files are read: format, checksum,
duplicates), `frames` (output frames and per-file stats), `source` (the resource).

Idempotence: every file's SHA-256, size, rows and malformed rows are recorded
(``files``); a file whose checksum equals an earlier file's of the same day (names in
sorted order) is not read again and is listed in ``skipped_files`` with the name of the
file it duplicates. Re-materializing a partition re-reads the directory and replaces the
partition, so a file is never loaded twice into it.
"""

from orders_platform.sources.landing.files import file_format
from orders_platform.sources.landing.frames import (
    FILE_COLUMN,
    LINE_COLUMN,
    RAW_LINE_COLUMN,
    landing_schema,
)
from orders_platform.sources.landing.lines import RAW_LINE_MAX_CHARS
from orders_platform.sources.landing.source import LandingSource

__all__ = [
    "FILE_COLUMN",
    "LINE_COLUMN",
    "RAW_LINE_COLUMN",
    "RAW_LINE_MAX_CHARS",
    "LandingSource",
    "file_format",
    "landing_schema",
]
