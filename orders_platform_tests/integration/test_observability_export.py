"""Metrics in a real Prometheus Pushgateway and OpenLineage events at a local HTTP receiver,
checked against what the run left in the lake and the warehouse (SPEC §10)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetsDefinition

from orders_platform.assets.keys import (
    RAW_EVENTS,
    RAW_ORDERS,
    REJECTED_EVENTS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    VALIDATED_ORDERS,
)
from orders_platform.settings import Settings, SettingsError, load_settings
from orders_platform_tests.servers.observability import (
    lineage_receiver,
    pushgateway,
    pushgateway_binary,
)
from orders_platform_tests.support import DAY, REPO_ROOT, materialize_day

ORDERS_GRAPH = [RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS, SILVER_ORDERS]
PARTITION = DAY.isoformat()
SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "openlineage"
ORDERS_CHECKS = {"orders_reconciliation", "reject_rate", "validated_orders_schema"}


@pytest.fixture
def gateway_binary() -> str:
    binary = pushgateway_binary()
    if binary is None:
        pytest.skip("prometheus-pushgateway is not installed (.ci/run installs it with apt)")
    return binary


@pytest.fixture
def lineage_env(monkeypatch: pytest.MonkeyPatch):
    """OPENLINEAGE_* set by the test; the client copies OPENLINEAGE_URL into
    OPENLINEAGE__TRANSPORT__* variables of its own, removed here afterwards."""
    yield monkeypatch
    for name in list(os.environ):
        if name.startswith("OPENLINEAGE__"):
            del os.environ[name]


def lake_frame(platform, key, partition: str = PARTITION) -> pl.DataFrame:
    return pl.read_parquet(Path(platform.lake_root, *key.path, f"dt={partition}", "*.parquet"))


def scrape(gateway) -> dict[tuple[str, tuple], float]:
    """Every orders_platform_* sample as {(name, sorted labels): value}; a duplicated series
    fails the test (a dict would hide it)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(gateway.metrics_text()):
        for sample in family.samples:
            if not sample.name.startswith("orders_platform_"):
                continue
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicated series {key}"
            samples[key] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    found = [
        v
        for (n, lbls), v in samples.items()
        if n == f"orders_platform_{name}" and labels.items() <= dict(lbls).items()
    ]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


@pytest.mark.slow
def test_partition_leaves_exact_metrics_and_rerun_replaces_them(platform, instance, gateway_binary):
    with pushgateway(gateway_binary) as gateway:
        defs = platform.definitions(ORDERS_PROMETHEUS_PUSHGATEWAY=gateway.url)
        started = time.time()
        assert materialize_day(defs, PARTITION, instance, ORDERS_GRAPH).success
        first = scrape(gateway)

        raw, valid = lake_frame(platform, RAW_ORDERS), lake_frame(platform, VALIDATED_ORDERS)
        rejected = lake_frame(platform, REJECTED_ORDERS)
        silver = platform.warehouse().read_table("silver.orders")
        day = {"partition": PARTITION, "job": "orders_platform"}
        assert value(first, "rows_out", asset="raw/orders", **day) == raw.height
        assert value(first, "rows_in", asset="validated/orders", **day) == raw.height
        assert value(first, "rows_out", asset="validated/orders", **day) == valid.height
        assert value(first, "rows_out", asset="validated/rejected_orders", **day) == rejected.height
        assert value(first, "rows_in", asset="silver/orders", **day) == valid.height
        assert value(first, "rows_out", asset="silver/orders", **day) == silver.height
        by_reason = {
            dict(lbls)["reason"]: v
            for (n, lbls), v in first.items()
            if n == "orders_platform_rows_rejected"
        }
        lake_reasons = dict(rejected.group_by("reason").len().iter_rows())
        assert rejected.height > 0 and by_reason == lake_reasons
        assert sum(by_reason.values()) == rejected.height
        for check in ORDERS_CHECKS:
            assert value(first, "check_passed", asset="validated/orders", check=check) == 1
        assert value(first, "check_passed", check="silver_orders_schema") == 1
        for asset in ("raw/orders", "validated/orders", "silver/orders"):
            assert started <= value(first, "last_success_timestamp_seconds", asset=asset)
            assert value(first, "last_success_timestamp_seconds", asset=asset) <= time.time()
            assert value(first, "materialization_duration_seconds", asset=asset) > 0
            assert value(first, "materialization_failed", asset=asset) == 0
        assert all("run_id" not in dict(lbls) for _, lbls in first)

        assert materialize_day(defs, PARTITION, instance, ORDERS_GRAPH).success
        second = scrape(gateway)
        assert set(second) == set(first)  # same series, replaced in place
        for key, v in first.items():
            if key[0] == "orders_platform_last_success_timestamp_seconds":
                assert second[key] > v
            elif key[0] != "orders_platform_materialization_duration_seconds":
                assert second[key] == v, key


@pytest.mark.slow
def test_partitions_and_events_keep_their_own_series(platform, instance, gateway_binary):
    with pushgateway(gateway_binary) as gateway:
        defs = platform.definitions(ORDERS_PROMETHEUS_PUSHGATEWAY=gateway.url)
        other = (DAY.replace(day=DAY.day + 1)).isoformat()
        assert materialize_day(defs, PARTITION, instance, [RAW_ORDERS]).success
        assert materialize_day(defs, other, instance, [RAW_ORDERS]).success
        assert materialize_day(defs, PARTITION, instance, [RAW_EVENTS, REJECTED_EVENTS]).success
        samples = scrape(gateway)
        for partition in (PARTITION, other):
            assert (
                value(samples, "rows_out", asset="raw/orders", partition=partition)
                == lake_frame(platform, RAW_ORDERS, partition).height
            )
        dead = lake_frame(platform, REJECTED_EVENTS)
        reasons = {
            dict(lbls)["reason"]: v
            for (n, lbls), v in samples.items()
            if n == "orders_platform_rows_rejected"
            and dict(lbls)["asset"] == "validated/rejected_events"
        }
        assert reasons == dict(dead.group_by("reason").len().iter_rows())
        assert value(samples, "rows_in", asset="validated/rejected_events") == (
            lake_frame(platform, RAW_EVENTS).height
        )


def test_run_succeeds_with_one_warning_when_pushgateway_is_down(platform, instance, gateway_binary):
    with pushgateway(gateway_binary) as gateway:
        url = gateway.url
    # stopped: its port refuses connections
    defs = platform.definitions(ORDERS_PROMETHEUS_PUSHGATEWAY=url)
    result = materialize_day(defs, PARTITION, instance, ORDERS_GRAPH)
    assert result.success
    warnings = [
        r.user_message
        for r in instance.all_logs(result.run_id)
        if r.level == 30 and "Pushgateway" in r.user_message
    ]
    assert len(warnings) == 1, warnings
    assert f"at {url.removeprefix('http://')} (ORDERS_PROMETHEUS_PUSHGATEWAY)" in warnings[0]
    assert platform.warehouse().read_table("silver.orders").height == (
        lake_frame(platform, VALIDATED_ORDERS).height
    )


def _validator():
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = []
    shipped = REPO_ROOT / "deploy" / "openlineage"
    for path in [*SCHEMAS.glob("*.json"), *shipped.glob("*.json")]:
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    core = json.loads((SCHEMAS / "OpenLineage.json").read_text())
    by_file = {uri.rsplit("/", 1)[-1]: schema for uri, schema in resources}

    def validate(event: dict) -> None:
        Draft202012Validator(core, registry=registry).validate(event)
        facets = [
            *event["run"].get("facets", {}).values(),
            *event["job"].get("facets", {}).values(),
        ]
        for ds in [*event.get("inputs", []), *event.get("outputs", [])]:
            facets += [*ds.get("facets", {}).values(), *ds.get("outputFacets", {}).values()]
        for facet in facets:
            url = facet["_schemaURL"]
            file, _, pointer = url.partition("#")
            name = file.rsplit("/", 1)[-1]
            assert name in by_file, f"no schema for facet {url}"
            schema = by_file[name].contents
            ref = {"$ref": f"{schema['$id']}#{pointer}"}
            Draft202012Validator(ref, registry=registry).validate(facet)

    return validate


def test_lineage_start_and_complete_with_exact_datasets(platform, instance, lineage_env):
    with lineage_receiver() as receiver:
        lineage_env.setenv("OPENLINEAGE_URL", receiver.url)
        lineage_env.setenv("OPENLINEAGE_NAMESPACE", "orders-test")
        lineage_env.setenv("OPENLINEAGE_API_KEY", "ol-secret-key-123")
        defs = platform.definitions()
        result = materialize_day(defs, PARTITION, instance, ORDERS_GRAPH)
        assert result.success

    assert [e["eventType"] for e in receiver.events] == ["START", "COMPLETE"]
    validate = _validator()
    for event in receiver.events:
        validate(event)
        assert event["run"]["runId"] == result.run_id
        assert event["job"]["namespace"] == "orders-test"
        assert event["job"]["name"] == (
            f"raw/orders,silver/orders,validated/orders,validated/rejected_orders@{PARTITION}"
        )
        assert event["run"]["facets"]["nominalTime"]["nominalStartTime"].startswith(PARTITION)
    assert all(p == "/api/v1/lineage" for p in receiver.paths)
    assert all(h.get("Authorization") == "Bearer ol-secret-key-123" for h in receiver.headers)

    lake = Path(platform.lake_root).resolve().as_posix()
    warehouse_ns = f"duckdb://{Path(platform.duckdb_path).resolve().as_posix()}"
    complete = receiver.events[-1]
    outputs = {(o["namespace"], o["name"]): o for o in complete["outputs"]}
    assert set(outputs) == {
        ("file", f"{lake}/raw/orders"),
        ("file", f"{lake}/validated/orders"),
        ("file", f"{lake}/validated/rejected_orders"),
        (warehouse_ns, "silver.orders"),
    }
    assert complete["inputs"] == []
    rows = {
        f"{lake}/raw/orders": lake_frame(platform, RAW_ORDERS).height,
        f"{lake}/validated/orders": lake_frame(platform, VALIDATED_ORDERS).height,
        f"{lake}/validated/rejected_orders": lake_frame(platform, REJECTED_ORDERS).height,
        "silver.orders": platform.warehouse().read_table("silver.orders").height,
    }
    for (_, name), output in outputs.items():
        assert output["outputFacets"]["outputStatistics"]["rowCount"] == rows[name]
        assert output["facets"]["dataQualityMetrics"]["rowCount"] == rows[name]
        assert output["facets"]["schema"]["fields"]
    valid_schema = outputs[("file", f"{lake}/validated/orders")]["facets"]["schema"]["fields"]
    assert {f["name"] for f in valid_schema} == set(lake_frame(platform, VALIDATED_ORDERS).columns)
    assertions = outputs[("file", f"{lake}/validated/orders")]["facets"]["dataQualityAssertions"]
    assert {(a["assertion"], a["success"]) for a in assertions["assertions"]} == {
        (c, True) for c in ORDERS_CHECKS
    }
    dead = outputs[("file", f"{lake}/validated/rejected_orders")]["facets"]
    rejected = lake_frame(platform, REJECTED_ORDERS)
    assert dead["orders_platform_rejections"]["byReason"] == dict(
        rejected.group_by("reason").len().iter_rows()
    )
    assert "ol-secret-key-123" not in json.dumps(receiver.events)

    # a later run of silver alone reads validated/orders from the lake
    with lineage_receiver() as receiver2:
        lineage_env.setenv("OPENLINEAGE_URL", receiver2.url)
        for name in [n for n in os.environ if n.startswith("OPENLINEAGE__")]:
            lineage_env.delenv(name)
        defs = platform.definitions()
        assert materialize_day(defs, PARTITION, instance, [SILVER_ORDERS]).success
    assert [e["eventType"] for e in receiver2.events] == ["START", "COMPLETE"]
    assert [(i["namespace"], i["name"]) for i in receiver2.events[-1]["inputs"]] == [
        ("file", f"{lake}/validated/orders")
    ]


def test_lineage_fail_when_a_blocking_check_stops_the_run(platform, instance, lineage_env):
    with lineage_receiver() as receiver:
        lineage_env.setenv("OPENLINEAGE_URL", receiver.url)
        defs = platform.definitions(
            ORDERS_REJECT_RATE_SEVERITY="ERROR", ORDERS_MAX_REJECT_RATE="0.0001"
        )
        result = materialize_day(defs, PARTITION, instance, ORDERS_GRAPH, raise_on_error=False)
    assert not result.success
    assert [e["eventType"] for e in receiver.events] == ["START", "FAIL"]
    fail = receiver.events[-1]
    _validator()(fail)
    assert "reject_rate" in fail["run"]["facets"]["errorMessage"]["message"]
    outputs = {o["name"].rsplit("/", 2)[-1]: o for o in fail["outputs"]}
    assert "outputFacets" not in outputs["silver.orders"]  # never written
    assertions = outputs["orders"]["facets"]["dataQualityAssertions"]["assertions"]
    assert {(a["assertion"], a["success"]) for a in assertions} >= {("reject_rate", False)}


def test_lineage_backend_down_does_not_fail_the_run(platform, instance, lineage_env):
    with lineage_receiver() as receiver:
        url = receiver.url  # closed when the block ends
    lineage_env.setenv("OPENLINEAGE_URL", url)
    defs = platform.definitions()
    result = materialize_day(defs, PARTITION, instance, ORDERS_GRAPH[:3])
    assert result.success
    warnings = [
        r.user_message
        for r in instance.all_logs(result.run_id)
        if r.level == 30 and "OpenLineage" in r.user_message
    ]
    assert len(warnings) == 1, warnings


def test_nothing_attached_when_nothing_is_configured(platform):
    defs = platform.definitions()
    for item in [*defs.assets, *defs.asset_checks]:
        assert isinstance(item, AssetsDefinition)
        assert not item.hook_defs


def test_pushgateway_setting_is_validated_and_named(monkeypatch):
    monkeypatch.setenv("ORDERS_PROMETHEUS_PUSHGATEWAY", "pushgateway:9091")
    with pytest.raises(SettingsError, match="ORDERS_PROMETHEUS_PUSHGATEWAY"):
        load_settings()
    assert Settings(ORDERS_PROMETHEUS_PUSHGATEWAY="http://pg:9091/").prometheus_pushgateway == (
        "http://pg:9091"
    )


def test_alert_rules_and_prometheus_config_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool not found (Debian package `prometheus`); alert rules not checked")
        pytest.skip("promtool not found (Debian package `prometheus`)")
    deploy = REPO_ROOT / "deploy" / "prometheus"
    for args in (
        ["check", "rules", str(deploy / "alerts.yml")],
        ["check", "config", str(deploy / "prometheus.yml")],
        ["test", "rules", str(deploy / "alerts_test.yml")],
    ):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def test_grafana_dashboard_uses_only_exported_metrics():
    dashboard = json.loads(
        (REPO_ROOT / "deploy" / "prometheus" / "grafana-dashboard.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    names = Counter(
        word
        for expr in exprs
        for word in expr.replace("(", " ").replace("{", " ").split()
        if word.startswith("orders_platform_")
    )
    from orders_platform.observability_export.metrics import HELP, PREFIX

    assert set(names) <= {PREFIX + m for m in HELP}


def test_freshness_lag_reported_by_an_asset_is_exported(
    instance, gateway_binary, tmp_path, lineage_env
):
    from dagster import DailyPartitionsDefinition, MaterializeResult, asset, materialize

    from orders_platform.observability_export import ExportConfig, instrument

    @asset(key=["silver", "toy"], partitions_def=DailyPartitionsDefinition("2026-03-01"))
    def toy():  # no context argument: the prologue finds the run by itself
        return MaterializeResult(metadata={"freshness_lag_seconds": 42.5, "dagster/row_count": 3})

    with pushgateway(gateway_binary) as gateway, lineage_receiver() as receiver:
        lineage_env.setenv("OPENLINEAGE_URL", receiver.url)
        config = ExportConfig(pushgateway=gateway.url, lineage=True, lake_root=str(tmp_path))
        assets, _ = instrument([toy], [], config)
        result = materialize(assets, partition_key=PARTITION, instance=instance)
        assert result.success
        samples = scrape(gateway)
    assert [e["eventType"] for e in receiver.events] == ["START", "COMPLETE"]
    assert value(samples, "freshness_lag_seconds", asset="silver/toy", partition=PARTITION) == 42.5
    assert value(samples, "rows_out", asset="silver/toy") == 3
