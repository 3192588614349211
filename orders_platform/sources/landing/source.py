"""The landing-zone source resource (``ORDERS_SOURCE=landing``)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

import fsspec
import polars as pl

from orders_platform.sources.base import RawSource
from orders_platform.sources.landing.csv_reader import read_csv
from orders_platform.sources.landing.files import LandingFile, select_files
from orders_platform.sources.landing.frames import FileStats, ReadOptions, landing_schema
from orders_platform.sources.landing.lines import open_file
from orders_platform.sources.landing.ndjson_reader import read_ndjson
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS


class LandingSource(RawSource):
    """Raw orders and events from CSV / NDJSON files in the landing zone
    (``ORDERS_SOURCE=landing``).

    Suggested settings: ``ORDERS_LANDING_DIR`` (root), ``ORDERS_LANDING_CHUNK_ROWS``
    (100 000), ``ORDERS_LANDING_MAX_LINE_BYTES`` (16 MiB). ``native_reader=False`` reads
    every line with the careful parser alone (same rows, slower).
    """

    root: str
    chunk_rows: int = 100_000
    max_line_bytes: int = 16 << 20
    max_record_lines: int = 1_000
    native_reader: bool = True
    storage_options: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return "landing"

    def extract_orders(self, day: date) -> Iterator[pl.DataFrame]:
        yield from self._extract("orders", day, ORDER_SOURCE_COLUMNS)

    def extract_events(self, day: date) -> Iterator[pl.DataFrame]:
        yield from self._extract("events", day, EVENT_SOURCE_COLUMNS)

    def day_directory(self, kind: str, day: date | datetime) -> str:
        if isinstance(day, datetime):
            day = day.date()
        return f"{self.root.rstrip('/')}/{kind}/dt={day.isoformat()}"

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

    def _extract(self, kind: str, day: date, columns: Sequence[str]) -> Iterator[pl.DataFrame]:
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
            selected = select_files(fs, path)
            stats["skipped_files"] = selected.skipped
            stats["ignored_files"] = selected.ignored
            unknown: set[str] = set()
            for file in selected.to_read:
                fstats = FileStats(
                    name=file.name, format=file.format, sha256=file.sha256, bytes=file.bytes
                )
                stats["files"].append(fstats)
                for frame in self._read_file(fs, file, columns, fstats, directory):
                    fstats.rows += frame.height
                    stats["rows_extracted"] += frame.height
                    yielded = True
                    yield frame
                stats["rows_malformed"] += fstats.malformed
                stats["blank_lines"] += fstats.blank_lines
                unknown.update(fstats.unknown_columns)
                stats["unknown_columns"] = sorted(unknown)
                self._record_stats(**_public(stats, started))
        self._record_stats(**_public(stats, started))
        if not yielded:
            yield pl.DataFrame(schema=landing_schema(columns))

    def _read_file(
        self,
        fs: fsspec.AbstractFileSystem,
        file: LandingFile,
        columns: Sequence[str],
        fstats: FileStats,
        directory: str,
    ) -> Iterator[pl.DataFrame]:
        opts = ReadOptions(
            chunk_rows=self.chunk_rows,
            max_line_bytes=self.max_line_bytes,
            max_record_lines=self.max_record_lines,
            native=self.native_reader,
        )
        reader = read_csv if file.format == "csv" else read_ndjson
        with open_file(fs, file.path, file.name) as stream:
            yield from reader(stream, file.name, columns, fstats, opts)
        fs.invalidate_cache(file.path)
        if fs.size(file.path) != file.bytes:
            raise RuntimeError(
                f"landing file {file.name} in {directory} changed while it "
                f"was being read ({file.bytes} bytes when checksummed, {fs.size(file.path)} "
                "now): upload files under a name starting with '.' or '_' and rename them "
                "when complete; re-run the partition once the file is final"
            )


def _public(stats: dict[str, Any], started: float) -> dict[str, Any]:
    out = dict(stats)
    out["files"] = [f.as_dict() if isinstance(f, FileStats) else f for f in stats["files"]]
    out["skipped_files"] = list(stats["skipped_files"])
    out["ignored_files"] = list(stats["ignored_files"])
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out
