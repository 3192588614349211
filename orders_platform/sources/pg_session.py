"""Connection and session rules of the PostgreSQL source (SPEC §9), and secret redaction.

Every session is read-only (``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`` and
psycopg2 ``set_session(readonly=True)``, i.e. ``BEGIN READ ONLY``; ``SHOW
transaction_read_only`` must say ``on``), has a ``statement_timeout``, renders values in UTC
/ ISO (``TimeZone``, ``DateStyle``, ``IntervalStyle``, ``extra_float_digits``) in UTF-8, and
refuses a primary (``pg_is_in_recovery()`` false) unless allowed.

Secrets: errors name the host, port, database and user only; psycopg2's messages are
redacted and callers never chain the original exception (its text could carry the DSN).
"""

from __future__ import annotations

from typing import Any

import psycopg2
import psycopg2.extensions

from orders_platform.secrets import Redactor

APPLICATION_NAME = "orders_platform"
# Each sub-window's COPY sorts its rows (window column, then the values) so exact
# duplicates are adjacent and ties are deterministic: give the sort room in memory
# instead of the 4 MB default that spills an ordinary hour to disk.
SORT_WORK_MEM = "64MB"


class PostgresSourceError(RuntimeError):
    """An extraction failure with a message that is safe to log (no secrets)."""


def redact_dsn_secrets(text: str, dsn: str | None = None) -> str:
    """`text` with every password removed (the one redactor): the DSN itself, its password
    as libpq reads it and as written, ``password=…`` pairs and ``user:password@`` in URIs."""
    return Redactor([dsn, _libpq_password(dsn)])(text)


def _libpq_password(dsn: str | None) -> str | None:
    try:
        return psycopg2.extensions.parse_dsn(dsn).get("password") if dsn else None
    except Exception:  # an invalid DSN: the redactor's textual patterns still apply
        return None


def describe_target(dsn: str) -> str:
    """ "host=… port=… dbname=… user=…" of the DSN (never the password)."""
    try:
        parsed = psycopg2.extensions.parse_dsn(dsn)
    except Exception:
        return "(unparseable ORDERS_PG_DSN)"
    keys = ("host", "hostaddr", "port", "dbname", "user")
    parts = [f"{key}={parsed[key]}" for key in keys if parsed.get(key)]
    return " ".join(parts) or "(libpq defaults)"


def first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else "(no message)"


def source_error(dsn: str, what: str, exc: BaseException | str) -> PostgresSourceError:
    detail = redact_dsn_secrets(first_line(str(exc)), dsn)
    return PostgresSourceError(f"{what} (PostgreSQL source {describe_target(dsn)}): {detail}")


def connect(dsn: str, connect_timeout_seconds: int) -> psycopg2.extensions.connection:
    try:
        psycopg2.extensions.parse_dsn(dsn)
    except Exception:
        # psycopg2's message quotes the DSN: never show it.
        raise PostgresSourceError(
            "ORDERS_PG_DSN is not a valid libpq connection string or postgresql:// URI"
        ) from None
    try:
        return psycopg2.connect(
            dsn,
            connect_timeout=max(1, int(connect_timeout_seconds)),
            application_name=APPLICATION_NAME,
        )
    except psycopg2.Error as exc:
        raise source_error(dsn, "could not connect", exc) from None


def configure(
    conn: psycopg2.extensions.connection,
    dsn: str,
    statement_timeout_seconds: float,
    allow_primary: bool,
) -> dict[str, Any]:
    """Apply the session rules to `conn`; return what the stats report about the server."""
    timeout_ms = max(1, round(statement_timeout_seconds * 1000))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            cur.execute("SET statement_timeout = %s", (timeout_ms,))
            cur.execute("SET client_encoding = 'UTF8'")
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("SET DateStyle = 'ISO, YMD'")
            cur.execute("SET IntervalStyle = 'iso_8601'")
            cur.execute("SET extra_float_digits = 3")
            cur.execute("SET work_mem = %s", (SORT_WORK_MEM,))
            cur.execute("SHOW transaction_read_only")
            read_only = cur.fetchone()[0]
            cur.execute("SELECT pg_is_in_recovery(), current_setting('server_version')")
            in_recovery, version = cur.fetchone()
        conn.autocommit = False
        conn.set_session(readonly=True, autocommit=False)
    except psycopg2.Error as exc:
        raise source_error(dsn, "could not prepare the read-only session", exc) from None
    if read_only != "on":  # pragma: no cover - defensive: the SET above makes it on
        raise PostgresSourceError("the source session is not read-only; refusing to read")
    if not in_recovery and not allow_primary:
        raise PostgresSourceError(
            f"the PostgreSQL source {describe_target(dsn)} is a primary "
            "(pg_is_in_recovery() = false): point ORDERS_PG_DSN at a read replica, or set "
            "ORDERS_PG_ALLOW_PRIMARY=true to read from the primary anyway"
        )
    return {
        "server_role": "replica" if in_recovery else "primary",
        "server_version": version,
        "statement_timeout_ms": timeout_ms,
    }
