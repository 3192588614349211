"""Run a pandera model over a frame and describe failures for check metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandera.errors
import pandera.polars as pa
import polars as pl

from orders_platform.observability import counts_metadata, markdown_table

SAMPLE_ROWS = 10


@dataclass(frozen=True)
class GateOutcome:
    passed: bool
    failing_rows: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def run_gate(model: type[pa.DataFrameModel], df: pl.DataFrame) -> GateOutcome:
    try:
        model.validate(df, lazy=True)
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
