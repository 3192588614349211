"""fakesnow's Snowflake-compatible HTTP server in a process of its own, for the tests.

Run as ``python -m orders_platform_tests.servers.fakesnow_server [--fast-array-binding]``: it
starts the server on 127.0.0.1 (a free port), prints its connection kwargs as one JSON line
on stdout and serves until its stdin closes (the test process ended, however it ended) or it
receives SIGTERM. In its own process, a native crash of the emulator (DuckDB inside fakesnow)
fails the tests that use it instead of taking the whole pytest run down.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class _Patcher:
    """The one method of pytest's MonkeyPatch the patches use (the process is throwaway)."""

    @staticmethod
    def setattr(target: Any, name: str, value: Any) -> None:
        setattr(target, name, value)


def _patch_fakesnow(mp: _Patcher) -> None:
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


def _patch_fakesnow_array_binding(mp: _Patcher) -> None:
    """Make fakesnow's server run an array binding of a plain ``INSERT ... VALUES (?, ...)``
    (the connector's ``executemany``) as one DuckDB statement.

    fakesnow's server executes an array binding row by row through ``cursor.execute``, which
    parses and transforms the Snowflake SQL again for every row (~20-50 ms a row). Here, per
    request (a request gets a fresh cursor), the first row goes through fakesnow unchanged.
    When that statement was a single-row INSERT whose VALUES are only ``?`` placeholders (so
    its translation does not depend on the values), the following rows are collected (each
    reports one row inserted, as it would) and, before the server describes the result,
    inserted at once: fakesnow's own translation of the first row's INSERT with its VALUES
    replaced by ``SELECT * FROM`` an Arrow table of the rows, on the same DuckDB connection
    (same transaction). DuckDB casts the bound values to the column types as it does for
    parameters. If that fails, the collected rows are re-run one by one through fakesnow,
    so errors look exactly as without the patch.
    """
    # (Importing the module rebinds the name `fakesnow.server` from the function to the
    # module, as fakesnow.server() itself does on its first call: hence after the start.)
    import fakesnow.server
    import pyarrow as pa
    from fakesnow.cursor import FakeSnowflakeCursor
    from sqlglot import exp, parse_one

    run_in_threadpool = fakesnow.server.run_in_threadpool
    describe_last_sql = FakeSnowflakeCursor._describe_last_sql
    # per cursor: [Snowflake SQL, fakesnow's translated INSERT or None, rows collected]
    state = "_orders_platform_array_insert"

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

    def insert_at_once(cur: FakeSnowflakeCursor, insert: exp.Insert, rows: list) -> bool:
        name = f"_fs_array_binding_{id(cur)}"
        try:
            columns = list(zip(*rows, strict=True))
            table = pa.table({f"c{i}": pa.array(col) for i, col in enumerate(columns)})
            bulk = insert.copy()
            bulk.set("expression", exp.select("*").from_(name))
            cur._duck_conn.register(name, table)  # noqa: SLF001
            try:
                cur._duck_conn.execute(bulk.sql(dialect="duckdb"))  # noqa: SLF001
                ((count,),) = cur._duck_conn.fetchall()  # noqa: SLF001
            finally:
                cur._duck_conn.unregister(name)  # noqa: SLF001
        except Exception:
            return False
        return count == len(rows)

    def flush(cur: FakeSnowflakeCursor) -> None:
        pending = getattr(cur, state, None)
        if not pending or not pending[2]:
            return
        sql_text, insert, rows = pending
        pending[2] = []
        if not insert_at_once(cur, insert, rows):
            for row in rows:
                FakeSnowflakeCursor.execute(cur, sql_text, binding_params=row, server=True)

    def flushing_describe_last_sql(self: FakeSnowflakeCursor) -> list:
        flush(self)
        return describe_last_sql(self)

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
        pending = getattr(cur, state, None)
        if pending is not None and pending[0] == sql_text and pending[1] is not None:
            pending[2].append(row)
            cur._rowcount = 1  # noqa: SLF001 - what fakesnow reports for a one-row INSERT
            return cur
        await run_in_threadpool(flush, cur)
        result = await run_in_threadpool(func, *args, **kwargs)
        transformed = cur._last_transformed  # noqa: SLF001
        insert = None
        if isinstance(transformed, exp.Insert) and plain_insert(sql_text):
            insert = transformed
        setattr(cur, state, [sql_text, insert, []])
        return result

    mp.setattr(fakesnow.server, "run_in_threadpool", patched)
    mp.setattr(FakeSnowflakeCursor, "_describe_last_sql", flushing_describe_last_sql)


def serve(fast_array_binding: bool) -> None:
    import fakesnow

    patcher = _Patcher()
    _patch_fakesnow(patcher)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with fakesnow.server() as kwargs:
        if fast_array_binding:
            _patch_fakesnow_array_binding(patcher)
        print(json.dumps(kwargs), flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()


@contextmanager
def fakesnow_process(fast_array_binding: bool = False) -> Iterator[dict[str, Any]]:
    """Start the server process; yield its connection kwargs; stop it by its PID."""
    args = [sys.executable, "-m", "orders_platform_tests.servers.fakesnow_server"]
    if fast_array_binding:
        args.append("--fast-array-binding")
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fakesnow server exited with {proc.wait()} before it started")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast-array-binding", action="store_true")
    serve(parser.parse_args().fast_array_binding)
