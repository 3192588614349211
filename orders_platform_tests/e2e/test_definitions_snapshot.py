"""What `build_definitions` wires, compared with a committed snapshot.

A renamed asset, a lost retry/backfill/freshness policy, a check that stops blocking or a
schedule that changes cadence fails here loudly. The snapshot is taken from the real wiring
(settings -> `build_definitions`), not from a Definitions rebuilt by the test. After an
intended change, regenerate it with

    UPDATE_DEFINITIONS_SNAPSHOT=1 .venv/bin/python -m pytest \
        orders_platform_tests/e2e/test_definitions_snapshot.py

and review the diff of definitions_snapshot.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dagster import AssetsDefinition, Definitions

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")

# A setting that changes the wiring: the source assets' retry policy comes from it.
SETTINGS = {
    "ORDERS_PARTITIONS_START": "2026-01-01",
    "ORDERS_SOURCE_MAX_RETRIES": "2",
}


def _policy(policy: Any) -> Any:
    if policy is None:
        return None
    return {k: str(v) for k, v in sorted(policy._asdict().items())}


def _partitions(partitions_def: Any) -> Any:
    if partitions_def is None:
        return None
    return {
        "type": type(partitions_def).__name__,
        "start": partitions_def.start.isoformat(),
        "timezone": partitions_def.timezone,
        "cron": partitions_def.cron_schedule,
        "end_offset": partitions_def.end_offset,
    }


def _asset(assets_def: AssetsDefinition, key: Any) -> dict[str, Any]:
    spec = next(s for s in assets_def.specs if s.key == key)
    op = assets_def.node_def
    backfill = assets_def.backfill_policy
    return {
        "group": spec.group_name,
        "kinds": sorted(t.removeprefix("dagster/kind/") for t in spec.tags if "kind" in t),
        "owners": list(spec.owners),
        "partitions": _partitions(spec.partitions_def),
        "backfill_policy": None
        if backfill is None
        else {"max_partitions_per_run": backfill.max_partitions_per_run},
        "retry_policy": _policy(getattr(op, "retry_policy", None)),
        "freshness_policy": None if spec.freshness_policy is None else repr(spec.freshness_policy),
        "pool": getattr(op, "pool", None),
        "deps": sorted(d.asset_key.to_user_string() for d in spec.deps),
        "op": op.name,
    }


def snapshot(defs: Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        assets[key.to_user_string()] = _asset(graph.get(key).assets_def, key)
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (str(k.asset_key), k.name)):
        spec = graph.get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {
            "blocking": spec.blocking
        }
    jobs = {
        job.name: sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
        for job in defs.resolve_all_job_defs()
        if not job.name.startswith("__")
    }
    schedules = {
        s.name: {
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
            "default_status": s.default_status.value,
            "job": s.job_name,
        }
        for s in (defs.resolve_schedule_def(s.name) for s in defs.schedules or [])
    }
    sensors = {
        s.name: {
            "type": type(s).__name__,
            "default_status": s.default_status.value,
            "interval_seconds": s.minimum_interval_seconds,
        }
        for s in (defs.resolve_sensor_def(s.name) for s in defs.sensors or [])
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
        "resources": sorted(defs.resources or {}),
        "executor": defs.executor.name if defs.executor else None,
    }


def test_definitions_match_the_snapshot(monkeypatch) -> None:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    from orders_platform.definitions import build_definitions
    from orders_platform.settings import load_settings

    actual = snapshot(build_definitions(load_settings()))
    text = json.dumps(actual, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_DEFINITIONS_SNAPSHOT"):
        SNAPSHOT.write_text(text)
    expected = json.loads(SNAPSHOT.read_text())
    assert actual == expected, (
        "build_definitions changed; if intended, regenerate with "
        "UPDATE_DEFINITIONS_SNAPSHOT=1 (see this module's docstring) and review the diff"
    )
    # The wiring the snapshot stands for, stated plainly:
    assert actual["assets"]["raw/orders"]["retry_policy"]["max_retries"] == "2"
    assert actual["checks"]["validated/orders:orders_reconciliation"]["blocking"] is True
