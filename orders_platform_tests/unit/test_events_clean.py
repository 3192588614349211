"""Event cleaning (SPEC §2 validated/rejected_events): reasons, typing, lineage, counts."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from orders_platform.transforms.events import (
    EVENT_REJECT_REASONS,
    REJECTED_EVENTS_SCHEMA,
    VALID_EVENTS_SCHEMA,
    EventsCleanResult,
    clean_events,
)

EXTRACTED = datetime(2026, 3, 18, 1, 0, tzinfo=UTC)


def raw(rows: list[tuple], *, lineage: bool = True) -> pl.DataFrame:
    """rows of (user_id, event_timestamp, event_type, order_id) as raw strings."""
    frame = pl.DataFrame(
        rows,
        schema={c: pl.String for c in ("user_id", "event_timestamp", "event_type", "order_id")},
        orient="row",
    )
    if lineage:
        frame = frame.with_columns(
            _source=pl.lit("demo"),
            _extracted_at=pl.lit(EXTRACTED, pl.Datetime("us", "UTC")),
            _run_id=pl.lit("run-1"),
        )
    return frame


def test_valid_events_are_typed_and_normalised() -> None:
    result = clean_events(
        raw(
            [
                (" u1 ", "2026-03-17T20:14:32+05:30", " VIEW_PAGE ", None),
                ("u2", "2026-03-17T20:14:32.123456Z", "Purchase", " 123 "),
                ("u3", "2026-03-17 20:14:32", None, "#1,234"),
                ("u4", "2026-03-17T20:14:32.5+00:00", "NULL", "77.0"),
                ("u5", "2026-03-17T20:14:32-0300", "", "abc"),
                ("u6", "2026-03-17T20:14:32+05", "login", "0"),
            ]
        )
    )
    assert isinstance(result, EventsCleanResult)
    assert result.valid.schema == pl.Schema(VALID_EVENTS_SCHEMA)
    assert result.rejected.height == 0
    v = result.valid
    assert v["user_id"].to_list() == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert v["event_timestamp"].to_list() == [
        datetime(2026, 3, 17, 14, 44, 32, tzinfo=UTC),
        datetime(2026, 3, 17, 20, 14, 32, 123456, tzinfo=UTC),
        datetime(2026, 3, 17, 20, 14, 32, tzinfo=UTC),
        datetime(2026, 3, 17, 20, 14, 32, 500000, tzinfo=UTC),
        datetime(2026, 3, 17, 23, 14, 32, tzinfo=UTC),
        datetime(2026, 3, 17, 15, 14, 32, tzinfo=UTC),
    ]
    assert v["event_type"].to_list() == [
        "view_page",
        "purchase",
        "unknown",
        "unknown",
        "unknown",
        "login",
    ]
    # An unusable order_id never rejects an event; it becomes null.
    assert v["order_id"].to_list() == [None, 123, 1234, 77, None, None]
    assert v["_source"].to_list() == ["demo"] * 6
    assert v["_extracted_at"].to_list() == [EXTRACTED] * 6
    assert v["_run_id"].to_list() == ["run-1"] * 6


@pytest.mark.parametrize("spelling", [None, "", "  ", "NULL", "null", "N/A", "n/a", "-", "None"])
def test_null_spellings_of_user_id_and_timestamp(spelling: str | None) -> None:
    result = clean_events(
        raw(
            [
                (spelling, "2026-03-17T10:00:00Z", "login", None),
                ("u1", spelling, "login", None),
            ]
        )
    )
    assert result.valid.height == 0
    assert result.rejected["reason"].to_list() == ["missing_user_id", "missing_event_timestamp"]
    # Raw values are kept exactly as received (as strings), not trimmed or nulled.
    assert result.rejected["user_id"].to_list() == [spelling, "u1"]
    assert result.rejected["event_timestamp"].to_list() == ["2026-03-17T10:00:00Z", spelling]


def test_reasons_first_match_wins_with_detail_and_lineage() -> None:
    result = clean_events(
        raw(
            [
                ("N/A", "garbage", "login", "5"),  # both wrong: user first
                ("u1", "-", "login", None),
                ("u2", "2026-02-30T10:00:00Z", " Purchase ", " 9 "),
                ("u3", "17/03/2026 10:00", "login", None),
                ("u4", "2026-03-17T25:61:00Z", "login", None),
                ("u5", "2026-03-17T10:00:00Z", "login", None),  # valid
            ]
        )
    )
    rej = result.rejected
    assert rej.schema == pl.Schema(REJECTED_EVENTS_SCHEMA)
    assert rej["reason"].to_list() == [
        "missing_user_id",
        "missing_event_timestamp",
        "unparseable_event_timestamp",
        "unparseable_event_timestamp",
        "unparseable_event_timestamp",
    ]
    assert rej.row(2, named=True) | {"detail": None} == {
        "user_id": "u2",
        "event_timestamp": "2026-02-30T10:00:00Z",
        "event_type": " Purchase ",
        "order_id": " 9 ",
        "reason": "unparseable_event_timestamp",
        "detail": None,
        "_source": "demo",
        "_extracted_at": EXTRACTED,
        "_run_id": "run-1",
    }
    assert "'N/A'" in rej["detail"][0]
    assert "'-'" in rej["detail"][1]
    assert "2026-02-30T10:00:00Z" in rej["detail"][2]
    assert rej["detail"].null_count() == 0
    assert result.rejected_by_reason == {
        "missing_user_id": 1,
        "missing_event_timestamp": 1,
        "unparseable_event_timestamp": 3,
    }
    assert list(result.rejected_by_reason) == list(EVENT_REJECT_REASONS)
    assert result.valid["user_id"].to_list() == ["u5"]


def test_every_raw_row_is_valid_or_rejected_and_duplicates_are_kept() -> None:
    rows = [
        ("u1", "2026-03-17T10:00:00Z", "login", None),
        ("u1", "2026-03-17T10:00:00Z", "login", None),  # exact duplicate: kept here
        ("u1", "2026-03-17T10:00:00Z", "login", None),
        ("", "2026-03-17T10:00:00Z", "login", None),
        ("u2", "nope", "login", None),
    ]
    result = clean_events(raw(rows))
    assert result.valid.height == 3  # duplicates are collapsed later, by sessionize
    assert result.valid.height + result.rejected.height == len(rows)
    assert sum(result.rejected_by_reason.values()) == result.rejected.height


def test_zero_counts_are_reported_and_empty_input_keeps_schemas() -> None:
    result = clean_events(raw([]))
    assert result.valid.schema == pl.Schema(VALID_EVENTS_SCHEMA)
    assert result.rejected.schema == pl.Schema(REJECTED_EVENTS_SCHEMA)
    assert result.rejected_by_reason == dict.fromkeys(EVENT_REJECT_REASONS, 0)


def test_lazy_input_missing_lineage_and_missing_order_id_column() -> None:
    frame = raw([("u1", "2026-03-17T10:00:00Z", "login", None)], lineage=False).drop("order_id")
    result = clean_events(frame.lazy())
    assert result.valid.schema == pl.Schema(VALID_EVENTS_SCHEMA)
    row = result.valid.row(0, named=True)
    assert row["order_id"] is None
    assert row["_source"] is None and row["_run_id"] is None and row["_extracted_at"] is None


def test_typed_timestamps_and_non_string_ids_are_accepted() -> None:
    frame = pl.DataFrame(
        {
            "user_id": [101, None],
            "event_timestamp": [datetime(2026, 3, 17, 10), datetime(2026, 3, 17, 11)],
            "event_type": ["login", "login"],
            "order_id": [5, None],
            "_extracted_at": ["2026-03-18T01:00:00Z", "2026-03-18T01:00:00Z"],
        }
    )
    result = clean_events(frame)
    assert result.valid["user_id"].to_list() == ["101"]
    assert result.valid["event_timestamp"].to_list() == [datetime(2026, 3, 17, 10, tzinfo=UTC)]
    assert result.valid["order_id"].to_list() == [5]
    assert result.valid["_extracted_at"].to_list() == [EXTRACTED]
    assert result.rejected["reason"].to_list() == ["missing_user_id"]
    assert result.rejected["event_timestamp"].dtype == pl.String


def test_valid_events_feed_sessionize() -> None:
    from orders_platform.transforms.sessions import sessionize

    result = clean_events(
        raw(
            [
                (" u1", "2026-03-17T10:00:00Z", "LOGIN", None),
                ("u1 ", "2026-03-17T15:40:00+05:30", " purchase ", "42.0"),  # 10:10 UTC
                ("u1", "2026-03-17 10:10:00", "purchase", "42"),  # same event, other spelling
            ]
        )
    )
    sessions = sessionize(result.valid)
    assert sessions.select("event_count", "converted", "order_ids").rows() == [(2, True, [42])]
