"""Row accounting between raw, validated and rejected partitions (pure Polars)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from orders_platform.transforms.sessions import mark_sessions


def reconcile_orders(
    raw: pl.DataFrame,
    validated: pl.DataFrame,
    rejected: pl.DataFrame,
    duplicates_claimed: int | None,
) -> dict:
    """Check raw = validated + rejected + duplicates collapsed, and that nothing is invented.

    `duplicates_claimed` is what the validation step reported; the check recomputes the
    remainder from the stored partitions and compares, so a row lost (or duplicated) by
    any later change to validation or storage shows up as a mismatch.
    """
    remainder = raw.height - validated.height - rejected.height
    raw_ids = (
        raw.select(
            pl.col("order_id").cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
        )
        .to_series()
        .drop_nulls()
        .unique()
    )
    invented = validated.filter(~pl.col("order_id").is_in(raw_ids.implode())).height
    duplicated_ids = validated.height - validated.get_column("order_id").n_unique()
    balanced = (
        remainder >= 0
        and invented == 0
        and duplicated_ids == 0
        and (duplicates_claimed is None or remainder == duplicates_claimed)
    )
    return {
        "balanced": balanced,
        "rows_raw": raw.height,
        "rows_validated": validated.height,
        "rows_rejected": rejected.height,
        "duplicates_collapsed": remainder,
        "duplicates_claimed": -1 if duplicates_claimed is None else duplicates_claimed,
        "validated_ids_not_in_raw": invented,
        "duplicate_validated_ids": duplicated_ids,
    }


def reconcile_sessions(
    window_events: pl.DataFrame,
    sessions_of_day: pl.DataFrame,
    day: date,
    gap: timedelta,
) -> dict:
    """Every distinct valid event is in exactly one session of the day it belongs to.

    Re-marks the window's events (D-1..D+1) independently of the aggregation and checks:
    the emitted sessions of `day` hold exactly the distinct events whose session starts on
    `day`; session ids are unique; each distinct event of `day` sits in a session that
    starts on `day` or the day before (a session longer than 24 h would break that).
    """
    marked = mark_sessions(window_events, gap)
    starts = marked.group_by("session_no").agg(
        pl.col("event_timestamp").min().dt.date().alias("session_date")
    )
    marked = marked.join(starts, on="session_no", how="left")
    expected = marked.filter(pl.col("session_date") == day).height
    emitted = int(sessions_of_day.get_column("event_count").sum() or 0)
    on_day = marked.filter(pl.col("event_timestamp").dt.date() == day)
    orphans = on_day.filter(~pl.col("session_date").is_in([day, day - timedelta(days=1)])).height
    converted_expected = (
        marked.filter(pl.col("session_date") == day)
        .group_by("session_no")
        .agg((pl.col("event_type") == "purchase").any().alias("converted"))
        .get_column("converted")
        .sum()
    )
    converted = int(sessions_of_day.get_column("converted").sum() or 0)
    duplicate_ids = sessions_of_day.height - sessions_of_day.get_column("session_id").n_unique()
    return {
        "balanced": expected == emitted
        and orphans == 0
        and duplicate_ids == 0
        and converted == converted_expected,
        "sessions": sessions_of_day.height,
        "events_in_sessions": emitted,
        "events_expected": expected,
        "distinct_events_on_day": on_day.height,
        "events_on_day_outside_day_or_previous_sessions": orphans,
        "duplicate_session_ids": duplicate_ids,
        "converted_sessions": converted,
        "sessions_with_a_purchase": int(converted_expected),
    }
