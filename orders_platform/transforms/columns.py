"""What every column of every table means (SPEC §2–5), in one place.

`observability.table_schema` attaches these to each `dagster/column_schema`, so the UI's
column table of every asset explains its columns. Raw and dead-letter tables hold the
source values as strings: their descriptions get `AS_RECEIVED` in front.
"""

from __future__ import annotations

AS_RECEIVED = "As received (string). "

COLUMN_DESCRIPTIONS: dict[str, str] = {
    # orders (SPEC §3)
    "order_id": "Order identifier, a positive integer; the key of silver.orders.",
    "customer_id": "Customer who placed the order, a positive integer.",
    "store_id": "Store the order was placed with.",
    "restaurant_id": "Restaurant preparing the order.",
    "order_amount": "Order amount, Decimal(12,2); 0 is valid (free promo orders), "
    "over 500000 is rejected.",
    "delivery_fee": "Delivery fee, Decimal(12,2); 0 when the source has none.",
    "discount_amount": "Discount, Decimal(12,2); 0 when the source has none.",
    "status": "Order status, lower-cased and trimmed: placed, confirmed, preparing, ready, "
    "picked_up, delivering, delivered or cancelled.",
    "payment_method": "upi, card, netbanking, wallet, cod, emi, or unknown for any other "
    "value (counted in metadata).",
    "payment_status": "Payment status, lower-cased.",
    "created_at": "When the order was created, UTC.",
    "updated_at": "Last change of the order, UTC; the latest one wins (partition and upsert).",
    "delivered_at": "When the order was delivered, UTC; null if not delivered.",
    "cancelled_at": "When the order was cancelled, UTC; null if not cancelled.",
    "cancellation_reason": "Why the order was cancelled, as the source gave it.",
    "promo_code": "Promo code applied, if any.",
    "notes": "Free-text notes; the whole word 'test' marks load-test traffic (rejected).",
    # enrichment (SPEC §4)
    "total_value": "order_amount + delivery_fee - discount_amount, exact, 2 dp.",
    "order_tier": "premium if order_amount >= 2000, standard if >= 500, else economy.",
    "order_date": "UTC date of created_at (silver.orders partitions the upsert by it).",
    "order_hour": "UTC hour (0-23) of created_at.",
    "order_month": "UTC month of created_at, YYYY-MM.",
    "delivery_minutes": "delivered_at - created_at in minutes, 1 dp; null if not delivered.",
    "cancellation_type": "For cancelled orders: system (payment_failed, restaurant_closed, "
    "no_rider_available) or customer; null otherwise.",
    "has_promo": "A non-empty promo_code is present.",
    "ingested_at": "When the row was loaded into the warehouse, UTC.",
    # events and sessions (SPEC §5)
    "user_id": "User the event or session belongs to.",
    "event_timestamp": "When the event happened, UTC.",
    "event_type": "login, view_page, add_to_cart, purchase, logout, ... (lower-cased; "
    "unknown when missing).",
    "session_id": "Deterministic id: user_id@session start in microseconds since the epoch; "
    "the same events give the same id on every run.",
    "session_start": "First event of the session, UTC; the session belongs to this UTC day.",
    "session_end": "Last event of the session, UTC.",
    "session_date": "UTC day the session starts (its partition).",
    "duration_seconds": "session_end - session_start in seconds; 0 for a single event.",
    "event_count": "Distinct events in the session (exact duplicates counted once).",
    "first_event_type": "event_type of the session's first event.",
    "last_event_type": "event_type of the session's last event.",
    "converted": "The session contains a purchase event.",
    "order_ids": "Distinct order ids of the session's events, ascending; empty if none.",
    # dead letters
    "reason": "First matching rejection reason code (SPEC §3 for orders; missing_user_id, "
    "missing_event_timestamp, unparseable_event_timestamp for events).",
    "detail": "Human-readable explanation of the rejection (which value, which rule).",
    # lineage (SPEC §2)
    "_source": "Source the row was extracted from: demo, api, postgres or landing.",
    "_extracted_at": "When the row was extracted from the source, UTC.",
    "_run_id": "Dagster run that extracted (raw) or validated (dead letters) the row.",
    "_malformed": "Why a landing line could not be split into columns (malformed_json, ...).",
    "_raw_line": "The malformed landing line as read.",
    "_file": "Landing file the malformed line came from.",
    "_line": "Line number of the malformed line in its landing file.",
}


def describe(column: str, *, as_received: bool = False) -> str | None:
    """The meaning of `column`, or None for a column this platform does not define."""
    text = COLUMN_DESCRIPTIONS.get(column)
    if text is None or not as_received or column.startswith("_") or column in ("reason", "detail"):
        return text
    return AS_RECEIVED + text
