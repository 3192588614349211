"""Cleaning of raw clickstream events (SPEC §2 ``validated/rejected_events``, §5).

Raw events arrive as strings (``user_id``, ``event_timestamp``, ``event_type``,
``order_id`` — nullable) plus the lineage columns ``_source``, ``_extracted_at`` and
``_run_id``. :func:`clean_events` splits them into

* ``valid`` (:data:`VALID_EVENTS_SCHEMA`): user_id trimmed; event_timestamp as
  Datetime(us, UTC), parsed by :func:`~orders_platform.transforms.parsing.parse_utc_timestamp`
  like every timestamp of the platform (ISO-8601 with ``T`` or a space, seconds required,
  optional fraction, offset ``Z``/``±HH:MM``/``±HHMM``/``±HH`` or none = UTC; an already
  typed Datetime column is converted to UTC, naive taken as UTC); event_type
  lower-cased and trimmed, a missing one becomes ``"unknown"``; order_id as Int64 parsed
  from messy strings (``" 123 "``, ``"#123"``, ``"1,234"``, ``"123.0"``), null when absent
  or not a positive integer (an unusable order_id never rejects the event — the event
  itself is still a fact about the user's session);
* ``rejected`` (:data:`REJECTED_EVENTS_SCHEMA`): the raw values as strings, exactly as
  received, with the first matching ``reason`` of :data:`EVENT_REJECT_REASONS` and a
  human-readable ``detail``;
* ``rejected_by_reason``: count per reason, every reason present (0 when none), in order.

Null spellings (``""``, ``NULL``, ``N/A``, ``n/a``, ``-``, ``none``; compared trimmed and
lower-cased, see :data:`~orders_platform.transforms.schema.NULL_SPELLINGS`) count as null.

Exact duplicates are NOT removed here: every raw row is either valid or rejected, so
``rows(raw) == rows(valid) + rows(rejected)`` always holds. Duplicates are collapsed, and
counted once, by :func:`orders_platform.transforms.sessions.sessionize`
(see :func:`orders_platform.transforms.sessions.count_exact_duplicates`).
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from orders_platform.transforms.malformed import split_malformed
from orders_platform.transforms.parsing import (
    null_if_blank,
    parse_positive_int,
    parse_utc_timestamp,
    to_utc,
)
from orders_platform.transforms.schema import LINEAGE_SCHEMA, UTC_TS

EVENT_SOURCE_COLUMNS: tuple[str, ...] = ("user_id", "event_timestamp", "event_type", "order_id")

# First matching reason wins, in this order.
EVENT_REJECT_REASONS: tuple[str, ...] = (
    "missing_user_id",
    "missing_event_timestamp",
    "unparseable_event_timestamp",
)

UNKNOWN_EVENT_TYPE = "unknown"

RAW_EVENTS_SCHEMA: dict[str, pl.DataType] = {c: pl.String() for c in EVENT_SOURCE_COLUMNS}

VALID_EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "event_timestamp": UTC_TS,
    "event_type": pl.String(),
    "order_id": pl.Int64(),
    **LINEAGE_SCHEMA,
}

REJECTED_EVENTS_SCHEMA: dict[str, pl.DataType] = {
    **RAW_EVENTS_SCHEMA,
    "reason": pl.String(),
    "detail": pl.String(),
    **LINEAGE_SCHEMA,
}


class EventsCleanResult(NamedTuple):
    valid: pl.DataFrame
    rejected: pl.DataFrame
    rejected_by_reason: dict[str, int]


def _parse_order_id(expr: pl.Expr) -> pl.Expr:
    """Positive Int64 from strings like ``" 123 "``, ``"#123"``, ``"1,234"``, ``"123.0"``."""
    text = null_if_blank(expr).str.replace_all(r"[,_\s]", "").str.strip_prefix("#")
    return parse_positive_int(text, trimmed=True)


def _lineage_exprs(schema: pl.Schema) -> list[pl.Expr]:
    exprs = []
    for name, dtype in LINEAGE_SCHEMA.items():
        if name not in schema:
            exprs.append(pl.lit(None, dtype).alias(name))
        elif dtype == UTC_TS:
            exprs.append(to_utc(pl.col(name), schema[name]).alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype).alias(name))
    return exprs


def _quoted(raw: pl.Expr) -> pl.Expr:
    return pl.lit("'") + raw + pl.lit("'")


def clean_events(raw: pl.DataFrame | pl.LazyFrame) -> EventsCleanResult:
    """Split raw events into valid (typed, normalised) and rejected (raw strings + reason).

    Vectorised, one pass over the data. Missing source columns count as all-null (a frame
    without ``user_id`` rejects every row as ``missing_user_id``); missing lineage columns
    are added as nulls so both outputs always have the documented schemas.
    """
    lf, malformed = split_malformed(raw, EVENT_SOURCE_COLUMNS)
    schema = lf.collect_schema()
    missing = [c for c in EVENT_SOURCE_COLUMNS if c not in schema]
    if missing:
        lf = lf.with_columns(pl.lit(None, pl.String).alias(c) for c in missing)
        schema = lf.collect_schema()

    ts_dtype = schema["event_timestamp"]
    if isinstance(ts_dtype, pl.Datetime | pl.Date):
        parsed_ts = to_utc(pl.col("event_timestamp"), ts_dtype)
        ts_present = pl.col("event_timestamp").is_not_null()
    else:
        ts_text = null_if_blank(pl.col("event_timestamp").cast(pl.String))
        parsed_ts = parse_utc_timestamp(ts_text, trimmed=True)
        ts_present = ts_text.is_not_null()

    reason = (
        pl.when(pl.col("_user").is_null())
        .then(pl.lit(EVENT_REJECT_REASONS[0]))
        .when(~pl.col("_ts_present"))
        .then(pl.lit(EVENT_REJECT_REASONS[1]))
        .when(pl.col("_ts").is_null())
        .then(pl.lit(EVENT_REJECT_REASONS[2]))
        .otherwise(pl.lit(None, pl.String))
    )

    def _missing_detail(col: str) -> pl.Expr:
        return (
            pl.when(pl.col(col).is_null())
            .then(pl.lit(f"{col} is null"))
            .otherwise(pl.lit(f"{col} is blank or a null spelling: ") + _quoted(pl.col(col)))
        )

    detail = (
        pl.when(pl.col("reason") == EVENT_REJECT_REASONS[0])
        .then(_missing_detail("user_id"))
        .when(pl.col("reason") == EVENT_REJECT_REASONS[1])
        .then(_missing_detail("event_timestamp"))
        .otherwise(
            pl.lit("event_timestamp is not an ISO-8601 date-time: ")
            + _quoted(pl.col("event_timestamp"))
        )
    )

    annotated = (
        lf.select(
            *(pl.col(c).cast(pl.String) for c in EVENT_SOURCE_COLUMNS),
            *_lineage_exprs(schema),
            _user=null_if_blank(pl.col("user_id").cast(pl.String)),
            _ts=parsed_ts,
            _ts_present=ts_present,
            _type=null_if_blank(pl.col("event_type").cast(pl.String))
            .str.to_lowercase()
            .fill_null(UNKNOWN_EVENT_TYPE),
            _order=_parse_order_id(pl.col("order_id").cast(pl.String)),
        )
        .with_columns(reason=reason)
        .collect()
    )

    lineage = list(LINEAGE_SCHEMA)
    valid = annotated.filter(pl.col("reason").is_null()).select(
        pl.col("_user").alias("user_id"),
        pl.col("_ts").alias("event_timestamp"),
        pl.col("_type").alias("event_type"),
        pl.col("_order").alias("order_id"),
        *lineage,
    )
    rejected = annotated.filter(pl.col("reason").is_not_null()).select(
        *EVENT_SOURCE_COLUMNS, "reason", detail.alias("detail"), *lineage
    )
    counts = rejected.group_by("reason").len()
    by_reason = dict.fromkeys(EVENT_REJECT_REASONS, 0)
    by_reason.update(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))
    if malformed.height:
        by_reason.update(dict(malformed.group_by("reason").len().iter_rows()))
        rejected = pl.concat(
            [malformed.cast(REJECTED_EVENTS_SCHEMA), rejected.cast(REJECTED_EVENTS_SCHEMA)]
        )
    return EventsCleanResult(
        valid=valid.cast(VALID_EVENTS_SCHEMA),  # type: ignore[arg-type]
        rejected=rejected.cast(REJECTED_EVENTS_SCHEMA),  # type: ignore[arg-type]
        rejected_by_reason=by_reason,
    )
