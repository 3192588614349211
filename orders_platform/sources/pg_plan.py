"""Query planning of the PostgreSQL source: table names, sub-windows and the COPY statement.

One sub-window is one ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` statement. Every source
column is selected as ``col::text`` so values arrive exactly as the database renders them
(numerics exact, timestamps in UTC ISO form, free text untouched; never through a float);
a column missing from the table is ``NULL::text``. Rows come ordered by the window column
(the real timestamp, not its text), then by every value in byte order (``COLLATE "C"``,
which changes no byte of a value, only how it sorts):
exact duplicates are adjacent, so the reader collapses them without holding the
sub-window, and ties are broken the same way on every extraction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from orders_platform.sources.pg_session import (
    PostgresSourceError,
    describe_target,
    source_error,
)

_IDENT = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
_TABLE_NAME = re.compile(rf"^(?:(?P<schema>{_IDENT})\.)?(?P<table>{_IDENT})$")
_TIMESTAMP_TYPES = ("timestamp with time zone", "timestamp without time zone")
_ALIAS = sql.Identifier("_src")


def quote_table(name: str, setting: str) -> tuple[sql.Composable, str]:
    """A validated `schema.table` (or `table`) as a quoted SQL identifier, plus the
    plain text used in messages and to_regclass()."""
    m = _TABLE_NAME.match(name.strip()) if isinstance(name, str) else None
    if not m:
        raise ValueError(
            f"{setting} must be a table name like 'schema.table' (letters, digits, _ and $;"
            f" no quotes or spaces), got {name!r}"
        )
    schema, table = m.group("schema"), m.group("table")
    ident = sql.Identifier(schema, table) if schema else sql.Identifier(table)
    return ident, f"{schema}.{table}" if schema else table


def sub_windows(start: datetime, end: datetime, minutes: int) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive half-open windows of `minutes` (the last one may
    be shorter)."""
    step = timedelta(minutes=minutes)
    out = []
    lo = start
    while lo < end:
        hi = min(lo + step, end)
        out.append((lo, hi))
        lo = hi
    return out


@dataclass(frozen=True)
class Plan:
    """What to read: the table, its columns and the window column's type."""

    kind: str  # "orders" | "events"
    setting: str
    table_sql: sql.Composable
    table_text: str
    columns: tuple[str, ...]
    present: frozenset[str]
    window_column: str
    window_is_naive: bool
    dedupe: bool


def inspect_table(
    conn: psycopg2.extensions.connection,
    dsn: str,
    kind: str,
    table: str,
    setting: str,
    columns: Sequence[str],
    window_column: str,
    dedupe: bool,
) -> Plan:
    """The table's columns and window column type, read from the catalog."""
    table_sql, table_text = quote_table(table, setting)
    quoted_name = table_sql.as_string(conn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)::oid", (quoted_name,))
            oid = cur.fetchone()[0]
            if oid is None:
                raise PostgresSourceError(
                    f"{setting}: table {table_text} does not exist or is not visible to the "
                    f"source user (PostgreSQL source {describe_target(dsn)})"
                )
            cur.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                (oid,),
            )
            types = dict(cur.fetchall())
        conn.commit()
    except psycopg2.Error as exc:
        raise source_error(dsn, f"could not inspect {table_text}", exc) from None
    window_type = types.get(window_column)
    if window_type not in _TIMESTAMP_TYPES:
        raise PostgresSourceError(
            f"{setting}: {table_text}.{window_column} must be a timestamptz or timestamp "
            f"column to window the day, got {window_type or 'no such column'}"
        )
    return Plan(
        kind=kind,
        setting=setting,
        table_sql=table_sql,
        table_text=table_text,
        columns=tuple(columns),
        present=frozenset(c for c in columns if c in types),
        window_column=window_column,
        window_is_naive=window_type == "timestamp without time zone",
        dedupe=dedupe,
    )


def copy_statement(
    plan: Plan, lo: datetime, hi: datetime, conn: psycopg2.extensions.connection
) -> str:
    """``COPY (SELECT … WHERE lo <= window < hi ORDER BY …) TO STDOUT (FORMAT csv)``.

    CSV keeps NULL and the empty string apart (an unquoted empty field vs ``""``), quotes
    values holding commas, quotes, newlines or carriage returns, and leaves backslashes
    and tabs alone. The bounds are literals (COPY takes no parameters): a naive window
    column is compared with naive UTC bounds."""
    if plan.window_is_naive:
        lo, hi = (v.astimezone(UTC).replace(tzinfo=None) for v in (lo, hi))
    selected = sql.SQL(", ").join(
        (
            sql.SQL('{}.{}::text COLLATE "C"').format(_ALIAS, sql.Identifier(c))
            if c in plan.present
            else sql.SQL("NULL::text")
        )
        + sql.SQL(" AS {}").format(sql.Identifier(c))
        for c in plan.columns
    )
    w = sql.SQL("{}.{}").format(_ALIAS, sql.Identifier(plan.window_column))
    # the real timestamp first (its text is not chronological for every offset), then the
    # output columns by position: sorting reuses the selected values, no extra keys
    order = [w] + [sql.Literal(i + 1) for i, c in enumerate(plan.columns) if c in plan.present]
    query = sql.SQL(
        "COPY (SELECT {cols} FROM {table} AS {alias} WHERE {w} >= {lo} AND {w} < {hi} "
        "ORDER BY {order}) TO STDOUT WITH (FORMAT csv)"
    ).format(
        cols=selected,
        table=plan.table_sql,
        alias=_ALIAS,
        w=w,
        lo=sql.Literal(lo),
        hi=sql.Literal(hi),
        order=sql.SQL(", ").join(order),
    )
    return query.as_string(conn)
