"""Retry and freshness policies, attached without touching the asset modules.

- Source assets (`raw/orders`, `raw/events`) retry their step 3 times
  (``ORDERS_SOURCE_MAX_RETRIES``; 0 disables) with exponential backoff and jitter (10 s,
  20 s, 40 s, each +/- random): a source that is down for a minute (a PostgreSQL failover,
  an API deploy, an S3 hiccup while writing the partition) costs a delay, not a failed run.
  The sources already retry individual requests (429/5xx/timeouts); this is the outer layer
  for what escapes them. A Dagster retry policy covers the whole step, the lake write
  included. Downstream steps get no retry: they are deterministic (a failing gate would
  fail again) and a retried source step already re-feeds them. A source that wants a
  permanent error (an HTTP 4xx, a refused primary) not to be retried can raise
  ``dagster.Failure(..., allow_retries=False)``.
- Silver assets (`silver/orders`, `silver/sessions`) carry the freshness policy of
  Dagster >= 1.11 (`dagster.FreshnessPolicy.time_window`, the non-deprecated one; the old
  cron/maximum_lag policy is `LegacyFreshnessPolicy`): WARN when the latest materialization
  is older than 26 h, FAIL after 30 h. A daily partition lands at ~00:30 UTC (sessions a day
  later, but still once a day), so a healthy table is never older than ~25 h. The instance's
  freshness daemon (on by default, `freshness: enabled`) evaluates it; the state shows on the
  asset page and in the asset health. With the intraday refresh on (``ORDERS_INTRADAY``,
  the default) silver/orders is materialized every ``ORDERS_INTRADAY_MINUTES`` and carries
  the promise of the pipeline it replaces instead: FAIL when older than 20 minutes
  (`INTRADAY_FRESHNESS_POLICY`).

`apply_policies(assets)` returns copies: freshness through the public
`AssetsDefinition.map_asset_specs`; the retry policy is an op property, which Dagster lets
one set only in `@asset(retry_policy=...)`, so for the two source assets the op is rebuilt
with it (the same internal constructors `map_asset_specs` itself uses). An asset that already
declares a retry policy keeps it: adding ``retry_policy=SOURCE_RETRY_POLICY`` to the two
`@asset` decorators later makes the rebuild a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from dagster import (
    AssetsDefinition,
    AssetSpec,
    Backoff,
    FreshnessPolicy,
    Jitter,
    OpDefinition,
    RetryPolicy,
)

from orders_platform.assets.keys import RAW_EVENTS, RAW_ORDERS, SILVER_ORDERS, SILVER_SESSIONS

SOURCE_ASSETS = frozenset({RAW_ORDERS, RAW_EVENTS})
SILVER_ASSETS = frozenset({SILVER_ORDERS, SILVER_SESSIONS})

DEFAULT_SOURCE_RETRIES = 3
SOURCE_RETRY_DELAY_SECONDS = 10


def source_retry_policy(max_retries: int = DEFAULT_SOURCE_RETRIES) -> RetryPolicy | None:
    """The source assets' retry policy (``ORDERS_SOURCE_MAX_RETRIES``); None for 0."""
    if max_retries <= 0:
        return None
    return RetryPolicy(
        max_retries=max_retries,
        delay=SOURCE_RETRY_DELAY_SECONDS,
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )


SOURCE_RETRY_POLICY = source_retry_policy()
SILVER_FRESHNESS_POLICY = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)
)
INTRADAY_FRESHNESS_MINUTES = 20
INTRADAY_FRESHNESS_POLICY = FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=INTRADAY_FRESHNESS_MINUTES)
)


def _with_freshness(spec: AssetSpec, intraday: bool = False) -> AssetSpec:
    if spec.key in SILVER_ASSETS and spec.freshness_policy is None:
        policy = SILVER_FRESHNESS_POLICY
        if intraday and spec.key == SILVER_ORDERS:
            policy = INTRADAY_FRESHNESS_POLICY
        return spec.replace_attributes(freshness_policy=policy)
    return spec


def _with_retry(assets_def: AssetsDefinition, policy: RetryPolicy) -> AssetsDefinition:
    op = assets_def.node_def
    if not isinstance(op, OpDefinition) or op.retry_policy is not None:
        return assets_def
    retried = OpDefinition.dagster_internal_init(
        name=op.name,
        ins=op.ins,
        outs=op.outs,
        compute_fn=op.compute_fn,
        config_schema=op.config_schema,
        description=op.description,
        tags=op.tags,
        required_resource_keys=op.required_resource_keys,
        code_version=op._version,  # `op.version` is the deprecated accessor of the same
        retry_policy=policy,
        version=None,
        pool=op.pool,
    )
    return AssetsDefinition.dagster_internal_init(
        **{**assets_def.get_attributes_dict(), "node_def": retried}
    )


def apply_policies(
    assets: Iterable,
    source_retry: RetryPolicy | None = SOURCE_RETRY_POLICY,
    *,
    intraday: bool = False,
) -> list:
    """`assets` with `source_retry` on the source assets (None: no retry) and the
    freshness policy on the silver assets (silver/orders: 20 minutes with `intraday`).

    Anything that is not an `AssetsDefinition` with assets (an asset checks definition, say)
    is returned as is.
    """
    out = []
    for item in assets:
        if isinstance(item, AssetsDefinition) and item.keys:
            if item.keys & SILVER_ASSETS:
                item = item.map_asset_specs(lambda spec: _with_freshness(spec, intraday))
            if source_retry is not None and item.keys & SOURCE_ASSETS and item.is_executable:
                item = _with_retry(item, source_retry)
        out.append(item)
    return out
