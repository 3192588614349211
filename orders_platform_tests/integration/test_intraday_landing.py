"""Intraday ticks over the landing zone (SPEC §10): a tick reads only the day's files whose
checksum the lake partition does not hold yet; a re-uploaded identical file is not read
again; the day close equals one daily run over the finished day."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from dagster import DagsterInstance

from orders_platform.assets.keys import RAW_ORDERS, REJECTED_ORDERS, VALIDATED_ORDERS
from orders_platform.storage.lake import read_partition
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS
from orders_platform_tests.integration.intraday_support import (
    check_passed,
    extraction,
    source_rows,
    tick,
    without_lineage,
)
from orders_platform_tests.support import OrdersPlatform

DAY = date(2026, 3, 17)
D0 = datetime(2026, 3, 17, tzinfo=UTC)


def at(hours: float, minutes: float = 0) -> datetime:
    return D0 + timedelta(hours=hours, minutes=minutes)


def rows(*changes: tuple[int, datetime, str]) -> pl.DataFrame:
    def iso(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    return pl.DataFrame(
        [
            {
                "order_id": str(order_id),
                "customer_id": str(700 + order_id),
                "store_id": "2",
                "restaurant_id": "5",
                "order_amount": "250.00",
                "delivery_fee": "15.00",
                "discount_amount": "0",
                "status": status,
                "payment_method": "upi",
                "payment_status": "paid",
                "created_at": iso(D0 + timedelta(minutes=order_id)),
                "updated_at": iso(updated),
                "delivered_at": iso(updated) if status == "delivered" else "",
                "cancelled_at": "",
                "cancellation_reason": "",
                "promo_code": "",
                "notes": "",
            }
            for order_id, updated, status in changes
        ],
        schema={c: pl.String for c in ORDER_SOURCE_COLUMNS},
    )


def drop(landing: Path, name: str, frame: pl.DataFrame, extra_lines: str = "") -> Path:
    directory = landing / "orders" / f"dt={DAY}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(frame.write_csv() + extra_lines)
    return path


def silver(platform: OrdersPlatform) -> pl.DataFrame:
    return platform.warehouse().read_orders().select("order_id", "status").sort("order_id")


def test_landing_ticks_read_only_new_files(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    settings = {"ORDERS_SOURCE": "landing", "ORDERS_LANDING_DIR": str(landing)}
    platform = OrdersPlatform(tmp=tmp_path / "intraday")
    defs = platform.definitions(**settings)
    first_file = drop(
        landing, "batch-001.csv", rows(*((i, at(0, 20 + i), "placed") for i in range(1, 21)))
    )

    with DagsterInstance.ephemeral() as instance:
        first = tick(defs, instance, DAY, at(10))
        ext = extraction(first)
        assert (ext["mode"], ext["rows_extracted"], ext["rows_written"]) == ("incremental", 20, 20)

        # new file (new orders, an update, a malformed line) + the first file uploaded again
        drop(
            landing,
            "batch-002.csv",
            rows(*((i, at(10, 1), "placed") for i in range(21, 26)), (1, at(10, 2), "delivered")),
            extra_lines='9,"never closed\n',
        )
        shutil.copy(first_file, first_file.with_name("batch-001-again.csv"))
        second = tick(defs, instance, DAY, at(10, 15))
        ext = extraction(second)
        assert ext["mode"] == "incremental"
        assert [f["name"] for f in ext["files"]] == ["batch-002.csv"]
        assert ext["rows_extracted"] == 7 == ext["rows_written"]  # 6 rows + 1 malformed line
        assert check_passed(second, "orders_reconciliation")
        state = silver(platform)
        assert state.height == 25
        assert state.filter(pl.col("order_id") == 1)["status"].to_list() == ["delivered"]

        # nothing new: nothing read, the dead letter stays single
        third = tick(defs, instance, DAY, at(10, 30))
        assert (extraction(third)["rows_extracted"], extraction(third)["files"]) == (0, [])
        rejected = read_partition(platform.lake_root, REJECTED_ORDERS.path, DAY.isoformat())
        assert rejected.height == 1

        close_time = D0 + timedelta(days=1, minutes=30)
        closed = tick(defs, instance, DAY, close_time)
        assert extraction(closed)["mode"] == "full"

    oneshot = OrdersPlatform(tmp=tmp_path / "oneshot")
    with DagsterInstance.ephemeral() as instance:
        tick(oneshot.definitions(**settings), instance, DAY, close_time)
    for key in (RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS):
        mine = read_partition(platform.lake_root, key.path, DAY.isoformat())
        theirs = read_partition(oneshot.lake_root, key.path, DAY.isoformat())
        if key == RAW_ORDERS:
            mine, theirs = source_rows(mine), source_rows(theirs)
        assert without_lineage(mine).equals(without_lineage(theirs)), key
    assert silver(platform).equals(silver(oneshot))
