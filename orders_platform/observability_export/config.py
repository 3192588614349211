"""What the exporters send where: chosen once from the settings, like the resources."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dagster import AssetKey

# The Prometheus `job` label of every pushed group (the batch job, in Prometheus terms).
PROMETHEUS_JOB = "orders_platform"
# Pushes and lineage emits wait at most this long: an exporter never slows a run more.
EXPORT_TIMEOUT_SECONDS = 2.0
DEFAULT_OL_NAMESPACE = "orders_platform"


@dataclass(frozen=True)
class Dataset:
    """An OpenLineage dataset identity (naming spec: namespace = where, name = what)."""

    namespace: str
    name: str


@dataclass(frozen=True)
class ExportConfig:
    pushgateway: str | None = None
    lineage: bool = False
    lake_root: str = "data/lake"
    warehouse_namespace: str = "duckdb://data/warehouse.duckdb"
    warehouse_prefix: str = ""
    timeout_seconds: float = EXPORT_TIMEOUT_SECONDS
    lineage_namespace: str = DEFAULT_OL_NAMESPACE  # OPENLINEAGE_NAMESPACE
    # asset key -> warehouse table ("silver.orders"), from the assets' own metadata
    tables: dict[AssetKey, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.pushgateway) or self.lineage

    def dataset(self, key: AssetKey) -> Dataset:
        table = self.tables.get(key)
        if table is not None:
            return Dataset(self.warehouse_namespace, f"{self.warehouse_prefix}{table}")
        return lake_dataset(self.lake_root, key)


def lake_dataset(root: str, key: AssetKey) -> Dataset:
    """``{lake root}/{asset key}`` named the OpenLineage way: ``s3://bucket`` + key path, or
    ``file`` + absolute path."""
    path = "/".join(key.path)
    if root.startswith("s3://"):
        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        return Dataset(f"s3://{bucket}", f"{prefix}/{path}" if prefix else path)
    local = root.removeprefix("file://")
    return Dataset("file", f"{Path(local).resolve().as_posix().rstrip('/')}/{path}")


def lineage_configured() -> bool:
    """The OpenLineage client's own configuration sources, in its order; off when none."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        return True
    if any(name.startswith("OPENLINEAGE__TRANSPORT") for name in os.environ):
        return True
    candidates = (Path.cwd() / "openlineage.yml", Path.home() / ".openlineage" / "openlineage.yml")
    return any(p.is_file() for p in candidates)


def host_of(url: str) -> str:
    """``host:port`` of a URL, for log lines: the variable holding the URL is on the secret
    list (it may carry ``user:password@``), its host is not a secret."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def export_config(settings, tables: dict[AssetKey, str]) -> ExportConfig:
    """The exporters for `settings` (an orders_platform Settings)."""
    if settings.warehouse == "snowflake":
        account = settings.snowflake_account
        namespace = f"snowflake://{account}"
        prefix = f"{settings.snowflake_database}."
    else:
        namespace = f"duckdb://{Path(settings.duckdb_path_resolved).resolve().as_posix()}"
        prefix = ""
    return ExportConfig(
        pushgateway=settings.prometheus_pushgateway,
        lineage=lineage_configured(),
        lineage_namespace=settings.openlineage_namespace or DEFAULT_OL_NAMESPACE,
        lake_root=settings.lake_root_resolved,
        warehouse_namespace=namespace,
        warehouse_prefix=prefix,
        tables=tables,
    )
