"""Row-by-row pure-Python reference of orders validation + enrichment (SPEC §3-4).

This is deliberately the "obvious" implementation — iterate over rows as dicts, use
`decimal.Decimal`, `datetime.fromisoformat` and `re` — of exactly the rules that
`orders_platform.transforms.orders.validate_orders` and `...enrich.enrich_orders` implement
with vectorised Polars. It exists for two reasons:

* the benchmark compares the speed of the two, and
* tests assert that both agree on every row (same reason codes, details and values),
  which cross-checks the vectorised expressions against straightforward code.

Agreement is defined for string (or null) raw values — the RAW_ORDERS_SCHEMA that every
source delivers. Other Python values are converted with `str()` here, while Polars uses its
own cast (e.g. for floats and datetimes), so raw text of such rows may differ.

Run as a script for a quick speed comparison on demo data:

    .venv/bin/python benchmarks/reference_orders.py --orders 100000
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # allow `python benchmarks/reference_orders.py`
    sys.path.insert(0, str(REPO_ROOT))

from orders_platform.transforms.schema import (  # noqa: E402
    ALL_REJECT_REASONS,
    LINEAGE_COLUMNS,
    MAX_ORDER_AMOUNT,
    NULL_SPELLINGS,
    ORDER_SOURCE_COLUMNS,
    PAYMENT_METHODS,
    PREMIUM_MIN_AMOUNT,
    SILVER_ORDERS_SCHEMA,
    STANDARD_MIN_AMOUNT,
    SYSTEM_CANCELLATION_REASONS,
    UNKNOWN_PAYMENT_METHOD,
    VALID_STATUSES,
)

# Unicode White_Space (what Rust's char::is_whitespace and so Polars' strip_chars use);
# Python's str.strip() would also strip \x1c-\x1f, so it is spelled out.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS_CLASS = "[" + re.escape(WHITESPACE) + "]"
_INT_RE = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_MONEY_CLEAN_RE = re.compile(
    rf"{_WS_CLASS}|[,₹$€£]|^([+-]?){_WS_CLASS}*(?:[Rr][Ss]\.?|[Ii][Nn][Rr])"
)
_MONEY_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_TIMESTAMP_RE = re.compile(
    r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?"
)
_TEST_NOTE_RE = re.compile(r"\btest\b", re.IGNORECASE)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_CENT = Decimal("0.01")
_MONEY_LIMIT = Decimal("10000000000")  # Decimal(12,2) holds |x| < 10^10
TIMESTAMP_COLUMNS = ("created_at", "updated_at", "delivered_at", "cancelled_at")
DETAIL_VALUE_MAX_CHARS = 80


# ----------------------------------------------------------------------------- parsing


def as_text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


def null_if_blank(value: str | None) -> str | None:
    if value is None:
        return None
    trimmed = value.strip(WHITESPACE)
    return None if trimmed.lower() in NULL_SPELLINGS else trimmed


def parse_int(text: str | None) -> int | None:
    if text is None or not _INT_RE.fullmatch(text):
        return None
    value = int(text.split(".")[0])
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def parse_positive_int(text: str | None) -> int | None:
    value = parse_int(text)
    return value if value is not None and value > 0 else None


def clean_money(text: str) -> str:
    return _MONEY_CLEAN_RE.sub(lambda m: m.group(1) or "", text)


def parse_money(text: str | None) -> tuple[float | None, Decimal | None]:
    """(float value for range checks, Decimal(12,2) ROUND_HALF_UP or None if it won't fit)."""
    if text is None:
        return None, None
    cleaned = clean_money(text)
    if not _MONEY_NUMBER_RE.fullmatch(cleaned):
        return None, None
    try:
        exact = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the regex admits only plain numbers
        return None, None
    rounded = exact.quantize(_CENT, rounding=ROUND_HALF_UP)
    return float(cleaned), (rounded if abs(rounded) < _MONEY_LIMIT else None)


def parse_timestamp(text: str | None) -> datetime | None:
    if text is None or not _TIMESTAMP_RE.fullmatch(text):
        return None
    day = text[:10]
    if len(text) == 10:
        clock, fraction, offset = "00:00:00", "", "+00:00"
    else:
        clock, tail = text[11:19], text[19:]
        tz = tail.lstrip(".0123456789")
        fraction = tail[1 : len(tail) - len(tz)][:6]
        if tz in ("", "Z", "z"):
            offset = "+00:00"
        else:
            offset = f"{tz[:3]}:{tz[-2:] if len(tz) >= 5 else '00'}"
    micros = fraction.ljust(6, "0") if fraction else "000000"
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}.{micros}{offset}")
    except ValueError:  # calendar-invalid date such as 2026-02-30
        return None
    return parsed.astimezone(UTC)


def to_utc(value: Any) -> datetime | None:
    if value is None or isinstance(value, str):
        return parse_timestamp(value if value is None else value.strip(WHITESPACE))
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise TypeError(f"cannot interpret {value!r} as a timestamp")


# -------------------------------------------------------------------------- validation


def _quoted(value: str | None) -> str:
    if value is None:
        return "null"
    if len(value) > DETAIL_VALUE_MAX_CHARS:
        value = value[:DETAIL_VALUE_MAX_CHARS] + "..."
    return f"'{value}'"


def _money_problem(column: str, raw: str | None, value: float | None) -> str:
    if value is None:
        problem = "is not a number"
    elif value < 0:
        problem = "is negative"
    else:
        problem = f"exceeds {MAX_ORDER_AMOUNT}"
    return f"{column}={_quoted(raw)} {problem}"


def _fee_is_bad(norm: str | None, value: float | None) -> bool:
    return norm is not None and (value is None or value < 0 or value > MAX_ORDER_AMOUNT)


def _reject(raw: Mapping[str, str | None], n: Mapping[str, str | None]) -> tuple[str, str] | None:
    """(reason, detail) of the first rule the row breaks, or None when it is valid."""
    for column in ("order_id", "customer_id"):
        if parse_positive_int(n[column]) is None:
            what = "is missing" if n[column] is None else "is not a positive integer"
            return f"missing_{column}", f"{column}={_quoted(raw[column])} {what}"
    amount_raw = raw["order_amount"]
    if n["order_amount"] is None:
        return "null_order_amount", f"order_amount={_quoted(amount_raw)} is missing"
    amount, _ = parse_money(n["order_amount"])
    if amount is None:
        return "non_numeric_order_amount", f"order_amount={_quoted(amount_raw)} is not a number"
    if amount < 0:
        return "negative_order_amount", f"order_amount={_quoted(amount_raw)} is negative"
    if amount > MAX_ORDER_AMOUNT:
        return (
            "suspiciously_large_amount",
            f"order_amount={_quoted(amount_raw)} exceeds {MAX_ORDER_AMOUNT}",
        )
    status = n["status"].lower() if n["status"] is not None else None
    if status is not None and status.startswith("test_"):
        return "test_order", f"status={_quoted(raw['status'])} marks a test order"
    if raw["notes"] is not None and _TEST_NOTE_RE.search(raw["notes"]):
        return "test_order", f"notes={_quoted(raw['notes'])} mark a test order"
    if status not in VALID_STATUSES:
        return "invalid_status", f"status={_quoted(raw['status'])} is not a valid status"
    for column in ("created_at", "updated_at"):
        if n[column] is None:
            return "missing_timestamp", f"{column}={_quoted(raw[column])} is missing"
    for column in TIMESTAMP_COLUMNS:
        if n[column] is not None and parse_timestamp(n[column]) is None:
            return (
                "unparseable_timestamp",
                f"{column}={_quoted(raw[column])} is not a valid timestamp",
            )
    if parse_timestamp(n["updated_at"]) < parse_timestamp(n["created_at"]):
        return (
            "updated_before_created",
            f"updated_at={_quoted(raw['updated_at'])} is before "
            f"created_at={_quoted(raw['created_at'])}",
        )
    for column in ("delivery_fee", "discount_amount"):
        value, _ = parse_money(n[column])
        if _fee_is_bad(n[column], value):
            return "invalid_fee_or_discount", _money_problem(column, raw[column], value)
    return None


def _money_or_zero(text: str | None) -> Decimal:
    value = parse_money(text)[1]
    return Decimal("0.00") if value is None else value


def _normalise(n: Mapping[str, str | None], lineage: Mapping[str, Any]) -> dict[str, Any]:
    payment_method = n["payment_method"].lower() if n["payment_method"] is not None else None
    return {
        "order_id": parse_positive_int(n["order_id"]),
        "customer_id": parse_positive_int(n["customer_id"]),
        "store_id": parse_int(n["store_id"]),
        "restaurant_id": parse_int(n["restaurant_id"]),
        "order_amount": parse_money(n["order_amount"])[1],
        "delivery_fee": _money_or_zero(n["delivery_fee"]),
        "discount_amount": _money_or_zero(n["discount_amount"]),
        "status": n["status"].lower(),
        "payment_method": (
            payment_method if payment_method in PAYMENT_METHODS else UNKNOWN_PAYMENT_METHOD
        ),
        "payment_status": n["payment_status"].lower() if n["payment_status"] is not None else None,
        **{c: parse_timestamp(n[c]) for c in TIMESTAMP_COLUMNS},
        "cancellation_reason": n["cancellation_reason"],
        "promo_code": n["promo_code"],
        "notes": n["notes"],
        **lineage,
    }


def reference_validate(
    rows: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(valid rows sorted by order_id, rejected rows in input order, duplicates collapsed)."""
    winners: dict[int, tuple[datetime, int, dict[str, Any]]] = {}
    rejected: list[dict[str, Any]] = []
    n_valid = 0
    for position, row in enumerate(rows):
        missing = [c for c in ORDER_SOURCE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"raw orders are missing source column(s): {', '.join(missing)}")
        raw = {c: as_text(row[c]) for c in ORDER_SOURCE_COLUMNS}
        lineage = {
            "_source": as_text(row.get("_source")),
            "_extracted_at": to_utc(row.get("_extracted_at")),
            "_run_id": as_text(row.get("_run_id")),
        }
        n = {c: null_if_blank(v) for c, v in raw.items()}
        verdict = _reject(raw, n)
        if verdict is not None:
            reason, detail = verdict
            rejected.append({**raw, "reason": reason, "detail": detail, **lineage})
            continue
        n_valid += 1
        valid = _normalise(n, lineage)
        key = (valid["updated_at"], position)
        best = winners.get(valid["order_id"])
        if best is None or key > best[:2]:
            winners[valid["order_id"]] = (*key, valid)
    valid_rows = [winners[order_id][2] for order_id in sorted(winners)]
    return valid_rows, rejected, n_valid - len(valid_rows)


# -------------------------------------------------------------------------- enrichment


def _delivery_minutes(created: datetime, delivered: datetime | None) -> float | None:
    if delivered is None:
        return None
    micros = (delivered - created) // timedelta(microseconds=1)
    tenths = (abs(micros) * 10 + 30_000_000) // 60_000_000  # half away from zero
    return (-tenths if micros < 0 else tenths) / 10


def reference_enrich(valid: Mapping[str, Any], ingested_at: datetime) -> dict[str, Any]:
    if ingested_at.tzinfo is None or ingested_at.utcoffset() is None:
        raise ValueError("ingested_at must be a timezone-aware datetime (got a naive one)")
    amount: Decimal = valid["order_amount"]
    created: datetime = valid["created_at"]
    reason = valid["cancellation_reason"]
    if valid["status"] != "cancelled":
        cancellation_type = None
    elif reason is not None and reason.strip(WHITESPACE).lower() in SYSTEM_CANCELLATION_REASONS:
        cancellation_type = "system"
    else:
        cancellation_type = "customer"
    if amount >= PREMIUM_MIN_AMOUNT:
        tier = "premium"
    elif amount >= STANDARD_MIN_AMOUNT:
        tier = "standard"
    else:
        tier = "economy"
    silver = {c: valid[c] for c in SILVER_ORDERS_SCHEMA if c in valid and c != "_extracted_at"}
    silver.update(
        total_value=amount + valid["delivery_fee"] - valid["discount_amount"],
        order_tier=tier,
        order_date=created.date(),
        order_hour=created.hour,
        order_month=f"{created.year:04d}-{created.month:02d}",
        delivery_minutes=_delivery_minutes(created, valid["delivered_at"]),
        cancellation_type=cancellation_type,
        has_promo=null_if_blank(valid["promo_code"]) is not None,
        ingested_at=ingested_at.astimezone(UTC),
    )
    return {c: silver[c] for c in SILVER_ORDERS_SCHEMA}


def reference_validate_enrich(
    rows: Iterable[Mapping[str, Any]], ingested_at: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(silver rows sorted by order_id, rejected rows with reason and detail)."""
    valid, rejected, _ = reference_validate(rows)
    return [reference_enrich(row, ingested_at) for row in valid], rejected


# ------------------------------------------------------------------------- comparison


def _comparable_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value + Decimal("0.00"))  # -0.00 -> 0.00, always 2 places
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def comparable_rows(rows: Iterable[Mapping[str, Any]], columns: Iterable[str]) -> list[tuple]:
    """Rows as tuples of plain, order-independent-comparable values, in the given order."""
    columns = list(columns)
    return [tuple(_comparable_value(row[c]) for c in columns) for row in rows]


def comparable_outputs(
    silver: Iterable[Mapping[str, Any]], rejected: Iterable[Mapping[str, Any]]
) -> tuple[list[tuple], list[tuple]]:
    """Both outputs (reference lists of dicts, or `df.to_dicts()` of the Polars frames)
    in a form where `==` means "same rows, same values, same order"."""
    rejected_columns = [*ORDER_SOURCE_COLUMNS, "reason", "detail", *LINEAGE_COLUMNS]
    return (
        comparable_rows(silver, SILVER_ORDERS_SCHEMA),
        comparable_rows(rejected, rejected_columns),
    )


def polars_validate_enrich(raw: Any, ingested_at: datetime) -> tuple[Any, Any]:
    """The vectorised implementation under comparison: (silver frame, rejected frame)."""
    from orders_platform.transforms.enrich import enrich_orders
    from orders_platform.transforms.orders import validate_orders

    result = validate_orders(raw)
    return enrich_orders(result.valid, ingested_at), result.rejected


def assert_agreement(raw: Any, ingested_at: datetime) -> tuple[int, int]:
    """Run both implementations on the same raw frame; raise AssertionError on any
    difference (naming the first differing row). Returns (silver rows, rejected rows)."""
    silver_df, rejected_df = polars_validate_enrich(raw, ingested_at)
    ref_silver, ref_rejected = reference_validate_enrich(raw.to_dicts(), ingested_at)
    got = comparable_outputs(silver_df.to_dicts(), rejected_df.to_dicts())
    want = comparable_outputs(ref_silver, ref_rejected)
    for name, g, w in zip(("silver", "rejected"), got, want, strict=True):
        if g != w:
            first = next(
                (i for i, (a, b) in enumerate(zip(g, w, strict=False)) if a != b),
                min(len(g), len(w)),
            )
            raise AssertionError(
                f"{name} differs at row {first} (polars {len(g)} rows, reference {len(w)}):\n"
                f"  polars:    {g[first] if first < len(g) else None}\n"
                f"  reference: {w[first] if first < len(w) else None}"
            )
    assert set(r[len(ORDER_SOURCE_COLUMNS)] for r in got[1]) <= set(ALL_REJECT_REASONS)
    return len(got[0]), len(got[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders per demo day")
    parser.add_argument("--day", default="2026-03-17")
    args = parser.parse_args(argv)

    from orders_platform.sources.demo import generate_orders

    raw = generate_orders(date.fromisoformat(args.day), args.orders)
    ingested_at = datetime.now(UTC)
    t0 = time.perf_counter()
    silver_df, rejected_df = polars_validate_enrich(raw, ingested_at)
    t1 = time.perf_counter()
    rows = raw.to_dicts()
    t2 = time.perf_counter()
    ref_silver, ref_rejected = reference_validate_enrich(rows, ingested_at)
    t3 = time.perf_counter()
    agree = comparable_outputs(silver_df.to_dicts(), rejected_df.to_dicts()) == (
        comparable_outputs(ref_silver, ref_rejected)
    )
    n = raw.height
    print(f"raw rows: {n}  silver: {silver_df.height}  rejected: {rejected_df.height}")
    print(f"polars:    {t1 - t0:8.3f} s  {n / (t1 - t0):>12,.0f} rows/s")
    print(f"reference: {t3 - t2:8.3f} s  {n / (t3 - t2):>12,.0f} rows/s (excl. to_dicts)")
    print(f"speed-up:  {(t3 - t2) / (t1 - t0):8.1f}x   outputs agree: {agree}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
