"""Metadata an operator reads on every materialization and check (no secrets, ever)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema

from orders_platform.transforms.columns import describe

PREVIEW_ROWS = 5


def keeps_source_strings(schema: Mapping[str, pl.DataType] | pl.Schema) -> bool:
    """Raw and dead-letter tables: every column but lineage/reason/detail is a string."""
    data = [d for c, d in schema.items() if not c.startswith("_") and c not in ("reason", "detail")]
    return bool(data) and all(d == pl.String for d in data)


def table_schema(
    schema: Mapping[str, pl.DataType] | pl.Schema, *, as_received: bool | None = None
) -> TableSchema:
    """Columns with their types and meanings (transforms/columns.py); `as_received` (by
    default: inferred from the types) for tables that keep the source's strings."""
    if as_received is None:
        as_received = keeps_source_strings(schema)
    return TableSchema(
        columns=[
            TableColumn(
                name=name, type=str(dtype), description=describe(name, as_received=as_received)
            )
            for name, dtype in schema.items()
        ]
    )


def markdown_table(df: pl.DataFrame, rows: int = PREVIEW_ROWS) -> MetadataValue:
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=rows,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=60,
    ):
        return MetadataValue.md(str(df.head(rows)))


def frame_metadata(
    df: pl.DataFrame, *, preview: bool = True, as_received: bool | None = None
) -> dict[str, Any]:
    """Row count, column schema (with descriptions) and a small preview of a frame."""
    meta: dict[str, Any] = {
        "dagster/row_count": df.height,
        "dagster/column_schema": table_schema(df.schema, as_received=as_received),
    }
    if preview:
        meta["preview"] = markdown_table(df)
    return meta


def counts_metadata(counts: Mapping[str, int]) -> MetadataValue:
    """A reason -> count mapping, largest first, as JSON the UI renders."""
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return MetadataValue.json(ordered)


def seconds_since(started: float) -> MetadataValue:
    """Wall time of a step as a float the asset's plots can chart."""
    return MetadataValue.float(round(time.perf_counter() - started, 3))


def rate(part: int, whole: int) -> MetadataValue:
    return MetadataValue.float(round(part / whole, 6) if whole else 0.0)


def rejection_summary(
    rows: Mapping[str, Mapping[str, int]], reasons: Mapping[str, Mapping[str, int]]
) -> MetadataValue:
    """Markdown per partition: rows in / valid / rejected (rate), then rejected rows by
    reason as a small table, largest first."""
    parts = []
    for key in sorted(rows):
        counts = rows[key]
        rows_in, rejected = counts.get("raw", 0), counts.get("rejected", 0)
        share = f"{rejected / rows_in:.2%}" if rows_in else "n/a"
        line = (
            f"**{key}**: {rows_in:,} rows in, {counts.get('valid', 0):,} valid, "
            f"{rejected:,} rejected ({share})"
        )
        if counts.get("duplicates_collapsed"):
            line += f", {counts['duplicates_collapsed']:,} duplicates collapsed"
        by_reason = sorted(
            ((r, n) for r, n in reasons.get(key, {}).items() if n), key=lambda kv: (-kv[1], kv[0])
        )
        table = "\n".join(
            ["| reason | rows |", "|---|---:|", *(f"| {r} | {n:,} |" for r, n in by_reason)]
        )
        parts.append(line + ("\n\n" + table if by_reason else "\n\nno rejected rows"))
    return MetadataValue.md("\n\n".join(parts))
