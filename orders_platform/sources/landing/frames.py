"""The frames the landing source yields, and per-file statistics.

Every frame has the source columns (strings, null when a file lacks the column) plus
``_file``, ``_line``, ``_malformed`` and ``_raw_line`` (`landing_schema`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from orders_platform.sources.base import MALFORMED_COLUMN

FILE_COLUMN = "_file"
LINE_COLUMN = "_line"
RAW_LINE_COLUMN = "_raw_line"

# Rows buffered as Python objects before they become a Polars part: memory stays
# ~ chunk_rows compact rows + this many Python rows.
PART_ROWS = 10_000


def landing_schema(columns: Sequence[str]) -> dict[str, pl.DataType]:
    """The schema of every frame the landing source yields for `columns`."""
    return {
        **{c: pl.String() for c in columns},
        FILE_COLUMN: pl.String(),
        LINE_COLUMN: pl.Int64(),
        MALFORMED_COLUMN: pl.String(),
        RAW_LINE_COLUMN: pl.String(),
    }


@dataclass
class FileStats:
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


class Chunk:
    """Rows of one file accumulated into frames of at most `chunk_rows` rows. Rows parsed
    in Python are buffered for at most `PART_ROWS` rows, then sealed into a compact Polars
    part; frames from the native parser are parts already. `full()` hands out every
    complete frame, `rest()` what is left at the end of the file."""

    def __init__(
        self, file_name: str, columns: Sequence[str], present: Sequence[str], chunk_rows: int
    ) -> None:
        self.file_name = file_name
        self.columns = tuple(columns)
        self.present = tuple(present)
        self.chunk_rows = chunk_rows
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
        if len(self.rows) >= PART_ROWS:
            self._seal()

    def extend(self, lines: list[int], rows: list[Sequence[str | None]]) -> None:
        self.rows.extend(rows)
        self.lines.extend(lines)
        if len(self.rows) >= PART_ROWS:
            self._seal()

    def add_malformed(self, line: int, reason: str, raw: str) -> None:
        self.bad.append((len(self.rows), reason, raw))
        self.malformed_total += 1
        self.add(line, self._nulls)

    def add_frame(self, data: pl.DataFrame, lines: pl.Series) -> None:
        """Good rows parsed natively: `data` holds the present columns, in order."""
        self._seal()
        n = data.height
        self.parts.append(
            data.with_columns(
                *(pl.lit(None, pl.String).alias(c) for c in self.columns if c not in self.present),
                pl.lit(self.file_name, pl.String).alias(FILE_COLUMN),
                lines.alias(LINE_COLUMN),
                pl.lit(None, pl.String).alias(MALFORMED_COLUMN),
                pl.lit(None, pl.String).alias(RAW_LINE_COLUMN),
            ).select(*self.columns, FILE_COLUMN, LINE_COLUMN, MALFORMED_COLUMN, RAW_LINE_COLUMN)
        )
        self.sealed_rows += n

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

    def _take(self, n: int) -> pl.DataFrame:
        """The first `n` accumulated rows as one frame."""
        self._seal()
        frame = self.parts[0] if len(self.parts) == 1 else pl.concat(self.parts, rechunk=False)
        head, tail = frame.slice(0, n), frame.slice(n)
        self.parts = [tail] if tail.height else []
        self.sealed_rows = tail.height
        return head

    def full(self) -> Iterator[pl.DataFrame]:
        while len(self) >= self.chunk_rows:
            yield self._take(self.chunk_rows)

    def rest(self) -> Iterator[pl.DataFrame]:
        yield from self.full()
        if len(self):
            yield self._take(len(self))


@dataclass(frozen=True)
class ReadOptions:
    """How a file is read (the `LandingSource` knobs)."""

    chunk_rows: int = 100_000
    max_line_bytes: int = 16 << 20
    max_record_lines: int = 1_000
    native: bool = True  # False: the careful line parser alone (the oracle in tests)
    # largest block of whole lines one native parse gets (memory ~ a few × this), and the
    # size below which a block the native parser refused is read carefully
    native_block_bytes: int = 16 << 20
    min_native_bytes: int = 16 << 10
