"""Events through Dagster: dead letters, sessions across midnight, idempotent partitions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
from dagster import AssetKey, materialize

from orders_platform_tests.support import DAY, materialize_day

RAW_EVENTS = AssetKey(["raw", "events"])
REJECTED_EVENTS = AssetKey(["validated", "rejected_events"])
SESSIONS = AssetKey(["silver", "sessions"])
EVENTS_PER_DAY = "6000"


def run(defs, partition: str, instance, selection):
    return materialize_day(defs, partition, instance, selection)


def day(offset: int) -> str:
    return (DAY + timedelta(days=offset)).isoformat()


def sessions_table(platform) -> pl.DataFrame:
    return platform.warehouse().read_table("silver.sessions").sort("session_id")


def load_raw_events(defs, instance, offsets) -> None:
    for offset in offsets:
        run(defs, day(offset), instance, [RAW_EVENTS])


def test_session_crossing_midnight_belongs_to_the_day_it_starts(platform, instance):
    defs = platform.definitions(ORDERS_DEMO_EVENTS_PER_DAY=EVENTS_PER_DAY)
    load_raw_events(defs, instance, range(-1, 3))
    for offset in (0, 1):
        result = run(defs, day(offset), instance, [REJECTED_EVENTS, SESSIONS])
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"sessions_schema": True, "events_reconciliation": True}

    table = sessions_table(platform)
    assert set(table["session_date"].unique().to_list()) == {DAY, DAY + timedelta(days=1)}
    assert table["session_id"].is_unique().all()
    crossing = table.filter(
        (pl.col("session_date") == DAY)
        & (pl.col("session_end").dt.date() == DAY + timedelta(days=1))
    )
    assert crossing.height > 0, "the demo day has sessions running past midnight"
    # The next day did not start a second session for the same user's after-midnight tail.
    next_day = table.filter(pl.col("session_date") == DAY + timedelta(days=1))
    tails = next_day.join(crossing, on="user_id").filter(
        pl.col("session_start") <= pl.col("session_end_right") + timedelta(minutes=30)
    )
    assert tails.height == 0

    rejected = pl.read_parquet(
        Path(platform.lake_root, "validated", "rejected_events", f"dt={day(0)}", "part-0.parquet")
    )
    assert set(rejected["reason"].unique().to_list()) == {
        "missing_user_id",
        "missing_event_timestamp",
        "unparseable_event_timestamp",
    }


def test_rerunning_days_in_either_order_gives_identical_tables(tmp_path, instance):
    from orders_platform_tests.support import OrdersPlatform

    tables = []
    for name, order in (("fwd", (0, 1)), ("bwd", (1, 0, 1, 0))):
        platform = OrdersPlatform(tmp_path / name)
        defs = platform.definitions(ORDERS_DEMO_EVENTS_PER_DAY=EVENTS_PER_DAY)
        load_raw_events(defs, instance, range(-1, 3))
        for offset in order:
            run(defs, day(offset), instance, [SESSIONS])
        tables.append(sessions_table(platform))
    assert tables[0].height > 0
    assert tables[0].equals(tables[1])


def test_sessions_metadata_for_the_operator(platform, instance):
    defs = platform.definitions(ORDERS_DEMO_EVENTS_PER_DAY=EVENTS_PER_DAY)
    load_raw_events(defs, instance, range(-1, 2))
    result = run(defs, day(0), instance, [SESSIONS])
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == SESSIONS
    ]
    meta = event.materialization.metadata
    table = sessions_table(platform)
    assert meta["sessions"].value == table.height
    assert meta["events"].value == table["event_count"].sum()
    assert 0 < meta["conversion_rate"].value < 1
    assert meta["median_duration_seconds"].value == table["duration_seconds"].median()
    assert meta["event_partitions_read"].value == [day(-1), day(0), day(1)]


def sessions_metadata(result) -> dict:
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == SESSIONS
    ]
    return event.materialization.metadata


def test_missing_next_day_makes_the_day_provisional_until_it_lands(platform, instance):
    defs = platform.definitions(ORDERS_DEMO_EVENTS_PER_DAY=EVENTS_PER_DAY)
    load_raw_events(defs, instance, (-1, 0))
    meta = sessions_metadata(run(defs, day(0), instance, [SESSIONS]))
    assert meta["provisional"].value is True
    assert meta["missing_neighbour_partitions"].value == [day(1)]
    assert meta["event_partitions_read"].value == [day(-1), day(0)]
    cut = sessions_table(platform)

    load_raw_events(defs, instance, (1,))
    meta = sessions_metadata(run(defs, day(0), instance, [SESSIONS]))
    assert meta["provisional"].value is False
    assert meta["missing_neighbour_partitions"].value == []
    final = sessions_table(platform)
    # Same sessions (they start on the day either way); those crossing midnight grew.
    assert final["session_id"].to_list() == cut["session_id"].to_list()
    assert (final["event_count"] >= cut["event_count"]).all()
    assert final["event_count"].sum() > cut["event_count"].sum()


def test_sessions_of_a_day_without_its_own_events_fail_and_write_nothing(platform, instance):
    defs = platform.definitions(ORDERS_DEMO_EVENTS_PER_DAY=EVENTS_PER_DAY)
    load_raw_events(defs, instance, (-1, 1))
    result = materialize_day(defs, day(0), instance, [SESSIONS], raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert f"raw/events is not in the lake for ['{day(0)}']" in message
    assert not Path(platform.duckdb_path).exists(), "nothing was written to the warehouse"


def test_backfill_edges_without_their_own_events_are_left_alone(platform, instance):
    """A UI backfill of D..D+1 also targets sessions of D-1 and D+2 (the partition mapping
    carries raw/events of D to sessions of D-1): days that were never extracted are skipped,
    not failed, and the table keeps only the days that could be computed."""
    defs = platform.definitions(ORDERS_DEMO_EVENTS_PER_DAY=EVENTS_PER_DAY)
    load_raw_events(defs, instance, (0, 1))
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        resources=defs.resources,
        instance=instance,
        selection=[SESSIONS],
        tags={
            "dagster/backfill": "bfedges",
            "dagster/asset_partition_range_start": day(-1),
            "dagster/asset_partition_range_end": day(2),
        },
    )
    events = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == SESSIONS
    ]
    assert [e.partition for e in events] == [day(-1), day(0), day(1), day(2)]
    meta = events[0].metadata
    assert meta["skipped_partitions"].value == [day(-1), day(2)]
    assert meta["provisional"].value is True
    assert meta["missing_neighbour_partitions"].value == [day(-1), day(2)]
    table = sessions_table(platform)
    assert sorted(table["session_date"].unique().to_list()) == [DAY, DAY + timedelta(days=1)]
    assert meta["sessions"].value == table.height
