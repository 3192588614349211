"""Jobs, schedule, sensors, policies and structured logs against a real Dagster instance.

Sensors and the schedule are evaluated as the daemon does (`evaluate_tick` with the
repository, so partitioned run requests are resolved against the real jobs); asset events
come from real runs of tiny demo partitions or from runless reports.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from dagster import (
    AssetMaterialization,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    RetryPolicy,
    asset,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from orders_platform.assets.keys import (
    RAW_EVENTS,
    RAW_ORDERS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    SILVER_SESSIONS,
    VALIDATED_ORDERS,
)
from orders_platform.assets.orders import build_orders_assets
from orders_platform.automation import sensors as sensors_module
from orders_platform.automation.build import build_automation
from orders_platform.automation.jobs import DAY_CLOSE_ASSETS, EVENTS_DAY_ASSETS, ORDERS_DAY_ASSETS
from orders_platform.automation.logging import (
    DAGSTER_YAML_SNIPPET,
    JsonFormatter,
    RedactSecretsFilter,
)
from orders_platform.automation.policies import (
    INTRADAY_FRESHNESS_POLICY,
    SILVER_FRESHNESS_POLICY,
    SOURCE_RETRY_POLICY,
    apply_policies,
    source_retry_policy,
)
from orders_platform.automation.schedules import build_daily_schedule, closed_day, daily_cron
from orders_platform.automation.sensors import (
    build_landing_sensor,
    build_run_failure_alert_sensor,
    build_silver_orders_sensor,
    build_silver_sessions_sensor,
    post_alert,
)
from orders_platform.definitions import build_definitions
from orders_platform.partitions import daily_partitions
from orders_platform.sources.base import RawSource
from orders_platform_tests.support import DAY, OrdersPlatform

PARTITIONS = daily_partitions(date(2026, 1, 1))
FIRST_DAY = date(2026, 1, 1)


def day(offset: int, base: date = DAY) -> str:
    return (base + timedelta(days=offset)).isoformat()


def automated_definitions(platform: OrdersPlatform, **overrides: str) -> Definitions:
    """`defs` as definitions.py builds it once the automation is wired in (see report)."""
    settings = platform.settings(ORDERS_DEMO_EVENTS_PER_DAY="1000", **overrides)
    base = build_definitions(settings)
    automation = build_automation(
        daily_partitions(settings.partitions_start),
        source=settings.source,
        landing_dir=settings.landing_dir_resolved,
        schedule_delay_minutes=30,
    )
    return Definitions(
        assets=apply_policies(base.assets),
        asset_checks=base.asset_checks,
        resources=base.resources,
        executor=base.executor,
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=automation.sensors,
    )


@pytest.fixture(scope="module")
def small_platform(tmp_path_factory: pytest.TempPathFactory) -> OrdersPlatform:
    return OrdersPlatform(tmp=tmp_path_factory.mktemp("automation"), orders_per_day=300)


@pytest.fixture(scope="module")
def defs(small_platform: OrdersPlatform) -> Definitions:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("ORDERS_", "SNOWFLAKE_")):
                mp.delenv(name)
        return automated_definitions(small_platform)


def tick(sensor_def, instance: DagsterInstance, defs: Definitions, cursor: str | None = None):
    return sensor_def.evaluate_tick(
        build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    )


def requested(result) -> list[str]:
    return [r.partition_key for r in result.run_requests]


def report(instance: DagsterInstance, key, *partitions: str) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(AssetMaterialization(key, partition=partition))


def run_request(defs: Definitions, instance: DagsterInstance, request, default_selection):
    """Execute a run request in process, as the daemon would launch it."""
    return materialize(
        [*defs.assets, *defs.asset_checks],
        partition_key=request.partition_key,
        resources=defs.resources,
        instance=instance,
        selection=AssetSelection.assets(*(request.asset_selection or default_selection)),
    )


# --------------------------------------------------------------------------- definitions


def test_definitions_carry_jobs_schedule_sensors_and_policies(defs, small_platform):
    repo = defs.get_repository_def()
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "orders_daily_job",
        "silver_orders_job",
        "silver_sessions_job",
    }
    assert {s.name for s in repo.sensor_defs} == {
        "silver_orders_sensor",
        "silver_sessions_sensor",
        "run_failure_alert_sensor",
    }
    (schedule,) = repo.schedule_defs
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 0 * * *", "UTC")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING

    daily = defs.resolve_job_def("orders_daily_job")
    assert {k.name for k in daily.asset_layer.asset_graph.asset_check_keys} == {
        "validated_orders_schema",
        "orders_reconciliation",
        "reject_rate",
        "silver_orders_schema",
        "sessions_schema",
        "events_reconciliation",
    }
    retries = {
        node: daily.graph.node_named(node).definition.retry_policy
        for node in daily.graph.node_names()
    }
    assert retries["raw__orders"] == retries["raw__events"] == SOURCE_RETRY_POLICY
    assert retries["silver__orders"] is None and retries["validated_orders"] is None
    graph = defs.resolve_asset_graph()
    # intraday on (the default): silver/orders promises 20 minutes, sessions stay daily
    assert graph.get(SILVER_ORDERS).freshness_policy == INTRADAY_FRESHNESS_POLICY
    assert graph.get(SILVER_SESSIONS).freshness_policy == SILVER_FRESHNESS_POLICY
    assert graph.get(RAW_ORDERS).freshness_policy is None
    # ORDERS_SOURCE_MAX_RETRIES=0: no retry policy; other policies still applied
    assert source_retry_policy(0) is None
    assert source_retry_policy(5).max_retries == 5
    raw_orders, *_ = apply_policies(build_orders_assets(PARTITIONS, "duckdb"), source_retry=None)
    assert raw_orders.op.retry_policy is None
    retried, *_ = apply_policies(build_orders_assets(PARTITIONS, "duckdb"))
    assert retried.op.retry_policy == SOURCE_RETRY_POLICY
    assert apply_policies([retried])[0].op.retry_policy is SOURCE_RETRY_POLICY

    landing = automated_definitions(small_platform, ORDERS_SOURCE="landing").get_repository_def()
    assert "landing_zone_sensor" in {s.name for s in landing.sensor_defs}
    assert landing.schedule_defs[0].default_status == DefaultScheduleStatus.STOPPED


class FlakySource(RawSource):
    """Fails the first extraction, then delegates to the demo source."""

    calls: list[str] = []

    @property
    def name(self) -> str:
        return "flaky"

    def extract_orders(self, day):
        FlakySource.calls.append(day.isoformat())
        if len(FlakySource.calls) == 1:
            raise ConnectionError("replica failover in progress")
        from orders_platform.sources.demo import DemoSource

        yield from DemoSource(orders_per_day=50).extract_orders(day)


def test_rebuilt_source_asset_retries_at_run_time(defs, instance):
    FlakySource.calls = []
    assets = apply_policies(
        build_orders_assets(PARTITIONS, "duckdb"), source_retry=RetryPolicy(max_retries=1)
    )
    result = materialize(
        assets[:1],
        partition_key=day(0),
        resources={**defs.resources, "source": FlakySource()},
        instance=instance,
    )
    assert result.success
    assert FlakySource.calls == [day(0), day(0)]
    restarts = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY
    ).records
    assert len(restarts) == 1


# --------------------------------------------------------------------------- schedule


def test_cron_and_closed_day_follow_the_delay():
    assert daily_cron(30) == "30 0 * * *"
    assert daily_cron(0) == "0 0 * * *"
    assert daily_cron(135) == "15 2 * * *"
    with pytest.raises(ValueError, match="ORDERS_SCHEDULE_DELAY_MINUTES"):
        daily_cron(24 * 60)
    assert closed_day(datetime(2026, 3, 18, 0, 30, tzinfo=UTC), 30) == DAY
    assert closed_day(datetime(2026, 3, 18, 2, 15, tzinfo=UTC), 135) == DAY


def test_schedule_tick_requests_the_closed_day_without_sessions(defs):
    schedule = defs.get_repository_def().schedule_defs[0]
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 18, 0, 30, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == DAY.isoformat()
    assert request.run_key == f"daily-{DAY.isoformat()}"
    assert set(request.asset_selection) == set(DAY_CLOSE_ASSETS)
    assert SILVER_SESSIONS not in request.asset_selection
    assert request.tags["dagster/partition"] == DAY.isoformat()

    early = build_daily_schedule(PARTITIONS, delay_minutes=45)
    result = early.evaluate_tick(
        build_schedule_context(scheduled_execution_time=datetime(2026, 1, 1, 0, 45, tzinfo=UTC))
    )
    assert not result.run_requests and "before the first partition" in result.skip_message


# --------------------------------------------------------------------------- silver/orders


def test_orders_sensor_requests_each_partition_once_and_survives_restart(defs, instance):
    sensor_def = build_silver_orders_sensor()
    assert tick(sensor_def, instance, defs).skip_message

    report(instance, VALIDATED_ORDERS, day(0))
    first = tick(sensor_def, instance, defs)
    assert requested(first) == [day(0)]
    assert first.run_requests[0].run_key == f"silver-orders-{day(0)}-{first.cursor}"

    # several partitions between two ticks, one of them twice: each requested exactly once
    report(instance, VALIDATED_ORDERS, day(1), day(2), day(1), day(3))
    second = tick(sensor_def, instance, defs, first.cursor)
    assert requested(second) == [day(1), day(2), day(3)]
    assert len({r.run_key for r in second.run_requests}) == 3

    # a "restart": a new sensor definition and context, with the stored cursor
    restarted = tick(build_silver_orders_sensor(), instance, defs, second.cursor)
    assert not restarted.run_requests and restarted.cursor == second.cursor

    # a re-materialization of an old partition (new data) triggers again, with a new key
    report(instance, VALIDATED_ORDERS, day(0))
    third = tick(sensor_def, instance, defs, second.cursor)
    assert requested(third) == [day(0)]
    assert third.run_requests[0].run_key != first.run_requests[0].run_key


def test_orders_sensor_pages_a_backlog_without_losing_or_repeating(defs, instance, monkeypatch):
    monkeypatch.setattr(sensors_module, "MAX_RECORDS_PER_TICK", 2)
    sensor_def = build_silver_orders_sensor()
    report(instance, VALIDATED_ORDERS, *(day(i) for i in range(5)))
    seen, cursor = [], None
    for _ in range(4):
        result = tick(sensor_def, instance, defs, cursor)
        seen += requested(result)
        cursor = result.cursor
    assert seen == [day(i) for i in range(5)]


def test_orders_sensor_holds_events_of_unfinished_runs(defs, instance, monkeypatch):
    report(instance, VALIDATED_ORDERS, day(0))
    result = materialize(
        [*defs.assets],
        partition_key=day(1),
        resources=defs.resources,
        instance=instance,
        selection=[RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS],
    )
    sensor_def = build_silver_orders_sensor()
    # while the producing run of day 1 is "still running", day 0 (runless) goes ahead
    monkeypatch.setattr(
        sensors_module.RunFacts, "finished", lambda self, run_id: run_id != result.run_id
    )
    first = tick(sensor_def, instance, defs)
    assert requested(first) == [day(0)]
    held = json.loads(first.cursor)
    assert len(held["pending"]) == 1

    monkeypatch.undo()
    second = tick(build_silver_orders_sensor(), instance, defs, first.cursor)
    assert requested(second) == [day(1)]
    assert second.cursor == str(held["after"])
    assert not tick(sensor_def, instance, defs, second.cursor).run_requests


def test_orders_sensor_respects_failed_blocking_checks(tmp_path, instance):
    strict = automated_definitions(
        OrdersPlatform(tmp=tmp_path, orders_per_day=300),
        ORDERS_REJECT_RATE_SEVERITY="ERROR",
        ORDERS_MAX_REJECT_RATE="0.0",
    )
    result = materialize(
        [*strict.assets, *strict.asset_checks],
        partition_key=day(0),
        resources=strict.resources,
        instance=instance,
        selection=AssetSelection.assets(RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS),
        raise_on_error=False,
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["reject_rate"] is False
    outcome = tick(build_silver_orders_sensor(), instance, strict)
    assert not outcome.run_requests
    assert "blocked by failed blocking checks" in outcome.skip_message
    assert "reject_rate" in outcome.skip_message


# --------------------------------------------------------------------------- silver/sessions


def test_sessions_sensor_waits_for_the_next_day_and_fires_once(defs, instance):
    sensor_def = build_silver_sessions_sensor(PARTITIONS)
    report(instance, RAW_EVENTS, day(0))
    first = tick(sensor_def, instance, defs)
    assert not first.run_requests and "waiting" in first.skip_message

    # D-1 and D+1 land together: only D has all its neighbours
    report(instance, RAW_EVENTS, day(-1), day(1))
    second = tick(sensor_def, instance, defs, first.cursor)
    assert requested(second) == [day(0)]
    assert second.run_requests[0].run_key == f"silver-sessions-{day(0)}-{second.cursor}"

    report(instance, RAW_EVENTS, day(2))
    third = tick(sensor_def, instance, defs, second.cursor)
    assert requested(third) == [day(1)]

    assert not tick(
        build_silver_sessions_sensor(PARTITIONS), instance, defs, third.cursor
    ).run_requests

    # raw/events of D re-extracted: the sessions of D-1 (if complete), D and D+1 re-derive
    report(instance, RAW_EVENTS, day(0))
    fourth = tick(sensor_def, instance, defs, third.cursor)
    assert requested(fourth) == [day(0), day(1)]


def test_sessions_sensor_first_partition_and_backlog_in_pages(defs, instance, monkeypatch):
    monkeypatch.setattr(sensors_module, "MAX_RECORDS_PER_TICK", 2)
    sensor_def = build_silver_sessions_sensor(PARTITIONS)
    # a backfill of the first five days lands in one go; the sensor reads it 2 events a tick
    report(instance, RAW_EVENTS, *(day(i, FIRST_DAY) for i in range(5)))
    seen, cursor = [], None
    for _ in range(4):
        result = tick(sensor_def, instance, defs, cursor)
        seen += requested(result)
        cursor = result.cursor
    # the first day has no D-1; the last waits for its D+1; nobody is requested twice
    assert seen == [day(i, FIRST_DAY) for i in range(4)]


def test_sensors_leave_silver_of_a_running_asset_backfill_to_the_backfill(defs, instance):
    """A UI backfill runs the lake assets first (one run) and silver after it, in runs of
    its own: the sensors must not launch silver for those days a second time - unless
    the backfill was stopped, then they pick the days up."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    days = [day(0), day(1), day(2)]
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id="orderstestbf",
        asset_graph=defs.resolve_asset_graph(),
        partition_names=days,
        asset_selection=list(defs.resolve_asset_graph().materializable_asset_keys),
        backfill_timestamp=datetime.now(UTC).timestamp(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=None,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    lake = AssetSelection.assets(RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS, RAW_EVENTS)
    for partition in days:
        assert materialize(
            [*defs.assets, *defs.asset_checks],
            partition_key=partition,
            resources=defs.resources,
            instance=instance,
            selection=lake,
            tags={"dagster/backfill": backfill.backfill_id},
        ).success

    orders = tick(build_silver_orders_sensor(), instance, defs)
    assert not orders.run_requests
    assert f"already planned by the producing run or its backfill for {days}" in orders.skip_message
    sessions = tick(build_silver_sessions_sensor(PARTITIONS), instance, defs)
    assert not sessions.run_requests
    assert (
        f"already planned by the producing run or its backfill for ['{day(1)}']"
        in sessions.skip_message
    )

    instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
    assert requested(tick(build_silver_orders_sensor(), instance, defs)) == days
    assert requested(tick(build_silver_sessions_sensor(PARTITIONS), instance, defs)) == [day(1)]


def test_schedule_run_then_sensors_complete_the_day(defs, instance):
    """The daily flow for real: the schedule's run for D, then the sensors."""
    orders_sensor = build_silver_orders_sensor()
    sessions_sensor = build_silver_sessions_sensor(PARTITIONS)
    for offset in (-1, 0):  # events of the two days before D are already in the lake
        run_request_result = materialize(
            [*defs.assets],
            partition_key=day(offset),
            resources=defs.resources,
            instance=instance,
            selection=[RAW_EVENTS],
        )
        assert run_request_result.success

    schedule = defs.get_repository_def().schedule_defs[0]
    (scheduled,) = schedule.evaluate_tick(
        build_schedule_context(
            scheduled_execution_time=datetime.combine(
                DAY + timedelta(days=2), datetime.min.time(), UTC
            )
            + timedelta(minutes=30),
            repository_def=defs.get_repository_def(),
        )
    ).run_requests
    assert scheduled.partition_key == day(1)
    assert run_request(defs, instance, scheduled, DAY_CLOSE_ASSETS).success

    # silver/orders of D+1 was written by the scheduled run itself: nothing to request
    orders_tick = tick(orders_sensor, instance, defs)
    assert not orders_tick.run_requests and "already planned" in orders_tick.skip_message
    # raw/events of D+1 completed the neighbours of D: sessions of D (and only D)
    sessions_tick = tick(sessions_sensor, instance, defs)
    assert requested(sessions_tick) == [day(0)]
    sessions_run = run_request(defs, instance, sessions_tick.run_requests[0], [SILVER_SESSIONS])
    assert sessions_run.success
    assert not tick(sessions_sensor, instance, defs, sessions_tick.cursor).run_requests

    # a run without silver/orders (raw -> validated only) is completed by the sensor
    partial = materialize(
        [*defs.assets, *defs.asset_checks],
        partition_key=day(0),
        resources=defs.resources,
        instance=instance,
        selection=AssetSelection.assets(RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS),
    )
    assert partial.success
    follow_up = tick(orders_sensor, instance, defs, orders_tick.cursor)
    assert requested(follow_up) == [day(0)]
    assert run_request(defs, instance, follow_up.run_requests[0], [SILVER_ORDERS]).success


# --------------------------------------------------------------------------- landing zone


def test_landing_sensor_run_keys_follow_the_files(defs, instance, tmp_path):
    root = tmp_path / "landing"
    orders_dir = root / "orders" / f"dt={day(0)}"
    orders_dir.mkdir(parents=True)
    (orders_dir / "part-1.csv").write_text("order_id,customer_id\n1,2\n")
    (orders_dir / "_SUCCESS").write_text("")
    (orders_dir / ".part-2.csv.uploading").write_text("partial")
    (orders_dir / "README.txt").write_text("ignored")
    events_dir = root / "events" / f"dt={day(0)}"
    events_dir.mkdir(parents=True)
    (events_dir / "events.ndjson").write_text('{"user_id": "1"}\n')
    today = root / "orders" / f"dt={datetime.now(UTC).date().isoformat()}"
    today.mkdir(parents=True)
    (today / "early.csv").write_text("order_id\n1\n")

    sensor_def = build_landing_sensor(str(root), PARTITIONS, settle_seconds=0)
    first = tick(sensor_def, instance, defs)
    by_kind = {r.run_key.split("-")[1]: r for r in first.run_requests}
    assert set(by_kind) == {"orders", "events"}
    assert by_kind["orders"].partition_key == by_kind["events"].partition_key == day(0)
    assert by_kind["orders"].asset_selection == list(ORDERS_DAY_ASSETS)
    assert by_kind["events"].asset_selection == list(EVENTS_DAY_ASSETS)
    assert by_kind["orders"].run_key.startswith(f"landing-orders-{day(0)}-")

    # same files: nothing with the cursor; the same run keys without it (a lost cursor)
    assert not tick(sensor_def, instance, defs, first.cursor).run_requests
    again = tick(build_landing_sensor(str(root), PARTITIONS, settle_seconds=0), instance, defs)
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in first.run_requests}
    # in-flight uploads and other names do not count
    (orders_dir / "_manifest.json").write_text("{}")
    assert not tick(sensor_def, instance, defs, first.cursor).run_requests

    # a new file for the day: one new run for orders only
    (orders_dir / "part-2.ndjson").write_text('{"order_id": "3"}\n')
    second = tick(sensor_def, instance, defs, first.cursor)
    (request,) = second.run_requests
    assert request.partition_key == day(0)
    assert request.run_key.startswith("landing-orders-") and request.run_key not in {
        r.run_key for r in first.run_requests
    }
    # the open day's directory is never requested (its partition does not exist yet)
    assert "has not closed" in (tick(sensor_def, instance, defs, second.cursor).skip_message or "")

    # files still being written (newer than the settle time) wait
    settling = build_landing_sensor(str(root), PARTITIONS, settle_seconds=3600)
    assert not tick(settling, instance, defs).run_requests


# --------------------------------------------------------------------------- failures


class BrokenSource(RawSource):
    @property
    def name(self) -> str:
        return "broken"

    def extract_orders(self, day):
        token = os.environ.get("ORDERS_API_TOKEN", "")
        # allow_retries=False: the source retry policy must not make this test wait
        raise Failure(f"orders API unreachable (sent token {token})", allow_retries=False)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/secret-path"
    server.shutdown()
    server.server_close()


def test_failure_sensor_logs_one_json_alert_and_posts_it(
    defs, instance, webhook, caplog, monkeypatch
):
    monkeypatch.setenv("ORDERS_API_TOKEN", "tok-very-secret-42")
    result = materialize(
        [*defs.assets],
        partition_key=day(0),
        resources={**defs.resources, "source": BrokenSource()},
        instance=instance,
        selection=[RAW_ORDERS],
        raise_on_error=False,
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    (failure,) = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.RUN_FAILURE
    ).records
    sensor_def = build_run_failure_alert_sensor(webhook_url=webhook)
    context = build_run_status_sensor_context(
        sensor_name=sensor_def.name,
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
    with caplog.at_level(logging.ERROR, logger="orders_platform.alerts"):
        sensor_def(context)

    lines = [r.getMessage() for r in caplog.records if r.name == "orders_platform.alerts"]
    assert len(lines) == 1
    alert = json.loads(lines[0])
    assert alert["alert"] == "run_failure"
    assert alert["run_id"] == result.run_id
    assert alert["job"] == run.job_name
    assert alert["partition"] == day(0)
    assert alert["failed_steps"] == ["raw__orders"]
    assert "orders API unreachable" in alert["error"]
    assert alert["consecutive_failures"] == 1
    assert "tok-very-secret-42" not in lines[0] and "***" in alert["error"]
    assert _Hook.received == [alert]


def test_webhook_errors_are_logged_not_raised(caplog):
    with socket.socket() as probe:  # a port nobody listens on: connection refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="orders_platform.alerts"):
        assert post_alert(f"http://127.0.0.1:{port}/hooks/secret-path", {"run_id": "r1"}) is False
    (record,) = [r for r in caplog.records if r.name == "orders_platform.alerts"]
    assert "ConnectError" in record.getMessage() and "secret-path" not in record.getMessage()


# --------------------------------------------------------------------------- structured logs


def test_json_formatter_one_object_per_line_with_secrets_masked(monkeypatch):
    monkeypatch.setenv("ORDERS_PG_DSN", "postgresql://reader:pg-pass-9876@db:5432/orders")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "sf-pass-1234")
    formatter = JsonFormatter()
    record = logging.makeLogRecord(
        {
            "name": "orders_platform.sources",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": "connect failed to %s with %s",
            "args": ("postgresql://reader:pg-pass-9876@db:5432/orders", "sf-pass-1234"),
            "rows": 12,
        }
    )
    line = formatter.format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["level"] == "WARNING" and payload["logger"] == "orders_platform.sources"
    assert payload["message"] == "connect failed to *** with ***"
    assert payload["rows"] == 12
    assert datetime.fromisoformat(payload["time"]).tzinfo is not None

    # the password alone (say, in a driver's error) is masked too, by the filter as well
    record = logging.makeLogRecord({"msg": "auth failed for password pg-pass-9876"})
    assert RedactSecretsFilter().filter(record)
    assert record.getMessage() == "auth failed for password ***"


def test_dagster_yaml_snippet_writes_json_lines_from_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("ORDERS_API_CLIENT_SECRET", "client-secret-777")
    settings = yaml.safe_load(DAGSTER_YAML_SNIPPET)
    partitions = DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")

    @asset(partitions_def=partitions)
    def chatty(context) -> None:  # (string annotations would not pass Dagster's check)
        context.log.info("calling the API with client-secret-777")
        logging.getLogger("orders_platform.sources.api").warning("retry 1 of 3")
        raise RuntimeError("the API refused client-secret-777")

    with DagsterInstance.ephemeral(settings=settings) as instance:
        result = materialize(
            [chatty], partition_key=day(0), instance=instance, raise_on_error=False
        )
    assert not result.success
    log_file = tmp_path / "logs" / "orders_platform.jsonl"
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    (mine,) = [entry for entry in lines if "calling the API" in entry["message"]]
    assert mine["message"] == "calling the API with ***"
    assert mine["level"] == "INFO" and mine["logger"] == "dagster"
    assert mine["run_id"] == result.run_id
    assert mine["job"] == "__ephemeral_asset_job__"
    assert mine["step"] == "chatty" and mine["partition"] == day(0)
    # a plain Python logger of the package (managed_python_loggers) gets the same fields
    (api,) = [entry for entry in lines if entry["logger"] == "orders_platform.sources.api"]
    assert (api["level"], api["message"], api["run_id"]) == (
        "WARNING",
        "retry 1 of 3",
        result.run_id,
    )
    (failed,) = [entry for entry in lines if entry.get("event") == "STEP_FAILURE"]
    assert failed["level"] == "ERROR" and failed["step"] == "chatty"
    assert failed["error_class"] == "RuntimeError"
    assert failed["error"] == "RuntimeError: the API refused ***"
    assert "client-secret-777" not in log_file.read_text()
    for handler in logging.getLogger("dagster_dummy_logger").handlers:
        handler.close()
