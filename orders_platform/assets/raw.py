"""The raw assets: a source's day as received, plus lineage, into the lake."""

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    Output,
    PartitionsDefinition,
    ResourceParam,
    asset,
)

from orders_platform.assets.intraday import (
    ExtractConfig,
    extract_orders_day,
    full_refresh_requested,
    provisional,
    run_now,
)
from orders_platform.assets.keys import LAKE_IO_MANAGER, OWNERS
from orders_platform.observability import frame_metadata, seconds_since
from orders_platform.partitions import lake_backfill_policy
from orders_platform.sources.base import RawSource
from orders_platform.storage.lake import ParquetLakeIOManager
from orders_platform.storage.lake_parts import LakePart
from orders_platform.transforms.schema import LINEAGE_SCHEMA


def with_lineage(df: pl.DataFrame, source: str, run_id: str) -> pl.DataFrame:
    return df.with_columns(
        pl.lit(source, pl.String).alias("_source"),
        pl.lit(datetime.now(UTC), LINEAGE_SCHEMA["_extracted_at"]).alias("_extracted_at"),
        pl.lit(run_id, pl.String).alias("_run_id"),
    )


def collect_day(batches: Iterator[pl.DataFrame], schema: dict) -> pl.DataFrame:
    frames = [b for b in batches if b.height]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="vertical_relaxed")


def build_raw_asset(
    key: AssetKey,
    extract: Callable[[RawSource, date], Iterator[pl.DataFrame]],
    empty_schema: dict,
    partitions_def: PartitionsDefinition,
    description: str,
    *,
    intraday: bool = False,
    overlap: timedelta = timedelta(minutes=5),
    incremental: bool = False,
) -> AssetsDefinition:
    """A raw asset: per partition key, the source's batches + lineage columns; metadata
    carries what the extraction reported (mode, window, rows extracted, rows in the
    overlap, pages, files…) so a backlog or an oversized overlap is visible on the
    materialization. With `incremental` (orders), a materialization of the open day is an
    intraday tick (assets/intraday.py)."""

    @asset(
        key=key,
        group_name="raw",
        kinds={"python", "parquet"},
        owners=OWNERS,
        partitions_def=partitions_def,
        backfill_policy=lake_backfill_policy(),
        io_manager_key=LAKE_IO_MANAGER,
        description=description,
    )
    def _raw(
        context: AssetExecutionContext,
        config: ExtractConfig,
        source: RawSource,
        lake_io_manager: ResourceParam[ParquetLakeIOManager],
    ) -> Output:
        started = time.perf_counter()
        keys = context.partition_keys
        now = run_now(context)
        full_refresh = full_refresh_requested(context, config)
        frames: dict[str, pl.DataFrame | LakePart] = {}
        extraction: dict[str, dict] = {}
        last: pl.DataFrame | None = None
        for partition in keys:
            day = date.fromisoformat(partition)

            def lineage(df: pl.DataFrame) -> pl.DataFrame:
                return with_lineage(df, source.name, context.run.run_id)

            if incremental:
                result = extract_orders_day(
                    source=source,
                    lake=lake_io_manager,
                    key_path=list(key.path),
                    day=day,
                    now=now,
                    full_refresh=full_refresh,
                    intraday=intraday,
                    overlap=overlap,
                    collect=lambda batches: collect_day(batches, empty_schema),
                    lineage=lineage,
                )
                frames[partition] = result.stored
                stats = result.stats
            else:
                frames[partition] = lineage(collect_day(extract(source, day), empty_schema))
                stats = {"mode": "full", **source.last_extract_stats()}
            written = frames[partition]
            last = written.frame if isinstance(written, LakePart) else written
            extraction[partition] = {
                **stats,
                "rows_written": last.height,
                "provisional": provisional(day, now),
            }
            context.log.info(
                f"{partition}: {stats['mode']} extraction, {last.height} rows from {source.name}"
            )
        rows = sum(e["rows_written"] for e in extraction.values())
        is_provisional = any(e["provisional"] for e in extraction.values())
        return Output(
            frames,
            metadata={
                "source": source.name,
                "rows_written": rows,
                "provisional": is_provisional,
                "extraction": MetadataValue.json(
                    extraction if len(keys) > 1 else extraction[keys[0]]
                ),
                **frame_metadata(last, as_received=True),
                "dagster/row_count": rows,
                "duration_seconds": seconds_since(started),
            },
        )

    return _raw
