"""What the exporters send where: chosen once from the settings, like the resources."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


def lineage_namespace() -> str:
    return os.environ.get("OPENLINEAGE_NAMESPACE") or DEFAULT_OL_NAMESPACE


def public_url(url: str) -> str:
    """A URL without its user:password part, for log lines."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


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
        lake_root=settings.lake_root_resolved,
        warehouse_namespace=namespace,
        warehouse_prefix=prefix,
        tables=tables,
    )
