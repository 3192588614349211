"""Servers shared by the integration tests: fakesnow's Snowflake server and a moto S3 server.

- ``fakesnow_server`` (session): fakesnow's Snowflake-compatible HTTP server, in this process,
  on 127.0.0.1 and a free port, with two fakesnow 0.12.1 bugs patched (`_patch_fakesnow`).
  Tests isolate themselves by connecting to a fresh database name.
- ``fakesnow_fast_array_binding`` (opt-in, per test): runs the rows of an array-bound
  ``INSERT ... VALUES (?, ...)`` (the connector's ``executemany``) without re-parsing and
  re-transforming the statement for every row, which fakesnow 0.12.1 does (~20-50 ms a row).
- ``s3`` (per test): a moto S3 server enforcing signatures
  (`orders_platform_tests.servers.moto_s3`); AWS_* and ORDERS_LAKE_ROOT point at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orders_platform_tests.servers.moto_s3 import S3Env, moto_s3


def _patch_fakesnow(mp: pytest.MonkeyPatch) -> None:
    """Work around two bugs of fakesnow 0.12.1 (test-side only; real Snowflake has neither):

    - NULL timestamps come back as 1970-01-01: `fakesnow.arrow.timestamp_to_sf_struct`
      builds the connector's timestamp structs without a validity mask. Re-add the mask.
    - a MERGE inside an explicit transaction fails with "a single transaction can only write
      to a single attached database": fakesnow runs MERGE as CREATE TEMPORARY TABLE
      merge_candidates + UPDATE + INSERT, and records a (None) table comment for every
      CREATE with properties (TEMPORARY is one) in its `_fs_global` catalog. Skip recording
      absent comments; real comments (our dtype comments) are still recorded.
    """
    import fakesnow.arrow
    import fakesnow.transforms
    import pyarrow as pa
    import pyarrow.compute as pc

    to_struct = fakesnow.arrow.timestamp_to_sf_struct

    def timestamp_to_sf_struct(ts: Any) -> Any:
        if isinstance(ts, pa.ChunkedArray):
            ts = ts.combine_chunks()
        out = to_struct(ts)
        if ts.null_count:
            out = pa.StructArray.from_arrays(
                out.flatten(), fields=list(out.type), mask=pc.is_null(ts)
            )
        return out

    extract_comment = fakesnow.transforms.extract_comment_on_table

    def extract_comment_on_table(expression: Any) -> Any:
        out = extract_comment(expression)
        recorded = out.args.get("table_comment")
        if recorded is not None and recorded[1] is None:
            del out.args["table_comment"]
        return out

    mp.setattr(fakesnow.arrow, "timestamp_to_sf_struct", timestamp_to_sf_struct)
    mp.setattr(fakesnow.transforms, "extract_comment_on_table", extract_comment_on_table)


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[dict[str, Any]]:
    """fakesnow's Snowflake-compatible HTTP server, in this process, for the whole session;
    yields its connection kwargs (host, port, protocol, ...)."""
    import fakesnow

    with pytest.MonkeyPatch.context() as mp:
        _patch_fakesnow(mp)
        with fakesnow.server() as kwargs:
            yield kwargs


def _patch_fakesnow_array_binding(mp: pytest.MonkeyPatch) -> None:
    """Make fakesnow's server run an array binding of a plain ``INSERT ... VALUES (?, ...)``
    in time proportional to DuckDB's work, not sqlglot's.

    fakesnow's server executes an array binding row by row through ``cursor.execute``, which
    parses and transforms the Snowflake SQL again for every row. Here, per request (a request
    gets a fresh cursor), the first row goes through fakesnow unchanged; when that statement
    was a single-row INSERT whose VALUES are only ``?`` placeholders (so its translation does
    not depend on the values), the following rows run the very DuckDB statement fakesnow
    produced for the first one, with their own parameters, on the same connection (so in the
    same transaction) and report DuckDB's affected-row count, as fakesnow does. A row that
    DuckDB rejects is re-run through fakesnow, so errors look exactly as without the patch.
    """
    import fakesnow.server
    from fakesnow.cursor import FakeSnowflakeCursor
    from sqlglot import exp, parse_one

    run_in_threadpool = fakesnow.server.run_in_threadpool
    marker = "_orders_platform_prepared_insert"  # (Snowflake SQL, DuckDB SQL or None)

    def plain_insert(sql_text: str) -> bool:
        try:
            statement = parse_one(sql_text, read="snowflake")
        except Exception:
            return False
        values = statement.expression if isinstance(statement, exp.Insert) else None
        return (
            isinstance(values, exp.Values)
            and not statement.args.get("overwrite")
            and len(values.expressions) == 1
            and all(isinstance(v, exp.Placeholder) for v in values.expressions[0].expressions)
        )

    def run_prepared(cur: FakeSnowflakeCursor, duck_sql: str, row: tuple[Any, ...]) -> bool:
        try:
            cur._duck_conn.execute(duck_sql, list(row))  # noqa: SLF001
            ((count,),) = cur._duck_conn.fetchall()  # noqa: SLF001
        except Exception:
            return False
        cur._rowcount = count  # noqa: SLF001
        return True

    async def patched(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        cur = getattr(func, "__self__", None)
        row = kwargs.get("binding_params")
        if not (
            isinstance(cur, FakeSnowflakeCursor)
            and getattr(func, "__name__", "") == "execute"
            and kwargs.get("server")
            and isinstance(row, tuple)
            and args
        ):
            return await run_in_threadpool(func, *args, **kwargs)
        sql_text = args[0]
        known = getattr(cur, marker, None)
        if (
            known is not None
            and known[0] == sql_text
            and known[1] is not None
            and await run_in_threadpool(run_prepared, cur, known[1], row)
        ):
            return cur
        result = await run_in_threadpool(func, *args, **kwargs)
        if known is None or known[0] != sql_text:
            transformed = cur._last_transformed  # noqa: SLF001
            duck_sql = None
            if isinstance(transformed, exp.Insert) and plain_insert(sql_text):
                duck_sql = transformed.sql(dialect="duckdb")
            setattr(cur, marker, (sql_text, duck_sql))
        return result

    mp.setattr(fakesnow.server, "run_in_threadpool", patched)


@pytest.fixture
def fakesnow_fast_array_binding(fakesnow_server: dict[str, Any]) -> Iterator[None]:
    """Opt-in: fast array-bound INSERTs on the session's fakesnow server, for this test."""
    with pytest.MonkeyPatch.context() as mp:
        _patch_fakesnow_array_binding(mp)
        yield


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Env]:
    """A moto S3 server enforcing signatures; AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_REGION and ORDERS_LAKE_ROOT (s3://bucket/lake) point at it."""
    with moto_s3(monkeypatch) as env:
        yield env
