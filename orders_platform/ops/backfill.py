"""Launch, follow, resume and cancel asset backfills through the Dagster webserver.

This sends the same GraphQL the UI sends when an operator picks *Materialize all* ->
(a date range) -> *Launch backfill*: the ``launchPartitionBackfill`` mutation with
``backfillParams: {partitionNames, assetSelection, fromFailure: false, tags}`` (a pure
asset backfill: the backfill daemon of the deployment plans the runs, honouring each
asset's ``BackfillPolicy``). Without ``--asset`` every materializable asset the webserver
knows is selected, as *Materialize all* on the global asset graph does.

What a UI-style backfill targets: Dagster applies the days to the ROOT assets of the
selection and carries them downstream through the partition mappings, so an asset that
reads its parent's D-1..D+1 (silver/sessions) is targeted one day beyond each end of the
range (a 3-day backfill targets 5 days of silver/sessions). ``--exact`` sends
``partitionsByAssets`` instead, which targets exactly the given days for every asset.

Usage (the webserver URL defaults to ``$DAGSTER_WEBSERVER_URL`` or http://127.0.0.1:3000)::

    python -m orders_platform.ops.backfill launch --start 2026-03-01 --end 2026-03-30 \\
        [--asset raw/orders ...] [--tag key=value ...] [--title TEXT] [--exact] \\
        [--url URL] [--wait]
    python -m orders_platform.ops.backfill status BACKFILL_ID
    python -m orders_platform.ops.backfill resume BACKFILL_ID   # retry what failed
    python -m orders_platform.ops.backfill cancel BACKFILL_ID

Every GraphQL error (an error member of the result union, a top-level ``errors`` list, an
HTTP error or an unreachable server) raises `BackfillError` naming the error type and its
message; the CLI prints it and exits with status 1.

Only ``httpx`` is imported here (no Dagster), so the tool starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import httpx

from orders_platform.ops.backfill_queries import (
    ASSET_NODES_QUERY,
    BACKFILL_STATUS_QUERY,
    CANCEL_BACKFILL_MUTATION,
    LAUNCH_PARTITION_BACKFILL_MUTATION,
    RESUME_BACKFILL_MUTATION,
)

__all__ = [
    "BackfillError",
    "FAILURE_STATUSES",
    "SUCCESS_STATUSES",
    "TERMINAL_STATUSES",
    "backfill_status",
    "backfill_url",
    "cancel_backfill",
    "launch_backfill",
    "list_assets",
    "main",
    "partition_range",
    "resume_backfill",
    "wait_for_backfill",
]

DEFAULT_URL = "http://127.0.0.1:3000"
URL_ENV = "DAGSTER_WEBSERVER_URL"

# BulkActionStatus (dagster-graphql): REQUESTED, CANCELING and FAILING are in flight.
# COMPLETED is the pre-1.8 "done" of job backfills (asset backfills end in
# COMPLETED_SUCCESS or COMPLETED_FAILED); FAILED means the daemon could not process it.
SUCCESS_STATUSES = frozenset({"COMPLETED_SUCCESS", "COMPLETED"})
FAILURE_STATUSES = frozenset({"COMPLETED_FAILED", "FAILED", "CANCELED"})
TERMINAL_STATUSES = SUCCESS_STATUSES | FAILURE_STATUSES


class BackfillError(RuntimeError):
    """A backfill request failed; the message names the GraphQL error type when there is one.

    ``transient`` is True for transport errors (server unreachable, timeout): worth retrying.
    """

    def __init__(self, message: str, *, type_name: str | None = None, transient: bool = False):
        super().__init__(message)
        self.type_name = type_name
        self.transient = transient


# ------------------------------------------------------------------------------ helpers


def default_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_URL


def backfill_url(url: str, backfill_id: str) -> str:
    """The backfill's page in the Dagster UI."""
    return f"{url.rstrip('/')}/overview/backfills/{backfill_id}"


def _as_date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"invalid date {value!r}: expected YYYY-MM-DD") from None


def partition_range(start: date | str, end: date | str) -> list[str]:
    """Daily partition keys from `start` to `end`, both included (``YYYY-MM-DD``)."""
    first, last = _as_date(start), _as_date(end)
    if last < first:
        raise ValueError(f"end {last.isoformat()} is before start {first.isoformat()}")
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _asset_key_input(key: str | Sequence[str]) -> dict[str, list[str]]:
    path = key.strip("/").split("/") if isinstance(key, str) else list(key)
    if not path or any(not part for part in path):
        raise ValueError(f"invalid asset key {key!r}: expected e.g. 'raw/orders'")
    return {"path": path}


def _key_ranges(keys: Sequence[str]) -> list[dict[str, str]]:
    """Partition key ranges for ``partitionsByAssets``: runs of consecutive days collapse
    into one range; any other key is a range of its own."""
    ranges: list[dict[str, str]] = []
    previous: date | None = None
    for key in keys:
        try:
            day = date.fromisoformat(key)
        except ValueError:
            day = None
        if day is not None and previous is not None and day == previous + timedelta(days=1):
            ranges[-1]["end"] = key
        else:
            ranges.append({"start": key, "end": key})
        previous = day
    return ranges


def _describe_error(result: Mapping[str, Any]) -> str:
    """`TypeName: message` for any error member of a result union."""
    type_name = result.get("__typename") or "UnknownError"
    if result.get("message"):
        detail = str(result["message"]).strip()
        if result.get("className"):
            detail = f"{detail} ({result['className']})"
    elif type_name == "InvalidStepError":
        detail = f"invalid step {result.get('invalidStepKey')!r}"
    elif type_name == "InvalidOutputError":
        detail = (
            f"invalid output {result.get('invalidOutputName')!r} of step {result.get('stepKey')!r}"
        )
    elif type_name == "RunConfigValidationInvalid":
        errors = "; ".join(e.get("message", "") for e in result.get("errors") or [])
        detail = f"invalid run config for {result.get('pipelineName')!r}: {errors}"
    else:
        detail = json.dumps({k: v for k, v in result.items() if k != "__typename"})
    return f"{type_name}: {detail}"


def _graphql(
    url: str,
    query: str,
    variables: Mapping[str, Any] | None = None,
    *,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """POST one GraphQL operation to ``{url}/graphql`` and return its ``data``."""
    endpoint = f"{url.rstrip('/')}/graphql"
    payload = {"query": query, "variables": dict(variables or {})}
    try:
        response = httpx.post(endpoint, json=payload, timeout=timeout)
    except httpx.TransportError as exc:
        raise BackfillError(
            f"cannot reach the Dagster webserver at {endpoint}: {type(exc).__name__}: {exc}",
            type_name=type(exc).__name__,
            transient=True,
        ) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        messages = "; ".join(str(e.get("message", e)) for e in errors)
        raise BackfillError(f"GraphQLError: {messages}", type_name="GraphQLError")
    # The webserver answers 500 when the result holds a PythonError, with the union member
    # in `data`: report that (the caller names it), not the status code.
    if not isinstance(body, dict) or body.get("data") is None:
        raise BackfillError(
            f"HTTPError: {endpoint} answered {response.status_code}: {response.text[:500]}",
            type_name="HTTPError",
            transient=response.status_code >= 500,
        )
    return body["data"]


def _unwrap(data: Mapping[str, Any], field: str, success: str) -> dict[str, Any]:
    result = data.get(field)
    if not isinstance(result, dict):
        raise BackfillError(f"GraphQLError: no {field!r} in the response", type_name="GraphQLError")
    if result.get("__typename") != success:
        raise BackfillError(_describe_error(result), type_name=result.get("__typename"))
    return result


# ------------------------------------------------------------------------------ API


def list_assets(
    url: str, *, location: str | None = None, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Materializable assets known to the webserver: ``{key, partitioned, location}``."""
    data = _graphql(url, ASSET_NODES_QUERY, timeout=timeout)
    assets = []
    for node in data.get("assetNodes") or []:
        node_location = ((node.get("repository") or {}).get("location") or {}).get("name")
        if not node.get("isMaterializable"):
            continue
        if location is not None and node_location != location:
            continue
        assets.append(
            {
                "key": "/".join(node["assetKey"]["path"]),
                "partitioned": bool(node.get("isPartitioned")),
                "location": node_location,
            }
        )
    return sorted(assets, key=lambda a: a["key"])


def launch_backfill(
    url: str,
    partitions: list[str],
    assets: list[str] | None = None,
    tags: dict | None = None,
    timeout: float = 30.0,
    *,
    title: str | None = None,
    location: str | None = None,
    exact: bool = False,
) -> str:
    """Launch a backfill of `partitions` for `assets` ("raw/orders" keys); return its id.

    ``assets=None`` selects every materializable asset (of `location` when given), like
    *Materialize all* in the UI.

    By default the request is the UI's (``partitionNames`` + ``assetSelection``): Dagster
    applies `partitions` to the root assets of the selection and extends the downstream
    assets' targets through their partition mappings (silver/sessions, which reads raw/events
    of D-1..D+1, is then targeted for one day more on each side). ``exact=True`` sends
    ``partitionsByAssets`` instead: every selected asset targets exactly `partitions`.
    """
    partition_names = [str(p) for p in partitions]
    if not partition_names:
        raise BackfillError("no partitions to backfill", type_name="InvalidArguments")
    if assets is None:
        assets = [a["key"] for a in list_assets(url, location=location, timeout=timeout)]
        if not assets:
            raise BackfillError(
                "no materializable assets found on the webserver"
                + (f" for location {location!r}" if location else ""),
                type_name="NoAssets",
            )
    elif not assets:
        raise BackfillError("no assets selected", type_name="InvalidArguments")
    try:
        selection = [_asset_key_input(key) for key in assets]
    except ValueError as exc:
        raise BackfillError(str(exc), type_name="InvalidArguments") from None
    tag_list = [{"key": str(k), "value": str(v)} for k, v in (tags or {}).items()]
    if exact:
        ranges = _key_ranges(partition_names)
        params: dict[str, Any] = {
            "partitionsByAssets": [
                {"assetKey": key, "partitions": {"ranges": ranges}} for key in selection
            ],
            "tags": tag_list,
        }
    else:  # what the UI's launch dialog sends
        params = {
            "partitionNames": partition_names,
            "assetSelection": selection,
            "fromFailure": False,
            "tags": tag_list,
        }
    if title:
        params["title"] = title
    data = _graphql(
        url, LAUNCH_PARTITION_BACKFILL_MUTATION, {"backfillParams": params}, timeout=timeout
    )
    result = _unwrap(data, "launchPartitionBackfill", "LaunchBackfillSuccess")
    return str(result["backfillId"])


def _status_dict(url: str, backfill: Mapping[str, Any]) -> dict[str, Any]:
    runs = [
        {
            "run_id": run["runId"],
            "status": run["status"],
            "tags": {t["key"]: t["value"] for t in run.get("tags") or []},
            "assets": ["/".join(k["path"]) for k in run.get("assetSelection") or []],
        }
        for run in backfill.get("runs") or []
    ]
    assets = []
    for entry in (backfill.get("assetBackfillData") or {}).get("assetBackfillStatuses") or []:
        key = "/".join(entry["assetKey"]["path"])
        if entry.get("__typename") == "AssetPartitionsStatusCounts":
            assets.append(
                {
                    "asset": key,
                    "targeted": entry["numPartitionsTargeted"],
                    "in_progress": entry["numPartitionsInProgress"],
                    "materialized": entry["numPartitionsMaterialized"],
                    "failed": entry["numPartitionsFailed"],
                }
            )
        else:
            assets.append(
                {
                    "asset": key,
                    "targeted": 1,
                    "in_progress": int(bool(entry.get("inProgress"))),
                    "materialized": int(bool(entry.get("materialized"))),
                    "failed": int(bool(entry.get("failed"))),
                }
            )
    root = (backfill.get("assetBackfillData") or {}).get("rootTargetedPartitions") or {}
    targeted = list(root.get("partitionKeys") or []) + [
        f"{r['start']}...{r['end']}" for r in root.get("ranges") or []
    ]
    error = backfill.get("error")
    return {
        "id": backfill["id"],
        "status": backfill["status"],
        "terminal": backfill["status"] in TERMINAL_STATUSES,
        # The backfill's own status only follows its asset partitions: a run that
        # materialized everything but then failed a blocking check still counts as
        # COMPLETED_SUCCESS. `succeeded` also requires every run to have succeeded.
        "succeeded": backfill["status"] in SUCCESS_STATUSES
        and all(r["status"] == "SUCCESS" for r in runs),
        "failed_runs": [r["run_id"] for r in runs if r["status"] in ("FAILURE", "CANCELED")],
        "title": backfill.get("title"),
        "num_partitions": backfill.get("numPartitions"),
        "partition_names": backfill.get("partitionNames"),
        "targeted_partitions": targeted,
        "asset_selection": ["/".join(k["path"]) for k in backfill.get("assetSelection") or []],
        "num_runs": len(runs),
        "run_statuses": {
            s: sum(r["status"] == s for r in runs) for s in {r["status"] for r in runs}
        },
        "runs": runs,
        "assets": assets,
        "error": (
            f"{error.get('className') or 'PythonError'}: {error['message']}" if error else None
        ),
        "timestamp": backfill.get("timestamp"),
        "end_timestamp": backfill.get("endTimestamp"),
        "url": backfill_url(url, backfill["id"]),
    }


def backfill_status(url: str, backfill_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Status of a backfill: ``status`` (BulkActionStatus), ``terminal``, ``succeeded``
    (a success status and every run succeeded), ``runs`` (id, status, tags, assets),
    ``run_statuses`` counts, ``failed_runs``, per-asset partition counts and ``error``."""
    data = _graphql(url, BACKFILL_STATUS_QUERY, {"backfillId": backfill_id}, timeout=timeout)
    backfill = _unwrap(data, "partitionBackfillOrError", "PartitionBackfill")
    return _status_dict(url, backfill)


def wait_for_backfill(
    url: str, backfill_id: str, timeout_s: float, poll_s: float = 2.0
) -> dict[str, Any]:
    """Poll until the backfill reaches a terminal status; return the final status dict.

    Transport errors (a busy or restarting webserver) are retried until the deadline;
    GraphQL errors (e.g. BackfillNotFoundError) raise at once.
    """
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    last_error: BackfillError | None = None
    while True:
        try:
            last = backfill_status(url, backfill_id, timeout=max(5.0, min(30.0, timeout_s)))
            last_error = None
        except BackfillError as exc:
            if not exc.transient:
                raise
            last_error = exc
        if last is not None and last["terminal"]:
            return last
        if time.monotonic() >= deadline:
            status = last["status"] if last else "unknown"
            runs = last["run_statuses"] if last else {}
            detail = f"; last error: {last_error}" if last_error else ""
            raise BackfillError(
                f"Timeout: backfill {backfill_id} not finished after {timeout_s:g} s "
                f"(last status {status}, runs {runs}){detail}",
                type_name="Timeout",
            )
        time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))


def resume_backfill(url: str, backfill_id: str, timeout: float = 30.0) -> str:
    """Resume a failed or canceled backfill (retries its failed and missing partitions)."""
    data = _graphql(url, RESUME_BACKFILL_MUTATION, {"backfillId": backfill_id}, timeout=timeout)
    return str(_unwrap(data, "resumePartitionBackfill", "ResumeBackfillSuccess")["backfillId"])


def cancel_backfill(url: str, backfill_id: str, timeout: float = 30.0) -> str:
    """Cancel a backfill: no new runs are launched and its in-flight runs are terminated."""
    data = _graphql(url, CANCEL_BACKFILL_MUTATION, {"backfillId": backfill_id}, timeout=timeout)
    return str(_unwrap(data, "cancelPartitionBackfill", "CancelBackfillSuccess")["backfillId"])


# ------------------------------------------------------------------------------ CLI


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid tag {text!r}: expected KEY=VALUE")
    return key, value


def _day(text: str) -> date:
    try:
        return _as_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orders_platform.ops.backfill",
        description="Launch and follow asset backfills through the Dagster webserver.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=default_url(),
        help=f"Dagster webserver URL (default: ${URL_ENV} or {DEFAULT_URL})",
    )
    common.add_argument("--http-timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    launch = sub.add_parser("launch", parents=[common], help="launch a backfill of a date range")
    launch.add_argument("--start", type=_day, required=True, help="first day (YYYY-MM-DD)")
    launch.add_argument("--end", type=_day, required=True, help="last day, included")
    launch.add_argument(
        "--asset",
        action="append",
        dest="assets",
        metavar="KEY",
        help="asset key such as raw/orders (repeatable; default: all assets)",
    )
    launch.add_argument("--tag", action="append", type=_tag, default=[], metavar="KEY=VALUE")
    launch.add_argument("--title", help="title shown in the UI")
    launch.add_argument(
        "--exact",
        action="store_true",
        help="target exactly these days for every selected asset (partitionsByAssets); "
        "by default, like the UI, downstream assets follow their partition mappings",
    )
    launch.add_argument(
        "--wait",
        action="store_true",
        help="wait until the backfill finishes; exit 1 if it or any of its runs failed",
    )
    launch.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to --wait (default 3600)"
    )
    launch.add_argument("--poll", type=float, default=5.0, help="seconds between polls")

    for name, text in (
        ("status", "show a backfill's status and runs (JSON)"),
        ("resume", "resume (retry) a failed or canceled backfill"),
        ("cancel", "cancel a backfill and its in-flight runs"),
    ):
        command = sub.add_parser(name, parents=[common], help=text)
        command.add_argument("backfill_id", metavar="ID")
    return parser


def _print_summary(status: Mapping[str, Any]) -> None:
    print(f"status: {status['status']}  runs: {status['num_runs']} {status['run_statuses']}")
    if status.get("error"):
        print(f"error: {status['error']}")
    for run_id in status.get("failed_runs") or []:
        print(f"failed run: {status['url'].split('/overview/')[0]}/runs/{run_id}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    try:
        if args.command == "launch":
            try:
                partitions = partition_range(args.start, args.end)
            except ValueError as exc:
                parser.error(str(exc))
            backfill_id = launch_backfill(
                url,
                partitions,
                assets=args.assets,
                tags=dict(args.tag),
                timeout=args.http_timeout,
                title=args.title,
                exact=args.exact,
            )
            print(backfill_id)
            print(backfill_url(url, backfill_id))
            if args.wait:
                final = wait_for_backfill(url, backfill_id, args.timeout, args.poll)
                _print_summary(final)
                return 0 if final["succeeded"] else 1
        elif args.command == "status":
            print(json.dumps(backfill_status(url, args.backfill_id, args.http_timeout), indent=2))
        elif args.command == "resume":
            backfill_id = resume_backfill(url, args.backfill_id, args.http_timeout)
            print(f"resumed {backfill_id}")
            print(backfill_url(url, backfill_id))
        elif args.command == "cancel":
            backfill_id = cancel_backfill(url, args.backfill_id, args.http_timeout)
            print(f"canceling {backfill_id}")
            print(backfill_url(url, backfill_id))
    except BackfillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
