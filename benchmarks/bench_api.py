"""Benchmark: ApiSource extracting a day from the fake REST API over real HTTP.

    .venv/bin/python benchmarks/bench_api.py [ROWS]        # default 200 000 rows, page 5 000

The server is the test helper `orders_platform_tests/servers/fake_api.py` (loaded by path)
serving ``generate_orders(2026-03-17, n)`` (n chosen so the day has ~ROWS rows), run in a
child process so that the client's time and memory are measured alone (and the two do not
share a GIL). The client streams the pages (cursor pagination, ``page_size`` 5 000, no
client-side rate limit: the default 10 req/s would cap it at 50 000 rows/s by design) and
only counts the rows, as a consumer that writes each batch would.

Scenarios: a clean run, and the same with 2 % of the requests answered 503 (retried with
full-jitter backoff; the rows must still be exactly the day's). Each scenario extracts the
day twice, each time in a fresh client process (imports and first-use costs paid before
measuring): the timed pass reports rows/s (wall and per client CPU second), pages, retries
and the peak RSS growth during the extract (Linux: VmHWM, reset through
/proc/self/clear_refs, minus the RSS before; else getrusage maxrss growth); a second pass
under tracemalloc reports the Python heap peak (Polars' own buffers are not traced).
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import resource
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

DAY = date(2026, 3, 17)
PAGE_SIZE = 5_000
FAKE_API_PATH = REPO_ROOT / "orders_platform_tests" / "servers" / "fake_api.py"


def load_fake_api():
    spec = importlib.util.spec_from_file_location("bench_fake_api", FAKE_API_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def serve(n_orders: int, fault_rate: float, conn) -> None:
    """Child process: serve the day until the parent says stop."""
    from orders_platform.sources.demo import generate_orders

    fake = load_fake_api()
    rows = generate_orders(DAY, n_orders).to_dicts()
    api = fake.FakeApi(orders={DAY: rows}, total="total")
    if fault_rate:
        api.fail_rate(fake.Fault.http(503), rate=fault_rate, seed=17)
    with api:
        conn.send((api.base_url, len(rows)))
        conn.recv()  # stop
        conn.send(len(api.data_requests()))


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def extract(base_url: str, traced: bool) -> dict:
    """In a fresh child process: warm up, then stream the day and measure."""
    from orders_platform.sources.api import ApiSource

    warm_up()
    source = ApiSource(
        base_url=base_url,
        page_size=PAGE_SIZE,
        requests_per_second=0,
        backoff_max_seconds=1.0,
        max_attempts=10,
    )
    proc = _reset_peak_rss()
    rss_before = _status_kb("VmRSS") if proc else 0
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if traced:
        tracemalloc.start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    rows = 0
    for batch in source.extract_orders(DAY):
        rows += batch.height
    elapsed = time.perf_counter() - started
    result = {
        "rows": rows,
        "seconds": elapsed,
        "cpu_seconds": time.process_time() - cpu_started,
        "stats": source.last_extract_stats(),
    }
    if traced:
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    if proc:
        result["rss_growth_mb"] = (_status_kb("VmHWM") - rss_before) / 1024
    else:
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before
        result["rss_growth_mb"] = grown / 1024
    return result


def warm_up() -> None:
    """Pay one-off costs (imports, the SSL context, Polars code paths) before measuring."""
    from orders_platform.sources.api import _parse_json, _ssl_context, rows_to_frame
    from orders_platform.sources.demo import generate_orders
    from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

    _ssl_context()
    rows = _parse_json(generate_orders(DAY, 2_000).write_json().encode())
    rows_to_frame(rows, ORDER_SOURCE_COLUMNS, may_hold_bools=False)


def scenario(name: str, n_orders: int, fault_rate: float) -> None:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve, args=(n_orders, fault_rate, child), daemon=True)
    server.start()
    try:
        base_url, expected = parent.recv()
        # Each measurement in a fresh process, so the peaks are the extract's own.
        results = []
        for traced_run in (False, True):
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                results.append(pool.submit(extract, base_url, traced_run).result())
        clean, traced = results
    finally:
        parent.send("stop")
        parent.recv()
        server.join(timeout=10)
    assert clean["rows"] == expected and traced["rows"] == expected, (clean, traced, expected)
    stats = clean["stats"]
    print(
        f"{name:<16} {clean['rows']:>9,} rows in {clean['seconds']:6.2f} s = "
        f"{clean['rows'] / clean['seconds']:>9,.0f} rows/s (client CPU {clean['cpu_seconds']:.2f} s"
        f" = {clean['rows'] / clean['cpu_seconds']:,.0f} rows/CPU-s) | pages {stats['pages']} "
        f"requests {stats['requests']} retries {stats['retries']} "
        f"(waited {stats['retry_wait_seconds']:.2f} s) | peak RSS growth "
        f"{clean['rss_growth_mb']:6.1f} MiB | tracemalloc peak "
        f"{traced['tracemalloc_peak_mb']:6.1f} MiB (traced run {traced['seconds']:.2f} s, "
        f"retries {traced['stats']['retries']})"
    )


def main() -> None:
    from orders_platform.sources.demo import expected_row_count

    target = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    n = round(target / 1.03)
    print(
        f"ApiSource benchmark: ~{expected_row_count(n):,} rows (demo n={n:,}), "
        f"page_size {PAGE_SIZE:,}, cursor pagination, server in a child process"
    )
    scenario("clean", n, 0.0)
    scenario("2 % 503s", n, 0.02)


if __name__ == "__main__":
    main()
