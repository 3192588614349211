"""Folding an intraday tick's validated rows into what the open day already holds (pure)."""

from __future__ import annotations

import polars as pl


def merge_latest(held: pl.DataFrame, new: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """One row per order_id over `held` then `new`: the latest updated_at wins, a tie goes
    to the later row (as validation does within a partition). Sorted by order_id, like
    validated output; returns the rows and how many were collapsed."""
    if not held.height:
        return new, 0
    if not new.height:
        return held, 0
    both = pl.concat([held, new.select(held.columns)], how="vertical_relaxed")
    merged = (
        both.with_row_index("__row")
        .sort(["order_id", "updated_at", "__row"], nulls_last=False)
        .unique("order_id", keep="last", maintain_order=True)
        .drop("__row")
    )
    return merged, both.height - merged.height
