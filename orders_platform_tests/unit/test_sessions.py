"""Sessionization (SPEC §5): gap boundary, midnight ownership, duplicates, determinism."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from orders_platform.transforms import sessions as sessions_module
from orders_platform.transforms.sessions import (
    SESSIONS_SCHEMA,
    count_exact_duplicates,
    mark_sessions,
    possibly_truncated,
    sessionize,
    sessions_for_day,
)

D = date(2026, 3, 17)
GAP = timedelta(minutes=30)
US = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(day: date, hh: int, mm: int, ss: int = 0, us: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, us, tzinfo=UTC)


def events(rows: list[tuple]) -> pl.DataFrame:
    """rows of (user_id, event_timestamp, event_type[, order_id])."""
    return pl.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "event_timestamp": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "order_id": [r[3] if len(r) > 3 else None for r in rows],
        },
        schema={
            "user_id": pl.String,
            "event_timestamp": pl.Datetime("us", "UTC"),
            "event_type": pl.String,
            "order_id": pl.Int64,
        },
    )


def on_days(frame: pl.DataFrame, *days: date) -> pl.DataFrame:
    return frame.filter(pl.col("event_timestamp").dt.date().is_in(list(days)))


def reference_sessions(frame: pl.DataFrame, gap: timedelta = GAP) -> list[dict]:
    """A deliberately naive pure-Python sessionizer (test oracle only)."""
    distinct = sorted(
        set(frame.select("user_id", "event_timestamp", "event_type", "order_id").iter_rows()),
        key=lambda r: (r[0], r[1], r[2], (r[3] is not None, r[3] or 0)),
    )
    out: list[dict] = []
    current: list[tuple] = []

    def close() -> None:
        if current:
            start, end = current[0][1], current[-1][1]
            out.append(
                {
                    "session_id": f"{current[0][0]}@{(start - EPOCH) // US}",
                    "user_id": current[0][0],
                    "session_start": start,
                    "session_end": end,
                    "session_date": start.date(),
                    "duration_seconds": (end - start).total_seconds(),
                    "event_count": len(current),
                    "first_event_type": current[0][2],
                    "last_event_type": current[-1][2],
                    "converted": any(r[2] == "purchase" for r in current),
                    "order_ids": sorted({r[3] for r in current if r[3] is not None}),
                }
            )

    for row in distinct:
        if current and (row[0] != current[-1][0] or row[1] - current[-1][1] > gap):
            close()
            current = []
        current.append(row)
    close()
    return out


# ----------------------------------------------------------------------------- basics


def test_schema_and_single_event_session() -> None:
    out = sessionize(events([("u1", at(D, 10, 0), "login")]))
    assert out.schema == pl.Schema(SESSIONS_SCHEMA)
    row = out.row(0, named=True)
    assert row["session_start"] == row["session_end"] == at(D, 10, 0)
    assert row["duration_seconds"] == 0.0
    assert row["event_count"] == 1
    assert row["first_event_type"] == row["last_event_type"] == "login"
    assert row["converted"] is False
    assert row["order_ids"] == []
    assert row["session_date"] == D


def test_empty_input_gives_empty_typed_frame() -> None:
    out = sessionize(events([]))
    assert out.height == 0
    assert out.schema == pl.Schema(SESSIONS_SCHEMA)
    assert sessions_for_day(events([]), D).schema == pl.Schema(SESSIONS_SCHEMA)


def test_gap_of_exactly_30_minutes_is_same_session_one_microsecond_more_is_not() -> None:
    t0 = at(D, 10, 0)
    same = sessionize(events([("u", t0, "login"), ("u", t0 + GAP, "logout")]))
    assert same.height == 1
    assert same["event_count"].to_list() == [2]
    assert same["duration_seconds"].to_list() == [1800.0]

    split = sessionize(events([("u", t0, "login"), ("u", t0 + GAP + US, "logout")]))
    assert split.height == 2
    assert split["event_count"].to_list() == [1, 1]
    assert split["session_start"].to_list() == [t0, t0 + GAP + US]


def test_gap_is_configurable() -> None:
    t0 = at(D, 10, 0)
    ev = events([("u", t0, "a"), ("u", t0 + timedelta(minutes=10), "b")])
    assert sessionize(ev, timedelta(minutes=10)).height == 1
    assert sessionize(ev, timedelta(minutes=10) - US).height == 2
    with pytest.raises(ValueError, match="positive"):
        sessionize(ev, timedelta(0))


def test_users_are_separate_even_when_interleaved() -> None:
    t0 = at(D, 10, 0)
    ev = events(
        [
            ("a", t0, "login"),
            ("b", t0 + timedelta(minutes=1), "login"),
            ("a", t0 + timedelta(minutes=2), "view_page"),
            ("b", t0 + timedelta(minutes=40), "view_page"),
        ]
    )
    out = sessionize(ev)
    assert out.select("user_id", "event_count").rows() == [("a", 2), ("b", 1), ("b", 1)]


def test_duration_first_last_converted_order_ids() -> None:
    t0 = at(D, 9, 0, 0, 250)
    ev = events(
        [
            ("u", t0, "login"),
            ("u", t0 + timedelta(minutes=5), "add_to_cart", 77),
            ("u", t0 + timedelta(minutes=7), "purchase", 42),
            ("u", t0 + timedelta(minutes=8), "purchase", 7),
            ("u", t0 + timedelta(minutes=9, microseconds=1), "logout", 42),
            ("u", t0 + timedelta(hours=2), "view_page"),
        ]
    )
    first, second = sessionize(ev).iter_rows(named=True)
    assert first["event_count"] == 5
    assert first["first_event_type"] == "login"
    assert first["last_event_type"] == "logout"
    assert first["converted"] is True
    assert first["order_ids"] == [7, 42, 77]
    assert first["duration_seconds"] == timedelta(minutes=9, microseconds=1).total_seconds()
    assert first["session_end"] - first["session_start"] == timedelta(
        seconds=first["duration_seconds"]
    )
    assert second["converted"] is False
    assert second["order_ids"] == []


def test_exact_duplicates_counted_once_near_duplicates_are_not() -> None:
    t0 = at(D, 12, 0)
    ev = events(
        [
            ("u", t0, "view_page"),
            ("u", t0, "view_page"),
            ("u", t0, "view_page"),
            ("u", t0 + timedelta(minutes=1), "purchase", 5),
            ("u", t0 + timedelta(minutes=1), "purchase", 5),
            ("u", t0 + timedelta(minutes=1), "purchase", 6),  # other order: distinct
            ("u", t0 + timedelta(minutes=1), "view_page", 5),  # other type: distinct
        ]
    )
    out = sessionize(ev)
    assert out["event_count"].to_list() == [4]
    assert out["order_ids"].to_list() == [[5, 6]]
    assert count_exact_duplicates(ev) == 3
    # Invariant used by the asset: valid rows = sum(event_count) + duplicates collapsed.
    assert ev.height == out["event_count"].sum() + count_exact_duplicates(ev)


def test_ties_on_timestamp_are_broken_deterministically() -> None:
    t0 = at(D, 12, 0)
    a = events([("u", t0, "view_page"), ("u", t0, "login"), ("u", t0, "search")])
    out = sessionize(a)
    assert out["first_event_type"].to_list() == ["login"]
    assert out["last_event_type"].to_list() == ["view_page"]
    assert_frame_equal(sessionize(a.reverse()), out)


def test_out_of_order_input_gives_identical_output() -> None:
    t0 = at(D, 8, 0)
    rows = [
        (user, t0 + timedelta(minutes=m), etype, oid)
        for user in ("u3", "u1", "u2")
        for m, etype, oid in [
            (0, "login", None),
            (10, "view_page", None),
            (50, "purchase", 9),
            (55, "logout", None),
            (200, "view_page", None),
        ]
    ]
    ordered = events(rows)
    expected = sessionize(ordered)
    for seed in range(5):
        assert_frame_equal(
            sessionize(ordered.sample(fraction=1, shuffle=True, seed=seed)), expected
        )
    assert_frame_equal(sessionize(ordered.lazy()), expected)


def test_session_id_is_deterministic_and_documented() -> None:
    t0 = at(D, 23, 40, 12, 345_000)
    ev = events([("u0000042", t0, "login"), ("u0000042", t0 + timedelta(minutes=3), "logout")])
    ids = sessionize(ev)["session_id"].to_list()
    assert ids == ["u0000042@1773790812345000"]
    assert sessionize(ev.reverse())["session_id"].to_list() == ids
    # Unique per (user, start) even for user ids containing the separator.
    tricky = events([("a@1", t0, "x"), ("a", t0, "x")])
    assert sessionize(tricky)["session_id"].n_unique() == 2


def test_output_is_sorted_by_user_then_start() -> None:
    t0 = at(D, 1, 0)
    ev = events([(u, t0 + timedelta(hours=h), "x") for u in ("b", "a", "c") for h in (3, 1, 2)])
    out = sessionize(ev)
    assert out.select("user_id", "session_start").rows() == sorted(
        out.select("user_id", "session_start").rows()
    )


def test_accepts_naive_or_other_unit_timestamps_and_missing_order_id() -> None:
    ev = pl.DataFrame(
        {
            "user_id": ["u", "u"],
            "event_timestamp": [datetime(2026, 3, 17, 10), datetime(2026, 3, 17, 10, 20)],
            "event_type": ["login", "purchase"],
        }
    ).with_columns(pl.col("event_timestamp").cast(pl.Datetime("ns")))
    out = sessionize(ev)
    assert out["session_start"].to_list() == [at(D, 10, 0)]
    assert out["order_ids"].to_list() == [[]]
    assert out["converted"].to_list() == [True]


def test_hash_collision_falls_back_to_string_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = at(D, 10, 0)
    ev = events(
        [
            (u, t0 + timedelta(minutes=m), "view_page")
            for u in ("a", "b", "c")
            for m in (0, 5, 50, 52)
        ]
    )
    expected = sessionize(ev)
    # Every user hashes to the same value: the collision is detected and handled exactly.
    monkeypatch.setattr(
        pl.Series, "hash", lambda self, *a, **k: pl.Series([0] * len(self), dtype=pl.UInt64)
    )
    assert_frame_equal(sessionize(ev), expected)
    assert expected.height == 6


def test_wide_time_range_and_many_users_use_the_two_column_sort() -> None:
    # 40 users x ~8000 years of microseconds do not fit one packed Int64 key.
    t_early, t_late = datetime(1971, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)
    rows = [(f"u{i:02d}", t, "x") for i in range(40) for t in (t_late, t_early, t_late + GAP)]
    out = sessionize(events(rows))
    assert out.height == 80
    assert out["event_count"].sum() == 120
    assert out.filter(pl.col("session_start") == t_late)["event_count"].to_list() == [2] * 40


def test_null_keys_are_refused_not_dropped() -> None:
    ev = events([("u", at(D, 1, 0), "x"), (None, at(D, 2, 0), "x")])
    with pytest.raises(ValueError, match="cleaned events"):
        sessionize(ev)


def test_mark_sessions_assigns_every_distinct_event_once() -> None:
    t0 = at(D, 10, 0)
    ev = events([("a", t0, "x"), ("a", t0, "x"), ("a", t0 + timedelta(hours=1), "y")])
    marked = mark_sessions(ev)
    assert marked.height == 2
    assert marked["session_no"].to_list() == [1, 2]
    assert marked["new_session"].to_list() == [True, True]


def test_matches_naive_reference() -> None:
    t0 = at(D, 0, 0)
    rows = [
        (
            f"u{i % 7}",
            t0 + timedelta(seconds=(i * 7919) % 20_000),
            ("purchase", "view")[i % 2],
            i % 3 or None,
        )
        for i in range(400)
    ]
    ev = events(rows)
    expected = pl.DataFrame(reference_sessions(ev), schema=SESSIONS_SCHEMA)
    assert_frame_equal(sessionize(ev), expected)


# ----------------------------------------------------------------------------- midnight


def test_session_crossing_midnight_belongs_to_the_day_it_starts_only() -> None:
    prev, nxt, after = D - timedelta(days=1), D + timedelta(days=1), D + timedelta(days=2)
    ev = events(
        [
            ("u", at(prev, 12, 0), "login"),  # unrelated session on D-1
            ("u", at(D, 23, 40), "login"),
            ("u", at(D, 23, 55), "view_page"),
            ("u", at(nxt, 0, 10), "add_to_cart"),
            ("u", at(nxt, 0, 25), "purchase", 123),
            ("u", at(nxt, 9, 0), "login"),  # a new session on D+1
            ("u", at(after, 0, 5), "login"),
        ]
    )
    window_d = on_days(ev, prev, D, nxt)
    out_d = sessions_for_day(window_d, D)
    assert out_d.height == 1
    row = out_d.row(0, named=True)
    assert row["session_start"] == at(D, 23, 40)
    assert row["session_end"] == at(nxt, 0, 25)
    assert row["event_count"] == 4
    assert row["duration_seconds"] == 45 * 60
    assert row["converted"] is True
    assert row["order_ids"] == [123]
    assert row["session_date"] == D

    out_next = sessions_for_day(on_days(ev, D, nxt, after), nxt)
    assert out_next["session_start"].to_list() == [at(nxt, 9, 0)]
    assert row["session_id"] not in out_next["session_id"].to_list()

    out_prev = sessions_for_day(on_days(ev, prev - timedelta(days=1), prev, D), prev)
    assert out_prev["session_start"].to_list() == [at(prev, 12, 0)]


def test_session_running_into_the_day_from_yesterday_is_not_reemitted() -> None:
    # Starts D-1 23:50, events every 20 min until D 02:10: a D-1 session, not a D session.
    start = at(D - timedelta(days=1), 23, 50)
    ev = events([("u", start + timedelta(minutes=20 * i), "view_page") for i in range(8)])
    assert sessions_for_day(ev, D).height == 0
    out = sessions_for_day(ev, D - timedelta(days=1))
    assert out["event_count"].to_list() == [8]


def test_events_older_than_the_gap_do_not_matter_for_a_day() -> None:
    # The chain into D is decided by the last event before midnight only.
    ev = events(
        [
            ("u", at(D - timedelta(days=1), 22, 0), "a"),
            ("u", at(D - timedelta(days=1), 22, 25), "b"),
            ("u", at(D - timedelta(days=1), 23, 31), "c"),  # 29 min before midnight
            ("u", at(D, 0, 0), "d"),
        ]
    )
    assert sessions_for_day(ev, D).height == 0
    assert sessions_for_day(ev.filter(pl.col("event_type") != "c"), D).height == 1


# ----------------------------------------------------------------------------- property

DAY_US = 86_400_000_000
GAP_US = 30 * 60 * 1_000_000
BASE = at(date(2026, 3, 15), 0, 0)  # d0; the days are d0..d4
DAYS = [BASE.date() + timedelta(days=k) for k in range(5)]

_timestamp_us = st.one_of(
    st.integers(0, 5 * DAY_US - 1),
    # near a midnight, on exact multiples of the gap, give or take 1 µs
    st.builds(
        lambda m, k, j: m * DAY_US + k * GAP_US + j,
        st.integers(1, 4),
        st.integers(-3, 3),
        st.sampled_from([0, 1, -1, 7]),
    ),
    # a few minutes around a midnight
    st.builds(
        lambda m, off: m * DAY_US + off,
        st.integers(1, 4),
        st.integers(-3_600_000_000, 3_600_000_000),
    ),
)
_event = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    _timestamp_us,
    st.sampled_from(["login", "view_page", "purchase"]),
    st.one_of(st.none(), st.integers(1, 4)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_event, max_size=40), data=st.data())
def test_property_days_partition_sessions_exactly(rows: list[tuple], data: st.DataObject) -> None:
    # <= 40 events per user, consecutive events in a session <= 30 min apart:
    # no session spans more than 19.5 h, inside the documented 24 h limit.
    ev = events([(u, BASE + timedelta(microseconds=t), e, o) for u, t, e, o in rows])
    dupes = data.draw(st.lists(st.integers(0, max(len(rows) - 1, 0)), max_size=5)) if rows else []
    ev = pl.concat([ev, ev[dupes]])
    ev = ev.sample(fraction=1, shuffle=True, seed=data.draw(st.integers(0, 2**16)))

    everything = sessionize(ev)
    per_day = []
    for i, day in enumerate(DAYS):
        neighbours = DAYS[max(i - 1, 0) : i + 2]
        out = sessions_for_day(on_days(ev, *neighbours), day)
        assert_frame_equal(out, everything.filter(pl.col("session_date") == day))
        per_day.append(out)
    union = pl.concat(per_day).sort("user_id", "session_start")
    assert_frame_equal(union, everything)
    # Every distinct event is in exactly one session, no session is emitted twice.
    assert union["session_id"].is_unique().all()
    assert union["event_count"].sum() == ev.unique().height
    assert ev.height == union["event_count"].sum() + count_exact_duplicates(ev)
    assert_frame_equal(everything, pl.DataFrame(reference_sessions(ev), schema=SESSIONS_SCHEMA))


def test_module_documents_the_midnight_limit() -> None:
    doc = sessions_module.__doc__ or ""
    assert "24 hours past midnight" in doc
    assert "truncated" in doc


def test_session_longer_than_the_window_is_the_documented_limit() -> None:
    # Events every 20 min from D 20:00 to D+2 01:00 (29 h): beyond the D-1..D+1 window.
    start = at(D, 20, 0)
    ev = events([("bot", start + timedelta(minutes=20 * i), "view_page") for i in range(88)])
    days = [D + timedelta(days=k) for k in range(-1, 4)]
    emitted = {
        d: sessions_for_day(on_days(ev, d - timedelta(days=1), d, d + timedelta(days=1)), d)
        for d in days
    }
    out_d = emitted[D]
    assert out_d["session_end"].to_list() == [at(D + timedelta(days=1), 23, 40)]  # truncated
    assert possibly_truncated(out_d, D).height == 1
    assert all(emitted[d].height == 0 for d in days if d != D)  # D+2's events: no session
    # A normal crossing session is not flagged.
    normal = sessions_for_day(
        events([("u", at(D, 23, 40), "a"), ("u", at(D + timedelta(days=1), 0, 25), "b")]), D
    )
    assert possibly_truncated(normal, D).height == 0
