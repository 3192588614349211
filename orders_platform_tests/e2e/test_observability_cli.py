"""Exporters on a run launched by the CLI (`dagster asset materialize`), in a subprocess
that configures them only through the environment, as in production."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from orders_platform_tests.servers.observability import (
    lineage_receiver,
    pushgateway,
    pushgateway_binary,
)
from orders_platform_tests.support import REPO_ROOT

PARTITION = "2026-03-17"


@pytest.mark.slow
def test_cli_run_pushes_metrics_and_lineage(tmp_path: Path):
    binary = pushgateway_binary()
    if binary is None:
        pytest.skip("prometheus-pushgateway is not installed (.ci/run installs it with apt)")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    lake = tmp_path / "lake"
    with pushgateway(binary) as gateway, lineage_receiver() as receiver:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ORDERS_", "SNOWFLAKE_", "AWS_", "DAGSTER_", "OPENLINEAGE"))
        }
        env.update(
            DAGSTER_HOME=str(home),
            ORDERS_LAKE_ROOT=str(lake),
            ORDERS_DUCKDB_PATH=str(tmp_path / "wh.duckdb"),
            ORDERS_DEMO_ORDERS_PER_DAY="1500",
            ORDERS_PROMETHEUS_PUSHGATEWAY=gateway.url,
            OPENLINEAGE_URL=receiver.url,
            OPENLINEAGE_NAMESPACE="orders-cli",
        )
        proc = subprocess.run(
            [
                str(Path(sys.executable).with_name("dagster")),
                "asset",
                "materialize",
                "-m",
                "orders_platform.definitions",
                "--select",
                "raw/orders,validated/orders,validated/rejected_orders",
                "--partition",
                PARTITION,
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        metrics = gateway.metrics_text()

    rejected = pl.read_parquet(lake / "validated/rejected_orders" / f"dt={PARTITION}")
    raw = pl.read_parquet(lake / "raw/orders" / f"dt={PARTITION}")
    from prometheus_client.parser import text_string_to_metric_families

    samples = [s for f in text_string_to_metric_families(metrics) for s in f.samples]
    rows_out = {
        s.labels["asset"]: s.value
        for s in samples
        if s.name == "orders_platform_rows_out" and s.labels["partition"] == PARTITION
    }
    assert rows_out["raw/orders"] == raw.height
    assert rows_out["validated/rejected_orders"] == rejected.height
    reasons = {
        s.labels["reason"]: s.value for s in samples if s.name == "orders_platform_rows_rejected"
    }
    assert reasons == dict(rejected.group_by("reason").len().iter_rows())

    assert [e["eventType"] for e in receiver.events] == ["START", "COMPLETE"]
    assert {e["job"]["namespace"] for e in receiver.events} == {"orders-cli"}
    complete = receiver.events[-1]
    counts = {
        o["name"]: o["outputFacets"]["outputStatistics"]["rowCount"] for o in complete["outputs"]
    }
    root = lake.resolve().as_posix()
    assert counts == {
        f"{root}/raw/orders": raw.height,
        f"{root}/validated/orders": pl.read_parquet(
            lake / "validated/orders" / f"dt={PARTITION}"
        ).height,
        f"{root}/validated/rejected_orders": rejected.height,
    }
