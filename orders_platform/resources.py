"""The one place that maps settings to resources (local vs production).

Secrets are passed as `EnvVar` references: Dagster resolves them when the resource is
initialised, so their values never appear in run config, the UI or metadata.
"""

from __future__ import annotations

from typing import Any

from dagster import EnvVar

from orders_platform.settings import Settings
from orders_platform.sources.base import RawSource
from orders_platform.storage.lake import ParquetLakeIOManager
from orders_platform.storage.warehouse.base import Warehouse


def _secret(settings_value: str | None, variable: str) -> EnvVar | None:
    return EnvVar(variable) if settings_value else None


def build_source(settings: Settings) -> RawSource:
    if settings.source == "api":
        from orders_platform.sources.api import ApiSource

        return ApiSource(
            base_url=settings.api_url,
            token=_secret(settings.api_token, "ORDERS_API_TOKEN"),
            token_url=settings.api_token_url,
            client_id=settings.api_client_id,
            client_secret=_secret(settings.api_client_secret, "ORDERS_API_CLIENT_SECRET"),
            pagination=settings.api_pagination,
            page_size=settings.api_page_size,
            requests_per_second=settings.api_requests_per_second,
            timeout_seconds=settings.api_timeout_seconds,
            deadline_seconds=settings.api_deadline_seconds,
        )
    if settings.source == "postgres":
        from orders_platform.sources.postgres import PostgresSource

        return PostgresSource(
            dsn=EnvVar("ORDERS_PG_DSN"),
            orders_table=settings.pg_orders_table,
            events_table=settings.pg_events_table,
            statement_timeout_seconds=settings.pg_statement_timeout_seconds,
            sub_window_minutes=settings.pg_sub_window_minutes,
            overlap_minutes=settings.pg_overlap_minutes,
            allow_primary=settings.pg_allow_primary,
            batch_rows=settings.pg_batch_rows,
        )
    if settings.source == "landing":
        from orders_platform.sources.landing import LandingSource

        return LandingSource(
            root=settings.landing_dir_resolved, chunk_rows=settings.landing_chunk_rows
        )
    from orders_platform.sources.demo import DemoSource

    return DemoSource(
        orders_per_day=settings.demo_orders_per_day,
        events_per_day=settings.demo_events_per_day,
    )


def build_warehouse(settings: Settings) -> Warehouse:
    if settings.warehouse == "snowflake":
        # Only the module; it imports the Snowflake connector lazily, on first use.
        from orders_platform.storage.warehouse.snowflake import SnowflakeWarehouse

        return SnowflakeWarehouse(
            account=settings.snowflake_account,
            user=settings.snowflake_user,
            password=EnvVar("SNOWFLAKE_PASSWORD"),
            database=settings.snowflake_database,
            schema_name=settings.snowflake_schema,
            warehouse=settings.snowflake_warehouse,
            role=settings.snowflake_role,
            host=settings.snowflake_host,
            port=settings.snowflake_port,
            protocol=settings.snowflake_protocol,
            # The connector otherwise retries a failing request forever: a Snowflake
            # outage would hang the run instead of failing it (and letting it retry).
            network_timeout=600,
        )
    from orders_platform.storage.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(path=settings.duckdb_path_resolved)


def build_lake(settings: Settings) -> ParquetLakeIOManager:
    if not settings.lake_root.startswith("s3://"):
        return ParquetLakeIOManager(root=settings.lake_root_resolved)
    # dagster-aws/boto3 cost seconds to import: only for an S3 lake.
    from orders_platform.storage.s3 import lake_storage_options

    return ParquetLakeIOManager(
        root=settings.lake_root_resolved, storage_options=lake_storage_options(settings)
    )


def build_resources(settings: Settings) -> dict[str, Any]:
    return {
        "source": build_source(settings),
        "lake_io_manager": build_lake(settings),
        "warehouse": build_warehouse(settings),
    }
