"""A backfill launched the way the UI launches it, against a real `dagster dev`.

`orders_platform.ops.backfill` sends the UI's *Materialize all -> Launch backfill*
GraphQL mutation to a `dagster dev` started here (its own DAGSTER_HOME, lake and DuckDB
file under tmp); the backfill daemon plans and runs it. The slow test then checks the
instance (materialized partitions, the runs), the lake files and the warehouse rows.

What "Materialize all" of D1..Dn targets is Dagster's choice, not ours: the days apply to
the root assets and flow downstream through the partition mappings, so silver/sessions
(raw/events of D-1..D+1) is targeted for D1-1..Dn+1 (`SESSIONS_DAYS`).

The cheap tests below need no server: partition ranges, CLI argument errors, and GraphQL
error union members turned into `BackfillError`.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from orders_platform.ops.backfill import (
    BackfillError,
    backfill_status,
    launch_backfill,
    main,
    partition_range,
    wait_for_backfill,
)
from orders_platform_tests.servers.dagster_dev import PLATFORM_ASSETS, DagsterDev, free_port
from orders_platform_tests.support import REPO_ROOT

DAYS = ["2026-03-16", "2026-03-17", "2026-03-18"]
# silver/sessions of D reads raw/events of D-1..D+1, so Dagster carries a UI backfill of
# raw/events D1..Dn on to sessions of D1-1..Dn+1 (the days never extracted are left as they
# are in the warehouse, but the range is one materialization of all five days).
SESSIONS_DAYS = ["2026-03-15", *DAYS, "2026-03-19"]
ALL_ASSETS = PLATFORM_ASSETS
LAKE_ASSETS = [
    "raw/orders",
    "validated/orders",
    "validated/rejected_orders",
    "raw/events",
    "validated/rejected_events",
]
NON_EMPTY_LAKE_ASSETS = {"raw/orders", "validated/orders", "raw/events"}

BACKFILL_TIMEOUT_S = 420
IN_PROGRESS = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[DagsterDev]:
    server = DagsterDev(
        tmp_path,
        settings={
            "ORDERS_DEMO_ORDERS_PER_DAY": "500",
            "ORDERS_DEMO_EVENTS_PER_DAY": "2000",
            "ORDERS_SOURCE_MAX_RETRIES": "0",
        },
    )
    server.start()
    try:
        try:
            server.wait_ready(ALL_ASSETS)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server
    finally:
        server.stop()


def in_progress_runs(url: str) -> list[dict]:
    query = """
    query InProgress($filter: RunsFilter) {
      runsOrError(filter: $filter) {
        __typename
        ... on Runs { results { runId jobName status tags { key value } } }
        ... on Error { message }
      }
    }
    """
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": {"filter": {"statuses": IN_PROGRESS}}},
        timeout=30.0,
    )
    response.raise_for_status()
    result = response.json()["data"]["runsOrError"]
    assert result["__typename"] == "Runs", result
    return result["results"]


def wait_until_quiet(url: str, timeout_s: float) -> list[dict]:
    """Wait for runs launched by others (the silver sensors react to the backfill's
    materializations) to finish, so the server is not stopped under a warehouse write.
    Returns what is still in progress at the deadline (normally nothing)."""
    deadline = time.monotonic() + timeout_s
    quiet_polls = 0
    running: list[dict] = []
    while time.monotonic() < deadline:
        running = in_progress_runs(url)
        quiet_polls = 0 if running else quiet_polls + 1
        if quiet_polls >= 3:
            return []
        time.sleep(3.0)
    return running


def expected_days(key: str) -> list[str]:
    return SESSIONS_DAYS if key == "silver/sessions" else DAYS


def summary(status: dict) -> str:
    """The backfill's per-asset table and runs, for assertion messages."""
    lines = [f"backfill {status['id']}: {status['status']} ({status['url']})"]
    lines += [
        f"  {a['asset']:<28} targeted {a['targeted']} materialized {a['materialized']} "
        f"failed {a['failed']} in progress {a['in_progress']}"
        for a in sorted(status["assets"], key=lambda a: a["asset"])
    ]
    for run in status["runs"]:
        window = (
            f"{run['tags'].get('dagster/asset_partition_range_start')}.."
            f"{run['tags'].get('dagster/asset_partition_range_end')}"
        )
        lines.append(f"  run {run['run_id'][:8]} {run['status']:<8} {window} {run['assets']}")
    if status.get("error"):
        lines.append(f"  error: {status['error']}")
    return "\n".join(lines)


def diagnostics(server: DagsterDev) -> str:
    """The step/run failures logged by `dagster dev`, then the log's tail."""
    try:
        text = server.log_path.read_text(errors="replace")
    except OSError:
        text = ""
    failures = sorted(
        {line.strip()[:400] for line in text.splitlines() if "Failure:" in line or "Error:" in line}
    )
    return (
        "--- failures in the dagster dev log ---\n"
        + "\n".join(failures[:20])
        + f"\n--- dagster dev log tail ---\n{server.log_tail(4000)}"
    )


# ------------------------------------------------------------------------- the slow test


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_materialize_all_backfill_through_the_webserver(
    dagster_dev: DagsterDev, monkeypatch: pytest.MonkeyPatch
):
    started = time.monotonic()
    url = dagster_dev.url
    backfill_id = launch_backfill(
        url,
        partition_range(date(2026, 3, 16), "2026-03-18"),
        assets=None,  # "Materialize all"
        tags={"orders_platform/test": "ui_backfill"},
    )
    launched = backfill_status(url, backfill_id)
    assert set(launched["asset_selection"]) == ALL_ASSETS
    assert launched["targeted_partitions"] in ([f"{DAYS[0]}...{DAYS[-1]}"], DAYS), launched

    try:
        final = wait_for_backfill(url, backfill_id, BACKFILL_TIMEOUT_S, poll_s=3.0)
    except BackfillError as exc:
        pytest.fail(f"{exc}\n{diagnostics(dagster_dev)}")
    detail = summary(final)
    assert final["status"] == "COMPLETED_SUCCESS", f"{detail}\n{diagnostics(dagster_dev)}"
    assert final["runs"] and all(r["status"] == "SUCCESS" for r in final["runs"]), detail
    # Every asset targeted (and materialized) the 3 days; silver/sessions one more on
    # each side (see SESSIONS_DAYS).
    expected = {key: len(expected_days(key)) for key in ALL_ASSETS}
    assert {a["asset"]: a["targeted"] for a in final["assets"]} == expected, detail
    assert {a["asset"]: a["materialized"] for a in final["assets"]} == expected, detail
    assert not any(a["failed"] or a["in_progress"] for a in final["assets"]), detail

    # One backfill policy for every asset (partitions.py): the 3 days of raw -> validated ->
    # silver/orders are ONE run, tagged with the partition range; silver/sessions (D-1..D+1
    # of raw/events) follows in a run of its own, after it.
    lake_runs = [r for r in final["runs"] if "raw/orders" in r["assets"]]
    assert len(lake_runs) == 1, detail
    assert len(final["runs"]) == 2, detail
    lake_run = lake_runs[0]
    assert lake_run["tags"].get("dagster/asset_partition_range_start") == DAYS[0], detail
    assert lake_run["tags"].get("dagster/asset_partition_range_end") == DAYS[-1], detail
    assert lake_run["tags"].get("dagster/backfill") == backfill_id, detail
    assert set(lake_run["assets"]) == {*LAKE_ASSETS, "silver/orders"}, detail
    [sessions_run] = [r for r in final["runs"] if r is not lake_run]
    assert sessions_run["assets"] == ["silver/sessions"], detail

    still_running = wait_until_quiet(url, timeout_s=180)
    dagster_dev.stop()
    assert not still_running, f"runs still in progress after the backfill: {still_running}"

    # ---- the instance: every asset has exactly its days materialized
    from dagster import AssetKey, DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(dagster_dev.home))
    with DagsterInstance.from_config(str(dagster_dev.home)) as instance:
        for key in sorted(ALL_ASSETS):
            materialized = instance.get_materialized_partitions(AssetKey(key.split("/")))
            assert materialized == set(expected_days(key)), (key, sorted(materialized))
        records = instance.fetch_materializations(AssetKey(["raw", "orders"]), limit=100).records
        assert {r.partition_key for r in records} == set(DAYS)
        assert {r.run_id for r in records} == {lake_run["run_id"]}

    # ---- the lake: one parquet file per asset and day
    import polars as pl

    for key in LAKE_ASSETS:
        for day in DAYS:
            path = dagster_dev.lake / key / f"dt={day}" / "part-0.parquet"
            assert path.is_file(), path
            frame = pl.read_parquet(path)
            if key in NON_EMPTY_LAKE_ASSETS:
                assert frame.height > 0, path

    # ---- the warehouse: silver rows for each of the 3 days
    import duckdb

    with duckdb.connect(str(dagster_dev.duckdb_path), read_only=True) as con:
        # order_date is the day an order was created: a day's extract also carries late
        # updates of older orders, so other (earlier) dates appear too.
        order_days = {
            d.isoformat()
            for (d, n) in con.execute(
                "select order_date, count(*) from silver.orders group by order_date"
            ).fetchall()
            if n > 0
        }
        session_days = {
            d.isoformat()
            for (d,) in con.execute("select distinct session_date from silver.sessions").fetchall()
        }
    assert set(DAYS) <= order_days, sorted(order_days)
    assert max(order_days) == DAYS[-1], sorted(order_days)
    assert session_days == set(DAYS), sorted(session_days)
    print(
        f"backfill {backfill_id}: {len(final['runs'])} runs in {time.monotonic() - started:.0f} s"
    )


# ------------------------------------------------------------------------- cheap tests


@pytest.mark.parametrize(
    "name",
    [
        "LAUNCH_PARTITION_BACKFILL_MUTATION",
        "RESUME_BACKFILL_MUTATION",
        "CANCEL_BACKFILL_MUTATION",
        "ASSET_NODES_QUERY",
        "BACKFILL_STATUS_QUERY",
    ],
)
def test_graphql_text_is_valid_for_the_installed_dagster_graphql(name):
    """Field, argument, type and enum names checked against the installed schema, so a
    Dagster upgrade that renames one fails here rather than against a live webserver."""
    from graphql import parse, validate

    from orders_platform.ops import backfill_queries

    errors = validate(_installed_schema(), parse(getattr(backfill_queries, name)))
    assert not errors, [e.message for e in errors]


@functools.cache
def _installed_schema():
    from dagster_graphql.schema import create_schema

    return create_schema().graphql_schema


def test_terminal_statuses_match_the_installed_bulk_action_status():
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, BulkActionStatus

    from orders_platform.ops.backfill import SUCCESS_STATUSES, TERMINAL_STATUSES

    assert {s.value for s in BULK_ACTION_TERMINAL_STATUSES} == TERMINAL_STATUSES
    assert {s.value for s in BulkActionStatus} >= TERMINAL_STATUSES
    assert "COMPLETED_SUCCESS" in SUCCESS_STATUSES


def test_partition_range_is_inclusive_and_daily():
    assert partition_range("2026-03-16", "2026-03-18") == DAYS
    assert partition_range(date(2026, 3, 17), date(2026, 3, 17)) == ["2026-03-17"]
    assert partition_range("2026-02-27", date(2026, 3, 2)) == [
        "2026-02-27",
        "2026-02-28",
        "2026-03-01",
        "2026-03-02",
    ]
    assert len(partition_range("2026-03-01", "2026-03-30")) == 30
    with pytest.raises(ValueError, match="before start"):
        partition_range("2026-03-18", "2026-03-16")
    with pytest.raises(ValueError, match="2026-02-30"):
        partition_range("2026-02-30", "2026-03-01")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "required"),
        (["launch", "--end", "2026-03-18"], "--start"),
        (["launch", "--start", "2026-03-18"], "--end"),
        (["launch", "--start", "2026-03-32", "--end", "2026-04-01"], "2026-03-32"),
        (["launch", "--start", "2026-03-18", "--end", "2026-03-16"], "before start"),
        (["launch", "--start", "2026-03-16", "--end", "2026-03-18", "--tag", "x"], "KEY=VALUE"),
        (["status"], "ID"),
        (["resume"], "ID"),
        (["cancel"], "ID"),
        (["rewind", "abc"], "invalid choice"),
    ],
)
def test_cli_argument_errors(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert expected in capsys.readouterr().err


def test_cli_reports_an_unreachable_server_with_exit_code_1():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env["DAGSTER_WEBSERVER_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens
    proc = subprocess.run(
        [sys.executable, "-m", "orders_platform.ops.backfill", "status", "some-id"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "error:" in proc.stderr
    assert "cannot reach the Dagster webserver" in proc.stderr
    assert env["DAGSTER_WEBSERVER_URL"] in proc.stderr


class FakeGraphQL:
    """A tiny GraphQL endpoint answering every POST with one canned body."""

    def __init__(self, body: dict, status: int = 200):
        self.body, self.status, self.requests = body, status, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                fake.requests.append((self.path, json.loads(self.rfile.read(length))))
                data = json.dumps(fake.body).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeGraphQL:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _launch_result(result: dict) -> dict:
    return {"data": {"launchPartitionBackfill": result}}


def test_launch_backfill_raises_on_python_error_and_sends_the_ui_params():
    body = _launch_result({"__typename": "PythonError", "message": "boom"})
    # The webserver answers a PythonError result with HTTP 500 (the member is in `data`).
    with (
        FakeGraphQL(body, status=500) as fake,
        pytest.raises(BackfillError, match="PythonError") as exc,
    ):
        launch_backfill(
            fake.url, DAYS, assets=["raw/orders", "silver/sessions"], tags={"who": "ops"}
        )
    assert "boom" in str(exc.value)
    assert exc.value.type_name == "PythonError"
    [(path, payload)] = fake.requests
    assert path == "/graphql"
    assert "launchPartitionBackfill(backfillParams: $backfillParams)" in payload["query"]
    assert payload["variables"]["backfillParams"] == {
        "partitionNames": DAYS,
        "assetSelection": [{"path": ["raw", "orders"]}, {"path": ["silver", "sessions"]}],
        "fromFailure": False,
        "tags": [{"key": "who", "value": "ops"}],
    }


def test_exact_launch_sends_partitions_by_assets():
    body = _launch_result({"__typename": "LaunchBackfillSuccess", "backfillId": "abcdefgh"})
    with FakeGraphQL(body) as fake:
        backfill_id = launch_backfill(
            fake.url,
            ["2026-03-16", "2026-03-17", "2026-03-18", "2026-03-20"],
            assets=["silver/sessions"],
            exact=True,
            title="sessions redo",
        )
    assert backfill_id == "abcdefgh"
    [(_, payload)] = fake.requests
    assert payload["variables"]["backfillParams"] == {
        "partitionsByAssets": [
            {
                "assetKey": {"path": ["silver", "sessions"]},
                "partitions": {
                    "ranges": [
                        {"start": "2026-03-16", "end": "2026-03-18"},
                        {"start": "2026-03-20", "end": "2026-03-20"},
                    ]
                },
            }
        ],
        "tags": [],
        "title": "sessions redo",
    }


def test_launch_all_assets_looks_the_keys_up_first():
    body = {
        "data": {
            "assetNodes": [
                {
                    "assetKey": {"path": ["raw", "orders"]},
                    "isPartitioned": True,
                    "isMaterializable": True,
                    "repository": {"name": "__repository__", "location": {"name": "loc"}},
                },
                {
                    "assetKey": {"path": ["external", "thing"]},
                    "isPartitioned": False,
                    "isMaterializable": False,
                    "repository": {"name": "__repository__", "location": {"name": "loc"}},
                },
            ],
            # the same canned body answers the mutation too
            "launchPartitionBackfill": {"__typename": "LaunchBackfillSuccess", "backfillId": "x"},
        }
    }
    with FakeGraphQL(body) as fake:
        assert launch_backfill(fake.url, DAYS) == "x"
    (_, lookup), (_, launch) = fake.requests
    assert "assetNodes" in lookup["query"]
    assert launch["variables"]["backfillParams"]["assetSelection"] == [{"path": ["raw", "orders"]}]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            _launch_result(
                {"__typename": "PartitionKeysNotFoundError", "message": "no 2099-01-01"}
            ),
            ["PartitionKeysNotFoundError", "no 2099-01-01"],
        ),
        (
            _launch_result({"__typename": "UnauthorizedError", "message": "read-only"}),
            ["UnauthorizedError", "read-only"],
        ),
        (
            _launch_result({"__typename": "RunConflict", "message": "conflict"}),
            ["RunConflict", "conflict"],
        ),
        (
            _launch_result({"__typename": "InvalidStepError", "invalidStepKey": "op_x"}),
            ["InvalidStepError", "op_x"],
        ),
        (
            _launch_result(
                {
                    "__typename": "RunConfigValidationInvalid",
                    "pipelineName": "__ASSET_JOB",
                    "errors": [{"message": "bad config"}],
                }
            ),
            ["RunConfigValidationInvalid", "bad config"],
        ),
        ({"errors": [{"message": "Cannot query field 'x'"}]}, ["GraphQLError", "field 'x'"]),
        ({"data": None}, ["HTTPError"]),
        (
            _launch_result(
                {"__typename": "PythonError", "message": "KeyError", "className": "KeyError"}
            ),
            ["PythonError", "KeyError"],
        ),
    ],
)
def test_launch_backfill_error_members_raise_backfill_error(body, expected):
    with FakeGraphQL(body) as fake, pytest.raises(BackfillError) as exc:
        launch_backfill(fake.url, DAYS, assets=["raw/orders"])
    for text in expected:
        assert text in str(exc.value)


def test_status_of_unknown_backfill_raises_backfill_error():
    body = {
        "data": {
            "partitionBackfillOrError": {
                "__typename": "BackfillNotFoundError",
                "message": "Backfill nope could not be found.",
            }
        }
    }
    with FakeGraphQL(body) as fake, pytest.raises(BackfillError, match="BackfillNotFoundError"):
        wait_for_backfill(fake.url, "nope", timeout_s=5, poll_s=0.1)


def _backfill(status: str, runs: list[dict]) -> dict:
    return {
        "data": {
            "partitionBackfillOrError": {
                "__typename": "PartitionBackfill",
                "id": "abcdefgh",
                "status": status,
                "isAssetBackfill": True,
                "numPartitions": None,
                "partitionNames": None,
                "title": None,
                "timestamp": 1.0,
                "endTimestamp": None,
                "assetSelection": [{"path": ["raw", "orders"]}],
                "error": None,
                "runs": runs,
                "assetBackfillData": {
                    "rootTargetedPartitions": {
                        "partitionKeys": None,
                        "ranges": [{"start": DAYS[0], "end": DAYS[-1]}],
                    },
                    "assetBackfillStatuses": [
                        {
                            "__typename": "AssetPartitionsStatusCounts",
                            "assetKey": {"path": ["raw", "orders"]},
                            "numPartitionsTargeted": 3,
                            "numPartitionsInProgress": 0,
                            "numPartitionsMaterialized": 3,
                            "numPartitionsFailed": 0,
                        }
                    ],
                },
            }
        }
    }


def test_wait_times_out_naming_the_last_status():
    requested = _backfill("REQUESTED", [])
    with FakeGraphQL(requested) as fake, pytest.raises(BackfillError, match="REQUESTED") as exc:
        wait_for_backfill(fake.url, "abcdefgh", timeout_s=0.5, poll_s=0.1)
    assert exc.value.type_name == "Timeout"


def test_a_failed_run_fails_the_wait_even_when_the_backfill_completed(capsys):
    run = {
        "runId": "r1",
        "status": "FAILURE",
        "tags": [{"key": "dagster/backfill", "value": "abcdefgh"}],
        "assetSelection": [{"path": ["raw", "orders"]}],
    }
    with FakeGraphQL(_backfill("COMPLETED_SUCCESS", [run])) as fake:
        final = wait_for_backfill(fake.url, "abcdefgh", timeout_s=5, poll_s=0.1)
        assert final["status"] == "COMPLETED_SUCCESS" and final["terminal"]
        assert not final["succeeded"] and final["failed_runs"] == ["r1"]
        assert final["targeted_partitions"] == [f"{DAYS[0]}...{DAYS[-1]}"]
        assert final["runs"][0]["tags"] == {"dagster/backfill": "abcdefgh"}
        assert main(["status", "abcdefgh", "--url", fake.url]) == 0
        assert json.loads(capsys.readouterr().out)["failed_runs"] == ["r1"]


def test_resume_and_cancel_name_the_backfill_and_report_refusals(capsys):
    body = {
        "data": {
            "resumePartitionBackfill": {"__typename": "ResumeBackfillSuccess", "backfillId": "b1"},
            "cancelPartitionBackfill": {
                "__typename": "UnauthorizedError",
                "message": "not allowed to cancel",
            },
        }
    }
    with FakeGraphQL(body) as fake:
        assert main(["resume", "b1", "--url", fake.url]) == 0
        assert main(["cancel", "b1", "--url", fake.url]) == 1
    out, err = capsys.readouterr()
    assert "resumed b1" in out and f"{fake.url}/overview/backfills/b1" in out
    assert "UnauthorizedError: not allowed to cancel" in err
    (_, resume), (_, cancel) = fake.requests
    assert "resumePartitionBackfill" in resume["query"]
    assert "cancelPartitionBackfill" in cancel["query"]
    assert resume["variables"] == cancel["variables"] == {"backfillId": "b1"}
