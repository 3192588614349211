"""Asset checks on the orders partitions: schema gate, reconciliation, reject rate."""

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    AssetRecordsFilter,
    MetadataValue,
    PartitionsDefinition,
    asset_check,
)

from orders_platform.assets.keys import RAW_ORDERS, REJECTED_ORDERS, VALIDATED_ORDERS
from orders_platform.checks import contracts
from orders_platform.checks.gates import run_gate_by_partition
from orders_platform.observability import counts_metadata, markdown_table
from orders_platform.transforms.reconcile import reconcile_orders


def _claimed_duplicates(context: AssetCheckExecutionContext, partition_key: str) -> int | None:
    """duplicates_collapsed as recorded by the latest validated/orders materialization."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=VALIDATED_ORDERS, asset_partitions=[partition_key]),
        limit=1,
    ).records
    if not records:
        return None
    mat = records[0].asset_materialization
    per_partition = mat.metadata.get("per_partition")
    if per_partition is not None:
        return int(per_partition.value[partition_key]["duplicates_collapsed"])
    value = mat.metadata.get("duplicates_collapsed")
    return None if value is None else int(value.value)


def build_orders_checks(
    partitions_def: PartitionsDefinition, max_reject_rate: float, reject_severity: str
) -> list:
    severity = AssetCheckSeverity(reject_severity)

    @asset_check(
        asset=VALIDATED_ORDERS,
        blocking=True,
        partitions_def=partitions_def,
        description="pandera ValidatedOrders model: types, ranges, unique order_id. "
        "Blocks silver/orders when it fails.",
    )
    def validated_orders_schema(
        context: AssetCheckExecutionContext, validated_orders: dict[str, pl.DataFrame]
    ) -> AssetCheckResult:
        gate = run_gate_by_partition(
            contracts.VALIDATED_ORDERS, {k: validated_orders[k] for k in context.partition_keys}
        )
        return AssetCheckResult(passed=gate.passed, metadata=gate.metadata)

    @asset_check(
        asset=VALIDATED_ORDERS,
        name="orders_reconciliation",
        blocking=True,
        partitions_def=partitions_def,
        additional_ins={
            "raw_orders": AssetIn(key=RAW_ORDERS),
            "rejected_orders": AssetIn(key=REJECTED_ORDERS),
        },
        description="No row is silently dropped: raw = validated + rejected + duplicates "
        "collapsed, and every validated order_id comes from the raw partition.",
    )
    def orders_reconciliation(
        context: AssetCheckExecutionContext,
        validated_orders: dict[str, pl.DataFrame],
        raw_orders: dict[str, pl.DataFrame],
        rejected_orders: dict[str, pl.DataFrame],
    ) -> AssetCheckResult:
        report: dict[str, dict] = {}
        passed = True
        for key in context.partition_keys:
            outcome = reconcile_orders(
                raw_orders[key],
                validated_orders[key],
                rejected_orders[key],
                duplicates_claimed=_claimed_duplicates(context, key),
            )
            report[key] = outcome
            passed = passed and outcome["balanced"]
        meta = {"partitions": MetadataValue.json(report)}
        if len(report) == 1:
            meta.update({k: v for k, v in next(iter(report.values())).items()})
        return AssetCheckResult(passed=passed, metadata=meta)

    @asset_check(
        asset=VALIDATED_ORDERS,
        name="reject_rate",
        blocking=True,
        partitions_def=partitions_def,
        additional_ins={
            "raw_orders": AssetIn(key=RAW_ORDERS),
            "rejected_orders": AssetIn(key=REJECTED_ORDERS),
        },
        description=f"rejected / raw must stay at or below {max_reject_rate:.2%} "
        f"(ORDERS_MAX_REJECT_RATE); severity {severity.value} "
        "(ORDERS_REJECT_RATE_SEVERITY=ERROR blocks silver).",
    )
    def reject_rate(
        context: AssetCheckExecutionContext,
        raw_orders: dict[str, pl.DataFrame],
        rejected_orders: dict[str, pl.DataFrame],
    ) -> AssetCheckResult:
        # (No validated_orders parameter: the check is about the dead letters, and a
        # parameter would load the whole validated partition from the lake for nothing.)
        raw_rows = sum(raw_orders[k].height for k in context.partition_keys)
        rejected = pl.concat([rejected_orders[k] for k in context.partition_keys])
        rate = rejected.height / raw_rows if raw_rows else 0.0
        reasons = dict(rejected.group_by("reason").len().iter_rows()) if rejected.height else {}
        return AssetCheckResult(
            passed=rate <= max_reject_rate,
            severity=severity,
            metadata={
                "reject_rate": MetadataValue.float(round(rate, 6)),
                "max_reject_rate": MetadataValue.float(max_reject_rate),
                "rows_raw": raw_rows,
                "rows_rejected": rejected.height,
                "top_reasons": counts_metadata(reasons),
                "sample_rejected": markdown_table(rejected, rows=10),
            },
        )

    return [validated_orders_schema, orders_reconciliation, reject_rate]
