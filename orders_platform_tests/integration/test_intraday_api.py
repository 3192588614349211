"""Intraday ticks against the fault-injecting REST API server (SPEC §10, §7).

The same sequence as the PostgreSQL test: new orders, updates (one of an order created the
day before), a bad row and a late commit inside the overlap between two ticks, with 429s
(Retry-After), 503s and a dropped connection on the way. Each tick asks for
``updated_since = watermark - overlap`` only; silver converges; the day close equals one
daily run over the finished day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from dagster import DagsterInstance

from orders_platform.assets.keys import RAW_ORDERS, REJECTED_ORDERS, VALIDATED_ORDERS
from orders_platform.sources import api as api_module
from orders_platform.sources.api import ApiSource
from orders_platform.storage.lake import read_partition
from orders_platform_tests.integration.intraday_support import (
    check_passed,
    extraction,
    source_rows,
    tick,
    without_lineage,
)
from orders_platform_tests.servers.fake_api import FakeApi, Fault
from orders_platform_tests.support import OrdersPlatform

DAY = date(2026, 3, 17)
D0 = datetime(2026, 3, 17, tzinfo=UTC)
TOKEN = "intraday-token"
BAD = 50


def at(hours: float, minutes: float = 0) -> datetime:
    return D0 + timedelta(hours=hours, minutes=minutes)


def row(order_id: int, created: datetime, updated: datetime, status="placed", amount="99.50"):
    def iso(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "order_id": str(order_id),
        "customer_id": str(500 + order_id),
        "store_id": "4",
        "restaurant_id": "8",
        "order_amount": amount,
        "delivery_fee": "10.00",
        "discount_amount": None,
        "status": status,
        "payment_method": "card",
        "payment_status": "paid",
        "created_at": iso(created),
        "updated_at": iso(updated),
        "delivered_at": iso(updated) if status == "delivered" else None,
        "cancelled_at": None,
        "cancellation_reason": None,
        "promo_code": None,
        "notes": None,
    }


def expected(rows: list[dict[str, Any]], now: datetime) -> pl.DataFrame:
    frame = pl.DataFrame(rows).select(
        pl.col("order_id").cast(pl.Int64),
        "status",
        pl.col("updated_at").str.to_datetime(time_zone="UTC", time_unit="us"),
        "order_amount",
    )
    return (
        frame.filter((pl.col("updated_at") < now) & (pl.col("order_amount") != "abc"))
        .sort("updated_at")
        .group_by("order_id")
        .last()
        .select("order_id", "status", "updated_at")
        .sort("order_id")
    )


def silver(platform: OrdersPlatform) -> pl.DataFrame:
    return (
        platform.warehouse()
        .read_orders()
        .select("order_id", "status", "updated_at")
        .sort("order_id")
    )


@pytest.fixture
def api() -> Iterator[FakeApi]:
    api_module._TOKENS.clear()
    api_module._LIMITERS.clear()
    server = FakeApi(orders={DAY: []}, static_token=TOKEN, max_page_size=100).start()
    yield server
    server.stop()
    api_module._LIMITERS.clear()


def resources(platform: OrdersPlatform, api: FakeApi) -> dict:
    defs = platform.definitions()
    source = ApiSource(
        base_url=api.base_url,
        token=TOKEN,
        page_size=5,
        requests_per_second=0.0,
        timeout_seconds=2.0,
        backoff_max_seconds=0.2,
    )
    return {**defs.resources, "source": source}


def test_api_ticks_converge_through_faults(tmp_path, api: FakeApi) -> None:
    platform = OrdersPlatform(tmp=tmp_path / "intraday")
    defs = platform.definitions()
    rows = api.orders[DAY]
    yesterday = D0 - timedelta(hours=3)
    rows += [row(i, at(0, 11 * i), at(0, 11 * i)) for i in range(1, 31)]  # 00:11 .. 05:30
    rows += [row(41, at(9, 50), at(9, 56)), row(BAD, at(9, 50), at(9, 57), amount="abc")]
    api.schedule(Fault.http(429, retry_after=1), on=[2])
    api.schedule(Fault.drop_body(), on=[4])

    with DagsterInstance.ephemeral() as instance:
        res = resources(platform, api)
        now1 = at(10)
        first = tick(defs, instance, DAY, now1, resources=res)
        ext = extraction(first)
        assert (ext["mode"], ext["rows_extracted"], ext["retries"]) == ("incremental", 32, 2)
        assert api.data_requests()[0].query["updated_since"] == "2026-03-16T23:55:00Z"
        assert api.data_requests()[0].query["updated_until"] == "2026-03-17T10:00:00Z"
        assert silver(platform).equals(expected(rows, now1))

        rows += [row(60 + i, at(10, 2 + 3 * i), at(10, 2 + 3 * i)) for i in range(3)]
        rows += [row(1, at(0, 11), at(10, 7), status="delivered")]
        rows += [row(900_001, yesterday, at(10, 8), status="delivered")]  # created on D-1
        rows += [row(70, at(9, 58), at(9, 58))]  # late commit inside the overlap
        first_of_tick2 = len(api.data_requests()) + 1
        api.schedule(Fault.http(503), on=[first_of_tick2])
        api.schedule(Fault.http(429, retry_after=1, date=True), on=[first_of_tick2 + 2])

        now2 = at(10, 15)
        second = tick(defs, instance, DAY, now2, resources=res)
        ext = extraction(second)
        tick2 = api.data_requests()[first_of_tick2 - 1]
        assert (tick2.query["updated_since"], tick2.query["updated_until"]) == (
            "2026-03-17T09:55:00Z",
            "2026-03-17T10:15:00Z",
        )
        # 41, BAD, 70 (overlap), 60..62, the update of 1 and of 900001
        assert (ext["rows_extracted"], ext["rows_already_held"], ext["rows_written"]) == (8, 2, 6)
        assert ext["retries"] == 2
        assert check_passed(second, "orders_reconciliation")
        assert silver(platform).equals(expected(rows, now2))
        rejected = read_partition(platform.lake_root, REJECTED_ORDERS.path, DAY.isoformat())
        assert rejected["order_id"].to_list() == [str(BAD)]

        close_time = D0 + timedelta(days=1, minutes=30)
        closed = tick(defs, instance, DAY, close_time, resources=res)
        assert extraction(closed)["mode"] == "full"

    oneshot = OrdersPlatform(tmp=tmp_path / "oneshot")
    with DagsterInstance.ephemeral() as instance:
        tick(oneshot.definitions(), instance, DAY, close_time, resources=resources(oneshot, api))
    for key in (RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS):
        mine = read_partition(platform.lake_root, key.path, DAY.isoformat())
        theirs = read_partition(oneshot.lake_root, key.path, DAY.isoformat())
        if key == RAW_ORDERS:
            mine, theirs = source_rows(mine), source_rows(theirs)
        assert without_lineage(mine).equals(without_lineage(theirs)), key
    assert silver(platform).equals(silver(oneshot))
