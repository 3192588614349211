"""Run a quality gate over a frame and describe failures for check metadata.

A gate evaluates the model's pandera-free twin (`contracts.py`) in one Polars pass; only a
frame that fails it goes through the pandera model itself (imported then), whose failure
cases make the report. A passing run therefore never imports pandera.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from dagster import MetadataValue

from orders_platform.checks.contracts import CONTRACTS, Contract
from orders_platform.observability import counts_metadata, markdown_table

SAMPLE_ROWS = 10


@dataclass(frozen=True)
class GateOutcome:
    passed: bool
    failing_rows: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def _contract(model: Contract | type) -> Contract:
    """A contract, or the contract of a pandera model class (by its name)."""
    return model if isinstance(model, Contract) else CONTRACTS[model.__name__]


def run_gate(model: Contract | type, df: pl.DataFrame) -> GateOutcome:
    """Gate `df` on a contract (or a pandera model of `schemas.py`, via its contract)."""
    contract = _contract(model)
    if contract.passes(df):
        return GateOutcome(passed=True, metadata={"failing_rows": 0, "rows_checked": df.height})
    return _pandera_outcome(contract, df)


def _pandera_outcome(contract: Contract, df: pl.DataFrame) -> GateOutcome:
    """The pandera model's verdict and failure report (the model is the authority)."""
    import pandera.errors

    from orders_platform.checks import schemas

    try:
        getattr(schemas, contract.model).validate(df, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases: pl.DataFrame = exc.failure_cases
        failing_rows = cases.get_column("index").drop_nulls().n_unique()
        by_check = (
            cases.with_columns(
                pl.concat_str(
                    [pl.col("column").fill_null("<frame>"), pl.col("check")], separator=": "
                ).alias("rule")
            )
            .group_by("rule")
            .len()
        )
        sample_idx = cases.get_column("index").drop_nulls().unique().sort().head(SAMPLE_ROWS)
        sample = df.with_row_index("_row").filter(pl.col("_row").is_in(sample_idx.implode()))
        return GateOutcome(
            passed=False,
            failing_rows=failing_rows,
            metadata={
                "failing_rows": failing_rows,
                "rows_checked": df.height,
                "failures_by_rule": counts_metadata(dict(by_check.iter_rows())),
                "failure_cases": markdown_table(cases, rows=SAMPLE_ROWS),
                "sample_failing_rows": markdown_table(sample, rows=SAMPLE_ROWS),
            },
        )
    return GateOutcome(passed=True, metadata={"failing_rows": 0, "rows_checked": df.height})


def run_gate_by_partition(
    model: Contract | type, frames: Mapping[str, pl.DataFrame]
) -> GateOutcome:
    """Validate each partition on its own and combine the outcomes.

    A multi-day run must not validate the days concatenated: frame-wide rules such as
    "order_id is unique" hold per partition only (a late update puts the same order in
    two days, and silver keeps the newer one).
    """
    outcomes = {key: run_gate(model, df) for key, df in frames.items()}
    if len(outcomes) == 1:
        return next(iter(outcomes.values()))
    failed = {key: o for key, o in outcomes.items() if not o.passed}
    rows_checked = sum(o.metadata.get("rows_checked", 0) for o in outcomes.values())
    if not failed:
        return GateOutcome(passed=True, metadata={"failing_rows": 0, "rows_checked": rows_checked})
    by_rule: Counter[str] = Counter()
    for outcome in failed.values():
        by_rule.update(outcome.metadata["failures_by_rule"].data)
    first_key, first = next(iter(failed.items()))
    failing_rows = sum(o.failing_rows for o in failed.values())
    return GateOutcome(
        passed=False,
        failing_rows=failing_rows,
        metadata={
            "failing_rows": failing_rows,
            "rows_checked": rows_checked,
            "failing_partitions": MetadataValue.json(
                {key: o.failing_rows for key, o in failed.items()}
            ),
            "failures_by_rule": counts_metadata(dict(by_rule)),
            "failure_cases": first.metadata["failure_cases"],
            "sample_failing_rows": first.metadata["sample_failing_rows"],
            "sample_partition": first_key,
        },
    )
