"""Every setting of SPEC §8, read from the environment once and validated.

A missing or invalid value fails when definitions load, with a message that names the
environment variable (never its value when the variable holds a secret).
"""

from __future__ import annotations

import os
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orders_platform.secrets import SECRET_ENV_VARS

# The repository root when running from a checkout (workspace.yaml next to the package);
# relative paths in settings are resolved against it so `dagster dev`, the CLI and tests
# agree on where data lives whatever the working directory.
_CHECKOUT = Path(__file__).resolve().parents[1]
PROJECT_ROOT = _CHECKOUT if (_CHECKOUT / "workspace.yaml").exists() else Path.cwd()


class SettingsError(ValueError):
    """Raised at load time; the message names every offending environment variable."""


def _env(name: str, default=None, **kwargs):
    return Field(default=default, validation_alias=name, **kwargs)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_ignore_empty=True, extra="ignore", frozen=True, populate_by_name=False
    )

    partitions_start: date = _env("ORDERS_PARTITIONS_START", date(2026, 1, 1))
    source: Literal["demo", "api", "postgres", "landing"] = _env("ORDERS_SOURCE", "demo")
    lake_root: str = _env("ORDERS_LAKE_ROOT", "data/lake")
    warehouse: Literal["duckdb", "snowflake"] = _env("ORDERS_WAREHOUSE", "duckdb")
    duckdb_path: str = _env("ORDERS_DUCKDB_PATH", "data/warehouse.duckdb")
    landing_dir: str = _env("ORDERS_LANDING_DIR", "data/landing")

    demo_orders_per_day: int = _env("ORDERS_DEMO_ORDERS_PER_DAY", 20_000, ge=0, le=50_000_000)
    demo_events_per_day: int = _env("ORDERS_DEMO_EVENTS_PER_DAY", 100_000, ge=0, le=500_000_000)
    session_gap_minutes: float = _env("ORDERS_SESSION_GAP_MINUTES", 30.0, gt=0, le=24 * 60)

    schedule_delay_minutes: int = _env("ORDERS_SCHEDULE_DELAY_MINUTES", 30, ge=0, le=1439)
    source_max_retries: int = _env("ORDERS_SOURCE_MAX_RETRIES", 3, ge=0, le=10)
    alert_webhook_url: str | None = _env("ORDERS_ALERT_WEBHOOK_URL", repr=False)

    max_reject_rate: float = _env("ORDERS_MAX_REJECT_RATE", 0.05, ge=0.0, le=1.0)
    reject_rate_severity: Literal["WARN", "ERROR"] = _env("ORDERS_REJECT_RATE_SEVERITY", "WARN")

    api_url: str | None = _env("ORDERS_API_URL")
    api_token: str | None = _env("ORDERS_API_TOKEN", repr=False)
    api_token_url: str | None = _env("ORDERS_API_TOKEN_URL")
    api_client_id: str | None = _env("ORDERS_API_CLIENT_ID")
    api_client_secret: str | None = _env("ORDERS_API_CLIENT_SECRET", repr=False)
    api_pagination: Literal["cursor", "offset", "next"] = _env("ORDERS_API_PAGINATION", "cursor")
    api_page_size: int = _env("ORDERS_API_PAGE_SIZE", 1000, ge=1, le=100_000)
    api_requests_per_second: float = _env("ORDERS_API_REQUESTS_PER_SECOND", 10.0, gt=0)
    api_timeout_seconds: float = _env("ORDERS_API_TIMEOUT_SECONDS", 30.0, gt=0)
    api_deadline_seconds: float = _env("ORDERS_API_DEADLINE_SECONDS", 600.0, gt=0)

    pg_dsn: str | None = _env("ORDERS_PG_DSN", repr=False)
    pg_orders_table: str = _env("ORDERS_PG_ORDERS_TABLE", "public.orders")
    pg_events_table: str = _env("ORDERS_PG_EVENTS_TABLE", "public.user_events")
    pg_statement_timeout_seconds: float = _env("ORDERS_PG_STATEMENT_TIMEOUT_SECONDS", 300.0, gt=0)
    pg_sub_window_minutes: int = _env("ORDERS_PG_SUB_WINDOW_MINUTES", 60, ge=1, le=1440)
    pg_overlap_minutes: int = _env("ORDERS_PG_OVERLAP_MINUTES", 5, ge=0, le=1440)
    pg_allow_primary: bool = _env("ORDERS_PG_ALLOW_PRIMARY", False)
    pg_batch_rows: int = _env("ORDERS_PG_BATCH_ROWS", 50_000, ge=1)

    landing_chunk_rows: int = _env("ORDERS_LANDING_CHUNK_ROWS", 100_000, ge=1)

    # Exporters (orders_platform.observability_export). OpenLineage itself is configured the
    # client's own way (OPENLINEAGE_URL / OPENLINEAGE_API_KEY / openlineage.yml); the URL is
    # validated here only so a typo fails the load instead of every emit.
    prometheus_pushgateway: str | None = _env("ORDERS_PROMETHEUS_PUSHGATEWAY", repr=False)
    openlineage_url: str | None = _env("OPENLINEAGE_URL")
    openlineage_namespace: str | None = _env("OPENLINEAGE_NAMESPACE")

    aws_endpoint_url: str | None = _env("AWS_ENDPOINT_URL")
    aws_region: str | None = _env("AWS_REGION")
    aws_access_key_id: str | None = _env("AWS_ACCESS_KEY_ID")
    aws_secret_access_key: str | None = _env("AWS_SECRET_ACCESS_KEY", repr=False)

    snowflake_account: str | None = _env("SNOWFLAKE_ACCOUNT")
    snowflake_user: str | None = _env("SNOWFLAKE_USER")
    snowflake_password: str | None = _env("SNOWFLAKE_PASSWORD", repr=False)
    snowflake_database: str | None = _env("SNOWFLAKE_DATABASE")
    snowflake_schema: str | None = _env("SNOWFLAKE_SCHEMA")
    snowflake_warehouse: str | None = _env("SNOWFLAKE_WAREHOUSE")
    snowflake_role: str | None = _env("SNOWFLAKE_ROLE")
    snowflake_host: str | None = _env("SNOWFLAKE_HOST")
    snowflake_port: int | None = _env("SNOWFLAKE_PORT", ge=1, le=65535)
    snowflake_protocol: Literal["http", "https"] | None = _env("SNOWFLAKE_PROTOCOL")

    @field_validator("lake_root")
    @classmethod
    def _lake_root_scheme(cls, value: str) -> str:
        if "://" in value and not value.startswith(("s3://", "file://", "memory://")):
            raise ValueError("must be a local path or an s3://bucket/prefix URL")
        return value

    @field_validator("prometheus_pushgateway", "openlineage_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s)://host[:port] URL")
        try:
            parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
        except ValueError:
            raise ValueError("must be an http(s)://host[:port] URL (invalid port)") from None
        return value.rstrip("/")

    @model_validator(mode="after")
    def _required_for_choice(self) -> Settings:
        missing: list[str] = []
        if self.source == "api":
            if not self.api_url:
                missing.append("ORDERS_API_URL")
            oauth = (self.api_token_url, self.api_client_id, self.api_client_secret)
            if not self.api_token and not all(oauth):
                missing.append(
                    "ORDERS_API_TOKEN (or ORDERS_API_TOKEN_URL, ORDERS_API_CLIENT_ID and "
                    "ORDERS_API_CLIENT_SECRET)"
                )
        if self.source == "postgres" and not self.pg_dsn:
            missing.append("ORDERS_PG_DSN")
        if self.lake_root.startswith("s3://"):
            if not self.lake_root.removeprefix("s3://").split("/")[0]:
                missing.append("ORDERS_LAKE_ROOT (an s3://bucket/prefix URL with a bucket)")
            if bool(self.aws_access_key_id) != bool(self.aws_secret_access_key):
                missing.append(
                    "AWS_SECRET_ACCESS_KEY" if self.aws_access_key_id else "AWS_ACCESS_KEY_ID"
                )
        if self.warehouse == "snowflake":
            for name in (
                "SNOWFLAKE_ACCOUNT",
                "SNOWFLAKE_USER",
                "SNOWFLAKE_PASSWORD",
                "SNOWFLAKE_DATABASE",
                "SNOWFLAKE_SCHEMA",
            ):
                if not getattr(self, name.lower()):
                    missing.append(name)
        if missing:
            chosen = (
                f"ORDERS_SOURCE={self.source}, ORDERS_WAREHOUSE={self.warehouse}, "
                f"ORDERS_LAKE_ROOT={self.lake_root}"
            )
            raise ValueError(f"{', '.join(missing)} must be set ({chosen})")
        return self

    @cached_property
    def lake_root_resolved(self) -> str:
        return _resolve(self.lake_root)

    @cached_property
    def duckdb_path_resolved(self) -> str:
        return _resolve(self.duckdb_path)

    @cached_property
    def landing_dir_resolved(self) -> str:
        return _resolve(self.landing_dir)


def _resolve(value: str) -> str:
    if "://" in value or Path(value).is_absolute():
        return value
    return str(PROJECT_ROOT / value)


def load_settings() -> Settings:
    """Read and validate the environment; raise SettingsError naming the variables."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = ["invalid orders_platform settings:"]
    for err in exc.errors(include_url=False, include_input=False):
        name = str(err["loc"][0]) if err["loc"] else ""
        message = err["msg"].removeprefix("Value error, ")
        if name and name not in SECRET_ENV_VARS:
            raw = os.environ.get(name)
            if raw is not None:
                message = f"{message} (got {raw!r})"
        lines.append(f"  {name}: {message}" if name else f"  {message}")
    return "\n".join(lines)
