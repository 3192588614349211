"""Benchmark: the fixed cost of a CLI run, split into Dagster's share and ours.

    .venv/bin/python benchmarks/bench_fixed_cost.py [REPEAT]        # default 5

Each measurement is a fresh process, repeated REPEAT times (interleaved, after one
warm-up each); the median wall time and the median CPU time (user + sys of the child)
are printed. CPU time is the steadier number on a shared machine.

* ``import dagster``            — `python -c 'import dagster'` (Dagster's import floor)
* ``import definitions``        — `python -c 'import orders_platform.definitions'`
* ``dagster CLI, trivial job``  — `dagster asset materialize` of a two-asset partitioned
  `Definitions` with nothing in it (Dagster's own CLI, instance and run start-up)
* ``orders CLI run``            — `dagster asset materialize -m orders_platform.definitions
  --select 'raw/orders,validated/orders,validated/rejected_orders,silver/orders'
  --partition D` on a 100-row demo day (in-process executor, the repo's dagster.yaml,
  SQLite instance, lake and DuckDB in a temporary directory)

"ours" is the orders run minus the trivial job: what this project adds to a run.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY = "2026-03-17"
ORDERS_SELECTION = "raw/orders,validated/orders,validated/rejected_orders,silver/orders"
TARGET_S = 2.0

TRIVIAL_DEFS = """
from dagster import DailyPartitionsDefinition, Definitions, asset, in_process_executor

days = DailyPartitionsDefinition(start_date="2026-01-01")


@asset(partitions_def=days)
def first() -> int:
    return 1


@asset(partitions_def=days)
def second(first: int) -> int:
    return first + 1


defs = Definitions(assets=[first, second], executor=in_process_executor)
"""


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def environment(tmp: Path, name: str, extra_path: str | None = None) -> dict[str, str]:
    """A clean environment with its own instance (the repo's dagster.yaml), lake and DuckDB."""
    home = tmp / name / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").symlink_to(REPO_ROOT / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "SNOWFLAKE_"))}
    env.update(
        DAGSTER_HOME=str(home),
        ORDERS_SOURCE="demo",
        ORDERS_DEMO_ORDERS_PER_DAY="100",
        ORDERS_LAKE_ROOT=str(tmp / name / "lake"),
        ORDERS_DUCKDB_PATH=str(tmp / name / "warehouse.duckdb"),
    )
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
    return env


def main() -> int:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_REPEAT", 5))
    python, dagster = str(BIN / "python"), str(BIN / "dagster")
    with tempfile.TemporaryDirectory(prefix="bench-fixed-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "trivial_defs.py").write_text(TRIVIAL_DEFS)
        materialize = [dagster, "asset", "materialize", "--partition", DAY]
        cases = {
            "import dagster": ([python, "-c", "import dagster"], environment(tmp, "a")),
            "import definitions": (
                [python, "-c", "import orders_platform.definitions"],
                environment(tmp, "b"),
            ),
            "dagster CLI, trivial job": (
                [*materialize, "-m", "trivial_defs", "--select", "first,second"],
                environment(tmp, "c", extra_path=str(tmp)),
            ),
            "orders CLI run (100 rows)": (
                [*materialize, "-m", "orders_platform.definitions", "--select", ORDERS_SELECTION],
                environment(tmp, "d"),
            ),
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for cmd, env in cases.values():  # warm-up: .pyc files, the instance's SQLite schema
            run(cmd, env)
        for _ in range(repeat):
            for name, (cmd, env) in cases.items():
                samples[name].append(run(cmd, env))

    medians = {
        name: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s))
        for name, s in samples.items()
    }
    print(f"fixed cost: median of {repeat} fresh processes each, {os.cpu_count()} cores")
    print(f"  {'':28s} {'wall':>8s} {'cpu':>8s}")
    for name, (wall, cpu) in medians.items():
        print(f"  {name:28s} {wall:7.2f}s {cpu:7.2f}s")
    imp_w = medians["import definitions"][0] - medians["import dagster"][0]
    imp_c = medians["import definitions"][1] - medians["import dagster"][1]
    run_w = medians["orders CLI run (100 rows)"][0] - medians["dagster CLI, trivial job"][0]
    run_c = medians["orders CLI run (100 rows)"][1] - medians["dagster CLI, trivial job"][1]
    print(f"  ours in the import            {imp_w:7.2f}s {imp_c:7.2f}s  (definitions - dagster)")
    print(f"  ours in the CLI run           {run_w:7.2f}s {run_c:7.2f}s  (orders - trivial)")
    total = medians["orders CLI run (100 rows)"][0]
    print(
        f"  target: CLI run <= {TARGET_S:.0f} s: {'met' if total <= TARGET_S else 'MISSED'} "
        f"({total:.2f} s, of which Dagster's own trivial job "
        f"{medians['dagster CLI, trivial job'][0]:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
