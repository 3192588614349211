"""Benchmark: the platform against the row-by-row batch script it replaces, same file.

    .venv/bin/python benchmarks/bench_batch_script.py [N]        # N demo orders, default 1 000 000

One landing CSV (`generate_orders(2026-03-17, N)`: N orders plus ~3 % duplicates and late
updates, ~3 % bad rows; writing it is not timed), loaded into `silver.orders` twice:

* ``batch script`` — the shape teams write before a platform: `csv.DictReader`, per-row
  validation + enrichment in Python with `Decimal`/`datetime`/`re` (the row-by-row
  reference of the same rules, `benchmarks/reference_orders.py`), the silver rows written
  to a staging CSV with `csv.writer`, then one bulk `COPY` + `MERGE` into DuckDB;
* ``platform``     — `dagster asset materialize` of raw/orders, validated/orders,
  validated/rejected_orders and silver/orders for the day (ORDERS_SOURCE=landing,
  in-process executor, fresh SQLite instance, lake and DuckDB in temporary directories):
  end to end, Dagster's start-up and the lake writes included.

Both `silver.orders` tables must hold the same rows and values (every column but the
load-time ones: ingested_at, _source, _run_id); then the speed ratio is printed.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

from reference_orders import reference_enrich, reference_validate  # noqa: E402

from orders_platform.sources.demo import generate_orders  # noqa: E402
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS  # noqa: E402

DAY = date(2026, 3, 17)
SELECTION = "raw/orders,validated/orders,validated/rejected_orders,silver/orders"
LOAD_TIME_COLUMNS = ("ingested_at", "_source", "_run_id")
TARGET_RATIO = 10.0

# The batch script's own DDL, as its author would write it.
SILVER_DDL = """
CREATE TABLE IF NOT EXISTS silver.orders (
    order_id BIGINT PRIMARY KEY, customer_id BIGINT, store_id BIGINT, restaurant_id BIGINT,
    order_amount DECIMAL(12,2), delivery_fee DECIMAL(12,2), discount_amount DECIMAL(12,2),
    status VARCHAR, payment_method VARCHAR, payment_status VARCHAR,
    created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, delivered_at TIMESTAMPTZ,
    cancelled_at TIMESTAMPTZ, cancellation_reason VARCHAR, promo_code VARCHAR, notes VARCHAR,
    _source VARCHAR, _run_id VARCHAR, total_value DECIMAL(12,2), order_tier VARCHAR,
    order_date DATE, order_hour INTEGER, order_month VARCHAR, delivery_minutes DOUBLE,
    cancellation_type VARCHAR, has_promo BOOLEAN, ingested_at TIMESTAMPTZ
)
"""
SILVER_COLUMNS = [
    line.split()[0]
    for part in SILVER_DDL.split("(", 1)[1].rsplit(")", 1)[0].split(",")
    for line in [part.strip()]
    if line and not line[0].isdigit()
]


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def batch_script(csv_path: Path, db_path: Path, work: Path) -> int:
    """Row by row: read, validate, enrich; then one bulk load and MERGE. Returns rows read."""
    ingested_at = datetime.now(UTC)
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = [
            {**{c: row.get(c) for c in ORDER_SOURCE_COLUMNS}, "_source": "batch"}
            for row in csv.DictReader(fh)
        ]
    valid, _rejected, _duplicates = reference_validate(rows)
    staging = work / "silver_staging.csv"
    with staging.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(SILVER_COLUMNS)
        for row in valid:
            silver = reference_enrich(row, ingested_at)
            silver.update(_source="batch", _run_id=None)
            writer.writerow([_csv_value(silver[c]) for c in SILVER_COLUMNS])
    con = duckdb.connect(str(db_path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS silver")
        con.execute(SILVER_DDL)
        con.execute(
            "CREATE TEMP TABLE staging AS SELECT * FROM silver.orders LIMIT 0; "
            f"COPY staging FROM '{staging}' (HEADER, NULLSTR '')"
        )
        con.execute(
            "MERGE INTO silver.orders AS t USING staging AS s ON t.order_id = s.order_id "
            "WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE "
            "WHEN NOT MATCHED THEN INSERT"
        )
    finally:
        con.close()
    return len(rows)


def platform(landing: Path, work: Path) -> Path:
    """The orders graph for the day through the Dagster CLI; returns the DuckDB path."""
    home = work / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(REPO_ROOT / "dagster.yaml")
    db_path = work / "warehouse.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "SNOWFLAKE_"))}
    env.update(
        DAGSTER_HOME=str(home),
        ORDERS_SOURCE="landing",
        ORDERS_LANDING_DIR=str(landing),
        ORDERS_LAKE_ROOT=str(work / "lake"),
        ORDERS_DUCKDB_PATH=str(db_path),
    )
    cmd = [
        str(Path(sys.executable).parent / "dagster"),
        *("asset", "materialize", "-m", "orders_platform.definitions"),
        *("--select", SELECTION, "--partition", DAY.isoformat()),
    ]
    done = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"platform run failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return db_path


def silver_table(db_path: Path) -> pl.DataFrame:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        table = con.sql("SELECT * FROM silver.orders ORDER BY order_id").pl()
    finally:
        con.close()
    return table.drop(LOAD_TIME_COLUMNS).select(sorted(set(table.columns) - {*LOAD_TIME_COLUMNS}))


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_ORDERS", 1_000_000))
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        landing = tmp / "landing"
        day_dir = landing / "orders" / f"dt={DAY.isoformat()}"
        day_dir.mkdir(parents=True)
        csv_path = day_dir / "orders.csv"
        generate_orders(DAY, n).write_csv(csv_path)
        size_mb = csv_path.stat().st_size / 1e6

        (tmp / "script").mkdir()
        started = time.perf_counter()
        rows = batch_script(csv_path, tmp / "script" / "warehouse.duckdb", tmp / "script")
        t_script = time.perf_counter() - started

        (tmp / "platform").mkdir()
        started = time.perf_counter()
        db_path = platform(landing, tmp / "platform")
        t_platform = time.perf_counter() - started

        expected = silver_table(tmp / "script" / "warehouse.duckdb")
        got = silver_table(db_path)
        if expected.schema != got.schema:
            raise SystemExit(f"silver.orders schemas differ:\n{expected.schema}\n{got.schema}")
        if not got.equals(expected):
            diff = got.join(expected, on=got.columns, how="anti")
            raise SystemExit(f"silver.orders differ ({diff.height} rows), e.g.:\n{diff.head(3)}")

    ratio = t_script / t_platform
    cores = os.cpu_count()
    print(f"batch script vs platform: {rows:,} raw rows ({size_mb:.0f} MB CSV), {cores} cores")
    print(f"  row-by-row batch script    {t_script:7.2f} s  {rows / t_script:10,.0f} rows/s")
    print(f"  platform (dagster CLI)     {t_platform:7.2f} s  {rows / t_platform:10,.0f} rows/s")
    print(f"  silver.orders identical: {got.height:,} rows, {got.width} columns compared")
    print(
        f"  platform is {ratio:.1f}x faster (target >= {TARGET_RATIO:.0f}x: "
        f"{'met' if ratio >= TARGET_RATIO else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
