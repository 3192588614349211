"""Unit tests of enrich_orders (SPEC §4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from orders_platform.transforms.enrich import enrich_orders
from orders_platform.transforms.orders import validate_orders
from orders_platform.transforms.schema import (
    RAW_ORDERS_SCHEMA,
    SILVER_ORDERS_SCHEMA,
    VALIDATED_ORDERS_SCHEMA,
)

INGESTED = datetime(2026, 3, 18, 1, 0, tzinfo=UTC)
CREATED = datetime(2026, 3, 17, 10, 0, tzinfo=UTC)

VALID: dict[str, Any] = {
    "order_id": 1,
    "customer_id": 42,
    "store_id": 7,
    "restaurant_id": 9,
    "order_amount": Decimal("450.00"),
    "delivery_fee": Decimal("40.00"),
    "discount_amount": Decimal("0.00"),
    "status": "delivered",
    "payment_method": "upi",
    "payment_status": "paid",
    "created_at": CREATED,
    "updated_at": CREATED + timedelta(minutes=50),
    "delivered_at": CREATED + timedelta(minutes=45),
    "cancelled_at": None,
    "cancellation_reason": None,
    "promo_code": None,
    "notes": None,
    "_source": "demo",
    "_extracted_at": datetime(2026, 3, 18, 0, 5, tzinfo=UTC),
    "_run_id": "run-1",
}


def validated(*overrides: dict[str, Any]) -> pl.DataFrame:
    rows = [{**VALID, "order_id": i + 1, **o} for i, o in enumerate(overrides)]
    return pl.DataFrame(rows, schema=VALIDATED_ORDERS_SCHEMA)


def enrich_one(**overrides: Any) -> dict[str, Any]:
    return enrich_orders(validated(overrides), INGESTED).row(0, named=True)


def test_output_schema_is_exact_and_drops_extracted_at() -> None:
    silver = enrich_orders(validated({}, {}), INGESTED)
    assert dict(silver.schema) == SILVER_ORDERS_SCHEMA
    assert "_extracted_at" not in silver.columns
    assert silver.height == 2
    empty = enrich_orders(validated().clear(), INGESTED)
    assert dict(empty.schema) == SILVER_ORDERS_SCHEMA and empty.height == 0


def test_accepts_a_lazy_frame() -> None:
    assert enrich_orders(validated({}).lazy(), INGESTED)["order_tier"].to_list() == ["economy"]


@pytest.mark.parametrize(
    ("amount", "fee", "discount", "total"),
    [
        ("0.10", "0.20", "0.30", "0.00"),
        ("1234.56", "40.00", "100.01", "1174.55"),
        ("0.00", "0.00", "0.00", "0.00"),
        ("499999.99", "0.01", "0.00", "500000.00"),
        ("10.00", "0.00", "25.00", "-15.00"),
    ],
)
def test_total_value_is_exact_to_the_cent(amount: str, fee: str, discount: str, total: str) -> None:
    row = enrich_one(
        order_amount=Decimal(amount), delivery_fee=Decimal(fee), discount_amount=Decimal(discount)
    )
    assert row["total_value"] == Decimal(total)
    assert str(row["total_value"]) == total


@pytest.mark.parametrize(
    ("amount", "tier"),
    [
        ("0.00", "economy"),
        ("499.99", "economy"),
        ("500.00", "standard"),
        ("1999.99", "standard"),
        ("2000.00", "premium"),
        ("500000.00", "premium"),
    ],
)
def test_order_tier_edges(amount: str, tier: str) -> None:
    assert enrich_one(order_amount=Decimal(amount))["order_tier"] == tier


def test_order_date_hour_month_come_from_created_at_in_utc() -> None:
    # 2026-04-01T03:15:00+05:30 is 2026-03-31 21:45 UTC: previous day, hour and month.
    raw = pl.DataFrame(
        [
            {
                **dict.fromkeys(RAW_ORDERS_SCHEMA),
                "order_id": "1",
                "customer_id": "2",
                "order_amount": "100",
                "status": "placed",
                "created_at": "2026-04-01T03:15:00+05:30",
                "updated_at": "2026-04-01T03:20:00+05:30",
            }
        ],
        schema=RAW_ORDERS_SCHEMA,
    )
    row = enrich_orders(validate_orders(raw).valid, INGESTED).row(0, named=True)
    assert row["created_at"] == datetime(2026, 3, 31, 21, 45, tzinfo=UTC)
    assert (row["order_date"], row["order_hour"], row["order_month"]) == (
        date(2026, 3, 31),
        21,
        "2026-03",
    )


@pytest.mark.parametrize(
    ("delivered_after", "minutes"),
    [
        (timedelta(minutes=45), 45.0),
        (timedelta(minutes=47, seconds=24), 47.4),
        (timedelta(minutes=10, seconds=3), 10.1),  # 10.05 rounds half up
        (timedelta(minutes=10, seconds=2, microseconds=999_999), 10.0),
        (timedelta(seconds=1), 0.0),
        (timedelta(hours=3, minutes=20, seconds=33), 200.6),
        (-timedelta(minutes=2, seconds=3), -2.1),  # delivered before created: kept, signed
    ],
)
def test_delivery_minutes_rounded_to_one_decimal(
    delivered_after: timedelta, minutes: float
) -> None:
    assert enrich_one(delivered_at=CREATED + delivered_after)["delivery_minutes"] == minutes


def test_delivery_minutes_null_when_not_delivered() -> None:
    assert enrich_one(status="preparing", delivered_at=None)["delivery_minutes"] is None


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("cancelled", "payment_failed", "system"),
        ("cancelled", "Restaurant_Closed", "system"),
        ("cancelled", " NO_RIDER_AVAILABLE ", "system"),
        ("cancelled", "changed my mind", "customer"),
        ("cancelled", None, "customer"),
        ("delivered", "payment_failed", None),
        ("placed", None, None),
    ],
)
def test_cancellation_type(status: str, reason: str | None, expected: str | None) -> None:
    row = enrich_one(status=status, cancellation_reason=reason)
    assert row["cancellation_type"] == expected


@pytest.mark.parametrize(
    ("promo", "expected"),
    [("", False), ("  ", False), (None, False), ("n/a", False), ("SAVE10", True), (" X ", True)],
)
def test_has_promo(promo: str | None, expected: bool) -> None:
    assert enrich_one(promo_code=promo)["has_promo"] is expected


def test_ingested_at_is_stored_in_utc() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    row = enrich_one()
    assert row["ingested_at"] == INGESTED
    converted = enrich_orders(validated({}), datetime(2026, 3, 18, 6, 30, tzinfo=ist))
    assert converted["ingested_at"].to_list() == [INGESTED]
    assert converted.schema["ingested_at"] == SILVER_ORDERS_SCHEMA["ingested_at"]


def test_naive_ingested_at_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        enrich_orders(validated({}), datetime(2026, 3, 18, 1, 0))


def test_missing_validated_columns_are_named() -> None:
    with pytest.raises(ValueError, match="order_amount"):
        enrich_orders(validated({}).drop("order_amount"), INGESTED)


def test_passthrough_columns_are_unchanged() -> None:
    row = enrich_one(promo_code="SAVE10", notes="ring bell")
    for column in SILVER_ORDERS_SCHEMA:
        if column in VALID and column != "promo_code" and column != "notes":
            assert row[column] == VALID[column] or column == "order_id", column
    assert (row["promo_code"], row["notes"], row["order_id"]) == ("SAVE10", "ring bell", 1)


def test_hour_date_and_month_on_many_dates_including_before_1970() -> None:
    created = [
        datetime(1969, 12, 31, 23, 30, tzinfo=UTC),
        datetime(1900, 3, 1, 0, 0, 1, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        *(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=7 * i) for i in range(500)),
    ]
    frame = validated(*({"created_at": c, "delivered_at": None} for c in created))
    silver = enrich_orders(frame, INGESTED)
    assert silver["order_hour"].to_list() == [c.hour for c in created]
    assert silver["order_date"].to_list() == [c.date() for c in created]
    assert silver["order_month"].to_list() == [f"{c.year:04d}-{c.month:02d}" for c in created]


def test_text_rules_on_many_distinct_values() -> None:
    promos = [None, "", " ", "n/a", "NONE", *(f" code{i} " for i in range(300))]
    reasons = [None, " Payment_Failed ", "no_rider_available", *(f"r{i}" for i in range(300))]
    rows = [
        {"status": "cancelled", "promo_code": promos[i % len(promos)], "cancellation_reason": r}
        for i, r in enumerate(reasons * 20)
    ]
    silver = enrich_orders(validated(*rows), INGESTED)
    expected_promo = [
        promos[i % len(promos)] not in (None, "", " ", "n/a", "NONE") for i in range(len(rows))
    ]
    assert silver["has_promo"].to_list() == expected_promo
    system = {" Payment_Failed ", "no_rider_available"}
    assert silver["cancellation_type"].to_list() == [
        "system" if row["cancellation_reason"] in system else "customer" for row in rows
    ]
