"""Benchmark: PostgreSQL and landing-zone sources — throughput and peak memory.

    .venv/bin/python benchmarks/bench_sources.py                 # defaults below
    BENCH_PG_ROWS=200000 BENCH_LANDING_LINES=1000000 .venv/bin/python benchmarks/bench_sources.py

PostgreSQL (127.0.0.1:5432, a temporary database created and dropped here): ~BENCH_PG_ROWS
demo order rows (`generate_orders`, the messy shape) are loaded with COPY into
``public.orders`` (text columns, ``updated_at timestamptz`` indexed) — untimed. Timed:
`PostgresSource.extract_orders` for the day (defaults: 1 h sub-windows, 5 min overlap,
batches of 50 000 rows cut from each sub-window's COPY), batches consumed and dropped,
as a raw asset streaming them would.

Landing: CSV files of BENCH_LANDING_SMALL_LINES and BENCH_LANDING_LINES data lines (and
the same as NDJSON) read with ``chunk_rows`` = BENCH_LANDING_CHUNK_ROWS; the peak memory
must stay flat as the file grows (bounded by the chunk, not by the file).

Each measurement runs in a fresh child process and reports its peak RSS (VmHWM, which
counts Polars' Rust allocations too — tracemalloc would not, and ru_maxrss would inherit
the parent's peak across fork+exec) above the RSS right after imports.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

DAY = date(2026, 3, 17)
ADMIN_DSN = os.environ.get(
    "BENCH_PG_ADMIN_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
PG_ROWS = int(os.environ.get("BENCH_PG_ROWS", "200000"))
SMALL_LINES = int(os.environ.get("BENCH_LANDING_SMALL_LINES", "200000"))
LINES = int(os.environ.get("BENCH_LANDING_LINES", "1000000"))
CHUNK_ROWS = int(os.environ.get("BENCH_LANDING_CHUNK_ROWS", "100000"))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------- child


def child(spec: dict) -> dict:
    """One measurement in this (fresh) process; returns rows, seconds and memory."""
    import polars as pl  # noqa: F401  (imported before the baseline)

    from orders_platform.sources.landing import LandingSource
    from orders_platform.sources.postgres import PostgresSource

    if spec["kind"].endswith("_floor"):
        return floor(spec)
    if spec["kind"] == "postgres":
        source = PostgresSource(dsn=spec["dsn"], allow_primary=True)
    else:
        source = LandingSource(root=spec["root"], chunk_rows=spec["chunk_rows"])
    baseline = _status_mb("VmRSS")
    started = time.perf_counter()
    rows = batches = max_batch = 0
    for frame in source.extract_orders(DAY):
        rows += frame.height
        batches += 1
        max_batch = max(max_batch, frame.height)
        del frame
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM")
    stats = source.last_extract_stats()
    return {
        "rows": rows,
        "batches": batches,
        "max_batch": max_batch,
        "seconds": seconds,
        "rss_baseline_mb": baseline,
        "rss_peak_mb": peak,
        "rss_peak_above_baseline_mb": peak - baseline,
        "malformed": stats.get("rows_malformed", 0),
        "sub_windows": stats.get("sub_windows"),
        "statements": stats.get("statements"),
    }


def floor(spec: dict) -> dict:
    """The least any reader pays: the csv module / json.loads over every line, or COPY of
    the table to a discarding sink — no chunking, no checks, no frames."""
    import csv

    baseline = _status_mb("VmRSS")
    started = time.perf_counter()
    rows = 0
    if spec["kind"] == "csv_floor":
        with open(spec["path"], newline="", encoding="utf-8") as f:
            for _ in csv.reader(f):
                rows += 1
        rows -= 1  # the header
    elif spec["kind"] == "ndjson_floor":
        with open(spec["path"], "rb") as f:
            for line in f:
                json.loads(line)
                rows += 1
    else:
        import psycopg2

        class Sink(io.RawIOBase):
            def write(self, b):  # noqa: ANN001
                return len(b)

        with psycopg2.connect(spec["dsn"]) as conn, conn.cursor() as cur:
            cur.copy_expert("COPY public.orders TO STDOUT", Sink())
            rows = cur.rowcount
        conn.close()
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM")
    return {
        "rows": rows,
        "batches": 0,
        "max_batch": 0,
        "seconds": seconds,
        "rss_baseline_mb": baseline,
        "rss_peak_mb": peak,
        "rss_peak_above_baseline_mb": peak - baseline,
    }


def measure(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- setup


def demo_rows(n_rows: int):
    import polars as pl

    from orders_platform.sources.demo import generate_orders

    df = generate_orders(DAY, max(1, round(n_rows / 1.03)))
    return df.head(n_rows) if df.height >= n_rows else pl.concat([df, df.head(n_rows - df.height)])


def load_postgres(dsn: str, n_rows: int) -> int:
    import polars as pl
    import psycopg2

    from orders_platform.transforms.parsing import parse_utc_timestamp
    from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

    df = demo_rows(n_rows)
    # the typed window column: parseable demo timestamps, else a time inside the day
    parsed = parse_utc_timestamp(pl.col("updated_at").str.strip_chars(), trimmed=True)
    fallback = pl.lit(f"{DAY.isoformat()}T12:00:00Z").str.to_datetime(time_zone="UTC")
    df = df.with_columns(
        pl.coalesce(parsed, fallback).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("_updated_ts")
    )
    columns = [c for c in ORDER_SOURCE_COLUMNS if c != "updated_at"]
    body = io.BytesIO()
    df.select(*columns, pl.col("_updated_ts").alias("updated_at")).write_csv(
        body, include_header=False, null_value=""
    )
    body.seek(0)
    ddl = ", ".join(f"{c} text" for c in columns)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE public.orders ({ddl}, updated_at timestamptz)")
        cur.copy_expert(
            f"COPY public.orders ({', '.join(columns)}, updated_at) FROM STDIN WITH (FORMAT csv)",
            body,
        )
        cur.execute("CREATE INDEX ON public.orders (updated_at)")
        cur.execute("ANALYZE public.orders")
        cur.execute("SELECT count(*) FROM public.orders")
        count = cur.fetchone()[0]
    conn.close()
    return count


def write_landing(root: Path, name: str, lines: int, fmt: str) -> Path:
    import polars as pl

    base = demo_rows(min(lines, 200_000))
    day_dir = root / "orders" / f"dt={DAY.isoformat()}"
    day_dir.mkdir(parents=True, exist_ok=True)
    path = day_dir / name
    with path.open("wb") as f:
        written = 0
        first = True
        while written < lines:
            part = base.head(lines - written)
            if fmt == "csv":
                part.write_csv(f, include_header=first, null_value="")
            else:
                part.write_ndjson(f)
            first = False
            written += part.height
    del pl
    return path


# --------------------------------------------------------------------------- main


def _line(label: str, r: dict) -> str:
    return (
        f"  {label:<34} {r['rows']:>9,} rows {r['seconds']:7.2f} s"
        f" {r['rows'] / r['seconds']:>10,.0f} rows/s"
        f"  peak RSS +{r['rss_peak_above_baseline_mb']:6.1f} MB"
        f" (total {r['rss_peak_mb']:6.1f})"
        f"  max batch {r['max_batch']:,}"
    )


def bench_postgres() -> None:
    import psycopg2

    name = f"orders_src_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        parsed = psycopg2.extensions.parse_dsn(ADMIN_DSN)
        parsed["dbname"] = name
        dsn = " ".join(f"{k}={v}" for k, v in parsed.items())
        started = time.perf_counter()
        count = load_postgres(dsn, PG_ROWS)
        print(
            f"PostgreSQL: {count:,} rows loaded with COPY in "
            f"{time.perf_counter() - started:.1f} s (untimed)"
        )
        f = measure({"kind": "pg_floor", "dsn": dsn})
        print(_line("floor: COPY TO STDOUT, discarded", f))
        r = measure({"kind": "postgres", "dsn": dsn})
        print(_line("extract_orders (1 h sub-windows)", r))
        print(f"  = {r['seconds'] / f['seconds']:.1f} x the COPY floor")
        print(
            f"  {r['sub_windows']} sub-windows, {r['statements']} statements, "
            f"{r['batches']} batches"
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def bench_landing() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_landing_") as tmp:
        for fmt, ext in (("csv", "csv"), ("ndjson", "ndjson")):
            results = []
            for lines in (SMALL_LINES, LINES):
                root = Path(tmp) / f"{fmt}_{lines}"
                path = write_landing(root, f"orders.{ext}", lines, fmt)
                f = measure({"kind": f"{fmt}_floor", "path": str(path)})
                r = measure({"kind": "landing", "root": str(root), "chunk_rows": CHUNK_ROWS})
                assert r["rows"] == lines and r["malformed"] == 0, r
                assert f["rows"] == lines, f
                size = path.stat().st_size / 2**20
                print(_line(f"floor: {'csv module' if fmt == 'csv' else 'json.loads'}", f))
                print(_line(f"landing {fmt} {lines:,} lines ({size:,.0f} MB)", r))
                print(f"  = {r['seconds'] / f['seconds']:.1f} x the floor")
                results.append(r)
                path.unlink()
            growth = results[1]["rss_peak_above_baseline_mb"] / max(
                results[0]["rss_peak_above_baseline_mb"], 1e-9
            )
            print(
                f"  {fmt}: file x{LINES / SMALL_LINES:.0f} -> peak memory x{growth:.2f} "
                f"(chunk_rows={CHUNK_ROWS:,})"
            )


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return 0
    print(f"sources benchmark, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    bench_postgres()
    print(f"Landing (chunk_rows={CHUNK_ROWS:,}):")
    bench_landing()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
