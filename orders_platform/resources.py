"""The one place that maps settings to resources (local vs production)."""

from __future__ import annotations

from typing import Any

from orders_platform.settings import Settings, SettingsError
from orders_platform.sources.base import RawSource
from orders_platform.storage.lake import ParquetLakeIOManager
from orders_platform.storage.warehouse.base import Warehouse


def build_source(settings: Settings) -> RawSource:
    if settings.source == "demo":
        from orders_platform.sources.demo import DemoSource

        return DemoSource(
            orders_per_day=settings.demo_orders_per_day,
            events_per_day=settings.demo_events_per_day,
        )
    raise SettingsError(
        f"ORDERS_SOURCE={settings.source!r} is not available in this version of "
        "orders_platform yet; use ORDERS_SOURCE=demo"
    )


def build_warehouse(settings: Settings) -> Warehouse:
    if settings.warehouse == "duckdb":
        from orders_platform.storage.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(path=settings.duckdb_path_resolved)
    raise SettingsError(
        f"ORDERS_WAREHOUSE={settings.warehouse!r} is not available in this version of "
        "orders_platform yet; use ORDERS_WAREHOUSE=duckdb"
    )


def build_resources(settings: Settings) -> dict[str, Any]:
    return {
        "source": build_source(settings),
        "lake_io_manager": ParquetLakeIOManager(root=settings.lake_root_resolved),
        "warehouse": build_warehouse(settings),
    }
