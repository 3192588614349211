"""Shared fixtures: a temporary lake and warehouse, and the orders graph wired to them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from orders_platform_tests.support import OrdersPlatform


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from the embedded default whatever the developer's shell exports."""
    for name in list(os.environ):
        if name.startswith(("ORDERS_", "SNOWFLAKE_")):
            monkeypatch.delenv(name)


@pytest.fixture
def platform(tmp_path: Path) -> OrdersPlatform:
    return OrdersPlatform(tmp=tmp_path)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst
