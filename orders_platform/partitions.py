"""Daily UTC partitions shared by every asset, the open day, and how a backfill groups
partitions into runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import BackfillPolicy, DailyPartitionsDefinition

# Warehouse writes run a week per run: bounded memory (a run holds its days' frames), a
# failure redoes at most a week, and a 30-day backfill pays a run's fixed cost 5 times, not
# 30, while the `warehouse` pool still serialises the writers.
WAREHOUSE_DAYS_PER_RUN = 7


def daily_partitions(start: date, *, open_day: bool = True) -> DailyPartitionsDefinition:
    """Days from `start`; with `open_day` (``ORDERS_INTRADAY``, the default) today (UTC) is
    a partition too (``end_offset=1``), materialized provisionally until it closes."""
    return DailyPartitionsDefinition(
        start_date=start.isoformat(), timezone="UTC", end_offset=1 if open_day else 0
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_end(day: date) -> datetime:
    return day_start(day) + timedelta(days=1)


def is_open_day(day: date, now: datetime) -> bool:
    """Whether `day` has not closed yet at `now`: its data is still arriving."""
    return now.astimezone(UTC) < day_end(day)


def lake_backfill_policy() -> BackfillPolicy:
    """Lake assets (raw, validated, dead letters): a backfilled range is one run.

    The lake IO manager reads and writes a range partition by partition (dict outputs and
    inputs), so a range run does the same per-day work as N single-day runs without N
    process start-ups; the range's frames are held in memory together (about 60 MB per day
    at the demo's default volume).
    """
    return BackfillPolicy.single_run()


def warehouse_backfill_policy() -> BackfillPolicy:
    """Warehouse assets (silver/*): ranges of `WAREHOUSE_DAYS_PER_RUN` days per run."""
    return BackfillPolicy.multi_run(max_partitions_per_run=WAREHOUSE_DAYS_PER_RUN)
