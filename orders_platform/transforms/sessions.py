"""Sessionization of cleaned clickstream events (SPEC §5, asset ``silver/sessions``).

A *session* is a maximal run of one user's events in which consecutive events are at most
``gap`` apart (default 30 minutes). The boundary is inclusive: two events exactly ``gap``
apart are in the same session, ``gap + 1 µs`` apart start a new one. A session belongs to
the UTC day on which it *starts* (``session_date``).

Input: cleaned events (see :func:`orders_platform.transforms.events.clean_events`) with
``user_id`` (String), ``event_timestamp`` (Datetime us UTC), ``event_type`` (String) and
``order_id`` (Int64, nullable; optional column). Other columns (lineage) are ignored.

Exact duplicates — events equal on (user_id, event_timestamp, event_type, order_id) — are
counted ONCE: :func:`sessionize` collapses them before anything else. This is the only
place duplicates are removed (``clean_events`` keeps them), so for a partition
``valid events = sum(event_count) + exact duplicates collapsed``;
:func:`count_exact_duplicates` gives the second term.

Algorithm (vectorised, no per-row or per-user Python): one total order,
(user_id, event_timestamp, event_type, order_id), so the result never depends on the input
order. For speed it is computed on integers (:func:`_order`): users are numbered through a
64-bit hash of user_id (a collision is detected exactly, then the strings themselves are
numbered), user number and timestamp are packed into one Int64 and arg-sorted once, and
only rows tied on (user, timestamp) get a second, small sort by (event_type, order_id).
Exact duplicates are then adjacent and flagged; a new session starts where the user
changes or the time since the previous event exceeds ``gap``; a cumulative sum numbers the
sessions, and each session's attributes are read off its first and last rows (sessions are
contiguous, so no group-by over all events: only the few events carrying an order_id are
grouped, for ``order_ids``). Strings are touched only at session starts and ends; the
output is put in (user_id, session_start) order by sorting the distinct user ids only.
See ``benchmarks/bench_sessions.py``.

Midnight and the partition window
---------------------------------
The Dagster asset for day D is given the cleaned events of D-1, D and D+1 and calls
:func:`sessions_for_day`, which emits exactly the sessions whose ``session_start`` falls on
D, each complete, including its events after midnight on D+1. A session that started on
D-1 and runs past midnight is recognised as such (its first event on D has a predecessor
within ``gap``) and is NOT emitted for D — it was emitted, complete, by D-1's run.

Limit: with D-1, D and D+1 available, a session starting on D is complete as long as it
ends before D+1 ends, i.e. it may run up to 24 hours past midnight (up to 48 hours in
total). A session still going on at the end of D+1 (an event in the last ``gap`` of D+1
followed by one on D+2 within ``gap``: round-the-clock activity without a 30-minute pause,
in practice a bot) would be truncated: D's run emits it ending at its last event of D+1,
and its events on D+2 belong to no emitted session (D+2's run sees them continue a session
that started before D+2). :func:`possibly_truncated` lists the sessions of a day that end
within ``gap`` of the end of D+1, so the asset can report them. Events of D-1 only matter
for the last ``gap`` before midnight; :func:`sessions_for_day` ignores older ones.

Output (:data:`SESSIONS_SCHEMA`, sorted by user_id, session_start):

* ``session_id`` — deterministic, same events give the same id on every run and machine
  (no hash involved): ``"{user_id}@{session_start as integer microseconds since the Unix
  epoch, UTC}"``, e.g. ``u0000042@1773790812345000`` for 2026-03-17 23:40:12.345 UTC.
  The part after the last ``@`` is the start instant (it never contains ``@``), so the id
  is unique per (user_id, session_start) whatever characters user_id contains.
* ``duration_seconds`` — Float64, ``(session_end - session_start)`` in seconds with
  microsecond precision (equals ``timedelta.total_seconds()``); 0.0 for a single event.
* ``event_count`` — Int64, distinct events (exact duplicates counted once).
* ``first_event_type`` / ``last_event_type`` — of the first/last event in the sort order
  (ties on timestamp broken by event_type, then order_id).
* ``converted`` — the session contains an event of type ``purchase``.
* ``order_ids`` — List(Int64): distinct non-null order ids in the session, ascending;
  an empty list (never null) when there are none.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")
DEFAULT_SESSION_GAP = timedelta(minutes=30)
PURCHASE_EVENT_TYPE = "purchase"

# The columns that identify an event; exact duplicates agree on all four.
EVENT_KEY: tuple[str, ...] = ("user_id", "event_timestamp", "event_type", "order_id")

SESSIONS_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    "user_id": pl.String(),
    "session_start": UTC_TS,
    "session_end": UTC_TS,
    "session_date": pl.Date(),
    "duration_seconds": pl.Float64(),
    "event_count": pl.Int64(),
    "first_event_type": pl.String(),
    "last_event_type": pl.String(),
    "converted": pl.Boolean(),
    "order_ids": pl.List(pl.Int64()),
}


def _event_frame(events: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The four key columns with canonical dtypes (missing order_id -> null Int64)."""
    lf = events.lazy()
    schema = lf.collect_schema()
    missing = [c for c in ("user_id", "event_timestamp", "event_type") if c not in schema]
    if missing:
        raise ValueError(f"events are missing required column(s): {', '.join(missing)}")
    ts_dtype = schema["event_timestamp"]
    ts = pl.col("event_timestamp")
    if isinstance(ts_dtype, pl.Datetime):
        ts = (
            ts.dt.replace_time_zone("UTC")
            if ts_dtype.time_zone is None
            else ts.dt.convert_time_zone("UTC")
        )
    ts = ts.cast(UTC_TS)
    order_id = pl.col("order_id").cast(pl.Int64) if "order_id" in schema else pl.lit(None, pl.Int64)
    return lf.select(
        pl.col("user_id").cast(pl.String),
        ts.alias("event_timestamp"),
        pl.col("event_type").cast(pl.String),
        order_id.alias("order_id"),
    )


def _same_as_previous(col: str) -> pl.Expr:
    c = pl.col(col)
    return c.eq_missing(c.shift(1)).fill_null(False)


def _gap_us(gap: timedelta) -> int:
    if gap <= timedelta(0):
        raise ValueError(f"session gap must be positive, got {gap!r}")
    return gap // timedelta(microseconds=1)


class _Order(NamedTuple):
    """The session order of a frame of events, computed on integers only."""

    idx: pl.Series  # sorted position -> row of the input frame
    user: pl.Series  # Int64 user code at each sorted position (equal codes = same user)
    ts: pl.Series  # Int64 epoch microseconds at each sorted position
    duplicate: pl.Series  # Boolean: exact duplicate of the previous sorted position


def _dense_codes(values: pl.Series) -> pl.Series:
    """0..k-1 per distinct value (arbitrary but consistent numbering), as Int64."""
    distinct = values.unique()
    return values.replace_strict(distinct, pl.int_range(distinct.len(), eager=True, dtype=pl.Int64))


def _order(base: pl.DataFrame, *, exact: bool = False) -> _Order:
    """Sort by (user_id, event_timestamp, event_type, order_id) without sorting strings.

    Users get dense integer codes (numbering the distinct 64-bit hashes of user_id); code and
    timestamp are packed into one Int64 key, so the main sort is a single integer arg-sort.
    Rows tied on (user, timestamp) — rare: exact duplicates and same-instant events — are
    then ordered by (event_type, order_id) in a small second sort. Which user comes first
    is an internal detail (sessionize re-sorts its output by user_id). A hash collision
    (two user_ids with one code) is detected exactly and the order recomputed with codes
    numbering the distinct strings themselves (``exact=True``).
    """
    n = base.height
    user_id = base.get_column("user_id")
    code = _dense_codes(user_id if exact else user_id.hash())
    ts = base.get_column("event_timestamp").dt.epoch("us")
    t0 = int(ts.min())  # type: ignore[arg-type]
    t_bits = max(int(ts.max() - t0).bit_length(), 1)  # type: ignore[operator]
    if t_bits + int(code.max()).bit_length() <= 62:  # type: ignore[arg-type]
        key = code * (1 << t_bits) + (ts - t0)
        idx = key.arg_sort()
        sorted_key = key.gather(idx)
        s_user = sorted_key // (1 << t_bits)
        s_ts = sorted_key - s_user * (1 << t_bits) + t0
    else:  # more than ~2**62 (users x microseconds): a two-column integer sort
        idx = pl.DataFrame({"u": code, "t": ts}).select(pl.arg_sort_by("u", "t")).to_series()
        s_user, s_ts = code.gather(idx), ts.gather(idx)

    same = ((s_user == s_user.shift(1)) & (s_ts == s_ts.shift(1))).fill_null(False)
    tied = same | same.shift(-1, fill_value=False)
    duplicate = pl.repeat(False, n, eager=True)
    if tied.any():
        pos = tied.arg_true()
        rows = idx.gather(pos)
        ties = (
            pl.DataFrame(
                {
                    "row": rows,
                    "user": s_user.gather(pos),
                    "ts": s_ts.gather(pos),
                    "event_type": base.get_column("event_type").gather(rows),
                    "order_id": base.get_column("order_id").gather(rows),
                }
            )
            .sort("user", "ts", "event_type", "order_id")
            .with_columns(
                dup=pl.all_horizontal(_same_as_previous(c) for c in _TIE_KEY).fill_null(False)
            )
        )
        # Tie groups are contiguous and already in (user, ts) order, so the sorted subset
        # goes back into the very same positions.
        idx = idx.scatter(pos, ties.get_column("row"))
        duplicate = duplicate.scatter(pos, ties.get_column("dup"))

    if not exact:
        s_name = user_id.gather(idx)
        collision = (s_user == s_user.shift(1)) & (s_name != s_name.shift(1))
        if collision.any():
            return _order(base, exact=True)
    return _Order(idx=idx, user=s_user, ts=s_ts, duplicate=duplicate)


_TIE_KEY = ("user", "ts", "event_type", "order_id")


def _collected(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    # One chunk per column: gathers from a many-chunk frame (e.g. just read from a
    # multi-row-group Parquet file) are several times slower.
    base = _event_frame(events).collect().rechunk()
    nulls = base.select(pl.col("user_id", "event_timestamp").null_count()).row(0)
    if any(nulls):
        raise ValueError(
            "sessionize needs cleaned events (see transforms.events.clean_events): "
            f"{nulls[0]} null user_id, {nulls[1]} null event_timestamp"
        )
    return base


def _sorted_frame(base: pl.DataFrame, order: _Order, gap_us: int) -> pl.DataFrame:
    """Per sorted position: row, ts, duplicate, new_session, session_no."""
    user, ts = pl.col("user"), pl.col("ts")
    new_session = (user != user.shift(1)) | ((ts - ts.shift(1)) > gap_us)
    return (
        pl.DataFrame(
            {"row": order.idx, "user": order.user, "ts": order.ts, "duplicate": order.duplicate}
        )
        .with_columns(new_session=new_session.fill_null(True))
        .with_columns(session_no=pl.col("new_session").cum_sum().cast(pl.Int64))
    )


def mark_sessions(
    events: pl.DataFrame | pl.LazyFrame, gap: timedelta = DEFAULT_SESSION_GAP
) -> pl.DataFrame:
    """Distinct events (exact duplicates collapsed) in session order, with session numbers.

    Returns user_id, event_timestamp, event_type, order_id, ``new_session`` (Boolean, true
    on a session's first event) and ``session_no`` (Int64, 1-based). Each session's events
    are contiguous and in (event_timestamp, event_type, order_id) order; the order of the
    users between each other is internal (not by user_id). Useful for per-event checks.
    """
    gap_us = _gap_us(gap)
    base = _collected(events)
    if base.height == 0:
        return base.with_columns(
            new_session=pl.lit(None, pl.Boolean), session_no=pl.lit(None, pl.Int64)
        )
    frame = _sorted_frame(base, _order(base), gap_us).filter(~pl.col("duplicate"))
    return base[frame.get_column("row")].with_columns(
        frame.get_column("new_session"), frame.get_column("session_no")
    )


def count_exact_duplicates(events: pl.DataFrame | pl.LazyFrame) -> int:
    """How many events :func:`sessionize` collapses as exact duplicates."""
    lf = _event_frame(events)
    total = lf.select(pl.len()).collect().item()
    distinct = lf.unique().select(pl.len()).collect().item()
    return int(total - distinct)


def _empty_sessions() -> pl.DataFrame:
    return pl.DataFrame(schema=SESSIONS_SCHEMA)


def sessionize(
    events: pl.DataFrame | pl.LazyFrame, gap: timedelta = DEFAULT_SESSION_GAP
) -> pl.DataFrame:
    """All sessions of the given events (see module docstring), as :data:`SESSIONS_SCHEMA`."""
    gap_us = _gap_us(gap)
    base = _collected(events)
    if base.height == 0:
        return _empty_sessions()
    frame = _sorted_frame(base, _order(base), gap_us)

    is_purchase = (base.get_column("event_type") == PURCHASE_EVENT_TYPE).fill_null(False)
    row = pl.col("row")
    frame = frame.with_columns(
        purchase=pl.lit(is_purchase).gather(row),
        order_id=pl.lit(base.get_column("order_id")).gather(row),
    ).with_columns(
        distinct_count=(~pl.col("duplicate")).cum_sum().cast(pl.Int64),
        purchase_count=pl.col("purchase").cum_sum().cast(pl.Int64),
    )
    is_last = pl.col("new_session").shift(-1, fill_value=True)
    starts = frame.filter(pl.col("new_session")).select(
        "session_no",
        "user",
        pl.col("row").alias("_first_row"),
        pl.col("ts").alias("_start_us"),
        (pl.col("distinct_count") - 1).alias("_count_before"),
        (pl.col("purchase_count") - pl.col("purchase").cast(pl.Int64)).alias("_purchases_before"),
    )
    ends = frame.filter(is_last).select(
        pl.col("row").alias("_last_row"),
        pl.col("ts").alias("_end_us"),
        pl.col("distinct_count").alias("_count_through"),
        pl.col("purchase_count").alias("_purchases_through"),
    )
    order_ids = (
        frame.lazy()
        .filter(pl.col("order_id").is_not_null())
        .select("session_no", "order_id")
        .unique()
        .sort("session_no", "order_id")
        .group_by("session_no", maintain_order=True)
        .agg(pl.col("order_id").alias("order_ids"))
    )
    # Sessions are contiguous: the k-th start and the k-th end belong to the same session.
    sessions = (
        starts.hstack(ends)
        .lazy()
        .join(order_ids, on="session_no", how="left", maintain_order="left")
        .collect()
    )
    sessions = sessions[_by_user_id(sessions, base.get_column("user_id"))]

    user_ids, event_types = base.get_column("user_id"), base.get_column("event_type")
    start_us, end_us = pl.col("_start_us"), pl.col("_end_us")
    return sessions.select(
        (pl.lit(user_ids).gather(pl.col("_first_row")) + "@" + start_us.cast(pl.String)).alias(
            "session_id"
        ),
        pl.lit(user_ids).gather(pl.col("_first_row")).alias("user_id"),
        start_us.cast(UTC_TS).alias("session_start"),
        end_us.cast(UTC_TS).alias("session_end"),
        start_us.cast(UTC_TS).dt.date().alias("session_date"),
        ((end_us - start_us) / 1_000_000).alias("duration_seconds"),
        (pl.col("_count_through") - pl.col("_count_before")).alias("event_count"),
        pl.lit(event_types).gather(pl.col("_first_row")).alias("first_event_type"),
        pl.lit(event_types).gather(pl.col("_last_row")).alias("last_event_type"),
        (pl.col("_purchases_through") > pl.col("_purchases_before")).alias("converted"),
        pl.col("order_ids").fill_null(pl.lit([], pl.List(pl.Int64))),
    ).cast(SESSIONS_SCHEMA)  # type: ignore[arg-type]


def _by_user_id(sessions: pl.DataFrame, user_ids: pl.Series) -> pl.Series:
    """Permutation putting sessions (grouped by user code, by start within a user) in
    (user_id, session_start) order, sorting only the distinct users' strings, not every
    session's: each user's run of sessions moves as a block."""
    code = sessions.get_column("user")
    new_user = (code != code.shift(1)).fill_null(True)
    run = new_user.cum_sum().cast(pl.Int64) - 1  # index of the user's run, per session
    run_first_row = sessions.get_column("_first_row").filter(new_user)
    lex = user_ids.gather(run_first_row).arg_sort()  # runs in user_id order
    ranks = pl.int_range(lex.len(), eager=True, dtype=pl.Int64)
    rank = ranks.clone().scatter(lex, ranks)  # rank[lex[i]] = i
    position = pl.int_range(sessions.height, eager=True, dtype=pl.Int64)
    return (rank.gather(run) * sessions.height + position).arg_sort()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def sessions_for_day(
    events: pl.DataFrame | pl.LazyFrame, day: date, gap: timedelta = DEFAULT_SESSION_GAP
) -> pl.DataFrame:
    """The sessions whose ``session_start`` falls on ``day`` (UTC), each complete.

    Equal to ``sessionize(events, gap)`` filtered on ``session_date == day``. Pass the events
    of day-1, day and day+1 (see the module docstring for the midnight limit). Events older
    than ``day 00:00 - gap`` cannot influence a session starting on ``day`` and are skipped
    before the sort (a session running into ``day`` from the day before is still recognised:
    its last event before midnight is within ``gap`` of midnight).
    """
    lower = _day_start(day) - gap
    lf = _event_frame(events).filter(pl.col("event_timestamp") >= lower)
    return sessionize(lf, gap).filter(pl.col("session_date") == day)


def possibly_truncated(
    sessions: pl.DataFrame, day: date, gap: timedelta = DEFAULT_SESSION_GAP
) -> pl.DataFrame:
    """Sessions of ``day`` that may continue past the end of the D-1..D+1 window.

    Those whose ``session_end`` lies within ``gap`` of the end of ``day + 1`` (the module
    docstring explains the limit). Normally empty; report its height as metadata.
    """
    window_end = _day_start(day) + timedelta(days=2)
    return sessions.filter(
        (pl.col("session_date") == day) & (pl.col("session_end") >= window_end - gap)
    )
