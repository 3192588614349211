"""Loading `defs` the way `dagster dev` and the CLI do, in clean subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from orders_platform_tests.support import REPO_ROOT

EXPECTED_KEYS = {
    "raw/orders",
    "validated/orders",
    "validated/rejected_orders",
    "silver/orders",
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORDERS_", "SNOWFLAKE_", "AWS_", "DAGSTER_"))
    }
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_definitions_load_with_no_environment_variables():
    code = (
        "from orders_platform.definitions import defs\n"
        "graph = defs.resolve_asset_graph()\n"
        "keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())\n"
        "print('|'.join(keys))\n"
    )
    proc = run_python(code, clean_env())
    assert proc.returncode == 0, proc.stderr
    keys = set(proc.stdout.strip().splitlines()[-1].split("|"))
    assert keys >= EXPECTED_KEYS


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ORDERS_PARTITIONS_START", "2026-02-30", "ORDERS_PARTITIONS_START"),
        ("ORDERS_SOURCE", "ftp", "ORDERS_SOURCE"),
        ("ORDERS_MAX_REJECT_RATE", "1.5", "ORDERS_MAX_REJECT_RATE"),
        ("ORDERS_DEMO_ORDERS_PER_DAY", "many", "ORDERS_DEMO_ORDERS_PER_DAY"),
    ],
)
def test_invalid_setting_fails_load_naming_the_variable(variable, value, expected):
    proc = run_python("import orders_platform.definitions", clean_env(**{variable: value}))
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "SettingsError" in proc.stderr


def test_missing_secret_is_named_and_value_never_echoed():
    env = clean_env(ORDERS_SOURCE="postgres")
    proc = run_python("import orders_platform.definitions", env)
    assert proc.returncode != 0
    assert "ORDERS_PG_DSN" in proc.stderr


@pytest.mark.slow
def test_cli_materializes_a_partition(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    lake, duck = tmp_path / "lake", tmp_path / "wh.duckdb"
    env = clean_env(
        DAGSTER_HOME=str(home),
        ORDERS_LAKE_ROOT=str(lake),
        ORDERS_DUCKDB_PATH=str(duck),
        ORDERS_DEMO_ORDERS_PER_DAY="3000",
    )
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [
            str(dagster),
            "asset",
            "materialize",
            "-m",
            "orders_platform.definitions",
            "--select",
            "raw/orders,validated/orders,validated/rejected_orders,silver/orders",
            "--partition",
            "2026-03-17",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for key in ("raw/orders", "validated/orders", "validated/rejected_orders"):
        assert (lake / key / "dt=2026-03-17" / "part-0.parquet").exists()
    import duckdb

    with duckdb.connect(str(duck), read_only=True) as con:
        rows = con.execute(
            "select count(*), count(distinct order_id) from silver.orders"
        ).fetchone()
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'silver' and table_name = 'orders'"
            ).fetchall()
        )
    valid = pl.read_parquet(lake / "validated/orders/dt=2026-03-17/part-0.parquet")
    assert rows == (valid.height, valid.height)
    assert types["order_amount"] == "DECIMAL(12,2)"
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["order_date"] == "DATE"
