"""Helpers of the intraday tests: run a tick at a given clock, read what it reported."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import polars as pl
from dagster import AssetSelection, DagsterInstance, Definitions, materialize

from orders_platform.assets.intraday import FULL_REFRESH_TAG, NOW_TAG
from orders_platform.assets.keys import RAW_ORDERS, REJECTED_ORDERS, SILVER_ORDERS, VALIDATED_ORDERS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

ORDERS_CHAIN = (RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS, SILVER_ORDERS)


def tick(
    defs: Definitions,
    instance: DagsterInstance,
    day: date,
    now: datetime,
    *,
    full_refresh: bool = False,
    resources: dict | None = None,
):
    """One materialization of the orders chain for `day` with the run's clock at `now`."""
    tags = {NOW_TAG: now.isoformat()}
    if full_refresh:
        tags[FULL_REFRESH_TAG] = "true"
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        partition_key=day.isoformat(),
        resources=defs.resources if resources is None else resources,
        instance=instance,
        selection=AssetSelection.assets(*ORDERS_CHAIN),
        tags=tags,
    )
    assert result.success
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    assert not failed, f"checks failed: {failed}"
    return result


def metadata(result, key) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == key:
            return {k: v.value for k, v in mat.metadata.items()}
    raise AssertionError(f"{key.to_user_string()} was not materialized")


def extraction(result) -> dict[str, Any]:
    return metadata(result, RAW_ORDERS)["extraction"]


def check_passed(result, name: str) -> bool:
    (evaluation,) = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    return evaluation.passed


def source_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The source columns only, sorted: a partition's content regardless of parts and order."""
    return frame.select(ORDER_SOURCE_COLUMNS).sort(ORDER_SOURCE_COLUMNS, nulls_last=True)


def without_lineage(frame: pl.DataFrame) -> pl.DataFrame:
    drop = [c for c in ("_extracted_at", "_run_id", "ingested_at") if c in frame.columns]
    columns = [c for c in frame.columns if c not in drop]
    return frame.select(columns).sort(columns, nulls_last=True)
