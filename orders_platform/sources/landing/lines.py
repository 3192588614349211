"""Physical lines of a landing file: opening (gzip), buffering, numbering, raw text.

Every reader works on physical lines split on LF (a CRLF's CR stays with the line for the
CSV parser); a UTF-8 BOM is removed from line 1; a line longer than `max_line_bytes` is
truncated and the rest of it skipped, never held in memory.
"""

from __future__ import annotations

import gc
import gzip
import io
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

RAW_LINE_MAX_CHARS = 65_536

BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20


@dataclass(slots=True)
class Line:
    number: int
    data: bytes  # raw bytes incl. the line terminator (truncated when too long)
    text: str  # decoded (surrogateescape when bad) for the parser
    bad_encoding: bool
    too_long: bool

    def raw_text(self) -> str:
        text = self.data.decode("utf-8", "replace").rstrip("\r\n")
        if self.too_long:
            text = text[:RAW_LINE_MAX_CHARS] + " …[truncated: line too long]"
        elif len(text) > RAW_LINE_MAX_CHARS:
            text = text[:RAW_LINE_MAX_CHARS] + " …[truncated]"
        return text


def make_line(number: int, data: bytes, too_long: bool) -> Line:
    try:
        return Line(number, data, data.decode("utf-8"), False, too_long)
    except UnicodeDecodeError:
        return Line(number, data, data.decode("utf-8", "surrogateescape"), True, too_long)


def as_lines(block: Sequence[bytes], start: int, too_long: set[int]) -> list[Line]:
    return [make_line(start + i, d, (start + i) in too_long) for i, d in enumerate(block)]


def raw_text(data: bytes) -> str:
    text = data.decode("utf-8", "replace").rstrip("\r\n")
    return text if len(text) <= RAW_LINE_MAX_CHARS else text[:RAW_LINE_MAX_CHARS] + " …[truncated]"


def joined_raw(lines: Sequence[Line]) -> str:
    if len(lines) == 1:
        return lines[0].raw_text()
    text = "\n".join(line.raw_text() for line in lines)
    return text if len(text) <= RAW_LINE_MAX_CHARS else text[:RAW_LINE_MAX_CHARS] + " …[truncated]"


class ByteReader:
    """A binary stream read either as whole-line byte blocks (for the native parser) or
    line by line (for the careful one), from one buffer so both see the same position."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self._eof = False

    def _fill(self, want: int) -> None:
        """Buffer at least `want` unread bytes, unless the stream ends first."""
        if len(self._buf) - self._pos >= want or self._eof:
            return
        parts = [self._buf[self._pos :]]
        have = len(parts[0])
        while have < want:
            data = self._stream.read(max(want - have, READ_BUFFER))
            if not data:
                self._eof = True
                break
            parts.append(data)
            have += len(data)
        self._buf, self._pos = b"".join(parts), 0

    def at_end(self) -> bool:
        self._fill(1)
        return self._pos >= len(self._buf)

    def read_lines(self, max_bytes: int) -> bytes:
        """Whole lines, at most `max_bytes` bytes of them (the last line of the file may
        lack its LF); empty when the next line alone is longer or the stream has ended."""
        self._fill(max_bytes + 1)
        pos, buf = self._pos, self._buf
        end = pos + max_bytes
        if end >= len(buf) and self._eof:
            end = len(buf)
        else:
            cut = buf.rfind(b"\n", pos, end)
            if cut < 0:
                return b""
            end = cut + 1
        self._pos = end
        return buf[pos:end]

    def unread(self, n: int) -> None:
        """Give back the last `n` bytes returned by `read_lines`."""
        self._pos -= n

    def readline(self, limit: int) -> bytes:
        """Like `BufferedReader.readline(limit)`."""
        pos = self._pos
        cut = self._buf.find(b"\n", pos, pos + limit)
        if cut < 0:
            self._fill(limit)
            pos = self._pos
            cut = self._buf.find(b"\n", pos, pos + limit)
        end = cut + 1 if cut >= 0 else min(len(self._buf), pos + limit)
        self._pos = end
        return self._buf[pos:end]


class LineSource:
    """Physical lines of a binary stream (anything with ``readline(limit)``), numbered
    from 1. `block(n)` returns up to n raw lines; iterating yields decoded `Line` objects
    (each decoded on its own: one bad byte spoils one line). `number` counts the lines
    read so far; a caller consuming lines another way advances it."""

    def __init__(self, stream: Any, max_line_bytes: int) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self.number = 0
        self.exhausted = False

    def _skip_rest_of_line(self) -> None:
        while True:
            rest = self._stream.readline(READ_BUFFER)
            if not rest or rest.endswith(b"\n"):
                return

    def block(self, n: int) -> tuple[list[bytes], set[int]]:
        """Up to `n` raw lines and the line numbers among them that were too long."""
        readline, limit, maximum = self._stream.readline, self._max + 1, self._max
        out: list[bytes] = []
        too_long: set[int] = set()
        for _ in range(n):
            data = readline(limit)
            if not data:
                self.exhausted = True
                break
            if len(data) > maximum and not data.endswith(b"\n"):
                too_long.add(self.number + len(out) + 1)
                self._skip_rest_of_line()
            out.append(data)
        if out and self.number == 0 and out[0].startswith(BOM):
            out[0] = out[0][len(BOM) :]
        self.number += len(out)
        return out, too_long

    def __iter__(self) -> LineSource:
        return self

    def __next__(self) -> Line:
        lines, too_long = self.block(1)
        if not lines:
            raise StopIteration
        return make_line(self.number, lines[0], bool(too_long))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one bounded block is parsed: its lists
    and dicts hold only strings (no cycles), but keeping thousands alive makes the
    collector rescan them over and over (~40 % of the parse time). Never held across a
    yield."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def open_file(fs: fsspec.AbstractFileSystem, path: str, name: str) -> Iterator[BinaryIO]:
    """A buffered binary stream over the file (decompressed for ``.gz``), closed on exit."""
    with ExitStack() as stack:
        if isinstance(fs, LocalFileSystem):
            raw: Any = stack.enter_context(open(path, "rb", buffering=READ_BUFFER))
        else:
            remote = stack.enter_context(fs.open(path, "rb"))
            raw = stack.enter_context(io.BufferedReader(remote, buffer_size=READ_BUFFER))
        if name.lower().endswith(".gz"):
            raw = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        yield raw
