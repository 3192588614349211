"""Production storage (SPEC §6): the Parquet lake on S3 and the Dagster instance in PostgreSQL.

S3 is a moto server (``ThreadedMotoServer``) that checks request signatures. The access key
is issued through moto's IAM, and authentication is switched on before the platform runs,
so a wrong or unresolved secret fails here as it would on AWS. PostgreSQL is the local
server: each test creates and drops its own database, and the instance is loaded from a
DAGSTER_HOME holding a copy of ``deploy/dagster.yaml``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, serialize_value

from orders_platform.assets.keys import (
    RAW_EVENTS,
    RAW_ORDERS,
    REJECTED_EVENTS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    SILVER_SESSIONS,
    VALIDATED_ORDERS,
)
from orders_platform.storage import lake
from orders_platform.storage.lake import ParquetLakeIOManager
from orders_platform.storage.s3 import (
    check_lake_bucket,
    lake_storage_options,
    resolve_storage_options,
    s3_resource,
    sweep_lake,
)
from orders_platform_tests.servers.moto_s3 import (
    BUCKET,
    LAKE_ROOT,
    LOGS_BUCKET,
    REGION,
    S3Env,
    lake_url,
)
from orders_platform_tests.support import DAY, REPO_ROOT, OrdersPlatform, materialize_day

ORDERS_GRAPH = [RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS, SILVER_ORDERS]
LAKE_ORDERS = [RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS]

VOLUME = {"ORDERS_DEMO_ORDERS_PER_DAY": "2000", "ORDERS_DEMO_EVENTS_PER_DAY": "5000"}
# Lineage of the writing run: differs between runs by design.
RUN_SPECIFIC = ("_run_id", "_extracted_at", "ingested_at")

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("TEST_PG_PORT", "5432")
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("TEST_PG_PASSWORD", "")


def day(offset: int) -> str:
    return (DAY + timedelta(days=offset)).isoformat()


# --------------------------------------------------------------------------------------------
# S3: a moto server that enforces signatures (the `s3` fixture of conftest.py)


@dataclass
class _S3Settings:
    """The three settings lake_storage_options reads (settings_like)."""

    aws_endpoint_url: str
    aws_region: str = REGION
    lake_root: str = LAKE_ROOT


def production_definitions(platform: OrdersPlatform, **overrides):
    """Definitions for the S3 lake, built from settings alone (resources.py wires the lake's
    storage options). Returns (settings, defs, resources)."""
    from orders_platform.definitions import build_definitions

    settings = platform.settings(ORDERS_LAKE_ROOT=LAKE_ROOT, **{**VOLUME, **overrides})
    defs = build_definitions(settings)
    resources = dict(defs.resources)
    assert resources["lake_io_manager"].storage_options, "resources.py wires S3 options"
    return settings, defs, resources


def stable(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop([c for c in RUN_SPECIFIC if c in frame.columns])


def lake_objects(s3: S3Env) -> list[str]:
    return sorted(s3.fs().find(f"{BUCKET}/lake"))


def leaks(text: str, secret: str) -> bool:
    return secret in text or secret[:16] in text


def run_event_text(instance: DagsterInstance, run_ids) -> str:
    """Every stored event of the runs (messages, metadata, check results) as text, plus the
    job snapshots the runs point at (they hold resource config defaults)."""
    parts = []
    for run_id in run_ids:
        parts.extend(serialize_value(entry) for entry in instance.all_logs(run_id))
        dagster_run = instance.get_run_by_id(run_id)
        parts.append(serialize_value(dagster_run))
        parts.append(serialize_value(instance.get_job_snapshot(dagster_run.job_snapshot_id)))
    return "\n".join(parts)


def metadata_text(results) -> str:
    values = []
    for result in results:
        for event in result.all_events:
            if event.is_step_materialization:
                meta = event.step_materialization_data.materialization.metadata
                values.extend(f"{k}={serialize_value(v)}" for k, v in meta.items())
        for evaluation in result.get_asset_check_evaluations():
            values.extend(f"{k}={serialize_value(v)}" for k, v in evaluation.metadata.items())
    return "\n".join(values)


# --------------------------------------------------------------------------------------------
# the helper itself


def test_storage_options_hold_env_references_not_secrets(monkeypatch):
    import dagster as dg

    settings = _S3Settings("http://127.0.0.1:9000")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-4f8a1c")
    options = lake_storage_options(settings)
    assert options["endpoint_url"] == "http://127.0.0.1:9000"
    assert options["region"] == REGION
    assert isinstance(options["key"], dg.EnvVar) and options["key"].env_var_name == (
        "AWS_ACCESS_KEY_ID"
    )
    assert isinstance(options["secret"], dg.EnvVar)
    assert options["secret"].env_var_name == "AWS_SECRET_ACCESS_KEY"
    assert resolve_storage_options(options)["secret"] == "not-a-real-secret-4f8a1c"

    # Only references reach the job snapshot stored in the instance; a plain string would.
    @dg.asset(io_manager_key="lake")
    def probe() -> None: ...

    def job_snapshot(storage_options) -> str:
        lake_io = ParquetLakeIOManager(root=LAKE_ROOT, storage_options=storage_options)
        defs = dg.Definitions(assets=[probe], resources={"lake": lake_io})
        return serialize_value(defs.resolve_implicit_global_asset_job_def().get_job_snapshot())

    assert "not-a-real-secret-4f8a1c" not in job_snapshot(options)
    assert "AWS_SECRET_ACCESS_KEY" in job_snapshot(options)
    # A resolved value, by contrast, would be stored with the snapshot in the instance.
    assert "not-a-real-secret-4f8a1c" in job_snapshot(resolve_storage_options(options))

    # The S3Resource carries the same references.
    resource = s3_resource(settings)
    assert resource.endpoint_url == "http://127.0.0.1:9000"
    assert resource.region_name == REGION
    assert resource.aws_secret_access_key.env_var_name == "AWS_SECRET_ACCESS_KEY"
    assert resource.process_config_and_initialize().aws_secret_access_key == (
        "not-a-real-secret-4f8a1c"
    )


def test_storage_options_settings_errors_name_the_variable(monkeypatch):
    from orders_platform.settings import SettingsError

    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    assert lake_storage_options(_S3Settings("http://h:1", lake_root="/data/lake")) == {}
    # No key pair: the default AWS credential chain (role, IRSA, profile) applies.
    assert lake_storage_options(_S3Settings("https://s3.example.com")) == {
        "endpoint_url": "https://s3.example.com",
        "region": REGION,
    }
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    with pytest.raises(SettingsError, match="AWS_SECRET_ACCESS_KEY must be set together"):
        lake_storage_options(_S3Settings("https://s3.example.com"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(SettingsError, match="AWS_ENDPOINT_URL"):
        lake_storage_options(_S3Settings("s3.example.com:9000"))
    with pytest.raises(SettingsError, match="ORDERS_LAKE_ROOT"):
        lake_storage_options(_S3Settings("https://s3.example.com", lake_root="s3:///no-bucket"))


# --------------------------------------------------------------------------------------------
# the graphs on S3


def test_orders_and_sessions_on_s3(s3, tmp_path, caplog, capsys):
    import duckdb

    caplog.set_level(logging.DEBUG)
    platform = OrdersPlatform(tmp_path)
    settings, defs, resources = production_definitions(platform)
    days = [day(0), day(1)]
    results = []
    with DagsterInstance.ephemeral() as instance:
        for partition in days:
            results.append(
                materialize_day(defs, partition, instance, ORDERS_GRAPH, resources=resources)
            )
        for offset in (-1, 0, 1):
            results.append(
                materialize_day(defs, day(offset), instance, [RAW_EVENTS], resources=resources)
            )
        results.append(
            materialize_day(
                defs, day(0), instance, [REJECTED_EVENTS, SILVER_SESSIONS], resources=resources
            )
        )
        assert all(r.success for r in results)
        stored_events = run_event_text(instance, [r.run_id for r in results])

    # Hive layout on S3, one data file per partition, no temporary objects left.
    expected = {
        lake_url(key, partition).removeprefix("s3://") for key in LAKE_ORDERS for partition in days
    }
    expected |= {lake_url(RAW_EVENTS, day(o)).removeprefix("s3://") for o in (-1, 0, 1)}
    expected.add(lake_url(REJECTED_EVENTS, day(0)).removeprefix("s3://"))
    assert set(lake_objects(s3)) == expected

    # Polars (object_store) reads every partition back.
    frames = {(key, p): s3.read_lake(key, p) for key in LAKE_ORDERS for p in days}
    for partition in days:
        raw = frames[(RAW_ORDERS, partition)]
        valid = frames[(VALIDATED_ORDERS, partition)]
        rejected = frames[(REJECTED_ORDERS, partition)]
        assert raw.height >= 2000
        assert valid["order_id"].is_unique().all()
        assert rejected.height > 0 and rejected["reason"].null_count() == 0
        assert valid.height + rejected.height < raw.height  # duplicates collapsed
    # ... and so does the IO manager outside a run, once its EnvVars are resolved.
    resolved_io = resources["lake_io_manager"].process_config_and_initialize()
    assert resolved_io.read_partition(VALIDATED_ORDERS.path, day(0)).equals(
        frames[(VALIDATED_ORDERS, day(0))]
    )

    # DuckDB reads the lake as a Hive-partitioned dataset, here through s3fs (fsspec).
    con = duckdb.connect()
    con.register_filesystem(s3.fs())
    counts = dict(
        con.execute(
            "select cast(dt as varchar), count(*) from read_parquet("
            f"'{LAKE_ROOT}/validated/orders/*/*.parquet', hive_partitioning = true) "
            "group by all order by 1"
        ).fetchall()
    )
    con.close()
    assert counts == {p: frames[(VALIDATED_ORDERS, p)].height for p in days}

    # The warehouse got both days and the sessions of D.
    silver = platform.warehouse().read_table("silver.orders")
    valid_ids = pl.concat([frames[(VALIDATED_ORDERS, p)].select("order_id") for p in days])
    assert set(silver["order_id"].to_list()) == set(valid_ids["order_id"].to_list())
    sessions = platform.warehouse().read_table("silver.sessions")
    assert sessions.height > 0
    assert set(sessions["session_date"].cast(pl.String).to_list()) == {day(0)}

    # Re-materializing replaces each partition with the same content.
    silver_before = silver.sort("order_id")
    sessions_before = sessions.sort("session_id")
    with DagsterInstance.ephemeral() as instance:
        again = [materialize_day(defs, day(0), instance, ORDERS_GRAPH, resources=resources)]
        again.append(
            materialize_day(
                defs, day(0), instance, [REJECTED_EVENTS, SILVER_SESSIONS], resources=resources
            )
        )
        assert all(r.success for r in again)
        stored_events += run_event_text(instance, [r.run_id for r in again])
    for key in LAKE_ORDERS:
        assert stable(s3.read_lake(key, day(0))).equals(stable(frames[(key, day(0))]))
    assert set(lake_objects(s3)) == expected
    assert platform.warehouse().read_table("silver.orders").sort("order_id").equals(silver_before)
    assert stable(platform.warehouse().read_table("silver.sessions").sort("session_id")).equals(
        stable(sessions_before)
    )

    # The secret is in no log line, no stored event, no snapshot and no metadata value.
    captured = capsys.readouterr()
    assert caplog.records, "logging was captured"
    assert not leaks(caplog.text, s3.secret)
    assert not leaks(captured.out + captured.err, s3.secret)
    assert not leaks(stored_events, s3.secret)
    assert "AWS_SECRET_ACCESS_KEY" in stored_events  # the snapshot holds the reference
    meta = metadata_text(results + again)
    assert "dagster/row_count" in meta
    assert not leaks(meta, s3.secret)


def test_failed_write_keeps_the_previous_partition_whole(s3, tmp_path, monkeypatch):
    import duckdb

    platform = OrdersPlatform(tmp_path)
    settings, defs, resources = production_definitions(platform)
    partition = day(0)
    with DagsterInstance.ephemeral() as instance:
        materialize_day(
            defs,
            partition,
            instance,
            [RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS],
            resources=resources,
        )
        before = {key: s3.read_lake(key, partition) for key in LAKE_ORDERS}
        objects_before = lake_objects(s3)

        written = []

        def crash_midway(frame, fs, target):
            if isinstance(frame, pl.LazyFrame):
                frame = frame.collect()
            buffer = io.BytesIO()
            frame.write_parquet(buffer)
            data = buffer.getvalue()
            fs.pipe_file(target, data[: len(data) // 2])  # half of the file reached S3
            written.append(target)
            raise OSError("simulated crash in the middle of a lake write")

        with monkeypatch.context() as patch:
            patch.setattr(lake, "_write_frame", crash_midway)
            failed = materialize_day(
                defs,
                partition,
                instance,
                [RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS],
                resources=resources,
                raise_on_error=False,
            )
        assert not failed.success
        assert written, "the write was attempted"

        # Readers still see the previous, complete partitions.
        for key, frame in before.items():
            assert s3.read_lake(key, partition).equals(frame)
        assert lake_objects(s3) == objects_before

        # A hard crash (no cleanup) leaves a half-written temporary object and perhaps an
        # unfinished multipart upload; readers of `*.parquet` see neither.
        directory = lake_url(VALIDATED_ORDERS, partition).rsplit("/", 1)[0]
        leftover = f"{directory}/.part-0.parquet.{uuid.uuid4().hex}.tmp"
        leftover_key = leftover.removeprefix(f"s3://{BUCKET}/")
        s3.fs().pipe_file(leftover, b"PAR1 half a file")
        con = duckdb.connect()
        con.register_filesystem(s3.fs())
        (rows,) = con.execute(
            f"select count(*) from read_parquet('{LAKE_ROOT}/validated/orders/*/*.parquet')"
        ).fetchone()
        con.close()
        assert rows == before[VALIDATED_ORDERS].height

        # The S3 sweep keeps recent leftovers (a write may be in flight) and removes old ones.
        client = s3_resource(settings).process_config_and_initialize()
        assert sweep_lake(client, LAKE_ROOT).deleted_tmp_objects == ()
        # (moto reports every multipart upload as initiated in 2010, so the upload is
        # created only now, after the age-filtered sweep.)
        upload_key = f"{leftover_key}.upload"
        s3.client().create_multipart_upload(Bucket=BUCKET, Key=upload_key)
        report = sweep_lake(client, LAKE_ROOT, older_than=timedelta(0))
        assert report.deleted_tmp_objects == (leftover_key,)
        assert report.aborted_uploads == (upload_key,)
        assert s3.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
        assert lake_objects(s3) == objects_before

        # The next write succeeds and replaces the partitions.
        assert materialize_day(defs, partition, instance, LAKE_ORDERS, resources=resources).success
    for key, frame in before.items():
        assert stable(s3.read_lake(key, partition)).equals(stable(frame))
    assert lake_objects(s3) == objects_before


def test_lake_bucket_check_names_the_setting(s3, monkeypatch):
    from orders_platform.settings import SettingsError

    client = s3_resource(_S3Settings(s3.endpoint)).process_config_and_initialize()
    assert check_lake_bucket(client, LAKE_ROOT) == BUCKET
    with pytest.raises(SettingsError, match=r"ORDERS_LAKE_ROOT=s3://missing/lake: bucket 'mis"):
        check_lake_bucket(client, "s3://missing/lake")

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + s3.secret[6:])
    refused = s3_resource(_S3Settings(s3.endpoint)).process_config_and_initialize()
    with pytest.raises(SettingsError, match="access to bucket 'bucket'.* refused") as info:
        check_lake_bucket(refused, LAKE_ROOT)
    assert s3.secret[6:] not in str(info.value)


@pytest.mark.may_skip_in_ci  # the httpfs extension is a download; this machine is offline
def test_duckdb_httpfs_reads_the_s3_lake(s3, tmp_path):
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("LOAD httpfs")
    except duckdb.Error:
        try:
            con.execute("INSTALL httpfs")
            con.execute("LOAD httpfs")
        except duckdb.Error as exc:
            con.close()
            pytest.skip(
                "DuckDB's httpfs extension is not installed and cannot be downloaded here "
                f"(offline; {str(exc).splitlines()[0][:120]}). The same Hive-partitioned S3 "
                "read is covered through fsspec in test_orders_and_sessions_on_s3."
            )
    platform = OrdersPlatform(tmp_path)
    _, defs, resources = production_definitions(platform)
    with DagsterInstance.ephemeral() as instance:
        materialize_day(defs, day(0), instance, [RAW_ORDERS], resources=resources)
    con.execute(
        "CREATE SECRET lake (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, "
        "URL_STYLE 'path', USE_SSL false)",
        [s3.key_id, s3.secret, REGION, s3.endpoint.removeprefix("http://")],
    )
    (rows,) = con.execute(
        f"select count(*) from read_parquet('{LAKE_ROOT}/raw/orders/*/*.parquet', "
        "hive_partitioning = true)"
    ).fetchone()
    con.close()
    assert rows == s3.read_lake(RAW_ORDERS, day(0)).height


# --------------------------------------------------------------------------------------------
# the Dagster instance in PostgreSQL (deploy/dagster.yaml)


def _pg_connect(dbname: str):
    psycopg2 = pytest.importorskip("psycopg2")
    return psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname=dbname
    )


@pytest.fixture
def pg_database() -> Iterator[str]:
    name = f"orders_platform_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = _pg_connect("postgres")
    except Exception as exc:  # no server: say so rather than fail every assertion
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {exc}")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_home(s3, pg_database, tmp_path, monkeypatch) -> Path:
    """A DAGSTER_HOME with deploy/dagster.yaml, its variables pointing at the test servers."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for name, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": PG_PORT,
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": PG_PASSWORD,
        "DAGSTER_PG_DB": pg_database,
        "DAGSTER_COMPUTE_LOGS_BUCKET": LOGS_BUCKET,
        "DAGSTER_COMPUTE_LOGS_PREFIX": "compute-logs",
    }.items():
        monkeypatch.setenv(name, value)
    return home


def _pg_rows_text(dbname: str) -> str:
    """Every row of every table of the instance database, as text (snapshots decompressed)."""
    parts = []
    with _pg_connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("select tablename from pg_tables where schemaname = 'public'")
        for (table,) in cur.fetchall():
            cur.execute(f'select * from "{table}"')
            for row in cur.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes):
                        raw = bytes(value)
                        with contextlib.suppress(zlib.error):
                            raw = zlib.decompress(raw)
                        parts.append(raw.decode("utf-8", "replace"))
                    else:
                        parts.append(str(value))
    return "\n".join(parts)


def test_postgres_instance_from_deploy_yaml(pg_home, pg_database, s3, tmp_path):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    platform = OrdersPlatform(tmp_path)
    _, defs, resources = production_definitions(platform)
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 4 * 3600
        assert not instance.telemetry_enabled

        result = materialize_day(defs, day(0), instance, ORDERS_GRAPH, resources=resources)
        assert result.success
        records = instance.fetch_materializations(SILVER_ORDERS, limit=10).records
        assert [(r.run_id, r.asset_materialization.partition) for r in records] == [
            (result.run_id, day(0))
        ]
        assert instance.get_run_by_id(result.run_id).is_success

    # The event log really is in PostgreSQL.
    with _pg_connect(pg_database) as conn, conn.cursor() as cur:
        cur.execute(
            "select asset_key, partition from event_logs "
            "where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
            (result.run_id,),
        )
        stored_materializations = sorted(cur.fetchall())
    assert stored_materializations == sorted((k.to_string(), day(0)) for k in ORDERS_GRAPH)

    # Step logs went to S3, and nothing in the instance or the logs holds the secret.
    log_keys = s3.fs().find(f"{LOGS_BUCKET}/compute-logs")
    assert log_keys, "S3ComputeLogManager uploaded the step logs"
    logs_text = "\n".join(s3.fs().cat(k).decode("utf-8", "replace") for k in log_keys)
    assert not leaks(logs_text, s3.secret)
    stored = _pg_rows_text(pg_database)
    assert result.run_id in stored
    assert not leaks(stored, s3.secret)


@pytest.mark.slow
def test_four_partitions_in_parallel_from_the_cli(pg_home, tmp_path):
    """Four `dagster asset materialize` processes on one PostgreSQL instance and one DuckDB
    file: all succeed (the warehouse pool and DuckDB's lock retries serialise the writes)."""
    platform = OrdersPlatform(tmp_path)
    days = [day(i) for i in range(4)]
    env = {
        **os.environ,
        "ORDERS_LAKE_ROOT": platform.lake_root,
        "ORDERS_DUCKDB_PATH": platform.duckdb_path,
        "ORDERS_DEMO_ORDERS_PER_DAY": "2000",
        "PYTHONUNBUFFERED": "1",
    }
    dagster_cli = Path(sys.executable).with_name("dagster")
    # As at deployment (`dagster instance migrate`), the schema exists before processes run
    # in parallel: concurrent first starts race to create the tables.
    with DagsterInstance.get():
        pass
    select = ",".join("/".join(k.path) for k in ORDERS_GRAPH)
    procs = []
    logs = []
    try:
        for partition in days:
            log = open(tmp_path / f"cli-{partition}.log", "wb")  # noqa: SIM115
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [str(dagster_cli), "asset", "materialize", "-m", "orders_platform.definitions"]
                    + ["--select", select, "--partition", partition],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group, stopped by its id below
                )
            )
        deadline = time.monotonic() + 150
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in logs:
            log.close()

    outputs = {p: (tmp_path / f"cli-{p}.log").read_text(errors="replace") for p in days}
    for proc, partition in zip(procs, days, strict=True):
        assert proc.returncode == 0, f"{partition}:\n{outputs[partition][-4000:]}"
    silver = platform.warehouse().read_table("silver.orders")
    assert sorted(silver["order_date"].cast(pl.String).unique().to_list())[-4:] == days
    with DagsterInstance.get() as instance:
        statuses = [r.status.value for r in instance.get_runs()]
    assert statuses == ["SUCCESS"] * 4
