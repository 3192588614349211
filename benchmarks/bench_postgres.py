"""Benchmark: the PostgreSQL path end to end — `raw/orders` of a 1 M-row day through the CLI.

    .venv/bin/python benchmarks/bench_postgres.py
    BENCH_PG_ROWS=1000000 BENCH_PG_REPEAT=3 .venv/bin/python benchmarks/bench_postgres.py

A fresh database on 127.0.0.1:5432 (created and dropped here; BENCH_PG_ADMIN_DSN to use
another server) gets two tables of demo order rows in the messy source shape (text
columns, ``updated_at timestamptz`` indexed): ``public.orders`` with BENCH_PG_ROWS rows for
the day and ``public.orders_small`` with 100 — loaded with COPY, untimed. Rows are stored in
``updated_at`` order, as a table of order changes is appended; on a heap whose rows are
shuffled with respect to ``updated_at``, every sub-window's bitmap scan visits most pages
of the day (the source and the old cursor reader alike), where the floor's single
statement scans them once.

Measured in the same run, each BENCH_PG_REPEAT times (the best is used; this machine is
shared, so the ratios are what to read):

* **CLI**: ``dagster asset materialize -m orders_platform.definitions --select raw/orders
  --partition D`` with ``ORDERS_SOURCE=postgres`` (temporary lake and DAGSTER_HOME), on
  the big table and on the small one. The small run is the fixed cost of a run (process
  start, imports, definitions, Dagster's run machinery); **marginal** = big - small.
* **floor**: ``psql -c "\\copy (SELECT col::text, … WHERE updated_at in the window) TO
  STDOUT CSV"`` → ``polars.read_csv`` (all strings) → Parquet write of the same rows: the
  least any reader of these rows into the lake pays.
* **extract only** (in a child process, batches consumed and dropped): the source's
  ``extract_orders`` now (COPY) and, when git has it, the cursor-based source of
  ``BENCH_PG_OLD_REF`` (default: the last commit before COPY), with peak RSS above the
  post-import baseline.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

DAY = date(2026, 3, 17)
ADMIN_DSN = os.environ.get(
    "BENCH_PG_ADMIN_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
ROWS = int(os.environ.get("BENCH_PG_ROWS", "1000000"))
SMALL_ROWS = 100
REPEAT = int(os.environ.get("BENCH_PG_REPEAT", "5"))
OLD_REF = os.environ.get("BENCH_PG_OLD_REF", "9eabdcb")  # the last cursor-based source
OVERLAP = timedelta(minutes=5)
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------- setup


def load_table(dsn: str, table: str, n_rows: int) -> int:
    """`n_rows` demo order rows of DAY (messy text columns, typed updated_at) into `table`."""
    import polars as pl
    import psycopg2

    from orders_platform.sources.demo import generate_orders
    from orders_platform.transforms.parsing import parse_utc_timestamp
    from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

    df = generate_orders(DAY, max(1, round(n_rows / 1.03)))
    while df.height < n_rows:
        df = pl.concat([df, df.head(n_rows - df.height)])
    df = df.head(n_rows)
    # the typed window column: parseable demo timestamps, else a time inside the day
    parsed = parse_utc_timestamp(pl.col("updated_at").str.strip_chars(), trimmed=True)
    fallback = pl.lit(f"{DAY.isoformat()}T12:00:00Z").str.to_datetime(time_zone="UTC")
    df = df.with_columns(
        pl.coalesce(parsed, fallback).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("_updated_ts")
    )
    # stored in updated_at order, as a change log is appended (see the module docstring)
    df = df.sort("_updated_ts", maintain_order=True)
    columns = [c for c in ORDER_SOURCE_COLUMNS if c != "updated_at"]
    body = io.BytesIO()
    df.select(*columns, pl.col("_updated_ts").alias("updated_at")).write_csv(
        body, include_header=False, null_value=""
    )
    body.seek(0)
    ddl = ", ".join(f"{c} text" for c in columns)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} ({ddl}, updated_at timestamptz)")
        cur.copy_expert(
            f"COPY {table} ({', '.join(columns)}, updated_at) FROM STDIN WITH (FORMAT csv)",
            body,
        )
        cur.execute(f"CREATE INDEX ON {table} (updated_at)")
        cur.execute(f"ANALYZE {table}")
        cur.execute(f"SELECT count(*) FROM {table}")
        count = cur.fetchone()[0]
    conn.close()
    return count


def window_bounds() -> tuple[str, str]:
    start = datetime(DAY.year, DAY.month, DAY.day).isoformat() + "+00:00"
    lo = (datetime.fromisoformat(start) - OVERLAP).isoformat()
    hi = (datetime.fromisoformat(start) + timedelta(days=1)).isoformat()
    return lo, hi


def floor_query(table: str) -> str:
    from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

    lo, hi = window_bounds()
    cols = ", ".join(f"{c}::text" for c in ORDER_SOURCE_COLUMNS)
    return f"SELECT {cols} FROM {table} WHERE updated_at >= '{lo}' AND updated_at < '{hi}'"


# --------------------------------------------------------------------------- measurements


def run_floor(dsn: str, table: str, out_dir: Path) -> dict:
    """psql \\copy (SELECT …) TO STDOUT CSV → polars.read_csv (strings) → Parquet."""
    import polars as pl

    from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

    started = time.perf_counter()
    csv = subprocess.run(
        ["psql", "-X", "-q", dsn, "-c", f"\\copy ({floor_query(table)}) TO STDOUT CSV"],
        check=True,
        capture_output=True,
    ).stdout
    copied = time.perf_counter()
    df = pl.read_csv(
        csv, has_header=False, new_columns=list(ORDER_SOURCE_COLUMNS), infer_schema=False
    )
    parsed = time.perf_counter()
    df.write_parquet(out_dir / "floor.parquet")
    done = time.perf_counter()
    return {
        "rows": df.height,
        "seconds": done - started,
        "psql": copied - started,
        "read_csv": parsed - copied,
        "write_parquet": done - parsed,
    }


def run_cli(dsn: str, table: str, tmp: Path) -> dict:
    """`dagster asset materialize … raw/orders` in a fresh DAGSTER_HOME and lake."""
    import polars as pl

    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=tmp))
    home = run_dir / "dagster_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "SNOWFLAKE_"))}
    env.update(
        DAGSTER_HOME=str(home),
        ORDERS_SOURCE="postgres",
        ORDERS_PG_DSN=dsn,
        ORDERS_PG_ALLOW_PRIMARY="true",
        ORDERS_PG_ORDERS_TABLE=table,
        ORDERS_LAKE_ROOT=str(run_dir / "lake"),
        ORDERS_DUCKDB_PATH=str(run_dir / "warehouse.duckdb"),
        ORDERS_INTRADAY="false",  # a closed-day run whatever today is
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "orders_platform.definitions"]
        + ["--select", "raw/orders", "--partition", DAY.isoformat()],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"CLI run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    files = sorted(
        (run_dir / "lake" / "raw" / "orders" / f"dt={DAY.isoformat()}").glob("*.parquet")
    )
    rows = pl.scan_parquet(files).select(pl.len()).collect().item()
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"rows": rows, "seconds": seconds}


def child(spec: dict) -> dict:
    """Extraction alone in this fresh process: batches consumed and dropped."""
    import polars as pl  # noqa: F401  (imported before the baseline)

    if spec["which"] == "old":
        sys.path.insert(0, spec["old_dir"])
        from old_postgres import PostgresSource  # type: ignore[import-not-found]
    else:
        from orders_platform.sources.postgres import PostgresSource

    source = PostgresSource(dsn=spec["dsn"], allow_primary=True, orders_table=spec["table"])
    baseline = _status_mb("VmRSS")
    started = time.perf_counter()
    cpu = time.process_time()
    rows = 0
    for frame in source.extract_orders(DAY):
        rows += frame.height
        del frame
    return {
        "rows": rows,
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "rss_above_baseline_mb": _status_mb("VmHWM") - baseline,
    }


def run_child(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def old_source_dir(tmp: Path) -> Path | None:
    """The cursor-based source of OLD_REF as `old_postgres.py`, if git has it."""
    proc = subprocess.run(
        ["git", "show", f"{OLD_REF}:orders_platform/sources/postgres.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or "cursor(name=" not in proc.stdout:
        return None
    old = tmp / "old_source"
    old.mkdir()
    (old / "old_postgres.py").write_text(proc.stdout)
    return old


# --------------------------------------------------------------------------- main


def best(results: list[dict]) -> dict:
    return min(results, key=lambda r: r["seconds"])


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return 0
    import psycopg2

    load = os.getloadavg()[0]
    print(
        f"PostgreSQL path benchmark, {os.cpu_count()} cores, load average {load:.1f}, "
        f"python {sys.version.split()[0]}, best of {REPEAT}"
    )
    name = f"orders_pg_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        parsed = psycopg2.extensions.parse_dsn(ADMIN_DSN)
        parsed["dbname"] = name
        dsn = " ".join(f"{k}={v}" for k, v in parsed.items())
        started = time.perf_counter()
        big = load_table(dsn, "public.orders", ROWS)
        small = load_table(dsn, "public.orders_small", SMALL_ROWS)
        print(
            f"loaded {big:,} + {small} rows with COPY in {time.perf_counter() - started:.1f} s "
            "(untimed)"
        )
        with tempfile.TemporaryDirectory(prefix="bench_pg_") as tmp_name:
            tmp = Path(tmp_name)
            floors, clis, smalls = [], [], []
            for _ in range(REPEAT):  # interleaved so load drifts hit all three alike
                floors.append(run_floor(dsn, "public.orders", tmp))
                clis.append(run_cli(dsn, "public.orders", tmp))
                smalls.append(run_cli(dsn, "public.orders_small", tmp))
            floor, cli, fixed = best(floors), best(clis), best(smalls)
            rows = floor["rows"]
            with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
                cur.execute(
                    f"SELECT count(*) FROM (SELECT DISTINCT {floor_query('public.orders')[7:]}) d"
                )
                distinct = cur.fetchone()[0]
            conn.close()
            # the source delivers each exact copy once (counted in its stats)
            assert cli["rows"] == distinct, (cli, distinct)
            marginal = cli["seconds"] - fixed["seconds"]

            def line(label: str, seconds: float, n: int = rows) -> str:
                return f"  {label:<58} {seconds:7.2f} s {n / seconds:>12,.0f} rows/s"

            print(
                f"raw/orders of {DAY}: {rows:,} rows in [D - 5 min, D + 1)"
                f" ({rows - distinct:,} exact copies collapsed by the source)"
            )
            print(
                line("floor: psql \\copy CSV -> polars.read_csv -> Parquet", floor["seconds"])
                + f"   (psql {floor['psql']:.2f} + read {floor['read_csv']:.2f}"
                f" + write {floor['write_parquet']:.2f})"
            )
            print(line(f"CLI run, {rows:,}-row day", cli["seconds"]))
            print(
                f"  {'CLI run, 100-row day (fixed cost)':<58} {fixed['seconds']:7.2f} s"
                f" ({fixed['rows']} rows)"
            )
            print(line("marginal = CLI run - fixed cost", marginal))
            # the machine's load drifts between repeats: each repeat's floor, big and small
            # runs are back to back, so the ratio inside one repeat is the fair one
            ratios = sorted(
                (c["seconds"] - s_["seconds"]) / f_["seconds"]
                for f_, c, s_ in zip(floors, clis, smalls, strict=True)
            )
            median = ratios[len(ratios) // 2]
            print(
                f"  marginal / floor = {median:.2f}x, median of the {len(ratios)} repeats"
                f" ({', '.join(f'{r:.2f}' for r in ratios)}); best runs"
                f" {marginal / floor['seconds']:.2f}x (goal <= 2x)"
            )
            print(
                "  runs (s): floor "
                + ", ".join(f"{r['seconds']:.2f}" for r in floors)
                + "; CLI "
                + ", ".join(f"{r['seconds']:.2f}" for r in clis)
                + "; fixed "
                + ", ".join(f"{r['seconds']:.2f}" for r in smalls)
            )

            print("extract_orders alone (child process, batches dropped):")
            old_dir = old_source_dir(tmp)
            news, olds = [], []
            for _ in range(min(REPEAT, 3) if old_dir else 1):
                news.append(run_child({"which": "new", "dsn": dsn, "table": "public.orders"}))
                if old_dir:
                    olds.append(
                        run_child(
                            {
                                "which": "old",
                                "dsn": dsn,
                                "table": "public.orders",
                                "old_dir": str(old_dir),
                            }
                        )
                    )
            for label, results in (("COPY (this source)", news), (f"cursor ({OLD_REF})", olds)):
                if not results:
                    continue
                r = best(results)
                print(
                    line(label, r["seconds"], r["rows"])
                    + f"   client CPU {r['cpu']:.2f} s,"
                    + f" peak RSS +{r['rss_above_baseline_mb']:.0f} MB"
                )
            if olds:
                speedup = best(olds)["seconds"] / best(news)["seconds"]
                print(f"  COPY vs cursor: {speedup:.2f}x faster")
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
