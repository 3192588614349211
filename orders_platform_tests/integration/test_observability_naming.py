"""Names the exporters give things: lineage datasets and jobs, partition labels, log hosts."""

from __future__ import annotations

from dagster import AssetKey

from orders_platform.observability_export.config import Dataset, host_of, lake_dataset
from orders_platform.observability_export.facts import partition_label, run_partition_label
from orders_platform.observability_export.lineage import job_name

VALID = AssetKey(["validated", "orders"])


def test_lake_datasets_follow_the_openlineage_naming_spec(tmp_path):
    assert lake_dataset("s3://bucket/lake/", VALID) == Dataset(
        "s3://bucket", "lake/validated/orders"
    )
    assert lake_dataset("s3://bucket", VALID) == Dataset("s3://bucket", "validated/orders")
    local = lake_dataset(str(tmp_path / "lake"), VALID)
    assert (local.namespace, local.name) == ("file", f"{tmp_path.resolve()}/lake/validated/orders")
    assert lake_dataset(f"file://{tmp_path}/lake", VALID) == local


def test_job_names_and_partition_labels():
    keys = [AssetKey(["silver", "orders"]), AssetKey(["raw", "orders"])]
    assert job_name("__ASSET_JOB", keys, "2026-03-17") == "raw/orders,silver/orders@2026-03-17"
    assert job_name("daily_orders_job", keys, "2026-03-17") == "daily_orders_job@2026-03-17"
    assert job_name("daily_orders_job", keys, "") == "daily_orders_job"
    assert partition_label(["2026-03-17", "2026-03-15", "2026-03-16"]) == (
        "2026-03-15...2026-03-17"
    )
    assert run_partition_label({"dagster/partition": "2026-03-17"}) == "2026-03-17"
    assert (
        run_partition_label(
            {
                "dagster/asset_partition_range_start": "2026-03-01",
                "dagster/asset_partition_range_end": "2026-03-30",
            }
        )
        == "2026-03-01...2026-03-30"
    )


def test_log_lines_name_the_host_never_the_credentials():
    assert host_of("http://user:s3cret@pushgw.internal:9091") == "pushgw.internal:9091"
    assert host_of("https://pushgw.internal") == "pushgw.internal"
