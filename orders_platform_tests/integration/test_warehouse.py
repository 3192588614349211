"""The warehouse contract (SPEC §4 upsert semantics, §8 tables), run against every engine.

The shared test bodies only use the engine-neutral `Warehouse` API and run once per kind in
WAREHOUSE_KINDS through the `make_warehouse` fixture:

- ``duckdb``: a DuckDB file in tmp_path;
- ``snowflake``: `SnowflakeWarehouse` with the real snowflake-connector-python, talking HTTP to
  fakesnow's server started in-process for the session (127.0.0.1, free port); every warehouse
  gets a fresh database, so tests never see each other's tables. The writes take the batched
  INSERT path (fakesnow's server cannot run write_pandas); `test_snowflake_bulk_load_*` runs
  the Parquet PUT + COPY path with bulk_load_min_rows=1. Two fakesnow 0.12.1 bugs are patched
  for the session by `fakesnow_server` (in integration/conftest.py, see there).

Tests about one engine itself (EXPLAIN, DuckDB's single-writer file lock, Snowflake's lazy
imports and password redaction) carry the engine name in their names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orders_platform.storage.warehouse.base import (
    ORDERS_UPSERT,
    TableNotFoundError,
    UpsertStats,
    Warehouse,
)
from orders_platform.storage.warehouse.duckdb import DuckDBWarehouse, WarehouseLockTimeout
from orders_platform.storage.warehouse.snowflake import (
    SnowflakeWarehouse,
    SnowflakeWarehouseError,
)
from orders_platform.transforms.schema import SILVER_ORDERS_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]

WAREHOUSE_KINDS = ["duckdb", "snowflake"]

EXPECTED_COLUMN_TYPES: dict[str, dict[str, str]] = {
    "duckdb": {
        "order_id": "BIGINT",
        "order_amount": "DECIMAL(12,2)",
        "total_value": "DECIMAL(12,2)",
        "created_at": "TIMESTAMP WITH TIME ZONE",
        "updated_at": "TIMESTAMP WITH TIME ZONE",
        "ingested_at": "TIMESTAMP WITH TIME ZONE",
        "order_date": "DATE",
        "order_hour": "INTEGER",
        "delivery_minutes": "DOUBLE",
        "has_promo": "BOOLEAN",
        "status": "VARCHAR",
    },
    # information_schema.columns.data_type as Snowflake reports it (INTEGER and BIGINT are
    # NUMBER(38,0), VARCHAR is TEXT), with NUMBER's precision and scale appended.
    "snowflake": {
        "order_id": "NUMBER(38,0)",
        "order_amount": "NUMBER(12,2)",
        "total_value": "NUMBER(12,2)",
        "created_at": "TIMESTAMP_TZ",
        "updated_at": "TIMESTAMP_TZ",
        "ingested_at": "TIMESTAMP_TZ",
        "order_date": "DATE",
        "order_hour": "NUMBER(38,0)",
        "delivery_minutes": "FLOAT",
        "has_promo": "BOOLEAN",
        "status": "TEXT",
    },
}

WarehouseFactory = Callable[[str], Warehouse]

pytestmark = pytest.mark.filterwarnings(
    # fakesnow's server, not our code: it copies DuckDB results to Arrow for the connector.
    "ignore:Arrow output on a DB-API result:UserWarning"
)


def snowflake_warehouse(server: dict[str, Any], name: str, **overrides: Any) -> SnowflakeWarehouse:
    """A SnowflakeWarehouse on its own, fresh database of the fakesnow server."""
    settings: dict[str, Any] = {
        "account": server["account"],
        "user": server["user"],
        "password": server["password"],
        "database": f"{name}_{uuid.uuid4().hex[:12]}",
        "schema_name": "staging",
        "host": server["host"],
        "port": server["port"],
        "protocol": server["protocol"],
        "login_timeout": 20,
        "network_timeout": 20,
    }
    return SnowflakeWarehouse(**{**settings, **overrides})


@pytest.fixture(params=WAREHOUSE_KINDS)
def make_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> WarehouseFactory:
    """Factory of empty, independent warehouses of one kind (name -> warehouse)."""

    def make(name: str = "main") -> Warehouse:
        if request.param == "duckdb":
            return DuckDBWarehouse(path=str(tmp_path / name / "warehouse.duckdb"))
        if request.param == "snowflake":
            return snowflake_warehouse(request.getfixturevalue("fakesnow_server"), name)
        raise AssertionError(f"unknown warehouse kind {request.param}")

    return make


@pytest.fixture
def warehouse(make_warehouse: WarehouseFactory) -> Warehouse:
    return make_warehouse("main")


# -- hand-built silver rows ------------------------------------------------------------------


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def order(
    order_id: int,
    *,
    created: str = "2026-03-17T10:15:00",
    updated: str | None = None,
    status: str = "placed",
    amount: str = "1174.55",
    fee: str = "40.00",
    discount: str = "0.00",
    run_id: str = "run-a",
    ingested: str | None = None,
) -> dict[str, object]:
    created_at = ts(created)
    updated_at = ts(updated) if updated else created_at
    delivered_at = updated_at if status == "delivered" else None
    order_amount = Decimal(amount)
    return {
        "order_id": order_id,
        "customer_id": 1000 + order_id,
        "store_id": 7,
        "restaurant_id": 70 + order_id % 5,
        "order_amount": order_amount,
        "delivery_fee": Decimal(fee),
        "discount_amount": Decimal(discount),
        "status": status,
        "payment_method": "upi",
        "payment_status": "paid",
        "created_at": created_at,
        "updated_at": updated_at,
        "delivered_at": delivered_at,
        "cancelled_at": None,
        "cancellation_reason": None,
        "promo_code": None,
        "notes": None,
        "_source": "demo",
        "_run_id": run_id,
        "total_value": order_amount + Decimal(fee) - Decimal(discount),
        "order_tier": "premium"
        if order_amount >= 2000
        else "standard"
        if order_amount >= 500
        else "economy",
        "order_date": created_at.date(),
        "order_hour": created_at.hour,
        "order_month": created_at.strftime("%Y-%m"),
        "delivery_minutes": round((delivered_at - created_at).total_seconds() / 60, 1)
        if delivered_at
        else None,
        "cancellation_type": None,
        "has_promo": False,
        "ingested_at": ts(ingested) if ingested else updated_at + timedelta(hours=1),
    }


def frame(*rows: dict[str, object]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=SILVER_ORDERS_SCHEMA)


def table(wh: Warehouse) -> pl.DataFrame:
    return wh.read_orders().sort("order_id")


# -- schema and types ------------------------------------------------------------------------


def test_table_created_with_exact_types(warehouse: Warehouse) -> None:
    assert not warehouse.table_exists("silver.orders")
    warehouse.upsert_orders(frame(order(1)))
    assert warehouse.table_exists("orders")

    types = warehouse.column_types("silver.orders")
    assert list(types) == list(SILVER_ORDERS_SCHEMA)
    expected = EXPECTED_COLUMN_TYPES[warehouse.kind]
    assert {c: types[c] for c in expected} == expected


def test_read_back_is_exact_decimal_and_utc(warehouse: Warehouse) -> None:
    warehouse.upsert_orders(frame(order(1, amount="1174.55", fee="40.10", discount="0.05")))
    out = warehouse.read_orders()

    assert out.schema == pl.Schema(SILVER_ORDERS_SCHEMA)
    row = out.row(0, named=True)
    assert row["order_amount"] == Decimal("1174.55")
    assert row["total_value"] == Decimal("1214.60")
    assert row["created_at"] == datetime(2026, 3, 17, 10, 15, tzinfo=UTC)
    assert row["created_at"].utcoffset() == timedelta(0)
    assert row["order_date"] == date(2026, 3, 17)

    full = warehouse.read_table("orders")
    assert full.schema["updated_at"] == pl.Datetime("us", "UTC")
    assert full.schema["order_amount"] == pl.Decimal(12, 2)


def test_read_orders_filters(warehouse: Warehouse) -> None:
    warehouse.upsert_orders(
        frame(order(1), order(2), order(3, created="2026-03-18T01:00:00"), order(4))
    )
    assert warehouse.read_orders(order_ids=[3, 1]).get_column("order_id").to_list() == [1, 3]
    by_day = warehouse.read_orders(order_dates=[date(2026, 3, 18)])
    assert by_day.get_column("order_id").to_list() == [3]
    both = warehouse.read_orders(order_ids=[1, 3], order_dates=[date(2026, 3, 17)])
    assert both.get_column("order_id").to_list() == [1]
    assert warehouse.read_orders(order_ids=[]).is_empty()


def test_read_orders_before_first_upsert_is_empty(warehouse: Warehouse) -> None:
    out = warehouse.read_orders()
    assert out.is_empty()
    assert out.schema == pl.Schema(SILVER_ORDERS_SCHEMA)


def test_missing_table_lookups(warehouse: Warehouse) -> None:
    assert not warehouse.table_exists("sessions")
    with pytest.raises(TableNotFoundError, match="silver.sessions"):
        warehouse.read_table("sessions")
    with pytest.raises(TableNotFoundError, match="silver.orders"):
        warehouse.column_types("orders")


# -- upsert semantics ------------------------------------------------------------------------


def test_first_upsert_inserts_all(warehouse: Warehouse) -> None:
    batch = frame(order(1), order(2), order(3, created="2026-03-16T23:59:59"))
    stats = warehouse.upsert_orders(batch)

    assert stats == UpsertStats(rows_in=3, inserted=3, updated=0, unchanged=0)
    assert_frame_equal(table(warehouse), batch.sort("order_id"))


def test_same_batch_twice_is_idempotent(warehouse: Warehouse) -> None:
    batch = frame(order(1), order(2, status="delivered", updated="2026-03-17T11:00:00"))
    warehouse.upsert_orders(batch)
    first = table(warehouse)

    # A re-materialization stamps a new ingested_at: nothing is newer, so nothing changes.
    rerun = batch.with_columns(pl.lit(ts("2026-04-01T00:00:00")).alias("ingested_at"))
    assert warehouse.upsert_orders(rerun) == UpsertStats(2, 0, 0, 2)
    assert warehouse.upsert_orders(batch) == UpsertStats(2, 0, 0, 2)
    assert_frame_equal(table(warehouse), first)


def test_batches_in_any_order_give_the_same_table(make_warehouse: WarehouseFactory) -> None:
    day1 = frame(
        order(1, updated="2026-03-17T10:20:00", status="confirmed"),
        order(2, updated="2026-03-17T10:30:00", status="placed"),
        order(3, updated="2026-03-17T23:00:00", status="delivered"),
    )
    day2 = frame(
        order(1, updated="2026-03-18T00:10:00", status="delivered", run_id="run-b"),
        order(2, updated="2026-03-18T00:05:00", status="cancelled", run_id="run-b"),
        order(4, created="2026-03-18T08:00:00", run_id="run-b"),
    )
    a_then_b, b_then_a = make_warehouse("ab"), make_warehouse("ba")
    assert a_then_b.upsert_orders(day1) == UpsertStats(3, 3, 0, 0)
    assert a_then_b.upsert_orders(day2) == UpsertStats(3, 1, 2, 0)
    assert b_then_a.upsert_orders(day2) == UpsertStats(3, 3, 0, 0)
    assert b_then_a.upsert_orders(day1) == UpsertStats(3, 1, 0, 2)

    assert_frame_equal(table(a_then_b), table(b_then_a))
    final = table(a_then_b)
    assert final.get_column("order_id").to_list() == [1, 2, 3, 4]
    assert final.get_column("status").to_list() == ["delivered", "cancelled", "delivered", "placed"]


def test_older_batch_after_newer_does_not_regress(warehouse: Warehouse) -> None:
    newer = frame(order(1, updated="2026-03-17T12:00:00", status="delivered", run_id="new"))
    older = frame(order(1, updated="2026-03-17T10:30:00", status="preparing", run_id="old"))
    warehouse.upsert_orders(newer)

    assert warehouse.upsert_orders(older) == UpsertStats(1, 0, 0, 1)
    row = table(warehouse).row(0, named=True)
    assert row["status"] == "delivered"
    assert row["updated_at"] == ts("2026-03-17T12:00:00")
    assert row["_run_id"] == "new"


def test_equal_updated_at_does_not_replace(warehouse: Warehouse) -> None:
    warehouse.upsert_orders(frame(order(1, updated="2026-03-17T11:00:00", status="confirmed")))
    same_time = frame(
        order(1, updated="2026-03-17T11:00:00", status="preparing", ingested="2026-03-20T00:00:00")
    )
    assert warehouse.upsert_orders(same_time) == UpsertStats(1, 0, 0, 1)
    assert table(warehouse).get_column("status").to_list() == ["confirmed"]


def test_newer_row_replaces_every_column_including_ingested_at(warehouse: Warehouse) -> None:
    warehouse.upsert_orders(frame(order(1, updated="2026-03-17T10:20:00")))
    newer = frame(
        order(
            1,
            updated="2026-03-17T11:40:00",
            status="delivered",
            amount="2500.00",
            ingested="2026-03-18T02:00:00",
            run_id="run-2",
        )
    )
    assert warehouse.upsert_orders(newer) == UpsertStats(1, 0, 1, 0)
    assert_frame_equal(table(warehouse), newer)


def test_late_update_to_an_old_order_updates_in_place(warehouse: Warehouse) -> None:
    old_day = "2026-03-07T09:00:00"  # 10 days before the batch that updates it
    warehouse.upsert_orders(frame(order(1, created=old_day), order(2, created=old_day)))
    warehouse.upsert_orders(frame(order(3, created="2026-03-16T12:00:00")))

    late = frame(
        order(1, created=old_day, updated="2026-03-17T08:00:00", status="cancelled"),
        order(4, created="2026-03-17T07:00:00"),
    )
    assert warehouse.upsert_orders(late) == UpsertStats(2, 1, 1, 0)

    out = table(warehouse)
    assert out.get_column("order_id").to_list() == [1, 2, 3, 4]  # no duplicate order 1
    row = out.row(0, named=True)
    assert (row["status"], row["order_date"]) == ("cancelled", date(2026, 3, 7))
    assert row["updated_at"] == ts("2026-03-17T08:00:00")


def test_duplicate_order_ids_in_batch_raise(warehouse: Warehouse) -> None:
    warehouse.upsert_orders(frame(order(1)))
    before = table(warehouse)
    dup = frame(order(1, updated="2026-03-17T12:00:00"), order(1, updated="2026-03-17T13:00:00"))
    with pytest.raises(ValueError, match="order_id must be unique"):
        warehouse.upsert_orders(dup)
    assert_frame_equal(table(warehouse), before)


def test_batch_with_wrong_columns_raises(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="missing=\\['ingested_at'\\]"):
        warehouse.upsert_orders(frame(order(1)).drop("ingested_at"))
    float_money = frame(order(1)).with_columns(pl.col("order_amount").cast(pl.Float64))
    with pytest.raises(ValueError, match="order_amount"):
        warehouse.upsert_orders(float_money)


def test_empty_batch_creates_table_and_changes_nothing(warehouse: Warehouse) -> None:
    assert warehouse.upsert_orders(frame()) == UpsertStats(0, 0, 0, 0)
    assert warehouse.table_exists("orders")
    assert warehouse.read_orders().is_empty()


def test_concurrent_upserts_from_threads(warehouse: Warehouse) -> None:
    batches = [
        frame(*(order(i * 100 + j, created=f"2026-03-1{i}T10:00:00") for j in range(50)))
        for i in range(1, 5)
    ]
    errors: list[BaseException] = []

    def run(batch: pl.DataFrame) -> None:
        try:
            warehouse.upsert_orders(batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert table(warehouse).height == 200


# -- the MERGE never scans the whole target ---------------------------------------------------


def test_merge_sql_restricts_target_to_batch_dates() -> None:
    dates = [date(2026, 3, 17), date(2026, 3, 7), date(2026, 3, 17)]
    merge = ORDERS_UPSERT.merge_sql("_batch", dates)
    assert (
        "ON t.order_id = s.order_id AND t.order_date = s.order_date "
        "AND t.order_date IN (DATE '2026-03-07', DATE '2026-03-17')"
    ) in merge
    assert "WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE" in merge
    stats = ORDERS_UPSERT.stats_sql("_batch", dates)
    assert "WHERE order_date IN (DATE '2026-03-07', DATE '2026-03-17')" in stats


def test_duckdb_merge_plan_filters_target_scan(tmp_path: Path) -> None:
    """DuckDB pushes the literal order_date list into the scan of silver.orders (zone-map
    pruning), rather than reading the whole target."""
    wh = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"))
    history = frame(
        *(order(i, created=f"2026-02-{1 + i % 28:02d}T10:00:00") for i in range(1, 200))
    )
    wh.upsert_orders(history)
    batch = frame(
        order(1, created="2026-02-02T10:00:00", updated="2026-03-17T08:00:00"),
        order(8, created="2026-02-09T10:00:00", updated="2026-03-17T08:00:00"),
    )
    merge = ORDERS_UPSERT.merge_sql("_batch", batch.get_column("order_date").to_list())

    con = duckdb.connect(wh.path)
    try:
        con.register("_batch", batch.to_arrow())
        plan = "\n".join(str(r[1]) for r in con.execute("EXPLAIN " + merge).fetchall())
    finally:
        con.close()
    scan = plan[plan.index("Table: wh.silver.orders") :]
    scan = scan[: scan.index("╰")]
    assert "Filters:" in scan
    assert "order_date IN ('2026-02-02'::DATE, '2026-02-09'::DATE)" in scan


def test_duckdb_gives_up_with_a_clear_error_after_lock_timeout(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"), lock_timeout_seconds=0.5)
    calls = 0

    def always_locked(con: duckdb.DuckDBPyConnection) -> None:
        nonlocal calls
        calls += 1
        raise duckdb.IOException('IO Error: Could not set lock on file "wh.duckdb"')

    with pytest.raises(WarehouseLockTimeout, match="still busy"):
        wh._run(always_locked)
    assert calls > 1

    def broken(con: duckdb.DuckDBPyConnection) -> None:
        raise duckdb.IOException("IO Error: disk full")

    with pytest.raises(duckdb.IOException, match="disk full"):  # not a lock: no retry
        wh._run(broken)


# -- sessions --------------------------------------------------------------------------------


def sessions(day: date, *ids: str) -> pl.DataFrame:
    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    return pl.DataFrame(
        {
            "session_id": list(ids),
            "user_id": [10] * len(ids),
            "session_start": [start] * len(ids),
            "session_end": [start + timedelta(minutes=12)] * len(ids),
            "duration_seconds": [720.0] * len(ids),
            "event_count": [3] * len(ids),
            "converted": [True] * len(ids),
            "order_ids": [[1, 2]] * len(ids),
            "session_date": [day] * len(ids),
        },
        schema_overrides={
            "session_start": pl.Datetime("us", "UTC"),
            "session_end": pl.Datetime("us", "UTC"),
            "order_ids": pl.List(pl.Int64),
        },
    )


def test_replace_sessions_replaces_only_that_day(warehouse: Warehouse) -> None:
    d1, d2 = date(2026, 3, 17), date(2026, 3, 18)
    assert warehouse.replace_sessions(sessions(d1, "a", "b"), d1) == 2
    assert warehouse.replace_sessions(sessions(d2, "c"), d2) == 1
    assert warehouse.replace_sessions(sessions(d1, "x", "y", "z"), d1) == 3
    assert warehouse.replace_sessions(sessions(d1, "x", "y", "z"), d1) == 3  # idempotent

    out = warehouse.read_table("silver.sessions").sort("session_id")
    assert out.get_column("session_id").to_list() == ["c", "x", "y", "z"]
    assert out.get_column("session_date").to_list() == [d2, d1, d1, d1]
    assert out.schema["session_start"] == pl.Datetime("us", "UTC")
    assert out.get_column("order_ids").to_list()[0] == [1, 2]

    assert warehouse.replace_sessions(sessions(d1).drop("session_date"), d1) == 0
    assert warehouse.read_table("sessions").get_column("session_id").to_list() == ["c"]


def test_replace_sessions_rejects_rows_of_another_day(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="session_date"):
        warehouse.replace_sessions(sessions(date(2026, 3, 18), "a"), date(2026, 3, 17))


def test_sessions_list_and_int_dtypes_round_trip_even_when_all_empty(
    warehouse: Warehouse,
) -> None:
    """Snowflake's ARRAY is untyped: an all-empty order_ids column must still read back as
    List(Int64) (and event_count as Int64, session_date as Date) like DuckDB's BIGINT[]."""
    d1 = date(2026, 3, 17)
    batch = sessions(d1, "a", "b").with_columns(
        pl.Series("order_ids", [[], None], dtype=pl.List(pl.Int64))
    )
    assert warehouse.replace_sessions(batch, d1) == 2
    out = warehouse.read_table("sessions").sort("session_id")
    assert out.schema == batch.schema
    assert out.get_column("order_ids").to_list() == [[], None]
    assert_frame_equal(out, batch)


def test_replace_sessions_failing_insert_keeps_the_day(warehouse: Warehouse) -> None:
    """DELETE and INSERT are one transaction: when the INSERT fails, the DELETE is undone."""
    d1 = date(2026, 3, 17)
    warehouse.replace_sessions(sessions(d1, "a", "b"), d1)
    not_in_table = sessions(d1, "x").with_columns(pl.lit("?").alias("unknown_column"))
    with pytest.raises(Exception):  # noqa: B017 - engine-specific error types and texts
        warehouse.replace_sessions(not_in_table, d1)
    out = warehouse.read_table("sessions")
    assert sorted(out.get_column("session_id").to_list()) == ["a", "b"]


# -- several processes writing the same DuckDB file ------------------------------------------

_CHILD = """
import json, sys, time
from dataclasses import asdict
from pathlib import Path

import polars as pl

from orders_platform.storage.warehouse.duckdb import DuckDBWarehouse, WarehouseLockTimeout

db, batch, ready, go = sys.argv[1:5]
df = pl.read_parquet(batch)
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
started = time.monotonic()
stats = DuckDBWarehouse(path=db).upsert_orders(df)
print(json.dumps({**asdict(stats), "seconds": time.monotonic() - started}))
"""


def _run_writers(tmp_path: Path, db: Path, batches: list[pl.DataFrame], hold_lock: float):
    """Start one process per batch, release them together while this process holds the
    file lock for `hold_lock` seconds, and return their parsed outputs."""
    go = tmp_path / "go"
    procs, ready_files = [], []
    for i, batch in enumerate(batches):
        parquet, ready = tmp_path / f"batch{i}.parquet", tmp_path / f"ready{i}"
        batch.write_parquet(parquet)
        ready_files.append(ready)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(db), str(parquet), str(ready), str(go)],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready_files):
            assert time.monotonic() < deadline, "writer processes did not start"
            assert all(p.poll() is None for p in procs), "a writer process died early"
            time.sleep(0.05)
        db.parent.mkdir(parents=True, exist_ok=True)
        holder = duckdb.connect(str(db))  # every writer now finds the file locked
        go.touch()
        time.sleep(hold_lock)
        holder.close()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


@pytest.mark.timeout(300)
def test_duckdb_concurrent_writer_processes_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "wh" / "warehouse.duckdb"
    batches = [
        frame(*(order(d * 1000 + j, created=f"2026-03-1{d}T10:00:00") for j in range(500)))
        for d in range(1, 4)
    ]
    results = _run_writers(tmp_path, db, batches, hold_lock=2.0)

    assert [r["inserted"] for r in results] == [500, 500, 500]
    wh = DuckDBWarehouse(path=str(db))
    union = pl.concat(batches).sort("order_id")
    assert_frame_equal(table(wh), union)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_duckdb_writer_waits_out_a_long_lock(tmp_path: Path) -> None:
    db = tmp_path / "wh" / "warehouse.duckdb"
    (result,) = _run_writers(tmp_path, db, [frame(order(1), order(2))], hold_lock=12.0)
    assert result["inserted"] == 2
    assert result["seconds"] >= 11
    assert table(DuckDBWarehouse(path=str(db))).height == 2


# -- Snowflake only --------------------------------------------------------------------------


def test_snowflake_bulk_load_path_gives_the_same_tables(fakesnow_server: dict[str, Any]) -> None:
    """bulk_load_min_rows=1 sends every batch through Parquet PUT + COPY INTO; the result must
    equal the INSERT path's, nulls, decimals, timestamps and lists included."""
    bulk = snowflake_warehouse(fakesnow_server, "bulk", bulk_load_min_rows=1)
    rows = snowflake_warehouse(fakesnow_server, "rows")
    day1 = frame(
        order(1, amount="0.01", fee="0.00", discount="0.01"),
        order(2, status="delivered", updated="2026-03-17T11:00:00.123456"),
        order(3, created="2026-03-16T23:59:59.999999"),
    )
    day2 = frame(
        order(2, status="cancelled", updated="2026-03-18T01:00:00"),
        order(4, created="2026-03-18T02:00:00", amount="499999.99"),
    )
    for wh in (bulk, rows):
        assert wh.upsert_orders(day1) == UpsertStats(3, 3, 0, 0)
        assert wh.upsert_orders(day2) == UpsertStats(2, 1, 1, 0)
    assert_frame_equal(table(bulk), table(rows))
    assert table(bulk).get_column("status").to_list() == [
        "placed",
        "cancelled",
        "placed",
        "placed",
    ]
    assert table(bulk).row(2, named=True)["created_at"] == ts("2026-03-16T23:59:59.999999")

    d1 = date(2026, 3, 17)
    batch = sessions(d1, "a", "b", "c").with_columns(
        pl.Series("order_ids", [[1, 2], [], None], dtype=pl.List(pl.Int64))
    )
    assert bulk.replace_sessions(batch, d1) == 3
    assert_frame_equal(bulk.read_table("sessions").sort("session_id"), batch)


def test_snowflake_import_does_not_load_the_connector() -> None:
    """Loading the definitions must not pay for dagster_snowflake / Snowpark (seconds)."""
    code = (
        "import sys\n"
        "import orders_platform.storage.warehouse.snowflake\n"
        "loaded = [m for m in ('dagster_snowflake', 'snowflake.connector', 'snowflake.snowpark')"
        " if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ""


PASSWORD = "Pw-s3cr3t/+ 9!"


def _full_text(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_snowflake_connector_errors_are_redacted() -> None:
    """fakesnow accepts any password, so redaction is proven on synthetic connector errors
    raised inside a unit of work (the wrapper every operation goes through)."""
    from snowflake.connector.errors import DatabaseError, ProgrammingError

    wh = SnowflakeWarehouse(account="acct", user="u", password=PASSWORD, database="db")
    assert PASSWORD not in repr(wh)

    def fail_with(exc: BaseException) -> Callable[[], None]:
        def work() -> None:
            raise exc

        return work

    leaking = DatabaseError(msg=f"login failed for u with password {PASSWORD}", errno=390100)
    with pytest.raises(SnowflakeWarehouseError) as caught:
        wh._redacting("login", fail_with(leaking))
    assert PASSWORD not in _full_text(caught.value)
    assert "***" in str(caught.value)
    assert caught.value.errno == 390100
    assert caught.value.__cause__ is None  # the original mentions the password: not chained

    # Any other error mentioning the password is redacted too.
    with pytest.raises(SnowflakeWarehouseError) as caught:
        wh._redacting("x", fail_with(ValueError(f"bad dsn user:{PASSWORD}@host")))
    assert PASSWORD not in _full_text(caught.value)

    # A harmless connector error keeps its cause (and its errno / sqlstate).
    harmless = ProgrammingError(msg="SQL compilation error", errno=2003, sqlstate="42S02")
    with pytest.raises(SnowflakeWarehouseError, match="SQL compilation error") as caught:
        wh._redacting("read", fail_with(harmless))
    assert caught.value.__cause__ is harmless
    assert (caught.value.errno, caught.value.sqlstate) == (2003, "42S02")

    # Non-connector errors without the password pass through unchanged.
    with pytest.raises(KeyError):
        wh._redacting("x", fail_with(KeyError("order_id")))


def test_snowflake_unreachable_endpoint_error_has_no_password() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    wh = SnowflakeWarehouse(
        account="acct",
        user="u",
        password=PASSWORD,
        database="db",
        host="127.0.0.1",
        port=port,
        protocol="http",
        login_timeout=2,
        network_timeout=2,
    )
    with pytest.raises(SnowflakeWarehouseError, match="Could not connect") as caught:
        wh.table_exists("orders")
    assert PASSWORD not in _full_text(caught.value)
