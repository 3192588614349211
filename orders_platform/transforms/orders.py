"""Validation and normalisation of raw order change records (SPEC §3), as pure Polars.

`validate_orders` splits a raw frame into the typed, de-duplicated `validated/orders` rows
and the `validated/rejected_orders` dead letters. Every source column is parsed once into a
few typed fields by `parsing.parse_columns` (low-cardinality columns through a dictionary of
their distinct values, the others through an exact fast tier for their canonical shape plus
the full parser for the rest); a reason code per row is derived from those fields.
De-duplication sorts only the keys of the valid rows and gathers the winners once; `detail`
strings are built only for the (few) rejected rows.

Rule decisions beyond the SPEC table (mirrored in `benchmarks/reference_orders.py`):

* Reasons are checked in `REJECT_REASONS` order, then `EXTRA_REJECT_REASONS`
  (`invalid_fee_or_discount`: delivery_fee or discount_amount present but not a number,
  negative, or above MAX_ORDER_AMOUNT). The first match wins.
* A null spelling ("", "NULL", "N/A", "n/a", "-", "none"; any case; surrounding
  whitespace) is null everywhere, before any rule: `order_amount="N/A"` is
  `null_order_amount`, `created_at="-"` is `missing_timestamp`.
* `test_order`: the trimmed, lower-cased status starts with "test_", or the raw notes
  match `(?i)\\btest\\b` ("contest", "testing", "test_run" do not).
* store_id / restaurant_id are optional: null when absent or not an integer.
* `unknown_payment_methods` counts output rows whose payment_method is "unknown" (a null
  method, the literal "unknown", or any value outside PAYMENT_METHODS).
* Duplicates: among the valid rows of one order_id the latest updated_at wins; equal
  updated_at values are resolved by input position (the later row wins). Rejected rows are
  never de-duplicated: every one is a dead letter.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from orders_platform.transforms.parsing import (
    NULL_SPELLING_VARIANTS,
    ColumnParser,
    ColumnPlan,
    FastParser,
    Fields,
    fast_int,
    fast_money,
    fast_utc_timestamp,
    fast_utc_timestamp_for,
    field_name,
    null_if_blank,
    parse_columns,
    parse_int,
    parse_money,
    parse_positive_int,
    parse_utc_timestamp,
    to_utc,
)
from orders_platform.transforms.schema import (
    ALL_REJECT_REASONS,
    LINEAGE_COLUMNS,
    MAX_ORDER_AMOUNT,
    MONEY,
    ORDER_SOURCE_COLUMNS,
    PAYMENT_METHODS,
    REJECTED_ORDERS_SCHEMA,
    UNKNOWN_PAYMENT_METHOD,
    VALID_STATUSES,
    VALIDATED_ORDERS_SCHEMA,
)

TEST_NOTE_PATTERN = r"(?i)\btest\b"
TEST_STATUS_PREFIX = "test_"
TIMESTAMP_COLUMNS: tuple[str, ...] = ("created_at", "updated_at", "delivered_at", "cancelled_at")
MONEY_COLUMNS: tuple[str, ...] = ("order_amount", "delivery_fee", "discount_amount")
TEXT_COLUMNS: tuple[str, ...] = ("cancellation_reason", "promo_code", "notes")
LOWERCASE_COLUMNS: tuple[str, ...] = ("status", "payment_method", "payment_status")
DETAIL_VALUE_MAX_CHARS = 80  # raw values quoted in `detail` are cut after this many chars

_ROW = "__row"
_REASON = "__reason"  # UInt8: 0 = valid, i = ALL_REJECT_REASONS[i - 1]
_CODE = {reason: i for i, reason in enumerate(ALL_REJECT_REASONS, start=1)}
_ZERO = Decimal("0.00")


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of `validate_orders`; rows(raw) = len(valid) + len(rejected) + duplicates."""

    valid: pl.DataFrame  # exactly VALIDATED_ORDERS_SCHEMA, one row per order_id, by order_id
    rejected: pl.DataFrame  # exactly REJECTED_ORDERS_SCHEMA, in input order
    duplicates_collapsed: int  # valid rows dropped because a later updated_at won
    unknown_payment_methods: int  # output rows whose payment_method is "unknown"
    rejected_by_reason: dict[str, int]  # reason -> count; non-zero only, in reason order


# ------------------------------------------------------------------------ column parsers
# Each source column becomes a few fields (`_f(column, field)`):
#   value  the parsed, typed value (null when missing or invalid)
#   blank  the raw value is null or a null spelling (tells "missing" from "invalid")
#   plus   decimal (money), test / valid (status), test (notes).
# `exact` is the rule itself; `fast` (when present) is exact for the canonical shapes only.


def _f(column: str, field: str = "value") -> pl.Expr:
    return pl.col(field_name(column, field))


def _id_parser(*, positive: bool) -> ColumnParser:
    def exact(raw: pl.Expr) -> Fields:
        text = null_if_blank(raw)
        parse = parse_positive_int if positive else parse_int
        return {"value": parse(text, trimmed=True), "blank": text.is_null()}

    def fast(raw: pl.Expr, plan: ColumnPlan, name: str) -> tuple[Fields, pl.Expr]:
        value, ok = fast_int(raw, plan=plan, name=name)
        if positive:
            value = pl.when(value > 0).then(value)
        return {"value": value, "blank": raw.is_null()}, ok

    # (no lookup tier: the Int64 cast is cheaper than a hash lookup)
    return ColumnParser(exact=exact, fast=fast, lookup=False)


def _money_exact(raw: pl.Expr) -> Fields:
    text = null_if_blank(raw)
    money = parse_money(text)
    return {"value": money.value, "decimal": money.decimal, "blank": text.is_null()}


def _money_fast(raw: pl.Expr, plan: ColumnPlan, name: str) -> tuple[Fields, pl.Expr]:
    money, ok = fast_money(raw, plan=plan, name=name)
    return {"value": money.value, "decimal": money.decimal, "blank": raw.is_null()}, ok


def _timestamp_exact(raw: pl.Expr) -> Fields:
    text = null_if_blank(raw)
    return {"value": parse_utc_timestamp(text, trimmed=True), "blank": text.is_null()}


def _timestamp_fields(
    raw: pl.Expr, value: pl.Expr, ok: pl.Expr, plan: ColumnPlan, name: str, *, spellings: bool
) -> tuple[Fields, pl.Expr]:
    """A timestamp fast tier's fields. With `spellings`, the exact null spellings ("NULL",
    "", "n/a" ...; common in optional timestamps) are taken too: they are blank (one hash
    probe), so they need not go on to the exact parser."""
    if not spellings:
        return {"value": value, "blank": raw.is_null()}, ok
    blank = plan.add(f"{name}__blank", raw.is_null() | raw.is_in(NULL_SPELLING_VARIANTS))
    return {"value": value, "blank": blank}, ok | blank


def _timestamp_fast(raw: pl.Expr, plan: ColumnPlan, name: str) -> tuple[Fields, pl.Expr]:
    value, ok = fast_utc_timestamp(raw, plan=plan, name=name)
    return _timestamp_fields(raw, value, ok, plan, name, spellings=True)


def _timestamp_specialised(sample: pl.Series) -> FastParser | None:
    """`fast_utc_timestamp_for` the sample, taking the null spellings if they are common
    in it (in created_at, one hash probe per row would cost more than it saves)."""
    fast = fast_utc_timestamp_for(sample)
    if fast is None:
        return None
    spellings = sample.is_in(NULL_SPELLING_VARIANTS).mean() >= 0.01

    def specialised(raw: pl.Expr, plan: ColumnPlan, name: str) -> tuple[Fields, pl.Expr]:
        value, ok = fast(raw, plan=plan, name=name)
        return _timestamp_fields(raw, value, ok, plan, name, spellings=spellings)

    return specialised


def _lowercase(raw: pl.Expr) -> pl.Expr:
    return null_if_blank(raw).str.to_lowercase()


def _status_exact(raw: pl.Expr) -> Fields:
    status = _lowercase(raw)
    return {
        "value": status,
        "test": status.str.starts_with(TEST_STATUS_PREFIX).fill_null(False),
        "valid": status.is_in(VALID_STATUSES).fill_null(False),
    }


def _payment_method_exact(raw: pl.Expr) -> Fields:
    method = _lowercase(raw)
    known = method.is_in(PAYMENT_METHODS).fill_null(False)
    return {"value": pl.when(known).then(method).otherwise(pl.lit(UNKNOWN_PAYMENT_METHOD))}


def _notes_exact(raw: pl.Expr) -> Fields:
    test = raw.str.contains(TEST_NOTE_PATTERN).fill_null(False)
    return {"value": null_if_blank(raw), "test": test}


_ID = _id_parser(positive=False)
_POSITIVE_ID = _id_parser(positive=True)
_MONEY = ColumnParser(exact=_money_exact, fast=_money_fast)
_TIMESTAMP = ColumnParser(
    exact=_timestamp_exact, fast=_timestamp_fast, specialise=_timestamp_specialised
)
_TEXT = ColumnParser(exact=lambda raw: {"value": null_if_blank(raw)})


def _extracted_at_fast(raw: pl.Expr, plan: ColumnPlan, name: str) -> tuple[Fields, pl.Expr]:
    value, ok = fast_utc_timestamp(raw, plan=plan, name=name)
    return {"value": value}, ok


_EXTRACTED_AT = ColumnParser(  # lineage: parsed like `to_utc` does (no null spellings)
    exact=lambda raw: {"value": parse_utc_timestamp(raw)}, fast=_extracted_at_fast
)

PARSERS: dict[str, ColumnParser] = {
    "order_id": _POSITIVE_ID,
    "customer_id": _POSITIVE_ID,
    "store_id": _ID,
    "restaurant_id": _ID,
    **{c: _MONEY for c in MONEY_COLUMNS},
    "status": ColumnParser(exact=_status_exact),
    "payment_method": ColumnParser(exact=_payment_method_exact),
    "payment_status": ColumnParser(exact=lambda raw: {"value": _lowercase(raw)}),
    **{c: _TIMESTAMP for c in TIMESTAMP_COLUMNS},
    "cancellation_reason": _TEXT,
    "promo_code": _TEXT,
    "notes": ColumnParser(exact=_notes_exact),
}
assert tuple(PARSERS) == ORDER_SOURCE_COLUMNS


# ----------------------------------------------------------------------------- rules


def _first_match(branches: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    (condition, value), *rest = branches
    chain = pl.when(condition).then(value)
    for condition, value in rest:
        chain = chain.when(condition).then(value)
    return chain


def _ts_unparseable(c: str) -> pl.Expr:
    return ~_f(c, "blank") & _f(c).is_null()


def _bad_fee(c: str) -> pl.Expr:
    value = _f(c)
    return ~_f(c, "blank") & (value.is_null() | (value < 0) | (value > MAX_ORDER_AMOUNT))


def _reject_conditions() -> dict[str, pl.Expr]:
    """Each reason's condition (null counts as False), in first-match order."""
    amount = _f("order_amount")
    conditions = {
        "missing_order_id": _f("order_id").is_null(),
        "missing_customer_id": _f("customer_id").is_null(),
        "null_order_amount": _f("order_amount", "blank"),
        "non_numeric_order_amount": amount.is_null(),
        "negative_order_amount": amount < 0,
        "suspiciously_large_amount": amount > MAX_ORDER_AMOUNT,
        "test_order": _f("status", "test") | _f("notes", "test"),
        "invalid_status": ~_f("status", "valid"),
        "missing_timestamp": _f("created_at", "blank") | _f("updated_at", "blank"),
        "unparseable_timestamp": pl.any_horizontal(_ts_unparseable(c) for c in TIMESTAMP_COLUMNS),
        "updated_before_created": _f("updated_at") < _f("created_at"),
        "invalid_fee_or_discount": _bad_fee("delivery_fee") | _bad_fee("discount_amount"),
    }
    assert tuple(conditions) == ALL_REJECT_REASONS
    return conditions


def _is_rejected() -> pl.Expr:
    """Whether any rule rejects the row: cheap boolean algebra, evaluated on every row."""
    return pl.any_horizontal(_reject_conditions().values()).fill_null(False)


def _reason_code() -> pl.Expr:
    """UInt8 code of the first matching reason, 0 when none (evaluated on rejected rows)."""
    return _first_match(
        [
            (condition, pl.lit(_CODE[reason], dtype=pl.UInt8))
            for reason, condition in _reject_conditions().items()
        ]
    ).otherwise(pl.lit(0, dtype=pl.UInt8))


# ------------------------------------------------------------------ rejected: detail text


def _quoted(c: str) -> pl.Expr:
    """`'raw value'` (cut to DETAIL_VALUE_MAX_CHARS chars, then "...") or `null`."""
    value = pl.col(c)
    cut = (
        pl.when(value.str.len_chars() > DETAIL_VALUE_MAX_CHARS)
        .then(value.str.slice(0, DETAIL_VALUE_MAX_CHARS) + "...")
        .otherwise(value)
    )
    return pl.when(value.is_null()).then(pl.lit("null")).otherwise(pl.format("'{}'", cut))


def _fmt(template: str, *columns: str) -> pl.Expr:
    return pl.format(template, *(_quoted(c) for c in columns))


def _money_problem(c: str) -> pl.Expr:
    value = _f(c)
    problem = (
        pl.when(value.is_null())
        .then(pl.lit("is not a number"))
        .when(value < 0)
        .then(pl.lit("is negative"))
        .otherwise(pl.lit(f"exceeds {MAX_ORDER_AMOUNT}"))
    )
    return pl.format(f"{c}={{}} {{}}", _quoted(c), problem)


def _missing_or_invalid_id(c: str) -> pl.Expr:
    return (
        pl.when(_f(c, "blank"))
        .then(_fmt(f"{c}={{}} is missing", c))
        .otherwise(_fmt(f"{c}={{}} is not a positive integer", c))
    )


def _detail() -> pl.Expr:
    details = {
        "missing_order_id": _missing_or_invalid_id("order_id"),
        "missing_customer_id": _missing_or_invalid_id("customer_id"),
        "null_order_amount": _fmt("order_amount={} is missing", "order_amount"),
        "non_numeric_order_amount": _fmt("order_amount={} is not a number", "order_amount"),
        "negative_order_amount": _fmt("order_amount={} is negative", "order_amount"),
        "suspiciously_large_amount": _fmt(
            f"order_amount={{}} exceeds {MAX_ORDER_AMOUNT}", "order_amount"
        ),
        "test_order": pl.when(_f("status", "test"))
        .then(_fmt("status={} marks a test order", "status"))
        .otherwise(_fmt("notes={} mark a test order", "notes")),
        "invalid_status": _fmt("status={} is not a valid status", "status"),
        "missing_timestamp": pl.when(_f("created_at", "blank"))
        .then(_fmt("created_at={} is missing", "created_at"))
        .otherwise(_fmt("updated_at={} is missing", "updated_at")),
        "unparseable_timestamp": _first_match(
            [
                (_ts_unparseable(c), _fmt(f"{c}={{}} is not a valid timestamp", c))
                for c in TIMESTAMP_COLUMNS
            ]
        ),
        "updated_before_created": _fmt(
            "updated_at={} is before created_at={}", "updated_at", "created_at"
        ),
        "invalid_fee_or_discount": pl.when(_bad_fee("delivery_fee"))
        .then(_money_problem("delivery_fee"))
        .otherwise(_money_problem("discount_amount")),
    }
    assert tuple(details) == ALL_REJECT_REASONS
    return _first_match(
        [(pl.col(_REASON) == _CODE[reason], expr) for reason, expr in details.items()]
    )


# ------------------------------------------------------------------------------ outputs


def _valid_exprs() -> dict[str, pl.Expr]:
    """The validated/orders columns but lineage, from the parsed fields."""
    zero = pl.lit(_ZERO, dtype=MONEY)
    exprs = {
        **{c: _f(c) for c in ("order_id", "customer_id", "store_id", "restaurant_id")},
        "order_amount": _f("order_amount", "decimal"),
        "delivery_fee": _f("delivery_fee", "decimal").fill_null(zero),
        "discount_amount": _f("discount_amount", "decimal").fill_null(zero),
        **{c: _f(c) for c in LOWERCASE_COLUMNS},
        **{c: _f(c) for c in TIMESTAMP_COLUMNS},
        **{c: _f(c) for c in TEXT_COLUMNS},
    }
    assert tuple(exprs) == tuple(VALIDATED_ORDERS_SCHEMA)[: -len(LINEAGE_COLUMNS)]
    return {c: e.cast(VALIDATED_ORDERS_SCHEMA[c]).alias(c) for c, e in exprs.items()}


def _raw_frame(raw: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, dict[str, ColumnParser]]:
    """Source columns as strings plus lineage, and the parser of every string column.

    `_extracted_at` given as strings is parsed like the source columns (it is usually one
    value per extraction, so by dictionary); typed, it is converted by `to_utc`.
    """
    lf = raw.lazy()
    schema = lf.collect_schema()
    missing = [c for c in ORDER_SOURCE_COLUMNS if c not in schema]
    if missing:
        raise ValueError(f"raw orders are missing source column(s): {', '.join(missing)}")
    parsers = dict(PARSERS)
    lineage = []
    for column in LINEAGE_COLUMNS:
        if column not in schema:
            lineage.append(pl.lit(None, dtype=REJECTED_ORDERS_SCHEMA[column]).alias(column))
        elif column == "_extracted_at" and schema[column] not in (pl.String, pl.Null):
            lineage.append(to_utc(pl.col(column), schema[column]).alias(column))
        else:
            lineage.append(pl.col(column).cast(pl.String))
            if column == "_extracted_at":
                parsers[column] = _EXTRACTED_AT
    frame = lf.select(*(pl.col(c).cast(pl.String) for c in ORDER_SOURCE_COLUMNS), *lineage)
    return frame.collect(), parsers


def _parse(raw: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(raw strings and typed lineage, every parsed field), row-aligned.

    Kept as two frames: the raw strings are only needed for the rejected rows, and a
    frame mixing differently chunked columns would be rechunked by every `select`.
    """
    frame, parsers = _raw_frame(raw)
    fields = parse_columns(frame, parsers)
    if "_extracted_at" in parsers:
        frame = frame.with_columns(_extracted_at=fields.get_column("_extracted_at:value"))
    return frame, fields


def build_validation_plan(raw: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Raw strings, typed lineage, every parsed field (`column:field`) and `__reason`.

    Useful for debugging a rule (0 = valid, else 1 + the index in ALL_REJECT_REASONS).
    Raises ValueError naming missing source columns.
    """
    frame, fields = _parse(raw)
    return frame.rechunk().hstack(fields).lazy().with_columns(_reason_code().alias(_REASON))


def _rejected_frame(frame: pl.DataFrame, fields: pl.DataFrame, mask: pl.Series) -> pl.DataFrame:
    """Dead letters of the rows where `mask` is set: raw values, reason, detail, lineage."""
    # A filter, not a gather: the raw columns arrive in several chunks, where a gather of
    # a few scattered rows costs about four times a filter.
    return (
        frame.filter(mask)
        .hstack(fields.filter(mask))
        .lazy()
        .with_columns(_reason_code().alias(_REASON))
        .select(
            *(pl.col(c) for c in ORDER_SOURCE_COLUMNS),
            pl.col(_REASON)
            .replace_strict(list(_CODE.values()), list(_CODE), return_dtype=pl.String)
            .alias("reason"),
            _detail().alias("detail"),
            *(pl.col(c) for c in LINEAGE_COLUMNS),
        )
        .collect()
    )


def _latest_per_order(fields: pl.DataFrame, valid_rows: pl.Series) -> tuple[pl.Series, int]:
    """Row numbers of the winning valid rows, in order_id order, and how many lost.

    Latest updated_at per order_id wins; ties go to the later input row. Only the keys of
    the valid rows are sorted, by order_id alone (cheap); the few orders with several rows
    are then ranked by (updated_at, row). The caller gathers the winners once.
    """
    order_id = _f("order_id")
    keys = fields.select(
        order_id.gather(valid_rows), _f("updated_at").gather(valid_rows), valid_rows.alias(_ROW)
    ).sort(order_id, maintain_order=True)
    repeated = order_id.eq_missing(order_id.shift(1)) | order_id.eq_missing(order_id.shift(-1))
    keys = keys.with_columns(repeated.alias("__repeated"))
    ranked = keys.filter("__repeated").sort([order_id, _f("updated_at"), pl.col(_ROW)])
    latest = ranked.filter(order_id.ne_missing(order_id.shift(-1)))
    winners = pl.concat([keys.filter(~pl.col("__repeated")), latest]).sort(order_id)
    return winners.get_column(_ROW), keys.height - winners.height


def validate_orders(raw: pl.DataFrame | pl.LazyFrame) -> ValidationResult:
    """Apply SPEC §3 to raw order rows: typed valid rows, dead letters and counters.

    `raw` must hold the 17 ORDER_SOURCE_COLUMNS (any dtype; each is cast to String) and
    may hold the lineage columns `_source`, `_extracted_at` (string or datetime) and
    `_run_id`, which are passed through (null when absent). Other columns are ignored.
    Raises ValueError naming missing source columns.
    """
    frame, fields = _parse(raw)
    rejected_mask = fields.select(_is_rejected()).to_series()
    with ThreadPoolExecutor(max_workers=1) as pool:  # the dead letters meanwhile
        dead_letters = pool.submit(_rejected_frame, frame, fields, rejected_mask)
        winners, duplicates = _latest_per_order(fields, (~rejected_mask).arg_true())
        valid = fields.select(e.gather(winners) for e in _valid_exprs().values()).hstack(
            frame.select(pl.col(c).gather(winners) for c in LINEAGE_COLUMNS)
        )
        rejected = dead_letters.result()
    by_reason = rejected.group_by("reason").len()
    counts = dict(zip(by_reason["reason"].to_list(), by_reason["len"].to_list(), strict=True))
    return ValidationResult(
        valid=valid,
        rejected=rejected,
        duplicates_collapsed=duplicates,
        unknown_payment_methods=int(
            valid.select((pl.col("payment_method") == UNKNOWN_PAYMENT_METHOD).sum()).item()
        ),
        rejected_by_reason={r: counts[r] for r in ALL_REJECT_REASONS if r in counts},
    )


__all__ = [
    "PARSERS",
    "TIMESTAMP_COLUMNS",
    "ValidationResult",
    "build_validation_plan",
    "validate_orders",
]
