"""Shared fixtures: a temporary lake and warehouse, and the orders graph wired to them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from orders_platform_tests.support import OrdersPlatform

# In CI a skipped test is a hidden failure (a service that did not start, a package that did
# not install): it fails instead, unless the test is marked `may_skip_in_ci` and says why.
_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if (
        _CI
        and report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("may_skip_in_ci") is None
    ):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI (CI=true), which hides a missing service: {reason}"


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from the embedded default whatever the developer's shell exports."""
    for name in list(os.environ):
        if name.startswith(("ORDERS_", "SNOWFLAKE_", "OPENLINEAGE")):
            monkeypatch.delenv(name)


@pytest.fixture
def platform(tmp_path: Path) -> OrdersPlatform:
    return OrdersPlatform(tmp=tmp_path)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst
