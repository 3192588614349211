"""The production configuration (SPEC §6, §8) selected by environment variables alone.

`test_production_graph_from_environment` sets only environment variables (Snowflake pointing
at fakesnow's in-process server, the lake at a moto S3 server enforcing signatures, the demo
source at a small volume), then builds the definitions exactly as
``orders_platform.definitions`` does, ``build_definitions(load_settings())``, with no
hand-built resources, and runs the orders and sessions graphs through Dagster. The secrets
(Snowflake password, AWS secret key) must appear nowhere: not in logs (DEBUG), not on
stdout/stderr, not in metadata, stored events or the job snapshots of the runs. fakesnow
runs the warehouse's batched INSERTs row by row, re-translating the SQL for every row; the
`fakesnow_fast_array_binding` fixture (conftest.py) keeps that to seconds at 1500 orders a day.

`test_missing_setting_*` cover the load-time errors: each names the missing variable and
never quotes the value of a secret that is set.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from datetime import timedelta
from decimal import Decimal

import polars as pl
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    serialize_value,
)
from polars.testing import assert_frame_equal

from orders_platform.assets.keys import (
    RAW_EVENTS,
    RAW_ORDERS,
    REJECTED_EVENTS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    SILVER_SESSIONS,
    VALIDATED_ORDERS,
)
from orders_platform.settings import SettingsError, load_settings
from orders_platform_tests.servers.moto_s3 import BUCKET, LAKE_ROOT, S3Env, lake_url
from orders_platform_tests.support import DAY, materialize_day

pytestmark = pytest.mark.filterwarnings(
    # fakesnow's server, not our code: it copies DuckDB results to Arrow for the connector.
    "ignore:Arrow output on a DB-API result:UserWarning"
)

ORDERS_GRAPH = [RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS, SILVER_ORDERS]

SNOWFLAKE_PASSWORD = "sf-pw-9f3b1c"
ORDERS_PER_DAY = 1500
EVENTS_PER_DAY = 4000


def day(offset: int = 0) -> str:
    return (DAY + timedelta(days=offset)).isoformat()


# --------------------------------------------------------------------------------------------
# the full graph, production settings from the environment


@pytest.fixture
def production_env(
    s3: S3Env, fakesnow_fast_server: dict, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Every variable of the production configuration; the `s3` fixture has already set
    ORDERS_LAKE_ROOT=s3://bucket/lake and the AWS_* variables for its moto server."""
    env = {
        "ORDERS_WAREHOUSE": "snowflake",
        "SNOWFLAKE_ACCOUNT": fakesnow_fast_server["account"],
        "SNOWFLAKE_USER": "orders_loader",
        "SNOWFLAKE_PASSWORD": SNOWFLAKE_PASSWORD,
        "SNOWFLAKE_DATABASE": f"orders_prod_{uuid.uuid4().hex[:12]}",
        "SNOWFLAKE_SCHEMA": "staging",
        "SNOWFLAKE_WAREHOUSE": "transforming",
        "SNOWFLAKE_ROLE": "loader",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(fakesnow_fast_server["port"]),
        "SNOWFLAKE_PROTOCOL": "http",
        "ORDERS_DEMO_ORDERS_PER_DAY": str(ORDERS_PER_DAY),
        "ORDERS_DEMO_EVENTS_PER_DAY": str(EVENTS_PER_DAY),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert LAKE_ROOT.startswith(f"s3://{BUCKET}/")
    return env


def lake_object(key: AssetKey, partition: str) -> str:
    return lake_url(key, partition).removeprefix(f"s3://{BUCKET}/")


def check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def metadata_text(results) -> str:
    """Every materialization and check metadata value of the runs, serialised."""
    values = []
    for result in results:
        for event in result.get_asset_materialization_events():
            meta = event.materialization.metadata
            values.extend(f"{k}={serialize_value(v)}" for k, v in meta.items())
        for evaluation in result.get_asset_check_evaluations():
            values.extend(f"{k}={serialize_value(v)}" for k, v in evaluation.metadata.items())
    return "\n".join(values)


def stored_text(instance: DagsterInstance, results) -> str:
    """Every stored event of the runs, the runs themselves and their job snapshots (which
    hold the resources' config)."""
    parts = []
    for result in results:
        parts.extend(serialize_value(entry) for entry in instance.all_logs(result.run_id))
        dagster_run = instance.get_run_by_id(result.run_id)
        parts.append(serialize_value(dagster_run))
        parts.append(serialize_value(instance.get_job_snapshot(dagster_run.job_snapshot_id)))
    return "\n".join(parts)


@pytest.mark.timeout(300)  # SNOWFLAKE_* cannot set a network timeout: never hang
def test_production_graph_from_environment(production_env, s3, caplog, capsys):
    from orders_platform.definitions import build_definitions
    from orders_platform.storage.warehouse.snowflake import SnowflakeWarehouse
    from orders_platform.transforms.events import clean_events
    from orders_platform.transforms.sessions import sessions_for_day

    caplog.set_level(logging.DEBUG)
    settings = load_settings()
    defs = build_definitions(settings)
    assert settings.warehouse == "snowflake" and settings.lake_root == LAKE_ROOT

    results = []
    with DagsterInstance.ephemeral() as instance:
        orders_run = materialize_day(defs, day(), instance, ORDERS_GRAPH)
        results.append(orders_run)
        for offset in (-1, 0, 1):
            results.append(materialize_day(defs, day(offset), instance, [RAW_EVENTS]))
        sessions_run = materialize_day(defs, day(), instance, [REJECTED_EVENTS, SILVER_SESSIONS])
        results.append(sessions_run)
        assert all(r.success for r in results)
        assert check_results(orders_run) == {
            "validated_orders_schema": True,
            "orders_reconciliation": True,
            "reject_rate": True,
            "silver_orders_schema": True,
        }
        assert check_results(sessions_run) == {
            "sessions_schema": True,
            "events_reconciliation": True,
        }

        # Snowflake, read through the very resource the runs used (its EnvVar resolved now).
        warehouse = defs.resources["warehouse"]
        assert isinstance(warehouse, SnowflakeWarehouse)
        warehouse = warehouse.process_config_and_initialize()
        assert warehouse.password == SNOWFLAKE_PASSWORD
        assert warehouse.database == production_env["SNOWFLAKE_DATABASE"]
        silver = warehouse.read_table("silver.orders").sort("order_id")

        # Re-materializing the day changes nothing in silver.orders.
        rerun = materialize_day(defs, day(), instance, ORDERS_GRAPH)
        results.append(rerun)
        assert rerun.success and all(check_results(rerun).values())
        (silver_meta,) = [
            e.materialization.metadata
            for e in rerun.get_asset_materialization_events()
            if e.materialization.asset_key == SILVER_ORDERS
        ]
        assert (silver_meta["inserted"].value, silver_meta["updated"].value) == (0, 0)
        assert silver_meta["unchanged"].value == silver.height
        assert_frame_equal(warehouse.read_table("silver.orders").sort("order_id"), silver)

        stored = stored_text(instance, results)

    # The lake on S3: exactly the Hive-style partition files of the runs.
    expected = {lake_object(k, day()) for k in (RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS)}
    expected |= {lake_object(RAW_EVENTS, day(o)) for o in (-1, 0, 1)}
    expected.add(lake_object(REJECTED_EVENTS, day()))
    objects = {path.removeprefix(f"{BUCKET}/") for path in s3.fs().find(f"{BUCKET}/lake")}
    assert objects == expected

    raw = s3.read_lake(RAW_ORDERS, day())
    valid = s3.read_lake(VALIDATED_ORDERS, day()).sort("order_id")
    rejected = s3.read_lake(REJECTED_ORDERS, day())
    assert raw.height >= ORDERS_PER_DAY
    assert raw["_source"].unique().to_list() == ["demo"]
    assert valid["order_id"].is_unique().all()
    assert rejected.height > 0 and rejected["reason"].null_count() == 0
    assert valid.height + rejected.height < raw.height  # duplicates collapsed

    # silver.orders holds exactly the validated rows, with their values.
    assert silver["order_id"].to_list() == valid["order_id"].to_list()
    shared = [c for c in valid.columns if c in silver.columns and c != "_run_id"]
    assert {"order_amount", "status", "created_at", "updated_at", "delivered_at"} <= set(shared)
    assert_frame_equal(silver.select(shared), valid.select(shared))
    assert silver["_run_id"].unique().to_list() == [orders_run.run_id]
    sample_ids = valid["order_id"].gather([0, 17, -1]).to_list()
    sample = silver.filter(pl.col("order_id").is_in(sample_ids))
    assert sample.height == 3
    for row in sample.iter_rows(named=True):
        source = valid.row(by_predicate=pl.col("order_id") == row["order_id"], named=True)
        assert row["total_value"] == (
            source["order_amount"] + source["delivery_fee"] - source["discount_amount"]
        )
        assert isinstance(row["total_value"], Decimal)
        assert row["order_date"] == source["created_at"].date()
        assert row["order_hour"] == source["created_at"].hour
        assert row["created_at"].utcoffset() == timedelta(0)

    # silver.sessions holds the sessions starting on D, as computed from the lake's events.
    events = pl.concat([s3.read_lake(RAW_EVENTS, day(o)) for o in (-1, 0, 1)], how="vertical")
    valid_events = clean_events(events).valid
    expected_sessions = sessions_for_day(
        valid_events, DAY, timedelta(minutes=settings.session_gap_minutes)
    ).sort("session_id")
    sessions = warehouse.read_table("silver.sessions").sort("session_id")
    assert sessions.height > 0
    assert sessions["session_date"].unique().to_list() == [DAY]
    assert_frame_equal(sessions, expected_sessions)
    (sessions_meta,) = [
        e.materialization.metadata
        for e in sessions_run.get_asset_materialization_events()
        if e.materialization.asset_key == SILVER_SESSIONS
    ]
    assert sessions_meta["warehouse"].value == "snowflake"
    assert sessions_meta["sessions"].value == sessions.height

    # No secret anywhere: logs, output, metadata, stored events and snapshots.
    captured = capsys.readouterr()
    loggers = {r.name.split(".")[0] for r in caplog.records if r.levelno == logging.DEBUG}
    assert {"snowflake", "botocore"} <= loggers, "the connector's and boto's DEBUG logs were read"
    meta = metadata_text(results)
    assert "dagster/row_count" in meta
    assert "SNOWFLAKE_PASSWORD" in stored  # the snapshot holds the reference, not the value
    assert "AWS_SECRET_ACCESS_KEY" in stored
    for secret in (SNOWFLAKE_PASSWORD, s3.secret):
        for where, text in {
            "caplog": caplog.text,
            "log records": "\n".join(repr(r.__dict__) for r in caplog.records),
            "stdout/stderr": captured.out + captured.err,
            "metadata": meta,
            "stored run events": stored,
        }.items():
            assert secret not in text, f"a secret leaked into {where}"


# --------------------------------------------------------------------------------------------
# configuration errors at load time


def _snowflake_env(**overrides: str | None) -> dict[str, str | None]:
    return {
        "ORDERS_WAREHOUSE": "snowflake",
        "SNOWFLAKE_ACCOUNT": "acme-xy12345",
        "SNOWFLAKE_USER": "orders_loader",
        "SNOWFLAKE_PASSWORD": SNOWFLAKE_PASSWORD,
        "SNOWFLAKE_DATABASE": "ANALYTICS",
        "SNOWFLAKE_SCHEMA": "PUBLIC",
        **overrides,
    }


API_TOKEN = "api-tok-5e1d77"
CLIENT_SECRET = "oauth-cs-2b8f04"
AWS_SECRET = "aws-sk-7c0d9a"
PG_DSN = "postgresql://reader:pg-pw-31a6e2@db.internal:5432/orders"

ERROR_CASES: dict[str, tuple[dict[str, str | None], str]] = {
    "api-without-url": ({"ORDERS_SOURCE": "api", "ORDERS_API_TOKEN": API_TOKEN}, "ORDERS_API_URL"),
    "api-without-credentials": (
        {"ORDERS_SOURCE": "api", "ORDERS_API_URL": "https://api.example.com/v1"},
        "ORDERS_API_TOKEN",
    ),
    "api-incomplete-oauth": (
        {
            "ORDERS_SOURCE": "api",
            "ORDERS_API_URL": "https://api.example.com/v1",
            "ORDERS_API_TOKEN_URL": "https://auth.example.com/token",
            "ORDERS_API_CLIENT_SECRET": CLIENT_SECRET,
        },
        "ORDERS_API_CLIENT_ID",
    ),
    "postgres-without-dsn": ({"ORDERS_SOURCE": "postgres"}, "ORDERS_PG_DSN"),
    "s3-key-without-secret": (
        {"ORDERS_LAKE_ROOT": "s3://bucket/x", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"},
        "AWS_SECRET_ACCESS_KEY",
    ),
    "s3-secret-without-key": (
        {"ORDERS_LAKE_ROOT": "s3://bucket/x", "AWS_SECRET_ACCESS_KEY": AWS_SECRET},
        "AWS_ACCESS_KEY_ID",
    ),
    "s3-without-bucket": ({"ORDERS_LAKE_ROOT": "s3://"}, "ORDERS_LAKE_ROOT"),
    "s3-without-bucket-with-prefix": ({"ORDERS_LAKE_ROOT": "s3:///lake"}, "ORDERS_LAKE_ROOT"),
    **{
        f"snowflake-without-{name.lower()}": (_snowflake_env(**{name: None}), name)
        for name in (
            "SNOWFLAKE_ACCOUNT",
            "SNOWFLAKE_USER",
            "SNOWFLAKE_PASSWORD",
            "SNOWFLAKE_DATABASE",
            "SNOWFLAKE_SCHEMA",
        )
    },
    "snowflake-empty-database": (_snowflake_env(SNOWFLAKE_DATABASE=""), "SNOWFLAKE_DATABASE"),
}
SECRETS = (SNOWFLAKE_PASSWORD, API_TOKEN, CLIENT_SECRET, AWS_SECRET, PG_DSN, "pg-pw-31a6e2")


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_missing_setting_names_the_variable(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env, variable = ERROR_CASES[case]
    _set_env(monkeypatch, env)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    text = _error_text(caught.value)
    for secret in SECRETS:
        assert secret not in text


def test_missing_setting_fails_the_definitions_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """What loading `orders_platform.definitions` does, with several settings wrong at once:
    one error naming every one of them, and no secret value."""
    from orders_platform.definitions import build_definitions

    _set_env(
        monkeypatch,
        _snowflake_env(
            SNOWFLAKE_USER=None,
            SNOWFLAKE_SCHEMA=None,
            ORDERS_SOURCE="postgres",
            ORDERS_LAKE_ROOT="s3://lake-bucket/prod",
            AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
        ),
    )
    with pytest.raises(SettingsError) as caught:
        build_definitions(load_settings())
    message = str(caught.value)
    for variable in (
        "SNOWFLAKE_USER",
        "SNOWFLAKE_SCHEMA",
        "ORDERS_PG_DSN",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert variable in message
    assert SNOWFLAKE_PASSWORD not in _error_text(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORDERS_WAREHOUSE", "bigquery"),
        ("ORDERS_SOURCE", "ftp"),
        ("SNOWFLAKE_PORT", "not-a-port"),
        ("SNOWFLAKE_PROTOCOL", "gopher"),
        ("ORDERS_LAKE_ROOT", "gs://bucket/lake"),
    ],
)
def test_invalid_setting_names_the_variable_without_secrets(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_env(monkeypatch, _snowflake_env(**{variable: value}))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert variable in str(caught.value)
    assert SNOWFLAKE_PASSWORD not in _error_text(caught.value)
