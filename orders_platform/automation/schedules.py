"""The daily schedule: materialize the UTC day that just closed.

It ticks every day at 00:00 UTC + `ORDERS_SCHEDULE_DELAY_MINUTES` (default 30: "30 0 * * *"),
the delay leaving late records time to reach the source, and requests one run of
`orders_daily_job` for the previous day D with everything of D except silver/sessions:
raw/orders -> validated/orders (+ rejected) -> silver/orders, raw/events ->
validated/rejected_events, and their checks. run_key ``daily-D``: a tick evaluated twice
never launches D twice.

silver/sessions is left to the sessions asset sensor (sensors.py). Sessions of D read
raw/events of D-1, D and D+1 so that a session running past midnight is neither split nor
counted twice; at 00:30 on D+1, raw/events of D+1 does not exist yet. Requesting
silver/sessions for D-1 from the schedule (whose neighbours look complete) would race with
the run that is still writing raw/events of D. Instead, when this run's raw/events of D
lands, the sensor requests silver/sessions for D-1, now that D-2, D-1 and D are all present;
sessions of D follow a day later. The same rule covers backfills, manual runs and the
landing sensor, and a re-extracted raw/events day re-derives its neighbours' sessions.

Under ``ORDERS_SOURCE=landing`` the landing sensor launches days when their files arrive;
the schedule is then created STOPPED (an operator can still turn it on).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
    schedule,
)

from orders_platform.automation.jobs import DAY_CLOSE_ASSETS, TRIGGER_TAG, orders_daily_job

DEFAULT_DELAY_MINUTES = 30
MAX_DELAY_MINUTES = 24 * 60 - 1


def daily_cron(delay_minutes: int) -> str:
    """The cron string of a tick `delay_minutes` after midnight (UTC)."""
    if not 0 <= delay_minutes <= MAX_DELAY_MINUTES:
        raise ValueError(
            f"ORDERS_SCHEDULE_DELAY_MINUTES must be between 0 and {MAX_DELAY_MINUTES}, "
            f"got {delay_minutes}"
        )
    hour, minute = divmod(delay_minutes, 60)
    return f"{minute} {hour} * * *"


def closed_day(tick_time: datetime, delay_minutes: int) -> date:
    """The UTC day a tick at `tick_time` materializes: the day before the tick's day."""
    tick_utc = tick_time.astimezone(UTC)
    return (tick_utc - timedelta(minutes=delay_minutes)).date() - timedelta(days=1)


def build_daily_schedule(
    partitions_def: TimeWindowPartitionsDefinition,
    delay_minutes: int = DEFAULT_DELAY_MINUTES,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.RUNNING,
) -> ScheduleDefinition:
    first_day = partitions_def.start.astimezone(UTC).date()

    @schedule(
        name="orders_daily_schedule",
        cron_schedule=daily_cron(delay_minutes),
        execution_timezone="UTC",
        job=orders_daily_job,
        default_status=default_status,
        description=(
            f"At 00:00 UTC + {delay_minutes} min, materializes the previous UTC day: orders "
            "raw -> silver and events raw -> dead letters. silver/sessions follows from the "
            "sessions sensor once the next day's raw events exist."
        ),
    )
    def orders_daily_schedule(context: ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or datetime.now(UTC)
        day = closed_day(tick, delay_minutes)
        if day < first_day:
            return SkipReason(f"{day} is before the first partition ({first_day})")
        key = day.isoformat()
        return RunRequest(
            run_key=f"daily-{key}",
            partition_key=key,
            asset_selection=list(DAY_CLOSE_ASSETS),
            tags={TRIGGER_TAG: "schedule"},
        )

    return orders_daily_schedule
