"""The deterministic demo source of raw orders (SPEC §6: the embedded default).

`generate_orders(day, n)` synthesises one UTC day of raw order *change records* for a
food-delivery business, exactly as a messy upstream would deliver them: the 17 SPEC §3
source columns, all strings (nullable). It is pure and vectorised (numpy + Polars, no
Python loop over rows; strings are mostly gathered from lookup tables, much cheaper than
formatting), so a day of a million orders takes about a second. It is deterministic: the
same `(day, n, seed)` always gives byte-identical rows, in the same order; different days
differ.

Shape of a day (n = orders created that day, the same n is assumed for every day):

* ``n`` base rows — one per order created on the day, showing its latest change of the day:
  its final state (delivered / cancelled) or, for an order still running at midnight UTC,
  an in-flight state (placed … delivering).
* ``round(n * DUPLICATE_SHARE)`` duplicate rows (1 %) — an earlier change record of a base
  order (e.g. ``placed`` at 14:02 and ``delivered`` at 14:51), always with an earlier
  ``updated_at`` than the base row, so "latest updated_at wins" is unambiguous.
* ``max(round(n * LATE_UPDATE_SHARE), spill)`` late updates (2 %) of orders created on
  D-1 … D-7: first the orders of D-1 whose final change fell after midnight ("spill",
  a handful: late-night traffic is low), then random older orders (refunds, corrections).

  So ``rows = n + round(0.01 n) + round(0.02 n)`` (≈ 1.03 n) for any realistic n.

* Of all rows, ``round(share * rows)`` are corrupted for each reject reason of SPEC §3
  (`BAD_ROW_SHARES`, 3 % in total). Every corrupted row started as a valid row and has
  exactly one thing wrong, so it is rejected precisely for its intended reason under the
  first-match-wins order. ``generate_orders(..., with_intended_reason=True)`` adds an
  ``_intended_reason`` column (null on good rows) as ground truth for tests.

Everything that belongs to an *order* (created_at, customer, store, restaurant, amounts,
payment method, promo, notes, how and when it ends) is a pure function of its order_id (a
splitmix64 hash), and the order_id encodes the creation day
(``order_id = days since 2000-01-01 * 10_000_000 + seq``). So a late update emitted on day
D for an order created on D-k carries the same created_at / customer / amount as that
order had on D-k. Only the *rendering* (id padding, amount format, status casing,
timestamp format, null spelling …) is drawn per row from a generator seeded by
``(seed, day)``. Good rows are messy but valid; see `generate_orders` for the catalogue.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from orders_platform.sources.base import Increment, RawSource
from orders_platform.transforms.schema import (
    ORDER_SOURCE_COLUMNS,
    PAYMENT_METHODS,
    REJECT_REASONS,
    SYSTEM_CANCELLATION_REASONS,
    VALID_STATUSES,
)

__all__ = [
    "BAD_ROW_SHARES",
    "DUPLICATE_SHARE",
    "LATE_UPDATE_SHARE",
    "ORDER_ID_DAY_FACTOR",
    "ORDER_ID_EPOCH",
    "INTENDED_REASON_COLUMN",
    "DemoSource",
    "expected_row_count",
    "generate_orders",
    "order_created_day",
    "order_facts",
    "order_id_for",
]

# --------------------------------------------------------------------------- shape

ORDER_ID_EPOCH = date(2000, 1, 1)
ORDER_ID_DAY_FACTOR = 10_000_000
MAX_ORDERS_PER_DAY = ORDER_ID_DAY_FACTOR - 1
DUPLICATE_SHARE = 0.01
LATE_UPDATE_SHARE = 0.02
# Age (days before D) of randomly chosen late updates: index 0 is D-1 … index 6 is D-7.
LATE_UPDATE_AGE_WEIGHTS = (0.40, 0.20, 0.12, 0.10, 0.08, 0.06, 0.04)
MAX_LATE_UPDATE_AGE_DAYS = len(LATE_UPDATE_AGE_WEIGHTS)

# Share of all rows corrupted for each reject reason (3 % in total), SPEC §3 order.
BAD_ROW_SHARES: dict[str, float] = {
    "missing_order_id": 0.0030,
    "missing_customer_id": 0.0025,
    "null_order_amount": 0.0035,
    "non_numeric_order_amount": 0.0025,
    "negative_order_amount": 0.0020,
    "suspiciously_large_amount": 0.0015,
    "test_order": 0.0040,
    "invalid_status": 0.0030,
    "missing_timestamp": 0.0030,
    "unparseable_timestamp": 0.0025,
    "updated_before_created": 0.0025,
}
assert tuple(BAD_ROW_SHARES) == REJECT_REASONS, "keep BAD_ROW_SHARES in sync with SPEC §3"
# From this many rows on, every reason gets at least one bad row even if its share rounds
# to zero.
_MIN_ROWS_FOR_EVERY_REASON = 200

INTENDED_REASON_COLUMN = "_intended_reason"
UPDATE_TIME_COLUMN = "_updated_us"

# --------------------------------------------------------------------------- time

_US_PER_S = 1_000_000
_US_PER_MIN = 60 * _US_PER_S
_US_PER_DAY = 86_400 * _US_PER_S
_IST_OFFSET_US = (5 * 3600 + 30 * 60) * _US_PER_S
_DAYS_1970_TO_2000 = (ORDER_ID_EPOCH - date(1970, 1, 1)).days

# Orders per UTC hour: an Indian business (IST = UTC+5:30) with lunch and dinner peaks, so
# the UTC midnight (05:30 IST) is the quietest time of the day.
_HOUR_WEIGHTS = (
    0.5, 1, 2, 3, 3, 4, 6, 9, 9, 6, 4, 4, 5, 7, 10, 11, 9, 6, 4, 2.5, 1.5, 1, 0.6, 0.4,
)  # fmt: skip

# Timestamp renderings (per row, shared by all timestamp columns of the row).
_FMT_Z, _FMT_MICRO, _FMT_IST, _FMT_NAIVE = 0, 1, 2, 3
_FMT_WEIGHTS = (0.55, 0.20, 0.12, 0.13)
# "2026-03-17T14:44:32Z" | "2026-03-17T14:44:32.123456+00:00" | "2026-03-17T20:14:32+05:30"
# (same instant, IST) | "2026-03-17 14:44:32" (naive, meaning UTC)
_SECOND_SUFFIXES = ("Z", ".", "+05:30", "")

# --------------------------------------------------------------------------- vocabularies

_ST = {s: i for i, s in enumerate(VALID_STATUSES)}
_PLACED, _CONFIRMED, _PREPARING = _ST["placed"], _ST["confirmed"], _ST["preparing"]
_DELIVERED, _CANCELLED = _ST["delivered"], _ST["cancelled"]
# In-flight status by elapsed share of the order's life (delivered path / cancelled path):
# placed < 0.10 <= confirmed < 0.20 <= preparing < 0.45 <= ready < 0.55 <= picked_up < 0.65
# <= delivering.
_DELIVERY_PROGRESS = (0.10, 0.20, 0.45, 0.55, 0.65)
_DELIVERY_PROGRESS_STATUS = np.array(
    [_ST[s] for s in ("placed", "confirmed", "preparing", "ready", "picked_up", "delivering")]
)
_CANCEL_PROGRESS = (0.3, 0.7)
_CANCEL_PROGRESS_STATUS = np.array([_PLACED, _CONFIRMED, _PREPARING])

# Canonical payment methods first (SPEC §3), then values validation maps to "unknown".
_PAYMENT_METHODS = (*PAYMENT_METHODS, "paypal", "crypto", "bnpl", "gift_card")
_PAYMENT_METHOD_WEIGHTS = {
    "upi": 0.44, "card": 0.20, "netbanking": 0.06, "wallet": 0.10, "cod": 0.15, "emi": 0.03,
    "paypal": 0.005, "crypto": 0.005, "bnpl": 0.005, "gift_card": 0.005,
}  # fmt: skip
_COD = _PAYMENT_METHODS.index("cod")
_PAYMENT_STATUSES = ("paid", "pending", "failed", "refunded", "voided")
_PS = {s: i for i, s in enumerate(_PAYMENT_STATUSES)}

_CANCELLATION_REASONS = (
    *SYSTEM_CANCELLATION_REASONS,
    "changed_mind",
    "late_delivery",
    "ordered_by_mistake",
    "found_better_price",
    "address_incorrect",
)
_PAYMENT_FAILED = _CANCELLATION_REASONS.index("payment_failed")

_PROMO_CODES = ("SAVE50", "WELCOME100", "FLAT20", "FREEDEL", "PARTY25", "WEEKEND15")
_FREE_ORDER_PROMO = "FREEMEAL"
# Good notes never contain the whole word "test"; some contain it inside a word.
_NOTES = (
    "leave at door",
    "ring the bell twice",
    "extra spicy",
    "no onions please",
    "contest winner",
    "Contest Winner - free dessert",
    "call on arrival",
    "fastest route please",
    "testimonial requested",
    "latest address, gate 3",
    "pack cutlery",
    "birthday surprise",
)

# Null spellings: real null plus the SPEC §3 spellings; "None" only in free-text fields.
_NULLS = (None, "", "NULL", "N/A", "n/a", "-")
_NULL_WEIGHTS = (0.55, 0.15, 0.10, 0.08, 0.05, 0.07)
_TEXT_NULLS = (*_NULLS, "None")
_TEXT_NULL_WEIGHTS = (0.50, 0.15, 0.10, 0.08, 0.05, 0.07, 0.05)
_ZERO_MONEY = ("0.00", "0", *_NULLS)  # a zero fee / discount, or absent (defaults to 0)
_ZERO_MONEY_WEIGHTS = (0.45, 0.05, 0.25, 0.08, 0.06, 0.05, 0.03, 0.03)

# id rendering: plain, " 123 ", "000123", "  123", "0123 "
_ID_PREFIX = ("", " ", "000", "  ", "0")
_ID_SUFFIX = ("", " ", "", "", " ")
_ID_STYLE_WEIGHTS = (0.92, 0.025, 0.025, 0.015, 0.015)
# order_amount rendering: plain "1234.50", "1,234.50" (if >= 1000), "₹3,80.00" (Indian
# style mis-grouping in pairs, commas meaningless), "₹380.00"
_AMOUNT_STYLE_WEIGHTS = (0.78, 0.12, 0.06, 0.04)
_AMT_PLAIN, _AMT_THOUSANDS, _AMT_RUPEE_PAIRS, _AMT_RUPEE = 0, 1, 2, 3

# --------------------------------------------------------------------------- bad values

_BAD_ORDER_IDS = (None, "", "0", "-5", "abc", "N/A", "00")
_BAD_CUSTOMER_IDS = (None, "", "0", "abc", "NULL", "-1", "n/a")
_NULL_AMOUNTS = (None, "", "NULL", "N/A", "n/a", "-", "  ")
_NON_NUMERIC_AMOUNTS = ("abc", "12.3.4", "twelve", "1O0.00", "₹12.5.0")
_NEGATIVE_AMOUNTS = ("-12.50", "-0.01", "-1,250.00", "-380.00", " -99.99")
_LARGE_AMOUNTS = ("500000.01", "750000.00", "1,250,000.00", "9999999.99", "₹12,00,000.00")
_TEST_STATUSES = ("test_order", " TEST_LOAD ", "Test_Order", "test_ping")
_TEST_NOTES = ("load test run", "TEST", "qa test - please ignore", "Test order")
_INVALID_STATUSES = ("shipped", "unknown", "returned", " IN_TRANSIT ", "Refunded")
_NULL_TIMESTAMPS = _NULLS


def _unparseable_timestamps(day: date) -> tuple[str, ...]:
    return (
        f"{day:%d/%m/%Y} 25:99",
        "not a date",
        f"{day.isoformat()}T25:61:00Z",
        f"{day:%Y}-13-45 10:00:00",
    )


# --------------------------------------------------------------------------- hashing

_M64 = (1 << 64) - 1
_SALT_CREATED, _SALT_LIFECYCLE, _SALT_JITTER = 1, 2, 3
_SALT_PARTIES, _SALT_RESTAURANT, _SALT_AMOUNT, _SALT_PAYMENT, _SALT_EXTRAS = 4, 5, 6, 7, 8


def _mix_int(x: int) -> int:
    """splitmix64 finaliser on a Python int (for per-salt keys)."""
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised on uint64 (wrap-around multiplication)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _hash(values: np.ndarray, salt: int, seed: int) -> np.ndarray:
    key = _mix_int(((seed & _M64) * 0x100000001B3 + salt) & _M64)
    return _splitmix64(values.astype(np.uint64) ^ np.uint64(key))


def _bits(h: np.ndarray, shift: int, width: int) -> np.ndarray:
    """`width` bits of `h` starting at bit `shift`, as int64."""
    return ((h >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)


def _unit(h: np.ndarray, shift: int, width: int) -> np.ndarray:
    """A uniform float in [0, 1) from `width` bits of `h`."""
    return _bits(h, shift, width) * (1.0 / (1 << width))


_LUT_BITS = 16


@lru_cache(maxsize=64)
def _lookup_table(weights: tuple[float, ...]) -> np.ndarray:
    """Category index for each of the 2**16 equally likely 16-bit values (weights are
    honoured to 1/65536; a table gather is much faster than a per-row binary search)."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    cum /= cum[-1]
    cum[-1] = 1.0
    centres = (np.arange(1 << _LUT_BITS) + 0.5) / (1 << _LUT_BITS)
    return np.searchsorted(cum, centres, side="right").astype(np.int64)


def _categorical(u16: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Map uniform 16-bit values to category indices with the given weights."""
    return _lookup_table(tuple(weights))[u16]


# --------------------------------------------------------------------------- order facts


def order_id_for(day: date, seq: int) -> int:
    """The order_id of the `seq`-th (1-based) order created on `day`."""
    return (_as_date(day) - ORDER_ID_EPOCH).days * ORDER_ID_DAY_FACTOR + seq


def order_created_day(order_id: int) -> date:
    """The UTC day an order was created, decoded from its order_id."""
    return ORDER_ID_EPOCH + timedelta(days=order_id // ORDER_ID_DAY_FACTOR)


def _created_at(ids: np.ndarray, seed: int) -> np.ndarray:
    """created_at (epoch µs, whole seconds) of each order: its creation day (from the id)
    plus a time of day drawn from the hourly profile."""
    day_start = (ids // ORDER_ID_DAY_FACTOR + _DAYS_1970_TO_2000) * _US_PER_DAY
    h = _hash(ids, _SALT_CREATED, seed)
    hour = _categorical(_bits(h, 48, 16), _HOUR_WEIGHTS)
    return day_start + (hour * 3600 + _bits(h, 0, 32) % 3600) * _US_PER_S


# An order ends (delivered / cancelled) at most 90 minutes after creation and the record of
# it reaches the source at most 10 minutes later.
_MAX_LIFETIME_US = (90 + 10) * _US_PER_MIN


def _lifecycle(ids: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(created_us, cancelled, end_us, end_update_us) of each order, from its id only.

    end_us is delivered_at or cancelled_at; end_update_us is when the record of that end
    reaches the source (5 seconds to 10 minutes later)."""
    created = _created_at(ids, seed)
    h = _hash(ids, _SALT_LIFECYCLE, seed)
    cancelled = _bits(h, 40, 24) % 10_000 < 1_200  # 12 %
    delivery_s = 900 + ((_unit(h, 0, 16) + _unit(h, 16, 16)) * 2250).astype(np.int64)  # 15-90 min
    cancel_s = 60 + _bits(h, 32, 8) * 6  # 1-26.5 min
    end = created + np.where(cancelled, cancel_s, delivery_s) * _US_PER_S
    jitter = 5 * _US_PER_S + _bits(_hash(ids, _SALT_JITTER, seed), 0, 62) % (595 * _US_PER_S)
    return created, cancelled, end, end + jitter


def _attributes(ids: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Everything else that belongs to an order, from its id only (amounts in paise)."""
    h = _hash(ids, _SALT_PARTIES, seed)
    customer = 1 + _bits(h, 0, 32) % 2_000_000
    store = 1 + _bits(h, 32, 32) % 5_000
    restaurant = 1 + _bits(_hash(store, _SALT_RESTAURANT, seed), 0, 32) % 1_200

    h = _hash(ids, _SALT_AMOUNT, seed)
    tier = _bits(h, 40, 24) % 10_000
    v = _unit(h, 0, 36)
    free = tier < 60  # 0.6 % free promo orders
    amount = np.select(
        [free, tier < 4_560, tier < 8_560],
        [0, 8_000 + (v * 42_000).astype(np.int64), 50_000 + (v * 150_000).astype(np.int64)],
        200_000 + (v * v * v * 1_800_000).astype(np.int64),
    )  # economy 45 %, standard 40 %, premium 14.4 %
    amount = np.where(_bits(h, 36, 4) < 10, amount // 100 * 100, amount)  # most whole rupees

    h = _hash(ids, _SALT_PAYMENT, seed)
    method = _categorical(_bits(h, 48, 16), list(_PAYMENT_METHOD_WEIGHTS.values()))
    fee = np.where(_bits(h, 24, 8) < 51, 0, (10 + _bits(h, 0, 16) % 71) * 100)  # 20 % free

    h = _hash(ids, _SALT_EXTRAS, seed)
    has_promo = (_bits(h, 48, 8) < 64) | free  # 25 %
    promo = np.where(free, len(_PROMO_CODES), _bits(h, 40, 8) % len(_PROMO_CODES))
    discount = np.where(has_promo, np.minimum((20 + _bits(h, 0, 16) % 181) * 100, amount + fee), 0)
    note = np.where(_bits(h, 32, 8) < 77, _bits(h, 16, 16) % len(_NOTES), -1)  # 30 %
    return {
        "customer_id": customer,
        "store_id": store,
        "restaurant_id": restaurant,
        "order_amount": amount,
        "delivery_fee": fee,
        "discount_amount": discount,
        "payment_method": method,
        "promo": np.where(has_promo, promo, -1),
        "note": note,
        "cancellation_reason": _bits(h, 56, 8) % len(_CANCELLATION_REASONS),
    }


def order_facts(order_ids: Sequence[int] | np.ndarray, *, seed: int = 0) -> pl.DataFrame:
    """The canonical (typed) facts of orders, as every row about them carries them.

    Columns: order_id, created_at (UTC), customer_id, store_id, restaurant_id,
    order_amount / delivery_fee / discount_amount (Decimal(12,2)), payment_method
    (canonical lower-case, possibly outside the allowed set), final_status (delivered or
    cancelled), final_at (delivered_at or cancelled_at), promo_code, notes.
    """
    ids = np.asarray(order_ids, dtype=np.int64)
    created, cancelled, end, _ = _lifecycle(ids, seed)
    a = _attributes(ids, seed)
    utc = pl.Datetime("us", "UTC")
    money = pl.Decimal(12, 2)
    return pl.DataFrame(
        {
            "order_id": ids,
            "created_at": pl.Series(created).cast(utc),
            "customer_id": a["customer_id"],
            "store_id": a["store_id"],
            "restaurant_id": a["restaurant_id"],
            "order_amount": _render_money(a["order_amount"]).cast(money),
            "delivery_fee": _render_money(a["delivery_fee"]).cast(money),
            "discount_amount": _render_money(a["discount_amount"]).cast(money),
            "payment_method": _pick(_PAYMENT_METHODS, a["payment_method"]),
            "final_status": _pick(VALID_STATUSES, np.where(cancelled, _CANCELLED, _DELIVERED)),
            "final_at": pl.Series(end).cast(utc),
            # index -1 (no promo / no note) picks the trailing None
            "promo_code": _pick((*_PROMO_CODES, _FREE_ORDER_PROMO, None), a["promo"]),
            "notes": _pick((*_NOTES, None), a["note"]),
        }
    )


def _progress_status(
    created: np.ndarray, end: np.ndarray, at: np.ndarray, cancelled: np.ndarray
) -> np.ndarray:
    """The in-flight status of an order at instant `at` (before its end)."""
    share = np.clip((at - created) / np.maximum(end - created, 1), 0.0, 0.999)
    delivering = _DELIVERY_PROGRESS_STATUS[np.searchsorted(_DELIVERY_PROGRESS, share, "right")]
    cancelling = _CANCEL_PROGRESS_STATUS[np.searchsorted(_CANCEL_PROGRESS, share, "right")]
    return np.where(cancelled, cancelling, delivering)


# --------------------------------------------------------------------------- rendering


def _pick(table: Sequence[str | None], index: np.ndarray) -> pl.Series:
    """table[index] as a String Series (vectorised gather)."""
    return pl.Series(values=list(table), dtype=pl.String).gather(index)


def _choice(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    return _categorical(rng.integers(0, 1 << _LUT_BITS, size=size, dtype=np.uint16), weights)


def _cased_table(values: Sequence[str], casings: Sequence[str]) -> list[str]:
    """Row-major table of values x casing variants ("lower", "upper", "title", "padded")."""
    out = []
    for v in values:
        for c in casings:
            out.append(
                {
                    "lower": v,
                    "upper": v.upper(),
                    "title": v.title(),
                    "padded": f" {v} ",
                    "padded_upper": f" {v.upper()} ",
                }[c]
            )
    return out


_SMALL_INTEGERS = 100_000


@lru_cache(maxsize=1)
def _static_tables() -> dict[str, pl.Series]:
    def series(values: Sequence[str | None]) -> pl.Series:
        return pl.Series(values=list(values), dtype=pl.String)

    return {
        "cents": series([f".{i:02d}" for i in range(100)]),
        "thousands": series([f",{i:03d}" for i in range(1000)]),
        "pairs": series([f",{i:02d}" for i in range(100)] + [""]),
        "seconds": series([f":{s:02d}{suffix}" for suffix in _SECOND_SUFFIXES for s in range(60)]),
        "millis": series([f"{i:03d}" for i in range(1000)]),
        "micros_utc": series([f"{i:03d}+00:00" for i in range(1000)]),
        "integers": pl.Series(np.arange(_SMALL_INTEGERS)).cast(pl.String),
        # "0.00" … "999.99", indexed by paise
        "money": pl.Series(np.arange(_SMALL_INTEGERS) // 100).cast(pl.String)
        + series([f".{i:02d}" for i in range(100)]).gather(np.arange(_SMALL_INTEGERS) % 100),
    }


def _integer_text(values: np.ndarray) -> pl.Series:
    """str(v) for non-negative ints; small ones by table lookup (cheaper than a cast)."""
    if values.size and values.min() >= 0 and values.max() < _SMALL_INTEGERS:
        return _static_tables()["integers"].gather(values)
    return pl.Series(values).cast(pl.String)


def _render_money(cents: np.ndarray, style: np.ndarray | None = None) -> pl.Series:
    """Render non-negative amounts given in paise (below 10 lakh rupees): "1234.50", or
    per row `style` "1,234.50" (>= 1000), "₹12,34.50" (commas in pairs: Indian-style
    mis-grouping, >= 100) or "₹1234.50"."""
    t = _static_tables()
    if style is None and cents.size and cents.min() >= 0 and cents.max() < _SMALL_INTEGERS:
        return t["money"].gather(cents)
    whole, paise = cents // 100, cents % 100
    out = _integer_text(whole) + t["cents"].gather(paise)
    if style is None:
        return out
    idx = np.flatnonzero((style == _AMT_THOUSANDS) & (whole >= 1000))
    if idx.size:
        w = whole[idx]
        text = (
            _integer_text(w // 1000)
            + t["thousands"].gather(w % 1000)
            + t["cents"].gather(paise[idx])
        )
        out.scatter(idx, text)
    idx = np.flatnonzero((style == _AMT_RUPEE_PAIRS) & (whole >= 100))
    if idx.size:
        w = whole[idx]
        big = w >= 10_000
        text = (
            "₹"
            + _integer_text(np.where(big, w // 10_000, w // 100))
            + t["pairs"].gather(np.where(big, w // 100 % 100, 100))
            + t["pairs"].gather(w % 100)
            + t["cents"].gather(paise[idx])
        )
        out.scatter(idx, text)
    idx = np.flatnonzero((style == _AMT_RUPEE) | ((style == _AMT_RUPEE_PAIRS) & (whole < 100)))
    if idx.size:
        out.scatter(idx, "₹" + out.gather(idx))
    return out


def _render_ids(ids: np.ndarray, style: np.ndarray) -> pl.Series:
    out = _integer_text(ids)
    idx = np.flatnonzero(style)
    if idx.size:
        s = style[idx]
        out.scatter(idx, _pick(_ID_PREFIX, s) + out.gather(idx) + _pick(_ID_SUFFIX, s))
    return out


# Frames at least this large render timestamps through a table of every second of the day.
_HOT_TABLE_MIN_ROWS = 100_000


class _TimestampRenderer:
    """Renders epoch microseconds in the per-row formats, via lookup tables (fast).

    Local times (IST rows are shifted by +05:30) between `first_day_us` and `days` days
    later can be rendered. The seconds of the "hot" window (the partition day plus the
    IST overhang, where nearly all values fall) have a complete table, so most values
    cost one gather; other values are built from a minute prefix and a seconds suffix.
    """

    def __init__(self, first_day_us: int, days: int, hot_start_us: int | None = None) -> None:
        self.first_minute = first_day_us // _US_PER_MIN
        self.minutes = days * 1440
        start = datetime(1970, 1, 1) + timedelta(microseconds=first_day_us)
        prefixes = pl.datetime_range(
            start, start + timedelta(minutes=self.minutes - 1), "1m", eager=True
        ).dt.strftime("%Y-%m-%dT%H:%M")
        # [0, minutes): "2026-03-17T14:44"; [minutes, 2 * minutes): "2026-03-17 14:44"
        self.prefixes = pl.concat([prefixes, prefixes.str.replace("T", " ", literal=True)])
        # hot table (worth it for large frames only): index fmt * hot_seconds + second offset
        self.hot: pl.Series | None = None
        if hot_start_us is not None:
            self.hot_start = hot_start_us // _US_PER_S
            self.hot_seconds = 86_400 + _IST_OFFSET_US // _US_PER_S
            seconds = np.tile(np.arange(self.hot_seconds) + self.hot_start, len(_FMT_WEIGHTS))
            fmt = np.repeat(np.arange(len(_FMT_WEIGHTS)), self.hot_seconds)
            self.hot = self._compose(seconds, fmt)

    def _compose(self, seconds: np.ndarray, fmt: np.ndarray) -> pl.Series:
        minute = seconds // 60 - self.first_minute
        if minute.size and (minute.min() < 0 or minute.max() >= self.minutes):
            raise ValueError("timestamp outside the demo rendering window")
        prefix = self.prefixes.gather(minute + np.where(fmt == _FMT_NAIVE, self.minutes, 0))
        return prefix + _static_tables()["seconds"].gather(fmt * 60 + seconds % 60)

    def render(
        self,
        us: np.ndarray,
        fmt: np.ndarray,
        absent: np.ndarray | None = None,
        spelling: np.ndarray | None = None,
    ) -> pl.Series:
        """Render `us` in the per-row formats `fmt`; rows flagged `absent` get
        ``_NULLS[spelling]`` instead (their `us` is ignored)."""
        if absent is not None:
            assert spelling is not None
            if absent.mean() > 0.5:  # mostly absent: render only the present rows
                present = np.flatnonzero(~absent)
                out = _pick(_NULLS, spelling)
                return out.scatter(present, self.render(us[present], fmt[present]))
            missing = np.flatnonzero(absent)
            return self.render(us, fmt).scatter(missing, _pick(_NULLS, spelling[missing]))

        t = _static_tables()
        local = us + np.where(fmt == _FMT_IST, _IST_OFFSET_US, 0)
        seconds = local // _US_PER_S
        if self.hot is None:
            out = self._compose(seconds, fmt)
        else:  # one gather of cheap string views; the few cold values are patched in
            offset = seconds - self.hot_start
            cold = np.flatnonzero((offset < 0) | (offset >= self.hot_seconds))
            if cold.size:
                offset[cold] = 0
            out = self.hot.gather(fmt * self.hot_seconds + offset)
            if cold.size:
                out.scatter(cold, self._compose(seconds[cold], fmt[cold]))
        micro = np.flatnonzero(fmt == _FMT_MICRO)
        if micro.size:
            micros = local[micro] % _US_PER_S
            out.scatter(
                micro,
                out.gather(micro)
                + t["millis"].gather(micros // 1000)
                + t["micros_utc"].gather(micros % 1000),
            )
        return out


# --------------------------------------------------------------------------- generation


def _as_date(day: date | datetime) -> date:
    return day.date() if isinstance(day, datetime) else day


def _bad_row_counts(rows: int) -> dict[str, int]:
    counts = {r: round(share * rows) for r, share in BAD_ROW_SHARES.items()}
    if rows >= _MIN_ROWS_FOR_EVERY_REASON:
        counts = {r: max(1, c) for r, c in counts.items()}
    return counts


def expected_row_count(n: int) -> int:
    """Rows of `generate_orders(day, n)` (exact unless more D-1 orders spill past midnight
    than 2 % of n, which the default hour profile never produces)."""
    return n + round(n * DUPLICATE_SHARE) + round(n * LATE_UPDATE_SHARE)


def _coprime_step(rng: np.random.Generator, n: int) -> int:
    if n <= 2:
        return 1
    while True:
        a = int(rng.integers(1, n))
        if math.gcd(a, n) == 1:
            return a


def _empty(with_intended_reason: bool, with_update_time: bool = False) -> pl.DataFrame:
    schema = {c: pl.String for c in ORDER_SOURCE_COLUMNS}
    if with_intended_reason:
        schema[INTENDED_REASON_COLUMN] = pl.String
    if with_update_time:
        schema[UPDATE_TIME_COLUMN] = pl.Int64
    return pl.DataFrame(schema=schema)


def generate_orders(
    day: date,
    n: int,
    *,
    seed: int = 0,
    with_intended_reason: bool = False,
    with_update_time: bool = False,
) -> pl.DataFrame:
    """The raw order change records of UTC `day` for `n` orders created that day.

    Returns the 17 `ORDER_SOURCE_COLUMNS` in order, all `pl.String` (nullable), in
    generation order (not sorted by updated_at), ``expected_row_count(n)`` ≈ 1.03 n rows
    (see the module docstring). Deterministic in ``(day, n, seed)``. With
    ``with_intended_reason=True`` an 18th column ``_intended_reason`` holds the reject
    reason each corrupted row was built for (null on good rows). With
    ``with_update_time=True`` a column ``_updated_us`` holds the instant each change
    happened (epoch microseconds, UTC; also on rows whose rendered updated_at is corrupted):
    what the intraday path releases by.

    Good rows are valid under SPEC §3 but messy: ids with surrounding spaces or leading
    zeros; amounts "1234.50", "1,234.50", "₹12,34.50" (= 1234.50), "₹380.00", "0.00" for
    free promo orders; statuses " DELIVERED ", "Delivered"; payment_method in any casing,
    ~2 % outside the allowed set ("paypal", "crypto", "bnpl", "gift_card" → unknown);
    payment_status "paid", "PAID", "Refunded" …; timestamps "…T14:44:32Z",
    "…T14:44:32.123456+00:00", "…T20:14:32+05:30" (IST, same instant) or naive
    "… 14:44:32" (UTC); null spellings None, "", "NULL", "N/A", "n/a", "-" (and "None" in
    free-text fields) in delivered_at, cancelled_at, cancellation_reason, promo_code,
    notes, delivery_fee and discount_amount (the last two default to 0). Notes include
    "contest winner" / "testimonial requested" but never the whole word "test".
    """
    day = _as_date(day)
    if not 0 <= n <= MAX_ORDERS_PER_DAY:
        raise ValueError(f"n must be between 0 and {MAX_ORDERS_PER_DAY}, got {n}")
    day_idx = (day - ORDER_ID_EPOCH).days
    if day_idx <= MAX_LATE_UPDATE_AGE_DAYS:
        raise ValueError(f"demo days start after {ORDER_ID_EPOCH + timedelta(days=7)}, got {day}")
    if n == 0:
        return _empty(with_intended_reason, with_update_time)
    day_start = (day_idx + _DAYS_1970_TO_2000) * _US_PER_DAY
    day_end = day_start + _US_PER_DAY
    rng = np.random.default_rng([seed & _M64, day.toordinal(), 0xDE70])

    # 1. base rows: every order created today, in its latest state of the day.
    seq = np.arange(1, n + 1, dtype=np.int64)
    base_ids = day_idx * ORDER_ID_DAY_FACTOR + seq
    b_created, b_cancelled, b_end, b_end_update = _lifecycle(base_ids, seed)
    finished = b_end_update < day_end
    snapshot = b_created + (rng.random(n) * (day_end - b_created)).astype(np.int64)
    b_updated = np.where(finished, b_end_update, snapshot)
    b_status = np.where(
        finished,
        np.where(b_cancelled, _CANCELLED, _DELIVERED),
        _progress_status(b_created, b_end, b_updated, b_cancelled),
    )

    # 2. duplicates: an earlier change record of some base orders (strictly earlier, by at
    #    least a few seconds, so even second-truncated renderings differ).
    last_seen = np.minimum(b_updated, b_end)
    eligible = np.flatnonzero(last_seen - b_created >= 120 * _US_PER_S)
    n_dup = min(round(n * DUPLICATE_SHARE), eligible.size)
    dup = np.sort(rng.choice(eligible, n_dup, replace=False))
    d_updated = b_created[dup] + (
        rng.uniform(0.02, 0.9, n_dup) * (last_seen[dup] - b_created[dup])
    ).astype(np.int64)
    d_status = _progress_status(b_created[dup], b_end[dup], d_updated, b_cancelled[dup])

    # 3. late updates: yesterday's orders whose end was recorded after midnight ...
    prev_ids = base_ids - ORDER_ID_DAY_FACTOR
    prev_ids = prev_ids[_created_at(prev_ids, seed) >= day_start - _MAX_LIFETIME_US]
    spill_ids = prev_ids[_lifecycle(prev_ids, seed)[3] >= day_start]
    #    ... and random orders of D-1 … D-7 (refunds, corrections), distinct per age.
    n_random_late = max(0, round(n * LATE_UPDATE_SHARE) - spill_ids.size)
    late_parts = [spill_ids]
    for age, count in enumerate(rng.multinomial(n_random_late, LATE_UPDATE_AGE_WEIGHTS), 1):
        count = min(int(count), n)
        step, offset = _coprime_step(rng, n), int(rng.integers(n))
        seqs = (step * np.arange(count, dtype=np.int64) + offset) % n + 1
        late_parts.append((day_idx - age) * ORDER_ID_DAY_FACTOR + seqs)
    late_ids = np.concatenate(late_parts)
    l_created, l_cancelled, l_end, l_end_update = _lifecycle(late_ids, seed)
    is_spill = np.arange(late_ids.size) < spill_ids.size
    random_time = day_start + (rng.random(late_ids.size) * _US_PER_DAY).astype(np.int64)
    l_updated = np.where(
        is_spill, l_end_update, np.maximum(random_time, l_end_update + 60 * _US_PER_S)
    )
    l_refund = ~is_spill & (rng.random(late_ids.size) < 0.3)

    # 4. all rows, in generation order: today's orders by sequence number, then the earlier
    #    records of some of them (so "last row wins" would be wrong: latest updated_at wins),
    #    then the late updates.
    ids = np.concatenate([base_ids, base_ids[dup], late_ids])
    created = np.concatenate([b_created, b_created[dup], l_created])
    updated = np.concatenate([b_updated, d_updated, l_updated])
    status = np.concatenate(
        [b_status, d_status, np.where(l_cancelled, _CANCELLED, _DELIVERED)]
    ).astype(np.int64)
    end = np.concatenate([b_end, b_end[dup], l_end])
    refund = np.concatenate([np.zeros(n + n_dup, dtype=bool), l_refund])
    rows = ids.size
    attrs = _attributes(ids, seed)

    # 5. render every column (messy but valid).
    fmt = _choice(rng, _FMT_WEIGHTS, rows)
    ts = _TimestampRenderer(
        day_start - 8 * _US_PER_DAY,
        10,
        hot_start_us=day_start if rows >= _HOT_TABLE_MIN_ROWS else None,
    )
    delivered, cancelled = status == _DELIVERED, status == _CANCELLED

    def optional_ts(present: np.ndarray) -> pl.Series:
        """delivered_at / cancelled_at: the order's end where present, else a null spelling."""
        return ts.render(end, fmt, absent=~present, spelling=_choice(rng, _NULL_WEIGHTS, rows))

    def optional_money(cents: np.ndarray) -> pl.Series:
        """Fees / discounts: a zero is rendered "0.00", "0" or as a null spelling."""
        zero = _choice(rng, _ZERO_MONEY_WEIGHTS, rows)
        idx = np.flatnonzero(cents == 0)
        return _render_money(cents).scatter(idx, _pick(_ZERO_MONEY, zero[idx]))

    def optional_text(table: Sequence[str], index: np.ndarray, present: np.ndarray) -> pl.Series:
        """table[index] where present, else a null spelling (one gather)."""
        spelling = _choice(rng, _TEXT_NULL_WEIGHTS, rows)
        combined = (*_TEXT_NULLS, *table)
        return _pick(combined, np.where(present, len(_TEXT_NULLS) + index, spelling))

    cod = attrs["payment_method"] == _COD
    reason = attrs["cancellation_reason"]
    payment_status = np.select(
        [
            delivered & refund,
            delivered,
            cancelled & (reason == _PAYMENT_FAILED),
            cancelled & cod,
            cancelled,
            cod | (status == _PLACED),
        ],
        [
            _PS["refunded"],
            _PS["paid"],
            _PS["failed"],
            _PS["voided"],
            _PS["refunded"],
            _PS["pending"],
        ],
        _PS["paid"],
    )
    promo_table = [*_PROMO_CODES, _FREE_ORDER_PROMO]
    promo_table = [*promo_table, *(p.lower() for p in promo_table)]
    promo_index = attrs["promo"] + np.where(rng.random(rows) < 0.1, len(promo_table) // 2, 0)

    columns: dict[str, pl.Series] = {
        "order_id": _render_ids(ids, _choice(rng, _ID_STYLE_WEIGHTS, rows)),
        "customer_id": _render_ids(attrs["customer_id"], _choice(rng, _ID_STYLE_WEIGHTS, rows)),
        "store_id": _render_ids(attrs["store_id"], _choice(rng, _ID_STYLE_WEIGHTS, rows)),
        "restaurant_id": _render_ids(attrs["restaurant_id"], _choice(rng, _ID_STYLE_WEIGHTS, rows)),
        "order_amount": _render_money(
            attrs["order_amount"], _choice(rng, _AMOUNT_STYLE_WEIGHTS, rows)
        ),
        "delivery_fee": optional_money(attrs["delivery_fee"]),
        "discount_amount": optional_money(attrs["discount_amount"]),
        "status": _pick(
            _cased_table(VALID_STATUSES, ("lower", "upper", "padded_upper", "title", "padded")),
            status * 5 + _choice(rng, (0.80, 0.06, 0.05, 0.05, 0.04), rows),
        ),
        "payment_method": _pick(
            _cased_table(_PAYMENT_METHODS, ("lower", "upper", "title", "padded")),
            attrs["payment_method"] * 4 + _choice(rng, (0.70, 0.15, 0.10, 0.05), rows),
        ),
        "payment_status": _pick(
            _cased_table(_PAYMENT_STATUSES, ("lower", "upper", "title")),
            payment_status * 3 + _choice(rng, (0.75, 0.15, 0.10), rows),
        ),
        "created_at": ts.render(created, fmt),
        "updated_at": ts.render(updated, fmt),
        "delivered_at": optional_ts(delivered),
        "cancelled_at": optional_ts(cancelled),
        "cancellation_reason": optional_text(
            _cased_table(_CANCELLATION_REASONS, ("lower", "upper", "title")),
            reason * 3 + _choice(rng, (0.8, 0.1, 0.1), rows),
            cancelled,
        ),
        "promo_code": optional_text(promo_table, promo_index, attrs["promo"] >= 0),
        "notes": optional_text(_NOTES, attrs["note"], attrs["note"] >= 0),
    }

    # 6. corrupt ~3 % of the rows, each for exactly one reason (first-match-wins safe).
    counts = _bad_row_counts(rows)
    chosen = rng.choice(rows, sum(counts.values()), replace=False)
    intended = pl.Series([None] * rows, dtype=pl.String)
    start = 0

    def corrupt(column: str, idx: np.ndarray, values: Sequence[str | None]) -> None:
        columns[column].scatter(idx, _pick(values, rng.integers(len(values), size=idx.size)))

    for reason_code, count in counts.items():
        idx = np.sort(chosen[start : start + count])
        start += count
        if not idx.size:
            continue
        intended.scatter(idx, reason_code)
        if reason_code == "missing_order_id":
            corrupt("order_id", idx, _BAD_ORDER_IDS)
        elif reason_code == "missing_customer_id":
            corrupt("customer_id", idx, _BAD_CUSTOMER_IDS)
        elif reason_code == "null_order_amount":
            corrupt("order_amount", idx, _NULL_AMOUNTS)
        elif reason_code == "non_numeric_order_amount":
            corrupt("order_amount", idx, _NON_NUMERIC_AMOUNTS)
        elif reason_code == "negative_order_amount":
            corrupt("order_amount", idx, _NEGATIVE_AMOUNTS)
        elif reason_code == "suspiciously_large_amount":
            corrupt("order_amount", idx, _LARGE_AMOUNTS)
        elif reason_code == "test_order":
            by_status = rng.random(idx.size) < 0.5
            corrupt("status", idx[by_status], _TEST_STATUSES)
            corrupt("notes", idx[~by_status], _TEST_NOTES)
        elif reason_code == "invalid_status":
            corrupt("status", idx, _INVALID_STATUSES)
        elif reason_code in ("missing_timestamp", "unparseable_timestamp"):
            values = (
                _NULL_TIMESTAMPS
                if reason_code == "missing_timestamp"
                else _unparseable_timestamps(day)
            )
            on_created = rng.random(idx.size) < 0.5
            corrupt("created_at", idx[on_created], values)
            corrupt("updated_at", idx[~on_created], values)
        elif reason_code == "updated_before_created":
            ahead = rng.integers(60, 6 * 3600, size=idx.size) * _US_PER_S
            columns["created_at"].scatter(idx, ts.render(updated[idx] + ahead, fmt[idx]))
        else:  # pragma: no cover - guarded by the BAD_ROW_SHARES assertion
            raise AssertionError(reason_code)

    frame = pl.DataFrame([columns[c].alias(c) for c in ORDER_SOURCE_COLUMNS])
    if with_intended_reason:
        frame = frame.with_columns(intended.alias(INTENDED_REASON_COLUMN))
    if with_update_time:
        frame = frame.with_columns(pl.Series(UPDATE_TIME_COLUMN, updated, dtype=pl.Int64))
    return frame


# --------------------------------------------------------------------------- resource


class DemoSource(RawSource):
    """Deterministic synthetic orders (the embedded default source, SPEC §6).

    `orders_per_day` orders are created per UTC day; a day's extract has about
    1.03 x that many rows (duplicates and late updates), ~3 % of them bad on purpose.
    `events_per_day` clickstream events per day (demo_events.py), ~1 % unusable.
    """

    orders_per_day: int = 20_000
    events_per_day: int = 100_000
    seed: int = 0
    batch_rows: int = 250_000

    @property
    def name(self) -> str:
        return "demo"

    def extract_orders(self, day: date) -> Iterator[pl.DataFrame]:
        if self.batch_rows < 1:
            raise ValueError(f"batch_rows must be positive, got {self.batch_rows}")
        frame = generate_orders(day, self.orders_per_day, seed=self.seed)
        if frame.height == 0:
            yield frame
            return
        yield from frame.iter_slices(self.batch_rows)

    def extract_orders_increment(self, day: date, increment: Increment) -> Iterator[pl.DataFrame]:
        """The day's change records that happened in ``[since, until)``: the open day is
        released as time passes (a record is never released before it happened)."""
        frame = generate_orders(day, self.orders_per_day, seed=self.seed, with_update_time=True)
        since, until = (int(t.timestamp() * 1_000_000) for t in (increment.since, increment.until))
        released = frame.filter(pl.col(UPDATE_TIME_COLUMN).is_between(since, until, closed="left"))
        self._record_stats(
            window_start=increment.since.isoformat(),
            window_end=increment.until.isoformat(),
            rows_extracted=released.height,
        )
        yield released.drop(UPDATE_TIME_COLUMN)

    def extract_events(self, day: date) -> Iterator[pl.DataFrame]:
        from orders_platform.sources.demo_events import generate_events

        frame = generate_events(
            day, self.events_per_day, seed=self.seed, orders_per_day=self.orders_per_day
        )
        if frame.height == 0:
            yield frame
            return
        yield from frame.iter_slices(self.batch_rows)
