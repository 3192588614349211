"""Metadata an operator reads on every materialization and check (no secrets, ever)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema

PREVIEW_ROWS = 5


def table_schema(schema: Mapping[str, pl.DataType] | pl.Schema) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(name=name, type=str(dtype)) for name, dtype in schema.items()]
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


def frame_metadata(df: pl.DataFrame, *, preview: bool = True) -> dict[str, Any]:
    """Row count, column schema and a small preview of a frame."""
    meta: dict[str, Any] = {
        "dagster/row_count": df.height,
        "dagster/column_schema": table_schema(df.schema),
    }
    if preview:
        meta["preview"] = markdown_table(df)
    return meta


def counts_metadata(counts: Mapping[str, int]) -> MetadataValue:
    """A reason -> count mapping, largest first, as JSON the UI renders."""
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return MetadataValue.json(ordered)
