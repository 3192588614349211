"""Clickstream assets: raw/events -> validated/rejected_events, silver/sessions.

silver/sessions for day D reads raw events of D-1, D and D+1 (a TimeWindowPartitionMapping
with offsets -1/+1) so that a session starting late on D is complete and a session that
started on D-1 is recognised as such and not emitted again by D. A neighbour that is not
in the lake yet (the last day of a backfill whose next day was never extracted) does not fail
the run: the edge day is written provisionally and the sessions sensor re-derives it when the
neighbour lands. See README "Sessions".
"""

import statistics
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
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    PartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
)

from orders_platform.assets.keys import (
    LAKE_IO_MANAGER,
    OWNERS,
    RAW_EVENTS,
    REJECTED_EVENTS,
    SILVER_SESSIONS,
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
from orders_platform.storage.warehouse.base import Warehouse
from orders_platform.transforms.events import RAW_EVENTS_SCHEMA, clean_events
from orders_platform.transforms.reconcile import reconcile_sessions
from orders_platform.transforms.sessions import (
    SESSIONS_SCHEMA,
    possibly_truncated,
    sessions_for_day,
)

SESSIONS_GATE = "sessions_schema"
BACKFILL_TAG = "dagster/backfill"
SESSIONS_RECONCILIATION = "events_reconciliation"


def build_events_assets(
    partitions_def: PartitionsDefinition, warehouse_kind: str, session_gap: timedelta
) -> list:
    raw_events = build_raw_asset(
        RAW_EVENTS,
        lambda source, day: source.extract_events(day),
        RAW_EVENTS_SCHEMA,
        partitions_def,
        "User clickstream events of the UTC day exactly as the source delivered them "
        "(strings), plus _source, _extracted_at and _run_id.",
    )

    @asset(
        key=REJECTED_EVENTS,
        ins={"raw_events": AssetIn(key=RAW_EVENTS)},
        group_name="validated",
        kinds={"polars", "parquet"},
        owners=OWNERS,
        partitions_def=partitions_def,
        backfill_policy=lake_backfill_policy(),
        io_manager_key=LAKE_IO_MANAGER,
        description=(
            "Dead-letter set of events that cannot be used (missing user_id, missing or "
            "unparseable event_timestamp): raw values as strings, reason, detail, _run_id."
        ),
    )
    def rejected_events(
        context: AssetExecutionContext, raw_events: dict[str, pl.DataFrame]
    ) -> Output:
        started = time.perf_counter()
        rejected: dict[str, pl.DataFrame] = {}
        reasons: Counter[str] = Counter()
        reasons_by_day: dict[str, dict[str, int]] = {}
        per_day: dict[str, dict[str, int]] = {}
        valid_rows = 0
        for key in context.partition_keys:
            result = clean_events(raw_events[key])
            rejected[key] = result.rejected
            reasons_by_day[key] = {k: v for k, v in result.rejected_by_reason.items() if v}
            reasons.update(reasons_by_day[key])
            valid_rows += result.valid.height
            per_day[key] = {
                "raw": raw_events[key].height,
                "valid": result.valid.height,
                "rejected": result.rejected.height,
            }
        rows_raw = sum(raw_events[k].height for k in context.partition_keys)
        rows_rejected = sum(df.height for df in rejected.values())
        if rows_raw != valid_rows + rows_rejected:
            raise Failure(
                f"events lost in cleaning: raw {rows_raw} != valid {valid_rows} + rejected "
                f"{rows_rejected}"
            )
        return Output(
            rejected,
            metadata={
                "rows_in": rows_raw,
                "rows_valid": valid_rows,
                "rows_rejected": rows_rejected,
                "reject_rate": rate(rows_rejected, rows_raw),
                "rejected_by_reason": counts_metadata(reasons),
                "summary": rejection_summary(per_day, reasons_by_day),
                "duration_seconds": seconds_since(started),
                **frame_metadata(rejected[context.partition_keys[-1]], as_received=True),
                "dagster/row_count": rows_rejected,
            },
        )

    @asset(
        key=SILVER_SESSIONS,
        ins={
            "raw_events": AssetIn(
                key=RAW_EVENTS,
                partition_mapping=TimeWindowPartitionMapping(
                    start_offset=-1, end_offset=1, allow_nonexistent_upstream_partitions=True
                ),
                # The day(s) themselves are required (checked below); a neighbour not yet in
                # the lake makes the result provisional instead of failing the run.
                metadata={"allow_missing_partitions": True},
            )
        },
        group_name="silver",
        kinds={"polars", warehouse_kind},
        owners=OWNERS,
        partitions_def=partitions_def,
        backfill_policy=warehouse_backfill_policy(),
        pool=WAREHOUSE_POOL,
        check_specs=[
            AssetCheckSpec(
                SESSIONS_GATE,
                asset=SILVER_SESSIONS,
                blocking=True,
                description="pandera Sessions model on the day's sessions, before the write",
            ),
            AssetCheckSpec(
                SESSIONS_RECONCILIATION,
                asset=SILVER_SESSIONS,
                blocking=True,
                description="every distinct valid event of the day's sessions is in exactly "
                "one session; converted sessions are those with a purchase",
            ),
        ],
        description=(
            "One row per user session (SPEC §5), the sessions that START on the UTC day; "
            "replaces that day's rows of the warehouse table silver.sessions. Reads raw "
            "events of the day before and after so no session is split or counted twice; "
            "when one of them is not in the lake yet the day is written as provisional "
            "(metadata `provisional`) and re-derived by silver_sessions_sensor once it lands."
        ),
        metadata={
            "table": "silver.sessions",
            "session_gap_minutes": session_gap / timedelta(minutes=1),
        },
    )
    def silver_sessions(
        context: AssetExecutionContext,
        raw_events: dict[str, pl.DataFrame],
        warehouse: Warehouse,
    ):
        started = datetime.now(UTC)
        absent = [k for k in context.partition_keys if k not in raw_events]
        if len(absent) == len(context.partition_keys) and BACKFILL_TAG not in context.run.tags:
            raise Failure(
                description=f"raw/events is not in the lake for {absent}: materialize raw/events "
                "for those days first; nothing was written to the warehouse"
            )
        if absent:
            # A UI backfill of D1..Dn targets sessions of D1-1..Dn+1 too (the partition
            # mapping carries raw/events of D1 to sessions of D1-1): days never extracted
            # are left alone rather than failing the backfill or emptying the table.
            context.log.warning(
                f"raw/events of {absent} is not in the lake: silver.sessions of those days is "
                "left as it is"
            )
        days = [date.fromisoformat(k) for k in context.partition_keys if k in raw_events]
        missing_neighbours = _missing_neighbours(context, days, raw_events)
        if missing_neighbours:
            context.log.warning(
                f"raw/events of {missing_neighbours} is not in the lake yet: sessions at the "
                "edge of the range are provisional (a session crossing that midnight is cut); "
                "silver_sessions_sensor re-derives them when those days land"
            )
        frames = list(raw_events.values()) or [pl.DataFrame(schema=RAW_EVENTS_SCHEMA)]
        valid = pl.concat([clean_events(df).valid for df in frames]).rechunk()
        per_day = {day: sessions_for_day(valid, day, session_gap) for day in days}
        combined = (
            pl.concat(list(per_day.values())) if per_day else pl.DataFrame(schema=SESSIONS_SCHEMA)
        )
        gate = run_gate_by_partition(
            contracts.SESSIONS, {day.isoformat(): df for day, df in per_day.items()}
        )
        reconciliation = {
            day.isoformat(): reconcile_sessions(valid, sessions, day, session_gap)
            for day, sessions in per_day.items()
        }
        balanced = all(r["balanced"] for r in reconciliation.values())
        recon_meta = {"partitions": MetadataValue.json(reconciliation)}
        if not (gate.passed and balanced):
            yield AssetCheckResult(
                check_name=SESSIONS_GATE,
                passed=gate.passed,
                severity=AssetCheckSeverity.ERROR,
                metadata=gate.metadata,
            )
            yield AssetCheckResult(
                check_name=SESSIONS_RECONCILIATION, passed=balanced, metadata=recon_meta
            )
            raise Failure(
                description="silver/sessions gate failed; nothing was written to the warehouse",
                metadata={**gate.metadata, **recon_meta},
            )
        for day, sessions in per_day.items():
            written = warehouse.replace_sessions(sessions, day)
            context.log.info(f"{day}: replaced silver.sessions with {written} sessions")
        durations = combined.get_column("duration_seconds").to_list()
        truncated = sum(
            possibly_truncated(s, day, session_gap).height for day, s in per_day.items()
        )
        converted = int(combined.get_column("converted").sum() or 0)
        loaded_days = sorted(raw_events)
        yield MaterializeResult(
            metadata={
                "warehouse": warehouse.kind,
                "table": "silver.sessions",
                "sessions": combined.height,
                "events": int(combined.get_column("event_count").sum() or 0),
                "conversion_rate": MetadataValue.float(
                    round(converted / combined.height, 6) if combined.height else 0.0
                ),
                "median_duration_seconds": MetadataValue.float(
                    float(statistics.median(durations)) if durations else 0.0
                ),
                "possibly_truncated_sessions": truncated,
                "event_partitions_read": MetadataValue.json(loaded_days),
                "provisional": bool(missing_neighbours),
                "skipped_partitions": MetadataValue.json(absent),
                "missing_neighbour_partitions": MetadataValue.json(missing_neighbours),
                "seconds": MetadataValue.float(
                    round((datetime.now(UTC) - started).total_seconds(), 3)
                ),
                **frame_metadata(combined),
                "dagster/column_schema": table_schema(SESSIONS_SCHEMA),
            },
            check_results=[
                AssetCheckResult(check_name=SESSIONS_GATE, passed=True, metadata=gate.metadata),
                AssetCheckResult(
                    check_name=SESSIONS_RECONCILIATION, passed=True, metadata=recon_meta
                ),
            ],
        )

    return [raw_events, rejected_events, silver_sessions]


def _missing_neighbours(
    context: AssetExecutionContext, days: list[date], raw_events: dict[str, pl.DataFrame]
) -> list[str]:
    """Days next to `days` that exist as partitions but whose raw/events is not in the lake."""
    one_day = timedelta(days=1)
    neighbours = {(d + step).isoformat() for d in days for step in (-one_day, one_day)}
    partitions_def = context.assets_def.partitions_def
    return sorted(
        key
        for key in neighbours
        if key not in raw_events
        and partitions_def is not None
        and partitions_def.has_partition_key(key)
    )
