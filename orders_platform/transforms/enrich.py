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

Performance: the string-valued rules (has_promo, the system cancellation reasons) are
evaluated once per distinct value (`parsing.parse_columns`), order_month once per distinct
order_date, and order_hour with integer arithmetic on the microseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from orders_platform.transforms.parsing import (
    ColumnParser,
    field_name,
    null_if_blank,
    parse_columns,
)
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
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 86_400_000_000

# Rules on free-text columns, evaluated once per distinct value.
_TEXT_RULES = {
    "promo_code": ColumnParser(exact=lambda v: {"present": null_if_blank(v).is_not_null()}),
    "cancellation_reason": ColumnParser(
        exact=lambda v: {
            "system": v.str.strip_chars()
            .str.to_lowercase()
            .is_in(SYSTEM_CANCELLATION_REASONS)
            .fill_null(False)
        }
    ),
}


def _delivery_minutes(created: pl.Expr, delivered: pl.Expr) -> pl.Expr:
    micros = (delivered - created).dt.total_microseconds()
    # round(|us| / 60e6, 1) half away from zero, in integers: tenths of a minute.
    tenths = (micros.abs() * 10 + _US_PER_MINUTE // 2) // _US_PER_MINUTE
    signed = pl.when(micros < 0).then(-tenths).otherwise(tenths)
    # Polars turns "/ 10" into "* 0.1" (47.400000000000006); round(1) restores k / 10.
    return (signed.cast(pl.Float64) / 10).round(1)


def _order_month(order_date: pl.Series) -> pl.Series:
    """ "YYYY-MM" of each date, formatted once per distinct date (a day has one or two)."""
    dates = order_date.unique()
    months = dates.cast(pl.String).str.slice(0, 7)
    return order_date.replace_strict(dates, months, return_dtype=pl.String)


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
    frame = lf.select(pl.col(c).cast(VALIDATED_ORDERS_SCHEMA[c]) for c in needed).collect()
    text = parse_columns(frame.select(list(_TEXT_RULES)), _TEXT_RULES)
    has_promo = text.get_column(field_name("promo_code", "present"))
    system_reason = text.get_column(field_name("cancellation_reason", "system"))

    amount = pl.col("order_amount")
    created_us = pl.col("created_at").dt.epoch("us")
    order_date = pl.col("created_at").dt.date()
    enriched = frame.with_columns(
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
        # Microseconds since midnight UTC (floor division: right before 1970 too).
        (created_us - created_us // _US_PER_DAY * _US_PER_DAY)
        .floordiv(_US_PER_HOUR)
        .cast(pl.Int32)
        .alias("order_hour"),
        _delivery_minutes(pl.col("created_at"), pl.col("delivered_at")).alias("delivery_minutes"),
        pl.when(pl.col("status") == "cancelled")
        .then(pl.when(system_reason).then(pl.lit("system")).otherwise(pl.lit("customer")))
        .alias("cancellation_type"),
        has_promo.alias("has_promo"),
        pl.lit(loaded, dtype=UTC_TS).alias("ingested_at"),
    )
    enriched = enriched.with_columns(
        _order_month(enriched.get_column("order_date")).alias("order_month")
    )
    return enriched.select(pl.col(name).cast(dtype) for name, dtype in SILVER_ORDERS_SCHEMA.items())
