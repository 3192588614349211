"""Row accounting between raw, validated and rejected partitions (pure Polars)."""

from __future__ import annotations

import polars as pl


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
