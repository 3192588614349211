"""The orders graph end to end through Dagster: lake layout, invariant, idempotent upserts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, materialize

from orders_platform_tests.support import DAY

RAW, VALID, REJECTED, SILVER = (
    AssetKey(["raw", "orders"]),
    AssetKey(["validated", "orders"]),
    AssetKey(["validated", "rejected_orders"]),
    AssetKey(["silver", "orders"]),
)
# Lineage of the loading run differs between runs by design; everything else must not.
RUN_SPECIFIC = ["_run_id", "ingested_at"]


def run_partition(defs, partition: str, instance, selection=None, raise_on_error=True):
    if selection is None:  # the orders graph with its checks
        selection = AssetSelection.assets(RAW, VALID, REJECTED, SILVER)
    return materialize(
        [*defs.assets, *defs.asset_checks],
        partition_key=partition,
        resources=defs.resources,
        instance=instance,
        selection=selection,
        raise_on_error=raise_on_error,
    )


def materialization_metadata(result, key: AssetKey) -> list[dict]:
    return [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == key
    ]


def lake_file(root: str, key: AssetKey, partition: str) -> Path:
    return Path(root, *key.path, f"dt={partition}", "part-0.parquet")


def silver_table(platform) -> pl.DataFrame:
    return platform.warehouse().read_table("silver.orders").sort("order_id")


def test_partition_flows_raw_to_silver_with_invariant(platform, instance):
    defs = platform.definitions()
    result = run_partition(defs, DAY.isoformat(), instance)
    assert result.success

    files = {
        key: lake_file(platform.lake_root, key, DAY.isoformat()) for key in (RAW, VALID, REJECTED)
    }
    for path in files.values():
        assert path.exists(), path
    raw = pl.read_parquet(files[RAW])
    valid = pl.read_parquet(files[VALID])
    rejected = pl.read_parquet(files[REJECTED])

    assert raw.height >= platform.orders_per_day
    assert {"_source", "_extracted_at", "_run_id"} <= set(raw.columns)
    assert raw["_source"].unique().to_list() == ["demo"]
    duplicates = raw.height - valid.height - rejected.height
    assert duplicates > 0, "the demo day carries duplicate order_ids"
    assert valid["order_id"].is_unique().all()
    assert 0.01 < rejected.height / raw.height < 0.06
    assert rejected["reason"].null_count() == 0
    assert valid.schema["order_amount"] == pl.Decimal(12, 2)
    assert valid.schema["created_at"] == pl.Datetime("us", "UTC")

    meta = {key: materialization_metadata(result, key)[0] for key in (VALID, REJECTED)}
    assert meta[VALID]["duplicates_collapsed"].value == duplicates
    assert meta[VALID]["rows_in"].value == raw.height
    by_reason = meta[REJECTED]["rejected_by_reason"].value
    assert sum(by_reason.values()) == rejected.height
    assert "unknown_payment_methods" in meta[VALID]

    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "validated_orders_schema": True,
        "orders_reconciliation": True,
        "reject_rate": True,
        "silver_orders_schema": True,
    }

    silver = silver_table(platform)
    assert silver.height == valid.height
    assert silver["order_id"].to_list() == valid["order_id"].to_list()
    assert silver.schema["total_value"] == pl.Decimal(12, 2)
    joined = silver.select("order_id", "total_value").join(
        valid.select("order_id", "order_amount", "delivery_fee", "discount_amount"), on="order_id"
    )
    expected = [
        Decimal(a) + Decimal(f) - Decimal(d)
        for a, f, d in joined.select(
            pl.col("order_amount", "delivery_fee", "discount_amount").cast(pl.String)
        ).iter_rows()
    ]
    assert [Decimal(str(v)) for v in joined["total_value"].to_list()] == expected


def test_same_partition_twice_leaves_silver_identical(platform, instance):
    defs = platform.definitions()
    run_partition(defs, DAY.isoformat(), instance)
    first = silver_table(platform)
    result = run_partition(defs, DAY.isoformat(), instance)
    assert silver_table(platform).equals(first)
    silver_meta = materialization_metadata(result, SILVER)[0]
    assert silver_meta["inserted"].value == 0
    assert silver_meta["updated"].value == 0
    assert silver_meta["unchanged"].value == first.height


def test_partitions_in_reverse_order_give_the_same_table(tmp_path, instance):
    from orders_platform_tests.support import OrdersPlatform

    days = [(DAY + timedelta(days=i)).isoformat() for i in range(3)]
    forward, backward = OrdersPlatform(tmp_path / "fwd"), OrdersPlatform(tmp_path / "bwd")
    for platform, order in ((forward, days), (backward, days[::-1])):
        defs = platform.definitions()
        for day in order:
            run_partition(defs, day, instance)
    a = silver_table(forward).drop(RUN_SPECIFIC)
    b = silver_table(backward).drop(RUN_SPECIFIC)
    assert a.height > 0
    assert a.equals(b)


def test_older_partition_rerun_regresses_no_order(platform, instance):
    defs = platform.definitions()
    day1, day2 = DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()
    run_partition(defs, day1, instance)
    before = silver_table(platform)
    run_partition(defs, day2, instance)
    after_newer = silver_table(platform)

    updated_late = after_newer.join(before, on="order_id", suffix="_old").filter(
        pl.col("updated_at") > pl.col("updated_at_old")
    )
    assert updated_late.height > 0, "day 2 carries late updates of day-1 orders"
    assert (updated_late["order_date"] == DAY).all()

    run_partition(defs, day1, instance)
    assert silver_table(platform).equals(after_newer)


@pytest.mark.parametrize("corruption", ["negative_amount", "duplicate_order_id"])
def test_failed_gate_blocks_silver(platform, instance, corruption):
    from orders_platform.storage.lake import read_partition

    defs = platform.definitions()
    partition = DAY.isoformat()
    run_partition(defs, partition, instance, selection=[RAW, VALID, REJECTED])
    valid = read_partition(platform.lake_root, VALID.path, partition)
    if corruption == "negative_amount":
        bad = valid.with_columns(
            pl.when(pl.int_range(pl.len()) < 3)
            .then(pl.lit(Decimal("-1.00")))
            .otherwise(pl.col("order_amount"))
            .cast(pl.Decimal(12, 2))
            .alias("order_amount")
        )
    else:
        bad = pl.concat([valid, valid.head(3)])
    bad.write_parquet(lake_file(platform.lake_root, VALID, partition))

    result = run_partition(
        defs,
        partition,
        instance,
        selection=AssetSelection.assets(SILVER)
        | AssetSelection.checks(AssetCheckKey(VALID, "validated_orders_schema")),
        raise_on_error=False,
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    gate = evaluations["validated_orders_schema"]
    assert not gate.passed
    assert gate.metadata["failing_rows"].value >= 3
    assert "sample_failing_rows" in gate.metadata
    assert materialization_metadata(result, SILVER) == []
    assert not Path(platform.duckdb_path).exists() or silver_table_or_empty(platform) == 0


def silver_table_or_empty(platform) -> int:
    from orders_platform.storage.warehouse.base import TableNotFoundError

    try:
        return platform.warehouse().read_table("silver.orders").height
    except TableNotFoundError:  # the table is created on first write; no write happened
        return 0


def test_range_run_gates_each_day_on_its_own(tmp_path, instance):
    """A backfill runs several days in one run: an order updated late sits in two daily
    partitions, which is valid per day, so the gates must not judge the days concatenated.
    The range run leaves the same table as the days run one by one."""
    from orders_platform_tests.support import OrdersPlatform

    days = [(DAY + timedelta(days=i)).isoformat() for i in range(3)]
    ranged, daily = OrdersPlatform(tmp_path / "range"), OrdersPlatform(tmp_path / "daily")
    defs = ranged.definitions()
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        resources=defs.resources,
        instance=instance,
        selection=AssetSelection.assets(RAW, VALID, REJECTED, SILVER),
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
        },
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} >= {
        "validated_orders_schema",
        "silver_orders_schema",
    }
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    valid = pl.concat(pl.read_parquet(lake_file(ranged.lake_root, VALID, d)) for d in days)
    assert not valid["order_id"].is_unique().all(), "late updates span two partitions"

    daily_defs = daily.definitions()
    for day in days:
        run_partition(daily_defs, day, instance)
    a = silver_table(ranged).drop(RUN_SPECIFIC)
    assert a.height == valid["order_id"].n_unique()
    assert a.equals(silver_table(daily).drop(RUN_SPECIFIC))


def test_gate_by_partition_names_the_failing_day(platform, instance):
    from orders_platform.checks.gates import run_gate_by_partition
    from orders_platform.checks.schemas import ValidatedOrders

    days = [(DAY + timedelta(days=i)).isoformat() for i in range(2)]
    defs = platform.definitions()
    for day in days:
        run_partition(defs, day, instance, selection=AssetSelection.assets(RAW, VALID, REJECTED))
    frames = {d: pl.read_parquet(lake_file(platform.lake_root, VALID, d)) for d in days}
    assert run_gate_by_partition(ValidatedOrders, frames).passed

    frames[days[1]] = pl.concat([frames[days[1]], frames[days[1]].head(3)])
    gate = run_gate_by_partition(ValidatedOrders, frames)
    assert not gate.passed
    assert gate.metadata["failing_partitions"].value == {days[1]: 6}
    assert gate.metadata["sample_partition"] == days[1]
    assert gate.metadata["rows_checked"] == sum(f.height for f in frames.values())
    assert any("order_id" in rule for rule in gate.metadata["failures_by_rule"].value)
