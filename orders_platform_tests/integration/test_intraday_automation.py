"""Intraday wiring (SPEC §10): the open day as a partition, the intraday schedule, the
freshness expectation, full refresh by run config, and demo-source ticks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    build_schedule_context,
    instance_for_test,
    materialize,
)

from orders_platform.assets.intraday import NOW_TAG
from orders_platform.assets.keys import (
    RAW_ORDERS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    SILVER_SESSIONS,
    VALIDATED_ORDERS,
)
from orders_platform.automation.intraday import intraday_cron
from orders_platform.automation.policies import (
    INTRADAY_FRESHNESS_POLICY,
    SILVER_FRESHNESS_POLICY,
)
from orders_platform.settings import SettingsError, load_settings
from orders_platform.storage.lake import read_partition
from orders_platform.transforms.orders import validate_orders
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS
from orders_platform_tests.integration.intraday_support import (
    ORDERS_CHAIN,
    extraction,
    metadata,
    source_rows,
    tick,
    without_lineage,
)
from orders_platform_tests.support import REPO_ROOT, OrdersPlatform

DAY = date(2026, 3, 17)
D0 = datetime(2026, 3, 17, tzinfo=UTC)


def _schedule(defs, name="orders_intraday_schedule"):
    return next(s for s in defs.get_repository_def().schedule_defs if s.name == name)


def test_open_day_is_a_partition_with_an_intraday_schedule_and_20_minute_freshness(platform):
    defs = platform.definitions()
    today = datetime.now(UTC).date().isoformat()
    partitions = defs.resolve_asset_graph().get(RAW_ORDERS).partitions_def
    assert partitions.get_last_partition_key() == today
    schedule = _schedule(defs)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("*/15 * * * *", "UTC")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "orders_intraday_job"
    graph = defs.resolve_asset_graph()
    assert graph.get(SILVER_ORDERS).freshness_policy == INTRADAY_FRESHNESS_POLICY
    assert graph.get(SILVER_SESSIONS).freshness_policy == SILVER_FRESHNESS_POLICY

    assert _schedule(platform.definitions(ORDERS_INTRADAY_MINUTES="5")).cron_schedule == (
        "*/5 * * * *"
    )
    assert intraday_cron(60) == "0 * * * *"

    off = platform.definitions(ORDERS_INTRADAY="false")
    assert [s.name for s in off.get_repository_def().schedule_defs] == ["orders_daily_schedule"]
    off_partitions = off.resolve_asset_graph().get(RAW_ORDERS).partitions_def
    assert off_partitions.get_last_partition_key() < today
    assert off.resolve_asset_graph().get(SILVER_ORDERS).freshness_policy == SILVER_FRESHNESS_POLICY


@pytest.mark.parametrize("value", ["0", "61", "often"])
def test_invalid_intraday_minutes_fail_load_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("ORDERS_INTRADAY_MINUTES", value)
    with pytest.raises(SettingsError, match="ORDERS_INTRADAY_MINUTES"):
        load_settings()


def test_schedule_requests_the_open_day_and_skips_while_a_tick_runs(platform):
    with instance_for_test() as instance:
        _schedule_ticks(platform.definitions(), instance)


def _schedule_ticks(defs, instance):
    schedule = _schedule(defs)
    repo = defs.get_repository_def()
    tick_time = datetime(2026, 3, 17, 10, 15, tzinfo=UTC)
    context = build_schedule_context(
        instance=instance, repository_def=repo, scheduled_execution_time=tick_time
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert isinstance(request, RunRequest)
    assert request.partition_key == "2026-03-17"
    assert request.run_key == f"intraday-{tick_time.isoformat()}"
    # The first tick after midnight is the new day's first, and the closing day's last
    # (its clock at the day's last instant: an incremental tick up to midnight).
    context = build_schedule_context(
        instance=instance,
        repository_def=repo,
        scheduled_execution_time=datetime(2026, 3, 18, 0, 0, tzinfo=UTC),
    )
    last, first = schedule.evaluate_tick(context).run_requests
    assert (last.partition_key, first.partition_key) == ("2026-03-17", "2026-03-18")
    assert last.tags[NOW_TAG] == "2026-03-17T23:59:59.999999+00:00"
    assert NOW_TAG not in first.tags
    context = build_schedule_context(
        instance=instance,
        repository_def=repo,
        scheduled_execution_time=datetime(2026, 3, 18, 0, 15, tzinfo=UTC),
    )
    assert [r.partition_key for r in schedule.evaluate_tick(context).run_requests] == ["2026-03-18"]

    # The previous tick is still running: skip, naming it.
    running = DagsterRun(
        job_name="orders_intraday_job",
        run_id=str(uuid.uuid4()),
        status=DagsterRunStatus.STARTED,
        tags={"dagster/partition": "2026-03-17"},
    )
    instance.add_run(running)
    context = build_schedule_context(
        instance=instance, repository_def=repo, scheduled_execution_time=tick_time
    )
    result = schedule.evaluate_tick(context)
    assert not result.run_requests
    assert running.run_id in result.skip_message and "still STARTED" in result.skip_message
    # ...and ticks again once it has finished.
    instance.report_run_failed(running)
    context = build_schedule_context(
        instance=instance, repository_def=repo, scheduled_execution_time=tick_time
    )
    assert schedule.evaluate_tick(context).run_requests[0].partition_key == "2026-03-17"


def test_demo_ticks_release_records_as_time_passes(platform, instance):
    defs = platform.definitions()
    first = tick(defs, instance, DAY, D0 + timedelta(hours=9))
    dead_letters = Path(platform.lake_root) / "validated/rejected_orders" / f"dt={DAY}"
    after_first = (dead_letters / "part-0.parquet").read_bytes()
    second = tick(defs, instance, DAY, D0 + timedelta(hours=9, minutes=15))
    ext1, ext2 = extraction(first), extraction(second)
    assert (ext1["mode"], ext2["mode"]) == ("incremental", "incremental")
    assert ext2["watermark"] == ext1["window_end"] == (D0 + timedelta(hours=9)).isoformat()
    # The second tick reads a quarter of an hour (and the overlap), not the morning again.
    assert 0 < ext2["rows_extracted"] < ext1["rows_extracted"] / 10
    assert ext2["rows_written"] == ext2["rows_extracted"] - ext2["rows_already_held"]
    silver = metadata(second, SILVER_ORDERS)
    assert silver["provisional"] is True
    # the warehouse receives what the tick added, not the day again
    assert 0 < silver["rows_in"] <= ext2["rows_written"] < metadata(first, SILVER_ORDERS)["rows_in"]
    lag = silver["freshness_lag_seconds"]
    assert isinstance(lag, float) and 0 <= lag < 15 * 60
    validated = read_partition(platform.lake_root, VALIDATED_ORDERS.path, DAY.isoformat())
    assert validated["order_id"].n_unique() == validated.height
    assert metadata(second, VALIDATED_ORDERS)["rows_validated_by_this_run"] == ext2["rows_written"]
    # tick 2 validated only its part, and holds what validating the whole partition gives
    raw = read_partition(platform.lake_root, RAW_ORDERS.path, DAY.isoformat())
    whole = validate_orders(raw)
    assert validated.sort("order_id").equals(whole.valid.sort("order_id"))
    rejected = read_partition(platform.lake_root, REJECTED_ORDERS.path, DAY.isoformat())
    assert without_lineage(rejected).equals(without_lineage(whole.rejected.cast(rejected.schema)))
    assert validated["updated_at"].max() < D0 + timedelta(hours=9, minutes=15)

    # A tick killed between writing validated/orders and the dead letters: the pair
    # disagrees on which raw parts it holds, so the next tick re-derives both from raw.
    (dead_letters / "part-0.parquet").write_bytes(after_first)
    third = tick(defs, instance, DAY, D0 + timedelta(hours=9, minutes=18))
    assert (
        metadata(third, VALIDATED_ORDERS)["rows_validated_by_this_run"]
        == metadata(third, VALIDATED_ORDERS)["rows_in"]
    )
    raw = read_partition(platform.lake_root, RAW_ORDERS.path, DAY.isoformat())
    rejected = read_partition(platform.lake_root, REJECTED_ORDERS.path, DAY.isoformat())
    assert without_lineage(rejected).equals(
        without_lineage(validate_orders(raw).rejected.cast(rejected.schema))
    )

    # A full refresh of the open day by run config (the launchpad / --config-json form).
    refreshed = materialize(
        [*defs.assets, *defs.asset_checks],
        partition_key=DAY.isoformat(),
        resources=defs.resources,
        instance=instance,
        selection=AssetSelection.assets(*ORDERS_CHAIN),
        tags={NOW_TAG: (D0 + timedelta(hours=9, minutes=20)).isoformat()},
        run_config={"ops": {"raw__orders": {"config": {"full_refresh": True}}}},
    )
    assert extraction(refreshed)["mode"] == "full"
    assert metadata(refreshed, RAW_ORDERS)["provisional"] is True
    raw_dir = Path(platform.lake_root) / "raw/orders" / f"dt={DAY}"
    (base,) = [p.name for p in raw_dir.iterdir()]
    assert base.startswith("part-20260317T092000000000Z-base-")

    # The schedule's last tick of the day (clock at its last instant) is still incremental.
    last = tick(defs, instance, DAY, D0 + timedelta(days=1, microseconds=-1))
    assert (extraction(last)["mode"], extraction(last)["window_end"]) == (
        "incremental",
        "2026-03-17T23:59:59+00:00",
    )

    # The day close equals one daily run over the finished day.
    close_time = D0 + timedelta(days=1, minutes=30)
    closed = tick(defs, instance, DAY, close_time)
    assert (extraction(closed)["mode"], metadata(closed, RAW_ORDERS)["provisional"]) == (
        "full",
        False,
    )
    assert [p.name for p in raw_dir.iterdir()] == ["part-0.parquet"]
    oneshot = OrdersPlatform(tmp=platform.tmp / "oneshot")
    with DagsterInstance.ephemeral() as other:
        tick(oneshot.definitions(), other, DAY, close_time)
    for key in (RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS):
        mine = read_partition(platform.lake_root, key.path, DAY.isoformat())
        theirs = read_partition(oneshot.lake_root, key.path, DAY.isoformat())
        if key == RAW_ORDERS:
            mine, theirs = source_rows(mine), source_rows(theirs)
        assert without_lineage(mine).equals(without_lineage(theirs))
    # silver: the same rows (an unchanged row keeps the _run_id of the tick that wrote it)
    lineage = ["ingested_at", "_run_id"]
    assert (
        platform.warehouse()
        .read_orders()
        .drop(lineage)
        .equals(oneshot.warehouse().read_orders().drop(lineage))
    )
    assert set(ORDER_SOURCE_COLUMNS) <= set(source_rows(mine).columns)


@pytest.mark.slow
def test_cli_tick_and_full_refresh_of_today(tmp_path: Path):
    """The CLI of any day performs a tick of today; --config-json asks for a full refresh."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    lake = tmp_path / "lake"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "ORDERS_LAKE_ROOT": str(lake),
        "ORDERS_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
        "ORDERS_DEMO_ORDERS_PER_DAY": "2000",
    }
    today = datetime.now(UTC).date().isoformat()
    command = [
        str(Path(sys.executable).with_name("dagster")),
        *("asset", "materialize", "-m", "orders_platform.definitions"),
        *("--select", "*silver/orders,validated/rejected_orders", "--partition", today),
    ]
    full = ["--config-json", '{"ops": {"raw__orders": {"config": {"full_refresh": true}}}}']
    for extra in ([], [], full):
        proc = subprocess.run(
            command + extra, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = sorted(p.name for p in (lake / "raw/orders" / f"dt={today}").iterdir())
    assert len(names) == 1 and "-base-" in names[0], names
    raw = read_partition(str(lake), RAW_ORDERS.path, today)
    assert raw.height > 0
    assert pl.Series(raw["_run_id"]).n_unique() == 1


def test_ticks_on_an_s3_lake(s3, platform, instance):
    """The same parts, watermark and day close on S3 (moto): listing, atomic copy, rename."""
    from orders_platform_tests.servers.moto_s3 import BUCKET, LAKE_ROOT

    defs = platform.definitions(ORDERS_LAKE_ROOT=LAKE_ROOT)
    tick(defs, instance, DAY, D0 + timedelta(hours=9))
    second = tick(defs, instance, DAY, D0 + timedelta(hours=9, minutes=15))
    assert extraction(second)["watermark"] == (D0 + timedelta(hours=9)).isoformat()
    assert 0 < extraction(second)["rows_already_held"] < extraction(second)["rows_extracted"]
    directory = f"{BUCKET}/lake/raw/orders/dt={DAY}"

    def names() -> list[str]:
        return sorted(p.rsplit("/", 1)[-1] for p in s3.fs().ls(directory))

    assert [n.split("-")[2] for n in names()] == ["inc", "inc"]
    assert (
        metadata(second, VALIDATED_ORDERS)["rows_validated_by_this_run"]
        == (extraction(second)["rows_written"])
    )
    tick(defs, instance, DAY, D0 + timedelta(days=1, minutes=30))
    assert names() == ["part-0.parquet"]
