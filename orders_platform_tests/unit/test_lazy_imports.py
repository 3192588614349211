"""Loading the definitions imports nothing a demo/DuckDB run does not use (fixed cost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Each costs 0.1-2 s to import; all are imported where they are used, if ever.
NOT_AT_LOAD = (
    "pandera",  # gates run pandera only on a failing frame
    "httpx",  # alert webhook, API source
    "pyarrow",  # row count of a lazy frame written to the lake
    "dagster_aws",
    "boto3",
    "s3fs",
    "dagster_snowflake",
    "snowflake.connector",
    "psycopg2",
)


def test_definitions_load_without_the_optional_heavy_imports() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "SNOWFLAKE_"))}
    code = (
        "import json, sys; import orders_platform.definitions as d; "
        "assert d.defs is not None; "
        f"print(json.dumps([m for m in {list(NOT_AT_LOAD)!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
