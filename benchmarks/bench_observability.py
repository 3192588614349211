"""Benchmark: what the exporters cost a run (SPEC §10: they never slow a run).

    .venv/bin/python benchmarks/bench_observability.py [ORDERS_PER_DAY]   # default 20 000

One partition of the orders graph (raw -> validated + dead letters -> silver, 3 checks) run
with `dagster.materialize` on a fresh lake and warehouse, best of BENCH_REPEAT (default 3), in
four set-ups measured in the same process:

* ``off``        no exporter configured (the reference)
* ``on``         a real Pushgateway (Debian `prometheus-pushgateway`) and an OpenLineage
  HTTP receiver, both on 127.0.0.1
* ``down``       both configured but nothing listening (connection refused)

Printed: seconds per run and the ratio to ``off``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

from dagster import DagsterInstance  # noqa: E402

from orders_platform.assets.keys import (  # noqa: E402
    RAW_ORDERS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    VALIDATED_ORDERS,
)
from orders_platform_tests.servers.observability import (  # noqa: E402
    free_port,
    lineage_receiver,
    pushgateway,
    pushgateway_binary,
)
from orders_platform_tests.support import OrdersPlatform, materialize_day  # noqa: E402

GRAPH = [RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS, SILVER_ORDERS]


def one_run(orders: int, gateway: str | None, lineage: str | None) -> float:
    for name in [n for n in os.environ if n.startswith("OPENLINEAGE")]:
        del os.environ[name]
    if lineage:
        os.environ["OPENLINEAGE_URL"] = lineage
    overrides = {"ORDERS_PROMETHEUS_PUSHGATEWAY": gateway} if gateway else {}
    with tempfile.TemporaryDirectory() as tmp:
        platform = OrdersPlatform(tmp=Path(tmp), orders_per_day=orders)
        defs = platform.definitions(**overrides)
        with DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            assert materialize_day(defs, "2026-03-17", instance, GRAPH).success
            return time.perf_counter() - started


def main() -> None:
    orders = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    binary = pushgateway_binary()
    if binary is None:
        sys.exit("prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)")
    closed = f"http://127.0.0.1:{free_port()}"
    results: dict[str, float] = {}
    with pushgateway(binary) as gateway, lineage_receiver() as receiver:
        setups = {
            "off": (None, None),
            "on": (gateway.url, receiver.url),
            "down": (closed, closed),
        }
        one_run(orders, None, None)  # warm-up: imports, first DuckDB file
        for name, (gw, ol) in setups.items():
            results[name] = min(one_run(orders, gw, ol) for _ in range(repeat))
    for name, seconds in results.items():
        print(f"{name:>5}: {seconds:6.2f} s per run   x{seconds / results['off']:.2f} vs off")


if __name__ == "__main__":
    main()
