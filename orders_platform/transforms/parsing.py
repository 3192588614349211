"""Reusable, vectorised Polars expression builders for messy source strings.

Everything here is pure Polars (no I/O, no per-row Python). The exact semantics — what is
accepted, how it is rounded — are mirrored one-to-one by the row-by-row reference in
`benchmarks/reference_orders.py`; keep the two in step.

Rules decided here (SPEC §3 is silent on them):

* Trimming removes Unicode ``White_Space`` characters from both ends (Rust's
  ``char::is_whitespace``, which is what ``str.strip_chars()`` uses).
* A value is null when, after trimming, its lower-cased form is one of
  ``schema.NULL_SPELLINGS`` ("", "null", "n/a", "-", "none").
* Integers: ``[+-]?[0-9]+`` optionally followed by ``.`` and only zeros ("123.0", "123.",
  " 00123 "); ASCII digits only; values outside Int64 are not integers.
* Money: currency symbols (₹ $ € £), all whitespace and **all** commas are removed
  anywhere, and a code ``Rs``/``Rs.``/``INR`` (any case) right at the start, after an
  optional sign ("1,234.50" -> 1234.50, "₹3,80.00" -> 380.00, "Rs. 1,200" -> 1200,
  "-₹5" -> -5). What is left must be a plain decimal number
  ``[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)``: no exponent, no inf/nan. The exact value is
  rounded to 2 decimals with ROUND_HALF_UP (ties away from zero, like
  ``Decimal.quantize(Decimal("0.01"), ROUND_HALF_UP)``): "1.005" -> 1.01, "-1.005" ->
  -1.01, "1.0049" -> 1.00. Range checks use the Float64 value of the cleaned text.
* Timestamps: ``YYYY-MM-DD`` (midnight UTC) or ``YYYY-MM-DD[T| ]HH:MM:SS[.f+][offset]``
  — seconds required; any number of fraction digits (beyond 6 truncated to microseconds);
  offset ``Z``/``z``, ``+HH``, ``+HHMM``, ``+HH:MM`` (hours < 24) or none (= UTC); years
  1000-9999. Calendar-invalid dates ("2026-02-30") and leap seconds are unparseable.
  The result is ``Datetime("us", "UTC")``.

Performance: Polars does not reliably share a sub-expression that is used several times
inside one expression, so the multi-step parsers are written against a `ColumnPlan`.
Without a plan (the default) they return one self-contained expression — convenient, but
intermediate values may be computed more than once. With a plan, every intermediate value
becomes a named temporary column, computed once, in `with_columns` stages ordered by their
dependencies (and parallel across columns inside a stage); `ColumnPlan.apply` runs them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from orders_platform.transforms.schema import MONEY, NULL_SPELLINGS, UTC_TS

# Every upper/lower-case spelling of the null markers, so a hash lookup on the trimmed value
# replaces lower-casing every value (the markers are ASCII, so this is exact).
NULL_SPELLING_VARIANTS: tuple[str, ...] = tuple(
    sorted(
        {
            "".join(chars)
            for spelling in NULL_SPELLINGS
            for chars in itertools.product(*({c.lower(), c.upper()} for c in spelling))
        }
    )
)

INT_PATTERN = r"^[+-]?[0-9]+(?:\.0*)?$"  # documentation; parse_int implements it with a cast
# Symbols/whitespace/commas anywhere, or a currency code at the start after an optional sign.
MONEY_CLEAN_PATTERN = r"[\s,₹$€£]|^([+-]?)\s*(?:[Rr][Ss]\.?|[Ii][Nn][Rr])"
MONEY_NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
# Exact ties for 2-decimal rounding whose kept digit is even: there Polars' half-to-even
# string -> Decimal cast rounds towards zero while ROUND_HALF_UP rounds away from zero.
MONEY_EVEN_TIE_PATTERN = r"\.[0-9][02468]50*$"
TIMESTAMP_PATTERN = (
    r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?$"
)

_US_PER_DAY = 86_400_000_000
_CENT = Decimal("0.01")


class ColumnPlan:
    """Named intermediate columns, staged by dependency so each is computed exactly once.

    `add(name, expr)` registers `expr` as temporary column `name` and returns `pl.col(name)`
    to build on; its stage is one after the latest stage of any plan column it reads
    (columns not in the plan are inputs, available from the start). `apply(lf)` runs the
    stages as successive `with_columns`. An inline plan (`ColumnPlan(inline=True)`) just
    returns `expr`, which makes the parsers produce one self-contained expression.
    """

    def __init__(self, *, inline: bool = False) -> None:
        self.inline = inline
        self._level: dict[str, int] = {}
        self._stages: defaultdict[int, list[pl.Expr]] = defaultdict(list)

    def add(self, name: str, expr: pl.Expr) -> pl.Expr:
        if self.inline:
            return expr
        if name in self._level:
            raise ValueError(f"column {name!r} is already in the plan")
        deps = [self._level[d] for d in expr.meta.root_names() if d in self._level]
        level = max(deps, default=-1) + 1
        self._level[name] = level
        self._stages[level].append(expr.alias(name))
        return pl.col(name)

    @property
    def columns(self) -> list[str]:
        """Names of all planned columns (e.g. to drop the temporaries afterwards)."""
        return list(self._level)

    def apply(self, lf: pl.LazyFrame, keep: Iterable[str] | None = None) -> pl.LazyFrame:
        """Run the stages on `lf`.

        With `keep`, every planned column not in `keep` is dropped right after the last
        stage that reads it, which bounds memory on wide plans; without, all are kept.
        """
        if keep is None:
            for level in sorted(self._stages):
                lf = lf.with_columns(self._stages[level])
            return lf
        kept = set(keep)
        last_use = dict(self._level)
        for level, exprs in self._stages.items():
            for expr in exprs:
                for dep in expr.meta.root_names():
                    if dep in last_use:
                        last_use[dep] = max(last_use[dep], level)
        for level in sorted(self._stages):
            lf = lf.with_columns(self._stages[level])
            dead = [c for c, last in last_use.items() if last == level and c not in kept]
            if dead:
                lf = lf.drop(dead)
        return lf


_INLINE = ColumnPlan(inline=True)


def null_if_blank(expr: pl.Expr, *, plan: ColumnPlan | None = None, name: str = "__nib") -> pl.Expr:
    """Trim; null when the trimmed value, lower-cased, is one of NULL_SPELLINGS (String)."""
    plan = plan or _INLINE
    trimmed = plan.add(f"{name}__trim", expr.str.strip_chars())
    return plan.add(name, pl.when(~trimmed.is_in(NULL_SPELLING_VARIANTS)).then(trimmed))


def parse_int(expr: pl.Expr, *, trimmed: bool = False) -> pl.Expr:
    """Int64 of an integer string ("12", " +0012 ", "12.0", "-3"); null when not an integer.

    `trimmed=True` skips the whitespace strip when the caller already trimmed the input.
    """
    text = expr if trimmed else expr.str.strip_chars()
    # The only suffix allowed after the digits is ".0*"; the strict Int64 cast then rejects
    # everything that is not [+-]?[0-9]+ (and values outside Int64).
    return text.str.replace(r"\.0*$", "").cast(pl.Int64, strict=False)


def parse_positive_int(
    expr: pl.Expr, *, trimmed: bool = False, plan: ColumnPlan | None = None, name: str = "__pint"
) -> pl.Expr:
    """Int64 when the string is a positive integer, else null.

    Whether it parsed is `parse_positive_int(e).is_not_null()` (also `is_positive_int`);
    a null input gives null, so callers tell "missing" from "invalid" by the input.
    """
    plan = plan or _INLINE
    value = plan.add(f"{name}__int", parse_int(expr, trimmed=trimmed))
    return plan.add(name, pl.when(value > 0).then(value))


def is_positive_int(expr: pl.Expr, *, trimmed: bool = False) -> pl.Expr:
    """True when the string is a positive integer (False for a null input)."""
    return parse_positive_int(expr, trimmed=trimmed).is_not_null()


@dataclass(frozen=True)
class ParsedMoney:
    """Expressions describing one money column (each null when the input is null)."""

    text: pl.Expr  # cleaned text (String): symbols, codes, whitespace and commas removed
    is_number: pl.Expr  # Boolean: the cleaned text is a plain decimal number
    value: pl.Expr  # Float64 (null unless a number), for range checks
    decimal: pl.Expr  # Decimal(12,2), ROUND_HALF_UP; null unless a number that fits


def parse_money(
    expr: pl.Expr, *, plan: ColumnPlan | None = None, name: str = "__money"
) -> ParsedMoney:
    """Parse a money string (rules in the module docstring); apply `null_if_blank` first.

    With a plan, the four results are planned columns `{name}__text`, `{name}__ok`,
    `{name}__value` and `{name}__decimal`.
    """
    plan = plan or _INLINE
    text = plan.add(f"{name}__text", expr.str.replace_all(MONEY_CLEAN_PATTERN, "${1}"))
    is_number = plan.add(f"{name}__ok", text.str.contains(MONEY_NUMBER_PATTERN))
    value = plan.add(f"{name}__value", pl.when(is_number).then(text.cast(pl.Float64, strict=False)))
    # Polars' string -> Decimal cast rounds half to even: move the exact ties it resolved
    # towards zero ("1.005" -> 1.00, "-2.125" -> -2.12) one cent away from zero.
    tie = plan.add(f"{name}__tie", text.str.contains(MONEY_EVEN_TIE_PATTERN))
    negative = text.str.starts_with("-")
    adjust = pl.when(tie).then(
        pl.when(negative).then(pl.lit(-_CENT, dtype=MONEY)).otherwise(pl.lit(_CENT, dtype=MONEY))
    )
    rounded = text.cast(MONEY, strict=False)
    decimal = plan.add(
        f"{name}__decimal",
        pl.when(is_number).then(
            (rounded + adjust.fill_null(pl.lit(Decimal("0.00"), dtype=MONEY))).cast(
                MONEY, strict=False
            )
        ),
    )
    return ParsedMoney(text=text, is_number=is_number, value=value, decimal=decimal)


def parse_utc_timestamp(
    expr: pl.Expr,
    *,
    trimmed: bool = False,
    plan: ColumnPlan | None = None,
    name: str = "__ts",
) -> pl.Expr:
    """Datetime("us", "UTC") of an ISO-8601-like string; null when null or unparseable.

    Accepts "2026-03-17T20:14:32+05:30", "2026-03-17 20:14:32" (UTC), "...32.123Z",
    "...+0530", "...+05", "2026-03-17" (midnight UTC) and the Postgres text form
    "2026-03-17 14:44:32.123456+00". Callers tell "missing" from "unparseable" by whether
    the input itself is null.

    One validating regex, then fixed-position slices and integer arithmetic: several times
    faster than chrono-based `str.to_datetime`, which also cannot take 'Z', no offset and
    date-only values in one format.
    """
    plan = plan or _INLINE
    t = expr if trimmed else plan.add(f"{name}__trim", expr.str.strip_chars())

    def part(key: str, e: pl.Expr) -> pl.Expr:
        return plan.add(f"{name}__{key}", e)

    shape_ok = part("ok", t.str.contains(TIMESTAMP_PATTERN))
    days = part("days", t.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).cast(pl.Int64))
    hour = part("hh", t.str.slice(11, 2).cast(pl.Int64, strict=False))
    minute = part("mi", t.str.slice(14, 2).cast(pl.Int64, strict=False))
    second = part("ss", t.str.slice(17, 2).cast(pl.Int64, strict=False))
    tail = part("tail", t.str.slice(19))  # "", ".123456", ".5Z", "+05:30", "Z", "+00" ...
    tz = part("tz", tail.str.strip_chars_start(".0123456789"))  # "", "Z", "+05", "+05:30"
    frac_digits = part("fd", (tail.str.len_bytes() - tz.str.len_bytes()).cast(pl.Int64) - 1)
    kept = frac_digits.clip(0, 6)
    micros = part(
        "us",
        pl.when(frac_digits > 0).then(
            tail.str.slice(1, kept).cast(pl.Int64, strict=False)
            * pl.lit(10, dtype=pl.Int64).pow(6 - kept)
        ),
    )
    tz_hours = part("tzh", tz.str.slice(1, 2).cast(pl.Int64, strict=False))
    tz_mins = part(
        "tzm",
        pl.when(tz.str.len_bytes() >= 5).then(tz.str.slice(-2, 2).cast(pl.Int64, strict=False)),
    )
    tz_negative = part("tzneg", tz.str.starts_with("-"))
    offset = tz_hours.fill_null(0) * 60 + tz_mins.fill_null(0)
    offset = pl.when(tz_negative).then(-offset).otherwise(offset)
    local_seconds = (hour.fill_null(0) * 60 + minute.fill_null(0) - offset) * 60 + second.fill_null(
        0
    )
    epoch_us = days * _US_PER_DAY + local_seconds * 1_000_000 + micros.fill_null(0)
    return plan.add(name, pl.when(shape_ok & days.is_not_null()).then(epoch_us).cast(UTC_TS))


def to_utc(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Bring a column of the given dtype to Datetime("us", "UTC").

    Strings are parsed with `parse_utc_timestamp`; naive datetimes are taken as UTC;
    aware ones are converted; dates become midnight UTC; a Null column stays null.
    """
    if dtype == pl.String or dtype == pl.Categorical or isinstance(dtype, pl.Enum):
        return parse_utc_timestamp(expr.cast(pl.String))
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return expr.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype == pl.Null:
        return expr.cast(UTC_TS)
    raise TypeError(f"cannot interpret a {dtype} column as a UTC timestamp")
