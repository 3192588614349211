"""Servers shared by the integration tests: fakesnow's Snowflake server and a moto S3 server.

- ``fakesnow_server`` (session): fakesnow's Snowflake-compatible HTTP server in a process of
  its own (`orders_platform_tests.servers.fakesnow_server`), on 127.0.0.1 and a free port,
  with two fakesnow 0.12.1 bugs patched. Tests isolate themselves by connecting to a fresh
  database name.
- ``fakesnow_fast_server`` (session): the same with fast array binding: an array-bound
  ``INSERT ... VALUES (?, ...)`` (the connector's ``executemany``) runs as one DuckDB INSERT
  instead of re-parsing and re-translating the statement for every row, as fakesnow 0.12.1
  does (~20-50 ms a row).
- ``s3`` (per test): a moto S3 server enforcing signatures
  (`orders_platform_tests.servers.moto_s3`); AWS_* and ORDERS_LAKE_ROOT point at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orders_platform_tests.servers.fakesnow_server import fakesnow_process
from orders_platform_tests.servers.moto_s3 import S3Env, moto_s3


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[dict[str, Any]]:
    """fakesnow's Snowflake-compatible HTTP server in its own process, for the whole session;
    yields its connection kwargs (host, port, protocol, ...)."""
    with fakesnow_process() as kwargs:
        yield kwargs


@pytest.fixture(scope="session")
def fakesnow_fast_server() -> Iterator[dict[str, Any]]:
    """A second fakesnow server whose array-bound INSERTs run at once (see
    `servers.fakesnow_server._patch_fakesnow_array_binding`); for tests that load many rows
    through the connector's ``executemany``."""
    with fakesnow_process(fast_array_binding=True) as kwargs:
        yield kwargs


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Env]:
    """A moto S3 server enforcing signatures; AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_REGION and ORDERS_LAKE_ROOT (s3://bucket/lake) point at it."""
    with moto_s3(monkeypatch) as env:
        yield env
