"""Attach the exporter to asset and check definitions (hooks + a step-start prologue)."""

from __future__ import annotations

from collections.abc import Iterable

from dagster import (
    AssetKey,
    AssetsDefinition,
    HookContext,
    failure_hook,
    success_hook,
)

from orders_platform.assets.keys import REJECTED_EVENTS, REJECTED_ORDERS
from orders_platform.dagster_compat import wrap_compute
from orders_platform.observability_export.config import ExportConfig
from orders_platform.observability_export.exporter import RunExporter

DEAD_LETTERS = frozenset({REJECTED_ORDERS, REJECTED_EVENTS})


def warehouse_tables(assets: Iterable) -> dict[AssetKey, str]:
    """asset key -> warehouse table, from each asset's own ``table`` metadata."""
    tables: dict[AssetKey, str] = {}
    for item in assets:
        if isinstance(item, AssetsDefinition):
            for spec in item.specs:
                table = (spec.metadata or {}).get("table")
                if isinstance(table, str):
                    tables[spec.key] = table
    return tables


def instrument(assets: Iterable, checks: Iterable, config: ExportConfig) -> tuple[list, list]:
    """`assets` and `checks` with the exporters attached (one exporter for both, so a run
    warns once per backend); untouched when `config` enables none."""
    assets, checks = list(assets), list(checks)
    if not config.enabled:
        return assets, checks
    items = [*assets, *checks]
    upstream: dict[AssetKey, set[AssetKey]] = {}
    for item in items:
        if isinstance(item, AssetsDefinition):
            for spec in item.specs:
                upstream.setdefault(spec.key, set()).update(dep.asset_key for dep in spec.deps)
    exporter = RunExporter(config, upstream, DEAD_LETTERS)

    @success_hook(name="orders_platform_export_on_success")
    def on_success(context: HookContext) -> None:
        exporter.step_ended(context)

    @failure_hook(name="orders_platform_export_on_failure")
    def on_failure(context: HookContext) -> None:
        exporter.step_ended(context)

    hooks = {on_success, on_failure}

    def attach(item):
        if isinstance(item, AssetsDefinition) and item.is_executable:
            if item.keys:
                item = wrap_compute(item, exporter.step_started)
            item = item.with_hooks(hooks)
        return item

    return [attach(a) for a in assets], [attach(c) for c in checks]
