"""SQL text shared by every warehouse engine (DuckDB today, Snowflake next).

Everything here is pure string building, parameterised by a small `Dialect`, so that the
DuckDB and Snowflake implementations issue the same statements: the same column types, the
same DDL, the same MERGE and the same upsert bookkeeping. Engines only differ in how they
connect, how they stage a Polars batch (DuckDB: a registered Arrow view; Snowflake: a
temporary staging table) and how they run a transaction.

Identifiers are never quoted: they are validated against ``[a-z_][a-z0-9_]*`` instead, which
keeps them case-insensitive in both engines (a quoted lower-case name in Snowflake would be
case-sensitive forever). Values never reach SQL as text except dates and integers rendered
from typed Python values, so nothing user-supplied is ever interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Dialect:
    """What differs between engines in the shared SQL: type names only, so far."""

    name: str
    int8: str
    int16: str
    int32: str
    int64: str
    uint64: str
    float32: str
    float64: str
    boolean: str
    string: str
    binary: str
    date: str
    time: str
    timestamp_tz: str
    timestamp_ntz: str
    decimal: str  # template with {precision} and {scale}
    array: str  # template with {inner}


DUCKDB = Dialect(
    name="duckdb",
    int8="TINYINT",
    int16="SMALLINT",
    int32="INTEGER",
    int64="BIGINT",
    uint64="UBIGINT",
    float32="REAL",
    float64="DOUBLE",
    boolean="BOOLEAN",
    string="VARCHAR",
    binary="BLOB",
    date="DATE",
    time="TIME",
    timestamp_tz="TIMESTAMPTZ",
    timestamp_ntz="TIMESTAMP",
    decimal="DECIMAL({precision},{scale})",
    array="{inner}[]",
)

SNOWFLAKE = Dialect(
    name="snowflake",
    int8="SMALLINT",
    int16="SMALLINT",
    int32="INTEGER",
    int64="BIGINT",
    uint64="NUMBER(20,0)",
    float32="FLOAT",
    float64="DOUBLE",
    boolean="BOOLEAN",
    string="VARCHAR",
    binary="BINARY",
    date="DATE",
    time="TIME",
    timestamp_tz="TIMESTAMP_TZ",
    timestamp_ntz="TIMESTAMP_NTZ",
    decimal="NUMBER({precision},{scale})",
    array="ARRAY",
)


def ident(name: str) -> str:
    """Validate one unquoted identifier (lower snake case) and return it unchanged."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}: expected [a-z_][a-z0-9_]*")
    return name


def qualified(schema: str, table: str) -> str:
    return f"{ident(schema)}.{ident(table)}"


def sql_type(dtype: pl.DataType, dialect: Dialect) -> str:
    """The column type a Polars dtype is stored as (Decimal(12,2) -> DECIMAL(12,2), ...)."""
    if isinstance(dtype, pl.Decimal):
        precision = dtype.precision if dtype.precision is not None else 38
        return dialect.decimal.format(precision=precision, scale=dtype.scale)
    if isinstance(dtype, pl.Datetime):
        return dialect.timestamp_tz if dtype.time_zone is not None else dialect.timestamp_ntz
    if isinstance(dtype, pl.List | pl.Array):
        return dialect.array.format(inner=sql_type(dtype.inner, dialect))
    simple: dict[type[pl.DataType], str] = {
        pl.Int8: dialect.int8,
        pl.Int16: dialect.int16,
        pl.Int32: dialect.int32,
        pl.Int64: dialect.int64,
        pl.UInt8: dialect.int16,
        pl.UInt16: dialect.int32,
        pl.UInt32: dialect.int64,
        pl.UInt64: dialect.uint64,
        pl.Float32: dialect.float32,
        pl.Float64: dialect.float64,
        pl.Boolean: dialect.boolean,
        pl.String: dialect.string,
        pl.Categorical: dialect.string,
        pl.Enum: dialect.string,
        pl.Binary: dialect.binary,
        pl.Date: dialect.date,
        pl.Time: dialect.time,
    }
    for polars_type, name in simple.items():
        if isinstance(dtype, polars_type):
            return name
    raise TypeError(f"no {dialect.name} column type for Polars dtype {dtype}")


def date_literal(day: date) -> str:
    """`DATE 'YYYY-MM-DD'`: a typed literal both engines accept and can prune on."""
    if not isinstance(day, date):
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return f"DATE '{day.isoformat()}'"


def date_in_list(dates: Iterable[date]) -> str:
    """A sorted, de-duplicated literal list `(DATE '…', …)`; at least one date required."""
    unique = sorted(set(dates))
    if not unique:
        raise ValueError("an IN list needs at least one date")
    return "(" + ", ".join(date_literal(d) for d in unique) + ")"


def int_in_list(values: Iterable[int]) -> str:
    unique = sorted({int(v) for v in values})
    if not unique:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join(str(v) for v in unique) + ")"


def create_schema_sql(schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}"


def create_table_sql(
    schema: str, table: str, columns: Mapping[str, pl.DataType], dialect: Dialect
) -> str:
    if not columns:
        raise ValueError(f"cannot create {schema}.{table} without columns")
    body = ",\n    ".join(f"{ident(c)} {sql_type(t, dialect)}" for c, t in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} (\n    {body}\n)"


def column_types_sql(schema: str, table: str) -> str:
    """information_schema query listing (column_name, data_type) in table order."""
    # Compared case-insensitively: Snowflake stores unquoted identifiers upper-case.
    return (
        "SELECT lower(column_name) AS column_name, data_type "
        "FROM information_schema.columns "
        f"WHERE lower(table_schema) = '{ident(schema)}' AND lower(table_name) = '{ident(table)}' "
        "ORDER BY ordinal_position"
    )


@dataclass(frozen=True)
class UpsertSpec:
    """A keyed, versioned upsert of `source` into `schema.table`.

    `key` identifies a row, `version` orders its versions (a row is replaced only by a
    strictly newer version) and `partition` is a column that never changes for a given
    key, used to restrict the target side to the partitions present in the batch.
    """

    schema: str
    table: str
    columns: Sequence[str]
    key: str
    version: str
    partition: str

    def __post_init__(self) -> None:
        for name in (self.schema, self.table, *self.columns):
            ident(name)
        for role in ("key", "version", "partition"):
            if getattr(self, role) not in self.columns:
                raise ValueError(f"{role} column {getattr(self, role)!r} not in columns")

    @property
    def target(self) -> str:
        return qualified(self.schema, self.table)

    def join_condition(self, partitions: Iterable[date]) -> str:
        """`t.key = s.key AND t.part = s.part AND t.part IN (<literal dates>)`.

        The literal list is logically redundant (it follows from the equality and the
        batch) but it is what lets DuckDB zone maps and Snowflake micro-partition pruning
        skip every other day: the target is never scanned whole.
        """
        k, p = self.key, self.partition
        return f"t.{k} = s.{k} AND t.{p} = s.{p} AND t.{p} IN {date_in_list(partitions)}"

    def restricted_target(self, partitions: Iterable[date]) -> str:
        """The target restricted to the batch's partitions, as a derived table."""
        cols = ", ".join(dict.fromkeys((self.key, self.partition, self.version)))
        return (
            f"(SELECT {cols} FROM {self.target} "
            f"WHERE {self.partition} IN {date_in_list(partitions)})"
        )

    def stats_sql(self, source: str, partitions: Iterable[date]) -> str:
        """One row: rows_in, inserted, updated, unchanged, as the MERGE will decide them.

        Run in the same transaction just before `merge_sql`, against the same snapshot.
        """
        k, p, v = self.key, self.partition, self.version
        return (
            "SELECT count(*) AS rows_in, "
            f"coalesce(sum(CASE WHEN t.{k} IS NULL THEN 1 ELSE 0 END), 0) AS inserted, "
            f"coalesce(sum(CASE WHEN t.{k} IS NOT NULL AND s.{v} > t.{v} "
            "THEN 1 ELSE 0 END), 0) AS updated, "
            f"coalesce(sum(CASE WHEN t.{k} IS NOT NULL AND NOT (s.{v} > t.{v}) "
            "THEN 1 ELSE 0 END), 0) AS unchanged "
            f"FROM {ident(source)} AS s "
            f"LEFT JOIN {self.restricted_target(partitions)} AS t "
            f"ON t.{k} = s.{k} AND t.{p} = s.{p}"
        )

    def merge_sql(self, source: str, partitions: Iterable[date]) -> str:
        """MERGE the staged batch `source` into the target (SPEC §4 upsert semantics).

        New keys are inserted; an existing row is replaced only when the incoming version
        is strictly newer, so re-applying any batch, in any order, is a no-op for rows it
        already lost to (idempotent, never regresses).
        """
        partitions = list(partitions)
        v = self.version
        fixed = (self.key, self.partition)  # equal on both sides by the join condition
        updates = ",\n        ".join(f"{c} = s.{c}" for c in self.columns if c not in fixed)
        names = ", ".join(self.columns)
        values = ", ".join(f"s.{c}" for c in self.columns)
        return (
            f"MERGE INTO {self.target} AS t\n"
            f"USING {ident(source)} AS s\n"
            f"ON {self.join_condition(partitions)}\n"
            f"WHEN MATCHED AND s.{v} > t.{v} THEN UPDATE SET\n        {updates}\n"
            f"WHEN NOT MATCHED THEN INSERT ({names})\n    VALUES ({values})"
        )


def delete_partition_sql(schema: str, table: str, partition: str, day: date) -> str:
    return f"DELETE FROM {qualified(schema, table)} WHERE {ident(partition)} = {date_literal(day)}"


def insert_select_sql(schema: str, table: str, source: str, columns: Sequence[str]) -> str:
    names = ", ".join(ident(c) for c in columns)
    return f"INSERT INTO {qualified(schema, table)} ({names}) SELECT {names} FROM {ident(source)}"
