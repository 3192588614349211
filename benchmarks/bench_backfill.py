"""Benchmark: click-to-done in the UI for the whole graph on the embedded default.

    .venv/bin/python benchmarks/bench_backfill.py [DAYS]        # default 30
    BENCH_ORDERS_PER_DAY=2000 BENCH_EVENTS_PER_DAY=10000 \
        .venv/bin/python benchmarks/bench_backfill.py 7

Starts `dagster dev` (SQLite instance, DuckDB warehouse, Parquet lake under a temporary
directory; the repo's dagster.yaml) and sends, through the webserver's GraphQL API, what
the UI sends:

* ``one day``  — *Materialize all* with one day picked: ONE run of the whole graph
  (``launchPipelineExecution`` of the asset job with the partition tag); the reference;
* ``3 days``   — *Materialize all* over a 3-day range: *Launch backfill*;
* ``DAYS days``— the same over DAYS days.

For each it prints click -> last run success (the goals: one day <= 30 s, 3 days <= 40 s,
30 days <= 120 s) and when the backfill page says completed, then a timeline per run read
from the instance's event log: queued -> launched -> process up (code loaded)
-> first step -> last step -> success, in seconds after the click. The gaps say where the
time goes: the backfill daemon evaluates backfills every 30 s (a constant of Dagster's
daemon, not a setting), and each run pays a process start and a code load.
Also: raw rows (orders + events) per second, the per-day cost against the one-day run, and
the peak resident memory of the largest process (sampled every 0.5 s).
Default volumes are the demo's defaults (20 000 orders and 100 000 events a day).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from orders_platform.ops.backfill import (  # noqa: E402
    _graphql,
    launch_backfill,
    partition_range,
    wait_for_backfill,
)
from orders_platform_tests.servers.dagster_dev import PLATFORM_ASSETS, DagsterDev  # noqa: E402

FIRST_DAY = date(2026, 2, 1)
ALL_ASSETS = PLATFORM_ASSETS
TIMEOUT_S = 3 * 3600
GOALS_S = {"one day": 30.0, "3 days": 40.0, "30 days": 120.0}
ASSET_JOB = "__ASSET_JOB"

LAUNCH_RUN = """
mutation Launch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}
"""
REPOSITORY = """
query { repositoriesOrError { ... on RepositoryConnection {
  nodes { name location { name } } } } }
"""


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


# ------------------------------------------------------------------------ the timeline

MILESTONES = [  # (label, Dagster event type): first occurrence in the run's event log
    ("queued", "RUN_ENQUEUED"),
    ("launched", "RUN_STARTING"),
    ("code loaded", "RUN_START"),
    ("1st step", "STEP_START"),
]
ENDINGS = [("last step", "STEP_SUCCESS"), ("success", "RUN_SUCCESS"), ("failure", "RUN_FAILURE")]


@dataclass
class RunTimeline:
    run_id: str
    label: str
    at: dict[str, float]  # milestone -> seconds after the click

    @property
    def end(self) -> float:
        return max(self.at.values(), default=0.0)


def timelines(home: Path, run_ids: list[str], clicked: float) -> list[RunTimeline]:
    """Per run, when each milestone happened (seconds after `clicked`, a time.time())."""
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)
    out = []
    with DagsterInstance.from_config(str(home)) as instance:
        for run_id in run_ids:
            run = instance.get_run_by_id(run_id)
            records = instance.get_records_for_run(run_id, limit=100_000).records
            at: dict[str, float] = {}
            for record in records:
                entry = record.event_log_entry
                if entry.dagster_event is None:
                    continue
                kind = entry.dagster_event.event_type.name  # e.g. "RUN_SUCCESS"
                offset = entry.timestamp - clicked
                for name, wanted in MILESTONES:
                    if kind == wanted and name not in at:
                        at[name] = offset
                for name, wanted in ENDINGS:
                    if kind == wanted:
                        at[name] = offset  # the last one
            tags = run.tags if run else {}
            start = tags.get("dagster/asset_partition_range_start") or tags.get(
                "dagster/partition", "?"
            )
            end = tags.get("dagster/asset_partition_range_end", start)
            days = start if start == end else f"{start}..{end}"
            assets = len(run.asset_selection or []) if run else 0
            out.append(RunTimeline(run_id, f"{assets} assets {days}", at))
    return sorted(out, key=lambda t: t.at.get("queued", t.end))


def print_timeline(runs: list[RunTimeline]) -> None:
    names = [n for n, _ in MILESTONES] + [n for n, _ in ENDINGS[:2]]
    print("    " + f"{'run':<10}{'what':<36}" + "".join(f"{n:>12}" for n in names))
    for t in runs:
        cells = "".join(f"{t.at[n]:>12.1f}" if n in t.at else f"{'-':>12}" for n in names)
        print(f"    {t.run_id[:8]:<10}{t.label:<36}{cells}")


# ------------------------------------------------------------------------ the clicks


def _repository(url: str) -> tuple[str, str]:
    nodes = _graphql(url, REPOSITORY)["repositoriesOrError"]["nodes"]
    return nodes[0]["location"]["name"], nodes[0]["name"]


def materialize_all_one_day(url: str, day: str) -> str:
    """The UI's *Materialize all* with one day picked: one run of the asset job."""
    location, repository = _repository(url)
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "pipelineName": ASSET_JOB,
            "assetSelection": [{"path": key.split("/")} for key in sorted(ALL_ASSETS)],
        },
        "mode": "default",
        "executionMetadata": {
            "tags": [
                {"key": "dagster/partition", "value": day},
                {"key": "dagster/from_ui", "value": "true"},
            ]
        },
    }
    result = _graphql(url, LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
    if result["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"launch failed: {result}")
    return result["run"]["runId"]


def wait_for_run(url: str, run_id: str) -> str:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = _graphql(url, RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(0.5)
    raise SystemExit(f"run {run_id} not done after {TIMEOUT_S} s")


@dataclass
class Outcome:
    label: str
    days: int
    last_success: float  # click -> last run success (s)
    completed: float  # click -> the UI says done (run or backfill status), as polled
    runs: int
    rows: int
    peak: int


def one_day(server: DagsterDev, day: str, memory: PeakMemory) -> Outcome:
    memory.take()
    clicked = time.time()
    run_id = materialize_all_one_day(server.url, day)
    status = wait_for_run(server.url, run_id)
    completed = time.time() - clicked
    if status != "SUCCESS":
        raise SystemExit(f"one-day run {run_id}: {status}")
    runs = timelines(server.home, [run_id], clicked)
    print_outcome(
        outcome := Outcome(
            "one day",
            1,
            max(t.at.get("success", 0.0) for t in runs),
            completed,
            1,
            raw_rows(server.lake, [day]),
            memory.take(),
        )
    )
    print_timeline(runs)
    return outcome


def backfill(server: DagsterDev, days: list[str], memory: PeakMemory) -> Outcome:
    memory.take()
    clicked = time.time()
    label = f"{len(days)} days"
    backfill_id = launch_backfill(server.url, days, title=f"bench {label}")
    final = wait_for_backfill(server.url, backfill_id, TIMEOUT_S, poll_s=1.0)
    completed = time.time() - clicked
    if not final["succeeded"]:
        raise SystemExit(
            f"{label} backfill {final['status']}: {final['failed_runs']}\n{final['url']}"
        )
    runs = timelines(server.home, [r["run_id"] for r in final["runs"]], clicked)
    outcome = Outcome(
        label,
        len(days),
        max(t.at.get("success", 0.0) for t in runs),
        completed,
        final["num_runs"],
        raw_rows(server.lake, days),
        memory.take(),
    )
    print_outcome(outcome)
    print_timeline(runs)
    return outcome


def print_outcome(o: Outcome) -> None:
    goal = GOALS_S.get(o.label)
    verdict = (
        ""
        if goal is None
        else f"  goal <= {goal:.0f} s: {'met' if o.last_success <= goal else 'MISSED'}"
    )
    print(
        f"{o.label:<8} {o.runs:>3} runs  click -> last success {o.last_success:6.1f} s, "
        f"UI says done {o.completed:6.1f} s  {o.rows:>11,} raw rows  "
        f"{o.rows / o.last_success:>9,.0f} rows/s  peak RSS {o.peak / 2**30:5.2f} GiB{verdict}"
    )


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
                f"events/day {settings['ORDERS_DEMO_EVENTS_PER_DAY']}, {os.cpu_count()} cores; "
                "timeline columns: seconds after the click"
            )
            # Days far apart, so no run reads another's days (sessions read D-1..D+1).
            ref = one_day(server, FIRST_DAY.isoformat(), memory)
            three_start = FIRST_DAY + timedelta(days=3)
            three = backfill(
                server, partition_range(three_start, three_start + timedelta(days=2)), memory
            )
            start = three_start + timedelta(days=6)
            many = backfill(
                server, partition_range(start, start + timedelta(days=n_days - 1)), memory
            )
            for o in (three, many):
                print(
                    f"per day: {o.last_success / o.days:.1f} s in the {o.days}-day backfill vs "
                    f"{ref.last_success:.1f} s for the one-day run "
                    f"({ref.last_success * o.days / o.last_success:.1f}x cheaper per day)"
                )
            memory.stopped.set()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
