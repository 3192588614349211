"""The rules of the pandera models in `schemas.py` as plain data, checked in one Polars pass.

Why a twin: importing pandera costs about half a second per process and running a model
0.2-0.5 s per million rows, paid by every run even though a gate almost always passes.
A `Contract` holds the same columns, dtypes, nullability, uniqueness and built-in checks
as its model, and the model's frame-level checks call the very expressions defined here.
`Contract.passes` evaluates all of it in one `select`; only a frame that fails is handed
to the pandera model (imported then) for the detailed report.

The pandera models stay the declared contract: `test_gates.py` asserts that each
contract lists exactly what its model's schema lists, and that a frame breaking any one
rule fails both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from orders_platform.transforms.schema import (
    MAX_ORDER_AMOUNT,
    MONEY,
    PAYMENT_METHODS,
    UNKNOWN_PAYMENT_METHOD,
    UTC_TS,
    VALID_STATUSES,
)


@dataclass(frozen=True)
class Column:
    """One column of a model: its dtype, whether nulls (and NaN) are allowed, whether
    values must be unique, and pandera built-in checks as (check name, argument)."""

    dtype: pl.DataType
    nullable: bool = False
    unique: bool = False
    checks: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class FrameCheck:
    """A frame-level rule: `expr()` is True (or null, which passes) on every good row."""

    name: str
    error: str
    expr: Callable[[], pl.Expr]


def _builtin(column: str, check: str, argument: Any) -> pl.Expr:
    """The expression of a pandera built-in check (as pandera's Polars backend builds it)."""
    col = pl.col(column)
    if check == "greater_than":
        return col > argument
    if check == "greater_than_or_equal_to":
        return col >= argument
    if check == "less_than_or_equal_to":
        return col <= argument
    if check == "isin":
        return col.is_in(list(argument))
    if check == "str_matches":
        pattern = argument if argument.startswith("^") else f"^{argument}"
        return col.str.contains(pattern)
    raise ValueError(f"unsupported check {check!r}")


@dataclass(frozen=True)
class Contract:
    model: str  # the pandera model of checks/schemas.py this contract mirrors
    columns: Mapping[str, Column]
    frame_checks: tuple[FrameCheck, ...] = field(default=())

    def passes(self, df: pl.DataFrame) -> bool:
        """Whether pandera's model would accept `df` (extra columns are allowed)."""
        schema = df.schema
        for name, column in self.columns.items():
            if schema.get(name) != column.dtype:
                return False
        broken: list[pl.Expr] = []
        for name, column in self.columns.items():
            col = pl.col(name)
            if not column.nullable:
                missing = col.is_null()
                if column.dtype.is_float():
                    missing = missing | col.is_nan()
                broken.append(missing.any())
            if column.unique:
                broken.append(col.n_unique() < col.len())
            # Like pandera (ignore_na): a null check result passes.
            broken.extend(_builtin(name, *c).not_().fill_null(False).any() for c in column.checks)
        broken.extend(check.expr().not_().fill_null(False).any() for check in self.frame_checks)
        if not broken or df.height == 0:
            return True
        return not df.select(pl.any_horizontal(broken)).item()


# ------------------------------------------------------------------ frame-level rules


def updated_not_before_created() -> pl.Expr:
    return pl.col("updated_at") >= pl.col("created_at")


def total_is_exact() -> pl.Expr:
    expected = pl.col("order_amount") + pl.col("delivery_fee") - pl.col("discount_amount")
    return pl.col("total_value") == expected


def order_date_from_created() -> pl.Expr:
    return pl.col("order_date") == pl.col("created_at").dt.date()


def cancellation_type_only_when_cancelled() -> pl.Expr:
    cancelled = pl.col("status") == "cancelled"
    return cancelled == pl.col("cancellation_type").is_not_null()


def start_not_after_end() -> pl.Expr:
    return pl.col("session_start") <= pl.col("session_end")


def duration_is_end_minus_start() -> pl.Expr:
    span = (pl.col("session_end") - pl.col("session_start")).dt.total_microseconds() / 1e6
    return (pl.col("duration_seconds") - span).abs() < 1e-6


def date_of_start() -> pl.Expr:
    return pl.col("session_date") == pl.col("session_start").dt.date()


def purchase_means_converted() -> pl.Expr:
    purchase = (pl.col("first_event_type") == "purchase") | (
        pl.col("last_event_type") == "purchase"
    )
    return ~purchase | pl.col("converted")


# ------------------------------------------------------------------------ contracts

_VALIDATED_COLUMNS = {
    "order_id": Column(pl.Int64(), unique=True, checks=(("greater_than", 0),)),
    "customer_id": Column(pl.Int64(), checks=(("greater_than", 0),)),
    "store_id": Column(pl.Int64(), nullable=True),
    "restaurant_id": Column(pl.Int64(), nullable=True),
    "order_amount": Column(
        MONEY,
        checks=(("greater_than_or_equal_to", 0), ("less_than_or_equal_to", MAX_ORDER_AMOUNT)),
    ),
    "delivery_fee": Column(MONEY, checks=(("greater_than_or_equal_to", 0),)),
    "discount_amount": Column(MONEY, checks=(("greater_than_or_equal_to", 0),)),
    "status": Column(pl.String(), checks=(("isin", tuple(VALID_STATUSES)),)),
    "payment_method": Column(
        pl.String(), checks=(("isin", (*PAYMENT_METHODS, UNKNOWN_PAYMENT_METHOD)),)
    ),
    "payment_status": Column(pl.String(), nullable=True),
    "created_at": Column(UTC_TS),
    "updated_at": Column(UTC_TS),
    "delivered_at": Column(UTC_TS, nullable=True),
    "cancelled_at": Column(UTC_TS, nullable=True),
    "cancellation_reason": Column(pl.String(), nullable=True),
    "promo_code": Column(pl.String(), nullable=True),
    "notes": Column(pl.String(), nullable=True),
}
_UPDATED_NOT_BEFORE_CREATED = FrameCheck(
    "updated_not_before_created", "updated_at is before created_at", updated_not_before_created
)

VALIDATED_ORDERS = Contract(
    model="ValidatedOrders",
    columns=_VALIDATED_COLUMNS,
    frame_checks=(_UPDATED_NOT_BEFORE_CREATED,),
)

SILVER_ORDERS = Contract(
    model="SilverOrders",
    columns={
        **_VALIDATED_COLUMNS,
        "total_value": Column(MONEY),
        "order_tier": Column(pl.String(), checks=(("isin", ("premium", "standard", "economy")),)),
        "order_date": Column(pl.Date()),
        "order_hour": Column(
            pl.Int32(), checks=(("greater_than_or_equal_to", 0), ("less_than_or_equal_to", 23))
        ),
        "order_month": Column(pl.String(), checks=(("str_matches", r"^\d{4}-\d{2}$"),)),
        "delivery_minutes": Column(pl.Float64(), nullable=True),
        "cancellation_type": Column(
            pl.String(), nullable=True, checks=(("isin", ("system", "customer")),)
        ),
        "has_promo": Column(pl.Boolean()),
        "ingested_at": Column(UTC_TS),
    },
    frame_checks=(
        FrameCheck(
            "total_is_exact",
            "total_value != order_amount + delivery_fee - discount_amount",
            total_is_exact,
        ),
        FrameCheck(
            "order_date_from_created",
            "order_date is not the UTC date of created_at",
            order_date_from_created,
        ),
        FrameCheck(
            "cancellation_type_only_when_cancelled",
            "cancellation_type set exactly for cancelled orders",
            cancellation_type_only_when_cancelled,
        ),
        _UPDATED_NOT_BEFORE_CREATED,
    ),
)

SESSIONS = Contract(
    model="Sessions",
    columns={
        "session_id": Column(pl.String(), unique=True),
        "user_id": Column(pl.String()),
        "session_start": Column(UTC_TS),
        "session_end": Column(UTC_TS),
        "session_date": Column(pl.Date()),
        "duration_seconds": Column(pl.Float64(), checks=(("greater_than_or_equal_to", 0),)),
        "event_count": Column(pl.Int64(), checks=(("greater_than_or_equal_to", 1),)),
        "first_event_type": Column(pl.String()),
        "last_event_type": Column(pl.String()),
        "converted": Column(pl.Boolean()),
    },
    frame_checks=(
        FrameCheck(
            "start_not_after_end", "session_start is after session_end", start_not_after_end
        ),
        FrameCheck(
            "duration_is_end_minus_start",
            "duration_seconds != session_end - session_start",
            duration_is_end_minus_start,
        ),
        FrameCheck(
            "date_of_start", "session_date is not the UTC date of session_start", date_of_start
        ),
        FrameCheck(
            "purchase_means_converted",
            "a session whose first or last event is a purchase must be converted",
            purchase_means_converted,
        ),
    ),
)

CONTRACTS: dict[str, Contract] = {c.model: c for c in (VALIDATED_ORDERS, SILVER_ORDERS, SESSIONS)}
