"""Daily UTC partitions shared by every asset, the open day, and how a backfill groups
partitions into runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import BackfillPolicy, DailyPartitionsDefinition

# Every asset backfills ranges of up to DAYS_PER_RUN days per run, with ONE policy: Dagster's
# asset backfill only puts a parent and its child in the same run when their policies are
# equal, and each extra "wave" of runs waits for the backfill daemon's next evaluation (every
# 30 s, a constant of Dagster's daemon) plus a run start-up (~8 s). With one policy, raw ->
# validated -> silver/orders of a range is one run per 8 days; only silver/sessions (which
# reads raw/events of D-1..D+1) follows, as soon as its days' events are in. 8 days: a short
# backfill is one run per wave, a month is 4 runs side by side (max_concurrent_runs), memory
# stays bounded (0.67 GiB peak over 30 demo days, against 1.5 GiB with 35 days per run) and a
# failure redoes at most 8 days. The `warehouse` pool serialises the warehouse writers.
DAYS_PER_RUN = 8


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
    """Lake assets (raw, validated, dead letters): ranges of up to `DAYS_PER_RUN` days.

    The lake IO manager reads and writes a range partition by partition (dict outputs and
    inputs), so a range run does the same per-day work as N single-day runs without N
    process start-ups.
    """
    return BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN)


def warehouse_backfill_policy() -> BackfillPolicy:
    """Warehouse assets (silver/*): the same policy, so silver/orders joins the lake runs."""
    return BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN)
