"""Parts of a lake partition: how an open day grows by atomic files and is replaced whole.

A closed day is one file, ``part-0.parquet`` (lake.py). The open day (SPEC §10) grows by one
*part* per intraday tick, and a full refresh or the day close replaces it. Each part is one
Parquet file written atomically (temporary name, then moved into place), whose name says
what it is::

    part-20260317T141500000000Z-inc-1a2b3c4d5e6f.parquet    an increment
    part-20260317T120000000000Z-base-9f8e7d6c5b4a.parquet   a base (a full extract)

The stamp is the end of the source window the part covers (exclusive, UTC): the partition's
**watermark** is the largest stamp of its live parts, so it is committed by the same atomic
move that commits the rows. A tick killed before the move leaves only a hidden temporary
file (never read, removed by the next replace): the watermark did not move and the next
tick reads the same window again.

Which files are live (read): the newest base (``part-0.parquet`` counts as a base older
than every stamped file) and the increments stamped after it. Replacing a partition is one
atomic step as well: the new base is written under a stamp no older than any existing part,
which makes every older file dead at once; dead files are then deleted (a crash in between
leaves garbage that no reader sees and the next replace removes).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import fsspec
import polars as pl
from fsspec.implementations.local import LocalFileSystem

BASE_FILE_NAME = "part-0.parquet"
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_PART = re.compile(
    r"^part-(?P<stamp>\d{8}T\d{12}Z)-(?P<kind>base|inc)-(?P<token>[0-9a-z]+)\.parquet$"
)

#: Footer key holding the JSON list of landing-file checksums a part was read from.
FOOTER_FILES_KEY = "orders_platform.source_files"


@dataclass(frozen=True)
class LakePart:
    """An output value for the lake IO manager that says how to store the frame.

    ``append=True`` adds the frame as an increment beside the live parts; otherwise it
    replaces the partition: with a stamped base while the day is open (``open_day``), with
    ``part-0.parquet`` once it has closed. ``until`` is the end of the source window the rows
    cover (the watermark it commits); ``footer`` is stored as Parquet key-value metadata.
    """

    frame: pl.DataFrame | pl.LazyFrame
    until: datetime | None = None
    append: bool = False
    open_day: bool = False
    footer: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class PartName:
    stamp: str  # "" for part-0.parquet
    rank: int  # 1 base, 0 increment: a base and an increment of the same stamp -> base newer
    token: str
    name: str

    @property
    def is_base(self) -> bool:
        return self.rank == 1

    @property
    def until(self) -> datetime | None:
        if not self.stamp:
            return None
        return datetime.strptime(self.stamp, _STAMP_FORMAT).replace(tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP_FORMAT)


def part_file_name(until: datetime | str, *, base: bool, token: str | None = None) -> str:
    text = until if isinstance(until, str) else stamp(until)
    kind = "base" if base else "inc"
    return f"part-{text}-{kind}-{(token or uuid.uuid4().hex)[:12].lower()}.parquet"


def parse_part(name: str) -> PartName | None:
    if name == BASE_FILE_NAME:
        return PartName("", 1, "", name)
    m = _PART.match(name)
    if m is None:
        return None
    return PartName(m["stamp"], 1 if m["kind"] == "base" else 0, m["token"], name)


def live_parts(names: Iterable[str]) -> list[PartName]:
    """The parts a reader must read, oldest first (see the module docstring)."""
    parts = sorted(p for p in map(parse_part, names) if p is not None)
    bases = [p for p in parts if p.is_base]
    if not bases:
        return parts
    newest = bases[-1]
    return [newest, *(p for p in parts if not p.is_base and p > newest)]


def watermark(parts: Iterable[PartName]) -> datetime | None:
    """The end of the newest window the parts cover (None: only part-0.parquet or nothing)."""
    stamps = [p.stamp for p in parts if p.stamp]
    return datetime.strptime(max(stamps), _STAMP_FORMAT).replace(tzinfo=UTC) if stamps else None


def replacement_name(
    existing: Iterable[str], until: datetime | None, token: str, *, open_day: bool
) -> str:
    """File name for a new base replacing `existing`: ``part-0.parquet`` for a closed day
    that never held stamped parts, else a base stamped no older than any existing part (a
    closed day's is then renamed to ``part-0.parquet`` once the older parts are gone)."""
    stamps = [p.stamp for p in map(parse_part, existing) if p is not None and p.stamp]
    if until is not None:
        stamps.append(stamp(until))
    if not stamps or (not open_day and len(stamps) == (until is not None)):
        return BASE_FILE_NAME
    return part_file_name(max(stamps), base=True, token=token)


# --------------------------------------------------------------------------------------------
# listing and reading a partition's parts (fsspec: local disk or object store)


def list_files(fs: fsspec.AbstractFileSystem, directory: str) -> dict[str, str]:
    """{file name: path} of the files directly in `directory` (fresh listing)."""
    fs.invalidate_cache(directory)
    try:
        entries = fs.ls(directory, detail=True)
    except FileNotFoundError:
        return {}
    out = {}
    for entry in entries:
        if entry.get("type") == "file":
            path = entry["name"].rstrip("/")
            out[path.rsplit("/", 1)[-1]] = path
    return out


def live_paths(fs: fsspec.AbstractFileSystem, directory: str) -> list[tuple[PartName, str]]:
    """The live parts of a partition directory (lake_parts.live_parts), oldest first."""
    names = list_files(fs, directory)
    return [(part, names[part.name]) for part in live_parts(names)]


def read_file(
    fs: fsspec.AbstractFileSystem, path: str, storage_options: Mapping[str, Any] | None
) -> pl.DataFrame:
    if isinstance(fs, LocalFileSystem):
        return pl.read_parquet(path, hive_partitioning=False)
    with fs.open(path, "rb") as fh:
        return pl.read_parquet(fh, hive_partitioning=False)


def read_files(
    fs: fsspec.AbstractFileSystem, paths: Sequence[str], storage_options: Mapping[str, Any] | None
) -> pl.DataFrame:
    frames = [read_file(fs, p, storage_options) for p in paths]
    if len(frames) == 1:
        return frames[0]
    # Parts of one day may differ in optional columns (a landing part with malformed rows).
    return pl.concat(frames, how="diagonal_relaxed")


def read_footer(fs: fsspec.AbstractFileSystem, path: str) -> dict[str, str]:
    """The Parquet key-value metadata of one file (only its footer is read)."""
    import pyarrow.parquet as pq  # ~0.3 s to import: only where footers are read

    with fs.open(path, "rb") as fh:
        meta = pq.ParquetFile(fh).metadata.metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if not k.startswith(b"ARROW:")}
