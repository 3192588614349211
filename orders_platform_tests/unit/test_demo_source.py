"""The deterministic demo source of raw orders (orders_platform.sources.demo)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from orders_platform.sources.base import RawSource
from orders_platform.sources.demo import (
    BAD_ROW_SHARES,
    INTENDED_REASON_COLUMN,
    ORDER_ID_DAY_FACTOR,
    DemoSource,
    expected_row_count,
    generate_orders,
    order_created_day,
    order_facts,
    order_id_for,
)
from orders_platform.transforms.schema import (
    ORDER_SOURCE_COLUMNS,
    REJECT_REASONS,
    SYSTEM_CANCELLATION_REASONS,
    VALID_STATUSES,
)

DAY = date(2026, 3, 17)
N = 20_000
DAY_INDEX = (DAY - date(2000, 1, 1)).days
SPEC_NULL_SPELLINGS = ("", "NULL", "N/A", "n/a", "-")
OPTIONAL_COLUMNS = (
    "delivered_at",
    "cancelled_at",
    "cancellation_reason",
    "promo_code",
    "notes",
    "delivery_fee",
    "discount_amount",
)
NULLISH = ("", "null", "n/a", "-", "none")


# --------------------------------------------------------------------------- helpers


def utc(column: str) -> pl.Expr:
    """Parse the demo's timestamp renderings (test-side, independent of transforms)."""
    text = pl.col(column).str.strip_chars()
    text = (
        pl.when(text.str.ends_with("Z"))
        .then(text.str.strip_suffix("Z") + "+00:00")
        .when(text.str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"))
        .then(text + "+00:00")
        .otherwise(text)
        .str.replace(" ", "T", literal=True)
    )
    return text.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", time_zone="UTC", strict=False
    )


def integer(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().cast(pl.Int64, strict=False)


def money(column: str) -> pl.Expr:
    """Numeric value of a good money string (commas and ₹ are noise); null spellings -> 0."""
    text = pl.col(column).str.strip_chars()
    value = text.str.replace_all("[,₹]", "").cast(pl.Float64, strict=False)
    return (
        pl.when(text.is_null() | text.str.to_lowercase().is_in(NULLISH)).then(0.0).otherwise(value)
    )


def good(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col(INTENDED_REASON_COLUMN).is_null())


def typed(frame: pl.DataFrame) -> pl.DataFrame:
    """Good rows with parsed helper columns (prefixed with `t_`)."""
    return good(frame).with_columns(
        integer("order_id").alias("t_order_id"),
        integer("customer_id").alias("t_customer_id"),
        utc("created_at").alias("t_created_at"),
        utc("updated_at").alias("t_updated_at"),
        utc("delivered_at").alias("t_delivered_at"),
        utc("cancelled_at").alias("t_cancelled_at"),
        pl.col("status").str.strip_chars().str.to_lowercase().alias("t_status"),
        money("order_amount").alias("t_amount"),
        money("delivery_fee").alias("t_fee"),
        money("discount_amount").alias("t_discount"),
    )


def day_start(day: date) -> pl.Expr:
    return pl.lit(day).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


@pytest.fixture(scope="module")
def day_frame() -> pl.DataFrame:
    return generate_orders(DAY, N, with_intended_reason=True)


@pytest.fixture(scope="module")
def good_rows(day_frame: pl.DataFrame) -> pl.DataFrame:
    return typed(day_frame)


# --------------------------------------------------------------------------- shape


def test_same_day_is_byte_identical_and_days_differ() -> None:
    first = generate_orders(DAY, 3_000)
    assert first.equals(generate_orders(DAY, 3_000))
    assert (
        first.write_ipc(None).getvalue() == generate_orders(DAY, 3_000).write_ipc(None).getvalue()
    )
    assert not first.equals(generate_orders(DAY + timedelta(days=1), 3_000))
    assert not first.equals(generate_orders(DAY, 3_000, seed=1))


def test_columns_dtypes_and_row_count(day_frame: pl.DataFrame) -> None:
    plain = generate_orders(DAY, N)
    assert plain.columns == list(ORDER_SOURCE_COLUMNS)
    assert all(dtype == pl.String for dtype in plain.dtypes)
    assert plain.height == expected_row_count(N) == N + N // 100 + N // 50
    assert N <= plain.height <= N * 1.05
    # the ground-truth column is extra, the 17 source columns are the same
    assert day_frame.columns == [*ORDER_SOURCE_COLUMNS, INTENDED_REASON_COLUMN]
    assert day_frame.drop(INTENDED_REASON_COLUMN).equals(plain)


def test_small_and_invalid_sizes() -> None:
    empty = generate_orders(DAY, 0)
    assert empty.height == 0
    assert empty.columns == list(ORDER_SOURCE_COLUMNS)
    assert all(dtype == pl.String for dtype in empty.dtypes)
    tiny = generate_orders(DAY, 7, with_intended_reason=True)
    assert 7 <= tiny.height <= 9
    with pytest.raises(ValueError):
        generate_orders(DAY, -1)
    with pytest.raises(ValueError):
        generate_orders(DAY, ORDER_ID_DAY_FACTOR)


def test_demo_source_batches_concatenate_to_the_day() -> None:
    source = DemoSource(orders_per_day=5_000, batch_rows=1_000, seed=3)
    assert isinstance(source, RawSource)
    assert source.name == "demo"
    batches = list(source.extract_orders(DAY))
    assert len(batches) == 6
    assert all(0 < b.height <= 1_000 for b in batches)
    assert pl.concat(batches).equals(generate_orders(DAY, 5_000, seed=3))

    default = DemoSource()
    assert (default.orders_per_day, default.seed, default.batch_rows) == (20_000, 0, 250_000)
    assert [b.height for b in default.extract_orders(DAY)] == [expected_row_count(20_000)]


def test_timestamp_renderings_are_exact_in_both_table_paths() -> None:
    from orders_platform.sources.demo import _TimestampRenderer

    start_us = int(datetime(2026, 3, 17, tzinfo=UTC).timestamp()) * 1_000_000
    rng = np.random.default_rng(7)
    us = start_us + rng.integers(-8 * 86_400_000_000, 2 * 86_400_000_000 - 6 * 3_600_000_000, 5_000)
    fmt = rng.integers(0, 4, us.size)
    first = start_us - 8 * 86_400_000_000
    hot = _TimestampRenderer(first, 10, hot_start_us=start_us).render(us, fmt)
    cold = _TimestampRenderer(first, 10).render(us, fmt)
    assert hot.equals(cold)

    ist = timezone(timedelta(hours=5, minutes=30))
    for value, f, text in zip(us.tolist(), fmt.tolist(), hot.to_list(), strict=True):
        instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)
        expected = [
            instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
            instant.isoformat(timespec="microseconds"),
            instant.astimezone(ist).isoformat(timespec="seconds"),
            instant.strftime("%Y-%m-%d %H:%M:%S"),
        ][f]
        assert text == expected


def test_large_frame_rendering_path_gives_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from orders_platform.sources import demo

    small_path = generate_orders(DAY, 3_000)
    monkeypatch.setattr(demo, "_HOT_TABLE_MIN_ROWS", 0)
    assert generate_orders(DAY, 3_000).equals(small_path)


def test_order_ids_encode_the_creation_day() -> None:
    assert order_id_for(DAY, 42) == DAY_INDEX * ORDER_ID_DAY_FACTOR + 42
    assert order_created_day(order_id_for(DAY, 42)) == DAY


# --------------------------------------------------------------------------- content


def test_updated_at_is_in_the_day_window_and_after_created_at(good_rows: pl.DataFrame) -> None:
    g = good_rows
    assert g["t_created_at"].null_count() == 0
    assert g["t_updated_at"].null_count() == 0
    assert g.filter(
        (pl.col("t_updated_at") < day_start(DAY))
        | (pl.col("t_updated_at") >= day_start(DAY + timedelta(days=1)))
    ).is_empty()
    assert g.filter(pl.col("t_created_at") > pl.col("t_updated_at")).is_empty()
    # base orders are created today, late updates up to 7 days before
    created_day = pl.col("t_created_at").dt.date()
    assert g.filter(created_day > DAY).is_empty()
    assert g.filter(created_day < DAY - timedelta(days=7)).is_empty()
    # ... and the order id says which day
    decoded = g["t_order_id"].map_elements(order_created_day, return_dtype=pl.Date)
    assert (decoded == g["t_created_at"].dt.date()).all()


def test_status_consistent_fields(good_rows: pl.DataFrame) -> None:
    g = good_rows
    assert set(g["t_status"].unique()) <= set(VALID_STATUSES)
    assert {"delivered", "cancelled", "placed", "preparing", "delivering"} <= set(g["t_status"])

    delivered = g.filter(pl.col("t_status") == "delivered")
    assert delivered["t_delivered_at"].null_count() == 0
    minutes = (delivered["t_delivered_at"] - delivered["t_created_at"]).dt.total_seconds() / 60
    assert minutes.min() >= 15 and minutes.max() <= 90
    assert (delivered["t_delivered_at"] <= delivered["t_updated_at"]).all()
    assert delivered["t_cancelled_at"].null_count() == delivered.height

    cancelled = g.filter(pl.col("t_status") == "cancelled")
    assert cancelled["t_cancelled_at"].null_count() == 0
    assert (cancelled["t_cancelled_at"] <= cancelled["t_updated_at"]).all()
    assert (cancelled["t_cancelled_at"] > cancelled["t_created_at"]).all()
    reasons = cancelled["cancellation_reason"].str.to_lowercase()
    assert reasons.null_count() == 0 and not reasons.is_in(NULLISH).any()
    assert set(SYSTEM_CANCELLATION_REASONS) < set(reasons)
    assert len(set(reasons) - set(SYSTEM_CANCELLATION_REASONS)) >= 3  # customer reasons
    assert (
        delivered["cancellation_reason"].str.to_lowercase().is_in(SYSTEM_CANCELLATION_REASONS).sum()
        == 0
    )

    in_flight = g.filter(~pl.col("t_status").is_in(["delivered", "cancelled"]))
    assert in_flight["t_delivered_at"].null_count() == in_flight.height
    assert in_flight["t_cancelled_at"].null_count() == in_flight.height


def test_money_tiers_fees_and_discounts(good_rows: pl.DataFrame) -> None:
    g = good_rows
    assert g["t_amount"].null_count() == 0
    assert g["order_amount"].str.contains(r"\.\d{2}$").all()  # always 2 decimal places
    amounts = g["t_amount"]
    assert (amounts >= 0).all() and (amounts <= 500_000).all()
    assert (amounts == 0).sum() > 0  # free promo orders
    share = {
        "economy": (amounts < 500).mean(),
        "standard": ((amounts >= 500) & (amounts < 2000)).mean(),
        "premium": (amounts >= 2000).mean(),
    }
    assert all(0.10 < s < 0.60 for s in share.values()), share
    assert g["t_fee"].null_count() == 0 and g["t_discount"].null_count() == 0
    assert g["t_fee"].min() == 0 and g["t_fee"].max() <= 80
    assert g["t_discount"].min() == 0 and g["t_discount"].max() <= 200
    assert (g["t_discount"] <= g["t_amount"] + g["t_fee"] + 1e-9).all()


def test_every_messy_but_valid_format_is_present(good_rows: pl.DataFrame) -> None:
    g = good_rows

    def has(column: str, pattern: str) -> bool:
        return bool(g[column].str.contains(pattern).any())

    for column in ("order_id", "customer_id", "store_id", "restaurant_id"):
        assert has(column, r"^\s+\d+\s*$"), column  # surrounding spaces
        assert has(column, r"^0+[1-9]\d*$"), column  # leading zeros
    assert has("order_amount", r"^\d{1,3}(,\d{3})+\.\d{2}$")  # "1,234.50"
    assert has("order_amount", r"^₹\d{1,2}(,\d{2})+\.\d{2}$")  # "₹3,80.00" / "₹12,34.50"
    assert has("order_amount", r"^₹\d+\.\d{2}$")  # "₹380.00"
    assert (g["order_amount"] == "0.00").any()
    assert has("status", r"^\s+[A-Z_]+\s+$")  # " DELIVERED "
    assert has("status", r"^[A-Z][a-z_]+$")  # "Delivered"
    for column in ("created_at", "updated_at", "delivered_at"):
        assert has(column, r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"), column
        assert has(column, r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$"), column
        assert has(column, r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+05:30$"), column
        assert has(column, r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"), column
    for column in OPTIONAL_COLUMNS:
        assert g[column].null_count() > 0, column
        for spelling in SPEC_NULL_SPELLINGS:
            assert (g[column] == spelling).any(), (column, spelling)
    methods = g["payment_method"].str.strip_chars().str.to_lowercase()
    assert {"paypal", "crypto"} <= set(methods)
    assert has("payment_method", r"^[A-Z]+$") and has("payment_method", r"^\s")
    assert {"PAID", "pending", "refunded"} <= set(g["payment_status"])
    assert has("cancellation_reason", r"^[A-Z_]+$")  # "PAYMENT_FAILED"
    assert has("notes", r"(?i)^contest winner")  # contains 'test', not as a word
    assert not has("notes", r"(?i)\btest\b")


def test_duplicates_have_distinct_updated_at(good_rows: pl.DataFrame) -> None:
    g = good_rows
    counts = g.group_by("t_order_id").agg(
        pl.len().alias("rows"), pl.col("t_updated_at").n_unique().alias("distinct_updates")
    )
    duplicated = counts.filter(pl.col("rows") > 1)
    assert 0.005 * N <= duplicated.height <= 0.02 * N
    assert (duplicated["rows"] == duplicated["distinct_updates"]).all()
    # a status progression: the earlier row is in flight, the latest one is not earlier
    pairs = g.filter(pl.col("t_order_id").is_in(duplicated["t_order_id"].implode()))
    first = pairs.sort("t_updated_at").group_by("t_order_id", maintain_order=True).first()
    assert first["t_status"].is_in(["placed", "confirmed", "preparing", "ready"]).any()


def test_late_updates_carry_the_facts_of_the_creation_day(good_rows: pl.DataFrame) -> None:
    g = good_rows
    creation_day = g["t_order_id"] // ORDER_ID_DAY_FACTOR - DAY_INDEX
    late = g.filter(creation_day < 0)
    assert 0.015 * N <= late.height <= 0.03 * N
    ages = set((DAY_INDEX - late["t_order_id"] // ORDER_ID_DAY_FACTOR).to_list())
    assert ages == set(range(1, 8))
    assert late["t_status"].is_in(["delivered", "cancelled"]).all()

    # the facts are a function of the order id ...
    facts = order_facts(late["t_order_id"])
    assert (facts["created_at"] == late["t_created_at"]).all()
    assert (facts["customer_id"] == late["t_customer_id"]).all()
    assert (facts["order_amount"].cast(pl.Float64) == late["t_amount"]).all()

    # ... and equal to what that earlier day generated for the same order
    compared = 0
    for age in (1, 3, 7):
        earlier_day = DAY - timedelta(days=age)
        earlier = typed(generate_orders(earlier_day, N, with_intended_reason=True))
        joined = late.join(earlier, on="t_order_id", suffix="_then")
        assert not joined.is_empty(), age
        for column in ("t_created_at", "t_customer_id", "t_amount"):
            assert (joined[column] == joined[f"{column}_then"]).all(), (age, column)
        compared += joined.height
    assert compared >= 100


def test_order_facts_match_every_good_row(good_rows: pl.DataFrame) -> None:
    facts = order_facts(good_rows["t_order_id"])
    assert (facts["created_at"] == good_rows["t_created_at"]).all()
    assert (facts["customer_id"] == good_rows["t_customer_id"]).all()
    assert (facts["order_amount"].cast(pl.Float64) == good_rows["t_amount"]).all()
    assert facts["order_amount"].dtype == pl.Decimal(12, 2)
    assert facts["created_at"].dt.microsecond().max() == 0  # created_at has whole seconds


def test_bad_rows_cover_every_reason(day_frame: pl.DataFrame) -> None:
    intended = day_frame[INTENDED_REASON_COLUMN].drop_nulls()
    assert set(intended) == set(REJECT_REASONS)
    counts = intended.value_counts()
    for reason, count in counts.iter_rows():
        assert count == round(BAD_ROW_SHARES[reason] * day_frame.height), reason
    assert 0.02 <= intended.len() / day_frame.height <= 0.04
    bad = day_frame.filter(pl.col(INTENDED_REASON_COLUMN).is_not_null())
    # the catalogue of SPEC §3 spellings is there
    assert {None, "", "0", "-5", "abc"} <= set(
        bad.filter(pl.col(INTENDED_REASON_COLUMN) == "missing_order_id")["order_id"]
    )
    assert {"abc", "12.3.4"} <= set(
        bad.filter(pl.col(INTENDED_REASON_COLUMN) == "non_numeric_order_amount")["order_amount"]
    )
    tests = bad.filter(pl.col(INTENDED_REASON_COLUMN) == "test_order")
    assert tests["status"].str.strip_chars().str.to_lowercase().str.starts_with("test_").any()
    assert tests["notes"].str.contains(r"(?i)\btest\b").any()


# --------------------------------------------------------------------------- validation


def test_validation_rejects_exactly_the_intended_rows(day_frame: pl.DataFrame) -> None:
    from orders_platform.transforms.orders import validate_orders

    raw = day_frame.drop(INTENDED_REASON_COLUMN).with_columns(
        pl.int_range(pl.len()).cast(pl.String).alias("_run_id")  # row number as lineage
    )
    result = validate_orders(raw)

    rate = result.rejected.height / raw.height
    assert 0.02 <= rate <= 0.05, rate
    assert set(result.rejected_by_reason) == set(REJECT_REASONS)
    assert raw.height == result.valid.height + result.rejected.height + result.duplicates_collapsed
    assert result.duplicates_collapsed >= 0.005 * N
    assert result.unknown_payment_methods > 0

    expected = day_frame.with_row_index("row").filter(pl.col(INTENDED_REASON_COLUMN).is_not_null())
    got = result.rejected.select(pl.col("_run_id").cast(pl.UInt32).alias("row"), "reason")
    mismatched = expected.select("row", INTENDED_REASON_COLUMN).join(got, on="row", how="full")
    mismatched = mismatched.filter(
        pl.col(INTENDED_REASON_COLUMN).is_null()
        | pl.col("reason").is_null()
        | (pl.col(INTENDED_REASON_COLUMN) != pl.col("reason"))
    )
    assert mismatched.is_empty(), mismatched.head(10)

    # every good row survives, one per order id
    valid = result.valid
    assert valid["order_id"].n_unique() == valid.height
    assert set(valid["payment_method"]) <= {
        "upi",
        "card",
        "netbanking",
        "wallet",
        "cod",
        "emi",
        "unknown",
    }
    tiers = valid["order_amount"].cast(pl.Float64)
    assert (tiers < 500).any() and ((tiers >= 500) & (tiers < 2000)).any() and (tiers >= 2000).any()


# --------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_a_million_orders_have_the_documented_shape() -> None:
    """Scale check (speed is measured by benchmarks/, not here)."""
    frame = generate_orders(DAY, 1_000_000)
    assert frame.height == expected_row_count(1_000_000)
    assert frame["order_id"].n_unique() > 1_000_000
