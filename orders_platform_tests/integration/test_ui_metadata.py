"""What the asset pages show: described columns, numbers the plots chart, a Markdown summary."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, materialize
from dagster._core.definitions.metadata import (
    FloatMetadataValue,
    IntMetadataValue,
    MarkdownMetadataValue,
)

from orders_platform.transforms.columns import AS_RECEIVED, COLUMN_DESCRIPTIONS
from orders_platform_tests.support import DAY

KEYS = {
    name: AssetKey(name.split("/"))
    for name in (
        "raw/orders",
        "validated/orders",
        "validated/rejected_orders",
        "silver/orders",
        "raw/events",
        "validated/rejected_events",
        "silver/sessions",
    )
}


def _materialize_day(platform, instance):
    defs = platform.definitions(ORDERS_DEMO_EVENTS_PER_DAY="500")
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        partition_key=DAY.isoformat(),
        resources=defs.resources,
        instance=instance,
        selection=AssetSelection.assets(*KEYS.values()),
    )
    assert result.success
    return {
        e.materialization.asset_key: e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def test_every_table_schema_describes_its_columns_and_numbers_are_numbers(platform, instance):
    meta = _materialize_day(platform, instance)
    assert set(meta) == set(KEYS.values())

    for name, key in KEYS.items():
        columns = meta[key]["dagster/column_schema"].schema.columns
        undescribed = [c.name for c in columns if not c.description]
        assert not undescribed, (name, undescribed)
        by_name = {c.name: c.description for c in columns}
        if name.startswith("raw/") or "rejected" in name:
            # the source's strings: the meaning, prefixed so nobody reads them as typed
            assert by_name["user_id" if "events" in name else "order_id"].startswith(AS_RECEIVED)
            assert (
                by_name["reason" if "rejected" in name else "_source"]
                == (COLUMN_DESCRIPTIONS["reason" if "rejected" in name else "_source"])
            )
        else:
            assert not any(d.startswith(AS_RECEIVED) for d in by_name.values()), name
    silver = {
        c.name: c.description
        for c in meta[KEYS["silver/orders"]]["dagster/column_schema"].schema.columns
    }
    assert silver["order_tier"] == COLUMN_DESCRIPTIONS["order_tier"]
    assert "premium if order_amount >= 2000" in silver["order_tier"]

    validated = meta[KEYS["validated/orders"]]
    for field in ("rows_in", "rows_valid", "rows_rejected", "duplicates_collapsed"):
        assert isinstance(validated[field], IntMetadataValue), field
    for field in ("reject_rate", "duration_seconds"):
        assert isinstance(validated[field], FloatMetadataValue), field
    rows_in, rejected = validated["rows_in"].value, validated["rows_rejected"].value
    assert 0 < rejected < rows_in
    assert validated["reject_rate"].value == round(rejected / rows_in, 6)
    assert validated["duration_seconds"].value > 0

    silver_meta = meta[KEYS["silver/orders"]]
    assert isinstance(silver_meta["inserted"], IntMetadataValue)
    assert isinstance(silver_meta["duration_seconds"], FloatMetadataValue)
    # a closed day reports no lag (it would only say when the day closed; see Intraday)
    assert "freshness_lag_seconds" not in silver_meta
    for name in ("raw/orders", "raw/events"):
        assert isinstance(meta[KEYS[name]]["duration_seconds"], FloatMetadataValue), name
    events = meta[KEYS["validated/rejected_events"]]
    assert isinstance(events["reject_rate"], FloatMetadataValue)
    assert events["reject_rate"].value == round(
        events["rows_rejected"].value / events["rows_in"].value, 6
    )


def test_partition_summary_tables_rejected_rows_by_reason(platform, instance):
    meta = _materialize_day(platform, instance)
    validated = meta[KEYS["validated/orders"]]
    summary = validated["summary"]
    assert isinstance(summary, MarkdownMetadataValue)
    text = summary.md_str
    rows_in, rejected = validated["rows_in"].value, validated["rows_rejected"].value
    assert text.startswith(f"**{DAY.isoformat()}**: {rows_in:,} rows in")
    assert f"{rejected:,} rejected ({rejected / rows_in:.2%})" in text
    assert "| reason | rows |" in text
    reasons = validated["rejected_by_reason"].value
    assert reasons and sum(reasons.values()) == rejected
    for reason, count in reasons.items():
        assert f"| {reason} | {count:,} |" in text
    # the same table on the dead letters of events
    assert "| reason | rows |" in meta[KEYS["validated/rejected_events"]]["summary"].md_str
