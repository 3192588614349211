"""The pandera-free gate contracts (checks/contracts.py) against the pandera models.

The models in checks/schemas.py are the declared contract; gates evaluate their twins and
run pandera only on failure. These tests keep the twins honest: same rules listed, and a
frame breaking any single rule fails both (while good frames pass both).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from orders_platform.checks import contracts, schemas
from orders_platform.checks.contracts import Contract
from orders_platform.checks.gates import run_gate, run_gate_by_partition
from orders_platform.sources.demo import generate_orders
from orders_platform.transforms.enrich import enrich_orders
from orders_platform.transforms.orders import validate_orders

MODELS = {name: getattr(schemas, name) for name in contracts.CONTRACTS}


@pytest.mark.parametrize("name", sorted(contracts.CONTRACTS))
def test_contract_lists_exactly_the_rules_of_its_model(name: str) -> None:
    contract = contracts.CONTRACTS[name]
    schema = MODELS[name].to_schema()
    assert (schema.strict, schema.coerce, schema.unique) == (False, False, None)
    assert list(contract.columns) == list(schema.columns)
    for column_name, column in schema.columns.items():
        mine = contract.columns[column_name]
        assert mine.dtype == column.dtype.type, column_name
        assert (mine.nullable, mine.unique) == (column.nullable, column.unique), column_name
        theirs = [(c.name, *c.statistics.values()) for c in column.checks]
        assert [(c, list(a) if isinstance(a, tuple) else a) for c, a in mine.checks] == theirs
    assert [(c.name, c.error) for c in contract.frame_checks] == [
        (c.name, c.error) for c in schema.checks
    ]


@pytest.fixture(scope="module")
def silver() -> pl.DataFrame:
    result = validate_orders(generate_orders(date(2026, 3, 17), 400))
    return enrich_orders(result.valid, datetime(2026, 3, 18, tzinfo=UTC))


@pytest.fixture(scope="module")
def sessions() -> pl.DataFrame:
    start = datetime(2026, 3, 17, 10, tzinfo=UTC)
    return pl.DataFrame(
        {
            "session_id": ["u1@1", "u2@2", "u3@3"],
            "user_id": ["u1", "u2", "u3"],
            "session_start": [start, start, start + timedelta(hours=1)],
            "session_end": [start + timedelta(seconds=90), start, start + timedelta(hours=2)],
            "session_date": [date(2026, 3, 17)] * 3,
            "duration_seconds": [90.0, 0.0, 3600.0],
            "event_count": [3, 1, 5],
            "first_event_type": ["page_view", "purchase", "search"],
            "last_event_type": ["add_to_cart", "purchase", "page_view"],
            "converted": [False, True, False],
        },
        schema_overrides={"session_start": pl.Datetime("us", "UTC")}
        | {"session_end": pl.Datetime("us", "UTC")},
    )


def _set_first(df: pl.DataFrame, column: str, value: pl.Expr) -> pl.DataFrame:
    first = pl.int_range(pl.len()) == 0
    dtype = df.schema[column]
    return df.with_columns(
        pl.when(first).then(value.cast(dtype)).otherwise(pl.col(column)).alias(column)
    )


def _bad_value(check: str, argument: object, dtype: pl.DataType) -> pl.Expr:
    if check == "greater_than":
        value = argument
    elif check == "greater_than_or_equal_to":
        value = argument - 1
    elif check == "less_than_or_equal_to":
        value = argument + 1
    elif check in ("isin", "str_matches"):
        return pl.lit("not-allowed")
    else:  # pragma: no cover - a new kind of check needs a violating value here
        raise AssertionError(f"no violating value for {check}")
    if isinstance(dtype, pl.Decimal):
        return pl.lit(Decimal(value))
    return pl.lit(value)


FRAME_BREAKERS = {
    "updated_not_before_created": ("updated_at", pl.col("created_at") - timedelta(seconds=1)),
    "total_is_exact": ("total_value", pl.col("total_value") + Decimal("0.01")),
    "order_date_from_created": ("order_date", pl.col("order_date") + timedelta(days=1)),
    "cancellation_type_only_when_cancelled": (
        "cancellation_type",
        pl.when(pl.col("status") == "cancelled").then(None).otherwise(pl.lit("customer")),
    ),
    "start_not_after_end": ("session_start", pl.col("session_end") + timedelta(seconds=1)),
    "duration_is_end_minus_start": ("duration_seconds", pl.col("duration_seconds") + 1),
    "date_of_start": ("session_date", pl.col("session_date") + timedelta(days=1)),
    "purchase_means_converted": ("converted", pl.lit(False)),
}


def _broken_frames(contract: Contract, good: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    """One frame per rule of the contract, breaking that rule in its first row."""
    for name, column in contract.columns.items():
        yield f"{name} missing", good.drop(name)
        other = pl.Categorical if column.dtype == pl.String else pl.String
        yield f"{name} dtype", good.with_columns(pl.col(name).cast(other))
        if not column.nullable:
            yield f"{name} null", _set_first(good, name, pl.lit(None))
            if column.dtype.is_float():
                yield f"{name} NaN", _set_first(good, name, pl.lit(float("nan")))
        if column.unique:
            yield f"{name} duplicate", _set_first(good, name, pl.col(name).get(1))
        for check, argument in column.checks:
            bad = _bad_value(check, argument, column.dtype)
            yield f"{name} {check}", _set_first(good, name, bad)
    for check in contract.frame_checks:
        column, value = FRAME_BREAKERS[check.name]
        if check.name == "purchase_means_converted":
            good = good.with_columns(first_event_type=pl.lit("purchase"))
        yield check.name, _set_first(good, column, value)


def _pandera_passes(name: str, df: pl.DataFrame) -> bool:
    import pandera.errors

    try:
        MODELS[name].validate(df, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError):
        return False
    return True


@pytest.mark.parametrize("name", sorted(contracts.CONTRACTS))
def test_every_broken_rule_fails_both_and_good_frames_pass_both(
    name: str, silver: pl.DataFrame, sessions: pl.DataFrame
) -> None:
    contract = contracts.CONTRACTS[name]
    good = sessions if name == "Sessions" else silver
    if name == "ValidatedOrders":
        good = good.select(list(contract.columns))
    assert contract.passes(good) and _pandera_passes(name, good)
    assert contract.passes(good.head(0)) and _pandera_passes(name, good.head(0))
    broken = list(_broken_frames(contract, good))
    assert len(broken) >= 3 * len(contract.columns)
    for rule, frame in broken:
        assert not contract.passes(frame), rule
        assert not _pandera_passes(name, frame), rule


def test_failing_gate_reports_pandera_failure_cases(silver: pl.DataFrame) -> None:
    bad = _set_first(silver, "order_hour", pl.lit(24))
    outcome = run_gate(contracts.SILVER_ORDERS, bad)
    assert not outcome.passed and outcome.failing_rows == 1
    assert "order_hour: less_than_or_equal_to(23)" in outcome.metadata["failures_by_rule"].data
    # A pandera model class is accepted too (it gates through its contract).
    assert run_gate(schemas.SilverOrders, silver).passed
    both = run_gate_by_partition(contracts.SILVER_ORDERS, {"a": silver, "b": bad})
    assert not both.passed and both.metadata["failing_partitions"].data == {"b": 1}
