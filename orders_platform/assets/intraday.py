"""The open day's raw orders: one intraday tick reads only what is new (SPEC §10).

A materialization of raw/orders for a day that has not closed (per the run's clock) is a
*tick*: the source is asked for the records with ``updated_at`` in
``[watermark - overlap, now)``, where the watermark is the end of the newest window the
lake partition already holds (lake_parts.py: it is committed atomically with the rows),
and the rows are appended to the partition as one atomic part. Rows of the overlap that
the lake already holds (identical in every source column) are not written again, so the
partition holds each change record once, like a full extraction. A killed tick committed
nothing: the next one reads the same window again.

A closed day, a full refresh (run config ``full_refresh: true`` or the run tag
``orders_platform/full_refresh=true``) and a source without increments re-extract in full
and replace the partition. The run tag ``orders_platform/now`` (ISO instant) sets the run's
clock: the tests and replays use it instead of sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, AssetKey, AssetRecordsFilter, Config
from pydantic import Field

from orders_platform.partitions import day_end, day_start, is_open_day, utc_now
from orders_platform.sources.base import Increment, RawSource
from orders_platform.storage.lake import ParquetLakeIOManager
from orders_platform.storage.lake_parts import FOOTER_FILES_KEY, LakePart, watermark
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

NOW_TAG = "orders_platform/now"
FULL_REFRESH_TAG = "orders_platform/full_refresh"


class ExtractConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description="Re-extract the open day in full and replace its lake partition "
        "(closed days are always extracted in full).",
    )


def run_now(context: AssetExecutionContext) -> datetime:
    """The run's clock: the ``orders_platform/now`` tag if set, else the wall clock."""
    text = context.run.tags.get(NOW_TAG)
    if not text:
        return utc_now()
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def full_refresh_requested(context: AssetExecutionContext, config: ExtractConfig) -> bool:
    return config.full_refresh or context.run.tags.get(FULL_REFRESH_TAG, "").lower() in (
        "1",
        "true",
        "yes",
    )


def provisional(day: date, now: datetime) -> bool:
    """A materialization of a day that has not closed is provisional until the day close."""
    return is_open_day(day, now)


def supports_increments(source: RawSource) -> bool:
    return type(source).extract_orders_increment is not RawSource.extract_orders_increment


@dataclass
class Extracted:
    """One partition's extraction: what to store and what to report."""

    stored: pl.DataFrame | LakePart
    stats: dict[str, Any] = field(default_factory=dict)


def drop_held(new: pl.DataFrame, held: pl.LazyFrame) -> pl.DataFrame:
    """`new` without the rows `held` already has (same value in every source column).

    Only held rows sharing an order_id with `new` are read in full (the order_id column is
    scanned first), so the cost follows the increment, not the day already held.
    """
    if not new.height:
        return new
    keys = [c for c in ORDER_SOURCE_COLUMNS if c in new.columns]
    ids = new.get_column("order_id").drop_nulls().unique()
    same_order = pl.col("order_id").is_in(ids.implode())
    if new.get_column("order_id").null_count():
        same_order = same_order | pl.col("order_id").is_null()
    seen = held.filter(same_order).select(pl.col(c).cast(pl.String) for c in keys).unique()
    return new.join(seen.collect(), on=keys, how="anti", nulls_equal=True)


def extract_orders_day(
    *,
    source: RawSource,
    lake: ParquetLakeIOManager,
    key_path: list[str],
    day: date,
    now: datetime,
    full_refresh: bool,
    intraday: bool,
    overlap: timedelta,
    collect: Callable[[Iterator[pl.DataFrame]], pl.DataFrame],
    lineage: Callable[[pl.DataFrame], pl.DataFrame],
) -> Extracted:
    """Extract raw orders of `day`: a closed day in full, the open day as one tick."""
    partition = day.isoformat()
    now = now.replace(microsecond=0)  # windows in whole seconds, as every API accepts
    is_open = intraday and is_open_day(day, now)
    if not is_open or not supports_increments(source):
        frame = collect(source.extract_orders(day))
        stats = {"mode": "full", **source.last_extract_stats()}
        stats.setdefault("rows_extracted", frame.height)
        until = min(now, day_end(day)) if is_open else None
        stored = LakePart(
            lineage(frame), until=until, open_day=is_open, footer=_files_footer(source)
        )
        return Extracted(stored, stats)

    parts = lake.live_parts(key_path, partition)
    held_until = watermark(p for p, _ in parts)
    start = day_start(day) if full_refresh or held_until is None else held_until
    until = min(max(now, start), day_end(day))
    seen: set[str] = set()
    if source.incremental_by_files and not full_refresh:
        for _, path in parts:
            seen.update(json.loads(lake.read_footer(path).get(FOOTER_FILES_KEY, "[]")))
    increment = Increment(start=start, until=until, overlap=overlap, seen_files=frozenset(seen))
    frame = collect(source.extract_orders_increment(day, increment))
    stats = {
        "mode": "full" if full_refresh else "incremental",
        **source.last_extract_stats(),
        "watermark": None if held_until is None else held_until.isoformat(),
        "window_start": (increment.since if not source.incremental_by_files else start).isoformat(),
        "window_end": until.isoformat(),
    }
    stats.setdefault("rows_extracted", frame.height)
    already_held = 0
    if not full_refresh and parts and not source.incremental_by_files:
        # Only parts whose window reaches into the overlap can hold re-read rows.
        recent = [path for p, path in parts if p.until is None or p.until > increment.since]
        if recent:
            kept = drop_held(frame, lake.scan_paths(recent))
            already_held = frame.height - kept.height
            frame = kept
    stats["rows_already_held"] = already_held
    stored = LakePart(
        lineage(frame),
        until=until,
        append=not full_refresh,
        open_day=True,
        footer=_files_footer(source),
    )
    return Extracted(stored, stats)


def _files_footer(source: RawSource) -> dict[str, str]:
    files = source.last_extract_stats().get("files_read")
    if not source.incremental_by_files or files is None:
        return {}
    return {FOOTER_FILES_KEY: json.dumps(sorted(files))}


APPLIED_KEY = "applied_extracted_through"


def not_yet_upserted(
    context: AssetExecutionContext, key: AssetKey, partition: str, validated: pl.DataFrame
) -> tuple[pl.DataFrame, str | None]:
    """The open day's validated rows the warehouse has not received yet.

    Every successful silver/orders materialization records, per partition, the newest
    ``_extracted_at`` of the validated rows it upserted (`APPLIED_KEY`); rows extracted by
    later ticks are newer. A tick killed before silver recorded anything leaves the mark
    where it was, so its rows are upserted by the next tick (the upsert is idempotent).
    Returns the rows to upsert and the new mark.
    """
    newest = validated.get_column("_extracted_at").max() if validated.height else None
    mark = None if newest is None else newest.isoformat()
    if not is_open_day(date.fromisoformat(partition), run_now(context)):
        return validated, mark
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    applied = records[0].asset_materialization.metadata.get(APPLIED_KEY) if records else None
    through = (applied.value or {}).get(partition) if applied is not None else None
    if not through:
        return validated, mark
    since = datetime.fromisoformat(through)
    return validated.filter(pl.col("_extracted_at") > since), mark


RAW_RUNS_KEY = "orders_platform.raw_runs"
DUPLICATES_KEY = "orders_platform.duplicates_collapsed"


@dataclass
class HeldValidation:
    """What validated/orders and the dead letters of the open day already hold, and which
    raw runs (ticks) they were derived from."""

    valid: pl.DataFrame
    rejected: pl.DataFrame
    raw_runs: frozenset[str]
    duplicates: int


def held_validation(
    lake: ParquetLakeIOManager, partition: str, raw_runs: set[str], valid_key, rejected_key
) -> HeldValidation | None:
    """The open day's validated rows and dead letters so far, if they can be extended:
    both files record (in their footers) the same raw runs, and every one of those runs is
    still in the raw partition (a full refresh or the day close replaced it otherwise).
    None: validate the whole raw partition."""
    runs: list[tuple[frozenset[str], int]] = []
    for key in (valid_key, rejected_key):
        parts = lake.live_parts(list(key.path), partition)
        if len(parts) != 1:
            return None
        footer = lake.read_footer(parts[0][1])
        if RAW_RUNS_KEY not in footer:
            return None
        runs.append((frozenset(json.loads(footer[RAW_RUNS_KEY])), int(footer[DUPLICATES_KEY])))
    if runs[0] != runs[1]:
        return None  # killed between the two writes
    held_runs, duplicates = runs[0]
    if not held_runs <= raw_runs:
        return None
    return HeldValidation(
        valid=lake.read_partition(list(valid_key.path), partition),
        rejected=lake.read_partition(list(rejected_key.path), partition),
        raw_runs=held_runs,
        duplicates=duplicates,
    )


def raw_runs_of(raw: pl.LazyFrame) -> set[str]:
    """The runs (ticks) whose parts a raw partition holds (one column read)."""
    return set(raw.select(pl.col("_run_id").unique()).collect().get_column("_run_id").drop_nulls())


def validation_footer(raw_runs: set[str], duplicates: int) -> dict[str, str]:
    return {RAW_RUNS_KEY: json.dumps(sorted(raw_runs)), DUPLICATES_KEY: str(duplicates)}
