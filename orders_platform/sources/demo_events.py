"""The deterministic demo source of raw clickstream events (SPEC §6: the embedded default).

`generate_events(day, n)` synthesises the raw events of one UTC day as a messy upstream
would deliver them: string columns ``user_id``, ``event_timestamp``, ``event_type``,
``order_id`` (nullable). Pure and vectorised (numpy + Polars, no Python loop over rows):
100 000 events take about 0.1-0.2 s. Deterministic: the same ``(day, n, seed)``
always gives identical rows in the same order; different days differ.

Shape of a day (the same ``n`` is assumed for every day):

* **Regular sessions** started on the day: ~8 events each (geometric, at most 60), events
  ~75 s apart (at most 20 min, so one generated session is one session), from a pool of
  ``n // 30`` users (``u0000000`` …), so a user has several sessions a day (two sessions
  of one user may happen to merge, as in real traffic). They start and end inside the day.
  First event ``login`` or ``view_page``; 25 % of sessions (≥ 3 events) end with a
  ``purchase`` that carries an order_id of that day's demo orders
  (``days since 2000-01-01 * 10_000_000 + seq``, ``seq`` in ``1..orders_per_day``, as in
  :mod:`orders_platform.sources.demo`); some others end with ``logout``.
* **Midnight-crossing sessions**: ``n // 1000`` sessions per day start between 23:40 and
  23:50 UTC and run, 3-5 minutes between events, to ~00:10-01:00 on the next day (users
  ``u9000000`` … reserved for them). Each is generated whole, from its own small RNG stream
  seeded by ``(seed, day, "crossing")``, but its events are split by the raw partition they
  belong to: ``generate_events(D)`` holds the part before midnight of D's crossing sessions
  PLUS the after-midnight tails of D-1's crossing sessions (recomputed cheaply from D-1's
  crossing stream). A purchase in a tail carries an order_id of the day it happens on.
* **Exact duplicates**: ``round(n * DUPLICATE_SHARE)`` (0.5 %) rows repeated verbatim.
* **Unusable events**: ``round(rows * UNUSABLE_SHARE)`` (1 %), split between a missing
  user_id, a missing event_timestamp (null spellings ``None``, ``""``, ``"NULL"``,
  ``"N/A"``, ``"n/a"``, ``"-"``) and an unparseable event_timestamp.
* **Messy but valid spellings**: timestamps ``…T14:44:32.123000Z``,
  ``…T14:44:32.123000+00:00``, ``…T20:14:32.123000+05:30`` (IST, same instant) or naive
  ``… 14:44:32.123000`` (UTC); event types ``" VIEW_PAGE "``, ``"Purchase"``, null or
  ``"NULL"`` (→ ``unknown``); user ids with surrounding spaces; order ids ``" 123 "`` or
  ``"123.0"``.
* Rows are shuffled (events out of order). Exactly ``n`` rows.

:func:`generate_clean_events` gives the same sessions, typed and tidy (no duplicates, no bad
rows, no messy spellings), for benchmarks and property tests.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

__all__ = [
    "CROSSING_USER_OFFSET",
    "DEMO_EVENT_TYPES",
    "DUPLICATE_SHARE",
    "UNUSABLE_SHARE",
    "generate_clean_events",
    "generate_events",
]

# Mirrors orders_platform.sources.demo (kept local so the two modules never import each
# other; a unit test checks they agree).
ORDER_ID_EPOCH = date(2000, 1, 1)
ORDER_ID_DAY_FACTOR = 10_000_000

DEMO_EVENT_TYPES: tuple[str, ...] = (
    "login",
    "view_page",
    "search",
    "view_item",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "logout",
)
_T = {t: i for i, t in enumerate(DEMO_EVENT_TYPES)}
# Middle events of a session.
_MIDDLE_TYPES = np.array([_T[t] for t in ("view_page", "search", "view_item", "add_to_cart")])
_MIDDLE_WEIGHTS = np.array([0.40, 0.20, 0.25, 0.15])
_REMOVE_SHARE = 0.04  # of middle events: remove_from_cart

DUPLICATE_SHARE = 0.005
UNUSABLE_SHARE = 0.01
CONVERSION_SHARE = 0.25
CROSSING_SESSIONS_PER_EVENT = 1 / 1000
CROSSING_USER_OFFSET = 9_000_000
MEAN_SESSION_EVENTS = 8
MAX_SESSION_EVENTS = 60
EVENTS_PER_USER = 30

_US_PER_S = 1_000_000
_US_PER_MIN = 60 * _US_PER_S
_US_PER_DAY = 86_400 * _US_PER_S
_IST_OFFSET_US = (5 * 60 + 30) * _US_PER_MIN
_DAYS_1970_TO_2000 = (ORDER_ID_EPOCH - date(1970, 1, 1)).days
_M64 = (1 << 64) - 1
_STREAM_MAIN, _STREAM_CROSSING = 0xE7E4, 0xC055

# Timestamp renderings: "Z", "+00:00", "+05:30" (IST, same instant), naive (UTC).
_TS_SUFFIXES = ("Z", "+00:00", "+05:30", "")
_TS_WEIGHTS = (0.50, 0.15, 0.15, 0.20)
_IST, _NAIVE = 2, 3
_NULLS = (None, "", "NULL", "N/A", "n/a", "-")


def _unparseable_timestamps(day: date) -> tuple[str, ...]:
    return (
        "not a timestamp",
        f"{day.isoformat()}T25:61:00Z",
        f"{day:%d/%m/%Y} 25:99",
        f"{day:%Y}-13-45 10:00:00",
        "yesterday",
    )


def _day_index(day: date) -> int:
    return (day - ORDER_ID_EPOCH).days


def _day_start_us(day: date) -> int:
    return (_day_index(day) + _DAYS_1970_TO_2000) * _US_PER_DAY


def _rng(day: date, seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed & _M64, day.toordinal(), stream])


class _Events:
    """Clean events as parallel numpy arrays (order_id -1 = none)."""

    __slots__ = ("user", "ts", "etype", "order_id")

    def __init__(self, user: np.ndarray, ts: np.ndarray, etype: np.ndarray, order_id: np.ndarray):
        self.user, self.ts, self.etype, self.order_id = user, ts, etype, order_id

    def take(self, idx: np.ndarray) -> _Events:
        return _Events(self.user[idx], self.ts[idx], self.etype[idx], self.order_id[idx])

    @staticmethod
    def concat(parts: list[_Events]) -> _Events:
        return _Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Events.__slots__))

    def __len__(self) -> int:
        return self.ts.size


def _session_types(
    rng: np.random.Generator, lengths: np.ndarray, session_of: np.ndarray, pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Event type codes for sessions of the given lengths, and the converting sessions."""
    n = session_of.size
    etype = _MIDDLE_TYPES[
        np.searchsorted(np.cumsum(_MIDDLE_WEIGHTS), rng.random(n) * _MIDDLE_WEIGHTS.sum())
    ]
    etype = np.where(rng.random(n) < _REMOVE_SHARE, _T["remove_from_cart"], etype)
    etype = np.where(pos == 0, np.where(rng.random(n) < 0.6, _T["login"], _T["view_page"]), etype)
    converted = (lengths >= 3) & (rng.random(lengths.size) < CONVERSION_SHARE)
    logout = ~converted & (lengths >= 2) & (rng.random(lengths.size) < 0.3)
    is_last = pos == lengths[session_of] - 1
    etype = np.where(is_last & converted[session_of], _T["purchase"], etype)
    etype = np.where(is_last & logout[session_of], _T["logout"], etype)
    return etype, converted


def _positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(session index, position within the session) of every event."""
    session_of = np.repeat(np.arange(lengths.size), lengths)
    starts = np.cumsum(lengths) - lengths
    return session_of, np.arange(session_of.size) - starts[session_of]


def _within_session_offsets(gaps: np.ndarray, pos: np.ndarray, session_of: np.ndarray):
    gaps = np.where(pos == 0, 0, gaps)
    cum = np.cumsum(gaps)
    first = np.flatnonzero(pos == 0)
    return cum - cum[first][session_of]


def _order_ids(
    rng: np.random.Generator, etype: np.ndarray, ts: np.ndarray, orders_per_day: int
) -> np.ndarray:
    """order_id of each purchase (an order of the day the purchase happens on), else -1."""
    day_idx = ts // _US_PER_DAY - _DAYS_1970_TO_2000
    seq = rng.integers(1, max(orders_per_day, 1) + 1, size=ts.size)
    return np.where(etype == _T["purchase"], day_idx * ORDER_ID_DAY_FACTOR + seq, -1)


def _regular_sessions(
    rng: np.random.Generator, day: date, n_events: int, orders_per_day: int
) -> _Events:
    if n_events <= 0:
        return _Events(*(np.zeros(0, np.int64) for _ in range(4)))
    lengths = np.zeros(0, np.int64)
    while lengths.sum() < n_events:  # one or two rounds; a loop over chunks, not rows
        more = int(n_events / MEAN_SESSION_EVENTS * 1.2) + 16
        drawn = np.minimum(rng.geometric(1 / MEAN_SESSION_EVENTS, more), MAX_SESSION_EVENTS)
        lengths = np.concatenate([lengths, drawn.astype(np.int64)])
    cum = np.cumsum(lengths)
    n_sessions = int(np.searchsorted(cum, n_events)) + 1
    lengths = lengths[:n_sessions].copy()
    lengths[-1] -= cum[n_sessions - 1] - n_events
    session_of, pos = _positions(lengths)

    gaps = np.clip(rng.exponential(75.0, n_events), 1.0, 1200.0) * _US_PER_S
    offsets = _within_session_offsets(gaps.astype(np.int64), pos, session_of)
    span = offsets[np.cumsum(lengths) - 1]
    latest_start = _US_PER_DAY - _US_PER_S - span
    start = (rng.random(n_sessions) * latest_start).astype(np.int64)
    ts = _day_start_us(day) + start[session_of] + offsets
    ts -= ts % 1000  # millisecond resolution

    n_users = max(1, n_events // EVENTS_PER_USER)
    user = rng.integers(0, n_users, n_sessions)[session_of]
    etype, _ = _session_types(rng, lengths, session_of, pos)
    return _Events(user, ts, etype, _order_ids(rng, etype, ts, orders_per_day))


def _crossing_sessions(day: date, n: int, seed: int, orders_per_day: int) -> _Events:
    """Whole midnight-crossing sessions started on `day` (cheap: ~n/1000 sessions)."""
    rng = _rng(day, seed, _STREAM_CROSSING)
    n_sessions = int(n * CROSSING_SESSIONS_PER_EVENT)
    lengths = rng.integers(8, 15, n_sessions)  # 8..14 events, 3-5 min apart: 21-65 min
    session_of, pos = _positions(lengths)
    gaps = rng.integers(180 * _US_PER_S, 300 * _US_PER_S, session_of.size)
    offsets = _within_session_offsets(gaps, pos, session_of)
    start = _day_start_us(day) + rng.integers(
        (23 * 60 + 40) * _US_PER_MIN, (23 * 60 + 50) * _US_PER_MIN, n_sessions
    )
    ts = start[session_of] + offsets
    user = (CROSSING_USER_OFFSET + np.arange(n_sessions))[session_of]
    etype, _ = _session_types(rng, lengths, session_of, pos)
    return _Events(user, ts, etype, _order_ids(rng, etype, ts, orders_per_day))


def _clean_arrays(
    day: date, n: int, seed: int, orders_per_day: int, n_regular: int | None = None
) -> tuple[_Events, np.random.Generator]:
    """All clean events that belong to the raw partition of `day`, unshuffled."""
    day_start, day_end = _day_start_us(day), _day_start_us(day) + _US_PER_DAY
    own = _crossing_sessions(day, n, seed, orders_per_day)
    prev = _crossing_sessions(day - timedelta(days=1), n, seed, orders_per_day)
    crossing = _Events.concat([own.take(own.ts < day_end), prev.take(prev.ts >= day_start)])
    if n_regular is None:
        n_regular = n - round(n * DUPLICATE_SHARE) - len(crossing)
    rng = _rng(day, seed, _STREAM_MAIN)
    regular = _regular_sessions(rng, day, max(0, n_regular), orders_per_day)
    return _Events.concat([regular, crossing]), rng


def _user_ids(user: np.ndarray) -> pl.Series:
    return "u" + pl.Series(user, dtype=pl.Int64).cast(pl.String).str.zfill(7)


def _pick(values: tuple[str | None, ...] | list[str | None], idx: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(idx)


def generate_clean_events(
    day: date, n: int = 100_000, *, seed: int = 0, orders_per_day: int = 20_000
) -> pl.DataFrame:
    """The events of `day` as `clean_events` would type them, tidy (benchmarks, tests).

    user_id (String), event_timestamp (Datetime us UTC), event_type (String), order_id
    (Int64, nullable); the same sessions (regular and crossing) as :func:`generate_events`
    but ``n`` regular-plus-crossing events, no duplicates, no bad rows, sorted by time.
    """
    day = day.date() if isinstance(day, datetime) else day
    ev, _ = _clean_arrays(day, n, seed, orders_per_day)
    order = np.argsort(ev.ts, kind="stable")
    ev = ev.take(order)
    return pl.DataFrame(
        {
            "user_id": _user_ids(ev.user),
            "event_timestamp": pl.Series(ev.ts, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "event_type": _pick(DEMO_EVENT_TYPES, ev.etype),
            "order_id": pl.Series(ev.order_id, dtype=pl.Int64).replace(-1, None),
        }
    )


def generate_events(
    day: date, n: int = 100_000, *, seed: int = 0, orders_per_day: int = 20_000
) -> pl.DataFrame:
    """The raw clickstream events of UTC `day` (see the module docstring for the shape).

    Returns columns user_id, event_timestamp, event_type, order_id, all ``pl.String``
    (nullable), in shuffled order. Deterministic in ``(day, n, seed, orders_per_day)``.
    """
    day = day.date() if isinstance(day, datetime) else day
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    ev, rng = _clean_arrays(day, n, seed, orders_per_day)
    rows = len(ev)
    if rows == 0:
        return pl.DataFrame(
            schema={c: pl.String for c in ("user_id", "event_timestamp", "event_type", "order_id")}
        )

    # Timestamps: one strftime, then per-row suffix / separator.
    style = np.searchsorted(np.cumsum(_TS_WEIGHTS), rng.random(rows) * sum(_TS_WEIGHTS))
    local = ev.ts + np.where(style == _IST, _IST_OFFSET_US, 0)
    text = (
        pl.Series(local, dtype=pl.Int64)
        .cast(pl.Datetime("us"))
        .dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")
    )
    naive = pl.Series(style == _NAIVE)
    text = pl.select(
        pl.when(pl.lit(naive))
        .then(pl.lit(text).str.replace("T", " ", literal=True))
        .otherwise(pl.lit(text))
        + _pick(_TS_SUFFIXES, style)
    ).to_series()

    # user_id: 5 % with surrounding spaces.
    user = _user_ids(ev.user)
    pad = rng.random(rows)
    user = pl.select(
        pl.when(pl.lit(pad < 0.03))
        .then(" " + pl.lit(user) + " ")
        .when(pl.lit(pad < 0.05))
        .then(pl.lit(user) + "  ")
        .otherwise(pl.lit(user))
    ).to_series()

    # event_type: 8 % UPPER and padded, 4 % Title, 0.3 % missing (-> "unknown").
    casing = rng.random(rows)
    types = list(DEMO_EVENT_TYPES)
    table = types + [f" {t.upper()} " for t in types] + [t.capitalize() for t in types]
    variant = np.select([casing < 0.08, casing < 0.12], [1, 2], 0)
    event_type = _pick(table, ev.etype + variant * len(types))
    missing_type = np.flatnonzero(casing > 0.997)
    event_type.scatter(missing_type, _pick((None, "NULL", ""), missing_type % 3))

    # order_id: plain, " 123 " or "123.0".
    oid_style = rng.random(rows)
    oid = pl.Series(ev.order_id, dtype=pl.Int64).replace(-1, None).cast(pl.String)
    order_id = pl.select(
        pl.when(pl.lit(oid_style < 0.08))
        .then(" " + pl.lit(oid) + " ")
        .when(pl.lit(oid_style < 0.13))
        .then(pl.lit(oid) + ".0")
        .otherwise(pl.lit(oid))
    ).to_series()

    # Unusable events (1 %): missing user_id / missing timestamp / unparseable timestamp.
    n_bad = round(rows * UNUSABLE_SHARE)
    bad = rng.choice(rows, n_bad, replace=False)
    kind = np.arange(n_bad) % 3
    for k, column, values in (
        (0, user, _NULLS),
        (1, text, _NULLS),
        (2, text, _unparseable_timestamps(day)),
    ):
        idx = bad[kind == k]
        column.scatter(idx, _pick(values, rng.integers(0, len(values), idx.size)))

    frame = pl.DataFrame(
        {
            "user_id": user,
            "event_timestamp": text,
            "event_type": event_type,
            "order_id": order_id,
        }
    )
    # Exact duplicates (0.5 %), then shuffle: events arrive out of order.
    dups = rng.integers(0, rows, round(n * DUPLICATE_SHARE)) if rows else np.zeros(0, np.int64)
    frame = pl.concat([frame, frame[dups]])
    return frame[rng.permutation(frame.height)]
