"""Intraday ticks of the open day against PostgreSQL at 127.0.0.1:5432 (SPEC §10).

A source table receives inserts and updates between ticks; the run's clock is set with the
``orders_platform/now`` tag, so no test sleeps until a wall-clock time. After every tick
silver.orders equals the source's latest state of every order seen so far; tick 2 reads
only its increment and the overlap; a tick killed with SIGKILL (while reading, and after
its raw part was committed) leaves nothing half-done and the next tick converges; the day
close leaves the lake partition equal to a one-shot full extraction.

A late commit *outside* the overlap (a row whose updated_at is older than the watermark
minus the overlap when it becomes visible) is not read by the ticks: the day close picks
it up (documented in the README).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import psycopg2
import pytest
from dagster import DagsterInstance
from psycopg2.extras import execute_values

from orders_platform.assets.keys import RAW_ORDERS, REJECTED_ORDERS, VALIDATED_ORDERS
from orders_platform.storage.lake import read_partition
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS
from orders_platform_tests.integration.intraday_support import (
    check_passed,
    extraction,
    metadata,
    source_rows,
    tick,
    without_lineage,
)
from orders_platform_tests.support import REPO_ROOT, OrdersPlatform

pytestmark = pytest.mark.slow

DAY = date(2026, 3, 17)
D0 = datetime(2026, 3, 17, tzinfo=UTC)
PREV = DAY - timedelta(days=1)
HOST, PORT = "127.0.0.1", 5432
COLS = ORDER_SOURCE_COLUMNS
LATE_OUTSIDE = 71  # committed after tick 1 with an updated_at older than its overlap
BAD = 50  # a bad row (non-numeric amount) inside the overlap of tick 2

DDL = """
CREATE TABLE public.orders (
    change_id bigserial PRIMARY KEY, order_id bigint, customer_id text, store_id bigint,
    restaurant_id bigint, order_amount text, delivery_fee text, discount_amount text,
    status text, payment_method text, payment_status text, created_at timestamptz,
    updated_at timestamptz, delivered_at timestamptz, cancelled_at timestamptz,
    cancellation_reason text, promo_code text, notes text
);
CREATE INDEX ON public.orders (updated_at);
"""


def at(hours: float, minutes: float = 0, day: datetime = D0) -> datetime:
    return day + timedelta(hours=hours, minutes=minutes)


def change(order_id: int, created: datetime, updated: datetime, status="placed", amount="120.50"):
    values = {
        "order_id": order_id,
        "customer_id": str(1000 + order_id),
        "store_id": 3,
        "restaurant_id": 9,
        "order_amount": amount,
        "delivery_fee": "20.00",
        "discount_amount": "0",
        "status": status,
        "payment_method": "upi",
        "payment_status": "paid" if status == "delivered" else "pending",
        "created_at": created,
        "updated_at": updated,
        "delivered_at": updated if status == "delivered" else None,
        "cancelled_at": None,
        "cancellation_reason": None,
        "promo_code": None,
        "notes": None,
    }
    return tuple(values[c] for c in COLS)


def _admin_dsn() -> str:
    for user in ("postgres", "root"):
        dsn = f"host={HOST} port={PORT} user={user} dbname=postgres connect_timeout=5"
        try:
            psycopg2.connect(dsn).close()
            return dsn
        except psycopg2.Error:
            continue
    pytest.fail(f"PostgreSQL at {HOST}:{PORT} is required (SPEC §7)")


@pytest.fixture
def source_db() -> Iterator[str]:
    admin = _admin_dsn()
    name = f"orders_intraday_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    user = psycopg2.extensions.parse_dsn(admin)["user"]
    dsn = f"host={HOST} port={PORT} user={user} dbname={name}"
    try:
        with psycopg2.connect(dsn) as data, data.cursor() as cur:
            cur.execute(DDL)
        data.close()
        yield dsn
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def insert(dsn: str, rows: list[tuple]) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        execute_values(cur, f"INSERT INTO public.orders ({', '.join(COLS)}) VALUES %s", rows)
    conn.close()


def expected_state(dsn: str, now: datetime, missing: tuple[int, ...] = ()) -> pl.DataFrame:
    """The source's latest (order_id, status, updated_at) of every valid order changed
    before `now`, but the orders the ticks cannot have seen yet (`missing`)."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT ON (order_id) order_id, status, updated_at FROM public.orders "
            "WHERE updated_at < %s AND order_amount <> 'abc' AND NOT order_id = ANY(%s) "
            "ORDER BY order_id, updated_at DESC",
            (now, list(missing) or [-1]),
        )
        rows = cur.fetchall()
    conn.close()
    return pl.DataFrame(
        rows,
        schema={"order_id": pl.Int64, "status": pl.String, "updated_at": pl.Datetime("us", "UTC")},
        orient="row",
    )


def silver_state(platform: OrdersPlatform) -> pl.DataFrame:
    return platform.warehouse().read_orders().select("order_id", "status", "updated_at")


def source_partition(dsn: str, until: datetime, exclude: tuple[int, ...] = ()) -> int:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM public.orders WHERE updated_at >= %s AND updated_at < %s "
            "AND NOT order_id = ANY(%s)",
            (D0 - timedelta(minutes=5), until, list(exclude) or [-1]),
        )
        (count,) = cur.fetchone()
    conn.close()
    return count


def lake(platform: OrdersPlatform, key, day: date = DAY) -> pl.DataFrame:
    return read_partition(platform.lake_root, key.path, day.isoformat())


def raw_dir(platform: OrdersPlatform) -> Path:
    return Path(platform.lake_root) / "raw" / "orders" / f"dt={DAY.isoformat()}"


def settings(dsn: str) -> dict[str, str]:
    return {"ORDERS_SOURCE": "postgres", "ORDERS_PG_DSN": dsn, "ORDERS_PG_ALLOW_PRIMARY": "true"}


TICK_SCRIPT = """
import sys
from datetime import date, datetime
from dagster import DagsterInstance
from orders_platform.definitions import build_definitions
from orders_platform.settings import load_settings
from orders_platform_tests.integration.intraday_support import tick

defs = build_definitions(load_settings())
with DagsterInstance.ephemeral() as instance:
    tick(defs, instance, date.fromisoformat(sys.argv[1]), datetime.fromisoformat(sys.argv[2]))
print("TICK DONE")
"""


def start_tick(platform: OrdersPlatform, dsn: str, now: datetime) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")},
        **settings(dsn),
        "ORDERS_LAKE_ROOT": platform.lake_root,
        "ORDERS_DUCKDB_PATH": platform.duckdb_path,
        "ORDERS_SOURCE_MAX_RETRIES": "0",
        "PYTHONPATH": str(REPO_ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-c", TICK_SCRIPT, DAY.isoformat(), now.isoformat()],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            output = proc.stdout.read().decode(errors="replace")[-3000:]
            pytest.fail(f"the tick ended before {what}: {output}")
        if time.monotonic() > deadline:
            kill(proc)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_ticks_converge_with_kills_and_day_close(
    tmp_path: Path, source_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = source_db
    monkeypatch.setenv("ORDERS_PG_DSN", dsn)  # resolved by the resource (EnvVar)
    platform = OrdersPlatform(tmp=tmp_path / "intraday")
    defs = platform.definitions(**settings(dsn))
    prev_orders = [900_001, 900_002]
    insert(
        dsn,
        [change(o, at(18, i, D0 - timedelta(days=1)), at(19, i, D0 - timedelta(days=1)))
         for i, o in enumerate(prev_orders)]
        + [change(i, at(0, 13 * i), at(0, 13 * i)) for i in range(1, 41)]  # 00:13 .. 08:40
        + [change(41, at(9, 50), at(9, 56)), change(BAD, at(9, 50), at(9, 57), amount="abc")]
        + [change(63, at(10, 5), at(10, 5))],  # committed early, but after tick 1's clock
    )  # fmt: skip

    with DagsterInstance.ephemeral() as instance:
        # D-1 closed: one full daily run.
        closed = tick(defs, instance, PREV, at(0, 30))
        assert extraction(closed)["mode"] == "full"

        # tick 1 at 10:00: everything of the day so far.
        now1 = at(10)
        first = tick(defs, instance, DAY, now1)
        ext = extraction(first)
        assert ext["mode"] == "incremental" and ext["watermark"] is None
        assert ext["window_end"] == now1.isoformat()
        assert ext["rows_extracted"] == 42 == source_partition(dsn, now1)
        assert metadata(first, RAW_ORDERS)["provisional"] is True
        assert_frame_equal_silver(platform, expected_state(dsn, now1))

        # between ticks: new orders, updates (one of an order created yesterday), a late
        # commit inside the overlap, one outside it.
        insert(
            dsn,
            [change(60 + i, at(10, 2 + 4 * i), at(10, 2 + 4 * i)) for i in range(3)]
            + [change(1, at(0, 13), at(10, 7), status="delivered")]
            + [change(900_001, at(18, 0, D0 - timedelta(days=1)), at(10, 8), status="delivered")]
            + [change(70, at(9, 58), at(9, 58))]
            + [change(LATE_OUTSIDE, at(9, 30), at(9, 30))],
        )

        # tick 2 at 10:15 reads [09:55, 10:15) only: the increment and the overlap.
        now2 = at(10, 15)
        second = tick(defs, instance, DAY, now2)
        ext = extraction(second)
        assert ext["mode"] == "incremental"
        assert ext["watermark"] == now1.isoformat()
        assert ext["window_start"] == at(9, 55).isoformat()
        # 41, BAD, 70 (overlap) + 63, 60, 61, 62, the update of 1 and of 900001
        assert ext["rows_extracted"] == 9
        assert ext["rows_in_overlap"] == 3
        assert ext["rows_already_held"] == 2  # 41 and BAD were read by tick 1
        assert ext["rows_written"] == 7
        assert check_passed(second, "orders_reconciliation")
        state = silver_state(platform)
        assert_frame_equal_silver(platform, expected_state(dsn, now2, missing=(LATE_OUTSIDE,)))
        assert state.filter(pl.col("order_id") == 900_001)["status"].to_list() == ["delivered"]
        assert LATE_OUTSIDE not in state["order_id"].to_list()
        rejected = lake(platform, REJECTED_ORDERS)
        assert rejected.filter(pl.col("order_id") == str(BAD)).height == 1
        validated = lake(platform, VALIDATED_ORDERS)
        assert validated["order_id"].n_unique() == validated.height

        # more writes, then two ticks killed with SIGKILL at different moments.
        insert(dsn, [change(80 + i, at(10, 20 + i), at(10, 20 + i)) for i in range(3)])
        parts_before = sorted(p.name for p in raw_dir(platform).iterdir())

        # (a) killed while reading: the table is locked, the SELECT waits.
        locker = psycopg2.connect(dsn)
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
        proc = start_tick(platform, dsn, at(10, 30))
        try:
            wait_for(lambda: _waiting_on_lock(dsn), "the tick to wait for the table", proc)
            kill(proc)
        finally:
            locker.rollback()
            locker.close()
        assert sorted(p.name for p in raw_dir(platform).iterdir()) == parts_before

        # (b) killed after its raw part (and validated) were committed, while silver waits
        # for the warehouse file another process holds.
        validated_file = (
            Path(platform.lake_root) / "validated/orders" / f"dt={DAY}" / "part-0.parquet"
        )
        validated_mtime = validated_file.stat().st_mtime_ns
        holder = duckdb.connect(platform.duckdb_path)
        try:
            proc = start_tick(platform, dsn, at(10, 30))
            wait_for(
                lambda: validated_file.stat().st_mtime_ns != validated_mtime,
                "validated/orders to be rewritten",
                proc,
            )
            time.sleep(0.5)
            kill(proc)
        finally:
            holder.close()
        names = sorted(p.name for p in raw_dir(platform).iterdir() if p.suffix == ".parquet")
        assert len(names) == len(parts_before) + 1 and "T103000" in names[-1]
        assert 80 not in silver_state(platform)["order_id"].to_list()  # silver never ran

        # the next tick converges: nothing lost, nothing doubled.
        now3 = at(10, 45)
        third = tick(defs, instance, DAY, now3)
        assert extraction(third)["watermark"] == at(10, 30).isoformat()
        assert check_passed(third, "orders_reconciliation")
        assert_frame_equal_silver(platform, expected_state(dsn, now3, missing=(LATE_OUTSIDE,)))
        raw = lake(platform, RAW_ORDERS)
        assert raw.height == source_partition(dsn, now3, exclude=(LATE_OUTSIDE,))
        assert source_rows(raw).is_duplicated().sum() == 0
        assert lake(platform, REJECTED_ORDERS).height == 1

        # day close: the daily run for D re-extracts the day in full and replaces it.
        close = tick(defs, instance, DAY, at(0, 30, D0 + timedelta(days=1)))
        assert extraction(close)["mode"] == "full"
        assert metadata(close, RAW_ORDERS)["provisional"] is False
        assert sorted(p.name for p in raw_dir(platform).iterdir()) == ["part-0.parquet"]
        assert LATE_OUTSIDE in silver_state(platform)["order_id"].to_list()

    # ...and equals what one daily run over the finished day gives.
    oneshot = OrdersPlatform(tmp=tmp_path / "oneshot")
    with DagsterInstance.ephemeral() as instance:
        tick(oneshot.definitions(**settings(dsn)), instance, DAY, at(0, 30, D0 + timedelta(days=1)))
    for key in (RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS):
        mine, theirs = lake(platform, key), lake(oneshot, key)
        if key == RAW_ORDERS:
            mine, theirs = source_rows(mine), source_rows(theirs)
        assert without_lineage(mine).equals(without_lineage(theirs)), key
    days_orders = pl.col("order_id") < 900_000
    assert (
        silver_state(platform).filter(days_orders).equals(silver_state(oneshot).filter(days_orders))
    )


def assert_frame_equal_silver(platform: OrdersPlatform, expected: pl.DataFrame) -> None:
    actual = silver_state(platform).sort("order_id")
    assert actual.equals(expected.sort("order_id")), (actual, expected)


def _waiting_on_lock(dsn: str) -> bool:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'orders_platform' AND wait_event_type = 'Lock'"
        )
        (count,) = cur.fetchone()
    conn.close()
    return count > 0
