"""Asset jobs: the daily graph, and the two silver jobs the asset sensors launch.

Partitions come from the assets (daily UTC); asset selections include the checks of the
selected assets, so every run also evaluates the checks on what it materializes.

- `orders_daily_job`: every asset of SPEC §2 with its checks. The schedule and the landing
  sensor launch it for one day with a sub-selection (see `DAY_CLOSE_ASSETS`); the UI and the
  CLI can run it whole.
- `orders_intraday_job`: the orders chain of the open day, launched by the intraday schedule.
- `silver_orders_job`, `silver_sessions_job`: one silver table each, launched by the asset
  sensors so their runs and failures are named after what they do.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from orders_platform.assets.keys import (
    RAW_EVENTS,
    RAW_ORDERS,
    REJECTED_EVENTS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    SILVER_SESSIONS,
    VALIDATED_ORDERS,
)

ORDERS_DAY_ASSETS = (RAW_ORDERS, VALIDATED_ORDERS, REJECTED_ORDERS, SILVER_ORDERS)
# silver/sessions is not here: sessions of day D need raw/events of D+1 (see schedules.py).
EVENTS_DAY_ASSETS = (RAW_EVENTS, REJECTED_EVENTS)
# What can be materialized for day D as soon as D has closed.
DAY_CLOSE_ASSETS = (*ORDERS_DAY_ASSETS, *EVENTS_DAY_ASSETS)
ALL_ASSETS = (*DAY_CLOSE_ASSETS, SILVER_SESSIONS)

TRIGGER_TAG = "orders_platform/trigger"

orders_daily_job = define_asset_job(
    "orders_daily_job",
    selection=AssetSelection.assets(*ALL_ASSETS),
    description=(
        "The whole daily graph (orders and events, raw -> validated -> silver) with its "
        "checks, for one day or a range of days."
    ),
)

orders_intraday_job = define_asset_job(
    "orders_intraday_job",
    selection=AssetSelection.assets(*ORDERS_DAY_ASSETS),
    description=(
        "One intraday tick of the open day: raw/orders reads only what is new since the "
        "day's watermark, validated/orders and the dead letters are re-derived, silver/orders "
        "is upserted (SPEC §10)."
    ),
)

silver_orders_job = define_asset_job(
    "silver_orders_job",
    selection=AssetSelection.assets(SILVER_ORDERS),
    description="silver/orders for the validated/orders partitions that just landed.",
)

silver_sessions_job = define_asset_job(
    "silver_sessions_job",
    selection=AssetSelection.assets(SILVER_SESSIONS),
    description="silver/sessions for days whose raw/events of D-1, D and D+1 are all present.",
)

JOBS = (orders_daily_job, orders_intraday_job, silver_orders_job, silver_sessions_job)
