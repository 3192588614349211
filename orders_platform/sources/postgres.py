"""The PostgreSQL source: one UTC day of orders / events from a read replica (SPEC §9).

Operating rules, all enforced here (session rules in `pg_session`, statements in
`pg_plan`, the COPY reader in `pg_copy`):

* **Read-only.** Every session runs ``SET SESSION CHARACTERISTICS AS TRANSACTION READ
  ONLY`` and psycopg2 ``set_session(readonly=True)`` (``BEGIN READ ONLY``), and checks
  ``SHOW transaction_read_only`` = ``on`` before the first read. The source never writes.
* **Replica only.** ``SELECT pg_is_in_recovery()`` false means a primary: refused unless
  ``allow_primary`` (``ORDERS_PG_ALLOW_PRIMARY=true``).
* **statement_timeout** per session (``statement_timeout_seconds``); a statement that
  hits it fails with a message naming the table, the sub-window and the knobs to turn.
  One sub-window is one statement, so the timeout bounds a sub-window's whole read.
* **Sub-windows.** A window is read in half-open sub-windows of ``sub_window_minutes``,
  each one ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` in its own short read-only
  transaction (a replica never holds one snapshot for the whole day), so a backlog never
  becomes one huge statement. The COPY stream is cut into batches of ``batch_rows`` rows,
  each parsed at once into a Polars frame of strings: memory is bounded by a few batches,
  not by the sub-window or the day.
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
``DateStyle=ISO``), free text untouched (commas, quotes, newlines, tabs, backslashes);
NULL stays null and the empty string stays empty. A source column missing from the table
is delivered as null and named in the stats (``missing_columns``); the window column
(``updated_at`` / ``event_timestamp``) must exist and be ``timestamptz`` or
``timestamp`` (naive = UTC).

De-duplication (orders): sub-windows are half-open, so the boundaries never duplicate a
row. What is left are rows that are *exactly* identical in all 17 columns (a table without
a key, a replayed CDC batch): rows come sorted by the window column then every value, so
such copies are adjacent; one is delivered and the others counted
(``duplicate_rows_removed``). Rows that share ``(order_id, updated_at)`` but differ
elsewhere are *not* collapsed here — which one is right is validation's decision, and
dropping one silently would break the raw = validated + rejected + duplicates invariant.
Rows whose window column is null belong to no day and are never extracted.

Rows come in a deterministic order (window column, then the values in byte order), so
re-extracting an unchanged day gives identical batches. There is no retry inside the
source: a failed statement (timeout, replica conflict, lost connection) fails the
extraction with a clear message, and the run is retried (the raw partition is only
replaced once a whole extraction succeeded).

Secrets: the DSN's password never appears in an error, a log line or the stats. Errors
name the host, port, database and user only; psycopg2's messages are redacted and the
original exception is not chained (its text could carry the DSN).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import psycopg2
import psycopg2.errors
import psycopg2.extensions
from pydantic import Field

from orders_platform.sources.base import RawSource
from orders_platform.sources.pg_copy import copy_batches, drop_adjacent_duplicates
from orders_platform.sources.pg_plan import (
    Plan,
    copy_statement,
    inspect_table,
    quote_table,
    sub_windows,
)
from orders_platform.sources.pg_session import (
    PostgresSourceError,
    configure,
    connect,
    describe_target,
    first_line,
    redact_dsn_secrets,
    source_error,
)
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

__all__ = ["PostgresSource", "PostgresSourceError", "redact_dsn_secrets", "sub_windows"]

_MAX_LISTED_SUB_WINDOWS = 96  # rows per sub-window are listed in the stats up to this many


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
        conn = connect(self.dsn, self.connect_timeout_seconds)
        try:
            info = configure(conn, self.dsn, self.statement_timeout_seconds, self.allow_primary)
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
        return source_error(self.dsn, what, exc)

    def _plan(
        self,
        conn: psycopg2.extensions.connection,
        kind: str,
        table: str,
        setting: str,
        columns: Sequence[str],
        window_column: str,
        dedupe: bool,
    ) -> Plan:
        return inspect_table(conn, self.dsn, kind, table, setting, columns, window_column, dedupe)

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
        """The rows of `table` whose `window_column` falls in the given (lo, hi, in_overlap)
        sub-windows, one COPY each, as frames of at most `batch_rows` string rows."""
        quote_table(table, setting)  # an invalid name fails before connecting
        self._record_stats()
        started = time.perf_counter()
        schema = {c: pl.String for c in columns}
        stats: dict[str, Any] = {
            "table": None,
            "window_column": window_column,
            "window_start": windows[0][0].isoformat() if windows else None,
            "window_end": windows[-1][1].isoformat() if windows else None,
            "overlap_minutes": self.overlap_minutes if kind == "orders" else 0,
            "sub_window_minutes": self.sub_window_minutes,
            "read_with": "COPY TO STDOUT (FORMAT csv)",
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
            for lo, hi, in_overlap in windows:
                window_rows = 0
                previous_row = None  # exact copies never span sub-windows (same window value)
                span = f"[{lo.isoformat()}, {hi.isoformat()})"
                statement = copy_statement(plan, lo, hi, conn)
                try:
                    stats["statements"] += 1
                    # closed before the connection is touched again, however this exits
                    with closing(
                        copy_batches(conn, statement, plan.columns, self.batch_rows)
                    ) as batches:
                        for frame in batches:
                            if dedupe:
                                frame, removed = drop_adjacent_duplicates(frame, previous_row)
                                stats["duplicate_rows_removed"] += removed
                                if frame.height:
                                    previous_row = frame.row(-1)
                            if not frame.height:
                                continue
                            window_rows += frame.height
                            stats["batches"] += 1
                            yielded = True
                            yield frame
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
                        f"{describe_target(self.dsn)}): "
                        f"{redact_dsn_secrets(first_line(str(exc)), self.dsn)}"
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
                except pl.exceptions.ComputeError as exc:
                    with suppress(psycopg2.Error):
                        conn.rollback()
                    raise self._error(
                        f"reading {plan.table_text} for {span}: the COPY output could not be "
                        "parsed as UTF-8 CSV",
                        exc,
                    ) from None
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
