"""DuckDB implementation of the warehouse (the embedded default, SPEC §6).

Connections go through `dagster_duckdb.DuckDBResource`, constructed internally from `path`
(the warehouse's only required setting, ORDERS_DUCKDB_PATH): a nested resource would make
users configure the same file twice and would leak a DuckDB-only sub-resource into the
engine-neutral `Warehouse` config that Snowflake also implements.

Every operation opens a short connection, does its work in one transaction and closes it.
DuckDB admits one writer *process* per file (the first connection takes an OS file lock,
even for reads), so parallel runs (one process per partition) contend for the file:

- `DuckDBResource.get_connection` already retries `duckdb.connect` on IOException 10 times
  with un-jittered exponential sleeps (0.1 s, 0.2 s, … 51.2 s; ~102 s in all). That does
  survive ~10 s of contention, but coarsely (a writer that misses at 6.3 s next tries at
  12.7 s, then 25.5 s) and it gives up for good after ~102 s.
- so the whole unit of work (connect + transaction) is additionally wrapped in tenacity:
  lock errors that escape the inner backoff and write-write conflicts (two threads of one
  process sharing the database instance) are retried with jittered backoff until
  `lock_timeout_seconds` (default 120 s) have passed; then a WarehouseLockTimeout names the
  file. The transaction always rolls back before a retry, so retrying is safe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import Field
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from orders_platform.storage.warehouse.base import (
    ORDERS_UPSERT,
    SESSIONS_PARTITION,
    SESSIONS_TABLE,
    SILVER_SCHEMA,
    TableNotFoundError,
    UpsertStats,
    Warehouse,
    conform_orders_read,
    prepare_orders_batch,
    prepare_sessions_batch,
    split_table_name,
    utc_timestamps,
)
from orders_platform.storage.warehouse.sql import (
    DUCKDB,
    column_types_sql,
    create_schema_sql,
    create_table_sql,
    date_in_list,
    delete_partition_sql,
    insert_select_sql,
    qualified,
)
from orders_platform.transforms.schema import SILVER_ORDERS_SCHEMA

log = logging.getLogger(__name__)

T = TypeVar("T")

_BATCH_VIEW = "_silver_batch"
_IDS_VIEW = "_order_ids_filter"


_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: str) -> threading.Lock:
    """One lock per database file and process.

    Threads of one process share a DuckDB database instance; connecting to the same file
    from several threads at once races inside DuckDB ("Unique file handle conflict",
    missing python_arrow_scan) and concurrent writers only conflict anyway, so units of work
    on one file are serialised in-process (processes are serialised by DuckDB's file lock).
    """
    key = os.path.realpath(path)
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


class WarehouseLockTimeout(RuntimeError):
    """The DuckDB file stayed locked by other processes for longer than the timeout."""


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, duckdb.IOException):
        return "lock" in str(exc).lower()
    if isinstance(exc, duckdb.TransactionException):
        return "conflict" in str(exc).lower()
    return False


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "DuckDB warehouse busy (attempt %d, %.1fs elapsed): %s; retrying",
        state.attempt_number,
        state.seconds_since_start or 0.0,
        str(exc).splitlines()[0] if exc else "",
    )


class DuckDBWarehouse(Warehouse):
    """``silver.*`` tables in one DuckDB file (schema ``silver``)."""

    path: str = Field(description="DuckDB database file; parent directories are created.")
    lock_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description=(
            "How long a reader or writer keeps retrying while other processes hold the "
            "DuckDB file lock (or a write-write conflict repeats) before failing."
        ),
    )

    @property
    def kind(self) -> str:
        return "duckdb"

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.path.strip() in ("", ":memory:") or self.path.startswith(":memory:"):
            raise ValueError(
                "DuckDBWarehouse needs a database file path (an in-memory database would "
                "not outlive one connection)"
            )
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with DuckDBResource(database=self.path).get_connection() as con:
            # DuckDBResource closes only on a clean exit: close here too, so that an error
            # never keeps the file lock alive while the traceback is handled.
            try:
                _sql(con, "SET TimeZone = 'UTC'")
                yield con
            finally:
                con.close()

    def _run(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` on a fresh connection, retrying lock errors and write conflicts."""

        def attempt() -> T:
            with _process_lock(self.path), self._connect() as con:
                return work(con)

        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_delay(self.lock_timeout_seconds),
            wait=wait_random_exponential(multiplier=0.1, max=2.0),
            before_sleep=_log_retry,
        )
        started = time.monotonic()
        try:
            return retrying(attempt)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise WarehouseLockTimeout(
                f"DuckDB warehouse {self.path} still busy after "
                f"{time.monotonic() - started:.0f}s (lock_timeout_seconds="
                f"{self.lock_timeout_seconds:g}): {last}"
            ) from last

    @staticmethod
    @contextmanager
    def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        con.begin()
        try:
            yield
        except BaseException:
            # A failed COMMIT leaves no transaction to roll back: keep the original error.
            with suppress(duckdb.Error):
                con.rollback()
            raise
        con.commit()

    # -- orders --------------------------------------------------------------------------

    def upsert_orders(self, df: pl.DataFrame) -> UpsertStats:
        batch = prepare_orders_batch(df)
        dates = batch.get_column("order_date").unique().to_list()
        spec = ORDERS_UPSERT
        target = qualified(SILVER_SCHEMA, spec.table)

        def work(con: duckdb.DuckDBPyConnection) -> UpsertStats:
            with self._transaction(con):
                _sql(con, create_schema_sql(SILVER_SCHEMA))
                _sql(con, create_table_sql(spec.schema, spec.table, SILVER_ORDERS_SCHEMA, DUCKDB))
                if batch.is_empty():
                    return UpsertStats(rows_in=0, inserted=0, updated=0, unchanged=0)
                # A key can only match a stored row of the same order_date, so rows of
                # dates the table does not hold yet (typically the new day: most of a
                # batch) are plain inserts; only the rest (late updates) needs the MERGE.
                present = {
                    row[0]
                    for row in _sql(
                        con,
                        f"SELECT DISTINCT order_date FROM {target} "
                        f"WHERE order_date IN {date_in_list(dates)}",
                    )
                }
                in_present = pl.col("order_date").is_in(list(present))
                fresh, existing = batch.filter(~in_present), batch.filter(in_present)
                merged = UpsertStats(rows_in=0, inserted=0, updated=0, unchanged=0)
                if fresh.height:
                    con.register(_BATCH_VIEW, fresh.to_arrow())
                    try:
                        _sql(
                            con,
                            insert_select_sql(
                                SILVER_SCHEMA, spec.table, _BATCH_VIEW, list(SILVER_ORDERS_SCHEMA)
                            ),
                        )
                    finally:
                        _unregister(con, _BATCH_VIEW)
                if existing.height:
                    merged = self._merge(con, existing, sorted(present))
                return UpsertStats(
                    rows_in=batch.height,
                    inserted=fresh.height + merged.inserted,
                    updated=merged.updated,
                    unchanged=merged.unchanged,
                )

        return self._run(work)

    @staticmethod
    def _merge(con: duckdb.DuckDBPyConnection, batch: pl.DataFrame, dates: list) -> UpsertStats:
        spec = ORDERS_UPSERT
        con.register(_BATCH_VIEW, batch.to_arrow())
        try:
            (row,) = _sql(con, spec.stats_sql(_BATCH_VIEW, dates))
            stats = UpsertStats(*(int(v) for v in row))
            merged = _sql(con, spec.merge_sql(_BATCH_VIEW, dates))
        finally:
            _unregister(con, _BATCH_VIEW)
        # DuckDB's MERGE reports rows inserted + updated: cross-check the stats.
        if merged and int(merged[0][0]) != stats.inserted + stats.updated:
            raise RuntimeError(
                f"MERGE changed {merged[0][0]} rows, expected {stats.inserted} inserted "
                f"+ {stats.updated} updated"
            )
        return stats

    def read_orders(
        self,
        *,
        order_ids: Sequence[int] | None = None,
        order_dates: Sequence[date] | None = None,
    ) -> pl.DataFrame:
        empty = pl.DataFrame(schema=SILVER_ORDERS_SCHEMA)
        if (order_ids is not None and len(order_ids) == 0) or (
            order_dates is not None and len(order_dates) == 0
        ):
            return empty
        target = qualified(SILVER_SCHEMA, ORDERS_UPSERT.table)
        where: list[str] = []
        ids = pl.DataFrame(
            {"order_id": [int(i) for i in order_ids or ()]}, schema={"order_id": pl.Int64()}
        )
        if order_dates is not None:
            where.append(f"order_date IN {date_in_list(order_dates)}")
        if order_ids is not None:
            where.append(f"order_id IN (SELECT order_id FROM {_IDS_VIEW})")
        query = f"SELECT * FROM {target}"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY order_id"

        def work(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
            if not _table_exists(con, SILVER_SCHEMA, ORDERS_UPSERT.table):
                return None
            if order_ids is None:
                return con.sql(query).pl()
            con.register(_IDS_VIEW, ids.to_arrow())
            try:
                return con.sql(query).pl()
            finally:
                _unregister(con, _IDS_VIEW)

        out = self._run(work)
        return empty if out is None else conform_orders_read(out)

    # -- sessions ------------------------------------------------------------------------

    def replace_sessions(self, df: pl.DataFrame, day: date) -> int:
        batch = prepare_sessions_batch(df, day)
        arrow = batch.to_arrow()

        def work(con: duckdb.DuckDBPyConnection) -> int:
            with self._transaction(con):
                if not _table_exists(con, SILVER_SCHEMA, SESSIONS_TABLE):
                    # The sessions schema is whatever the first batch carries.
                    _sql(con, create_schema_sql(SILVER_SCHEMA))
                    _sql(con, create_table_sql(SILVER_SCHEMA, SESSIONS_TABLE, batch.schema, DUCKDB))
                _sql(
                    con,
                    delete_partition_sql(SILVER_SCHEMA, SESSIONS_TABLE, SESSIONS_PARTITION, day),
                )
                if batch.is_empty():
                    return 0
                con.register(_BATCH_VIEW, arrow)
                try:
                    _sql(
                        con,
                        insert_select_sql(
                            SILVER_SCHEMA, SESSIONS_TABLE, _BATCH_VIEW, batch.columns
                        ),
                    )
                finally:
                    _unregister(con, _BATCH_VIEW)
                return batch.height

        return self._run(work)

    # -- generic reads -------------------------------------------------------------------

    def read_table(self, name: str) -> pl.DataFrame:
        schema, table = split_table_name(name)

        def work(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
            if not _table_exists(con, schema, table):
                raise TableNotFoundError(f"table {schema}.{table} does not exist")
            return con.sql(f"SELECT * FROM {qualified(schema, table)}").pl()

        return utc_timestamps(self._run(work))

    def table_exists(self, name: str) -> bool:
        schema, table = split_table_name(name)
        return self._run(lambda con: _table_exists(con, schema, table))

    def column_types(self, name: str) -> dict[str, str]:
        schema, table = split_table_name(name)
        rows = self._run(lambda con: _sql(con, column_types_sql(schema, table)))
        if not rows:
            raise TableNotFoundError(f"table {schema}.{table} does not exist")
        return {str(column): str(dtype) for column, dtype in rows}


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    rows = _sql(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    )
    return bool(rows[0][0])


def _sql(
    con: duckdb.DuckDBPyConnection, query: str, params: list[object] | None = None
) -> list[tuple]:
    """Execute and drain the result (DuckDB 2 refuses new work while a result is pending)."""
    return con.execute(query, params).fetchall()


def _unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    # In an aborted transaction unregister fails too; that must not mask the real error.
    with suppress(duckdb.Error):
        con.unregister(name)
