"""Daily UTC partitions shared by every asset."""

from __future__ import annotations

from datetime import date

from dagster import BackfillPolicy, DailyPartitionsDefinition

# Days per backfill run: a range run holds its days' frames in memory at once, so it
# is bounded; a 90-day backfill becomes a handful of runs instead of 90.
BACKFILL_DAYS_PER_RUN = 31


def daily_partitions(start: date) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


def backfill_policy() -> BackfillPolicy:
    return BackfillPolicy.multi_run(max_partitions_per_run=BACKFILL_DAYS_PER_RUN)
