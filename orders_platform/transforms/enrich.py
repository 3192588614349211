"""Enrichment of validated orders into the silver/orders shape (SPEC §4), as pure Polars.

Rule decisions (mirrored in `benchmarks/reference_orders.py`):

* total_value is computed in Decimal and cast back to Decimal(12,2) (exact; with fee and
  discount capped at MAX_ORDER_AMOUNT by validation it always fits). It may be negative
  when the discount exceeds amount + fee: SPEC §4 defines it as a plain sum.
* delivery_minutes is computed from integer microseconds and rounded to 1 decimal half
  away from zero (exact, no float rounding artefacts); negative when delivered_at is
  before created_at (kept, not invented away).
* has_promo is true when promo_code, trimmed, is non-empty and not a null spelling.
* cancellation_type compares cancellation_reason trimmed and lower-cased.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from orders_platform.transforms.parsing import null_if_blank
from orders_platform.transforms.schema import (
    MONEY,
    PREMIUM_MIN_AMOUNT,
    SILVER_ORDERS_SCHEMA,
    STANDARD_MIN_AMOUNT,
    SYSTEM_CANCELLATION_REASONS,
    UTC_TS,
    VALIDATED_ORDERS_SCHEMA,
)

_US_PER_MINUTE = 60_000_000


def _delivery_minutes(created: pl.Expr, delivered: pl.Expr) -> pl.Expr:
    micros = (delivered - created).dt.total_microseconds()
    # round(|us| / 60e6, 1) half away from zero, in integers: tenths of a minute.
    tenths = (micros.abs() * 10 + _US_PER_MINUTE // 2) // _US_PER_MINUTE
    signed = pl.when(micros < 0).then(-tenths).otherwise(tenths)
    # Polars turns "/ 10" into "* 0.1" (47.400000000000006); round(1) restores k / 10.
    return (signed.cast(pl.Float64) / 10).round(1)


def enrich_orders(valid: pl.DataFrame | pl.LazyFrame, ingested_at: datetime) -> pl.DataFrame:
    """Add the SPEC §4 columns to validated orders; returns exactly SILVER_ORDERS_SCHEMA.

    `valid` has the VALIDATED_ORDERS_SCHEMA columns (`_extracted_at` optional: it is
    dropped). `ingested_at` must be timezone-aware; it is stored in UTC.
    """
    if ingested_at.tzinfo is None or ingested_at.utcoffset() is None:
        raise ValueError("ingested_at must be a timezone-aware datetime (got a naive one)")
    loaded = ingested_at.astimezone(UTC)

    lf = valid.lazy()
    schema = lf.collect_schema()
    needed = [c for c in VALIDATED_ORDERS_SCHEMA if c != "_extracted_at"]
    missing = [c for c in needed if c not in schema]
    if missing:
        raise ValueError(f"validated orders are missing column(s): {', '.join(missing)}")
    lf = lf.select(pl.col(c).cast(VALIDATED_ORDERS_SCHEMA[c]) for c in needed)

    amount = pl.col("order_amount")
    created = pl.col("created_at")
    order_date = created.dt.date()
    status = pl.col("status")
    reason = pl.col("cancellation_reason").str.strip_chars().str.to_lowercase()
    enriched = lf.with_columns(
        (amount + pl.col("delivery_fee") - pl.col("discount_amount"))
        .cast(MONEY)
        .alias("total_value"),
        pl.when(amount >= PREMIUM_MIN_AMOUNT)
        .then(pl.lit("premium"))
        .when(amount >= STANDARD_MIN_AMOUNT)
        .then(pl.lit("standard"))
        .when(amount.is_not_null())
        .then(pl.lit("economy"))
        .alias("order_tier"),
        order_date.alias("order_date"),
        created.dt.hour().cast(pl.Int32).alias("order_hour"),
        order_date.cast(pl.String).str.slice(0, 7).alias("order_month"),
        _delivery_minutes(created, pl.col("delivered_at")).alias("delivery_minutes"),
        pl.when(status == "cancelled")
        .then(
            pl.when(reason.is_in(SYSTEM_CANCELLATION_REASONS).fill_null(False))
            .then(pl.lit("system"))
            .otherwise(pl.lit("customer"))
        )
        .alias("cancellation_type"),
        null_if_blank(pl.col("promo_code")).is_not_null().alias("has_promo"),
        pl.lit(loaded, dtype=UTC_TS).alias("ingested_at"),
    )
    return enriched.select(
        pl.col(name).cast(dtype) for name, dtype in SILVER_ORDERS_SCHEMA.items()
    ).collect()
