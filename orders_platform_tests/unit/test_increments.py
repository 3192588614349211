"""Folding a tick's validated rows into the open day's (transforms/increments.py)."""

from datetime import UTC, datetime

import polars as pl

from orders_platform.transforms.increments import merge_latest


def frame(rows: list[tuple[int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"order_id": o, "updated_at": datetime(2026, 3, 17, h, tzinfo=UTC), "status": s}
            for o, h, s in rows
        ]
    )


def test_latest_wins_ties_go_to_the_new_rows_and_output_is_sorted():
    held = frame([(3, 9, "placed"), (1, 8, "placed"), (2, 10, "delivered")])
    new = frame([(2, 9, "picked_up"), (1, 11, "delivered"), (3, 9, "confirmed"), (4, 11, "placed")])
    merged, collapsed = merge_latest(held, new)
    assert merged.rows() == [
        (1, datetime(2026, 3, 17, 11, tzinfo=UTC), "delivered"),
        (2, datetime(2026, 3, 17, 10, tzinfo=UTC), "delivered"),  # an older change loses
        (3, datetime(2026, 3, 17, 9, tzinfo=UTC), "confirmed"),  # a tie: the later row
        (4, datetime(2026, 3, 17, 11, tzinfo=UTC), "placed"),
    ]
    assert collapsed == 3


def test_empty_sides():
    held = frame([(1, 8, "placed")])
    assert merge_latest(held, held.clear()) == (held, 0)
    assert merge_latest(held.clear(), held) == (held, 0)
