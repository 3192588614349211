"""The native CSV fast path: a block of whole lines parsed by Arrow's C++ CSV reader,
accepted only when it provably gives what the careful parser (Python's ``csv`` module,
line by line) would.

Arrow's parser follows the same state machine as Python's ``csv`` (RFC 4180 quoting,
doubled quotes, lenient text after a closing quote, quoted CR/LF kept as written), so for
a block it accepts the two agree value for value. A block is refused — and the caller
parses it carefully — when anything in it is a spot where they could differ or where the
careful parser reports a malformed row:

* any row whose field count differs from the header's, an unterminated quoted field, or
  invalid UTF-8 (Arrow raises on each);
* a CR that does not end a CRLF (Arrow ends a record there, the line reader does not);
* a UTF-8 BOM opening the block (Arrow drops it; only line 1 loses its BOM);
* a blank line, or a record spanning more lines than ``max_record_lines`` (detected by
  the line accounting below: the careful parser counts blank lines and refuses those
  records);
* a block ending inside a quoted field (a sentinel record appended to the block does not
  come back as its own row).

Line numbers: a record spans 1 + (LFs inside its values) physical lines; the sum over the
block must equal the block's physical lines, else the block is refused.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from orders_platform.sources.landing.lines import BOM

_PARSE = pacsv.ParseOptions(
    delimiter=",",
    quote_char='"',
    double_quote=True,
    escape_char=False,
    newlines_in_values=True,
    # skipped, so the line accounting refuses the block and the careful parser counts them
    # (kept, Arrow would fill an empty line with empty values)
    ignore_empty_lines=True,
)


class NativeCsv:
    """Arrow options for one file's header shape (`expected` fields, `idx` projected)."""

    def __init__(self, expected: int, idx: list[int], names: list[str]) -> None:
        self.expected = expected
        self.idx = idx
        self.names = names
        self._columns = [f"f{i}" for i in range(expected)]
        self._sentinel = b",".join([b"S"] * expected)
        self._convert = pacsv.ConvertOptions(
            # every column is converted (not only the projected ones) so that invalid
            # UTF-8 anywhere in the record refuses the block, as the careful parser would
            column_types={c: pa.string() for c in self._columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            check_utf8=True,
        )

    def parse(
        self, block: bytes, lines: int, start: int, max_record_lines: int
    ) -> tuple[pl.DataFrame, pl.Series] | None:
        """The block's records (projected, renamed) and their first line numbers, or None
        when the careful parser must read it. `block` holds `lines` whole lines from a
        record boundary; `start` is the number of its first line."""
        if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
            return None
        if block.startswith(BOM):  # Arrow drops a BOM at the start of its input
            return None
        # A sentinel record after the block: it comes back as its own last row only if
        # the block ends outside a quoted field. (Arrow closes a quoted field left open
        # at the end of its input, keeping the LF: that extra LF and a skipped blank line
        # would cancel out in the line accounting.)
        payload = block + (b"" if block.endswith(b"\n") else b"\n") + self._sentinel
        read = pacsv.ReadOptions(
            column_names=self._columns,
            block_size=max(1 << 20, min(len(payload) + 1, 4 << 20)),
            use_threads=len(payload) > (1 << 20),
        )
        try:
            table = pacsv.read_csv(
                pa.BufferReader(payload),
                read_options=read,
                parse_options=_PARSE,
                convert_options=self._convert,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        del payload
        rows = table.num_rows - 1
        if rows < 0 or table.slice(rows).to_pylist() != [dict.fromkeys(self._columns, "S")]:
            return None
        table = table.slice(0, rows)
        if rows == lines:
            numbers = pl.Series(np.arange(start, start + rows, dtype=np.int64))
        else:
            # some quoted values hold LFs: each record spans 1 + its values' LFs lines
            frame = pl.from_arrow(table, rechunk=False)
            assert isinstance(frame, pl.DataFrame)
            spans = frame.select(
                pl.sum_horizontal(pl.all().str.count_matches("\n", literal=True)) + 1
            ).to_series()
            if int(spans.sum()) != lines or int(spans.max() or 0) > max_record_lines:
                return None
            numbers = (spans.cum_sum() - spans + start).cast(pl.Int64)
        projected = table.select(self.idx).rename_columns(self.names)
        data = pl.from_arrow(projected, rechunk=False)
        assert isinstance(data, pl.DataFrame)
        return data, numbers.alias("_line")
