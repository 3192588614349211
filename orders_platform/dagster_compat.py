"""The one place that touches Dagster internals (no public API exists for these).

- `wrap_compute`: an asset whose op calls a prologue before the asset's own function (the
  observability exporter's OpenLineage START). Ops are immutable and Dagster offers no
  public way to wrap one's compute function, so the op is rebuilt with the same internal
  constructors `AssetsDefinition.map_asset_specs` itself uses.
- Backfill records: `DagsterInstance.get_backfill` returns `PartitionBackfill` objects with a
  `BulkActionStatus`; runs of a backfill carry `BACKFILL_ID_TAG`. The sensors read them.

orders_platform_tests/unit/test_dagster_compat.py exercises each of these against the
installed Dagster, so an upgrade that moves or changes them fails there, by name.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from dagster import AssetsDefinition, OpDefinition
from dagster._core.definitions.decorators.op_decorator import DecoratedOpFunction
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.tags import BACKFILL_ID_TAG

__all__ = ["BACKFILL_ID_TAG", "BulkActionStatus", "PartitionBackfill", "wrap_compute"]


def wrap_compute(assets_def: AssetsDefinition, prologue: Callable[[Any], None]) -> AssetsDefinition:
    """A copy of `assets_def` whose op calls ``prologue(context)`` first; unchanged when the
    op is not a decorated function (nothing to wrap)."""
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
