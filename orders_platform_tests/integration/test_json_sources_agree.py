"""One JSON-to-text rule for every source: the same records through the landing zone's
NDJSON and through the REST API (a real local server) give identical raw rows."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl

from orders_platform.sources.api import ApiSource
from orders_platform.sources.landing import LandingSource
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS
from orders_platform_tests.servers.fake_api import FakeApi

DAY = date(2026, 3, 17)

RECORDS = [
    {
        "order_id": 42,
        "customer_id": "c-1",
        "order_amount": 1234.5,
        "delivery_fee": 0,
        "discount_amount": -12.25,
        "status": " DELIVERED ",
        "payment_method": "upi",
        "promo_code": True,
        "notes": {"gate": [3, 4.5], "ring": False, "who": None, "say": "«hi»"},
        "updated_at": "2026-03-17T10:00:00Z",
    },
    {
        "order_id": "007",
        "promo_code": False,
        "notes": ["a", 1, None, True],
        "cancellation_reason": None,
        "created_at": "2026-03-17T20:14:32+05:30",
        "updated_at": "2026-03-17T20:15:00+05:30",
        "unknown_key": "ignored",
    },
    {"order_id": 12345678901234567890, "order_amount": 1e2, "notes": '₹3,80.00 "quoted"'},
]


def test_landing_ndjson_and_api_give_identical_raw_rows(tmp_path: Path) -> None:
    day_dir = tmp_path / "orders" / f"dt={DAY.isoformat()}"
    day_dir.mkdir(parents=True)
    # the same serialisation the API server uses (json.dumps), one object per line
    (day_dir / "orders.ndjson").write_text(
        "".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8"
    )
    landing = pl.concat(list(LandingSource(root=str(tmp_path)).extract_orders(DAY)))
    landing = landing.select(ORDER_SOURCE_COLUMNS)

    with FakeApi(orders={DAY: RECORDS}, pagination="cursor") as api:
        source = ApiSource(
            base_url=api.base_url,
            pagination="cursor",
            page_size=2,
            requests_per_second=0.0,
            timeout_seconds=5.0,
        )
        from_api = pl.concat(list(source.extract_orders(DAY))).select(ORDER_SOURCE_COLUMNS)

    assert from_api.equals(landing)
    first, second, third = landing.iter_rows(named=True)
    assert (first["promo_code"], second["promo_code"]) == ("true", "false")
    assert first["order_amount"] == "1234.5" and third["order_amount"] == "100.0"
    assert first["notes"] == '{"gate":[3,4.5],"ring":false,"who":null,"say":"«hi»"}'
    assert second["notes"] == '["a",1,null,true]'
    assert third["order_id"] == "12345678901234567890"
