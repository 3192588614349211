"""The intraday schedule: a tick of the open day every ``ORDERS_INTRADAY_MINUTES`` (SPEC §10).

``orders_intraday_schedule`` runs ``*/15 * * * *`` (UTC, every hour of the day) by default
and requests one run of `orders_intraday_job` for the tick's UTC day: raw/orders reads what
is new since the day's watermark, validated/orders and the dead letters are re-derived,
silver/orders is upserted. The first tick after midnight is the new day's first, and also runs the
closing day's *last* tick (its clock set to the last instant of that day with the
``orders_platform/now`` tag), so the changes of the day's last minutes do not wait for
the day close; the daily schedule then re-extracts the closed day in full.

One tick at a time: while a run of the intraday job is queued or running, a tick is skipped
with a reason naming that run (a slow tick delays the next one instead of piling runs on the
same partition). run_key ``intraday-<tick time>``: a tick evaluated twice launches once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
    schedule,
)

from orders_platform.assets.intraday import NOW_TAG
from orders_platform.automation.jobs import TRIGGER_TAG, orders_intraday_job
from orders_platform.partitions import day_end

DEFAULT_INTRADAY_MINUTES = 15
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def intraday_cron(minutes: int) -> str:
    """Every `minutes` (1..60) past each hour, every hour of the day."""
    if not 1 <= minutes <= 60:
        raise ValueError(f"ORDERS_INTRADAY_MINUTES must be between 1 and 60, got {minutes}")
    return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"


def build_intraday_schedule(
    partitions_def: TimeWindowPartitionsDefinition,
    minutes: int = DEFAULT_INTRADAY_MINUTES,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.RUNNING,
) -> ScheduleDefinition:
    first_day = partitions_def.start.astimezone(UTC).date()

    @schedule(
        name="orders_intraday_schedule",
        cron_schedule=intraday_cron(minutes),
        execution_timezone="UTC",
        job=orders_intraday_job,
        default_status=default_status,
        description=(
            f"Every {minutes} min: one incremental tick of the open (current UTC) day's "
            "orders, raw -> silver; skipped while the previous tick is still running."
        ),
    )
    def orders_intraday_schedule(context: ScheduleEvaluationContext):
        tick = (context.scheduled_execution_time or datetime.now(UTC)).astimezone(UTC)
        day = tick.date()
        if day < first_day:
            return SkipReason(f"{day} is before the first partition ({first_day})")
        running = context.instance.get_run_records(
            RunsFilter(job_name=orders_intraday_job.name, statuses=IN_PROGRESS), limit=1
        )
        if running:
            run = running[0].dagster_run
            return SkipReason(
                f"the previous intraday tick (run {run.run_id}, partition "
                f"{run.tags.get('dagster/partition')}) is still {run.status.value}: one tick "
                "at a time"
            )
        requests = [
            RunRequest(
                run_key=f"intraday-{tick.isoformat()}",
                partition_key=day.isoformat(),
                tags={TRIGGER_TAG: "intraday_schedule"},
            )
        ]
        previous = day - timedelta(days=1)
        if tick - timedelta(minutes=minutes) < day_end(previous) and previous >= first_day:
            last_instant = day_end(previous) - timedelta(microseconds=1)
            requests.insert(
                0,
                RunRequest(
                    run_key=f"intraday-last-{previous.isoformat()}",
                    partition_key=previous.isoformat(),
                    tags={TRIGGER_TAG: "intraday_schedule", NOW_TAG: last_instant.isoformat()},
                ),
            )
        return requests

    return orders_intraday_schedule
