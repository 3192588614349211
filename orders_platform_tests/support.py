"""Helpers shared by the test tiers (imported; fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 3, 17)


@dataclass
class OrdersPlatform:
    """The orders graph built from settings pointing at a temporary lake and warehouse."""

    tmp: Path
    orders_per_day: int = 2_000

    @property
    def lake_root(self) -> str:
        return str(self.tmp / "lake")

    @property
    def duckdb_path(self) -> str:
        return str(self.tmp / "warehouse.duckdb")

    def settings(self, **overrides):
        from orders_platform.settings import Settings

        values = {
            "ORDERS_LAKE_ROOT": self.lake_root,
            "ORDERS_DUCKDB_PATH": self.duckdb_path,
            "ORDERS_DEMO_ORDERS_PER_DAY": str(self.orders_per_day),
            # Failures in tests are deliberate: no 10 s/20 s/40 s retry back-offs.
            "ORDERS_SOURCE_MAX_RETRIES": "0",
            **overrides,
        }
        return Settings(**values)

    def definitions(self, **overrides):
        from orders_platform.definitions import build_definitions

        return build_definitions(self.settings(**overrides))

    def warehouse(self):
        from orders_platform.storage.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(path=self.duckdb_path)


def materialize_day(defs, partition: str, instance, selection, resources=None, raise_on_error=True):
    """Run `selection` (asset keys) of `defs` for one partition, in process, as the tests'
    stand-in for a launched run; `resources` default to the definitions' own."""
    from dagster import AssetSelection, materialize

    return materialize(
        [*defs.assets, *defs.asset_checks],
        partition_key=partition,
        resources=defs.resources if resources is None else resources,
        instance=instance,
        selection=AssetSelection.assets(*selection),
        raise_on_error=raise_on_error,
    )
