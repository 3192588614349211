"""The PostgreSQL source (orders_platform.sources.postgres) against the real server at
127.0.0.1:5432 (SPEC §7): a fresh database per test session, dropped at the end.

The test server is a primary (pg_is_in_recovery() = false), so every test that reads
passes allow_primary=True; `test_primary_is_refused_by_default` checks the refusal.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import polars as pl
import psycopg2
import psycopg2.errors
import pytest
from psycopg2.extras import execute_values

from orders_platform.sources.base import RawSource
from orders_platform.sources.postgres import PostgresSource, PostgresSourceError, sub_windows
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

DAY = date(2026, 3, 17)
D0 = datetime(2026, 3, 17, tzinfo=UTC)
D1 = D0 + timedelta(days=1)
OVERLAP = timedelta(minutes=5)
IST = timezone(timedelta(hours=5, minutes=30))
HOST, PORT = "127.0.0.1", 5432
COLS = ORDER_SOURCE_COLUMNS

ORDERS_DDL = """
CREATE TABLE public.orders (
    change_id           bigserial PRIMARY KEY,
    order_id            bigint,
    customer_id         text,
    store_id            bigint,
    restaurant_id       bigint,
    order_amount        text,
    delivery_fee        numeric(12, 2),
    discount_amount     numeric(12, 2),
    status              text,
    payment_method      text,
    payment_status      text,
    created_at          timestamptz,
    updated_at          timestamptz,
    delivered_at        timestamptz,
    cancelled_at        timestamptz,
    cancellation_reason text,
    promo_code          text,
    notes               text
);
CREATE INDEX orders_updated_at ON public.orders (updated_at);
CREATE TABLE public.user_events (
    event_id        bigserial PRIMARY KEY,
    user_id         text,
    event_timestamp timestamptz,
    event_type      text,
    order_id        bigint
);
"""

# messy values as an upstream really stores them
AMOUNTS = ("1,234.50", "₹3,80.00", "380.00", " 99.9 ", "abc", "N/A", "-12.50", "0", "")
STATUSES = (" DELIVERED ", "delivered", "Cancelled", "placed", "test_order", "shipped", "-")
METHODS = ("UPI", "card", " Wallet ", "paypal", "NULL", "cod")
NOTES = ('ring twice, "back door"', "extra spicy\nno onions", "contest winner", "n/a", "नमस्ते")


def _admin_dsn() -> str:
    errors = []
    for user in ("postgres", "root"):
        dsn = f"host={HOST} port={PORT} user={user} dbname=postgres connect_timeout=5"
        try:
            psycopg2.connect(dsn).close()
            return dsn
        except psycopg2.Error as exc:
            errors.append(f"{user}: {str(exc).strip()}")
    pytest.fail(f"PostgreSQL at {HOST}:{PORT} is required (SPEC §7): {'; '.join(errors)}")


def _order_rows() -> list[tuple]:
    """~2 000 order change rows over D-1 … D+1 plus rows exactly on every boundary, exact
    duplicates, same (order_id, updated_at) with different content, and a null updated_at."""
    rng = random.Random(20260317)
    start = D0 - timedelta(days=1)
    rows = []

    def row(order_id: int, updated: datetime | None, **over) -> tuple:
        created = (updated or D0) - timedelta(minutes=rng.randint(0, 600))
        values = {
            "order_id": order_id,
            "customer_id": rng.choice(("42", " 0042 ", "abc", "", None, "7")),
            "store_id": rng.randint(1, 50),
            "restaurant_id": rng.choice((None, rng.randint(1, 500))),
            "order_amount": rng.choice(AMOUNTS),
            "delivery_fee": rng.choice((Decimal("0.10"), Decimal("40.00"), None)),
            "discount_amount": rng.choice((Decimal("0"), Decimal("12.35"), None)),
            "status": rng.choice(STATUSES),
            "payment_method": rng.choice(METHODS),
            "payment_status": rng.choice(("PAID", "pending", None)),
            "created_at": created,
            "updated_at": updated,
            "delivered_at": rng.choice((None, updated)),
            "cancelled_at": None,
            "cancellation_reason": rng.choice((None, "payment_failed", "Changed_Mind")),
            "promo_code": rng.choice((None, "SAVE50", "")),
            "notes": rng.choice(NOTES),
        }
        values.update(over)
        return tuple(values[c] for c in COLS)

    for i in range(1_950):
        micro = rng.choice((0, rng.randint(0, 999_999)))
        updated = start + timedelta(seconds=rng.randint(0, 3 * 86_400 - 1), microseconds=micro)
        if i % 7 == 0:  # stored from an IST client: same instant, another offset
            updated = updated.astimezone(IST)
        rows.append(row(100_000 + i, updated))
    eps = timedelta(microseconds=1)
    boundaries = [
        D0 - OVERLAP - eps,  # D-1 only
        D0 - OVERLAP,  # D-1 and D's overlap (inclusive start)
        D0 - eps,  # D-1 and D's overlap
        D0,  # D only (exclusive end of D-1)
        D0 + timedelta(hours=1),  # a sub-window boundary: read once
        D0 + timedelta(hours=1) - eps,
        D1 - OVERLAP - eps,  # D only
        D1 - OVERLAP,  # D and D+1's overlap
        D1 - eps,  # D and D+1's overlap
        D1,  # D+1 only
    ]
    for j, ts in enumerate(boundaries):
        rows.append(row(900_000 + j, ts, notes=f"boundary {j}"))
    exact = row(910_000, D0 + timedelta(hours=3, minutes=17), notes="exact duplicate")
    rows += [exact, exact, exact]  # 2 copies too many
    rows.append(row(920_000, D0 + timedelta(hours=5), status="placed", notes="same key A"))
    rows.append(row(920_000, D0 + timedelta(hours=5), status="delivered", notes="same key B"))
    rows.append(row(930_000, None, notes="never in a window"))
    rows.append(
        row(
            940_000,
            datetime(2026, 3, 17, 5, 30, tzinfo=IST),  # = D0 00:00Z
            customer_id=" 0042 ",
            order_amount="₹3,80.00",
            delivery_fee=Decimal("0.10"),
            discount_amount=None,
            status=" DELIVERED ",
            payment_method="N/A",
            notes='line one\nline "two", with comma',
            created_at=datetime(2026, 3, 16, 23, 40, 5, 120000, tzinfo=UTC),
        )
    )
    return rows


EVENTS = [
    ("u1", D0 - timedelta(microseconds=1), "logout", None),  # D-1 only: no overlap for events
    ("u1", D0, "login", None),
    ("u1", D0 + timedelta(minutes=3), "add_to_cart", None),
    ("u1", D0 + timedelta(minutes=3), "add_to_cart", None),  # exact duplicate: kept
    ("u2", D0 + timedelta(hours=12), "purchase", 940_000),
    (" ", D0 + timedelta(hours=13), "view_page", None),
    ("u3", D1 - timedelta(microseconds=1), "logout", None),
    ("u3", D1, "login", None),  # D+1
]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[dict]:
    """A fresh database with public.orders and public.user_events, dropped at the end."""
    admin = _admin_dsn()
    name = f"orders_src_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    user = psycopg2.extensions.parse_dsn(admin)["user"]
    dsn = f"host={HOST} port={PORT} user={user} dbname={name}"
    rows = _order_rows()
    try:
        with psycopg2.connect(dsn) as data, data.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute(ORDERS_DDL)
            execute_values(
                cur,
                f"INSERT INTO public.orders ({', '.join(COLS)}) VALUES %s",
                rows,
                page_size=1_000,
            )
            execute_values(
                cur,
                "INSERT INTO public.user_events (user_id, event_timestamp, event_type, order_id) "
                "VALUES %s",
                EVENTS,
            )
            # a view that takes ~1 s per statement: longer than a 0.5 s statement_timeout
            cur.execute(
                "CREATE VIEW public.slow_orders AS SELECT o.* FROM public.orders o "
                "CROSS JOIN LATERAL (SELECT pg_sleep(1.0)) AS s"
            )
            # the same rows with a naive `timestamp` updated_at (meaning UTC)
            cur.execute(
                "CREATE TABLE public.orders_naive AS SELECT order_id, customer_id, "
                "updated_at AT TIME ZONE 'UTC' AS updated_at FROM public.orders"
            )
            cur.execute("CREATE TABLE public.not_windowable (order_id bigint, updated_at text)")
        data.close()
        yield {"dsn": dsn, "rows": rows, "name": name}
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def _source(pg_database: dict, **kwargs) -> PostgresSource:
    return PostgresSource(dsn=pg_database["dsn"], allow_primary=True, **kwargs)


def _extract(source: PostgresSource, day: date = DAY, kind: str = "orders") -> pl.DataFrame:
    frames = list(source.extract_orders(day) if kind == "orders" else source.extract_events(day))
    cols = COLS if kind == "orders" else EVENT_SOURCE_COLUMNS
    for f in frames:
        assert f.schema == pl.Schema({c: pl.String for c in cols})
        assert f.height <= source.batch_rows
    return pl.concat(frames)


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _identity(df: pl.DataFrame) -> Counter:
    """Rows as (order_id, updated_at instant, notes, status) multiset."""
    return Counter(
        (int(r["order_id"]), _ts(r["updated_at"]), r["notes"], r["status"])
        for r in df.iter_rows(named=True)
    )


def _expected(rows: list[tuple], lo: datetime, hi: datetime) -> Counter:
    """What a [lo, hi) window must deliver: exact duplicates once."""
    i_id, i_up, i_notes, i_status = (
        COLS.index(c) for c in ("order_id", "updated_at", "notes", "status")
    )
    distinct = {r for r in rows if r[i_up] is not None and lo <= r[i_up] < hi}
    return Counter((r[i_id], r[i_up], r[i_notes], r[i_status]) for r in distinct)


def test_day_window_with_overlap_in_sub_windows_and_batches(pg_database: dict) -> None:
    source = _source(pg_database, batch_rows=97)
    assert isinstance(source, RawSource) and source.name == "postgres"
    df = _extract(source)
    rows = pg_database["rows"]
    assert _identity(df) == _expected(rows, D0 - OVERLAP, D1)

    stats = source.last_extract_stats()
    json.dumps(stats)
    in_overlap = sum(_expected(rows, D0 - OVERLAP, D0).values())
    assert in_overlap >= 2  # at least the inclusive start and D0 - 1 µs
    assert stats["rows_extracted"] == df.height
    assert stats["rows_in_overlap"] == in_overlap
    assert stats["duplicate_rows_removed"] == 2
    assert stats["sub_windows"] == 25  # the 5-minute overlap + 24 hours
    assert (
        len(stats["rows_per_sub_window"]) == 25 and sum(stats["rows_per_sub_window"]) == df.height
    )
    assert stats["statements"] == stats["sub_windows"]  # one COPY per sub-window
    assert stats["batches"] >= df.height // 97
    assert stats["server_role"] == "primary"
    assert stats["window_start"] == (D0 - OVERLAP).isoformat()
    assert stats["window_end"] == D1.isoformat()
    assert stats["missing_columns"] == []
    # rows sharing (order_id, updated_at) but differing are both delivered; nulls never are
    assert sorted(df.filter(pl.col("order_id") == "920000").get_column("notes")) == [
        "same key A",
        "same key B",
    ]
    assert df.filter(pl.col("order_id") == "930000").height == 0


def test_adjacent_days_share_exactly_the_overlap(pg_database: dict) -> None:
    source = _source(pg_database)
    day = _identity(_extract(source, DAY))
    next_day = _identity(_extract(source, DAY + timedelta(days=1)))
    shared = day & next_day
    assert shared == _expected(pg_database["rows"], D1 - OVERLAP, D1)
    assert source.last_extract_stats()["rows_in_overlap"] == sum(shared.values())
    assert {k[2] for k in shared} >= {"boundary 7", "boundary 8"}
    assert not any(k[2] in ("boundary 6", "boundary 9") for k in shared)
    previous = _identity(_extract(source, DAY - timedelta(days=1)))
    assert {k[2] for k in previous & day if k[2].startswith("boundary")} == {
        "boundary 1",
        "boundary 2",
    }
    boundary_d0 = [k for k in day if k[2] == "boundary 3"]
    assert boundary_d0 and not any(k[2] == "boundary 3" for k in previous)


def test_values_arrive_as_exact_text(pg_database: dict) -> None:
    df = _extract(_source(pg_database))
    row = df.filter(pl.col("order_id") == "940000").row(0, named=True)
    assert row == {
        **row,
        "customer_id": " 0042 ",
        "order_amount": "₹3,80.00",
        "delivery_fee": "0.10",
        "discount_amount": None,
        "status": " DELIVERED ",
        "payment_method": "N/A",
        "updated_at": "2026-03-17 00:00:00+00",  # stored as 05:30+05:30, rendered in UTC
        "created_at": "2026-03-16 23:40:05.12+00",
        "notes": 'line one\nline "two", with comma',
    }
    assert df.filter(pl.col("order_id") == "900004").item(0, "updated_at") == (
        "2026-03-17 01:00:00+00"
    )
    assert "2026-03-17 00:59:59.999999+00" in df.get_column("updated_at").to_list()
    assert set(df.get_column("store_id").drop_nulls().str.to_integer()) <= set(range(1, 51))


def test_sub_window_and_batch_sizes_do_not_change_the_result(pg_database: dict) -> None:
    reference = _extract(_source(pg_database, sub_window_minutes=1440, batch_rows=50_000))
    source = _source(pg_database, sub_window_minutes=7, batch_rows=5)
    odd = _extract(source)
    assert _identity(odd) == _identity(reference)
    assert odd.sort(COLS, nulls_last=True).equals(reference.sort(COLS, nulls_last=True))
    stats = source.last_extract_stats()
    assert stats["sub_windows"] == 1 + len(sub_windows(D0, D1, 7)) == 1 + 206  # 1440/7 → 206
    assert stats["duplicate_rows_removed"] == 2


def test_session_is_read_only(pg_database: dict) -> None:
    source = _source(pg_database, statement_timeout_seconds=42)
    with source.session() as conn, conn.cursor() as cur:
        cur.execute("SHOW transaction_read_only")
        assert cur.fetchone()[0] == "on"
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone()[0] == "42s"
        cur.execute("SHOW TimeZone")
        assert cur.fetchone()[0] == "UTC"
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cur.execute("DELETE FROM public.orders")
        conn.rollback()
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cur.execute("CREATE TABLE public.sneaky (x int)")
        conn.rollback()
    with psycopg2.connect(pg_database["dsn"]) as check, check.cursor() as cur:
        cur.execute("SELECT count(*) FROM public.orders")
        assert cur.fetchone()[0] == len(pg_database["rows"])
    check.close()


def test_statement_timeout_fails_clearly(pg_database: dict) -> None:
    source = _source(pg_database, orders_table="public.slow_orders", statement_timeout_seconds=0.5)
    with pytest.raises(
        PostgresSourceError
    ) as info:  # the view sleeps 1 s per row: no timeout, no error
        _extract(source)
    message = str(info.value)
    assert "statement_timeout of 0.5 s" in message
    assert "ORDERS_PG_STATEMENT_TIMEOUT_SECONDS" in message
    assert "ORDERS_PG_SUB_WINDOW_MINUTES" in message
    assert "public.slow_orders" in message and "2026-03-16T23:55:00+00:00" in message


def test_primary_is_refused_by_default(pg_database: dict) -> None:
    source = PostgresSource(dsn=pg_database["dsn"])
    assert source.allow_primary is False
    with pytest.raises(PostgresSourceError, match="read replica") as info:
        next(iter(source.extract_orders(DAY)))
    assert "ORDERS_PG_ALLOW_PRIMARY=true" in str(info.value)
    assert "pg_is_in_recovery" in str(info.value)
    with pytest.raises(PostgresSourceError, match="read replica"):
        next(iter(source.extract_events(DAY)))


@pytest.mark.parametrize(
    "dsn",
    [
        "host=127.0.0.1 port=1 user=orders password=S3cr3t-pw_123 dbname=x connect_timeout=2",
        "postgresql://orders:S3cr3t-pw_123@127.0.0.1:1/x?connect_timeout=2",
        "host=127.0.0.1 port=5432 user=postgres password=S3cr3t-pw_123 dbname=no_such_db_x",
        "host=127.0.0.1 password='S3cr3t-pw_123' oops",  # not even a valid DSN
        "postgresql://orders:S3cr3t-pw_123@127.0.0.1:5432/x?bogus_option=1",
    ],
)
def test_errors_never_show_the_password(dsn: str) -> None:
    source = PostgresSource(dsn=dsn, allow_primary=True, connect_timeout_seconds=2)
    with pytest.raises(PostgresSourceError) as info:
        _extract(source)
    exc = info.value
    assert "S3cr3t-pw_123" not in str(exc) and "S3cr3t-pw_123" not in repr(exc)
    assert exc.__cause__ is None and exc.__suppress_context__
    assert "S3cr3t-pw_123" not in json.dumps(source.last_extract_stats())
    assert "S3cr3t-pw_123" not in repr(source) + str(source)
    if "oops" not in dsn and "bogus" not in dsn:
        assert "127.0.0.1" in str(exc)  # names the host (and database) it tried


def test_table_names_are_validated_before_connecting() -> None:
    source = PostgresSource(
        dsn="host=127.0.0.1 port=1", allow_primary=True, orders_table='orders"; DROP TABLE x; --'
    )
    with pytest.raises(ValueError, match="ORDERS_PG_ORDERS_TABLE"):
        _extract(source)
    with pytest.raises(ValueError, match="ORDERS_PG_EVENTS_TABLE"):
        _extract(PostgresSource(dsn="x", events_table="a.b.c"), kind="events")


def test_missing_table_and_unusable_window_column(pg_database: dict) -> None:
    with pytest.raises(PostgresSourceError, match="public.nope does not exist"):
        _extract(_source(pg_database, orders_table="public.nope"))
    with pytest.raises(PostgresSourceError, match="updated_at must be a timestamptz"):
        _extract(_source(pg_database, orders_table="public.not_windowable"))


def test_naive_timestamp_window_is_utc_and_missing_columns_are_null(pg_database: dict) -> None:
    source = _source(pg_database, orders_table="public.orders_naive")
    df = _extract(source)
    full = _extract(_source(pg_database))
    assert set(df.get_column("order_id")) == set(full.get_column("order_id"))
    assert df.get_column("status").null_count() == df.height
    assert "2026-03-17 00:00:00" in df.get_column("updated_at").to_list()
    assert set(source.last_extract_stats()["missing_columns"]) == set(COLS) - {
        "order_id",
        "customer_id",
        "updated_at",
    }


def test_events_day_without_overlap(pg_database: dict) -> None:
    source = _source(pg_database)
    df = _extract(source, kind="events")
    assert df.rows() == [
        ("u1", "2026-03-17 00:00:00+00", "login", None),
        ("u1", "2026-03-17 00:03:00+00", "add_to_cart", None),
        ("u1", "2026-03-17 00:03:00+00", "add_to_cart", None),
        ("u2", "2026-03-17 12:00:00+00", "purchase", "940000"),
        (" ", "2026-03-17 13:00:00+00", "view_page", None),
        ("u3", "2026-03-17 23:59:59.999999+00", "logout", None),
    ]
    stats = source.last_extract_stats()
    assert stats["rows_extracted"] == 6 and stats["rows_in_overlap"] == 0
    assert stats["sub_windows"] == 24 and stats["window_column"] == "event_timestamp"
    assert stats["table"] == "public.user_events"


def test_abandoned_extraction_closes_its_connection(pg_database: dict) -> None:
    source = _source(pg_database, batch_rows=10)
    batches = source.extract_orders(DAY)
    assert next(batches).height > 0
    batches.close()
    with psycopg2.connect(pg_database["dsn"]) as check, check.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND application_name = 'orders_platform'",
            (pg_database["name"],),
        )
        assert cur.fetchone()[0] == 0
    check.close()


@pytest.mark.parametrize(
    ("knob", "value", "variable"),
    [
        ("sub_window_minutes", 0, "ORDERS_PG_SUB_WINDOW_MINUTES"),
        ("overlap_minutes", -1, "ORDERS_PG_OVERLAP_MINUTES"),
        ("statement_timeout_seconds", 0, "ORDERS_PG_STATEMENT_TIMEOUT_SECONDS"),
        ("batch_rows", 0, "ORDERS_PG_BATCH_ROWS"),
    ],
)
def test_invalid_knobs_name_the_setting(knob: str, value: float, variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        _extract(PostgresSource(dsn="host=127.0.0.1 port=1", **{knob: value}))
