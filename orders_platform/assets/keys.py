"""Asset keys of SPEC §2 (the contract: never rename)."""

from dagster import AssetKey

RAW_ORDERS = AssetKey(["raw", "orders"])
RAW_EVENTS = AssetKey(["raw", "events"])
VALIDATED_ORDERS = AssetKey(["validated", "orders"])
REJECTED_ORDERS = AssetKey(["validated", "rejected_orders"])
REJECTED_EVENTS = AssetKey(["validated", "rejected_events"])
SILVER_ORDERS = AssetKey(["silver", "orders"])
SILVER_SESSIONS = AssetKey(["silver", "sessions"])

OWNERS = ["team:data-platform"]
LAKE_IO_MANAGER = "lake_io_manager"
# One pool for everything that writes the warehouse: DuckDB allows a single writer
# process, and the instance limits this pool (dagster.yaml) so parallel partition runs
# queue for it instead of failing on the file lock.
WAREHOUSE_POOL = "warehouse"
