"""Reading one ``COPY … TO STDOUT (FORMAT csv)`` as a stream of Polars batches.

libpq hands COPY data over one row at a time and psycopg2's ``copy_expert`` writes each row
to a file object, blocking until the statement ends. So ``copy_expert`` runs in a worker
thread whose writer gathers ``batch_rows`` rows into one buffer and hands it over through
a one-slot queue; the caller's thread parses each buffer with Polars' CSV reader (all
columns strings; an unquoted empty field is NULL, ``""`` the empty string). Memory is
bounded by about three batches whatever the size of the sub-window: when the consumer is
slow the writer waits, libpq stops reading and the server waits on the socket.

When the consumer stops early (the generator is closed), the server is asked to cancel
the statement and the writer raises at its next batch, psycopg2 abandons the COPY and the
connection stays usable (the caller rolls back and closes it). A failure of the statement
(timeout, lost connection) is re-raised in the caller's thread as psycopg2 raised it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence

import polars as pl
import psycopg2
import psycopg2.extensions

_POLL_SECONDS = 0.05


class _Stopped(Exception):
    """Raised inside the writer when the consumer went away."""


class _RowBatcher:
    """The file object psycopg2 writes COPY rows to (one `write` per row)."""

    def __init__(self, batch_rows: int, out: queue.Queue, stop: threading.Event) -> None:
        self._rows: list[bytes] = []
        self._batch_rows = batch_rows
        self._out = out
        self._stop = stop

    def write(self, data: bytes) -> int:
        rows = self._rows
        rows.append(data)
        if len(rows) >= self._batch_rows:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._rows:
            buffer, self._rows = b"".join(self._rows), []
            self.put(("rows", buffer))

    def put(self, item: tuple) -> None:
        while not self._stop.is_set():
            try:
                self._out.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue
        raise _Stopped


def parse_csv(buffer: bytes, columns: Sequence[str]) -> pl.DataFrame:
    """PostgreSQL CSV rows (no header) as a frame of string columns, NULL kept apart from
    the empty string."""
    return pl.read_csv(
        buffer,
        has_header=False,
        schema={c: pl.String for c in columns},
        quote_char='"',
        encoding="utf8",
    )


def copy_batches(
    conn: psycopg2.extensions.connection,
    statement: str,
    columns: Sequence[str],
    batch_rows: int,
) -> Iterator[pl.DataFrame]:
    """The rows of `statement` (a ``COPY … TO STDOUT (FORMAT csv)``) in order, as frames of
    at most `batch_rows` rows."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    batcher = _RowBatcher(batch_rows, handoff, stop)

    def run() -> None:
        try:
            with conn.cursor() as cur:
                cur.copy_expert(statement, batcher)
            batcher.flush()
            batcher.put(("done", None))
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the caller's thread
            with contextlib.suppress(_Stopped):
                batcher.put(("error", exc))

    worker = threading.Thread(target=run, name="orders-platform-pg-copy", daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            kind, payload = handoff.get()
            if kind == "rows":
                yield parse_csv(payload, columns)
            elif kind == "error":
                finished = True
                raise payload
            else:
                finished = True
                return
    finally:
        stop.set()
        if not finished:
            # Abandoned mid-statement: ask the server to stop now rather than waiting for
            # the writer's next batch (a slow sort could take until statement_timeout).
            # cancel() is the one psycopg2 call meant for another thread.
            with contextlib.suppress(psycopg2.Error):
                conn.cancel()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=_POLL_SECONDS)
        worker.join()


def drop_adjacent_duplicates(
    frame: pl.DataFrame, previous_row: tuple | None
) -> tuple[pl.DataFrame, int]:
    """`frame` without rows identical (in every column) to the row before them — the
    previous batch's last row (`previous_row`) for the first one — and how many went.

    Rows arrive ordered by the window column then every value, so exact duplicates are
    adjacent. A row hash picks the candidates (a row equal to its predecessor has its
    hash); only those few are compared in full, so a hash collision never drops a row."""
    if frame.height == 0:
        return frame, 0
    hashes = frame.hash_rows()
    candidates = hashes.eq(hashes.shift(1)).fill_null(False).arg_true()
    duplicate: list[int] = []
    if previous_row is not None and frame.row(0) == previous_row:
        duplicate.append(0)
    if len(candidates):
        here = frame[candidates]
        before = frame[candidates - 1]
        same = pl.DataFrame(
            [here.get_column(c).eq_missing(before.get_column(c)) for c in frame.columns]
        ).select(pl.all_horizontal(pl.all()))
        duplicate.extend(candidates.filter(same.to_series()).to_list())
    if not duplicate:
        return frame, 0
    keep = pl.repeat(True, frame.height, eager=True).scatter(duplicate, False)
    return frame.filter(keep), len(duplicate)
