"""Orders assets: raw -> validated (+ dead letters) -> silver. Thin wiring only.

Every asset handles one or many partition keys (a backfill range runs as one run):
frames travel as {partition_key: DataFrame} dicts, which the lake IO manager writes and
loads partition by partition.
"""

import time
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
    ResourceParam,
    asset,
    multi_asset,
)

from orders_platform.assets.intraday import (
    APPLIED_KEY,
    held_validation,
    not_yet_upserted,
    provisional,
    raw_runs_of,
    run_now,
    validation_footer,
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
from orders_platform.checks import contracts
from orders_platform.checks.gates import run_gate_by_partition
from orders_platform.observability import (
    counts_metadata,
    frame_metadata,
    rate,
    rejection_summary,
    seconds_since,
    table_schema,
)
from orders_platform.partitions import lake_backfill_policy, warehouse_backfill_policy
from orders_platform.storage.lake import ParquetLakeIOManager
from orders_platform.storage.lake_parts import LakePart
from orders_platform.storage.warehouse.base import Warehouse
from orders_platform.transforms.enrich import enrich_orders
from orders_platform.transforms.increments import merge_latest
from orders_platform.transforms.malformed import split_malformed
from orders_platform.transforms.orders import validate_orders
from orders_platform.transforms.schema import (
    ORDER_SOURCE_COLUMNS,
    RAW_ORDERS_SCHEMA,
    REJECTED_ORDERS_SCHEMA,
    SILVER_ORDERS_SCHEMA,
    UNKNOWN_PAYMENT_METHOD,
    VALIDATED_ORDERS_SCHEMA,
)

SILVER_GATE = "silver_orders_schema"


def _provisional(context: AssetExecutionContext) -> bool:
    now = run_now(context)
    return any(provisional(date.fromisoformat(k), now) for k in context.partition_keys)


def _freshness_lag(context: AssetExecutionContext, validated: dict[str, pl.DataFrame]) -> dict:
    """On an intraday tick: now - newest updated_at of the open day, the age of
    silver.orders' newest change (SPEC §10), as a number so the asset's plot shows the lag
    over the day. A closed day's lag only measures how long ago it closed: not reported."""
    now = run_now(context)
    open_days = [k for k in validated if provisional(date.fromisoformat(k), now)]
    upserted = pl.concat([validated[k] for k in open_days]) if open_days else None
    newest = upserted.get_column("updated_at").max() if upserted is not None else None
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
    def validated_orders(
        context: AssetExecutionContext,
        raw_orders: dict[str, pl.LazyFrame],
        lake_io_manager: ResourceParam[ParquetLakeIOManager],
    ):
        started = time.perf_counter()
        valid: dict[str, pl.DataFrame] = {}
        rejected: dict[str, pl.DataFrame] = {}
        footers: dict[str, dict[str, str]] = {}
        reasons: Counter[str] = Counter()
        reasons_by_day: dict[str, Counter[str]] = {}
        duplicates = unknown_methods = rows_in = rows_validated = 0
        per_day: dict[str, dict[str, int]] = {}
        now = run_now(context)
        for key in context.partition_keys:
            raw = raw_orders[key]
            raw_rows = raw.select(pl.len()).collect().item()
            # The open day: validate only the raw parts added since the last tick (read
            # alone, by their _run_id) and fold them into what the partition holds.
            is_open = intraday and provisional(date.fromisoformat(key), now)
            runs = raw_runs_of(raw) if is_open else set()
            held = (
                held_validation(lake_io_manager, key, runs, VALIDATED_ORDERS, REJECTED_ORDERS)
                if is_open
                else None
            )
            if held is not None:
                raw = raw.filter(~pl.col("_run_id").is_in(sorted(held.raw_runs)))
            new_raw = raw.collect()
            to_validate, malformed = split_malformed(new_raw, ORDER_SOURCE_COLUMNS)
            result = validate_orders(to_validate)
            valid[key] = result.valid
            rejected[key] = pl.concat(
                [
                    malformed.cast(REJECTED_ORDERS_SCHEMA),
                    result.rejected.cast(REJECTED_ORDERS_SCHEMA),
                ]
            )
            collapsed = result.duplicates_collapsed
            if held is not None:
                valid[key], merged = merge_latest(held.valid, result.valid)
                rejected[key] = pl.concat(
                    [held.rejected.cast(REJECTED_ORDERS_SCHEMA), rejected[key]]
                )
                collapsed += held.duplicates + merged
            if is_open:
                footers[key] = validation_footer(runs, collapsed)
            reasons_by_day[key] = Counter(dict(rejected[key].group_by("reason").len().iter_rows()))
            reasons.update(reasons_by_day[key])
            unknown = (
                valid[key].select((pl.col("payment_method") == UNKNOWN_PAYMENT_METHOD).sum()).item()
            )
            duplicates += collapsed
            unknown_methods += unknown
            rows_in += raw_rows
            rows_validated += new_raw.height
            per_day[key] = {
                "raw": raw_rows,
                "valid": valid[key].height,
                "rejected": rejected[key].height,
                "duplicates_collapsed": collapsed,
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
            "reject_rate": rate(rows_rejected, rows_in),
            "duplicates_collapsed": duplicates,
            "unknown_payment_methods": unknown_methods,
            "rejected_by_reason": counts_metadata(reasons),
            "rows_validated_by_this_run": rows_validated,
            "summary": rejection_summary(per_day, reasons_by_day),
            "duration_seconds": seconds_since(started),
        }
        if len(per_day) > 1:
            shared["per_partition"] = MetadataValue.json(per_day)
        shared["provisional"] = _provisional(context)
        last = context.partition_keys[-1]
        yield Output(
            {k: LakePart(df, footer=footers[k]) if k in footers else df for k, df in valid.items()},
            output_name="validated_orders",
            metadata={
                **shared,
                **frame_metadata(valid[last]),
                "dagster/row_count": rows_valid,
                "dagster/column_schema": table_schema(VALIDATED_ORDERS_SCHEMA),
            },
        )
        yield Output(
            {
                k: LakePart(df, footer=footers[k]) if k in footers else df
                for k, df in rejected.items()
            },
            output_name="rejected_orders",
            metadata={
                **shared,
                **frame_metadata(rejected[last], as_received=True),
                "dagster/row_count": rows_rejected,
                "dagster/column_schema": table_schema(REJECTED_ORDERS_SCHEMA, as_received=True),
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
        started = time.perf_counter()
        ingested_at = datetime.now(UTC)
        # The open day: only rows later ticks added (the newer-wins upsert makes re-sending
        # harmless, this keeps a tick's warehouse work proportional to its increment).
        pending = {
            key: not_yet_upserted(context, SILVER_ORDERS, key, validated_orders[key])
            for key in context.partition_keys
        }
        enriched = {key: enrich_orders(rows, ingested_at) for key, (rows, _) in pending.items()}
        combined = pl.concat(list(enriched.values()))
        gate = run_gate_by_partition(contracts.SILVER_ORDERS, enriched)
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
                **_freshness_lag(context, validated_orders),
                APPLIED_KEY: MetadataValue.json({k: mark for k, (_, mark) in pending.items()}),
                "warehouse": warehouse.kind,
                "table": "silver.orders",
                "rows_in": totals["rows_in"],
                "inserted": totals["inserted"],
                "updated": totals["updated"],
                "unchanged": totals["unchanged"],
                "duration_seconds": seconds_since(started),
                **frame_metadata(combined),
                "dagster/column_schema": table_schema(SILVER_ORDERS_SCHEMA),
            },
            check_results=[
                AssetCheckResult(check_name=SILVER_GATE, passed=True, metadata=gate.metadata)
            ],
        )

    return [raw_orders, validated_orders, silver_orders]
