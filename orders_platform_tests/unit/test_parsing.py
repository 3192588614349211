"""Unit tests of the vectorised parsers in orders_platform.transforms.parsing."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest

from orders_platform.transforms.parsing import (
    NULL_SPELLING_VARIANTS,
    ColumnParser,
    ColumnPlan,
    fast_int,
    fast_money,
    fast_utc_timestamp,
    fast_utc_timestamp_for,
    field_name,
    is_positive_int,
    null_if_blank,
    parse_columns,
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


# -------------------------------------------------------- fast tiers (exact where ok)
#
# A fast tier may decline any value (ok False: the exact parser takes it), but wherever it
# accepts one its result must equal the exact parser's. Checked on fuzzed strings: canonical
# values, their mutations (a character replaced, inserted or deleted) and edge cases.


def _mutate(rng: random.Random, text: str, alphabet: str) -> str:
    chars = list(text)
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        position = rng.randrange(len(chars) + 1)
        op = rng.random()
        if op < 0.4 and chars:
            chars[min(position, len(chars) - 1)] = rng.choice(alphabet)
        elif op < 0.7:
            chars.insert(position, rng.choice(alphabet))
        elif chars:
            del chars[min(position, len(chars) - 1)]
    return "".join(chars)


def _fast_vs_exact(values: list, fast, exact) -> pl.DataFrame:
    """Rows where the fast tier is ok, with both results (`fast`, `exact`) and `ok`."""
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    plan = ColumnPlan()
    result, ok = fast(pl.col("v"), plan)
    out = plan.apply(frame.lazy()).select(pl.col("v"), result.alias("fast"), ok.alias("ok"))
    return out.collect().with_columns(frame.select(exact(pl.col("v")).alias("exact")))


def _assert_exact_where_ok(checked: pl.DataFrame, min_ok_share: float) -> None:
    wrong = checked.filter(pl.col("ok") & pl.col("fast").ne_missing(pl.col("exact")))
    assert wrong.height == 0, wrong.head(10)
    # ... and the tier really takes most of the values the exact parser accepts
    assert checked.filter(pl.col("exact").is_not_null())["ok"].mean() >= min_ok_share


def _random_ints(rng: random.Random, n: int) -> list[str | None]:
    edge = ["9223372036854775807", "-9223372036854775808", "9223372036854775808", "+5", "-0"]
    edge += ["00", "5.0", "5.", " 5", "5 ", "1e3", "0x10", "\u0663", "1_000", "", None]
    values: list[str | None] = list(edge)
    for _ in range(n):
        base = str(rng.choice([rng.randint(-(10**6), 10**12), rng.randint(0, 2**64)]))
        values.append(_mutate(rng, base, "0123456789+-. e_") if rng.random() < 0.4 else base)
    return values


def test_fast_int_is_exact_where_ok() -> None:
    values = _random_ints(random.Random(11), 20_000)
    checked = _fast_vs_exact(
        values, lambda e, plan: fast_int(e, plan=plan, name="t"), lambda e: parse_int(e)
    )
    _assert_exact_where_ok(checked, 0.95)
    ok = dict(zip(checked["v"].to_list()[:16], checked["ok"].to_list()[:16], strict=True))
    assert ok["+5"] and ok["-0"] and ok["00"] and ok["9223372036854775807"]
    assert not (ok["5.0"] or ok[" 5"] or ok["9223372036854775808"] or ok["1e3"])


def _random_amounts(rng: random.Random, n: int) -> list[str]:
    values = ["1e3", "1.5E2", "inf", "nan", ".-5", "1.005", "-1.005", "1.0000", "₹₹5", "-₹5"]
    values += ["99999999999.99", "9999999999.99", "+.5", "5.", ".5", "-0", "1,234.5", "₹3,80.00"]
    for _ in range(n):
        cents = rng.choice([rng.randint(-(10**7), 10**9), rng.randint(0, 10**13), 0, 50])
        whole, frac = divmod(abs(cents), 100)
        plain = f"{'-' if cents < 0 else ''}{whole}.{frac:02d}"
        text = rng.choice(
            [plain, plain.rstrip("0"), plain + rng.choice(["5", "05", "000"]), f"{whole:,}"]
            + [f"₹{plain}", "₹" + plain.replace("0", ",0", 1), f"Rs. {plain}", f" {plain}"]
            + [f"{plain}e2", f"+{plain}", f".{frac}"]
        )
        values.append(_mutate(rng, text, "0123456789+-.,₹ eE") if rng.random() < 0.3 else text)
    return values


def _fast_money_field(field: str):
    def fast(expr: pl.Expr, plan: ColumnPlan) -> tuple[pl.Expr, pl.Expr]:
        money, ok = fast_money(expr, plan=plan, name="m")
        return getattr(money, field), ok

    return fast


def test_fast_money_is_exact_where_ok() -> None:
    values = _random_amounts(random.Random(12), 20_000)
    for field in ("value", "decimal"):
        checked = _fast_vs_exact(
            values, _fast_money_field(field), lambda e, f=field: getattr(parse_money(e), f)
        )
        _assert_exact_where_ok(checked, 0.5)
    ok = dict(zip(values, checked["ok"].to_list(), strict=True))
    assert ok["1,234.5"] and ok["₹3,80.00"] and ok["+.5"] and ok["5."]
    assert not (ok["1e3"] or ok["1.5E2"] or ok["inf"] or ok[".-5"] or ok["1.005"])


def _random_timestamps(rng: random.Random, n: int) -> list[str]:
    values = []
    for _ in range(n):
        year = rng.choice([rng.randint(1000, 9999), 2024, 2026, 2100, 1900, 999, 10000])
        month = rng.choice([rng.randint(1, 12)] * 6 + [0, 2, 13])
        day = rng.choice([rng.randint(1, 28)] * 6 + [29, 30, 31, 0, 32])
        hour = rng.choice([rng.randint(0, 23)] * 6 + [24])
        minute, second = rng.choice([rng.randint(0, 59)] * 8 + [60]), rng.randint(0, 60)
        fraction = rng.choice(["", "", "." + "0123456789"[: rng.randint(0, 10)]])
        zh, zm = rng.choice([rng.randint(0, 23)] * 4 + [24]), rng.choice([0, 30, 59, 60])
        zone = rng.choice(
            ["", "Z", "z", f"+{zh:02d}:{zm:02d}", f"-{zh:02d}{zm:02d}", f"+{zh:02d}", " ", "UTC"]
        )
        separator = rng.choice("TTT  t")
        text = f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}"
        text = text[:10] if rng.random() < 0.05 else text + fraction + zone
        values.append(_mutate(rng, text, "0123456789-:T .Zz+") if rng.random() < 0.3 else text)
    return values


def _fast_timestamp_tier(expr: pl.Expr, plan: ColumnPlan) -> tuple[pl.Expr, pl.Expr]:
    return fast_utc_timestamp(expr, plan=plan, name="ts")


def test_fast_utc_timestamp_is_exact_where_ok() -> None:
    values = _random_timestamps(random.Random(13), 30_000)
    checked = _fast_vs_exact(values, _fast_timestamp_tier, lambda e: parse_utc_timestamp(e))
    _assert_exact_where_ok(checked, 0.6)  # (not: date-only, > 6 fraction digits, padding)


@pytest.mark.parametrize(
    "raw",
    [
        "2026-03-17T20:14:32+05:30",
        "2026-03-17 14:44:32",
        "2026-03-17T14:44:32Z",
        "2026-03-17 14:44:32.123456+00",
        "2026-03-17T14:44:32.5z",
        "2024-02-29T23:59:59-0030",
        "1000-01-01T00:00:00-23:59",
    ],
)
def test_fast_utc_timestamp_takes_the_canonical_shapes(raw: str) -> None:
    checked = _fast_vs_exact([raw], _fast_timestamp_tier, lambda e: parse_utc_timestamp(e))
    row = checked.row(0, named=True)
    assert row["ok"]
    assert row["fast"] == row["exact"] is not None


def _repeating_timestamps(rng: random.Random, n: int) -> list[str]:
    """Few hours and suffixes (a partition's shape), plus noise and invalid parts."""
    hours = ["2026-03-17T14", "2026-03-17 09", "2024-02-29T23", "9999-12-31T23"] * 3
    hours += ["2023-02-29T01", "2026-13-01T00", "2026-03-17T24", "0999-01-01T00", "2026-3-1T10"]
    suffixes = ["Z", "", "+05:30", ".000000+00:00", "+00", "-0800"] * 3
    suffixes += [" ", "+24:00", "Zz", ".1234567Z", "+05:60"]
    values = []
    for _ in range(n):
        minute, second = rng.choice([rng.randint(0, 59)] * 9 + [60]), rng.randint(0, 60)
        suffix = rng.choice([*suffixes, f".{rng.randint(0, 999999):06d}+00:00"])
        text = f"{rng.choice(hours)}:{minute:02d}:{second:02d}{suffix}"
        values.append(_mutate(rng, text, "0123456789-:T .Zz+") if rng.random() < 0.1 else text)
    return values


def test_specialised_fast_utc_timestamp_is_exact_where_ok() -> None:
    values = _repeating_timestamps(random.Random(14), 30_000)
    fast = fast_utc_timestamp_for(pl.Series(values[:4000]))
    assert fast is not None
    checked = _fast_vs_exact(
        values, lambda e, plan: fast(e, plan=plan, name="ts"), lambda e: parse_utc_timestamp(e)
    )
    _assert_exact_where_ok(checked, 0.8)  # (not: random fractions, mutated parts)


def test_no_specialised_timestamp_tier_when_nothing_repeats() -> None:
    distinct = [f"{1000 + i}-01-01T{i % 24:02d}:00:00.{i:06d}Z" for i in range(2000)]
    assert fast_utc_timestamp_for(pl.Series(distinct)) is None


# ------------------------------------------------------------------------ parse_columns


def _exact_timestamp(raw: pl.Expr) -> dict[str, pl.Expr]:
    return {"ts": parse_utc_timestamp(raw), "blank": raw.is_null()}


def _fast_timestamp(raw: pl.Expr, plan: ColumnPlan, name: str):
    ts, ok = fast_utc_timestamp(raw, plan=plan, name=name)
    return {"ts": ts, "blank": raw.is_null()}, ok


def _specialised_timestamp(sample: pl.Series):
    fast = fast_utc_timestamp_for(sample)
    if fast is None:
        return None

    def specialised(raw: pl.Expr, plan: ColumnPlan, name: str):
        ts, ok = fast(raw, plan=plan, name=name)
        return {"ts": ts, "blank": raw.is_null()}, ok

    return specialised


def _exact_int(raw: pl.Expr) -> dict[str, pl.Expr]:
    return {"int": parse_int(raw)}


def _fast_int(raw: pl.Expr, plan: ColumnPlan, name: str):
    value, ok = fast_int(raw, plan=plan, name=name)
    return {"int": value}, ok


PARSERS = {
    # every tier: lookup (few values), specialised and generic fast, exact
    "ts": ColumnParser(
        exact=_exact_timestamp, fast=_fast_timestamp, specialise=_specialised_timestamp
    ),
    "int": ColumnParser(exact=_exact_int, fast=_fast_int, lookup=False),
    "word": ColumnParser(exact=lambda raw: {"word": null_if_blank(raw).str.to_lowercase()}),
}


def _columns_frame(rng: random.Random, n: int, ts_values: list[str]) -> pl.DataFrame:
    words = [" A ", "b", "B", "NULL", "", None, "c "] + [f"w{i}" for i in range(20)]
    return pl.DataFrame(
        {
            "ts": [rng.choice([*ts_values[:50], None, "n/a"]) for _ in range(n // 2)]
            + ts_values[: n - n // 2],
            "int": _random_ints(rng, n)[:n],
            "word": [rng.choice(words) for _ in range(n)],
        },
        schema={c: pl.String for c in PARSERS},
    )


@pytest.mark.parametrize("cascade_from", [0, None])  # 0: the cascade even on tiny frames
@pytest.mark.parametrize("n", [0, 1, 7, 5_000, 40_000])
def test_parse_columns_equals_the_exact_parsers(n: int, cascade_from, monkeypatch) -> None:
    from orders_platform.transforms import parsing

    if cascade_from is not None:
        monkeypatch.setattr(parsing, "_EXACT_MAX_ROWS", cascade_from)
    rng = random.Random(n)
    frame = _columns_frame(rng, n, _repeating_timestamps(rng, n) + _random_timestamps(rng, n))
    got = parse_columns(frame, PARSERS)
    want = frame.select(
        expr.alias(field_name(column, field))
        for column, parser in PARSERS.items()
        for field, expr in parser.exact(pl.col(column)).items()
    )
    assert got.columns == want.columns
    assert got.schema == want.schema
    for column in want.columns:
        assert got[column].equals(want[column]), column


def test_parse_columns_splits_long_frames_into_cache_sized_chunks(monkeypatch) -> None:
    from orders_platform.transforms import parsing

    monkeypatch.setattr(parsing, "_CHUNK_ROWS", 1_000)
    rng = random.Random(5)
    frame = _columns_frame(rng, 9_500, _random_timestamps(rng, 9_500))
    got = parse_columns(frame, PARSERS)
    assert got.n_chunks() == 1  # the result is contiguous again
    want = frame.select(**_exact_timestamp(pl.col("ts")))
    assert got[field_name("ts", "ts")].equals(want["ts"])
