"""The Dagster internals orders_platform relies on (orders_platform/dagster_compat.py) still
exist and behave as used: an upgrade that moves or changes them fails here, by name."""

import inspect

from dagster import (
    AssetExecutionContext,
    Backoff,
    DagsterInstance,
    MaterializeResult,
    RetryPolicy,
    asset,
    materialize,
)

from orders_platform.dagster_compat import (
    BACKFILL_ID_TAG,
    BulkActionStatus,
    PartitionBackfill,
    wrap_compute,
)

POLICY = RetryPolicy(max_retries=2, delay=1, backoff=Backoff.LINEAR)


def _run(assets_def, instance):
    return materialize([assets_def], instance=instance)


def test_wrap_compute_calls_the_prologue_first_and_keeps_the_op() -> None:
    calls: list[str] = []

    @asset(retry_policy=POLICY, pool="warehouse", code_version="v7")
    def plain(context: AssetExecutionContext) -> int:
        calls.append("body")
        return 41 + 1

    @asset
    def generating(context: AssetExecutionContext):
        calls.append("body")
        yield MaterializeResult(metadata={"n": 1})

    def prologue(context) -> None:
        calls.append(f"prologue:{context.run.run_id == context.run_id}")

    with DagsterInstance.ephemeral() as instance:
        wrapped = wrap_compute(plain, prologue)
        result = _run(wrapped, instance)
        assert result.success and result.output_for_node("plain") == 42
        assert calls == ["prologue:True", "body"]
        assert wrapped.op.retry_policy == POLICY and wrapped.op.pool == "warehouse"
        assert wrapped.code_versions_by_key[plain.key] == "v7"
        assert inspect.signature(wrapped.op.compute_fn.decorated_fn) == inspect.signature(
            plain.op.compute_fn.decorated_fn
        )

        calls.clear()
        assert _run(wrap_compute(generating, prologue), instance).success
        assert calls == ["prologue:True", "body"]


def test_backfill_records_have_what_the_sensors_read() -> None:
    assert BACKFILL_ID_TAG == "dagster/backfill"
    for status in ("REQUESTED", "COMPLETED", "COMPLETED_SUCCESS", "CANCELED", "FAILED"):
        assert hasattr(BulkActionStatus, status), status
    assert callable(DagsterInstance.get_backfill)
    for attribute in ("status", "asset_backfill_data", "backfill_id"):
        assert hasattr(PartitionBackfill, attribute), attribute
