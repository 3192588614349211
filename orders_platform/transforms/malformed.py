"""Route records a source could not parse (MALFORMED_COLUMN set) to the dead letters."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from orders_platform.transforms.schema import (
    LINEAGE_SCHEMA,
    MALFORMED_COLUMN,
    MALFORMED_CONTEXT_COLUMNS,
)

_EXTRA = (MALFORMED_COLUMN, *MALFORMED_CONTEXT_COLUMNS)


def split_malformed(
    raw: pl.DataFrame | pl.LazyFrame, source_columns: Sequence[str]
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """(rows to validate, dead-letter rows for malformed records).

    The dead-letter rows have the source columns as strings, `reason` (the code before the
    first ':' of the source's message, e.g. malformed_json, wrong_column_count,
    bad_encoding), `detail` (message, file, line and the raw text, so nothing is lost) and
    the lineage columns. Frames without MALFORMED_COLUMN pass through unchanged.
    """
    lf = raw.lazy()
    schema = lf.collect_schema()
    if MALFORMED_COLUMN not in schema:
        return lf, pl.DataFrame(schema=_rejected_schema(source_columns))
    present = [c for c in _EXTRA if c in schema]
    context = [pl.col(c).cast(pl.String) if c in schema else pl.lit("?") for c in _EXTRA[1:]]
    raw_line, file, line = context
    detail = pl.concat_str(
        [
            pl.col(MALFORMED_COLUMN),
            pl.lit(" ("),
            file.fill_null("?"),
            pl.lit(" line "),
            line.fill_null("?"),
            pl.lit("): "),
            raw_line.fill_null(""),
        ]
    )
    rejected = (
        lf.filter(pl.col(MALFORMED_COLUMN).is_not_null())
        .select(
            *(
                pl.col(c).cast(pl.String) if c in schema else pl.lit(None, pl.String).alias(c)
                for c in source_columns
            ),
            pl.col(MALFORMED_COLUMN)
            .str.extract(r"^([A-Za-z_]+)", 1)
            .fill_null("malformed_record")
            .alias("reason"),
            detail.alias("detail"),
            *(
                pl.col(c).cast(t) if c in schema else pl.lit(None, t).alias(c)
                for c, t in LINEAGE_SCHEMA.items()
            ),
        )
        .collect()
    )
    good = lf.filter(pl.col(MALFORMED_COLUMN).is_null()).drop(present)
    return good, rejected


def _rejected_schema(source_columns: Sequence[str]) -> dict[str, pl.DataType]:
    return {
        **{c: pl.String() for c in source_columns},
        "reason": pl.String(),
        "detail": pl.String(),
        **LINEAGE_SCHEMA,
    }
