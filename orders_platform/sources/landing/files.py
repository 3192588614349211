"""Which files of a landing day are read: format by name, and each file's checksum.

`select_files` is the one place that decides; the source then reads `LandingDay.to_read`
in order. A file is ignored (and listed) when its name starts with ``.`` or ``_``
(in-flight uploads, ``_SUCCESS`` markers) or has another extension; a file whose SHA-256
equals an earlier file's of the same day (names in sorted order) is skipped and listed
with the name of the file it duplicates.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import Any

import fsspec

_HASH_BLOCK = 8 << 20
_CSV_SUFFIXES = (".csv", ".csv.gz")
_NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")


def file_format(name: str) -> str | None:
    """ "csv", "ndjson" or None (not a landing data file) for a file name."""
    lower = name.lower()
    if lower.endswith(_CSV_SUFFIXES):
        return "csv"
    if lower.endswith(_NDJSON_SUFFIXES):
        return "ndjson"
    return None


@dataclass(frozen=True)
class LandingFile:
    path: str  # as the filesystem names it
    name: str
    format: str
    sha256: str
    bytes: int


@dataclass
class LandingDay:
    to_read: list[LandingFile] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # duplicates, with why
    ignored: list[str] = field(default_factory=list)


def checksum(fs: fsspec.AbstractFileSystem, path: str) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in bounded blocks."""
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def select_files(fs: fsspec.AbstractFileSystem, directory: str) -> LandingDay:
    """The day directory's files, in name order, sorted into read / skipped / ignored."""
    day = LandingDay()
    entries = sorted(
        (e for e in fs.ls(directory, detail=True) if e.get("type") == "file"),
        key=lambda e: posixpath.basename(e["name"].rstrip("/")),
    )
    seen: dict[str, str] = {}
    for entry in entries:
        path = entry["name"]
        name = posixpath.basename(path.rstrip("/"))
        fmt = file_format(name)
        if fmt is None or name.startswith((".", "_")):
            day.ignored.append(name)
            continue
        digest, size = checksum(fs, path)
        if digest in seen:
            day.skipped.append(
                {"name": name, "sha256": digest, "bytes": size, "duplicate_of": seen[digest]}
            )
            continue
        seen[digest] = name
        day.to_read.append(LandingFile(path, name, fmt, digest, size))
    return day
