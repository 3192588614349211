"""Everything that launches runs, from settings, for `Definitions(jobs=, schedules=, sensors=)`."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    SensorDefinition,
    TimeWindowPartitionsDefinition,
)

from orders_platform.automation.intraday import DEFAULT_INTRADAY_MINUTES, build_intraday_schedule
from orders_platform.automation.jobs import JOBS
from orders_platform.automation.schedules import DEFAULT_DELAY_MINUTES, build_daily_schedule
from orders_platform.automation.sensors import (
    build_landing_sensor,
    build_run_failure_alert_sensor,
    build_silver_orders_sensor,
    build_silver_sessions_sensor,
)


@dataclass(frozen=True)
class Automation:
    jobs: list
    schedules: list[ScheduleDefinition]
    sensors: list[SensorDefinition]


def build_automation(
    partitions_def: TimeWindowPartitionsDefinition,
    *,
    source: str = "demo",
    landing_dir: str | None = None,
    schedule_delay_minutes: int = DEFAULT_DELAY_MINUTES,
    alert_webhook_url: str | None = None,
    intraday: bool = False,
    intraday_minutes: int = DEFAULT_INTRADAY_MINUTES,
) -> Automation:
    """Jobs, the daily schedule, the intraday schedule (with `intraday`) and the sensors.

    With ``source == "landing"`` the landing sensor is added and the daily schedule is
    created STOPPED (files arriving drive the closed days); otherwise it runs by default.
    The intraday schedule runs by default whatever the source (landing: it reads the open
    day's files not read yet).
    """
    landing = source == "landing"
    sensors = [
        build_silver_orders_sensor(),
        build_silver_sessions_sensor(partitions_def),
        build_run_failure_alert_sensor(alert_webhook_url),
    ]
    if landing:
        if not landing_dir:
            raise ValueError("ORDERS_LANDING_DIR must be set for ORDERS_SOURCE=landing")
        sensors.append(build_landing_sensor(landing_dir, partitions_def))
    schedule = build_daily_schedule(
        partitions_def,
        delay_minutes=schedule_delay_minutes,
        default_status=DefaultScheduleStatus.STOPPED if landing else DefaultScheduleStatus.RUNNING,
    )
    schedules = [schedule]
    if intraday:
        schedules.append(build_intraday_schedule(partitions_def, intraday_minutes))
    return Automation(jobs=list(JOBS), schedules=schedules, sensors=sensors)
