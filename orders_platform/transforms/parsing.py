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

The parsers above are the rules; for whole frames, `parse_columns` gives the same results
several times faster by running them only where needed: once per distinct value of
repetitive columns, and behind cheap "fast tiers" (`fast_int`, `fast_money`,
`fast_utc_timestamp`, `fast_utc_timestamp_for`) that are exact on the canonical shapes.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
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


# --------------------------------------------------------------------------------------
# Tiered column parsing: exact results at a fraction of the cost of the exact parsers.
#
# The exact parsers above are regex- and slice-heavy (a timestamp column costs about a
# second per million rows). Real columns repeat a few values (statuses, fees, null
# spellings) or share one canonical shape (ids, amounts, ISO timestamps). `parse_columns`
# exploits both with a cascade of tiers per column; each tier parses the rows it can vouch
# for and hands the others (physically filtered out, then written back in place) to the
# next one:
#
# 1. lookup: the exact parser's fields for the distinct values of a sample of the column,
#    mapped to every row holding one of them (one hash lookup per row); used when those
#    values cover a good share of the rows;
# 2. fast: cheap parsers that are exact on the canonical shapes (ids, money, timestamps),
#    possibly first one specialised to the column's sample (`ColumnParser.specialise`);
# 3. exact: the full parser on what is left, once per distinct value when they repeat.
#
# Every tier yields the exact parser's values, so the cascade only changes the speed. The
# fast tiers rely on Polars' own casts and on byte-level checks accepting a *subset* of
# the exact grammar with the same value; `test_parsing.py` fuzzes each of them against
# the exact parser, and `test_validate_orders.py` the whole of `validate_orders` against
# the row-by-row reference.
#
# Measured on the 1M-order demo day (2 cores): validation took ~3 s with the exact parsers
# alone, ~1.2-1.7 s with the cascade. About half of its CPU time goes to the fast tiers of
# created_at, updated_at, delivered_at and order_amount (0.2-0.3 CPU-s per million rows
# each: a Polars operation costs 2-40 ns per row, and a timestamp needs some forty).
# --------------------------------------------------------------------------------------

Fields = dict[str, pl.Expr]
ExactParser = Callable[[pl.Expr], Fields]
# (input, plan for staged temporaries, unique temp-name prefix) -> (fields, ok)
FastParser = Callable[[pl.Expr, ColumnPlan, str], tuple[Fields, pl.Expr]]
# A fast tier of one value: (input, plan=, name=) -> (value, ok), e.g. `fast_utc_timestamp`.
ValueTier = Callable[..., tuple[pl.Expr, pl.Expr]]


@dataclass(frozen=True)
class ColumnParser:
    """How `parse_columns` turns one String column into named fields.

    `exact(expr)` gives the fields for any input, null included (the reference semantics).
    `fast(expr, plan, name)`, optional, gives the same fields plus an `ok` flag; wherever
    `ok` is True its fields must equal `exact`'s, elsewhere they are ignored.
    `specialise(sample)`, optional, may build from a sample of the column another such
    fast tier (e.g. with lookup tables for parts that repeat), tried before `fast`.
    `lookup=False` skips the lookup tier (when `fast` is cheaper than a hash lookup).
    """

    exact: ExactParser
    fast: FastParser | None = None
    specialise: Callable[[pl.Series], FastParser | None] | None = None
    lookup: bool = True


# The lookup tier's values come from a strided sample of this many rows, and it is used
# when they cover at least this share of a second, interleaved sample.
_SAMPLE_ROWS = 4096
_LOOKUP_MIN_COVERAGE = 0.5
_CHUNK_ROWS = 131_072  # rows per chunk while parsing (see `_in_chunks`)
_EXACT_MAX_ROWS = 4_096  # up to here the exact parsers alone are faster (crossover ~10k rows)
_KEY = "__key"
_OK = "__ok"


@dataclass(frozen=True)
class _Lookup:
    keys: pl.Series  # distinct non-null values
    table: pl.DataFrame  # their fields, row for row, then one row for a null value


_Tier = _Lookup | FastParser


@dataclass(frozen=True)
class _Cascade:
    """How one column is parsed: its tiers, then `exact` (by dictionary if `repeats`)."""

    tiers: tuple[_Tier, ...]
    exact: ExactParser
    repeats: bool


@dataclass(frozen=True)
class _Step:
    """Rows of one column still to parse (`rows`: their positions; None = all rows)."""

    values: pl.Series
    rows: pl.Series | None
    cascade: _Cascade


def field_name(column: str, field: str) -> str:
    """Name of `field` of `column` in the frame returned by `parse_columns`."""
    return f"{column}:{field}"


def parse_columns(frame: pl.DataFrame, parsers: Mapping[str, ColumnParser]) -> pl.DataFrame:
    """Fields of every parsed column (named by `field_name`), row-aligned with `frame`.

    The result equals `frame.select(exact fields of every column)`; see the section comment
    for how it is computed. Columns are parsed concurrently: one thread per column drives
    its cascade (Polars releases the GIL and runs the work on its own thread pool), so the
    short sequential steps between tiers of one column overlap with the others' work.
    """
    if frame.height <= _EXACT_MAX_ROWS:
        # The cascade's fixed cost (sampling, a thread and several collects per column)
        # exceeds the exact parsers' work on small frames: one select instead.
        return frame.select(
            e.alias(field_name(c, f))
            for c, p in parsers.items()
            for f, e in p.exact(pl.col(c)).items()
        )
    frame = _in_chunks(frame)
    with ThreadPoolExecutor(max_workers=max(1, len(parsers))) as pool:
        parsed = {c: pool.submit(_parse_column, frame.get_column(c), p) for c, p in parsers.items()}
        columns = [
            s.alias(field_name(c, s.name)) for c, future in parsed.items() for s in future.result()
        ]
    # Contiguous columns: a frame of differently chunked columns is rechunked on every use.
    return pl.DataFrame(columns, height=frame.height).rechunk()


def _parse_column(values: pl.Series, parser: ColumnParser) -> pl.DataFrame:
    """The fields of one column, through its cascade of tiers (see the section comment)."""
    step = _Step(values, None, _cascade(values, parser))
    fields = None
    while True:
        output = _plan(step).collect()
        residual = None
        if step.cascade.tiers:  # a tier ran: the rows it did not vouch for go on
            residual = output.get_column(_OK).not_().arg_true()
            output = output.drop(_OK)
        if fields is None:
            fields = output
        else:  # write the parsed rows back in place
            fields = fields.with_columns(
                fields.get_column(f).scatter(step.rows, output.get_column(f).cast(dtype))
                for f, dtype in fields.schema.items()
            )
        if residual is None or residual.len() == 0:
            return fields
        step = _Step(
            step.values.gather(residual),
            residual if step.rows is None else step.rows.gather(residual),
            replace(step.cascade, tiers=step.cascade.tiers[1:]),
        )


def _in_chunks(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` split (without copying) into chunks of about `_CHUNK_ROWS` rows.

    Polars evaluates an expression chunk by chunk; on chunks that fit the CPU caches the
    many small steps of the fast tiers run about twice as fast as on one long column.
    """
    if frame.height <= _CHUNK_ROWS or frame.n_chunks() * _CHUNK_ROWS >= frame.height:
        return frame
    return pl.concat(
        (frame.slice(start, _CHUNK_ROWS) for start in range(0, frame.height, _CHUNK_ROWS)),
        rechunk=False,
    )


def _cascade(values: pl.Series, parser: ColumnParser) -> _Cascade:
    """Tiers for one column, chosen from two interleaved samples of its values."""
    step = max(1, len(values) // _SAMPLE_ROWS)
    sample = values.gather_every(step)
    keys = sample.unique().drop_nulls()
    repeats = 2 * len(keys) <= len(sample)
    tiers: list[_Tier] = []
    if parser.lookup and len(values):
        # The second sample estimates how many rows the lookup covers (a null is covered
        # too: the table has a row for it).
        probe = values.gather_every(step, offset=step // 2)
        covered = (probe.is_null() | probe.is_in(keys.implode())).mean()
        if covered is not None and covered >= _LOOKUP_MIN_COVERAGE:
            keys = keys.sort()  # (deterministic Enum category order)
            with_null = pl.concat([keys, pl.Series([None], dtype=pl.String)])
            table = with_null.to_frame(_KEY).select(**parser.exact(pl.col(_KEY)))
            tiers.append(_Lookup(keys, table))
    if parser.specialise is not None and len(values):
        specialised = parser.specialise(sample)
        if specialised is not None:
            tiers.append(specialised)
    if parser.fast is not None:
        tiers.append(parser.fast)
    return _Cascade(tuple(tiers), parser.exact, repeats)


def _plan(step: _Step) -> pl.LazyFrame:
    """Fields (named by field) of the step's values by its next tier (plus `__ok`), or
    by the exact parser when no tier is left."""
    source = step.values.alias(_KEY).to_frame().lazy()  # (no clash with a field's name)
    value = pl.col(_KEY)
    if not step.cascade.tiers:
        if not step.cascade.repeats:
            return source.select(**step.cascade.exact(value))
        # Once per distinct value, then joined back (in order) to every row.
        table = source.unique().with_columns(**step.cascade.exact(value))
        return source.join(
            table, on=_KEY, how="left", nulls_equal=True, maintain_order="left"
        ).drop(_KEY)
    tier = step.cascade.tiers[0]
    if isinstance(tier, _Lookup):
        # Position of the value in `keys` (the Enum cast is a hash lookup; unknown values
        # become null), or the table's last row for a null value.
        position = (
            pl.when(value.is_null())
            .then(pl.lit(len(tier.keys), dtype=pl.UInt32))
            .otherwise(value.cast(pl.Enum(tier.keys), strict=False).to_physical())
        )
        return source.select(position.cast(pl.UInt32).alias(_KEY)).select(
            *(pl.lit(s).gather(pl.col(_KEY)).alias(s.name) for s in tier.table.iter_columns()),
            pl.col(_KEY).is_not_null().alias(_OK),
        )
    plan = ColumnPlan()
    fields, ok = tier(value, plan, f"__{step.values.name}")
    return plan.apply(source).select(
        *(e.alias(f) for f, e in fields.items()), ok.fill_null(False).alias(_OK)
    )


# ------------------------------------------------------------------ fast tiers per type


def fast_int(expr: pl.Expr, *, plan: ColumnPlan, name: str) -> tuple[pl.Expr, pl.Expr]:
    """(Int64, ok) for canonical integers; where ok, the value is `parse_int`'s.

    Polars' String -> Int64 cast accepts exactly ``[+-]?[0-9]+`` within Int64 (no
    whitespace, no ".0"), a subset of `parse_int`'s grammar with the same value. A null
    input is ok too (null).
    """
    value = plan.add(f"{name}__int", expr.cast(pl.Int64, strict=False))
    return value, value.is_not_null() | expr.is_null()


def fast_money(expr: pl.Expr, *, plan: ColumnPlan, name: str) -> tuple[ParsedMoney, pl.Expr]:
    """`parse_money` fields for canonical amounts, and where they are exact (`ok`).

    Canonical: after removing every comma and one leading "₹", a number that Polars' Float64
    and Decimal(12,2) casts both accept, without exponent, and whose Decimal(12,2) is the
    same number as its Float64 ("1234.50", "1,234.5", "₹3,80.00", "-12", "7.", ".5").
    Then the cleaned text is what `parse_money` would clean it to (no whitespace, symbol or
    code is left) and `parse_money`'s grammar accepts it. The Decimal is exact: it differs
    from the text's exact value by less than a Float64 rounding error (far below half a
    cent), so it is also the ROUND_HALF_UP value; values with an exact third decimal
    ("1.005") or beyond Decimal(12,2) fail the check and go to the exact parser.
    `text` and `is_number` are only meaningful where ok.
    """
    text = plan.add(
        f"{name}__text", expr.str.replace_all(",", "", literal=True).str.strip_prefix("₹")
    )
    value = plan.add(f"{name}__value", text.cast(pl.Float64, strict=False))
    decimal = plan.add(f"{name}__decimal", text.cast(MONEY, strict=False))
    exponent = text.str.contains_any(["e"], ascii_case_insensitive=True)
    ok = plan.add(
        f"{name}__fast", ((decimal.cast(pl.Float64) == value) & ~exponent).fill_null(False)
    )
    parsed = ParsedMoney(text=text, is_number=ok, value=value, decimal=decimal)
    return parsed, ok | expr.is_null()


# ASCII bytes of the canonical timestamp head "YYYY-MM-DD?HH:MM:SS" ('d' a digit, '?' the
# date/time separator 'T' or ' '), and every offset `parse_utc_timestamp` accepts, with its
# value in seconds ("" and Z/z are UTC): 5,811 strings, an exact lookup table.
_TS_HEAD = "dddd-dd-dd?dd:dd:dd"
_DIGIT = (ord("0"), ord("9"))


def _utc_offsets() -> dict[str, int]:
    offsets = {"": 0, "Z": 0, "z": 0}
    for sign, factor in (("+", 1), ("-", -1)):
        for hours in range(24):
            offsets[f"{sign}{hours:02d}"] = factor * hours * 3600
            for minutes in range(60):
                seconds = factor * (hours * 3600 + minutes * 60)
                offsets[f"{sign}{hours:02d}{minutes:02d}"] = seconds
                offsets[f"{sign}{hours:02d}:{minutes:02d}"] = seconds
    return offsets


_UTC_OFFSETS = _utc_offsets()
# As an Enum, the lookup is a cast (one hash probe) and a gather of the seconds.
_UTC_OFFSET_ENUM = pl.Enum(list(_UTC_OFFSETS))
_UTC_OFFSET_SECONDS = pl.Series(list(_UTC_OFFSETS.values()), dtype=pl.Int64)
_MICROS_PER_DIGIT = pl.Series([10**6, 10**5, 10**4, 10**3, 100, 10, 1], dtype=pl.Int64)


_FIRST_YEAR, _LAST_YEAR = 1000, 9999  # the years `parse_utc_timestamp` accepts


@functools.cache
def _month_table() -> tuple[pl.Series, pl.Series]:
    """(days from 1970-01-01 to the first, number of days) of every month of the accepted
    years, indexed by (year - 1000) * 12 + month - 1: a gather instead of calendar
    arithmetic per row."""
    firsts = pl.date_range(
        date(_FIRST_YEAR, 1, 1), date(_LAST_YEAR, 12, 1), "1mo", eager=True
    ).cast(pl.Int32)
    lengths = pl.concat([firsts.diff().slice(1), pl.Series([31], dtype=pl.Int32)])
    return firsts, lengths


def _timestamp_head(expr: pl.Expr, plan: ColumnPlan, name: str) -> tuple[pl.Expr, pl.Expr]:
    """(microseconds of the local date and time in the first 19 bytes, ok) for `_TS_HEAD`.

    Read as raw bytes, checked and decoded with small-integer arithmetic: no regex and no
    per-field string slices; the calendar comes from `_month_table`.
    """
    head = plan.add(
        f"{name}__head",
        expr.cast(pl.Binary)
        .bin.slice(0, len(_TS_HEAD))
        .bin.reinterpret(dtype=pl.Array(pl.UInt8, len(_TS_HEAD))),
    )
    byte = [plan.add(f"{name}__b{i}", head.arr.get(i)) for i in range(len(_TS_HEAD))]

    def number(start: int, width: int) -> pl.Expr:
        value = byte[start].cast(pl.Int32) - ord("0")
        for i in range(start + 1, start + width):
            value = value * 10 + (byte[i].cast(pl.Int32) - ord("0"))
        return value

    def byte_ok(i: int, template: str) -> pl.Expr:
        if template == "d":
            return byte[i].is_between(*_DIGIT)
        if template == "?":
            return (byte[i] == ord("T")) | (byte[i] == ord(" "))
        return byte[i] == ord(template)

    shape_ok = pl.all_horizontal(byte_ok(i, c) for i, c in enumerate(_TS_HEAD))
    year, month = number(0, 4), number(5, 2)
    day = plan.add(f"{name}__day", number(8, 2))
    hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
    month_index = plan.add(
        f"{name}__month",
        pl.when(shape_ok & (year >= _FIRST_YEAR) & month.is_between(1, 12)).then(
            (year - _FIRST_YEAR) * 12 + month - 1
        ),
    )
    clock = plan.add(
        f"{name}__clock",
        pl.when((hour < 24) & (minute < 60) & (second < 60)).then(
            hour * 3600 + minute * 60 + second
        ),
    )
    firsts, lengths = _month_table()
    first = plan.add(f"{name}__first", pl.lit(firsts).gather(month_index))
    ok = (day >= 1) & (day <= pl.lit(lengths).gather(month_index)) & clock.is_not_null()
    days = first + day - 1
    return (days.cast(pl.Int64) * 86_400 + clock) * 1_000_000, ok


def _timestamp_suffix(rest: pl.Expr, plan: ColumnPlan, name: str) -> tuple[pl.Expr, pl.Expr]:
    """(microseconds to add to the head, ok) for what follows it: ".123456+05:30", "Z" ...

    The fraction (1-6 digits) adds, the offset (looked up in `_UTC_OFFSETS`) subtracts.
    """
    zone = plan.add(f"{name}__zone", rest.str.strip_chars_start(".0123456789"))
    offset = plan.add(
        f"{name}__offset",
        pl.lit(_UTC_OFFSET_SECONDS).gather(zone.cast(_UTC_OFFSET_ENUM, strict=False).to_physical()),
    )
    fraction_len = plan.add(  # "." and the digits, 0 when there is no fraction
        f"{name}__fraction_len",
        rest.str.len_bytes().cast(pl.Int64) - zone.str.len_bytes().cast(pl.Int64),
    )
    digits = fraction_len - 1
    fraction = plan.add(  # the digits (at most 6) scaled to microseconds
        f"{name}__fraction",
        rest.str.slice(1, digits.clip(0, 6)).cast(pl.Int64, strict=False)
        * pl.lit(_MICROS_PER_DIGIT).gather(digits.clip(0, 6)),
    )
    fraction_ok = (fraction_len == 0) | (
        digits.is_between(1, 6) & rest.str.starts_with(".") & fraction.is_not_null()
    )
    micros = pl.when(fraction_len > 0).then(fraction).otherwise(0) - offset * 1_000_000
    return micros, fraction_ok & offset.is_not_null()


def _timestamp_rest(expr: pl.Expr) -> pl.Expr:
    return expr.str.slice(len(_TS_HEAD))


def fast_utc_timestamp(expr: pl.Expr, *, plan: ColumnPlan, name: str) -> tuple[pl.Expr, pl.Expr]:
    """(Datetime("us", "UTC"), ok) for canonical timestamps; where ok, `parse_utc_timestamp`'s.

    Canonical: `_TS_HEAD`, then an optional fraction of 1-6 digits, then an offset of
    `_UTC_OFFSETS` — i.e. every form `parse_utc_timestamp` accepts except date-only values,
    surrounding whitespace and fractions beyond microseconds.
    """
    head, head_ok = _timestamp_head(expr, plan, name)
    rest = plan.add(f"{name}__rest", _timestamp_rest(expr))
    suffix, suffix_ok = _timestamp_suffix(rest, plan, name)
    return _timestamp_result(expr, head + suffix, head_ok & suffix_ok, plan, name)


def _timestamp_result(
    expr: pl.Expr, micros: pl.Expr, ok: pl.Expr, plan: ColumnPlan, name: str
) -> tuple[pl.Expr, pl.Expr]:
    """(the timestamp where ok, else null; ok, a null input included)."""
    ok = plan.add(f"{name}__fast", ok.fill_null(False))
    return pl.when(ok).then(micros).cast(UTC_TS), ok | expr.is_null()


@dataclass(frozen=True)
class _SuffixTable:
    """`_timestamp_suffix` of the suffixes that repeat in a sample (a lookup table)."""

    enum: pl.Enum  # the suffixes
    micros: pl.Series  # per suffix: microseconds to add to the head
    ok: pl.Series  # per suffix: whether it is valid

    @classmethod
    def of(cls, sample: pl.Series) -> _SuffixTable | None:
        """The table of the suffixes seen more than once in `sample`, when they make up at
        least half of it; else None."""
        suffixes = sample.to_frame("__rest").select(_timestamp_rest(pl.col("__rest")))
        counts = suffixes.to_series().drop_nulls().value_counts(name="__n")
        counts = counts.filter(pl.col("__n") > 1)
        if counts.get_column("__n").sum() * 2 < len(sample):
            return None
        keys = counts.get_column("__rest").sort()
        plan = ColumnPlan()
        micros, ok = _timestamp_suffix(pl.col("__rest"), plan, "__rest")
        table = plan.apply(keys.to_frame().lazy()).select(micros=micros, ok=ok.fill_null(False))
        table = table.collect()
        return cls(pl.Enum(keys), table.get_column("micros"), table.get_column("ok"))

    def lookup(self, expr: pl.Expr, plan: ColumnPlan, name: str) -> tuple[pl.Expr, pl.Expr]:
        """(microseconds, ok) of the suffix of `expr`; not ok when not in the table."""
        suffix = _timestamp_rest(expr).cast(self.enum, strict=False)
        position = plan.add(f"{name}__suffix", suffix.to_physical())
        return pl.lit(self.micros).gather(position), pl.lit(self.ok).gather(position)


def fast_utc_timestamp_for(sample: pl.Series) -> ValueTier | None:
    """A `fast_utc_timestamp` specialised to a column whose suffixes repeat, or None.

    The text after the head ("Z", "+05:30", ".000000+00:00" ...) usually takes a handful
    of values in a partition (random fractions such as ".123456+00:00" aside). Those seen
    more than once in `sample` are parsed once, here, and looked up per row: one hash probe
    instead of the suffix's string operations. Rows with another suffix are not ok: they
    fall through to `fast_utc_timestamp`. (The head is cheaper to decode from its bytes
    than to look up: its date and clock parts would need two more string slices.)
    """
    table = _SuffixTable.of(sample)
    if table is None:
        return None

    def fast(expr: pl.Expr, *, plan: ColumnPlan, name: str) -> tuple[pl.Expr, pl.Expr]:
        head, head_ok = _timestamp_head(expr, plan, name)
        suffix, suffix_ok = table.lookup(expr, plan, name)
        return _timestamp_result(expr, head + suffix, head_ok & suffix_ok, plan, name)

    return fast
