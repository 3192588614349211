"""Attach the exporter to asset and check definitions (hooks + a step-start prologue)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable

from dagster import (
    AssetKey,
    AssetsDefinition,
    HookContext,
    OpDefinition,
    failure_hook,
    success_hook,
)
from dagster._core.definitions.decorators.op_decorator import DecoratedOpFunction

from orders_platform.assets.keys import REJECTED_EVENTS, REJECTED_ORDERS
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
                item = _with_prologue(item, exporter.step_started)
            item = item.with_hooks(hooks)
        return item

    return [attach(a) for a in assets], [attach(c) for c in checks]


def _with_prologue(assets_def: AssetsDefinition, prologue) -> AssetsDefinition:
    """A copy whose op calls ``prologue(context)`` before the asset's own function."""
    op = assets_def.node_def
    if not isinstance(op, OpDefinition) or not isinstance(op.compute_fn, DecoratedOpFunction):
        return assets_def
    inner = op.compute_fn.decorated_fn

    def current_context():
        from dagster import OpExecutionContext

        return OpExecutionContext.get()

    # Generator-ness must be kept: Dagster inspects the function itself to decide how to
    # consume its results. functools.wraps keeps the signature (context, inputs, resources).
    if inspect.isgeneratorfunction(inner):

        @functools.wraps(inner)
        def wrapped(*args, **kwargs):
            prologue(current_context())
            return (yield from inner(*args, **kwargs))

    else:

        @functools.wraps(inner)
        def wrapped(*args, **kwargs):
            prologue(current_context())
            return inner(*args, **kwargs)

    # Same rebuild as automation.policies._with_retry: ops are immutable and Dagster offers
    # no public way to wrap one's compute function.
    rebuilt = OpDefinition.dagster_internal_init(
        name=op.name,
        ins=op.ins,
        outs=op.outs,
        compute_fn=DecoratedOpFunction(decorated_fn=wrapped),
        config_schema=op.config_schema,
        description=op.description,
        tags=op.tags,
        required_resource_keys=op.required_resource_keys,
        code_version=op._version,  # `op.version` is the deprecated accessor of the same
        retry_policy=op.retry_policy,
        version=None,
        pool=op.pool,
    )
    return AssetsDefinition.dagster_internal_init(
        **{**assets_def.get_attributes_dict(), "node_def": rebuilt}
    )
