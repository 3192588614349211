"""Column names, codes and vocabularies of SPEC §3–4, shared by transforms and sources."""

from __future__ import annotations

import polars as pl

ORDER_SOURCE_COLUMNS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "store_id",
    "restaurant_id",
    "order_amount",
    "delivery_fee",
    "discount_amount",
    "status",
    "payment_method",
    "payment_status",
    "created_at",
    "updated_at",
    "delivered_at",
    "cancelled_at",
    "cancellation_reason",
    "promo_code",
    "notes",
)

# Lineage columns every source adds to every raw row (SPEC §2).
LINEAGE_COLUMNS: tuple[str, ...] = ("_source", "_extracted_at", "_run_id")

# Raw orders as received: every source column is a string (nullable).
RAW_ORDERS_SCHEMA: dict[str, pl.DataType] = {c: pl.String() for c in ORDER_SOURCE_COLUMNS}

# First matching reason wins, in this order (SPEC §3).
REJECT_REASONS: tuple[str, ...] = (
    "missing_order_id",
    "missing_customer_id",
    "null_order_amount",
    "non_numeric_order_amount",
    "negative_order_amount",
    "suspiciously_large_amount",
    "test_order",
    "invalid_status",
    "missing_timestamp",
    "unparseable_timestamp",
    "updated_before_created",
)
# Reasons beyond SPEC §3, checked after all of REJECT_REASONS: delivery_fee or
# discount_amount present but not a number, negative, or above MAX_ORDER_AMOUNT.
EXTRA_REJECT_REASONS: tuple[str, ...] = ("invalid_fee_or_discount",)
ALL_REJECT_REASONS: tuple[str, ...] = REJECT_REASONS + EXTRA_REJECT_REASONS

VALID_STATUSES: tuple[str, ...] = (
    "placed",
    "confirmed",
    "preparing",
    "ready",
    "picked_up",
    "delivering",
    "delivered",
    "cancelled",
)
PAYMENT_METHODS: tuple[str, ...] = ("upi", "card", "netbanking", "wallet", "cod", "emi")
UNKNOWN_PAYMENT_METHOD = "unknown"
NULL_SPELLINGS: tuple[str, ...] = ("", "null", "n/a", "-", "none")  # compared lower-cased, trimmed
SYSTEM_CANCELLATION_REASONS: tuple[str, ...] = (
    "payment_failed",
    "restaurant_closed",
    "no_rider_available",
)
MAX_ORDER_AMOUNT = 500_000
PREMIUM_MIN_AMOUNT = 2000
STANDARD_MIN_AMOUNT = 500

MONEY = pl.Decimal(12, 2)
UTC_TS = pl.Datetime("us", "UTC")

LINEAGE_SCHEMA: dict[str, pl.DataType] = {
    "_source": pl.String(),
    "_extracted_at": UTC_TS,
    "_run_id": pl.String(),
}

# validated/orders: one row per order_id, normalised and typed (column order is the contract).
VALIDATED_ORDERS_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.Int64(),
    "customer_id": pl.Int64(),
    "store_id": pl.Int64(),
    "restaurant_id": pl.Int64(),
    "order_amount": MONEY,
    "delivery_fee": MONEY,
    "discount_amount": MONEY,
    "status": pl.String(),
    "payment_method": pl.String(),
    "payment_status": pl.String(),
    "created_at": UTC_TS,
    "updated_at": UTC_TS,
    "delivered_at": UTC_TS,
    "cancelled_at": UTC_TS,
    "cancellation_reason": pl.String(),
    "promo_code": pl.String(),
    "notes": pl.String(),
    **LINEAGE_SCHEMA,
}

# validated/rejected_orders: raw values kept as strings, plus why.
REJECTED_ORDERS_SCHEMA: dict[str, pl.DataType] = {
    **RAW_ORDERS_SCHEMA,
    "reason": pl.String(),
    "detail": pl.String(),
    **LINEAGE_SCHEMA,
}

# silver/orders (warehouse table silver.orders), keyed by order_id.
SILVER_ORDERS_SCHEMA: dict[str, pl.DataType] = {
    **{k: v for k, v in VALIDATED_ORDERS_SCHEMA.items() if k != "_extracted_at"},
    "total_value": MONEY,
    "order_tier": pl.String(),
    "order_date": pl.Date(),
    "order_hour": pl.Int32(),
    "order_month": pl.String(),
    "delivery_minutes": pl.Float64(),
    "cancellation_type": pl.String(),
    "has_promo": pl.Boolean(),
    "ingested_at": UTC_TS,
}

# Set by a source on a record it could not even split into columns (a malformed landing
# line); `_raw_line`, `_file` and `_line` say what and where. Such rows go straight to the
# dead letters with the prefix of `_malformed` as reason (e.g. malformed_json).
MALFORMED_COLUMN = "_malformed"
MALFORMED_CONTEXT_COLUMNS = ("_raw_line", "_file", "_line")
