"""The raw assets: a source's day as received, plus lineage, into the lake."""

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    Output,
    PartitionsDefinition,
    asset,
)

from orders_platform.assets.keys import LAKE_IO_MANAGER, OWNERS
from orders_platform.observability import frame_metadata, seconds_since
from orders_platform.partitions import lake_backfill_policy
from orders_platform.sources.base import RawSource
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
) -> AssetsDefinition:
    """A raw asset: per partition key, the source's batches + lineage columns; metadata
    carries what the extraction reported (rows extracted, rows in the overlap, pages,
    files…) so a backlog or an oversized overlap is visible on the materialization."""

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
    def _raw(context: AssetExecutionContext, source: RawSource) -> Output:
        started = time.perf_counter()
        keys = context.partition_keys
        frames: dict[str, pl.DataFrame] = {}
        extraction: dict[str, dict] = {}
        for partition in keys:
            day = collect_day(extract(source, date.fromisoformat(partition)), empty_schema)
            frames[partition] = with_lineage(day, source.name, context.run.run_id)
            extraction[partition] = {
                **source.last_extract_stats(),
                "rows_written": frames[partition].height,
            }
            context.log.info(f"{partition}: extracted {day.height} rows from {source.name}")
        rows = sum(df.height for df in frames.values())
        return Output(
            frames,
            metadata={
                "source": source.name,
                "rows_written": rows,
                "extraction": MetadataValue.json(
                    extraction if len(keys) > 1 else extraction[keys[0]]
                ),
                **frame_metadata(frames[keys[-1]], as_received=True),
                "dagster/row_count": rows,
                "duration_seconds": seconds_since(started),
            },
        )

    return _raw
