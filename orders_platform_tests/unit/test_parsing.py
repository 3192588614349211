"""Unit tests of the vectorised parsers in orders_platform.transforms.parsing."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest

from orders_platform.transforms.parsing import (
    NULL_SPELLING_VARIANTS,
    ColumnPlan,
    is_positive_int,
    null_if_blank,
    parse_int,
    parse_money,
    parse_positive_int,
    parse_utc_timestamp,
    to_utc,
)
from orders_platform.transforms.schema import MONEY, NULL_SPELLINGS, UTC_TS


def _apply(values: list, expr_fn) -> list:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return frame.select(expr_fn(pl.col("v")).alias("out"))["out"].to_list()


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------------- null_if_blank


@pytest.mark.parametrize(
    "value", ["", "   ", "NULL", "null", "Null", "N/A", "n/a", "N/a", "-", " - ", "none", "NONE"]
)
def test_null_spellings_become_null(value: str) -> None:
    assert _apply([value], null_if_blank) == [None]


def test_null_if_blank_trims_and_keeps_other_values() -> None:
    values = [None, "  SAVE10 ", "nullable", "n/a/b", "--", "\u00a0x\u3000", "0"]
    assert _apply(values, null_if_blank) == [None, "SAVE10", "nullable", "n/a/b", "--", "x", "0"]


def test_null_spelling_variants_cover_every_case_mix() -> None:
    assert {v.lower() for v in NULL_SPELLING_VARIANTS} == set(NULL_SPELLINGS)
    assert {"NuLl", "nONE", "N/A", "n/A"} <= set(NULL_SPELLING_VARIANTS)


# --------------------------------------------------------------------------- integers


def test_parse_int_messy_forms() -> None:
    values = [" 00123 ", "123.0", "123.", "123.000", "+7", "-5", "0", "12.5", "1e3", "abc"]
    assert _apply(values, parse_int) == [123, 123, 123, 123, 7, -5, 0, None, None, None]


def test_parse_int_rejects_out_of_int64_and_non_ascii_digits() -> None:
    values = ["9223372036854775807", "9223372036854775808", "\u0663", "1_000", "", None]
    assert _apply(values, parse_int) == [2**63 - 1, None, None, None, None, None]


def test_parse_positive_int_and_whether_it_parsed() -> None:
    values = ["42", " 0042 ", "42.0", "0", "-1", "x", None]
    assert _apply(values, parse_positive_int) == [42, 42, 42, None, None, None, None]
    assert _apply(values, is_positive_int) == [True, True, True, False, False, False, False]


# ------------------------------------------------------------------------------ money


def _money(values: list) -> pl.DataFrame:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    parsed = parse_money(pl.col("v"))
    return frame.select(
        parsed.text.alias("text"),
        parsed.is_number.alias("ok"),
        parsed.value.alias("value"),
        parsed.decimal.alias("decimal"),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,234.50", "1234.50"),
        ("₹3,80.00", "380.00"),  # misplaced thousands comma: all commas are removed
        ("₹12,34.50", "1234.50"),
        ("$ 12", "12.00"),
        ("€1.5", "1.50"),
        ("£0.75", "0.75"),
        ("Rs. 1,200", "1200.00"),
        ("rs500", "500.00"),
        ("INR 99.9", "99.90"),
        ("-₹5", "-5.00"),
        ("- Rs 5", "-5.00"),
        ("0", "0.00"),
        ("0.00", "0.00"),
        (".5", "0.50"),
        ("5.", "5.00"),
        ("500000", "500000.00"),
        ("500000.01", "500000.01"),
    ],
)
def test_parse_money_formats(raw: str, expected: str) -> None:
    out = _money([raw])
    assert out["ok"].to_list() == [True]
    assert out["decimal"].to_list() == [Decimal(expected)]
    assert out["value"].to_list() == [float(expected)]
    assert out.schema["decimal"] == MONEY


@pytest.mark.parametrize(
    "raw", ["abc", "1e3", "1E-2", "inf", "nan", "12.34.5", "1-2", "12abc", "."]
)
def test_parse_money_rejects_non_numbers(raw: str) -> None:
    out = _money([raw])
    assert out.row(0) == (out["text"][0], False, None, None)


def test_parse_money_null_stays_null() -> None:
    assert _money([None]).row(0) == (None, None, None, None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.005", "1.01"),  # half up: Polars' own cast would give 1.00 (half to even)
        ("1.015", "1.02"),
        ("2.125", "2.13"),
        ("-1.005", "-1.01"),  # ties away from zero, like Decimal ROUND_HALF_UP
        ("1.0049", "1.00"),
        ("1.00500000000000000001", "1.01"),
        ("0.994999", "0.99"),
        ("12.345", "12.35"),
    ],
)
def test_parse_money_rounds_half_up(raw: str, expected: str) -> None:
    assert _money([raw])["decimal"].to_list() == [Decimal(expected)]


def test_parse_money_rounding_matches_python_decimal_on_random_inputs() -> None:
    rng = random.Random(7)
    values = []
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6)))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 5)))
        if rng.random() < 0.3:  # force exact ties
            frac = frac[:2].ljust(2, "0") + "5"
        sign = rng.choice(["", "", "-"])
        values.append(f"{sign}{digits}.{frac}" if frac else f"{sign}{digits}")
    got = _money(values)["decimal"].to_list()
    want = [Decimal(v).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) for v in values]
    assert got == want


def test_parse_money_out_of_decimal_range_has_value_but_no_decimal() -> None:
    out = _money(["99999999999", "9999999999.99"])
    assert out["ok"].to_list() == [True, True]
    assert out["value"].to_list() == [99999999999.0, 9999999999.99]
    assert out["decimal"].to_list() == [None, Decimal("9999999999.99")]


# ------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-17T20:14:32+05:30", _utc(2026, 3, 17, 14, 44, 32)),
        ("2026-03-17T20:14:32+0530", _utc(2026, 3, 17, 14, 44, 32)),
        ("2026-03-17T20:14:32+05", _utc(2026, 3, 17, 15, 14, 32)),
        ("2026-03-17T04:14:32-05:00", _utc(2026, 3, 17, 9, 14, 32)),
        ("2026-03-17T00:14:32+05:30", _utc(2026, 3, 16, 18, 44, 32)),  # previous UTC day
        ("2026-03-17T14:44:32Z", _utc(2026, 3, 17, 14, 44, 32)),
        ("2026-03-17T14:44:32z", _utc(2026, 3, 17, 14, 44, 32)),
        ("2026-03-17 14:44:32", _utc(2026, 3, 17, 14, 44, 32)),  # naive = UTC
        ("2026-03-17T14:44:32", _utc(2026, 3, 17, 14, 44, 32)),
        ("2026-03-17", _utc(2026, 3, 17)),  # date only = midnight UTC
        ("2026-03-17 14:44:32.123456+00", _utc(2026, 3, 17, 14, 44, 32, 123456)),  # Postgres
        ("2026-03-17T14:44:32.5Z", _utc(2026, 3, 17, 14, 44, 32, 500000)),
        ("2026-03-17T14:44:32.123456789+00:00", _utc(2026, 3, 17, 14, 44, 32, 123456)),
        ("2026-03-17T14:44:32.000001-0100", _utc(2026, 3, 17, 15, 44, 32, 1)),
        ("  2026-03-17T14:44:32Z\t", _utc(2026, 3, 17, 14, 44, 32)),
        ("2024-02-29T23:59:59-00:30", _utc(2024, 3, 1, 0, 29, 59)),
    ],
)
def test_parse_utc_timestamp_formats(raw: str, expected: datetime) -> None:
    assert _apply([raw], parse_utc_timestamp) == [expected]


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "2026-02-30",
        "2026-13-01T00:00:00Z",
        "2026-03-17T24:00:00Z",
        "2026-03-17T23:59:60Z",  # leap seconds are not accepted
        "2026-03-17T14:44",  # seconds are required
        "2026-03-17T14:44:32.Z",
        "2026-03-17T14:44:32+24:00",
        "2026-03-17T14:44:32 +05:30",
        "17/03/2026",
        "0999-01-01",
        "",
    ],
)
def test_parse_utc_timestamp_unparseable_is_null(raw: str) -> None:
    assert _apply([raw], parse_utc_timestamp) == [None]


def test_parse_utc_timestamp_dtype_and_null() -> None:
    frame = pl.DataFrame({"v": [None, "2026-03-17"]}, schema={"v": pl.String})
    out = frame.select(parse_utc_timestamp(pl.col("v")))
    assert out.schema["v"] == UTC_TS
    assert out["v"].to_list() == [None, _utc(2026, 3, 17)]


def test_staged_plan_gives_the_same_result_as_the_inline_expression() -> None:
    rng = random.Random(3)
    samples = [
        "2026-03-17T20:14:32+05:30",
        "2026-03-17 14:44:32.123456+00",
        "2026-03-17",
        "2026-03-17T14:44:32Z",
        "bad",
        None,
    ]
    values = [rng.choice(samples) for _ in range(500)]
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    plan = ColumnPlan()
    parse_utc_timestamp(pl.col("v"), plan=plan, name="ts")
    money = parse_money(pl.col("v"), plan=plan, name="m")
    staged = plan.apply(frame.lazy(), keep=["ts", "m__decimal"]).collect()
    assert "ts__tail" not in staged.columns  # temporaries are dropped after their last use
    inline = frame.select(
        parse_utc_timestamp(pl.col("v")).alias("ts"), parse_money(pl.col("v")).decimal.alias("m")
    )
    assert staged["ts"].equals(inline["ts"])
    assert staged["m__decimal"].equals(inline["m"])
    assert money.decimal.meta.output_name() == "m__decimal"


def test_column_plan_rejects_duplicate_names() -> None:
    plan = ColumnPlan()
    plan.add("a", pl.lit(1))
    with pytest.raises(ValueError, match="already in the plan"):
        plan.add("a", pl.lit(2))


# ----------------------------------------------------------------------------- to_utc


def test_to_utc_accepts_strings_naive_aware_and_dates() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    cases = [
        (["2026-03-17T20:14:32+05:30"], pl.String(), _utc(2026, 3, 17, 14, 44, 32)),
        ([datetime(2026, 3, 17, 14, 44, 32)], pl.Datetime("ms"), _utc(2026, 3, 17, 14, 44, 32)),
        (
            [datetime(2026, 3, 17, 20, 14, 32, tzinfo=ist)],
            pl.Datetime("us", "Asia/Kolkata"),
            _utc(2026, 3, 17, 14, 44, 32),
        ),
        ([date(2026, 3, 17)], pl.Date(), _utc(2026, 3, 17)),
        ([None], pl.Null(), None),
    ]
    for values, dtype, expected in cases:
        frame = pl.DataFrame({"v": values}, schema={"v": dtype})
        out = frame.select(to_utc(pl.col("v"), dtype))
        assert out.schema["v"] == UTC_TS, dtype
        assert out["v"].to_list() == [expected], dtype


def test_to_utc_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="UTC timestamp"):
        to_utc(pl.col("v"), pl.Int64())
