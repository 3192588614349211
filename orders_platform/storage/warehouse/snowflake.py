"""Snowflake implementation of the warehouse (production, SPEC §6/§8).

Tables: ``silver.orders`` and ``silver.sessions`` are tables ``orders`` / ``sessions`` in schema
``SILVER`` of SNOWFLAKE_DATABASE (created if missing), with the same column types as DuckDB
through `sql.SNOWFLAKE` (NUMBER(12,2), TIMESTAMP_TZ, DATE, BOOLEAN, VARCHAR, NUMBER(38,0),
FLOAT, ARRAY for list columns). SNOWFLAKE_SCHEMA (`schema_name`, default ``public``) is the
session's default schema: it holds only the session-private TEMPORARY staging table and
TEMPORARY stage of a write, which Snowflake drops with the session. It must exist (PUBLIC
always does); SILVER is created on first write.

Connections go through `dagster_snowflake.SnowflakeResource`, constructed inside `_connect`
from this resource's fields (host/port/protocol for a non-default endpoint such as fakesnow's
server pass through its ``additional_snowflake_connection_args``). `dagster_snowflake` and
`snowflake.connector` are imported lazily, inside methods: importing dagster_snowflake costs
seconds (Snowpark), and loading the definitions must stay fast when DuckDB is selected.
Sessions use autocommit, qmark binding and TIMEZONE=UTC; every operation opens one short
session and closes it, also on error.

Writes (Snowflake DDL commits implicitly, so all DDL and staging run before ``BEGIN``):

1. if the table is missing: ``CREATE SCHEMA IF NOT EXISTS silver``, ``CREATE TABLE IF NOT
   EXISTS`` (with a table COMMENT recording the Polars dtypes, see below) and
   ``USE SCHEMA <schema_name>`` (CREATE SCHEMA switches the session's current schema).
2. The batch is staged into a TEMPORARY table typed like the target (list columns as JSON
   VARCHAR). Values are sent as text that Snowflake converts exactly: decimals as ``'40.10'``,
   timestamps as ``'YYYY-MM-DD HH:MM:SS.ffffff+00:00'``, dates as ISO, lists as JSON.
   - below `bulk_load_min_rows` (default 10 000): batched ``executemany`` INSERTs of
     5 000 rows (qmark array binding; for large arrays the connector itself ships the
     bindings through a stage);
   - from `bulk_load_min_rows` on: the same text frame is written as Parquet files
     (500 000 rows each) to a temporary directory, ``PUT`` to a TEMPORARY stage and loaded
     with one ``COPY INTO <staging> FROM (SELECT $1:"col"::TYPE, ... FROM @stage)``
     (PURGE=TRUE; the loaded row count is checked). pandas is not a dependency, so
     `write_pandas` is not used; PUT + COPY of Parquet is what it does underneath.
3. ``BEGIN``; orders: ONE ``MERGE`` (`ORDERS_UPSERT.merge_sql`: newer updated_at wins, target
   restricted to the batch's order_dates); sessions: ``DELETE`` the day + ``INSERT ... SELECT``
   (``PARSE_JSON(col)::ARRAY`` for list columns); ``COMMIT`` (``ROLLBACK`` on any error).

Upsert stats come from the MERGE's own result row (number of rows inserted / updated;
unchanged = rows_in - inserted - updated), i.e. from the very statement that writes. A separate
stats SELECT (what DuckDB cross-checks) would not be exact here: Snowflake transactions are
READ COMMITTED, so a concurrent writer could commit between that SELECT and the MERGE.

Reads: rows are fetched in chunks through the connector (no pandas / Arrow dependency) and
built into Polars frames; dtypes come from the table COMMENT written at creation (a JSON
Polars schema, so List(Int64), Int32 and Decimal(12,2) round-trip exactly even for an all-empty
ARRAY column, which Snowflake cannot type) and otherwise from the cursor description (FIXED ->
Int64 / Decimal(p,s), TIMESTAMP_TZ/LTZ -> Datetime(us, UTC), ARRAY -> JSON-decoded list).
`column_types` reports information_schema's data_type, with NUMBER rendered as NUMBER(p,s).

Secrets: the password is never put in SQL, logs or metadata; every connector error (and any
other error whose text would contain the password) is re-raised as `SnowflakeWarehouseError`
with the password redacted, chained to the original only when no exception in its chain
mentions the password.

What the tests exercise (orders_platform_tests/integration/test_warehouse.py, fakesnow's
in-process server + the real connector): the whole shared warehouse suite on the insert path
(fakesnow's server cannot run `write_pandas`), plus the PUT + COPY path on small batches with
`bulk_load_min_rows=1`. Not exercised anywhere but on a real account: the connector's own
stage-based array binding for big INSERTs, Parquet loading by real Snowflake, and locking
between concurrent sessions (real Snowflake queues concurrent MERGEs on the table lock).
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import polars as pl
from pydantic import Field, field_validator

from orders_platform.secrets import Redactor
from orders_platform.storage.warehouse.base import (
    ORDERS_UPSERT,
    SESSIONS_PARTITION,
    SESSIONS_TABLE,
    SILVER_SCHEMA,
    TableNotFoundError,
    UpsertStats,
    Warehouse,
    conform_orders_read,
    prepare_orders_batch,
    prepare_sessions_batch,
    split_table_name,
    utc_timestamps,
)
from orders_platform.storage.warehouse.snowflake_codec import (
    create_table_with_dtypes_sql,
    decode_schema_comment,
    dtype_from_description,
    is_list,
    staging_frame,
    staging_type,
)
from orders_platform.storage.warehouse.sql import (
    create_schema_sql,
    date_in_list,
    delete_partition_sql,
    ident,
    int_in_list,
    qualified,
)
from orders_platform.transforms.schema import SILVER_ORDERS_SCHEMA

if TYPE_CHECKING:
    from snowflake.connector.connection import SnowflakeConnection
    from snowflake.connector.cursor import SnowflakeCursor

log = logging.getLogger(__name__)

T = TypeVar("T")

_STAGING_TABLE = "_orders_platform_batch"
_STAGING_FILES = "_orders_platform_files"
INSERT_CHUNK_ROWS = 5_000
BULK_FILE_ROWS = 500_000
_FETCH_ROWS = 50_000
_IN_LIST_MAX = 10_000


class SnowflakeWarehouseError(RuntimeError):
    """A Snowflake operation failed; the message never contains the password."""

    def __init__(
        self,
        message: str,
        *,
        errno: int | None = None,
        sqlstate: str | None = None,
        sfqid: str | None = None,
    ) -> None:
        super().__init__(message)
        self.errno = errno
        self.sqlstate = sqlstate
        self.sfqid = sfqid


class SnowflakeWarehouse(Warehouse):
    """``silver.*`` tables in schema SILVER of a Snowflake database."""

    account: str = Field(description="Snowflake account identifier (SNOWFLAKE_ACCOUNT).")
    user: str = Field(description="Login name (SNOWFLAKE_USER).")
    password: str = Field(
        repr=False,
        description="Password (SNOWFLAKE_PASSWORD); secret: pass it as an EnvVar.",
    )
    database: str = Field(description="Database holding schema SILVER (SNOWFLAKE_DATABASE).")
    schema_name: str = Field(
        default="public",
        description=(
            "SNOWFLAKE_SCHEMA: the session's default schema (must exist), where the "
            "temporary staging table and stage of a write live. The silver tables are "
            "always in schema SILVER of the database."
        ),
    )
    warehouse: str | None = Field(default=None, description="SNOWFLAKE_WAREHOUSE.")
    role: str | None = Field(default=None, description="SNOWFLAKE_ROLE.")
    host: str | None = Field(default=None, description="SNOWFLAKE_HOST (non-default endpoint).")
    port: int | None = Field(default=None, description="SNOWFLAKE_PORT (non-default endpoint).")
    protocol: str | None = Field(
        default=None, description="SNOWFLAKE_PROTOCOL, 'https' (default) or 'http'."
    )
    login_timeout: int = Field(default=60, gt=0, description="Login timeout in seconds.")
    network_timeout: int | None = Field(
        default=None,
        gt=0,
        description="Seconds after which a failing request is no longer retried (None: never).",
    )
    bulk_load_min_rows: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Batches with at least this many rows are staged with Parquet PUT + COPY INTO; "
            "smaller ones with batched INSERTs."
        ),
    )

    @field_validator("schema_name")
    @classmethod
    def _valid_schema_name(cls, value: str) -> str:
        return ident(value.strip().lower())

    @field_validator("protocol")
    @classmethod
    def _valid_protocol(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in ("http", "https"):
            raise ValueError(f"protocol must be 'http' or 'https', got {value!r}")
        return value.lower() if value is not None else None

    @property
    def kind(self) -> str:
        return "snowflake"

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[SnowflakeConnection]:
        from dagster_snowflake import SnowflakeResource

        endpoint = {
            key: value
            for key, value in (
                ("host", self.host),
                ("port", self.port),
                ("protocol", self.protocol),
            )
            if value is not None
        }
        resource = SnowflakeResource(
            account=self.account,
            user=self.user,
            password=self.password,
            database=self.database,
            schema=self.schema_name,
            warehouse=self.warehouse,
            role=self.role,
            autocommit=True,
            paramstyle="qmark",
            timezone="UTC",
            login_timeout=self.login_timeout,
            network_timeout=self.network_timeout,
            additional_snowflake_connection_args=endpoint or None,
        )
        with resource.get_connection() as con:
            # SnowflakeResource closes only on a clean exit: close on errors too, so a failed
            # write never leaves a session (and its temporary objects) behind.
            try:
                yield con
            finally:
                con.close()

    def _run(self, what: str, work: Callable[[SnowflakeCursor], T]) -> T:
        """Run `work` on a cursor of a fresh session; errors come out redacted."""

        def on_cursor() -> T:
            with self._connect() as con, con.cursor() as cur:
                return work(cur)

        return self._redacting(what, on_cursor)

    def _redacting(self, what: str, call: Callable[[], T]) -> T:
        """Call `call`; a connector error, or any error whose text contains the password, is
        re-raised as a SnowflakeWarehouseError with the password replaced by ``***``."""
        from snowflake.connector.errors import Error as ConnectorError

        try:
            return call()
        except Exception as exc:
            if not isinstance(exc, ConnectorError) and not _mentions(self._redactor(), exc):
                raise
            error = self._redacted_error(what, exc)
            cause = None if self._chain_mentions_password(exc) else exc
        # Raised outside the except block, so that a dropped cause is not kept as __context__.
        raise error from cause

    def _redactor(self) -> Redactor:
        return Redactor([self.password if isinstance(self.password, str) else None])

    def _chain_mentions_password(self, exc: BaseException) -> bool:
        redactor = self._redactor()
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if _mentions(redactor, current):
                return True
            current = current.__cause__ or current.__context__
        return False

    def _redacted_error(self, what: str, exc: BaseException) -> SnowflakeWarehouseError:
        return SnowflakeWarehouseError(
            self._redactor()(f"Snowflake {what} failed ({type(exc).__name__}): {exc}"),
            errno=getattr(exc, "errno", None),
            sqlstate=getattr(exc, "sqlstate", None),
            sfqid=getattr(exc, "sfqid", None),
        )

    def _prepare_write(
        self, cur: SnowflakeCursor, table: str, schema: Mapping[str, pl.DataType]
    ) -> None:
        """DDL before the transaction (Snowflake DDL commits implicitly). An existing table is
        kept as it is (the sessions table takes the dtypes of its first batch)."""
        if _table_info(cur, SILVER_SCHEMA, table) is None:
            _sql(cur, create_schema_sql(SILVER_SCHEMA))
            _sql(cur, create_table_with_dtypes_sql(table, schema))
            # CREATE SCHEMA makes SILVER the current schema: back to the staging schema.
            _sql(cur, f"USE SCHEMA {self.schema_name}")

    def _stage(self, cur: SnowflakeCursor, batch: pl.DataFrame) -> str:
        """Create a temporary staging table, load `batch` into it and return its name.

        The name is unique per write: Snowflake scopes temporary tables to the session,
        but fakesnow (and a pooled session reused by two writes) would share one name."""
        table = f"{_STAGING_TABLE}_{uuid.uuid4().hex[:16]}"
        columns = ", ".join(f"{ident(c)} {staging_type(t)}" for c, t in batch.schema.items())
        _sql(cur, f"CREATE TEMPORARY TABLE {table} ({columns})")
        text = staging_frame(batch)
        if batch.height >= self.bulk_load_min_rows:
            _copy_parquet(cur, table, text, batch.schema)
        else:
            _insert_rows(cur, table, text)
        return table

    # -- orders --------------------------------------------------------------------------

    def upsert_orders(self, df: pl.DataFrame) -> UpsertStats:
        batch = prepare_orders_batch(df)
        dates = batch.get_column("order_date").unique().to_list()
        spec = ORDERS_UPSERT

        def work(cur: SnowflakeCursor) -> UpsertStats:
            self._prepare_write(cur, spec.table, SILVER_ORDERS_SCHEMA)
            if batch.is_empty():
                return UpsertStats(rows_in=0, inserted=0, updated=0, unchanged=0)
            staged = self._stage(cur, batch)
            with _transaction(cur):
                cur.execute(spec.merge_sql(staged, dates))
                counts = _merge_counts(cur)
            inserted, updated = counts.get("inserted", 0), counts.get("updated", 0)
            unchanged = batch.height - inserted - updated
            if unchanged < 0:
                raise RuntimeError(
                    f"MERGE reported {inserted} inserted + {updated} updated rows for a batch "
                    f"of {batch.height}"
                )
            return UpsertStats(
                rows_in=batch.height, inserted=inserted, updated=updated, unchanged=unchanged
            )

        return self._run("upsert into silver.orders", work)

    def read_orders(
        self,
        *,
        order_ids: Sequence[int] | None = None,
        order_dates: Sequence[date] | None = None,
    ) -> pl.DataFrame:
        empty = pl.DataFrame(schema=SILVER_ORDERS_SCHEMA)
        if (order_ids is not None and len(order_ids) == 0) or (
            order_dates is not None and len(order_dates) == 0
        ):
            return empty
        target = qualified(SILVER_SCHEMA, ORDERS_UPSERT.table)
        where = [f"order_date IN {date_in_list(order_dates)}"] if order_dates is not None else []
        ids = sorted({int(i) for i in order_ids}) if order_ids is not None else None
        id_chunks = (
            [None]
            if ids is None
            else [ids[i : i + _IN_LIST_MAX] for i in range(0, len(ids), _IN_LIST_MAX)]
        )

        def work(cur: SnowflakeCursor) -> list[pl.DataFrame] | None:
            if _table_info(cur, SILVER_SCHEMA, ORDERS_UPSERT.table) is None:
                return None
            frames = []
            for chunk in id_chunks:
                conditions = where + ([f"order_id IN {int_in_list(chunk)}"] if chunk else [])
                query = f"SELECT * FROM {target}"
                if conditions:
                    query += " WHERE " + " AND ".join(conditions)
                frames.append(_fetch_frame(cur, query + " ORDER BY order_id", SILVER_ORDERS_SCHEMA))
            return frames

        frames = self._run("read of silver.orders", work)
        if frames is None:
            return empty
        out = pl.concat(frames) if len(frames) > 1 else frames[0]
        return conform_orders_read(out.sort("order_id") if len(frames) > 1 else out)

    # -- sessions ------------------------------------------------------------------------

    def replace_sessions(self, df: pl.DataFrame, day: date) -> int:
        batch = prepare_sessions_batch(df, day)
        target = qualified(SILVER_SCHEMA, SESSIONS_TABLE)
        names = ", ".join(ident(c) for c in batch.columns)
        values = ", ".join(
            f"PARSE_JSON({c})::ARRAY" if isinstance(t, pl.List | pl.Array) else c
            for c, t in batch.schema.items()
        )

        def work(cur: SnowflakeCursor) -> int:
            self._prepare_write(cur, SESSIONS_TABLE, batch.schema)
            staged = self._stage(cur, batch) if batch.height else None
            with _transaction(cur):
                _sql(
                    cur,
                    delete_partition_sql(SILVER_SCHEMA, SESSIONS_TABLE, SESSIONS_PARTITION, day),
                )
                if staged:
                    _sql(cur, f"INSERT INTO {target} ({names}) SELECT {values} FROM {staged}")
            return batch.height

        return self._run("replace of silver.sessions", work)

    # -- generic reads -------------------------------------------------------------------

    def read_table(self, name: str) -> pl.DataFrame:
        schema, table = split_table_name(name)

        def work(cur: SnowflakeCursor) -> pl.DataFrame:
            info = _table_info(cur, schema, table)
            if info is None:
                raise TableNotFoundError(f"table {schema}.{table} does not exist")
            return _fetch_frame(cur, f"SELECT * FROM {qualified(schema, table)}", info)

        return utc_timestamps(self._run(f"read of {schema}.{table}", work))

    def table_exists(self, name: str) -> bool:
        schema, table = split_table_name(name)
        info = self._run(f"lookup of {schema}.{table}", lambda cur: _table_info(cur, schema, table))
        return info is not None

    def column_types(self, name: str) -> dict[str, str]:
        schema, table = split_table_name(name)
        query = (
            "SELECT lower(column_name), data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns "
            "WHERE lower(table_schema) = ? AND lower(table_name) = ? "
            "ORDER BY ordinal_position"
        )
        rows = self._run(
            f"lookup of {schema}.{table}", lambda cur: _sql(cur, query, [schema, table])
        )
        if not rows:
            raise TableNotFoundError(f"table {schema}.{table} does not exist")
        return {
            str(column): (
                f"NUMBER({precision},{scale})"
                if str(dtype).upper() == "NUMBER" and precision is not None
                else str(dtype)
            )
            for column, dtype, precision, scale in rows
        }


# -- SQL helpers -----------------------------------------------------------------------------


def _mentions(redactor: Redactor, exc: BaseException) -> bool:
    return any(redactor.mentions_secret(t) for t in (str(exc), repr(exc), *map(str, exc.args)))


def _sql(cur: SnowflakeCursor, query: str, params: Sequence[object] | None = None) -> list[tuple]:
    cur.execute(query, params)
    return list(cur.fetchall())


@contextmanager
def _transaction(cur: SnowflakeCursor) -> Iterator[None]:
    cur.execute("BEGIN")
    try:
        yield
    except BaseException:
        # A failed COMMIT leaves nothing to roll back: keep the original error.
        with suppress(Exception):
            cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


def _merge_counts(cur: SnowflakeCursor) -> dict[str, int]:
    """{"inserted": n, "updated": m} from a MERGE's result row ("number of rows inserted"...)."""
    row = cur.fetchone()
    if row is None or cur.description is None:
        return {}
    counts = {}
    for column, value in zip(cur.description, row, strict=True):
        words = column.name.lower().split()
        if words[:3] == ["number", "of", "rows"] and len(words) == 4:
            counts[words[3]] = int(value or 0)
    return counts


def _table_info(cur: SnowflakeCursor, schema: str, table: str) -> dict[str, pl.DataType] | None:
    """None if the table does not exist, else the Polars dtypes recorded in its comment
    (empty when it has none, e.g. a table created by hand)."""
    rows = _sql(
        cur,
        "SELECT comment FROM information_schema.tables "
        "WHERE lower(table_schema) = ? AND lower(table_name) = ?",
        [schema, table],
    )
    if not rows:
        return None
    return decode_schema_comment(rows[0][0])


# -- staging ---------------------------------------------------------------------------------


def _insert_rows(cur: SnowflakeCursor, table: str, text: pl.DataFrame) -> None:
    names = ", ".join(text.columns)
    marks = ", ".join("?" for _ in text.columns)
    query = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    for chunk in text.iter_slices(INSERT_CHUNK_ROWS):
        cur.executemany(query, chunk.rows())


def _copy_parquet(
    cur: SnowflakeCursor, table: str, text: pl.DataFrame, schema: Mapping[str, pl.DataType]
) -> None:
    """Bulk path: Parquet files -> PUT to a temporary stage -> one COPY INTO the staging table."""
    # Unique per load (a temporary stage is session-scoped in Snowflake, global in fakesnow).
    stage = f"{_STAGING_FILES}_{uuid.uuid4().hex}"
    _sql(cur, f"CREATE TEMPORARY STAGE {stage}")
    with tempfile.TemporaryDirectory(prefix="orders_platform_snowflake_") as tmp:
        for number, chunk in enumerate(text.iter_slices(BULK_FILE_ROWS)):
            path = Path(tmp, f"part-{number:05d}.parquet").resolve()
            chunk.write_parquet(path)
            location = path.as_posix()
            if "'" in location:
                raise ValueError(f"unusable temporary path for PUT: {location}")
            _sql(
                cur,
                f"PUT 'file://{location}' @{stage} AUTO_COMPRESS=FALSE OVERWRITE=TRUE",
            )
    names = ", ".join(text.columns)
    fields = ", ".join(f'$1:"{c}"::{staging_type(t)}' for c, t in schema.items())
    rows = _sql(
        cur,
        f"COPY INTO {table} ({names}) FROM (SELECT {fields} FROM @{stage}) "
        "FILE_FORMAT = (TYPE = PARQUET) PURGE = TRUE",
    )
    columns = [d.name.lower() for d in cur.description or ()]
    if "rows_loaded" not in columns:
        raise RuntimeError(f"unexpected COPY INTO result columns: {columns}")
    loaded = sum(int(row[columns.index("rows_loaded")] or 0) for row in rows)
    if loaded != text.height:
        raise RuntimeError(f"COPY INTO loaded {loaded} rows, expected {text.height}")


# -- reads -----------------------------------------------------------------------------------


def _fetch_frame(
    cur: SnowflakeCursor, query: str, dtypes: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """Run `query` and build a frame in chunks; `dtypes` (by lower-case name) wins over the
    cursor description. List columns arrive as JSON text and are decoded."""
    cur.execute(query)
    description = cur.description or []
    names = [d.name.lower() for d in description]
    target = {
        n: dtypes[n] if n in dtypes else dtype_from_description(d)
        for n, d in zip(names, description, strict=True)
    }
    # Lists arrive as JSON text; a List without inner type (undocumented ARRAY) is inferred.
    wire = {n: pl.String() if is_list(t) else t for n, t in target.items()}
    chunks = []
    while rows := cur.fetchmany(_FETCH_ROWS):
        chunks.append(pl.DataFrame(rows, schema=wire, orient="row"))
    out = pl.concat(chunks) if chunks else pl.DataFrame(schema=wire)
    decoded = [
        pl.col(n).str.json_decode(None if isinstance(t, type) else t, infer_schema_length=None)
        for n, t in target.items()
        if is_list(t)
    ]
    return out.with_columns(decoded) if decoded else out


# -- Polars dtypes in a table comment --------------------------------------------------------
