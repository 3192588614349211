"""Parquet lake IO manager: Hive-style daily partitions, atomic replace (and atomic parts).

Layout (SPEC §8)::

    {root}/{asset key path}/dt={YYYY-MM-DD}/part-0.parquet   # daily-partitioned asset
    {root}/{asset key path}/part-0.parquet                   # unpartitioned asset

``root`` is a local path, a ``file://`` URL or any fsspec URL (``s3://bucket/prefix``); all
paths are built with fsspec, so moving the lake to S3 is configuration only.

A partition is replaced atomically: the new file is written to a hidden temporary object in
the same directory (``.part-0.parquet.<uuid>.tmp`` - it neither ends in ``.parquet`` nor is
visible to ``*.parquet`` globs) and then moved over ``part-0.parquet``. On a local disk the
move is an ``os.rename`` (readers see the old or the new complete file, never half of one);
on S3 the final key is created by one server-side copy, which is atomic per object. A crash
mid-write leaves the previous file intact; leftover temporary files and stray data files are
removed by the next successful write to that partition.

The open day grows by atomic *parts* instead (lake_parts.py: an output wrapped in
``LakePart(frame, until, append=True)``); readers read a partition's live parts.

Outputs may be a ``pl.DataFrame``, a ``pl.LazyFrame`` (streamed to disk with
``sink_parquet``) or, when one run materializes a partition range (single-run backfill), a
``dict`` mapping every partition key of the range to its frame.

Inputs are returned according to the input annotation: ``pl.LazyFrame`` -> a lazy scan over
the partition files; ``dict``/``dict[str, pl.DataFrame]`` -> ``{partition_key: DataFrame}``;
anything else -> one ``pl.DataFrame`` (a range is concatenated in partition-key order).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import fsspec
import polars as pl
from fsspec.implementations.local import LocalFileSystem
from pydantic import Field

from orders_platform.observability import table_schema
from orders_platform.storage.lake_parts import (
    LakePart,
    PartName,
    list_files,
    live_paths,
    part_file_name,
    read_files,
    read_footer,
    replacement_name,
)

__all__ = [
    "DATA_FILE_NAME",
    "PARTITION_COLUMN",
    "LakePartitionNotFoundError",
    "ParquetLakeIOManager",
    "partition_dir",
    "partition_path",
    "read_partition",
]

#: Name of the single data file of a closed partition (or of an unpartitioned asset).
DATA_FILE_NAME = "part-0.parquet"
#: Hive partition column name used in the directory layout (``dt=YYYY-MM-DD``).
PARTITION_COLUMN = "dt"

_TMP_PREFIX = f".{DATA_FILE_NAME}."
_TMP_SUFFIX = ".tmp"
_COMPRESSION = "zstd"


class LakePartitionNotFoundError(FileNotFoundError):
    """Raised when an asset partition is read from the lake before it was materialized."""


# --------------------------------------------------------------------------------------------
# paths


def _fsspec_options(root: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Storage options as fsspec expects them.

    ``region``/``region_name`` (flat, so Polars' object_store gets ``aws_region``) must reach
    s3fs inside ``client_kwargs``: passed flat, s3fs hands them to aiobotocore's session,
    which fails with ``TypeError: AioSession.__init__() got an unexpected keyword argument``.
    """
    options = dict(storage_options or {})
    region = options.pop("region_name", None) or options.pop("region", None)
    options.pop("region", None)
    if region and fsspec.core.split_protocol(str(root))[0] in ("s3", "s3a"):
        options["client_kwargs"] = {**options.get("client_kwargs", {}), "region_name": region}
    return options


def _split_root(root: str, storage_options: Mapping[str, Any] | None = None):
    """Return ``(fs, root_path)`` for a lake root URL/path (root_path without protocol)."""
    fs, path = fsspec.core.url_to_fs(str(root), **_fsspec_options(root, storage_options))
    return fs, path.rstrip("/") or path


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def _check_segment(segment: str, what: str) -> str:
    segment = str(segment)
    if not segment or segment in (".", "..") or "/" in segment or "\\" in segment:
        raise ValueError(f"Invalid {what} {segment!r} for a lake path")
    return segment


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def _dataset_dir(root_path: str, asset_key_path: Sequence[str]) -> str:
    if isinstance(asset_key_path, str):
        asset_key_path = asset_key_path.split("/")
    parts = [_check_segment(p, "asset key segment") for p in asset_key_path]
    if not parts:
        raise ValueError("asset_key_path must not be empty")
    return _join(root_path, *parts)


def _partition_dir(root_path: str, asset_key_path: Sequence[str], partition_key: str | None):
    base = _dataset_dir(root_path, asset_key_path)
    if partition_key is None:
        return base
    key = _check_segment(str(partition_key), "partition key")
    return _join(base, f"{PARTITION_COLUMN}={key}")


def _display(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Path as users should see it: a plain path locally, a full URL elsewhere."""
    return path if _is_local(fs) else fs.unstrip_protocol(path)


def partition_dir(
    root: str,
    asset_key_path: Sequence[str],
    partition_key: str | None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Directory holding one partition (``{root}/{key path}/dt={key}``), or the dataset dir
    (``{root}/{key path}``) when ``partition_key`` is None. Local roots give absolute paths,
    remote roots give URLs (``s3://...``)."""
    fs, root_path = _split_root(root, storage_options)
    return _display(fs, _partition_dir(root_path, asset_key_path, partition_key))


def partition_path(
    root: str,
    asset_key_path: Sequence[str],
    partition_key: str | None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Data file of one partition: ``{root}/{key path}/dt={key}/part-0.parquet``
    (``{root}/{key path}/part-0.parquet`` for ``partition_key=None``)."""
    fs, root_path = _split_root(root, storage_options)
    return _display(
        fs, _join(_partition_dir(root_path, asset_key_path, partition_key), DATA_FILE_NAME)
    )


# --------------------------------------------------------------------------------------------
# polars <-> fsspec plumbing

_S3FS_TO_OBJECT_STORE = {
    "key": "aws_access_key_id",
    "secret": "aws_secret_access_key",
    "token": "aws_session_token",
    "endpoint_url": "aws_endpoint_url",
    "region": "aws_region",
    "region_name": "aws_region",
}


def _polars_storage_options(
    fs: fsspec.AbstractFileSystem, storage_options: Mapping[str, Any] | None
) -> dict[str, str] | None:
    """Translate fsspec (s3fs-style) options to the object_store keys polars expects."""
    if _is_local(fs) or not storage_options:
        return None
    out: dict[str, str] = {}
    for key, value in storage_options.items():
        if not isinstance(value, str | int | float | bool):
            continue  # nested s3fs options (client_kwargs, config_kwargs) have no equivalent
        out[_S3FS_TO_OBJECT_STORE.get(key, key)] = str(value)
    endpoint = out.get("aws_endpoint_url", "")
    if endpoint.startswith("http://"):
        out.setdefault("aws_allow_http", "true")
    return out or None


def _source_for_polars(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return path if _is_local(fs) else fs.unstrip_protocol(path)


def _write_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    fs: fsspec.AbstractFileSystem,
    tmp_path: str,
    footer: Mapping[str, str] | None = None,
) -> None:
    """Write ``frame`` as one zstd Parquet file (with statistics) at ``tmp_path`` on ``fs``.

    Module-level so tests can simulate a crash mid-write.
    """
    meta = dict(footer) if footer else None
    if _is_local(fs):
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(
                tmp_path,
                compression=_COMPRESSION,
                statistics=True,
                sync_on_close="all",
                metadata=meta,
            )
        else:
            with open(tmp_path, "wb") as fh:
                frame.write_parquet(fh, compression=_COMPRESSION, statistics=True, metadata=meta)
                fh.flush()
                os.fsync(fh.fileno())
        return
    if isinstance(frame, pl.LazyFrame):
        # Stream to a local spool file (memory-bounded), then upload it.
        fd, spool = tempfile.mkstemp(prefix="lake-", suffix=_TMP_SUFFIX)
        os.close(fd)
        try:
            frame.sink_parquet(spool, compression=_COMPRESSION, statistics=True, metadata=meta)
            fs.put_file(spool, tmp_path)
        finally:
            with contextlib.suppress(OSError):
                os.remove(spool)
        return
    with fs.open(tmp_path, "wb") as fh:
        frame.write_parquet(fh, compression=_COMPRESSION, statistics=True, metadata=meta)


def _num_rows(fs: fsspec.AbstractFileSystem, path: str) -> int:
    import pyarrow.parquet as pq  # (only for lazy frames: ~0.3 s to import, with numpy)

    with fs.open(path, "rb") as fh:
        return int(pq.ParquetFile(fh).metadata.num_rows)


def _is_tmp_name(name: str) -> bool:
    return name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)


def _cleanup_dir(fs: fsspec.AbstractFileSystem, directory: str, keep: str) -> list[str]:
    """Remove stray data files and leftover temp files beside `keep` (not recursive)."""
    removed: list[str] = []
    for name, path in list_files(fs, directory).items():
        if name == keep:
            continue
        if name.endswith(".parquet") or _is_tmp_name(name):
            with contextlib.suppress(FileNotFoundError):
                fs.rm(path)
            removed.append(name)
    return removed


def _write_atomic(
    fs: fsspec.AbstractFileSystem, directory: str, frame: pl.DataFrame | pl.LazyFrame | LakePart
) -> tuple[str, int, list[str]]:
    """Atomically replace the partition in `directory` (``part-0.parquet``, or a new base
    part once it held parts), or add one increment part (`LakePart` with ``append``);
    returns (path, rows, removed)."""
    part = frame if isinstance(frame, LakePart) else LakePart(frame)
    frame = part.frame
    fs.makedirs(directory, exist_ok=True)
    token = uuid.uuid4().hex
    if part.append:
        if part.until is None:
            raise ValueError("an appended lake part needs the end of its window (until)")
        name = part_file_name(part.until, base=False, token=token)
    else:
        name = replacement_name(
            list_files(fs, directory), part.until, token, open_day=part.open_day
        )
    final = _join(directory, name)
    tmp = _join(directory, f"{_TMP_PREFIX}{token}{_TMP_SUFFIX}")
    try:
        if part.footer:
            _write_frame(frame, fs, tmp, part.footer)
        else:
            _write_frame(frame, fs, tmp)
        rows = frame.height if isinstance(frame, pl.DataFrame) else _num_rows(fs, tmp)
        fs.mv(tmp, final)
    except BaseException:
        # Best effort: a hard crash leaves the temp file, which the next write removes.
        with contextlib.suppress(Exception):
            if fs.exists(tmp):
                fs.rm(tmp)
        raise
    _sync_dir(fs, directory)
    removed = [] if part.append else _cleanup_dir(fs, directory, keep=name)
    if not part.append and not part.open_day and name != DATA_FILE_NAME:
        # The day has closed: its single base takes the closed-day name. Until the old
        # name is gone the stamped base is the newer of the two, so readers see one copy.
        fs.mv(final, _join(directory, DATA_FILE_NAME))
        _sync_dir(fs, directory)
        final = _join(directory, DATA_FILE_NAME)
    return final, rows, removed


def _sync_dir(fs: fsspec.AbstractFileSystem, directory: str) -> None:
    """Make a rename durable (local disks; object stores commit on write)."""
    if _is_local(fs):
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _scan_files(
    fs: fsspec.AbstractFileSystem, paths: Sequence[str], storage_options: Mapping[str, Any] | None
) -> pl.LazyFrame:
    opts = _polars_storage_options(fs, storage_options)
    scans = [
        pl.scan_parquet(_source_for_polars(fs, p), hive_partitioning=False, storage_options=opts)
        for p in paths
    ]
    if len(scans) == 1:
        return scans[0]
    # Per-file scans concatenated lazily tolerate schema evolution between days.
    return pl.concat(scans, how="diagonal_relaxed")


def read_partition(
    root: str,
    asset_key_path: Sequence[str],
    partition_key: str | None,
    storage_options: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Read one partition (or an unpartitioned asset when ``partition_key`` is None): all
    its live parts, oldest first."""
    fs, root_path = _split_root(root, storage_options)
    directory = _partition_dir(root_path, asset_key_path, partition_key)
    paths = [p for _, p in live_paths(fs, directory)]
    if not paths:
        raise _not_found(
            "/".join(asset_key_path), partition_key, _display(fs, _join(directory, DATA_FILE_NAME))
        )
    return read_files(fs, paths, storage_options)


def write_partition(
    root: str,
    asset_key_path: Sequence[str],
    partition_key: str | None,
    frame: pl.DataFrame | pl.LazyFrame | LakePart,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Atomically replace one partition outside Dagster (repairs, benchmarks); the same
    write path as the IO manager. Returns the data file's path."""
    fs, root_path = _split_root(root, storage_options)
    path, _, _ = _write_atomic(fs, _partition_dir(root_path, asset_key_path, partition_key), frame)
    return _display(fs, path)


def _not_found(asset: str, partition_key: str | None, path: str) -> LakePartitionNotFoundError:
    what = f"partition {partition_key!r} of asset '{asset}'" if partition_key else f"'{asset}'"
    return LakePartitionNotFoundError(
        f"No data in the lake for {what}: {path} does not exist. Materialize it first."
    )


# --------------------------------------------------------------------------------------------
# input type dispatch


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_dict_type(tp: Any) -> bool:
    tp = _strip_optional(tp)
    if tp in (dict, typing.Dict, Mapping, typing.Mapping):  # noqa: UP006
        return True
    return typing.get_origin(tp) in (dict, Mapping, typing.Mapping)


def _dict_value_type(tp: Any) -> Any:
    args = typing.get_args(_strip_optional(tp))
    return args[1] if len(args) == 2 else Any


def _is_lazy_type(tp: Any) -> bool:
    return _strip_optional(tp) is pl.LazyFrame


# --------------------------------------------------------------------------------------------
# the IO manager


class ParquetLakeIOManager(dg.ConfigurableIOManager):
    """Stores asset outputs as Hive-partitioned Parquet: ``{root}/{key}/dt={day}/part-0.parquet``.

    Input metadata ``allow_missing_partitions=True`` skips missing partitions when loading a
    range instead of raising.
    """

    root: str = Field(
        description="Lake root: a local path, a file:// URL or an fsspec URL such as "
        "s3://bucket/prefix."
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="fsspec storage options (e.g. endpoint_url, key, secret for S3).",
    )

    # -- helpers ---------------------------------------------------------------------------

    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return _split_root(self.root, self.storage_options)

    @staticmethod
    def _key_path(context: dg.InputContext | dg.OutputContext) -> list[str]:
        if context.has_asset_key:
            return list(context.asset_key.path)
        # Plain op outputs (not used by this project's assets): run-scoped location.
        return ["_op_outputs", *context.get_identifier()]

    def dataset_path(self, asset_key_path: Sequence[str]) -> str:
        fs, root_path = self._fs()
        return _display(fs, _dataset_dir(root_path, asset_key_path))

    def partition_path(self, asset_key_path: Sequence[str], partition_key: str | None) -> str:
        return partition_path(self.root, asset_key_path, partition_key, self.storage_options)

    def read_partition(
        self, asset_key_path: Sequence[str], partition_key: str | None
    ) -> pl.DataFrame:
        return read_partition(self.root, asset_key_path, partition_key, self.storage_options)

    def live_parts(
        self, asset_key_path: Sequence[str], partition_key: str
    ) -> list[tuple[PartName, str]]:
        """(part, path) of the live parts of a partition, oldest first (one listing)."""
        fs, root_path = self._fs()
        return live_paths(fs, _partition_dir(root_path, asset_key_path, partition_key))

    def read_paths(self, paths: Sequence[str]) -> pl.DataFrame:
        fs, _ = self._fs()
        return read_files(fs, paths, self.storage_options)

    def scan_paths(self, paths: Sequence[str]) -> pl.LazyFrame:
        fs, _ = self._fs()
        return _scan_files(fs, paths, self.storage_options)

    def read_footer(self, path: str) -> dict[str, str]:
        fs, _ = self._fs()
        return read_footer(fs, path)

    # -- output ----------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        key_path = self._key_path(context)
        asset_label = "/".join(key_path)
        if obj is None:
            raise TypeError(
                f"Asset '{asset_label}' returned None, but it is stored by ParquetLakeIOManager. "
                "Return a polars DataFrame/LazyFrame (or a dict of them per partition key), "
                "or annotate the return type as None if the asset writes its data itself."
            )

        fs, root_path = self._fs()
        partitioned = context.has_asset_key and context.has_asset_partitions
        keys: list[str | None] = list(context.asset_partition_keys) if partitioned else [None]
        frames = self._frames_by_partition(asset_label, keys, obj)

        written: dict[str | None, tuple[str, int]] = {}
        schema = None
        for key in keys:
            frame = frames[key]
            directory = _partition_dir(root_path, key_path, key)
            path, rows, removed = _write_atomic(fs, directory, frame)
            written[key] = (directory, rows)
            if isinstance(frame, LakePart):
                frame = frame.frame
            if schema is None:
                schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
            if removed:
                context.log.info(f"Removed stray files in {_display(fs, directory)}: {removed}")
            context.log.debug(f"Wrote {rows} rows to {_display(fs, path)}")

        total_rows = sum(rows for _, rows in written.values())
        if len(keys) == 1:
            path = _display(fs, written[keys[0]][0])
        else:
            path = _display(fs, _dataset_dir(root_path, key_path))
        metadata: dict[str, Any] = {
            "path": dg.MetadataValue.path(path),
            "rows": total_rows,
            "dagster/row_count": total_rows,
        }
        if partitioned:
            metadata["partitions"] = len(keys)
        if len(keys) > 1:
            metadata["rows_by_partition"] = dg.MetadataValue.json(
                {k: rows for k, (_, rows) in written.items()}
            )
        if schema is not None:
            metadata["dagster/column_schema"] = table_schema(schema)
        context.add_output_metadata(metadata)

    @staticmethod
    def _frames_by_partition(
        asset_label: str, keys: list[str | None], obj: Any
    ) -> dict[str | None, pl.DataFrame | pl.LazyFrame]:
        frame_types = (pl.DataFrame, pl.LazyFrame, LakePart)
        if isinstance(obj, frame_types):
            if len(keys) > 1:
                raise TypeError(
                    f"Asset '{asset_label}' is materializing {len(keys)} partitions "
                    f"({keys[0]}..{keys[-1]}) in one run but returned a single "
                    f"{type(obj).__name__}. Return a dict mapping every partition key of the "
                    "range to its frame."
                )
            return {keys[0]: obj}
        if isinstance(obj, Mapping):
            if keys == [None]:
                raise TypeError(
                    f"Asset '{asset_label}' is not partitioned but returned a dict; "
                    "return a single polars DataFrame or LazyFrame."
                )
            missing = [k for k in keys if k not in obj]
            extra = sorted(str(k) for k in obj if k not in keys)
            if missing or extra:
                raise ValueError(
                    f"Asset '{asset_label}' returned a dict whose keys do not match the "
                    f"partitions of this run ({len(keys)}: {keys[0]}..{keys[-1]}). "
                    f"Missing: {missing[:10]}{'...' if len(missing) > 10 else ''}; "
                    f"unexpected: {extra[:10]}{'...' if len(extra) > 10 else ''}."
                )
            bad = {k: type(obj[k]).__name__ for k in keys if not isinstance(obj[k], frame_types)}
            if bad:
                raise TypeError(
                    f"Asset '{asset_label}' returned non-frame values for partitions {bad}; "
                    "expected polars DataFrame or LazyFrame."
                )
            return {k: obj[k] for k in keys}
        raise TypeError(
            f"ParquetLakeIOManager cannot store {type(obj).__name__} for asset '{asset_label}'; "
            "return a polars DataFrame, LazyFrame or dict[partition_key, frame]."
        )

    # -- input -----------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> Any:
        key_path = self._key_path(context)
        asset_label = "/".join(key_path)
        fs, root_path = self._fs()
        typing_type = context.dagster_type.typing_type if context.dagster_type else Any
        want_dict = _is_dict_type(typing_type)
        want_lazy = _is_lazy_type(typing_type) or (
            want_dict and _is_lazy_type(_dict_value_type(typing_type))
        )

        partitioned = context.has_asset_key and context.has_asset_partitions
        keys: list[str | None] = list(context.asset_partition_keys) if partitioned else [None]
        if want_dict and not partitioned:
            raise TypeError(
                f"Input '{context.name}' is annotated as a dict, but asset '{asset_label}' "
                "is not partitioned; annotate it as pl.DataFrame or pl.LazyFrame."
            )
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions"))

        paths: dict[str | None, list[str]] = {}
        skipped: list[str | None] = []
        for key in keys:
            directory = _partition_dir(root_path, key_path, key)
            live = [p for _, p in live_paths(fs, directory)]
            if not live:
                if allow_missing and partitioned:
                    skipped.append(key)
                    continue
                raise _not_found(asset_label, key, _display(fs, _join(directory, DATA_FILE_NAME)))
            paths[key] = live
        if skipped:
            context.log.warning(
                f"{len(skipped)} of {len(keys)} partitions of '{asset_label}' are not in the lake "
                f"and were skipped (allow_missing_partitions=True): {skipped[:5]}"
                f"{'...' if len(skipped) > 5 else ''}"
            )

        if want_dict:
            if want_lazy:
                return {k: _scan_files(fs, p, self.storage_options) for k, p in paths.items()}
            return {k: read_files(fs, p, self.storage_options) for k, p in paths.items()}

        if not paths:
            raise _not_found(
                asset_label,
                f"{keys[0]}..{keys[-1]}" if len(keys) > 1 else keys[0],
                _display(fs, _dataset_dir(root_path, key_path)),
            )
        every = [p for day in paths.values() for p in day]
        if want_lazy:
            return _scan_files(fs, every, self.storage_options)
        return read_files(fs, every, self.storage_options)
