"""The demo clickstream: deterministic, messy, with sessions crossing midnight."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from orders_platform.sources import demo_events
from orders_platform.sources.demo_events import (
    CROSSING_USER_OFFSET,
    generate_clean_events,
    generate_events,
)
from orders_platform.transforms.events import clean_events
from orders_platform.transforms.sessions import (
    count_exact_duplicates,
    sessionize,
    sessions_for_day,
)

D = date(2026, 3, 17)
N = 20_000
STRING_SCHEMA = pl.Schema(
    {c: pl.String for c in ("user_id", "event_timestamp", "event_type", "order_id")}
)


def day(k: int) -> date:
    return D + timedelta(days=k)


def valid(*days: date, n: int = N) -> pl.DataFrame:
    return pl.concat([clean_events(generate_events(d, n)).valid for d in days])


def is_crossing_user() -> pl.Expr:
    return pl.col("user_id").str.slice(1).cast(pl.Int64) >= CROSSING_USER_OFFSET


def test_deterministic_by_day_and_seed() -> None:
    a = generate_events(D, N)
    assert a.schema == STRING_SCHEMA
    assert a.height == N
    assert_frame_equal(a, generate_events(D, N))
    assert not a.equals(generate_events(day(1), N))
    assert not a.equals(generate_events(D, N, seed=1))
    assert_frame_equal(generate_clean_events(D, N), generate_clean_events(D, N))


def test_default_day_size() -> None:
    # (Its speed is benchmarks/bench_sessions.py's business, not a timed test's.)
    assert generate_events(D).height == 100_000


def test_rejections_are_about_one_percent_with_all_three_reasons() -> None:
    frame = generate_events(D, N)
    result = clean_events(frame)
    share = result.rejected.height / frame.height
    assert 0.008 <= share <= 0.012
    assert all(count > 0 for count in result.rejected_by_reason.values())
    assert result.valid.height + result.rejected.height == frame.height


def test_exact_duplicates_and_out_of_order() -> None:
    frame = generate_events(D, N)
    dup_rows = frame.height - frame.unique().height
    assert 0.003 * N <= dup_rows <= 0.006 * N
    cleaned = clean_events(frame).valid
    assert count_exact_duplicates(cleaned) >= dup_rows * 0.9
    ts = cleaned["event_timestamp"]
    assert not ts.is_sorted()


def test_messy_spellings_are_present() -> None:
    frame = generate_events(D, N)
    ts, et, uid, oid = (frame[c] for c in ("event_timestamp", "event_type", "user_id", "order_id"))
    assert ts.str.ends_with("+05:30").any()
    assert ts.str.ends_with("Z").any()
    assert ts.str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$").any()  # naive
    assert et.str.contains(r"^ [A-Z_]+ $").any()
    assert (uid != uid.str.strip_chars()).any()
    assert oid.str.starts_with(" ").any() and oid.str.ends_with(".0").any()
    assert et.is_in(["NULL", ""]).any() or et.null_count() > 0


def test_purchases_carry_order_ids_of_demo_orders_of_that_day() -> None:
    events = valid(D, n=N)
    purchases = events.filter(pl.col("event_type") == "purchase")
    assert purchases.height > 0
    assert purchases["order_id"].null_count() == 0
    # Only purchases carry an order_id (or a purchase whose event_type arrived missing).
    with_order = events.filter(pl.col("order_id").is_not_null())
    assert set(with_order["event_type"].unique().to_list()) <= {"purchase", "unknown"}
    ids = purchases.with_columns(
        created_day=pl.lit(demo_events.ORDER_ID_EPOCH)
        + pl.duration(days=pl.col("order_id") // demo_events.ORDER_ID_DAY_FACTOR),
        seq=pl.col("order_id") % demo_events.ORDER_ID_DAY_FACTOR,
    )
    assert (ids["created_day"] == ids["event_timestamp"].dt.date()).all()
    assert ids["seq"].min() >= 1 and ids["seq"].max() <= 20_000


def test_order_id_convention_matches_the_orders_demo() -> None:
    from orders_platform.sources import demo

    assert demo.ORDER_ID_EPOCH == demo_events.ORDER_ID_EPOCH
    assert demo.ORDER_ID_DAY_FACTOR == demo_events.ORDER_ID_DAY_FACTOR


def test_raw_partition_holds_only_its_own_day() -> None:
    events = valid(D, n=N)
    assert (events["event_timestamp"].dt.date() == D).all()


def test_crossing_sessions_land_in_the_day_they_start_complete() -> None:
    window = valid(day(-1), D, day(1))
    sessions = sessions_for_day(window, D)
    crossing = sessions.filter(is_crossing_user())
    n_crossing = int(N * demo_events.CROSSING_SESSIONS_PER_EVENT)
    assert crossing.height == n_crossing
    midnight = pl.lit(D + timedelta(days=1)).cast(pl.Datetime("us", "UTC"))
    assert (crossing["session_start"].dt.date() == D).all()
    assert (crossing["session_start"].dt.hour() == 23).all()
    assert crossing.select((pl.col("session_end") > midnight).all()).item()
    assert crossing["event_count"].min() >= 6  # 8-14 generated, a rare one rejected

    # The tails live in the raw partition of D+1 ...
    tail_users = set(
        valid(day(1))
        .filter(is_crossing_user() & (pl.col("event_timestamp").dt.hour() == 0))["user_id"]
        .to_list()
    )
    assert tail_users == set(crossing["user_id"].to_list())
    # ... but D+1 (given D, D+1, D+2) never re-emits a session started on D.
    next_day = sessions_for_day(valid(D, day(1), day(2)), day(1))
    assert not set(crossing["session_id"].to_list()) & set(next_day["session_id"].to_list())
    assert (next_day["session_date"] == day(1)).all()


def test_every_valid_event_is_in_exactly_one_session_across_days() -> None:
    days = [day(k) for k in range(-1, 4)]
    per_day = {d: clean_events(generate_events(d, 5_000)).valid for d in days}
    everything = pl.concat(per_day.values())
    union = pl.concat(
        [
            sessions_for_day(
                pl.concat([per_day[x] for x in days[max(i - 1, 0) : i + 2]]),
                d,
            )
            for i, d in enumerate(days)
        ]
    ).sort("user_id", "session_start")
    assert_frame_equal(union, sessionize(everything))
    assert union["session_id"].is_unique().all()
    assert union["event_count"].sum() + count_exact_duplicates(everything) == everything.height


def test_users_have_several_sessions_a_day() -> None:
    sessions = sessionize(valid(D)).filter(~is_crossing_user())
    per_user = sessions.group_by("user_id").len()["len"]
    assert per_user.mean() > 2
    assert sessions["event_count"].mean() > 3


def test_clean_generator_is_typed_and_tidy() -> None:
    frame = generate_clean_events(D, N)
    assert frame.schema == pl.Schema(
        {
            "user_id": pl.String,
            "event_timestamp": pl.Datetime("us", "UTC"),
            "event_type": pl.String,
            "order_id": pl.Int64,
        }
    )
    assert frame.height == N - round(N * demo_events.DUPLICATE_SHARE)
    assert frame["event_timestamp"].is_sorted()


def test_small_and_empty_days() -> None:
    assert generate_events(D, 0).schema == STRING_SCHEMA
    small = generate_events(D, 50)
    assert small.height >= 1
    assert clean_events(small).valid.height > 0
