"""Validation and normalisation of raw order change records (SPEC §3), as pure Polars.

`validate_orders` splits a raw frame into the typed, de-duplicated `validated/orders` rows
and the `validated/rejected_orders` dead letters. One lazy plan, collected once, parses
every column once (intermediate values are staged temporary columns, dropped after their
last use, see `parsing.ColumnPlan`) and yields the typed output columns plus a reason code
per row. De-duplication sorts only the keys of the valid rows and gathers the winners once;
`detail` strings are built only for the (few) rejected rows, by re-parsing just those.

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

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from orders_platform.transforms.parsing import (
    ColumnPlan,
    null_if_blank,
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


# Names of the planned columns derived from source column `c`.
def _n(c: str) -> str:  # trimmed, null spellings -> null (String)
    return f"__n_{c}"


def _p(c: str) -> str:  # parsed / typed
    return f"__p_{c}"


def _value(c: str) -> pl.Expr:  # Float64 of a money column
    return pl.col(f"{_p(c)}__value")


def _decimal(c: str) -> pl.Expr:  # Decimal(12,2) of a money column
    return pl.col(f"{_p(c)}__decimal")


def _first_match(branches: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    (condition, value), *rest = branches
    chain = pl.when(condition).then(value)
    for condition, value in rest:
        chain = chain.when(condition).then(value)
    return chain


def _lineage_exprs(schema: pl.Schema) -> list[pl.Expr]:
    exprs = []
    for column in LINEAGE_COLUMNS:
        if column not in schema:
            exprs.append(pl.lit(None, dtype=REJECTED_ORDERS_SCHEMA[column]).alias(column))
        elif column == "_extracted_at":
            exprs.append(to_utc(pl.col(column), schema[column]).alias(column))
        else:
            exprs.append(pl.col(column).cast(pl.String).alias(column))
    return exprs


def _ts_unparseable(c: str) -> pl.Expr:
    return pl.col(_n(c)).is_not_null() & pl.col(_p(c)).is_null()


def _bad_fee(c: str) -> pl.Expr:
    value = _value(c)
    return pl.col(_n(c)).is_not_null() & (
        value.is_null() | (value < 0) | (value > MAX_ORDER_AMOUNT)
    )


def _reason_code() -> pl.Expr:
    amount = _value("order_amount")
    status = pl.col(_p("status"))
    conditions = {
        "missing_order_id": pl.col(_p("order_id")).is_null(),
        "missing_customer_id": pl.col(_p("customer_id")).is_null(),
        "null_order_amount": pl.col(_n("order_amount")).is_null(),
        "non_numeric_order_amount": amount.is_null(),
        "negative_order_amount": amount < 0,
        "suspiciously_large_amount": amount > MAX_ORDER_AMOUNT,
        "test_order": status.str.starts_with(TEST_STATUS_PREFIX) | pl.col("__test_note"),
        "invalid_status": ~status.is_in(VALID_STATUSES).fill_null(False),
        "missing_timestamp": pl.col(_n("created_at")).is_null()
        | pl.col(_n("updated_at")).is_null(),
        "unparseable_timestamp": pl.any_horizontal(_ts_unparseable(c) for c in TIMESTAMP_COLUMNS),
        "updated_before_created": pl.col(_p("updated_at")) < pl.col(_p("created_at")),
        "invalid_fee_or_discount": _bad_fee("delivery_fee") | _bad_fee("discount_amount"),
    }
    assert tuple(conditions) == ALL_REJECT_REASONS
    return _first_match(
        [(cond, pl.lit(_CODE[reason], dtype=pl.UInt8)) for reason, cond in conditions.items()]
    ).otherwise(pl.lit(0, dtype=pl.UInt8))


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
    value = _value(c)
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
        pl.when(pl.col(_n(c)).is_null())
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
        "test_order": pl.when(pl.col(_p("status")).str.starts_with(TEST_STATUS_PREFIX))
        .then(_fmt("status={} marks a test order", "status"))
        .otherwise(_fmt("notes={} mark a test order", "notes")),
        "invalid_status": _fmt("status={} is not a valid status", "status"),
        "missing_timestamp": pl.when(pl.col(_n("created_at")).is_null())
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


def _out(c: str) -> str:  # typed output column of validated/orders
    return f"__o_{c}"


def _valid_exprs() -> dict[str, pl.Expr]:
    payment_method = pl.col(_p("payment_method"))
    zero = pl.lit(_ZERO, dtype=MONEY)
    exprs = {
        "order_id": pl.col(_p("order_id")),
        "customer_id": pl.col(_p("customer_id")),
        "store_id": pl.col(_p("store_id")),
        "restaurant_id": pl.col(_p("restaurant_id")),
        "order_amount": _decimal("order_amount"),
        "delivery_fee": _decimal("delivery_fee").fill_null(zero),
        "discount_amount": _decimal("discount_amount").fill_null(zero),
        "status": pl.col(_p("status")),
        "payment_method": pl.when(payment_method.is_in(PAYMENT_METHODS))
        .then(payment_method)
        .otherwise(pl.lit(UNKNOWN_PAYMENT_METHOD)),
        "payment_status": pl.col(_p("payment_status")),
        **{c: pl.col(_p(c)) for c in TIMESTAMP_COLUMNS},
        **{c: pl.col(_n(c)) for c in TEXT_COLUMNS},
    }
    return {c: e.cast(VALIDATED_ORDERS_SCHEMA[c]) for c, e in exprs.items()}


_OUTPUT_COLUMNS = tuple(c for c in VALIDATED_ORDERS_SCHEMA if c not in LINEAGE_COLUMNS)


def _parse_plan(*, outputs: bool) -> ColumnPlan:
    """Every derived column; with `outputs`, also the typed validated/orders columns."""
    plan = ColumnPlan()
    for c in ORDER_SOURCE_COLUMNS:
        null_if_blank(pl.col(c), plan=plan, name=_n(c))
    plan.add("__test_note", pl.col("notes").str.contains(TEST_NOTE_PATTERN).fill_null(False))
    for c in ("order_id", "customer_id"):
        parse_positive_int(pl.col(_n(c)), trimmed=True, plan=plan, name=_p(c))
    for c in ("store_id", "restaurant_id"):
        plan.add(_p(c), parse_int(pl.col(_n(c)), trimmed=True))
    for c in MONEY_COLUMNS:
        parse_money(pl.col(_n(c)), plan=plan, name=_p(c))
    for c in LOWERCASE_COLUMNS:
        plan.add(_p(c), pl.col(_n(c)).str.to_lowercase())
    for c in TIMESTAMP_COLUMNS:
        parse_utc_timestamp(pl.col(_n(c)), trimmed=True, plan=plan, name=_p(c))
    plan.add(_REASON, _reason_code())
    if outputs:
        exprs = _valid_exprs()
        assert tuple(exprs) == _OUTPUT_COLUMNS
        for c, expr in exprs.items():
            plan.add(_out(c), expr)
    return plan


def _raw_frame(raw: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Source columns as strings, lineage normalised, plus the input position `__row`."""
    lf = raw.lazy()
    schema = lf.collect_schema()
    missing = [c for c in ORDER_SOURCE_COLUMNS if c not in schema]
    if missing:
        raise ValueError(f"raw orders are missing source column(s): {', '.join(missing)}")
    return lf.select(
        *(pl.col(c).cast(pl.String) for c in ORDER_SOURCE_COLUMNS), *_lineage_exprs(schema)
    ).with_row_index(_ROW)


def build_validation_plan(raw: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Raw strings, lineage, `__row`, every parsed column and `__reason` (0 = valid).

    Useful for debugging a rule; `validate_orders` uses a leaner variant of this plan.
    Raises ValueError naming missing source columns.
    """
    return _parse_plan(outputs=False).apply(_raw_frame(raw))


def _rejected_frame(rejected_raw: pl.DataFrame) -> pl.DataFrame:
    """Dead letters from the (few) rejected raw rows: re-parse them to build `detail`."""
    return (
        _parse_plan(outputs=False)
        .apply(rejected_raw.lazy())
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


def validate_orders(raw: pl.DataFrame | pl.LazyFrame) -> ValidationResult:
    """Apply SPEC §3 to raw order rows: typed valid rows, dead letters and counters.

    `raw` must hold the 17 ORDER_SOURCE_COLUMNS (any dtype; each is cast to String) and
    may hold the lineage columns `_source`, `_extracted_at` (string or datetime) and
    `_run_id`, which are passed through (null when absent). Other columns are ignored.
    Raises ValueError naming missing source columns.
    """
    outputs = [_out(c) for c in _OUTPUT_COLUMNS]
    keep = [*ORDER_SOURCE_COLUMNS, *LINEAGE_COLUMNS, _ROW, _REASON, *outputs]
    parsed = _parse_plan(outputs=True).apply(_raw_frame(raw), keep=keep).select(keep).collect()

    is_valid = pl.col(_REASON) == 0
    # Latest updated_at per order_id wins; ties go to the later input row. Sort only the
    # keys of the valid rows, then gather the winning rows once, already in order_id order.
    keys = (
        parsed.lazy()
        .filter(is_valid)
        .select(_out("order_id"), _out("updated_at"), _ROW)
        .sort([_out("order_id"), _out("updated_at"), _ROW])
        .collect()
    )
    order_id = pl.col(_out("order_id"))
    winners = keys.filter(order_id.ne_missing(order_id.shift(-1))).get_column(_ROW)
    valid = parsed.select(*(pl.col(_out(c)).alias(c) for c in _OUTPUT_COLUMNS), *LINEAGE_COLUMNS)[
        winners
    ].select(pl.col(c).cast(t) for c, t in VALIDATED_ORDERS_SCHEMA.items())
    rejected = _rejected_frame(
        parsed.lazy().filter(~is_valid).select(*ORDER_SOURCE_COLUMNS, *LINEAGE_COLUMNS).collect()
    )
    by_reason = rejected.group_by("reason").len()
    counts = dict(zip(by_reason["reason"].to_list(), by_reason["len"].to_list(), strict=True))
    return ValidationResult(
        valid=valid,
        rejected=rejected,
        duplicates_collapsed=keys.height - valid.height,
        unknown_payment_methods=int(
            valid.select((pl.col("payment_method") == UNKNOWN_PAYMENT_METHOD).sum()).item()
        ),
        rejected_by_reason={r: counts[r] for r in ALL_REJECT_REASONS if r in counts},
    )


__all__ = [
    "TIMESTAMP_COLUMNS",
    "ValidationResult",
    "build_validation_plan",
    "validate_orders",
]
