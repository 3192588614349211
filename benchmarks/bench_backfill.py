"""Benchmark: a UI backfill of the whole graph over N days on the embedded default.

    .venv/bin/python benchmarks/bench_backfill.py [DAYS]        # default 30
    BENCH_ORDERS_PER_DAY=2000 BENCH_EVENTS_PER_DAY=10000 \
        .venv/bin/python benchmarks/bench_backfill.py 7

Starts `dagster dev` (SQLite instance, DuckDB warehouse, Parquet lake under a temporary
directory; the repo's dagster.yaml), then launches through the webserver's GraphQL API the
call the UI's *Materialize all -> Launch backfill* makes:

* ``reference`` — a backfill of 1 day (the fixed cost: daemon ticks, run start-up);
* ``backfill``  — a backfill of DAYS days starting the day after.

It prints wall time, runs, raw rows (orders + events) per second, the per-day cost of the
long backfill against the 1-day one, and the peak resident memory of the largest process
(sampled every 0.5 s: the lake assets run the whole range in one process).
Default volumes are the demo's defaults (20 000 orders and 100 000 events a day).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from orders_platform.ops.backfill import (  # noqa: E402
    launch_backfill,
    partition_range,
    wait_for_backfill,
)
from orders_platform_tests.servers.dagster_dev import PLATFORM_ASSETS, DagsterDev  # noqa: E402

FIRST_DAY = date(2026, 2, 1)
ALL_ASSETS = PLATFORM_ASSETS
TIMEOUT_S = 3 * 3600


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory(threading.Thread):
    """The largest resident set of any process of the server's group, sampled."""

    def __init__(self, server: DagsterDev):
        super().__init__(daemon=True)
        self.server, self.peak, self.stopped = server, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for pid in self.server.process_ids():
                self.peak = max(self.peak, rss_bytes(pid))

    def take(self) -> int:
        peak, self.peak = self.peak, 0
        return peak


def raw_rows(lake: Path, days: list[str]) -> int:
    import polars as pl

    paths = [
        lake / key / f"dt={d}" / "part-0.parquet"
        for key in ("raw/orders", "raw/events")
        for d in days
    ]
    return sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in paths)


def backfill(server: DagsterDev, days: list[str], memory: PeakMemory, label: str) -> float:
    memory.take()
    started = time.monotonic()
    backfill_id = launch_backfill(server.url, days, title=f"bench {label}")
    final = wait_for_backfill(server.url, backfill_id, TIMEOUT_S, poll_s=2.0)
    wall = time.monotonic() - started
    if not final["succeeded"]:
        raise SystemExit(
            f"{label} backfill {final['status']}: {final['failed_runs']}\n{final['url']}"
        )
    rows = raw_rows(server.lake, days)
    peak = memory.take()
    print(
        f"{label:<10} {len(days):>3} days  {final['num_runs']:>3} runs  {wall:8.1f} s  "
        f"{rows:>11,} raw rows  {rows / wall:>9,.0f} rows/s  peak RSS {peak / 2**30:5.2f} GiB"
    )
    return wall


def main() -> None:
    n_days = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    settings = {
        "ORDERS_DEMO_ORDERS_PER_DAY": os.environ.get("BENCH_ORDERS_PER_DAY", "20000"),
        "ORDERS_DEMO_EVENTS_PER_DAY": os.environ.get("BENCH_EVENTS_PER_DAY", "100000"),
    }
    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as tmp:
        server = DagsterDev(Path(tmp), settings=settings)
        server.start()
        try:
            server.wait_ready(ALL_ASSETS)
            memory = PeakMemory(server)
            memory.start()
            print(
                f"orders/day {settings['ORDERS_DEMO_ORDERS_PER_DAY']}, "
                f"events/day {settings['ORDERS_DEMO_EVENTS_PER_DAY']}, {os.cpu_count()} cores"
            )
            one = backfill(server, [FIRST_DAY.isoformat()], memory, "reference")
            start = FIRST_DAY + timedelta(days=3)  # clear of the reference's sessions window
            days = partition_range(start, start + timedelta(days=n_days - 1))
            many = backfill(server, days, memory, "backfill")
            print(
                f"per day: {many / n_days:.1f} s in the {n_days}-day backfill vs {one:.1f} s "
                f"for a 1-day backfill ({one * n_days / many:.1f}x cheaper per day)"
            )
            memory.stopped.set()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
