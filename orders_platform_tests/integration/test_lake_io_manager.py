"""Integration tests for the Parquet lake IO manager (SPEC §8 lake layout, atomic replace)."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import fsspec
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from orders_platform.storage import lake
from orders_platform.storage.lake import (
    LakePartitionNotFoundError,
    ParquetLakeIOManager,
    partition_dir,
    partition_path,
    read_partition,
)

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
SINGLE_RUN = dg.BackfillPolicy.single_run()
DAY = "2026-03-17"
RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2026-03-15",
    "dagster/asset_partition_range_end": "2026-03-17",
}
RANGE_KEYS = ["2026-03-15", "2026-03-16", "2026-03-17"]

SCHEMA = {
    "order_id": pl.Int64,
    "amount": pl.Decimal(12, 2),
    "created_at": pl.Datetime("us", "UTC"),
    "status": pl.String,
}


def orders_frame(day: str, n: int = 3, offset: int = 0) -> pl.DataFrame:
    base = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "order_id": [offset + i + 1 for i in range(n)],
            "amount": [Decimal("1234.50") + i for i in range(n)],
            "created_at": [base + dt.timedelta(hours=i, microseconds=7) for i in range(n)],
            "status": ["delivered"] * n,
        },
        schema=SCHEMA,
    )


def tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".tmp")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "lake"


def _materialize(assets, root, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets, resources={"io_manager": ParquetLakeIOManager(root=str(root))}, **kwargs
    )


def _materialization_metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    mats = [
        ev.step_materialization_data.materialization
        for ev in result.get_asset_materialization_events()
        if ev.asset_key == key
    ]
    assert mats, f"no materialization for {key}"
    return {k: v.value for k, v in mats[-1].metadata.items()}


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "user_exception", None) or exc.__cause__ or exc.__context__
    return None


# ------------------------------------------------------------------------------------------
# assets used by several tests


def make_raw_orders(data: dict[str, pl.DataFrame] | None = None):
    @dg.asset(key=["raw", "orders"], partitions_def=PARTITIONS, backfill_policy=SINGLE_RUN)
    def raw_orders(context: dg.AssetExecutionContext):
        frames = {
            k: (data[k] if data and k in data else orders_frame(k)) for k in context.partition_keys
        }
        if len(frames) == 1:
            return next(iter(frames.values()))
        return frames

    return raw_orders


# ------------------------------------------------------------------------------------------
# (1) single partition round trip


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_single_partition_round_trip(root: Path, as_url: bool):
    lake_root = f"file://{root}" if as_url else str(root)
    expected = orders_frame(DAY)

    @dg.asset(key=["raw", "orders"], partitions_def=PARTITIONS)
    def raw_orders() -> pl.DataFrame:
        return expected

    result = dg.materialize(
        [raw_orders],
        partition_key=DAY,
        resources={"io_manager": ParquetLakeIOManager(root=lake_root)},
    )
    assert result.success

    data_file = root / "raw" / "orders" / f"dt={DAY}" / "part-0.parquet"
    assert data_file.is_file()
    assert sorted(p.name for p in data_file.parent.iterdir()) == ["part-0.parquet"]
    assert tmp_files(root) == []
    assert partition_path(lake_root, ["raw", "orders"], DAY) == str(data_file)
    assert partition_dir(lake_root, ["raw", "orders"], DAY) == str(data_file.parent)

    stored = pl.read_parquet(data_file)
    assert stored.schema == expected.schema
    assert_frame_equal(stored, expected)
    assert stored["amount"][0] == Decimal("1234.50")
    assert stored["created_at"].dtype == pl.Datetime("us", "UTC")
    assert_frame_equal(read_partition(lake_root, ["raw", "orders"], DAY), expected)

    meta = _materialization_metadata(result, dg.AssetKey(["raw", "orders"]))
    assert meta["path"] == str(data_file.parent)
    assert meta["rows"] == 3
    assert meta["dagster/row_count"] == 3
    assert meta["partitions"] == 1

    pq_meta = pq.read_metadata(data_file)
    col = pq_meta.row_group(0).column(0)
    assert col.compression == "ZSTD"
    assert col.is_stats_set


def test_downstream_reads_single_partition_as_dataframe(root: Path):
    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={"orders": dg.AssetIn(key=["raw", "orders"])},
    )
    def order_count(orders: pl.DataFrame) -> pl.DataFrame:
        assert_frame_equal(orders, orders_frame(DAY))
        return pl.DataFrame({"n": [orders.height]})

    result = _materialize([make_raw_orders(), order_count], root, partition_key=DAY)
    assert result.success
    assert read_partition(str(root), ["order_count"], DAY)["n"].to_list() == [3]


def test_unpartitioned_asset_layout(root: Path):
    @dg.asset(key=["ref", "stores"])
    def stores() -> pl.DataFrame:
        return pl.DataFrame({"store_id": [1, 2]})

    @dg.asset(ins={"stores": dg.AssetIn(key=["ref", "stores"])})
    def store_count(stores: pl.LazyFrame) -> pl.LazyFrame:
        return stores.select(pl.len().alias("n"))

    result = _materialize([stores, store_count], root)
    assert result.success
    data_file = root / "ref" / "stores" / "part-0.parquet"
    assert data_file.is_file()
    assert partition_path(str(root), ["ref", "stores"], None) == str(data_file)
    assert read_partition(str(root), ["ref", "stores"], None)["store_id"].to_list() == [1, 2]
    assert read_partition(str(root), ["store_count"], None)["n"].to_list() == [2]
    meta = _materialization_metadata(result, dg.AssetKey(["ref", "stores"]))
    assert meta["path"] == str(data_file.parent)
    assert "partitions" not in meta


# ------------------------------------------------------------------------------------------
# (2) re-materialization replaces


def test_rematerialize_replaces_partition(root: Path):
    first = orders_frame(DAY, n=5)
    second = orders_frame(DAY, n=2, offset=100)
    assert _materialize([make_raw_orders({DAY: first})], root, partition_key=DAY).success
    assert _materialize([make_raw_orders({DAY: second})], root, partition_key=DAY).success

    part_dir = root / "raw" / "orders" / f"dt={DAY}"
    assert sorted(p.name for p in part_dir.iterdir()) == ["part-0.parquet"]
    assert_frame_equal(read_partition(str(root), ["raw", "orders"], DAY), second)


# ------------------------------------------------------------------------------------------
# (3) partition ranges (single-run backfill)


def test_partition_range_lazy_and_dict_inputs(root: Path):
    seen: dict[str, object] = {}

    @dg.asset(
        key=["raw", "orders"],
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
    )
    def raw_orders(context: dg.AssetExecutionContext) -> dict[str, pl.LazyFrame]:
        assert context.has_partition_key_range
        # LazyFrames are streamed to disk with sink_parquet
        return {
            k: orders_frame(k, n=i + 1, offset=10 * i).lazy()
            for i, k in enumerate(context.partition_keys)
        }

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={"orders": dg.AssetIn(key=["raw", "orders"])},
    )
    def lazy_consumer(
        context: dg.AssetExecutionContext, orders: pl.LazyFrame
    ) -> dict[str, pl.DataFrame]:
        assert isinstance(orders, pl.LazyFrame)
        assert "dt" not in orders.collect_schema()  # hive_partitioning=False
        df = orders.with_columns(day=pl.col("created_at").dt.date().cast(pl.String)).collect()
        seen["lazy_rows"] = df.height
        seen["lazy_order"] = df["day"].to_list()
        return {
            k: df.filter(pl.col("day") == k).select(pl.len().alias("n"))
            for k in context.partition_keys
        }

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={"orders": dg.AssetIn(key=["raw", "orders"])},
    )
    def dict_consumer(
        context: dg.AssetExecutionContext, orders: dict[str, pl.DataFrame]
    ) -> dict[str, pl.DataFrame]:
        assert list(orders) == RANGE_KEYS
        assert all(isinstance(v, pl.DataFrame) for v in orders.values())
        return {k: pl.DataFrame({"n": [orders[k].height]}) for k in context.partition_keys}

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={"orders": dg.AssetIn(key=["raw", "orders"])},
    )
    def frame_consumer(
        context: dg.AssetExecutionContext, orders: pl.DataFrame
    ) -> dict[str, pl.DataFrame]:
        seen["concat_ids"] = orders["order_id"].to_list()
        return {k: pl.DataFrame({"n": [0]}) for k in context.partition_keys}

    result = _materialize(
        [raw_orders, lazy_consumer, dict_consumer, frame_consumer], root, tags=RANGE_TAGS
    )
    assert result.success

    for i, k in enumerate(RANGE_KEYS):
        assert (root / "raw" / "orders" / f"dt={k}" / "part-0.parquet").is_file()
        assert read_partition(str(root), ["raw", "orders"], k).height == i + 1
        assert read_partition(str(root), ["dict_consumer"], k)["n"].to_list() == [i + 1]
        assert read_partition(str(root), ["lazy_consumer"], k)["n"].to_list() == [i + 1]
    assert seen["lazy_rows"] == 6
    assert seen["lazy_order"] == sorted(seen["lazy_order"])
    # DataFrame input over a range = concatenation in partition-key order
    assert seen["concat_ids"] == [1, 11, 12, 21, 22, 23]
    assert tmp_files(root) == []

    meta = _materialization_metadata(result, dg.AssetKey(["raw", "orders"]))
    assert meta["path"] == str(root / "raw" / "orders")
    assert meta["rows"] == 6
    assert meta["dagster/row_count"] == 6
    assert meta["partitions"] == 3


def test_range_with_single_dataframe_is_an_error(root: Path):
    @dg.asset(key=["raw", "orders"], partitions_def=PARTITIONS, backfill_policy=SINGLE_RUN)
    def raw_orders() -> pl.DataFrame:
        return orders_frame(DAY)

    with pytest.raises(Exception) as excinfo:
        _materialize([raw_orders], root, tags=RANGE_TAGS)
    err = _find_cause(excinfo.value, TypeError)
    assert err is not None
    assert "return a dict" in str(err).lower()
    assert not (root / "raw" / "orders").exists()


def test_range_dict_missing_key_is_an_error(root: Path):
    @dg.asset(key=["raw", "orders"], partitions_def=PARTITIONS, backfill_policy=SINGLE_RUN)
    def raw_orders(context: dg.AssetExecutionContext):
        return {k: orders_frame(k) for k in context.partition_keys[:-1]}

    with pytest.raises(Exception) as excinfo:
        _materialize([raw_orders], root, tags=RANGE_TAGS)
    err = _find_cause(excinfo.value, ValueError)
    assert err is not None
    assert "2026-03-17" in str(err)
    # validated before anything is written
    assert not (root / "raw" / "orders").exists()


def test_none_output_is_an_error(root: Path):
    @dg.asset(key=["raw", "orders"], partitions_def=PARTITIONS)
    def raw_orders():
        return None

    with pytest.raises(Exception) as excinfo:
        _materialize([raw_orders], root, partition_key=DAY)
    err = _find_cause(excinfo.value, TypeError)
    assert err is not None and "raw/orders" in str(err)


# ------------------------------------------------------------------------------------------
# (4) atomicity


def test_crash_mid_write_keeps_old_file(root: Path, monkeypatch: pytest.MonkeyPatch):
    old = orders_frame(DAY, n=4)
    assert _materialize([make_raw_orders({DAY: old})], root, partition_key=DAY).success
    data_file = root / "raw" / "orders" / f"dt={DAY}" / "part-0.parquet"
    old_bytes = data_file.read_bytes()

    attempted: list[str] = []

    def crashing_writer(frame, fs, tmp_path):
        attempted.append(tmp_path)
        name = tmp_path.rsplit("/", 1)[-1]
        assert name.startswith(".") and not name.endswith(".parquet")
        with fs.open(tmp_path, "wb") as fh:
            fh.write(b"PAR1 half written")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(lake, "_write_frame", crashing_writer)
    result = _materialize(
        [make_raw_orders({DAY: orders_frame(DAY, n=9)})],
        root,
        partition_key=DAY,
        raise_on_error=False,
    )
    assert not result.success
    assert attempted
    assert data_file.read_bytes() == old_bytes
    assert_frame_equal(pl.read_parquet(data_file), old)
    monkeypatch.undo()

    # a hard crash (process killed) leaves its temp file and maybe stray files behind
    stale_tmp = data_file.parent / ".part-0.parquet.deadbeef.tmp"
    stale_tmp.write_bytes(b"PAR1 partial")
    stray = data_file.parent / "part-1.parquet"
    stray.write_bytes(old_bytes)
    # ...which globbing readers never see as data (only stray part-1 is visible)
    assert sorted(p.name for p in data_file.parent.glob("*.parquet")) == [
        "part-0.parquet",
        "part-1.parquet",
    ]

    new = orders_frame(DAY, n=2, offset=50)
    assert _materialize([make_raw_orders({DAY: new})], root, partition_key=DAY).success
    assert sorted(p.name for p in data_file.parent.iterdir()) == ["part-0.parquet"]
    assert_frame_equal(pl.read_parquet(data_file), new)


# ------------------------------------------------------------------------------------------
# (5) missing upstream partition


def test_missing_upstream_partition_error(root: Path):
    raw_orders = make_raw_orders()

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={"orders": dg.AssetIn(key=["raw", "orders"])},
    )
    def validated(orders: pl.DataFrame) -> pl.DataFrame:
        return orders

    with pytest.raises(Exception) as excinfo:
        _materialize([raw_orders, validated], root, partition_key=DAY, selection=[validated])
    err = _find_cause(excinfo.value, LakePartitionNotFoundError)
    assert err is not None, repr(excinfo.value)
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    assert "raw/orders" in msg and DAY in msg and "materialize it first" in msg.lower()

    with pytest.raises(FileNotFoundError, match="raw/orders"):
        read_partition(str(root), ["raw", "orders"], DAY)


def test_allow_missing_partitions_for_range(root: Path):
    assert _materialize([make_raw_orders()], root, partition_key="2026-03-16").success

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={
            "orders": dg.AssetIn(key=["raw", "orders"], metadata={"allow_missing_partitions": True})
        },
    )
    def tolerant(
        context: dg.AssetExecutionContext, orders: dict[str, pl.DataFrame]
    ) -> dict[str, pl.DataFrame]:
        assert list(orders) == ["2026-03-16"]
        return {k: pl.DataFrame({"n": [len(orders)]}) for k in context.partition_keys}

    result = _materialize(
        [make_raw_orders(), tolerant], root, tags=RANGE_TAGS, selection=[tolerant]
    )
    assert result.success


# ------------------------------------------------------------------------------------------
# (6) readable by DuckDB with hive partitioning


def test_duckdb_reads_hive_layout(root: Path):
    assert _materialize([make_raw_orders()], root, tags=RANGE_TAGS).success
    # a leftover temp file from a crashed writer must be invisible to *.parquet globs
    (root / "raw" / "orders" / "dt=2026-03-16" / ".part-0.parquet.abc.tmp").write_bytes(b"x")

    con = duckdb.connect()
    rows = con.execute(
        f"select dt, count(*), sum(amount) from read_parquet("
        f"'{root}/raw/orders/*/*.parquet', hive_partitioning=true) group by dt order by dt"
    ).fetchall()
    assert [str(r[0]) for r in rows] == RANGE_KEYS
    assert [r[1] for r in rows] == [3, 3, 3]
    assert rows[0][2] == Decimal("3706.50")

    # Polars sees the same hive column
    df = pl.scan_parquet(f"{root}/raw/orders/**/*.parquet", hive_partitioning=True).collect()
    assert "dt" in df.columns and df.height == 9


# ------------------------------------------------------------------------------------------
# (7) empty partitions keep their schema


def test_empty_partition_round_trip(root: Path):
    empty = orders_frame(DAY).clear()
    assert empty.height == 0
    seen: dict[str, object] = {}

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={"orders": dg.AssetIn(key=["raw", "orders"])},
    )
    def downstream_df(orders: pl.DataFrame) -> pl.DataFrame:
        seen["df"] = orders
        return orders

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={"orders": dg.AssetIn(key=["raw", "orders"])},
    )
    def downstream_lazy(orders: pl.LazyFrame) -> pl.LazyFrame:
        seen["lazy_schema"] = orders.collect_schema()
        return orders

    result = _materialize(
        [make_raw_orders({DAY: empty}), downstream_df, downstream_lazy], root, partition_key=DAY
    )
    assert result.success
    assert seen["df"].schema == empty.schema
    assert dict(seen["lazy_schema"]) == dict(empty.schema)
    back = read_partition(str(root), ["downstream_lazy"], DAY)
    assert back.height == 0 and back.schema == empty.schema
    meta = _materialization_metadata(result, dg.AssetKey(["downstream_lazy"]))
    assert meta["rows"] == 0 and meta["dagster/row_count"] == 0


# ------------------------------------------------------------------------------------------
# helpers


def test_path_helpers_reject_unsafe_segments(tmp_path: Path):
    with pytest.raises(ValueError):
        partition_path(str(tmp_path), ["raw", ".."], DAY)
    with pytest.raises(ValueError):
        partition_path(str(tmp_path), ["raw", "orders"], "2026/03/17")
    assert partition_path("s3://bucket/prefix", ["raw", "orders"], DAY) == (
        f"s3://bucket/prefix/raw/orders/dt={DAY}/part-0.parquet"
    )


# ------------------------------------------------------------------------------------------
# S3 (moto server): the same code path, configuration only


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch):
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="lake")
    try:
        yield endpoint
    finally:
        server.stop()


def test_s3_root(s3_endpoint: str):
    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    lake_root = "s3://lake/prefix"
    seen: dict[str, object] = {}

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=SINGLE_RUN,
        ins={"orders": dg.AssetIn(key=["raw", "orders"])},
    )
    def lazy_consumer(orders: pl.LazyFrame) -> pl.LazyFrame:
        seen["height"] = orders.collect().height
        return orders.select(pl.len().alias("n"))

    io_manager = ParquetLakeIOManager(root=lake_root, storage_options=options)
    for _ in range(2):  # second run replaces in place
        result = dg.materialize(
            [make_raw_orders(), lazy_consumer],
            partition_key=DAY,
            resources={"io_manager": io_manager},
        )
        assert result.success
    assert seen["height"] == 3

    fs = fsspec.filesystem("s3", **options)
    fs.invalidate_cache()
    assert fs.ls(f"lake/prefix/raw/orders/dt={DAY}") == [
        f"lake/prefix/raw/orders/dt={DAY}/part-0.parquet"
    ]
    assert_frame_equal(
        read_partition(lake_root, ["raw", "orders"], DAY, storage_options=options),
        orders_frame(DAY),
    )
    assert read_partition(lake_root, ["lazy_consumer"], DAY, options)["n"].to_list() == [3]
    meta = _materialization_metadata(result, dg.AssetKey(["raw", "orders"]))
    assert meta["path"] == f"s3://lake/prefix/raw/orders/dt={DAY}"


# ------------------------------------------------------------------------------------------
# the open day: atomic parts, the watermark in their names, replace and close (local + S3


def _parts_lifecycle(root: str, options: dict | None, names) -> None:
    """Two increments, a crash leftover, a replace of the open day, then the day close."""
    from datetime import UTC, datetime

    from orders_platform.storage.lake import write_partition
    from orders_platform.storage.lake_parts import LakePart

    key = ["raw", "orders"]
    t1, t2, t3 = (datetime(2026, 3, 17, h, tzinfo=UTC) for h in (9, 10, 11))
    first, second = orders_frame(DAY, n=3), orders_frame(DAY, n=2, offset=10)
    write_partition(root, key, DAY, LakePart(first, until=t1, append=True, open_day=True), options)
    write_partition(root, key, DAY, LakePart(second, until=t2, append=True, open_day=True), options)
    lake = ParquetLakeIOManager(root=root, storage_options=options or {})
    parts = lake.live_parts(key, DAY)
    assert [p.until for p, _ in parts] == [t1, t2]
    assert_frame_equal(read_partition(root, key, DAY, options), pl.concat([first, second]))
    assert len(names()) == 2

    # a full refresh of the open day: one base, stamped no older than the parts it replaces
    base = orders_frame(DAY, n=4, offset=20)
    write_partition(root, key, DAY, LakePart(base, until=t3, open_day=True), options)
    (only,) = names()
    assert only.startswith("part-20260317T110000000000Z-base-")
    assert_frame_equal(read_partition(root, key, DAY, options), base)

    # the day close: one full replace, stored under the closed-day name
    final = orders_frame(DAY, n=5, offset=30)
    write_partition(root, key, DAY, final, options)
    assert names() == ["part-0.parquet"]
    assert_frame_equal(read_partition(root, key, DAY, options), final)


def test_open_day_parts_local(root: Path):
    directory = root / "raw" / "orders" / f"dt={DAY}"

    def names() -> list[str]:
        return sorted(p.name for p in directory.iterdir())

    _parts_lifecycle(str(root), None, names)


def test_open_day_parts_s3(s3_endpoint: str):
    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    fs = fsspec.filesystem("s3", **options)

    def names() -> list[str]:
        fs.invalidate_cache()
        return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"lake/parts/raw/orders/dt={DAY}"))

    _parts_lifecycle("s3://lake/parts", options, names)
