"""The PostgreSQL source: one UTC day of orders / events from a read replica (SPEC §9).

Operating rules, all enforced here:

* **Read-only.** Every session runs ``SET SESSION CHARACTERISTICS AS TRANSACTION READ
  ONLY`` and psycopg2 ``set_session(readonly=True)`` (``BEGIN READ ONLY``), and checks
  ``SHOW transaction_read_only`` = ``on`` before the first read. The source never writes.
* **Replica only.** ``SELECT pg_is_in_recovery()`` false means a primary: refused unless
  ``allow_primary`` (``ORDERS_PG_ALLOW_PRIMARY=true``).
* **statement_timeout** per session (``statement_timeout_seconds``); a statement that
  hits it fails with a message naming the table, the sub-window and the knobs to turn.
* **Sub-windows.** The day is read in half-open sub-windows of ``sub_window_minutes``
  (one server-side statement each, in its own short read-only transaction so a replica
  never holds one snapshot for the whole day), so a backlog never becomes one huge
  statement. Each sub-window is read through a server-side *named* cursor,
  ``batch_rows`` rows per ``FETCH``, and every fetched batch becomes a Polars frame of
  strings at once: the day is never held as Python rows.
* **Overlap (orders).** The orders window is ``[day 00:00Z - overlap, next day 00:00Z)``
  by ``updated_at``; the overlap is read as its own sub-window(s) so ``rows_in_overlap``
  is exact. Re-reading the overlap is harmless: validation keeps the latest updated_at
  per order_id and the silver upsert never regresses an order.
* **Events** are read by ``event_timestamp`` in ``[day, next day)`` *without* overlap:
  sessions are built from the neighbouring raw partitions (D-1 … D+1), so an overlap
  would count the same event in two partitions. Exact duplicate events are delivered as
  received (sessionize collapses and counts them).

Values: every source column is selected as ``col::text`` so values arrive exactly as the
database renders them — numerics exact (``1234.50``), timestamps with their offset
(``2026-03-17 14:44:32+00``; the session runs with ``TimeZone=UTC`` and
``DateStyle=ISO``), free text untouched. A source column missing from the table is
delivered as null and named in the stats (``missing_columns``); the window column
(``updated_at`` / ``event_timestamp``) must exist and be ``timestamptz`` or
``timestamp`` (naive = UTC).

De-duplication (orders): sub-windows are half-open, so the boundaries never duplicate a
row. What is left are rows that are *exactly* identical in all 17 columns (a table without
a key, a replayed CDC batch): each sub-window groups on the 17 text values in SQL
(``GROUP BY … count(*)``), delivers one copy and counts the others
(``duplicate_rows_removed``). Rows that share ``(order_id, updated_at)`` but differ
elsewhere are *not* collapsed here — which one is right is validation's decision, and
dropping one silently would break the raw = validated + rejected + duplicates invariant.
Rows whose window column is null belong to no day and are never extracted.

Rows come in a deterministic order (window column, then the values), so re-extracting an
unchanged day gives identical batches. There is no retry inside the source: a failed
statement (timeout, replica conflict, lost connection) fails the extraction with a clear
message, and the run is retried (the raw partition is only replaced once a whole
extraction succeeded).

Secrets: the DSN's password never appears in an error, a log line or the stats. Errors
name the host, port, database and user only; psycopg2's messages are redacted and the
original exception is not chained (its text could carry the DSN).
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql
from pydantic import Field

from orders_platform.sources.base import Increment, RawSource
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

__all__ = ["PostgresSource", "PostgresSourceError", "redact_dsn_secrets", "sub_windows"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
_TABLE_NAME = re.compile(rf"^(?:(?P<schema>{_IDENT})\.)?(?P<table>{_IDENT})$")
_TIMESTAMP_TYPES = ("timestamp with time zone", "timestamp without time zone")
_APPLICATION_NAME = "orders_platform"
_MAX_LISTED_SUB_WINDOWS = 96  # rows per sub-window are listed in the stats up to this many


class PostgresSourceError(RuntimeError):
    """An extraction failure with a message that is safe to log (no secrets)."""


# --------------------------------------------------------------------------- helpers


def redact_dsn_secrets(text: str, dsn: str | None = None) -> str:
    """`text` with every password removed: the DSN's own password (raw and as written),
    ``password=…`` pairs and the ``user:password@`` part of URIs."""
    out = text
    if dsn:
        for secret in _dsn_passwords(dsn):
            if secret:
                out = out.replace(secret, "***")
    out = re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", out)
    out = re.sub(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", r"\1***@", out)
    return out


def _dsn_passwords(dsn: str) -> list[str]:
    found: list[str] = []
    try:
        parsed = psycopg2.extensions.parse_dsn(dsn)
    except Exception:  # an invalid DSN: fall back to the textual patterns
        parsed = {}
    if parsed.get("password"):
        found.append(parsed["password"])
    m = re.search(r"://[^:/@\s]*:([^@\s]+)@", dsn)
    if m:
        found.append(m.group(1))
    m = re.search(r"(?i)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)
    if m:
        found.append(m.group(1))
    # longest first so a password that contains another is replaced whole
    return sorted({s for s in found if len(s) >= 1}, key=len, reverse=True)


def _describe_target(dsn: str) -> str:
    """ "host=… port=… dbname=… user=…" of the DSN (never the password)."""
    try:
        parsed = psycopg2.extensions.parse_dsn(dsn)
    except Exception:
        return "(unparseable ORDERS_PG_DSN)"
    keys = ("host", "hostaddr", "port", "dbname", "user")
    parts = [f"{key}={parsed[key]}" for key in keys if parsed.get(key)]
    return " ".join(parts) or "(libpq defaults)"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else "(no message)"


def _quote_table(name: str, setting: str) -> tuple[sql.Composable, str]:
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
class _Plan:
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


# --------------------------------------------------------------------------- resource


class PostgresSource(RawSource):
    """Raw orders and events from a PostgreSQL read replica (``ORDERS_SOURCE=postgres``).

    Suggested settings: ``ORDERS_PG_DSN`` (secret), ``ORDERS_PG_ORDERS_TABLE``,
    ``ORDERS_PG_EVENTS_TABLE``, ``ORDERS_PG_STATEMENT_TIMEOUT_SECONDS`` (300),
    ``ORDERS_PG_SUB_WINDOW_MINUTES`` (60), ``ORDERS_PG_OVERLAP_MINUTES`` (5),
    ``ORDERS_PG_BATCH_ROWS`` (50 000), ``ORDERS_PG_ALLOW_PRIMARY`` (false),
    ``ORDERS_PG_CONNECT_TIMEOUT_SECONDS`` (10).
    """

    dsn: str = Field(
        repr=False,
        description="libpq DSN or URI of the read replica (secret: pass EnvVar('ORDERS_PG_DSN')).",
    )
    orders_table: str = "public.orders"
    events_table: str = "public.user_events"
    statement_timeout_seconds: float = 300
    sub_window_minutes: int = 60
    overlap_minutes: int = 5
    batch_rows: int = 50_000
    allow_primary: bool = False
    connect_timeout_seconds: int = 10

    @property
    def name(self) -> str:
        return "postgres"

    # ------------------------------------------------------------------ public API

    def extract_orders(self, day: date) -> Iterator[pl.DataFrame]:
        self._check_knobs()
        windows = self._windows(day, self.overlap_minutes)
        yield from self._extract(
            "orders", self.orders_table, "ORDERS_PG_ORDERS_TABLE", ORDER_SOURCE_COLUMNS,
            "updated_at", windows, dedupe=True,
        )  # fmt: skip

    def extract_orders_increment(self, day: date, increment: Increment) -> Iterator[pl.DataFrame]:
        """The open day's orders in ``[watermark - overlap, now)``, in the same sub-windows
        (the overlap before the watermark counted as ``rows_in_overlap``)."""
        self._check_knobs()
        overlap = round(increment.overlap.total_seconds() / 60)
        windows = self._windows(day, overlap, start=increment.start, end=increment.until)
        yield from self._extract(
            "orders", self.orders_table, "ORDERS_PG_ORDERS_TABLE", ORDER_SOURCE_COLUMNS,
            "updated_at", windows, dedupe=True,
        )  # fmt: skip

    def extract_events(self, day: date) -> Iterator[pl.DataFrame]:
        self._check_knobs()
        windows = self._windows(day, 0)
        yield from self._extract(
            "events", self.events_table, "ORDERS_PG_EVENTS_TABLE", EVENT_SOURCE_COLUMNS,
            "event_timestamp", windows, dedupe=False,
        )  # fmt: skip

    @contextmanager
    def session(self) -> Iterator[psycopg2.extensions.connection]:
        """A configured read-only connection (statement_timeout, UTC, replica check), closed
        on exit. Extraction uses exactly this; tests use it to prove writes are refused."""
        with self._session() as (conn, _info):
            yield conn

    @contextmanager
    def _session(self) -> Iterator[tuple[psycopg2.extensions.connection, dict[str, Any]]]:
        conn = self._connect()
        try:
            info = self._configure(conn)
            yield conn, info
        finally:
            conn.close()

    # ------------------------------------------------------------------ internals

    def _windows(
        self,
        day: date,
        overlap_minutes: int,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[tuple[datetime, datetime, bool]]:
        """(lo, hi, in_overlap) sub-windows of [start - overlap, end) — by default the day,
        [day - overlap, next day); an intraday tick passes its watermark and now. The
        overlap is cut separately so rows_in_overlap is exact."""
        start = _day_start(day) if start is None else start
        end = _day_start(day) + timedelta(days=1) if end is None else end
        overlap = sub_windows(
            start - timedelta(minutes=overlap_minutes), start, self.sub_window_minutes
        )
        day_windows = sub_windows(start, end, self.sub_window_minutes)
        return [(lo, hi, True) for lo, hi in overlap] + [(lo, hi, False) for lo, hi in day_windows]

    def _check_knobs(self) -> None:
        problems = []
        if not (isinstance(self.dsn, str) and self.dsn.strip()):
            problems.append("ORDERS_PG_DSN is empty")
        timeout = self.statement_timeout_seconds
        if not (math.isfinite(timeout) and timeout > 0):
            problems.append(f"ORDERS_PG_STATEMENT_TIMEOUT_SECONDS must be > 0, got {timeout!r}")
        if not 1 <= self.sub_window_minutes <= 24 * 60:
            problems.append(
                f"ORDERS_PG_SUB_WINDOW_MINUTES must be 1..1440, got {self.sub_window_minutes!r}"
            )
        if not 0 <= self.overlap_minutes <= 24 * 60:
            problems.append(
                f"ORDERS_PG_OVERLAP_MINUTES must be 0..1440, got {self.overlap_minutes!r}"
            )
        if self.batch_rows < 1:
            problems.append(f"ORDERS_PG_BATCH_ROWS must be positive, got {self.batch_rows!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def _error(self, what: str, exc: BaseException | str) -> PostgresSourceError:
        detail = redact_dsn_secrets(_first_line(str(exc)), self.dsn)
        return PostgresSourceError(
            f"{what} (PostgreSQL source {_describe_target(self.dsn)}): {detail}"
        )

    def _connect(self) -> psycopg2.extensions.connection:
        try:
            psycopg2.extensions.parse_dsn(self.dsn)
        except Exception:
            # psycopg2's message quotes the DSN: never show it.
            raise PostgresSourceError(
                "ORDERS_PG_DSN is not a valid libpq connection string or postgresql:// URI"
            ) from None
        try:
            return psycopg2.connect(
                self.dsn,
                connect_timeout=max(1, int(self.connect_timeout_seconds)),
                application_name=_APPLICATION_NAME,
            )
        except psycopg2.Error as exc:
            raise self._error("could not connect", exc) from None

    def _configure(self, conn: psycopg2.extensions.connection) -> dict[str, Any]:
        timeout_ms = max(1, round(self.statement_timeout_seconds * 1000))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                cur.execute("SET statement_timeout = %s", (timeout_ms,))
                cur.execute("SET TimeZone = 'UTC'")
                cur.execute("SET DateStyle = 'ISO, YMD'")
                cur.execute("SET IntervalStyle = 'iso_8601'")
                cur.execute("SET extra_float_digits = 3")
                cur.execute("SHOW transaction_read_only")
                read_only = cur.fetchone()[0]
                cur.execute("SELECT pg_is_in_recovery(), current_setting('server_version')")
                in_recovery, version = cur.fetchone()
            conn.autocommit = False
            conn.set_session(readonly=True, autocommit=False)
        except psycopg2.Error as exc:
            raise self._error("could not prepare the read-only session", exc) from None
        if read_only != "on":  # pragma: no cover - defensive: the SET above makes it on
            raise PostgresSourceError("the source session is not read-only; refusing to read")
        if not in_recovery and not self.allow_primary:
            raise PostgresSourceError(
                f"the PostgreSQL source {_describe_target(self.dsn)} is a primary "
                "(pg_is_in_recovery() = false): point ORDERS_PG_DSN at a read replica, or set "
                "ORDERS_PG_ALLOW_PRIMARY=true to read from the primary anyway"
            )
        return {
            "server_role": "replica" if in_recovery else "primary",
            "server_version": version,
            "statement_timeout_ms": timeout_ms,
        }

    def _plan(
        self,
        conn: psycopg2.extensions.connection,
        kind: str,
        table: str,
        setting: str,
        columns: Sequence[str],
        window_column: str,
        dedupe: bool,
    ) -> _Plan:
        table_sql, table_text = _quote_table(table, setting)
        quoted_name = table_sql.as_string(conn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass(%s)::oid", (quoted_name,))
                oid = cur.fetchone()[0]
                if oid is None:
                    raise PostgresSourceError(
                        f"{setting}: table {table_text} does not exist or is not visible to the "
                        f"source user (PostgreSQL source {_describe_target(self.dsn)})"
                    )
                cur.execute(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                    (oid,),
                )
                types = dict(cur.fetchall())
            conn.commit()
        except psycopg2.Error as exc:
            raise self._error(f"could not inspect {table_text}", exc) from None
        window_type = types.get(window_column)
        if window_type not in _TIMESTAMP_TYPES:
            raise PostgresSourceError(
                f"{setting}: {table_text}.{window_column} must be a timestamptz or timestamp "
                f"column to window the day, got {window_type or 'no such column'}"
            )
        return _Plan(
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

    def _query(self, plan: _Plan) -> sql.Composable:
        selected = [
            (
                sql.SQL("{}::text").format(sql.Identifier(c))
                if c in plan.present
                else sql.SQL("NULL::text")
            )
            + sql.SQL(" AS {}").format(sql.Identifier(c))
            for c in plan.columns
        ]
        w = sql.Identifier(plan.window_column)
        window = sql.SQL("{w} >= %(lo)s AND {w} < %(hi)s").format(w=w)
        if plan.dedupe:
            positions = sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(plan.columns)))
            return sql.SQL(
                "SELECT {cols}, count(*) AS _copies FROM {table} WHERE {window} "
                "GROUP BY {positions} ORDER BY min({w}), {positions}"
            ).format(
                cols=sql.SQL(", ").join(selected),
                table=plan.table_sql,
                window=window,
                positions=positions,
                w=w,
            )
        return sql.SQL("SELECT {cols} FROM {table} WHERE {window} ORDER BY {w}").format(
            cols=sql.SQL(", ").join(selected),
            table=plan.table_sql,
            window=window,
            w=sql.Identifier(plan.window_column),
        )

    def _extract(
        self,
        kind: str,
        table: str,
        setting: str,
        columns: Sequence[str],
        window_column: str,
        windows: list[tuple[datetime, datetime, bool]],
        *,
        dedupe: bool,
    ) -> Iterator[pl.DataFrame]:
        _quote_table(table, setting)  # an invalid name fails before connecting
        self._record_stats()
        started = time.perf_counter()
        schema = {c: pl.String for c in columns}
        row_schema = {**schema, "_copies": pl.Int64} if dedupe else schema
        stats: dict[str, Any] = {
            "table": None,
            "window_column": window_column,
            "window_start": windows[0][0].isoformat() if windows else None,
            "window_end": windows[-1][1].isoformat() if windows else None,
            "overlap_minutes": self.overlap_minutes if kind == "orders" else 0,
            "sub_window_minutes": self.sub_window_minutes,
            "rows_extracted": 0,
            "rows_in_overlap": 0,
            "duplicate_rows_removed": 0,
            "sub_windows": 0,
            "statements": 0,
            "batches": 0,
            "max_sub_window_rows": 0,
            "rows_per_sub_window": [],
            "missing_columns": [],
        }
        yielded = False
        with self._session() as (conn, info):
            stats.update(info)
            plan = self._plan(conn, kind, table, setting, columns, window_column, dedupe)
            stats["table"] = plan.table_text
            stats["missing_columns"] = [c for c in columns if c not in plan.present]
            query = self._query(plan)
            for lo, hi, in_overlap in windows:
                params = {"lo": lo, "hi": hi}
                if plan.window_is_naive:
                    params = {k: v.astimezone(UTC).replace(tzinfo=None) for k, v in params.items()}
                window_rows = 0
                span = f"[{lo.isoformat()}, {hi.isoformat()})"
                cursor_name = f"orders_platform_{kind}_{uuid.uuid4().hex[:12]}"
                try:
                    cur = conn.cursor(name=cursor_name)
                    cur.itersize = self.batch_rows
                    cur.execute(query, params)
                    stats["statements"] += 1
                    while True:
                        rows = cur.fetchmany(self.batch_rows)
                        stats["statements"] += 1
                        if not rows:
                            break
                        frame = pl.DataFrame(rows, schema=row_schema, orient="row")
                        del rows
                        if dedupe:
                            copies = int(frame.get_column("_copies").sum())
                            stats["duplicate_rows_removed"] += copies - frame.height
                            frame = frame.drop("_copies")
                        window_rows += frame.height
                        stats["batches"] += 1
                        yielded = True
                        yield frame
                    cur.close()
                    conn.commit()
                except psycopg2.errors.QueryCanceled as exc:
                    with suppress(psycopg2.Error):
                        conn.rollback()
                    raise PostgresSourceError(
                        f"reading {plan.table_text} for {span} was cancelled after the "
                        f"statement_timeout of {self.statement_timeout_seconds:g} s "
                        "(ORDERS_PG_STATEMENT_TIMEOUT_SECONDS); use smaller sub-windows "
                        "(ORDERS_PG_SUB_WINDOW_MINUTES), an index on "
                        f"{window_column}, or a longer timeout (PostgreSQL source "
                        f"{_describe_target(self.dsn)}): "
                        f"{redact_dsn_secrets(_first_line(str(exc)), self.dsn)}"
                    ) from None
                except psycopg2.Error as exc:
                    with suppress(psycopg2.Error):
                        conn.rollback()
                    what = f"reading {plan.table_text} for {span} failed"
                    if getattr(exc, "pgcode", None) == "40001":  # conflict with recovery
                        what += (
                            " (the replica cancelled the read to replay WAL: use smaller "
                            "sub-windows, or raise max_standby_streaming_delay / enable "
                            "hot_standby_feedback on the replica)"
                        )
                    raise self._error(what, exc) from None
                stats["sub_windows"] += 1
                stats["rows_extracted"] += window_rows
                if in_overlap:
                    stats["rows_in_overlap"] += window_rows
                stats["max_sub_window_rows"] = max(stats["max_sub_window_rows"], window_rows)
                if len(windows) <= _MAX_LISTED_SUB_WINDOWS:
                    stats["rows_per_sub_window"].append(window_rows)
                stats["seconds"] = round(time.perf_counter() - started, 3)
                self._record_stats(**stats)
        stats["seconds"] = round(time.perf_counter() - started, 3)
        self._record_stats(**stats)
        if not yielded:
            yield pl.DataFrame(schema=schema)


def _day_start(day: date | datetime) -> datetime:
    if isinstance(day, datetime):
        day = day.date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
