"""How silver tables' values and dtypes cross the Snowflake wire, both ways.

- Writes: `staging_frame` turns a batch into values the connector binds (and Parquet stores)
  without loss (decimals, timestamps, dates as text; lists as JSON text); `staging_type` types
  the staging columns; `create_table_sql` records the Polars dtypes in the table COMMENT.
- Reads: `decode_schema_comment` gives those dtypes back (so List(Int64), Int32 and
  Decimal(12,2) round-trip exactly, even for an all-empty ARRAY column, which Snowflake cannot
  type); `dtype_from_description` is the fallback from the cursor description.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import polars as pl

from orders_platform.storage.warehouse.base import SILVER_SCHEMA
from orders_platform.storage.warehouse.sql import SNOWFLAKE, create_table_sql, sql_type

log = logging.getLogger(__name__)

SCHEMA_COMMENT_PREFIX = "orders_platform polars schema: "

_SIMPLE_DTYPES: dict[str, type[pl.DataType]] = {
    t.__name__: t
    for t in (
        pl.Int8,
        pl.Int16,
        pl.Int32,
        pl.Int64,
        pl.UInt8,
        pl.UInt16,
        pl.UInt32,
        pl.UInt64,
        pl.Float32,
        pl.Float64,
        pl.Boolean,
        pl.String,
        pl.Binary,
        pl.Date,
        pl.Time,
    )
}


def create_table_with_dtypes_sql(table: str, schema: Mapping[str, pl.DataType]) -> str:
    comment = SCHEMA_COMMENT_PREFIX + json.dumps(
        {c: _encode_dtype(t) for c, t in schema.items()}, separators=(",", ":")
    )
    if "'" in comment or "\\" in comment:
        raise ValueError(f"cannot record the dtypes of {table} in a table comment: {comment}")
    return create_table_sql(SILVER_SCHEMA, table, schema, SNOWFLAKE) + f" COMMENT = '{comment}'"


def staging_type(dtype: pl.DataType) -> str:
    """Staging columns are typed like the target, except lists (JSON text, parsed on insert)
    and all-null columns (NULL text converts to any type)."""
    if isinstance(dtype, pl.List | pl.Array | pl.Null):
        return "VARCHAR"
    return sql_type(dtype, SNOWFLAKE)


def staging_frame(df: pl.DataFrame) -> pl.DataFrame:
    """The batch as values the connector binds (and Parquet stores) without loss: decimals,
    timestamps, dates and times as text, lists as JSON text, other columns unchanged."""
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Decimal):
            col = col.cast(pl.String)
        elif isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00:00")
            else:
                col = col.dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        elif isinstance(dtype, pl.Date):
            col = col.dt.strftime("%Y-%m-%d")
        elif isinstance(dtype, pl.Time):
            col = col.dt.strftime("%H:%M:%S%.6f")
        elif isinstance(dtype, pl.List | pl.Array):
            encoded = pl.struct(col.alias("v")).struct.json_encode()
            col = pl.when(col.is_null()).then(None).otherwise(encoded.str.slice(5).str.head(-1))
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            col = col.cast(pl.String)
        exprs.append(col.alias(name))
    return df.select(exprs)


def is_list(dtype: pl.DataType | type[pl.DataType]) -> bool:
    return dtype is pl.List or isinstance(dtype, pl.List | pl.Array)


def dtype_from_description(column: Any) -> pl.DataType:
    from snowflake.connector.constants import FIELD_ID_TO_NAME

    kind = FIELD_ID_TO_NAME[column.type_code]
    if kind == "FIXED":
        if not column.scale:
            return pl.Int64()
        return pl.Decimal(column.precision or 38, column.scale)
    if kind in ("TIMESTAMP_TZ", "TIMESTAMP_LTZ"):
        return pl.Datetime("us", "UTC")
    if kind in ("TIMESTAMP_NTZ", "TIMESTAMP"):
        return pl.Datetime("us")
    if kind == "ARRAY":
        return pl.List  # type: ignore[return-value]  # inner type inferred when decoding
    simple: dict[str, pl.DataType] = {
        "REAL": pl.Float64(),
        "DATE": pl.Date(),
        "TIME": pl.Time(),
        "BOOLEAN": pl.Boolean(),
        "BINARY": pl.Binary(),
    }
    return simple.get(kind, pl.String())  # TEXT, VARIANT, OBJECT, ...: text


def _encode_dtype(dtype: pl.DataType) -> object:
    if isinstance(dtype, pl.List | pl.Array):
        return {"list": _encode_dtype(dtype.inner)}
    if isinstance(dtype, pl.Decimal):
        return {"decimal": [dtype.precision if dtype.precision is not None else 38, dtype.scale]}
    if isinstance(dtype, pl.Datetime):
        return {"datetime": [dtype.time_unit, dtype.time_zone]}
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "String"
    name = type(dtype).__name__ if isinstance(dtype, pl.DataType) else dtype.__name__
    if name not in _SIMPLE_DTYPES:
        raise TypeError(f"no Snowflake storage for Polars dtype {dtype}")
    return name


def _decode_dtype(value: object) -> pl.DataType:
    if isinstance(value, str) and value in _SIMPLE_DTYPES:
        return _SIMPLE_DTYPES[value]()
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "list":
            return pl.List(_decode_dtype(arg))
        if key == "decimal":
            precision, scale = arg
            return pl.Decimal(int(precision), int(scale))
        if key == "datetime":
            unit, zone = arg
            return pl.Datetime(unit, zone)
    raise ValueError(f"unknown dtype in table comment: {value!r}")


def decode_schema_comment(comment: object) -> dict[str, pl.DataType]:
    if not isinstance(comment, str) or not comment.startswith(SCHEMA_COMMENT_PREFIX):
        return {}
    try:
        encoded = json.loads(comment[len(SCHEMA_COMMENT_PREFIX) :])
        return {str(c).lower(): _decode_dtype(t) for c, t in encoded.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable dtype comment on a silver table: %s", exc)
        return {}
