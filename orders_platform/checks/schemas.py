"""pandera (polars) models: the quality gates of validated/orders and silver/orders.

These are the declared contract. Gates first evaluate their pandera-free twins in
`contracts.py` (same rules, one Polars pass, no pandera import) and run a model only on a
frame that fails, for the report; `test_gates.py` keeps the two in step. Frame-level
checks call the expressions of `contracts.py`, so those are written once.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines import polars_engine as pe

from orders_platform.checks import contracts as rules
from orders_platform.transforms.schema import (
    MAX_ORDER_AMOUNT,
    PAYMENT_METHODS,
    UNKNOWN_PAYMENT_METHOD,
    VALID_STATUSES,
)

_MONEY = {"dtype_kwargs": {"precision": 12, "scale": 2}}
_UTC = {"dtype_kwargs": {"time_zone": "UTC", "time_unit": "us"}}


class ValidatedOrders(pa.DataFrameModel):
    """One row per order_id, typed and normalised (SPEC §3)."""

    order_id: pl.Int64 = pa.Field(gt=0, unique=True)
    customer_id: pl.Int64 = pa.Field(gt=0)
    store_id: pl.Int64 = pa.Field(nullable=True)
    restaurant_id: pl.Int64 = pa.Field(nullable=True)
    order_amount: pe.Decimal = pa.Field(ge=0, le=MAX_ORDER_AMOUNT, **_MONEY)
    delivery_fee: pe.Decimal = pa.Field(ge=0, **_MONEY)
    discount_amount: pe.Decimal = pa.Field(ge=0, **_MONEY)
    status: pl.String = pa.Field(isin=list(VALID_STATUSES))
    payment_method: pl.String = pa.Field(isin=[*PAYMENT_METHODS, UNKNOWN_PAYMENT_METHOD])
    payment_status: pl.String = pa.Field(nullable=True)
    created_at: pe.DateTime = pa.Field(**_UTC)
    updated_at: pe.DateTime = pa.Field(**_UTC)
    delivered_at: pe.DateTime = pa.Field(nullable=True, **_UTC)
    cancelled_at: pe.DateTime = pa.Field(nullable=True, **_UTC)
    cancellation_reason: pl.String = pa.Field(nullable=True)
    promo_code: pl.String = pa.Field(nullable=True)
    notes: pl.String = pa.Field(nullable=True)

    @pa.dataframe_check(error="updated_at is before created_at")
    @classmethod
    def updated_not_before_created(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.updated_not_before_created())

    class Config:
        strict = False  # lineage columns ride along
        coerce = False


class SilverOrders(ValidatedOrders):
    """The enriched current-state row (SPEC §4)."""

    total_value: pe.Decimal = pa.Field(**_MONEY)
    order_tier: pl.String = pa.Field(isin=["premium", "standard", "economy"])
    order_date: pl.Date
    order_hour: pl.Int32 = pa.Field(ge=0, le=23)
    order_month: pl.String = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    delivery_minutes: pl.Float64 = pa.Field(nullable=True)
    cancellation_type: pl.String = pa.Field(nullable=True, isin=["system", "customer"])
    has_promo: pl.Boolean
    ingested_at: pe.DateTime = pa.Field(**_UTC)

    @pa.dataframe_check(error="total_value != order_amount + delivery_fee - discount_amount")
    @classmethod
    def total_is_exact(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.total_is_exact())

    @pa.dataframe_check(error="order_date is not the UTC date of created_at")
    @classmethod
    def order_date_from_created(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.order_date_from_created())

    @pa.dataframe_check(error="cancellation_type set exactly for cancelled orders")
    @classmethod
    def cancellation_type_only_when_cancelled(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.cancellation_type_only_when_cancelled())


class Sessions(pa.DataFrameModel):
    """One row per user session (SPEC §5)."""

    session_id: pl.String = pa.Field(unique=True)
    user_id: pl.String
    session_start: pe.DateTime = pa.Field(**_UTC)
    session_end: pe.DateTime = pa.Field(**_UTC)
    session_date: pl.Date
    duration_seconds: pl.Float64 = pa.Field(ge=0)
    event_count: pl.Int64 = pa.Field(ge=1)
    first_event_type: pl.String
    last_event_type: pl.String
    converted: pl.Boolean

    @pa.dataframe_check(error="session_start is after session_end")
    @classmethod
    def start_not_after_end(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.start_not_after_end())

    @pa.dataframe_check(error="duration_seconds != session_end - session_start")
    @classmethod
    def duration_is_end_minus_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.duration_is_end_minus_start())

    @pa.dataframe_check(error="session_date is not the UTC date of session_start")
    @classmethod
    def date_of_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.date_of_start())

    @pa.dataframe_check(error="a session whose first or last event is a purchase must be converted")
    @classmethod
    def purchase_means_converted(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.purchase_means_converted())

    class Config:
        strict = False
        coerce = False
