"""Prometheus samples of SPEC §10, pushed to a Pushgateway after each step.

Groups (the Pushgateway's unit of replacement) are ``{job="orders_platform", asset,
partition}`` for an asset's row/timing gauges and ``{..., check}`` for one check's result,
so two partitions, assets or checks never overwrite each other, and re-running a partition
replaces its own series instead of adding new ones. Label values are asset keys, partition
keys, reason codes and check names: never a secret, never a run id (unbounded cardinality).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from dagster import AssetKey

from orders_platform.observability_export.facts import (
    CheckOutcome,
    Materialized,
    asset_label,
    plain,
)

PREFIX = "orders_platform_"
HELP = {
    "rows_in": "Rows the materialization read (raw: rows extracted from the source).",
    "rows_out": "Rows the materialization wrote for the partition.",
    "rows_rejected": "Dead-letter rows of the partition by reason code.",
    "materialization_duration_seconds": "Seconds from step start to the materialization.",
    "last_success_timestamp_seconds": "Unix time of the latest successful materialization.",
    "freshness_lag_seconds": "Freshness lag the asset reported on its materialization.",
    "check_passed": "1 when the asset check passed on the partition, else 0.",
    "materialization_failed": "1 when the latest attempt to materialize the partition failed.",
}


@dataclass
class Group:
    """One Pushgateway group: its grouping key and the gauges pushed into it."""

    key: dict[str, str]
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    replace: bool = True  # PUT (replace the group) or POST (replace only these metrics)

    def add(self, metric: str, value: float, **labels: str) -> None:
        self.samples.append((metric, {**self.key, **labels}, float(value)))


def rows_in(meta: Mapping) -> int | None:
    for name in ("rows_in", "events"):
        if isinstance(meta.get(name), int | float):
            return int(meta[name])
    extraction = meta.get("extraction")
    if isinstance(extraction, dict) and isinstance(extraction.get("rows_extracted"), int):
        return extraction["rows_extracted"]
    if isinstance(meta.get("rows_written"), int | float):
        return int(meta["rows_written"])
    return None


def materialization_group(
    m: Materialized, started: float | None, dead_letter: bool, job: str
) -> Group:
    asset = asset_label(m.asset)
    group = Group({"job": job, "asset": asset, "partition": m.partition})
    meta = m.metadata
    out = meta.get("dagster/row_count")
    if isinstance(out, int | float):
        group.add("rows_out", out)
    read = rows_in(meta)
    if read is not None:
        group.add("rows_in", read)
    by_reason = plain(meta.get("rejected_by_reason"))
    if dead_letter and isinstance(by_reason, dict):
        for reason, count in sorted(by_reason.items()):
            group.add("rows_rejected", count, reason=str(reason))
    if started is not None:
        group.add("materialization_duration_seconds", max(0.0, m.timestamp - started))
    group.add("last_success_timestamp_seconds", m.timestamp)
    lag = meta.get("freshness_lag_seconds")
    if isinstance(lag, int | float):
        group.add("freshness_lag_seconds", lag)
    group.add("materialization_failed", 0)
    return group


def check_group(c: CheckOutcome, job: str) -> Group:
    group = Group(
        {"job": job, "asset": asset_label(c.asset), "partition": c.partition, "check": c.check}
    )
    group.add("check_passed", 1 if c.passed else 0)
    return group


def failure_group(asset: AssetKey, partition: str, job: str) -> Group:
    group = Group({"job": job, "asset": asset_label(asset), "partition": partition}, replace=False)
    group.add("materialization_failed", 1)
    return group


def push(gateway: str, group: Group, timeout: float) -> None:
    """Push one group; raises on any HTTP or connection error (the caller decides)."""
    from prometheus_client import CollectorRegistry, Gauge
    from prometheus_client.exposition import (
        basic_auth_handler,
        default_handler,
        push_to_gateway,
        pushadd_to_gateway,
    )

    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    key = group.key
    for metric, labels, value in group.samples:
        # The grouping labels are added by the Pushgateway; the others stay on the sample.
        own = {k: v for k, v in labels.items() if k not in key}
        gauge = gauges.get(metric)
        if gauge is None:
            gauge = Gauge(
                PREFIX + metric,
                HELP[metric],
                labelnames=[*(k for k in ("asset", "partition") if k in key), *sorted(own)],
                registry=registry,
            )
            gauges[metric] = gauge
        values = {k: key[k] for k in ("asset", "partition") if k in key}
        gauge.labels(**values, **own).set(value)
    handler = default_handler
    url, username, password = _split_credentials(gateway)
    if username is not None:

        def handler(url, method, timeout, headers, data):  # noqa: F811 - same signature
            return basic_auth_handler(url, method, timeout, headers, data, username, password)

    send = push_to_gateway if group.replace else pushadd_to_gateway
    grouping = {k: v for k, v in key.items() if k != "job"}
    send(
        url,
        job=key["job"],
        registry=registry,
        grouping_key=grouping,
        timeout=timeout,
        handler=handler,
    )


def _split_credentials(gateway: str) -> tuple[str, str | None, str | None]:
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(gateway)
    if parts.username is None:
        return gateway, None, None
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return (
        urlunsplit(parts._replace(netloc=netloc)),
        unquote(parts.username),
        unquote(parts.password or ""),
    )


def groups_for_step(
    materialized: list[Materialized],
    checks: list[CheckOutcome],
    started: float | None,
    dead_letters: frozenset[AssetKey],
    job: str,
) -> Iterator[Group]:
    for m in materialized:
        yield materialization_group(m, started, m.asset in dead_letters, job)
    for c in checks:
        yield check_group(c, job)
