"""Unit tests of validate_orders (SPEC §3) and its agreement with the Python reference."""

from __future__ import annotations

import importlib.util
import random
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from orders_platform.transforms.orders import ValidationResult, validate_orders
from orders_platform.transforms.schema import (
    ALL_REJECT_REASONS,
    ORDER_SOURCE_COLUMNS,
    RAW_ORDERS_SCHEMA,
    REJECTED_ORDERS_SCHEMA,
    VALIDATED_ORDERS_SCHEMA,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

GOOD: dict[str, str | None] = {
    "order_id": "1001",
    "customer_id": "42",
    "store_id": "7",
    "restaurant_id": "9",
    "order_amount": "450.00",
    "delivery_fee": "40.00",
    "discount_amount": "0.00",
    "status": "delivered",
    "payment_method": "upi",
    "payment_status": "paid",
    "created_at": "2026-03-17T10:00:00Z",
    "updated_at": "2026-03-17T10:45:00Z",
    "delivered_at": "2026-03-17T10:40:00Z",
    "cancelled_at": None,
    "cancellation_reason": None,
    "promo_code": None,
    "notes": None,
}


def raw_orders(*overrides: dict[str, Any], lineage: bool = False) -> pl.DataFrame:
    """Raw rows: GOOD with the given overrides; order_id defaults to 1001, 1002, ..."""
    rows = [{**GOOD, "order_id": str(1001 + i), **o} for i, o in enumerate(overrides)]
    schema = dict(RAW_ORDERS_SCHEMA)
    if lineage:
        schema |= {"_source": pl.String(), "_extracted_at": pl.String(), "_run_id": pl.String()}
        rows = [
            {"_source": "demo", "_extracted_at": "2026-03-18T00:05:00Z", "_run_id": "run-1", **r}
            for r in rows
        ]
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def rejected_as(overrides: dict[str, Any]) -> tuple[str, str]:
    result = validate_orders(raw_orders(overrides))
    assert result.valid.height == 0, result.valid
    assert result.rejected.height == 1
    return result.rejected["reason"][0], result.rejected["detail"][0]


def only_valid(overrides: dict[str, Any]) -> dict[str, Any]:
    result = validate_orders(raw_orders(overrides))
    assert result.rejected.height == 0, result.rejected.select("reason", "detail").to_dicts()
    assert result.valid.height == 1
    return result.valid.row(0, named=True)


# ------------------------------------------------------------------- one per reason


@pytest.mark.parametrize(
    ("overrides", "reason", "detail"),
    [
        ({"order_id": None}, "missing_order_id", "order_id=null is missing"),
        ({"order_id": ""}, "missing_order_id", "order_id='' is missing"),
        ({"order_id": "N/A"}, "missing_order_id", "order_id='N/A' is missing"),
        ({"order_id": "0"}, "missing_order_id", "order_id='0' is not a positive integer"),
        ({"order_id": "-12"}, "missing_order_id", "order_id='-12' is not a positive integer"),
        ({"order_id": "12.5"}, "missing_order_id", "order_id='12.5' is not a positive integer"),
        ({"order_id": "abc"}, "missing_order_id", "order_id='abc' is not a positive integer"),
        ({"customer_id": None}, "missing_customer_id", "customer_id=null is missing"),
        (
            {"customer_id": "cust-9"},
            "missing_customer_id",
            "customer_id='cust-9' is not a positive integer",
        ),
        ({"order_amount": None}, "null_order_amount", "order_amount=null is missing"),
        ({"order_amount": " NULL "}, "null_order_amount", "order_amount=' NULL ' is missing"),
        (
            {"order_amount": "abc"},
            "non_numeric_order_amount",
            "order_amount='abc' is not a number",
        ),
        (
            {"order_amount": "1e3"},
            "non_numeric_order_amount",
            "order_amount='1e3' is not a number",
        ),
        ({"order_amount": "-5.00"}, "negative_order_amount", "order_amount='-5.00' is negative"),
        (
            {"order_amount": "₹-0.01"},
            "negative_order_amount",
            "order_amount='₹-0.01' is negative",
        ),
        (
            {"order_amount": "500000.01"},
            "suspiciously_large_amount",
            "order_amount='500000.01' exceeds 500000",
        ),
        (
            {"status": " TEST_placed "},
            "test_order",
            "status=' TEST_placed ' marks a test order",
        ),
        (
            {"notes": "Load TEST traffic"},
            "test_order",
            "notes='Load TEST traffic' mark a test order",
        ),
        ({"notes": "test"}, "test_order", "notes='test' mark a test order"),
        (
            {"status": " shipped "},
            "invalid_status",
            "status=' shipped ' is not a valid status",
        ),
        ({"status": None}, "invalid_status", "status=null is not a valid status"),
        ({"created_at": None}, "missing_timestamp", "created_at=null is missing"),
        ({"updated_at": "n/a"}, "missing_timestamp", "updated_at='n/a' is missing"),
        (
            {"created_at": "yesterday"},
            "unparseable_timestamp",
            "created_at='yesterday' is not a valid timestamp",
        ),
        (
            {"delivered_at": "2026-02-30T10:00:00Z"},
            "unparseable_timestamp",
            "delivered_at='2026-02-30T10:00:00Z' is not a valid timestamp",
        ),
        (
            {"cancelled_at": "soon"},
            "unparseable_timestamp",
            "cancelled_at='soon' is not a valid timestamp",
        ),
        (
            {"updated_at": "2026-03-17T09:59:59Z"},
            "updated_before_created",
            "updated_at='2026-03-17T09:59:59Z' is before created_at='2026-03-17T10:00:00Z'",
        ),
        (
            {"delivery_fee": "free"},
            "invalid_fee_or_discount",
            "delivery_fee='free' is not a number",
        ),
        (
            {"discount_amount": "-10"},
            "invalid_fee_or_discount",
            "discount_amount='-10' is negative",
        ),
        (
            {"delivery_fee": "600000"},
            "invalid_fee_or_discount",
            "delivery_fee='600000' exceeds 500000",
        ),
    ],
)
def test_each_reason_code_with_detail(overrides: dict, reason: str, detail: str) -> None:
    assert rejected_as(overrides) == (reason, detail)


def test_every_reason_code_is_exercised_by_the_table_above() -> None:
    [table] = [m for m in test_each_reason_code_with_detail.pytestmark if m.name == "parametrize"]
    exercised = {case.values[1] if hasattr(case, "values") else case[1] for case in table.args[1]}
    assert exercised == set(ALL_REJECT_REASONS)
    # SPEC §3's order (the first matching reason wins), then the one reason beyond it.
    assert ALL_REJECT_REASONS == (
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
        "invalid_fee_or_discount",
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        # test_order comes before unparseable_timestamp
        ({"status": "test_delivered", "created_at": "garbage"}, "test_order"),
        # missing_order_id beats everything
        ({"order_id": "x", "customer_id": None, "order_amount": "abc"}, "missing_order_id"),
        ({"customer_id": "0", "order_amount": None}, "missing_customer_id"),
        ({"order_amount": None, "status": "shipped"}, "null_order_amount"),
        ({"order_amount": "-1", "notes": "test"}, "negative_order_amount"),
        ({"status": "shipped", "created_at": None}, "invalid_status"),
        ({"created_at": None, "delivered_at": "garbage"}, "missing_timestamp"),
        (
            {"updated_at": "2026-03-17T09:00:00Z", "delivered_at": "garbage"},
            "unparseable_timestamp",
        ),
        (
            {"updated_at": "2026-03-17T09:00:00Z", "delivery_fee": "free"},
            "updated_before_created",
        ),
    ],
)
def test_first_matching_reason_wins(overrides: dict, reason: str) -> None:
    assert rejected_as(overrides)[0] == reason


@pytest.mark.parametrize("notes", ["contest winner", "testing please", "test_run", "latest"])
def test_test_must_be_a_whole_word(notes: str) -> None:
    assert only_valid({"notes": notes})["notes"] == notes


def test_detail_cuts_very_long_values() -> None:
    notes = "x" * 100 + " test"
    _, detail = rejected_as({"notes": notes})
    assert detail == "notes='" + "x" * 80 + "...' mark a test order"


# --------------------------------------------------------------------- messy formats


def test_messy_ids_are_parsed() -> None:
    row = only_valid(
        {"order_id": " 00123 ", "customer_id": "42.0", "store_id": " 007 ", "restaurant_id": "?"}
    )
    assert (row["order_id"], row["customer_id"], row["store_id"], row["restaurant_id"]) == (
        123,
        42,
        7,
        None,
    )


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1,234.50", "1234.50"),
        ("₹3,80.00", "380.00"),
        ("Rs. 1,200", "1200.00"),
        ("  99.9 ", "99.90"),
        ("1.005", "1.01"),
        ("0", "0.00"),  # zero is valid (free promo order)
        ("0.00", "0.00"),
        ("500000", "500000.00"),  # the limit itself is valid
    ],
)
def test_messy_amounts_are_exact_decimals(amount: str, expected: str) -> None:
    assert only_valid({"order_amount": amount})["order_amount"] == Decimal(expected)


def test_status_and_payment_fields_are_normalised() -> None:
    row = only_valid(
        {"status": " DELIVERED ", "payment_method": " Card ", "payment_status": " PAID "}
    )
    assert (row["status"], row["payment_method"], row["payment_status"]) == (
        "delivered",
        "card",
        "paid",
    )


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2026-03-17T15:30:00+05:30", datetime(2026, 3, 17, 10, 0, tzinfo=UTC)),
        ("2026-03-17T10:00:00Z", datetime(2026, 3, 17, 10, 0, tzinfo=UTC)),
        ("2026-03-17 10:00:00", datetime(2026, 3, 17, 10, 0, tzinfo=UTC)),
        ("2026-03-17 10:00:00.25+00", datetime(2026, 3, 17, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-03-17", datetime(2026, 3, 17, tzinfo=UTC)),
    ],
)
def test_timestamps_are_converted_to_utc(created: str, expected: datetime) -> None:
    assert only_valid({"created_at": created})["created_at"] == expected


@pytest.mark.parametrize("spelling", ["", "NULL", "N/A", "n/a", "-", "  ", "None"])
def test_every_null_spelling_is_null(spelling: str) -> None:
    row = only_valid(
        {
            "delivered_at": spelling,
            "cancelled_at": spelling,
            "delivery_fee": spelling,
            "discount_amount": spelling,
            "payment_status": spelling,
            "promo_code": spelling,
            "notes": spelling,
            "cancellation_reason": spelling,
            "store_id": spelling,
        }
    )
    assert row["delivered_at"] is None
    assert row["cancelled_at"] is None
    assert row["delivery_fee"] == Decimal("0.00")  # fee and discount default to 0
    assert row["discount_amount"] == Decimal("0.00")
    assert row["payment_status"] is None
    assert row["promo_code"] is None
    assert row["notes"] is None
    assert row["cancellation_reason"] is None
    assert row["store_id"] is None


@pytest.mark.parametrize("spelling", ["", "NULL", "N/A", "n/a", "-"])
def test_null_spelled_required_fields_are_missing(spelling: str) -> None:
    assert rejected_as({"order_id": spelling})[0] == "missing_order_id"
    assert rejected_as({"order_amount": spelling})[0] == "null_order_amount"
    assert rejected_as({"updated_at": spelling})[0] == "missing_timestamp"


def test_text_fields_are_trimmed() -> None:
    row = only_valid(
        {"promo_code": "  SAVE10 ", "notes": " ring bell ", "cancellation_reason": " Other "}
    )
    assert (row["promo_code"], row["notes"], row["cancellation_reason"]) == (
        "SAVE10",
        "ring bell",
        "Other",
    )


def test_unknown_payment_methods_are_mapped_and_counted() -> None:
    result = validate_orders(
        raw_orders(
            {"payment_method": " UPI "},
            {"payment_method": "paypal"},
            {"payment_method": None},
            {"payment_method": "N/A"},
            {"payment_method": "crypto", "order_amount": "abc"},  # rejected: not counted
        )
    )
    assert result.valid["payment_method"].to_list() == ["upi", "unknown", "unknown", "unknown"]
    assert result.unknown_payment_methods == 3


# ------------------------------------------------------------------------ duplicates


def test_latest_updated_at_wins_and_duplicates_are_counted() -> None:
    result = validate_orders(
        raw_orders(
            {"order_id": "7", "status": "placed", "updated_at": "2026-03-17T10:05:00Z"},
            {"order_id": "7", "status": "delivered", "updated_at": "2026-03-17T10:50:00Z"},
            {"order_id": "7", "status": "preparing", "updated_at": "2026-03-17T10:20:00Z"},
            {"order_id": " 007", "status": "shipped"},  # rejected: never a duplicate
            {"order_id": "5"},
        )
    )
    assert result.valid["order_id"].to_list() == [5, 7]  # sorted by order_id
    assert result.valid.filter(pl.col("order_id") == 7)["status"].to_list() == ["delivered"]
    assert result.duplicates_collapsed == 2
    assert result.rejected.height == 1
    assert result.valid.height + result.rejected.height + result.duplicates_collapsed == 5


def test_equal_updated_at_keeps_the_later_input_row() -> None:
    same = "2026-03-17T10:50:00Z"
    result = validate_orders(
        raw_orders(
            {"order_id": "9", "payment_status": "pending", "updated_at": same},
            {"order_id": "9", "payment_status": "paid", "updated_at": "2026-03-17T16:20:00+05:30"},
        )
    )
    assert result.valid["payment_status"].to_list() == ["paid"]
    assert result.duplicates_collapsed == 1


# -------------------------------------------------------------- lineage and schemas


def test_lineage_is_passed_through_to_valid_and_rejected_rows() -> None:
    result = validate_orders(raw_orders({}, {"order_amount": "abc"}, lineage=True))
    extracted = datetime(2026, 3, 18, 0, 5, tzinfo=UTC)
    for frame in (result.valid, result.rejected):
        assert frame.select("_source", "_extracted_at", "_run_id").rows() == [
            ("demo", extracted, "run-1")
        ]


def test_lineage_accepts_datetime_extracted_at_and_absent_columns() -> None:
    raw = raw_orders({}).with_columns(
        pl.lit(datetime(2026, 3, 18, 5, 35))
        .dt.replace_time_zone("Asia/Kolkata")
        .alias("_extracted_at")
    )
    assert validate_orders(raw).valid["_extracted_at"].to_list() == [
        datetime(2026, 3, 18, 0, 5, tzinfo=UTC)
    ]
    bare = validate_orders(raw_orders({})).valid
    assert bare.select("_source", "_extracted_at", "_run_id").rows() == [(None, None, None)]


def test_rejected_rows_keep_raw_values_exactly() -> None:
    messy = {"order_id": " 0042 ", "status": " Shipped ", "order_amount": "₹1,00.50 "}
    result = validate_orders(raw_orders(messy))
    row = result.rejected.row(0, named=True)
    assert {k: row[k] for k in messy} == messy
    assert row["created_at"] == GOOD["created_at"]
    assert row["reason"] == "invalid_status"


def test_output_schemas_are_exact() -> None:
    result = validate_orders(raw_orders({}, {"order_amount": "abc"}, lineage=True))
    assert dict(result.valid.schema) == VALIDATED_ORDERS_SCHEMA
    assert dict(result.rejected.schema) == REJECTED_ORDERS_SCHEMA
    empty = validate_orders(pl.DataFrame(schema=RAW_ORDERS_SCHEMA))
    assert dict(empty.valid.schema) == VALIDATED_ORDERS_SCHEMA
    assert dict(empty.rejected.schema) == REJECTED_ORDERS_SCHEMA
    assert (empty.valid.height, empty.rejected.height, empty.duplicates_collapsed) == (0, 0, 0)
    assert empty.rejected_by_reason == {}


def test_typed_source_values_are_cast_to_strings_first() -> None:
    raw = pl.DataFrame(
        {
            **{c: [GOOD[c]] for c in ORDER_SOURCE_COLUMNS},
            "order_id": [77],
            "customer_id": [5],
            "order_amount": [Decimal("12.50")],
            "created_at": [datetime(2026, 3, 17, 10, 0, tzinfo=UTC)],
        }
    )
    row = validate_orders(raw.lazy()).valid.row(0, named=True)
    assert (row["order_id"], row["customer_id"], row["order_amount"]) == (77, 5, Decimal("12.50"))
    assert row["created_at"] == datetime(2026, 3, 17, 10, 0, tzinfo=UTC)


def test_missing_source_columns_are_named() -> None:
    with pytest.raises(ValueError, match="order_amount, notes"):
        validate_orders(raw_orders({}).drop("order_amount", "notes"))


def test_rejected_by_reason_counts_in_reason_order() -> None:
    result = validate_orders(
        raw_orders(
            {"status": "x"},
            {"order_id": None},
            {"status": "y"},
            {"discount_amount": "-1"},
            {},
        )
    )
    assert result.rejected_by_reason == {
        "missing_order_id": 1,
        "invalid_status": 2,
        "invalid_fee_or_discount": 1,
    }
    assert list(result.rejected_by_reason) == [
        r for r in ALL_REJECT_REASONS if r in result.rejected_by_reason
    ]
    assert isinstance(result, ValidationResult)


# ------------------------------------------------------- agreement with the reference


def _load_reference() -> ModuleType:
    path = REPO_ROOT / "benchmarks" / "reference_orders.py"
    spec = importlib.util.spec_from_file_location("reference_orders", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reference_orders", module)
    spec.loader.exec_module(module)
    return module


VARIANTS: dict[str, tuple[list[str | None], list[str | None]]] = {
    # column: (mostly valid values, messy or invalid values)
    "order_id": (["1", "2", "3", " 0004 ", "5.0", "6", "+7"], ["0", "-1", "x", "", None, "N/A"]),
    "customer_id": (["42", " 042 ", "9.00"], ["0", "c-1", None, "9223372036854775808"]),
    "store_id": (["7", " 8 ", None, "-3"], ["x", "4.5", "NULL"]),
    "restaurant_id": (["9", "10.0"], ["r9", ""]),
    "order_amount": (
        ["450.00", "1,234.50", "₹3,80.00", "Rs. 1,200", "0", "499.99", "500", "1999.99", "2000"],
        ["abc", "1e3", "", None, "-5", "-0.001", "500000.01", "500000", "1.005", "2.125", "-0"],
    ),
    "delivery_fee": (["40.00", None, "0", "₹25"], ["n/a", "free", "-1", "600000", "12.345"]),
    "discount_amount": (["0.00", None, "100.01"], ["-", "x", "-0.5", "1,000.005"]),
    "status": (
        ["delivered", " DELIVERED ", "Cancelled", "placed", "picked_up", "cancelled"],
        ["TEST_placed", "shipped", None, "N/A", "delivered!"],
    ),
    "payment_method": (["upi", " UPI ", "Card", "cod"], ["paypal", None, "", "unknown"]),
    "payment_status": (["paid", " PAID ", None], ["Refunded", "n/a"]),
    "created_at": (
        [
            "2026-03-17T20:14:32+05:30",
            "2026-03-17T14:44:32Z",
            "2026-03-17 14:44:32",
            "2026-03-17 14:44:32.123456+00",
        ],
        ["2026-03-17", "2026-03-18T00:10:00+0530", None, "", "garbage", "2026-02-30"],
    ),
    "updated_at": (
        ["2026-03-17T21:00:00+05:30", "2026-03-17T16:00:00Z", "2026-03-17 16:00:00.5"],
        ["2026-03-17T14:44:32Z", "2026-03-17T10:00:00-05", None, "NULL", "2026-03-17T16:00"],
    ),
    "delivered_at": (
        [None, "n/a", "2026-03-17T15:31:02Z", "2026-03-17 15:31:02.999999+00"],
        ["2026-03-17T20:45:00.05+05:30", "2026-03-17T14:00:00Z", "later", "2026-03-17T25:00"],
    ),
    "cancelled_at": ([None, "", "2026-03-17T15:00:00Z"], ["-", "x"]),
    "cancellation_reason": (
        [None, "payment_failed", " Restaurant_Closed ", "changed mind"],
        ["NONE", "-", "NO_RIDER_AVAILABLE"],
    ),
    "promo_code": ([None, "", "SAVE10", "  "], ["n/a", " FEST50 "]),
    "notes": (
        [None, "leave at door", "contest winner", "testing"],
        ["load test", "Test", "x" * 90 + " test", "test_run", "N/A"],
    ),
}


def messy_rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    used: list[int] = []
    for i in range(n):
        row: dict[str, Any] = {
            c: rng.choice(messy if rng.random() < 0.08 else good)
            for c, (good, messy) in VARIANTS.items()
        }
        if row["order_id"] in VARIANTS["order_id"][0]:  # a valid id: mostly a new order
            order_id = rng.choice(used) if used and rng.random() < 0.2 else 1000 + i
            used.append(order_id)
            row["order_id"] = rng.choice(["{}", " 000{} ", "{}.0", "+{}"]).format(order_id)
        row["_source"] = "test"
        row["_extracted_at"] = rng.choice(["2026-03-18T00:05:00Z", None, "2026-03-18"])
        row["_run_id"] = f"run-{i % 3}"
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_polars_and_reference_agree_on_messy_rows(seed: int) -> None:
    reference = _load_reference()
    rows = messy_rows(400, seed)
    schema = RAW_ORDERS_SCHEMA | {c: pl.String() for c in ("_source", "_extracted_at", "_run_id")}
    raw = pl.DataFrame(rows, schema=schema)
    ingested_at = datetime(2026, 3, 18, 1, 0, tzinfo=UTC)

    silver, rejected = reference.assert_agreement(raw, ingested_at)

    # The data really exercises the rules: duplicates, most reasons and valid rows.
    result = validate_orders(raw)
    assert silver == result.valid.height and silver > 100
    assert rejected == result.rejected.height
    assert result.duplicates_collapsed > 0
    assert len(result.rejected_by_reason) >= 9
    assert raw.height == silver + rejected + result.duplicates_collapsed


# Frames of a few hundred rows are parsed entirely by dictionary (every distinct value is in
# the sample); these frames are large and varied enough for every tier of
# `parsing.parse_columns`: lookups, the fast tiers (generic and specialised) and the exact
# parsers on the rows left over.


def test_polars_and_reference_agree_on_a_demo_day() -> None:
    from orders_platform.sources.demo import generate_orders

    reference = _load_reference()
    raw = generate_orders(datetime(2026, 3, 17).date(), 12_000)
    silver, rejected = reference.assert_agreement(raw, datetime(2026, 3, 18, 1, tzinfo=UTC))
    assert silver > 11_000 and rejected > 200


def _high_cardinality_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Messy rows whose ids, amounts and timestamps are mostly distinct."""
    rng = random.Random(seed)
    zones = ["Z", "", "+05:30", "-0800", "+01", ".123Z", ".000000+00:00", "z", " ", "+24:00"]
    rows = messy_rows(n, seed)
    for row in rows:
        base = datetime(2026, 3, 17, tzinfo=UTC).timestamp() + rng.randint(-(10**7), 10**7)
        for column in ("created_at", "updated_at", "delivered_at"):
            if rng.random() < 0.8:
                moment = datetime.fromtimestamp(base + rng.randint(0, 5000), UTC)
                text = moment.strftime(rng.choice(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]))
                fraction = rng.choice(["", "", f".{rng.randint(0, 999999):06d}"])
                row[column] = text + fraction + rng.choice(zones)
        if rng.random() < 0.8:
            cents = rng.randint(-1000, 10**8)
            amount = f"{cents // 100}.{cents % 100:02d}"
            row["order_amount"] = rng.choice([amount, f"₹{amount}", f"{cents / 100:,.2f}"])
        if rng.random() < 0.8:
            row["customer_id"] = rng.choice(["{}", " {} ", "0{}", "+{}"]).format(
                rng.randint(1, 10**9)
            )
    return rows


def test_polars_and_reference_agree_on_high_cardinality_rows() -> None:
    reference = _load_reference()
    schema = RAW_ORDERS_SCHEMA | {c: pl.String() for c in ("_source", "_extracted_at", "_run_id")}
    raw = pl.DataFrame(_high_cardinality_rows(9_000, 4), schema=schema)
    silver, rejected = reference.assert_agreement(raw, datetime(2026, 3, 18, 1, tzinfo=UTC))
    assert silver > 1_000 and rejected > 1_000
