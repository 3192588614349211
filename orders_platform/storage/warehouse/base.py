"""The warehouse interface: one resource, implemented by DuckDB (embedded) and Snowflake.

Assets and checks only ever talk to a `Warehouse`; which engine is behind it is a setting
(ORDERS_WAREHOUSE). Both engines store the same tables with the same types and apply the
same upsert (the shared SQL lives in `sql.py`):

- ``silver.orders``: one row per order_id, columns and dtypes of SILVER_ORDERS_SCHEMA.
  `upsert_orders` replaces a stored row only by a strictly newer updated_at, inserts new
  order_ids, and restricts the target side to the batch's order_dates (SPEC §4).
- ``silver.sessions``: replaced one session_date at a time (`replace_sessions`).

The module-level helpers validate and conform batches before they reach any engine, so an
engine implementation only stages the prepared frame and runs the shared SQL.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl
from dagster import ConfigurableResource

from orders_platform.storage.warehouse.sql import UpsertSpec, ident
from orders_platform.transforms.schema import SILVER_ORDERS_SCHEMA

SILVER_SCHEMA = "silver"
ORDERS_TABLE = "orders"
SESSIONS_TABLE = "sessions"
SESSIONS_PARTITION = "session_date"

ORDERS_UPSERT = UpsertSpec(
    schema=SILVER_SCHEMA,
    table=ORDERS_TABLE,
    columns=tuple(SILVER_ORDERS_SCHEMA),
    key="order_id",
    version="updated_at",
    partition="order_date",
)


@dataclass(frozen=True)
class UpsertStats:
    """What one `upsert_orders` call did; rows_in == inserted + updated + unchanged."""

    rows_in: int
    inserted: int
    updated: int
    unchanged: int


class TableNotFoundError(LookupError):
    """Raised by `read_table` / `column_types` for a table that does not exist (yet)."""


class Warehouse(ConfigurableResource, ABC):
    """A Dagster resource holding the silver tables (``silver.orders``, ``silver.sessions``)."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """Engine name, e.g. "duckdb" or "snowflake" (for metadata and logs)."""

    @abstractmethod
    def upsert_orders(self, df: pl.DataFrame) -> UpsertStats:
        """Upsert a batch of silver orders (SILVER_ORDERS_SCHEMA) into ``silver.orders``.

        Keyed by order_id; a stored row is replaced only when the incoming updated_at is
        strictly newer; new order_ids are inserted. One transaction; the stats are computed
        in it. Raises ValueError for a batch with duplicate or null order_id, null
        updated_at / order_date, or columns not matching SILVER_ORDERS_SCHEMA.
        """

    @abstractmethod
    def read_orders(
        self,
        *,
        order_ids: Sequence[int] | None = None,
        order_dates: Sequence[date] | None = None,
    ) -> pl.DataFrame:
        """Rows of ``silver.orders`` (all, or filtered; both filters AND-ed), ordered by
        order_id, with exactly SILVER_ORDERS_SCHEMA. Empty frame if the table is missing."""

    @abstractmethod
    def replace_sessions(self, df: pl.DataFrame, day: date) -> int:
        """Atomically replace the sessions of `day` (session_date) with `df`; return rows
        written. The table is created from the frame's dtypes on first use. `df` may omit
        session_date (it is then set to `day`); if present every value must equal `day`."""

    @abstractmethod
    def read_table(self, name: str) -> pl.DataFrame:
        """Whole table `name` ("orders", "sessions" or "silver.<table>"), timestamps in UTC.
        Raises TableNotFoundError when it does not exist."""

    @abstractmethod
    def table_exists(self, name: str) -> bool:
        """Whether table `name` (as in `read_table`) exists."""

    @abstractmethod
    def column_types(self, name: str) -> dict[str, str]:
        """Column name -> engine type name (information_schema.columns.data_type), in
        table order. Raises TableNotFoundError when the table does not exist."""


_QUALIFIED = re.compile(r"^(?:(?P<schema>[a-z_][a-z0-9_]*)\.)?(?P<table>[a-z_][a-z0-9_]*)$")


def split_table_name(name: str) -> tuple[str, str]:
    """ "orders" -> ("silver", "orders"); "silver.orders" -> ("silver", "orders")."""
    match = _QUALIFIED.match(name.strip().lower()) if isinstance(name, str) else None
    if not match:
        raise ValueError(f"invalid table name {name!r}: expected 'table' or 'schema.table'")
    return match["schema"] or SILVER_SCHEMA, match["table"]


def _castable(actual: pl.DataType, expected: pl.DataType) -> bool:
    """Casts that cannot change a value: widening ints, Decimal to scale 2 (range-checked
    by a strict cast), any Datetime in UTC to Datetime(us, UTC), all-null columns."""
    if actual == expected or isinstance(actual, pl.Null):
        return True
    if expected.is_integer():
        return actual.is_integer()
    if isinstance(expected, pl.Decimal):
        return isinstance(actual, pl.Decimal) and actual.scale <= expected.scale
    if isinstance(expected, pl.Datetime):
        return isinstance(actual, pl.Datetime) and actual.time_zone in ("UTC", "Etc/UTC")
    if isinstance(expected, pl.String):
        return isinstance(actual, pl.Categorical | pl.Enum)
    return False


def conform(df: pl.DataFrame, schema: Mapping[str, pl.DataType], what: str) -> pl.DataFrame:
    """Select `schema`'s columns in order with its dtypes; ValueError on missing, extra or
    incompatible columns (no lossy cast is ever applied silently)."""
    missing = [c for c in schema if c not in df.columns]
    extra = [c for c in df.columns if c not in schema]
    if missing or extra:
        raise ValueError(
            f"{what}: columns do not match the schema (missing={missing}, extra={extra})"
        )
    bad = [
        f"{c}: {df.schema[c]} (expected {t})"
        for c, t in schema.items()
        if not _castable(df.schema[c], t)
    ]
    if bad:
        raise ValueError(f"{what}: incompatible column dtypes: {'; '.join(bad)}")
    return df.select(pl.col(c).cast(t, strict=True) for c, t in schema.items())


def prepare_orders_batch(df: pl.DataFrame) -> pl.DataFrame:
    """Validate a silver orders batch and conform it to SILVER_ORDERS_SCHEMA."""
    out = conform(df, SILVER_ORDERS_SCHEMA, "silver orders batch")
    for column in ("order_id", "updated_at", "order_date"):
        nulls = out.get_column(column).null_count()
        if nulls:
            raise ValueError(f"silver orders batch: {nulls} row(s) with null {column}")
    dup = out.get_column("order_id").is_duplicated()
    if dup.any():
        sample = out.filter(dup).get_column("order_id").unique().sort().head(10).to_list()
        raise ValueError(
            f"silver orders batch: order_id must be unique, {dup.sum()} rows share an "
            f"order_id (e.g. {sample})"
        )
    return out


def prepare_sessions_batch(df: pl.DataFrame, day: date) -> pl.DataFrame:
    """Validate a sessions batch for `day`: identifiers, and session_date == day."""
    if not isinstance(day, date):
        raise TypeError(f"day must be a date, got {type(day).__name__}")
    for column in df.columns:
        ident(column)
    if SESSIONS_PARTITION not in df.columns:
        return df.with_columns(pl.lit(day, dtype=pl.Date()).alias(SESSIONS_PARTITION))
    dtype = df.schema[SESSIONS_PARTITION]
    if not isinstance(dtype, pl.Date | pl.Null):
        raise ValueError(f"sessions batch: {SESSIONS_PARTITION} must be a Date, got {dtype}")
    column = df.get_column(SESSIONS_PARTITION).cast(pl.Date())
    wrong = df.height - int((column == day).sum())
    if wrong:
        raise ValueError(f"sessions batch: {wrong} row(s) with {SESSIONS_PARTITION} != {day}")
    return df.with_columns(column)


def utc_timestamps(df: pl.DataFrame) -> pl.DataFrame:
    """Express every timezone-aware column in UTC (engines export in their session zone)."""
    converted = [
        pl.col(c).dt.convert_time_zone("UTC")
        for c, t in df.schema.items()
        if isinstance(t, pl.Datetime) and t.time_zone is not None and t.time_zone != "UTC"
    ]
    return df.with_columns(converted) if converted else df


def conform_orders_read(df: pl.DataFrame) -> pl.DataFrame:
    """A read of silver.orders with exactly SILVER_ORDERS_SCHEMA (order and dtypes)."""
    return utc_timestamps(df).select(
        pl.col(c).cast(t, strict=True) for c, t in SILVER_ORDERS_SCHEMA.items()
    )
