"""Landing files through the orders graph: malformed lines become dead letters, none lost."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from dagster import AssetKey, AssetSelection, materialize

from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS
from orders_platform_tests.support import DAY

KEYS = [
    AssetKey(["raw", "orders"]),
    AssetKey(["validated", "orders"]),
    AssetKey(["validated", "rejected_orders"]),
    AssetKey(["silver", "orders"]),
]


def good_order(order_id: int) -> dict[str, str]:
    row = dict.fromkeys(ORDER_SOURCE_COLUMNS, "")
    row.update(
        order_id=str(order_id),
        customer_id="7",
        order_amount="1,250.50",
        status=" DELIVERED ",
        payment_method="UPI",
        created_at="2026-03-17T10:00:00Z",
        updated_at="2026-03-17T16:00:00+05:30",  # 10:30Z
        delivered_at="2026-03-17T10:40:00Z",
    )
    return row


def test_landing_day_with_malformed_lines(platform, instance, tmp_path: Path):
    day_dir = tmp_path / "landing" / "orders" / f"dt={DAY.isoformat()}"
    day_dir.mkdir(parents=True)
    lines = [json.dumps(good_order(i)) for i in range(1, 6)]
    lines.insert(2, '{"order_id": "99", broken')
    (day_dir / "batch-1.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    header = ",".join(ORDER_SOURCE_COLUMNS)
    csv_good = ",".join(f'"{v}"' for v in good_order(6).values())
    (day_dir / "batch-2.csv").write_text(f"{header}\r\n{csv_good}\r\n1,2,3\r\n", encoding="utf-8")

    defs = platform.definitions(
        ORDERS_SOURCE="landing", ORDERS_LANDING_DIR=str(tmp_path / "landing")
    )
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        partition_key=DAY.isoformat(),
        resources=defs.resources,
        instance=instance,
        selection=AssetSelection.assets(*KEYS),
    )
    assert result.success
    lake = Path(platform.lake_root)
    raw = pl.read_parquet(lake / "raw/orders" / f"dt={DAY}" / "part-0.parquet")
    valid = pl.read_parquet(lake / "validated/orders" / f"dt={DAY}" / "part-0.parquet")
    rejected = pl.read_parquet(lake / "validated/rejected_orders" / f"dt={DAY}" / "part-0.parquet")
    assert raw.height == 8  # 6 good records + 2 malformed lines, nothing dropped
    assert sorted(valid["order_id"].to_list()) == [1, 2, 3, 4, 5, 6]
    assert sorted(rejected["reason"].to_list()) == ["malformed_json", "wrong_column_count"]
    json_reject = rejected.filter(pl.col("reason") == "malformed_json")["detail"].item()
    assert '{"order_id": "99", broken' in json_reject
    assert "batch-1.ndjson" in json_reject
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["orders_reconciliation"] is True
    assert valid.filter(pl.col("order_id") == 1)["status"].item() == "delivered"
