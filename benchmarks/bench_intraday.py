"""Benchmark: an intraday tick of the open day from PostgreSQL (SPEC §10).

    .venv/bin/python benchmarks/bench_intraday.py            # 0.1 M and 1 M rows held
    BENCH_HELD=100000,1000000 BENCH_INCREMENT=10000 .venv/bin/python benchmarks/bench_intraday.py

For each size: a temporary PostgreSQL database (127.0.0.1:5432) holding today's demo change
records (`generate_orders`, updated_at = the instant each change happened; messy text
elsewhere) up to 20 minutes ago, a temporary lake, DuckDB warehouse and DAGSTER_HOME.

1. *first tick* (reference, in process, clock set to 20 minutes ago): the day so far, all
   `held` rows, read and written — what a tick would cost if it re-read the day.
2. `BENCH_INCREMENT` more change records (new orders and later changes of held ones) land
   with updated_at in the last 20 minutes.
3. *tick*: ``dagster asset materialize --select '*silver/orders,validated/rejected_orders'
   --partition <today>`` — the CLI form, wall clock, process start-up and definitions load
   included. Step durations come from the run's events.
4. *empty tick*: the same command again (only the overlap to read): the fixed cost plus
   what grows with the rows already held.

Printed per size: wall times, rows read from the source, the source's own seconds, and per
step seconds; then ratios: the tick at 1 M held vs 0.1 M held (what grows with the day),
and the source read of the tick vs the first tick (what grows with the increment).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

ADMIN_DSN = os.environ.get(
    "BENCH_PG_ADMIN_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
HELD = [int(x) for x in os.environ.get("BENCH_HELD", "100000,1000000").split(",")]
INCREMENT = int(os.environ.get("BENCH_INCREMENT", "10000"))
LAG = timedelta(minutes=20)
SELECT = "*silver/orders,validated/rejected_orders"


def _load(dsn: str, held: int, setup_at: datetime, now: datetime) -> tuple[int, int]:
    """Today's change records into public.orders: `held` before `setup_at`, then returns
    the increment rows (in [setup_at, now - 1 min)) to insert later, as CSV text."""
    import polars as pl
    import psycopg2

    from orders_platform.sources.demo import UPDATE_TIME_COLUMN, generate_orders
    from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

    today = now.date()
    probe = generate_orders(today, 20_000, with_update_time=True)
    cutoff = int(setup_at.timestamp() * 1_000_000)
    share = max(probe.filter(pl.col(UPDATE_TIME_COLUMN) < cutoff).height / probe.height, 0.01)
    n = int(held / share * 1.05) + 1
    rows = generate_orders(today, min(n, 20_000_000), with_update_time=True)
    at = pl.from_epoch(UPDATE_TIME_COLUMN, time_unit="us").dt.replace_time_zone("UTC")
    rows = rows.with_columns(at.alias("updated_at")).drop(UPDATE_TIME_COLUMN)
    before = rows.filter(pl.col("updated_at") < setup_at).head(held)
    later = rows.filter(pl.col("updated_at").is_between(setup_at, now - timedelta(minutes=1),
                                                        closed="left"))  # fmt: skip
    later = later.sample(min(INCREMENT, later.height), seed=1)
    cols = ", ".join(ORDER_SOURCE_COLUMNS)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE public.orders ("
            + ", ".join(
                f"{c} {'timestamptz' if c == 'updated_at' else 'text'}"
                for c in ORDER_SOURCE_COLUMNS
            )  # fmt: skip
            + ")"
        )
        cur.execute("CREATE INDEX ON public.orders (updated_at)")
        for frame in (before,):
            buf = io.BytesIO()
            frame.select(ORDER_SOURCE_COLUMNS).write_csv(buf, null_value="\\N")
            buf.seek(0)
            cur.copy_expert(f"COPY public.orders ({cols}) FROM STDIN WITH (FORMAT csv, "
                            "HEADER true, NULL '\\N')", buf)  # fmt: skip
        cur.execute("ANALYZE public.orders")
    conn.close()
    _load.increment = later.select(ORDER_SOURCE_COLUMNS)  # type: ignore[attr-defined]
    return before.height, later.height


def _insert_increment(dsn: str) -> None:
    import psycopg2

    from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

    buf = io.BytesIO()
    _load.increment.write_csv(buf, null_value="\\N")  # type: ignore[attr-defined]
    buf.seek(0)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.copy_expert(
            f"COPY public.orders ({', '.join(ORDER_SOURCE_COLUMNS)}) FROM STDIN WITH "
            "(FORMAT csv, HEADER true, NULL '\\N')",
            buf,
        )
    conn.close()


def _steps(home: Path) -> tuple[dict[str, float], dict]:
    """Step seconds and the raw extraction metadata of the newest run in `home`."""
    from dagster import DagsterEventType, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)
    with DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        steps = {
            e.step_key: e.dagster_event.event_specific_data.duration_ms / 1000
            for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)
        }
        extraction = {}
        for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            mat = e.dagster_event.event_specific_data.materialization
            if mat.asset_key.to_user_string() == "raw/orders":
                extraction = mat.metadata["extraction"].value
    return steps, extraction


def _cli_tick(env: dict[str, str], today: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m",
         "orders_platform.definitions", "--select", SELECT, "--partition", today],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"tick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def _first_tick(env: dict[str, str], today: str, setup_at: datetime) -> float:
    code = (
        "from datetime import date, datetime\n"
        "from dagster import DagsterInstance\n"
        "from orders_platform.definitions import defs\n"
        "from orders_platform_tests.integration.intraday_support import tick\n"
        "with DagsterInstance.get() as instance:\n"
        f"    tick(defs, instance, date.fromisoformat({today!r}), "
        f"datetime.fromisoformat({setup_at.isoformat()!r}))\n"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"first tick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def measure(held: int) -> dict:
    import psycopg2

    now = datetime.now(UTC).replace(microsecond=0)
    setup_at = now - LAG
    if setup_at.date() != now.date() or setup_at.hour == 0 and setup_at.minute < 30:
        raise SystemExit("run this benchmark at least 50 minutes after midnight UTC")
    today = now.date().isoformat()
    name = f"bench_intraday_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    user = psycopg2.extensions.parse_dsn(ADMIN_DSN)["user"]
    dsn = f"host=127.0.0.1 port=5432 user={user} dbname={name}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-intraday-"))
    try:
        held_rows, increment_rows = _load(dsn, held, setup_at, now)
        home = tmp / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "DAGSTER_"))},
            "DAGSTER_HOME": str(home),
            "ORDERS_SOURCE": "postgres",
            "ORDERS_PG_DSN": dsn,
            "ORDERS_PG_ALLOW_PRIMARY": "true",
            "ORDERS_LAKE_ROOT": str(tmp / "lake"),
            "ORDERS_DUCKDB_PATH": str(tmp / "wh.duckdb"),
            "PYTHONPATH": str(REPO_ROOT),
        }
        first = _first_tick(env, today, setup_at)
        first_steps, first_ext = _steps(home)
        _insert_increment(dsn)
        tick = _cli_tick(env, today)
        steps, ext = _steps(home)
        empty = _cli_tick(env, today)
        empty_steps, empty_ext = _steps(home)
        return {
            "held": held_rows,
            "increment": increment_rows,
            "first_tick_s": first,
            "first_source_s": first_ext.get("seconds"),
            "first_rows": first_ext.get("rows_extracted"),
            "tick_s": tick,
            "tick_rows": ext.get("rows_extracted"),
            "tick_overlap_rows": ext.get("rows_in_overlap"),
            "tick_source_s": ext.get("seconds"),
            "tick_steps": steps,
            "empty_tick_s": empty,
            "empty_rows": empty_ext.get("rows_extracted"),
            "empty_steps": empty_steps,
            "first_steps": first_steps,
        }
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    results = [measure(held) for held in HELD]
    steps = ["raw__orders", "validated_orders", "checks", "silver__orders"]
    for r in results:
        for key in ("tick_steps", "empty_steps", "first_steps"):
            r[key]["checks"] = sum(
                v for k, v in r[key].items() if k.startswith("validated__orders_")
            )
    print(f"load average {os.getloadavg()[0]:.1f}; increment {INCREMENT} change records\n")
    header = (
        "| rows held | first tick (whole day so far) | CLI tick | rows read | source s | "
        + " | ".join(f"{s} s" for s in steps)
        + " | empty CLI tick |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in results:
        cells = [f"{r['tick_steps'].get(s, float('nan')):.2f}" for s in steps]
        print(
            f"| {r['held']:,} | {r['first_tick_s']:.1f} s ({r['first_rows']:,} rows, source "
            f"{r['first_source_s']:.2f} s) | **{r['tick_s']:.1f} s** | {r['tick_rows']:,} "
            f"({r['tick_overlap_rows']:,} in the overlap) | "
            f"{r['tick_source_s']:.2f} | {' | '.join(cells)} | {r['empty_tick_s']:.1f} s "
            f"({r['empty_rows']:,} rows) |"
        )
    small, large = results[0], results[-1]
    print()
    if large is not small:
        growth = large["held"] / small["held"]
        print(
            f"held x{growth:.0f}: CLI tick x{large['tick_s'] / small['tick_s']:.2f}, "
            f"empty tick x{large['empty_tick_s'] / small['empty_tick_s']:.2f}, "
            f"tick source read x{large['tick_source_s'] / small['tick_source_s']:.2f}"
        )
    for r in results:
        print(
            f"{r['held']:,} held: the tick read {r['tick_rows'] / r['first_rows']:.3f} of the "
            f"rows of a whole-day read in {r['tick_source_s'] / r['first_source_s']:.3f} of its "
            f"source time; the tick took {r['tick_s'] / r['first_tick_s']:.2f}x the first tick"
        )


if __name__ == "__main__":
    main()
