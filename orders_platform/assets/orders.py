"""Orders assets: raw -> validated (+ dead letters) -> silver. Thin wiring only.

Every asset handles one or many partition keys (a backfill range runs as one run):
frames travel as {partition_key: DataFrame} dicts, which the lake IO manager writes and
loads partition by partition.
"""

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    PartitionsDefinition,
    asset,
    multi_asset,
)

from orders_platform.assets.intraday import (
    APPLIED_KEY,
    not_yet_upserted,
    provisional,
    run_now,
)
from orders_platform.assets.keys import (
    LAKE_IO_MANAGER,
    OWNERS,
    RAW_ORDERS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    VALIDATED_ORDERS,
    WAREHOUSE_POOL,
)
from orders_platform.assets.raw import build_raw_asset
from orders_platform.checks.gates import run_gate_by_partition
from orders_platform.checks.schemas import SilverOrders
from orders_platform.observability import counts_metadata, frame_metadata, table_schema
from orders_platform.partitions import lake_backfill_policy, warehouse_backfill_policy
from orders_platform.storage.warehouse.base import Warehouse
from orders_platform.transforms.enrich import enrich_orders
from orders_platform.transforms.malformed import split_malformed
from orders_platform.transforms.orders import validate_orders
from orders_platform.transforms.schema import (
    ORDER_SOURCE_COLUMNS,
    RAW_ORDERS_SCHEMA,
    REJECTED_ORDERS_SCHEMA,
    SILVER_ORDERS_SCHEMA,
    VALIDATED_ORDERS_SCHEMA,
)

SILVER_GATE = "silver_orders_schema"


def _provisional(context: AssetExecutionContext) -> bool:
    now = run_now(context)
    return any(provisional(date.fromisoformat(k), now) for k in context.partition_keys)


def _freshness_lag(upserted: pl.DataFrame, now: datetime) -> dict:
    """now - newest updated_at written: the age of silver.orders' newest change (SPEC §10),
    a number so the asset's plot shows the lag over the day."""
    newest = upserted.get_column("updated_at").max() if upserted.height else None
    if newest is None:
        return {}
    return {"freshness_lag_seconds": MetadataValue.float(round((now - newest).total_seconds(), 3))}


def build_orders_assets(
    partitions_def: PartitionsDefinition,
    warehouse_kind: str,
    *,
    intraday: bool = True,
    overlap_minutes: int = 5,
) -> list:
    raw_orders = build_raw_asset(
        RAW_ORDERS,
        lambda source, day: source.extract_orders(day),
        RAW_ORDERS_SCHEMA,
        partitions_def,
        "Order change records whose updated_at falls in the UTC day, exactly as the source "
        "delivered them (strings), plus _source, _extracted_at and _run_id. The open day "
        "grows by one part per intraday tick (only what is new since its watermark).",
        intraday=intraday,
        overlap=timedelta(minutes=overlap_minutes),
        incremental=True,
    )

    @multi_asset(
        outs={
            "validated_orders": AssetOut(
                key=VALIDATED_ORDERS,
                group_name="validated",
                kinds={"polars", "parquet"},
                owners=OWNERS,
                io_manager_key=LAKE_IO_MANAGER,
                description=(
                    "Orders that passed SPEC §3 validation, normalised and typed "
                    "(Decimal(12,2) money, UTC timestamps); one row per order_id, the "
                    "latest updated_at of the day wins."
                ),
            ),
            "rejected_orders": AssetOut(
                key=REJECTED_ORDERS,
                group_name="validated",
                kinds={"polars", "parquet"},
                owners=OWNERS,
                io_manager_key=LAKE_IO_MANAGER,
                description=(
                    "Dead-letter set: every rejected raw row with its raw values as "
                    "strings, the first matching reason code, a detail and _run_id."
                ),
            ),
        },
        ins={"raw_orders": AssetIn(key=RAW_ORDERS)},
        partitions_def=partitions_def,
        backfill_policy=lake_backfill_policy(),
    )
    def validated_orders(context: AssetExecutionContext, raw_orders: dict[str, pl.DataFrame]):
        valid: dict[str, pl.DataFrame] = {}
        rejected: dict[str, pl.DataFrame] = {}
        reasons: Counter[str] = Counter()
        duplicates = unknown_methods = rows_in = 0
        per_day: dict[str, dict[str, int]] = {}
        for key in context.partition_keys:
            to_validate, malformed = split_malformed(raw_orders[key], ORDER_SOURCE_COLUMNS)
            result = validate_orders(to_validate)
            valid[key] = result.valid
            rejected[key] = pl.concat(
                [
                    malformed.cast(REJECTED_ORDERS_SCHEMA),
                    result.rejected.cast(REJECTED_ORDERS_SCHEMA),
                ]
            )
            reasons.update(result.rejected_by_reason)
            reasons.update(dict(malformed.group_by("reason").len().iter_rows()))
            duplicates += result.duplicates_collapsed
            unknown_methods += result.unknown_payment_methods
            rows_in += raw_orders[key].height
            per_day[key] = {
                "raw": raw_orders[key].height,
                "valid": result.valid.height,
                "rejected": result.rejected.height,
                "duplicates_collapsed": result.duplicates_collapsed,
            }
            if result.unknown_payment_methods:
                context.log.warning(
                    f"{key}: {result.unknown_payment_methods} orders with an unknown "
                    "payment_method (kept, mapped to 'unknown')"
                )
        rows_valid = sum(df.height for df in valid.values())
        rows_rejected = sum(df.height for df in rejected.values())
        shared = {
            "rows_in": rows_in,
            "rows_valid": rows_valid,
            "rows_rejected": rows_rejected,
            "duplicates_collapsed": duplicates,
            "unknown_payment_methods": unknown_methods,
            "rejected_by_reason": counts_metadata(reasons),
        }
        if len(per_day) > 1:
            shared["per_partition"] = MetadataValue.json(per_day)
        shared["provisional"] = _provisional(context)
        last = context.partition_keys[-1]
        yield Output(
            valid,
            output_name="validated_orders",
            metadata={
                **shared,
                **frame_metadata(valid[last]),
                "dagster/row_count": rows_valid,
                "dagster/column_schema": table_schema(VALIDATED_ORDERS_SCHEMA),
            },
        )
        yield Output(
            rejected,
            output_name="rejected_orders",
            metadata={
                **shared,
                **frame_metadata(rejected[last]),
                "dagster/row_count": rows_rejected,
                "dagster/column_schema": table_schema(REJECTED_ORDERS_SCHEMA),
            },
        )

    @asset(
        key=SILVER_ORDERS,
        ins={"validated_orders": AssetIn(key=VALIDATED_ORDERS)},
        group_name="silver",
        kinds={"polars", warehouse_kind},
        owners=OWNERS,
        partitions_def=partitions_def,
        backfill_policy=warehouse_backfill_policy(),
        pool=WAREHOUSE_POOL,
        check_specs=[
            AssetCheckSpec(
                SILVER_GATE,
                asset=SILVER_ORDERS,
                blocking=True,
                description="pandera SilverOrders model on the enriched batch, before the write",
            )
        ],
        description=(
            "Enriched current-state orders (SPEC §4), one row per order_id, upserted into "
            "the warehouse table silver.orders: a row replaces the stored one only if its "
            "updated_at is newer."
        ),
        metadata={"table": "silver.orders"},
    )
    def silver_orders(
        context: AssetExecutionContext,
        validated_orders: dict[str, pl.DataFrame],
        warehouse: Warehouse,
    ):
        ingested_at = datetime.now(UTC)
        # The open day: only rows later ticks added (the newer-wins upsert makes re-sending
        # harmless, this keeps a tick's warehouse work proportional to its increment).
        pending = {
            key: not_yet_upserted(context, SILVER_ORDERS, key, validated_orders[key])
            for key in context.partition_keys
        }
        enriched = {key: enrich_orders(rows, ingested_at) for key, (rows, _) in pending.items()}
        combined = pl.concat(list(enriched.values()))
        gate = run_gate_by_partition(SilverOrders, enriched)
        if not gate.passed:
            yield AssetCheckResult(
                check_name=SILVER_GATE,
                passed=False,
                severity=AssetCheckSeverity.ERROR,
                metadata=gate.metadata,
            )
            raise Failure(
                description=f"silver/orders gate failed on {gate.failing_rows} rows; "
                "nothing was written to the warehouse",
                metadata=gate.metadata,
            )
        totals: Counter[str] = Counter()
        for key in context.partition_keys:
            stats = warehouse.upsert_orders(enriched[key])
            totals.update(
                rows_in=stats.rows_in,
                inserted=stats.inserted,
                updated=stats.updated,
                unchanged=stats.unchanged,
            )
            context.log.info(f"{key}: upserted into silver.orders: {stats}")
        yield MaterializeResult(
            metadata={
                "provisional": _provisional(context),
                **_freshness_lag(pl.concat(list(validated_orders.values())), run_now(context)),
                APPLIED_KEY: MetadataValue.json({k: mark for k, (_, mark) in pending.items()}),
                "warehouse": warehouse.kind,
                "table": "silver.orders",
                "rows_in": totals["rows_in"],
                "inserted": totals["inserted"],
                "updated": totals["updated"],
                "unchanged": totals["unchanged"],
                **frame_metadata(combined),
                "dagster/column_schema": table_schema(SILVER_ORDERS_SCHEMA),
            },
            check_results=[
                AssetCheckResult(check_name=SILVER_GATE, passed=True, metadata=gate.metadata)
            ],
        )

    return [raw_orders, validated_orders, silver_orders]
