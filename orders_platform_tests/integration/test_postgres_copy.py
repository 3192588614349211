"""What reading through ``COPY … TO STDOUT (FORMAT csv)`` must not change, against the real
server at 127.0.0.1:5432 (SPEC §7; a fresh database per module, dropped at the end).

The oracle is a plain ``SELECT col::text`` over the same rows in a session configured like
the source's (UTC, ISO dates): every value must arrive byte for byte as that SELECT
returns it — numerics of any scale, timestamps, dates, char padding, and free text with
commas, quotes, newlines, carriage returns, tabs, backslashes, COPY's own markers (``\\N``,
``\\.``) and non-ASCII — with NULL kept apart from the empty string.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import polars as pl
import psycopg2
import pytest
from psycopg2.extras import execute_values

from orders_platform.sources.pg_copy import drop_adjacent_duplicates
from orders_platform.sources.postgres import PostgresSource
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

DAY = date(2026, 3, 17)
D0 = datetime(2026, 3, 17, tzinfo=UTC)
D1 = D0 + timedelta(days=1)
IST = timezone(timedelta(hours=5, minutes=30))
HOST, PORT = "127.0.0.1", 5432
COLS = ORDER_SOURCE_COLUMNS

# every shape CSV quoting, COPY's text markers or a careless parser could get wrong
TRICKY = (
    None,
    "",
    " ",
    "NULL",
    "\\N",
    "\\.",
    '"',
    '""',
    ",",
    "a,b",
    'say "hi", then leave',
    "line1\nline2",
    "cr\ronly",
    "crlf\r\nend",
    "\n",
    "tab\there",
    "back\\slash",
    "C:\\new\\table",
    "\\",
    'a\tb\\n"c,\r\n',
    "नमस्ते",
    "receipt 🧾 ok",
    "e\u0301",
    " leading and trailing ",
    "'single'",
)

TYPED_DDL = """
CREATE TABLE public.typed_orders (
    change_id           bigserial PRIMARY KEY,
    order_id            bigint,
    customer_id         text,
    store_id            integer,
    restaurant_id       numeric,
    order_amount        numeric(12, 2),
    delivery_fee        numeric(38, 10),
    discount_amount     text,
    status              varchar(40),
    payment_method      text,
    payment_status      char(6),
    created_at          timestamptz,
    updated_at          timestamptz,
    delivered_at        timestamp,
    cancelled_at        date,
    cancellation_reason text,
    promo_code          text,
    notes               text
);
CREATE INDEX ON public.typed_orders (updated_at);
CREATE TABLE public.bulk_orders (LIKE public.typed_orders INCLUDING DEFAULTS);
CREATE INDEX ON public.bulk_orders (updated_at);
CREATE TABLE public.tricky_events (
    user_id         text,
    event_timestamp timestamptz,
    event_type      text,
    order_id        text
);
"""


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


def _typed_rows() -> list[tuple]:
    """One row per tricky value (in customer_id, discount_amount, notes, promo_code), with
    numerics of every scale and timestamps in several offsets and precisions."""
    rows = []
    for i, text in enumerate(TRICKY):
        updated = D0 + timedelta(minutes=37 * i, microseconds=(i * 12_345) % 1_000_000)
        if i % 3 == 0:
            updated = updated.astimezone(IST)  # same instant, stored from another offset
        rows.append(
            (
                700_000 + i,
                text,
                i if i % 4 else None,
                Decimal("12345678901234567890.1234567890") if i % 2 else Decimal("-0.5"),
                Decimal("1234.50") if i % 5 else Decimal("0.00"),
                Decimal("0.1000000000"),
                TRICKY[(i + 7) % len(TRICKY)],
                " DELIVERED " if i % 2 else "test_order",
                "UPI",
                "PAID",
                datetime(2026, 3, 16, 23, 40, 5, 120_000, tzinfo=UTC),
                updated,
                datetime(2026, 3, 17, 1, 2, 3, 4),
                date(2026, 3, 17),
                TRICKY[(i + 3) % len(TRICKY)],
                TRICKY[(i + 11) % len(TRICKY)],
                text,
            )
        )
    return rows


def _bulk_rows(n: int, seed: int) -> list[tuple]:
    """`n` rows over the day (+ the overlap) with whole-second timestamps (many ties),
    tricky text everywhere, and runs of exact copies scattered through it."""
    rng = random.Random(seed)
    words = (*TRICKY, "alpha", "beta", "gamma", "delta")
    rows = []
    while len(rows) < n:
        second = rng.randint(-300, 86_399)
        updated = D0 + timedelta(seconds=second)
        if rng.random() < 0.2:
            updated += timedelta(microseconds=rng.randint(1, 999_999))
        row = (
            rng.randint(1, 5_000),
            rng.choice(words),
            rng.randint(1, 50),
            Decimal(rng.randint(0, 10**6)) / 100,
            Decimal(rng.randint(0, 10**6)) / 100,
            rng.choice((None, Decimal("40.00"), Decimal("0.1"))),
            rng.choice(words),
            rng.choice(("placed", " DELIVERED ", "", None)),
            rng.choice(("UPI", "card", None)),
            rng.choice(("PAID", "")),
            updated - timedelta(minutes=rng.randint(0, 90)),
            updated,
            None,
            None,
            rng.choice(words),
            rng.choice(words),
            rng.choice(words),
        )
        rows.append(row)
        if rng.random() < 0.02:
            rows.extend([row] * rng.randint(1, 3))  # exact copies, adjacent or not
    rng.shuffle(rows)
    return rows


EVENTS = [
    (text, D0 + timedelta(minutes=5 * i), TRICKY[(i + 5) % len(TRICKY)], TRICKY[(i + 9) % 25])
    for i, text in enumerate(TRICKY)
]


@pytest.fixture(scope="module")
def pg_copy_db() -> Iterator[dict]:
    admin = _admin_dsn()
    name = f"orders_copy_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    user = psycopg2.extensions.parse_dsn(admin)["user"]
    dsn = f"host={HOST} port={PORT} user={user} dbname={name}"
    columns = ", ".join(COLS)
    try:
        with psycopg2.connect(dsn) as data, data.cursor() as cur:
            cur.execute(TYPED_DDL)
            execute_values(
                cur, f"INSERT INTO public.typed_orders ({columns}) VALUES %s", _typed_rows()
            )
            execute_values(
                cur,
                f"INSERT INTO public.bulk_orders ({columns}) VALUES %s",
                _bulk_rows(12_000, seed=20260317),
                page_size=2_000,
            )
            execute_values(
                cur,
                "INSERT INTO public.tricky_events (user_id, event_timestamp, event_type, "
                "order_id) VALUES %s",
                EVENTS,
            )
            cur.execute("ANALYZE")
        data.close()
        yield {"dsn": dsn, "name": name}
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def _source(db: dict, table: str = "public.typed_orders", **kwargs) -> PostgresSource:
    return PostgresSource(dsn=db["dsn"], allow_primary=True, orders_table=table, **kwargs)


def _oracle(source: PostgresSource, table: str, columns, window: str, lo, hi) -> list[tuple]:
    """A plain SELECT of the same rows as text, through the source's own session settings."""
    select = ", ".join(f"{c}::text" for c in columns)
    with source.session() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT {select} FROM {table} WHERE {window} >= %s AND {window} < %s", (lo, hi)
        )
        return cur.fetchall()


def test_values_arrive_exactly_as_a_plain_select_renders_them(pg_copy_db: dict) -> None:
    source = _source(pg_copy_db, batch_rows=4)
    frames = list(source.extract_orders(DAY))
    assert len(frames) > 5 and all(0 < f.height <= 4 for f in frames)
    got = pl.concat(frames)
    expected = _oracle(
        source, "public.typed_orders", COLS, "updated_at", D0 - timedelta(minutes=5), D1
    )
    assert len(expected) == len(TRICKY) == got.height
    assert Counter(got.rows()) == Counter(expected)

    by_id = {r["order_id"]: r for r in got.iter_rows(named=True)}
    null_row, empty_row = by_id["700000"], by_id["700001"]
    assert null_row["customer_id"] is None and null_row["notes"] is None
    assert empty_row["customer_id"] == "" and empty_row["notes"] == ""
    assert by_id["700002"]["notes"] == " "
    assert by_id["700003"]["notes"] == "NULL" and by_id["700004"]["notes"] == "\\N"
    assert by_id["700005"]["notes"] == "\\."
    assert by_id["700013"]["notes"] == "crlf\r\nend"
    assert by_id["700019"]["notes"] == 'a\tb\\n"c,\r\n'
    assert by_id["700021"]["notes"] == "receipt 🧾 ok"
    assert by_id["700001"]["restaurant_id"] == "12345678901234567890.1234567890"
    assert by_id["700000"]["restaurant_id"] == "-0.5"
    assert by_id["700000"]["order_amount"] == "0.00"
    assert by_id["700001"]["order_amount"] == "1234.50"
    assert by_id["700001"]["delivery_fee"] == "0.1000000000"
    assert by_id["700001"]["payment_status"] == "PAID"  # char(6) padding dropped by ::text
    assert by_id["700000"]["updated_at"] == "2026-03-17 00:00:00+00"  # stored in IST
    assert by_id["700001"]["updated_at"] == "2026-03-17 00:37:00.012345+00"
    assert by_id["700001"]["created_at"] == "2026-03-16 23:40:05.12+00"
    assert by_id["700001"]["delivered_at"] == "2026-03-17 01:02:03.000004"
    assert by_id["700001"]["cancelled_at"] == "2026-03-17"
    assert by_id["700000"]["store_id"] is None and by_id["700001"]["store_id"] == "1"


def test_events_keep_exact_text_and_copies(pg_copy_db: dict) -> None:
    source = PostgresSource(
        dsn=pg_copy_db["dsn"], allow_primary=True, events_table="public.tricky_events"
    )
    got = pl.concat(list(source.extract_events(DAY)))
    expected = _oracle(
        source, "public.tricky_events", EVENT_SOURCE_COLUMNS, "event_timestamp", D0, D1
    )
    assert got.rows() == sorted(expected, key=lambda r: r[1])  # one row per timestamp
    users = got.get_column("user_id").to_list()
    assert users[0] is None and users[1] == "" and users[3] == "NULL"


def test_a_day_in_many_sub_windows_and_batches_equals_a_plain_select(pg_copy_db: dict) -> None:
    table = "public.bulk_orders"
    source = _source(pg_copy_db, table, sub_window_minutes=45, batch_rows=97)
    frames = list(source.extract_orders(DAY))
    got = pl.concat(frames)
    stats = source.last_extract_stats()

    expected = _oracle(source, table, COLS, "updated_at", D0 - timedelta(minutes=5), D1)
    distinct = Counter(set(expected))
    assert Counter(got.rows()) == distinct  # every distinct row once, nothing else
    assert stats["duplicate_rows_removed"] == len(expected) - len(distinct) > 50
    assert stats["rows_extracted"] == got.height
    assert stats["sub_windows"] == stats["statements"] == 1 + 32  # overlap + 1440 / 45
    assert all(f.height <= 97 for f in frames)
    assert stats["batches"] == len(frames) > 2 * stats["sub_windows"]
    overlap = [r for r in distinct if r[COLS.index("updated_at")] < "2026-03-17 00:00:00"]
    assert stats["rows_in_overlap"] == len(overlap) > 0

    # ordered by the instant, then every value (bytes), nulls last: ties are deterministic
    # (UTC text of one precision family sorts like the instant)
    assert got.equals(got.sort(COLS[COLS.index("updated_at")], *COLS, nulls_last=True))
    again = pl.concat(list(_source(pg_copy_db, table, batch_rows=5_000).extract_orders(DAY)))
    assert again.equals(got)


def test_duplicates_across_a_batch_boundary_are_collapsed() -> None:
    row = ("1", "a", None, "")
    frame = pl.DataFrame([row, row, ("1", "a", None, "x")], schema=list("wxyz"), orient="row")
    kept, removed = drop_adjacent_duplicates(frame, previous_row=row)
    assert removed == 2 and kept.rows() == [("1", "a", None, "x")]
    # null and the empty string are different values: not copies of each other
    other = pl.DataFrame([("1", "a", "", "")], schema=list("wxyz"), orient="row")
    kept, removed = drop_adjacent_duplicates(other, previous_row=row)
    assert removed == 0 and kept.rows() == [("1", "a", "", "")]


def test_abandoning_a_sub_window_mid_copy_stops_the_reader(pg_copy_db: dict) -> None:
    source = _source(pg_copy_db, "public.bulk_orders", sub_window_minutes=1440, batch_rows=50)
    batches = source.extract_orders(DAY)
    assert 0 < next(batches).height <= 50  # the overlap's sub-window
    assert 0 < next(batches).height <= 50 and 0 < next(batches).height <= 50  # the day's
    assert source.last_extract_stats()["sub_windows"] == 1  # the day's COPY is running
    batches.close()
    assert not [t for t in threading.enumerate() if t.name == "orders-platform-pg-copy"]
    # The server ends a backend asynchronously after its client hung up: poll for it.
    with psycopg2.connect(pg_copy_db["dsn"]) as check, check.cursor() as cur:
        for _ in range(100):
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND application_name = 'orders_platform'",
                (pg_copy_db["name"],),
            )
            if (sessions := cur.fetchone()[0]) == 0:
                break
            time.sleep(0.1)
        assert sessions == 0
    check.close()


def test_batch_rows_setting_reaches_the_source(
    pg_copy_db: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orders_platform.resources import build_source
    from orders_platform.settings import SettingsError, load_settings

    monkeypatch.setenv("ORDERS_SOURCE", "postgres")
    monkeypatch.setenv("ORDERS_PG_DSN", pg_copy_db["dsn"])
    monkeypatch.setenv("ORDERS_PG_ALLOW_PRIMARY", "true")
    monkeypatch.setenv("ORDERS_PG_ORDERS_TABLE", "public.typed_orders")
    monkeypatch.setenv("ORDERS_PG_BATCH_ROWS", "3")
    monkeypatch.setenv("ORDERS_PG_SUB_WINDOW_MINUTES", "1440")
    source = build_source(load_settings()).process_config_and_initialize()  # resolves EnvVar
    frames = list(source.extract_orders(DAY))
    assert [f.height for f in frames] == [3] * 8 + [1]  # 25 rows
    monkeypatch.setenv("ORDERS_PG_BATCH_ROWS", "0")
    with pytest.raises(SettingsError, match="ORDERS_PG_BATCH_ROWS"):
        load_settings()


def test_bytes_that_are_not_utf8_fail_clearly_instead_of_being_altered() -> None:
    """A SQL_ASCII database stores any bytes and converts nothing: a value that is not
    UTF-8 cannot be delivered as exact text (the session asks for UTF-8), so the extraction
    fails naming the table and the sub-window."""
    from orders_platform.sources.postgres import PostgresSourceError

    admin = _admin_dsn()
    name = f"orders_copy_ascii_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' TEMPLATE template0")
    user = psycopg2.extensions.parse_dsn(admin)["user"]
    dsn = f"host={HOST} port={PORT} user={user} dbname={name}"
    try:
        with psycopg2.connect(dsn) as data, data.cursor() as cur:
            cur.execute("CREATE TABLE public.orders (order_id text, updated_at timestamptz)")
            cur.execute(
                "INSERT INTO public.orders VALUES (convert_from('\\x41ff'::bytea, 'SQL_ASCII'), "
                "'2026-03-17 10:00+00')"
            )
        data.close()
        source = PostgresSource(dsn=dsn, allow_primary=True)
        with pytest.raises(PostgresSourceError) as info:
            list(source.extract_orders(DAY))
        message = str(info.value)
        assert "reading public.orders for [2026-03-17T10:00:00+00:00" in message
        assert "UTF8" in message and "0xff" in message  # the server refuses to send it
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
