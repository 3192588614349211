"""`defs`: the orders platform for whatever environment the settings describe.

Settings are read once here; a missing or invalid variable fails the load with a message
naming it. The in-process executor runs a partition's steps in one process: a run's
fixed cost stays well under a second, and backfills pay it once per run.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

from dagster import BetaWarning, Definitions, PreviewWarning, in_process_executor

from orders_platform.assets.events import build_events_assets
from orders_platform.assets.orders import build_orders_assets
from orders_platform.automation.build import build_automation
from orders_platform.automation.policies import apply_policies, source_retry_policy
from orders_platform.checks.orders_checks import build_orders_checks
from orders_platform.observability_export import export_config, instrument
from orders_platform.observability_export.instrument import warehouse_tables
from orders_platform.partitions import daily_partitions
from orders_platform.resources import build_resources
from orders_platform.settings import Settings, load_settings

# Lake and warehouse assets have different backfill policies on purpose (partitions.py); a
# job spanning both warns on every resolution. Asset backfills (the UI's "Materialize")
# follow each asset's own policy; a job-level backfill takes the smaller range, which is
# what the warehouse needs.
warnings.filterwarnings(
    "ignore", message=r"Asset job .* materializes assets with varying BackfillPolicies"
)


def build_definitions(settings: Settings) -> Definitions:
    # backfill_policy, partitioned checks and allow_nonexistent_upstream_partitions are
    # used deliberately; their beta/preview warnings would only add noise to every load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        return _build(settings)


def _build(settings: Settings) -> Definitions:
    partitions = daily_partitions(settings.partitions_start)
    automation = build_automation(
        partitions,
        source=settings.source,
        landing_dir=settings.landing_dir_resolved,
        schedule_delay_minutes=settings.schedule_delay_minutes,
        alert_webhook_url=settings.alert_webhook_url,
    )
    assets = [
        *build_orders_assets(partitions, warehouse_kind=settings.warehouse),
        *build_events_assets(
            partitions,
            warehouse_kind=settings.warehouse,
            session_gap=timedelta(minutes=settings.session_gap_minutes),
        ),
    ]
    assets = apply_policies(assets, source_retry=source_retry_policy(settings.source_max_retries))
    checks = build_orders_checks(
        partitions, settings.max_reject_rate, settings.reject_rate_severity
    )
    # Metrics and lineage leave the process through hooks on the definitions themselves;
    # with ORDERS_PROMETHEUS_PUSHGATEWAY and OpenLineage unset nothing is attached.
    assets, checks = instrument(assets, checks, export_config(settings, warehouse_tables(assets)))
    return Definitions(
        assets=assets,
        asset_checks=checks,
        resources=build_resources(settings),
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=automation.sensors,
        executor=in_process_executor,
    )


defs = build_definitions(load_settings())
