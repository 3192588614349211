"""The interface every raw source implements (demo, api, postgres, landing).

A source yields the day's raw rows as a stream of Polars batches so that no source ever
has to hold a whole day as Python objects. Batches carry the SPEC §3 source columns
(orders) or user_id, event_timestamp, event_type, order_id (events) as strings (nullable),
exactly as received; lineage columns (_source, _extracted_at, _run_id) are added by the raw
assets.

Rows a source cannot even parse into columns (a malformed landing-file line) are not
dropped: the source yields them as rows whose `_malformed` column holds the reason and
whose other columns hold what could be read (see `MALFORMED_COLUMN`); validation routes
them to the dead-letter asset.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from dagster import ConfigurableResource
from pydantic import PrivateAttr

from orders_platform.transforms.schema import MALFORMED_COLUMN  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Increment:
    """What an intraday tick asks a source for (SPEC §10).

    Window sources (demo, postgres, api) return the day's records with
    ``since <= updated_at < until`` (``since`` already includes the overlap before the
    watermark). File sources (landing) return the day's files whose checksum is not in
    `seen_files` and report the checksums they read in their stats (``files_read``).
    """

    start: datetime  # the watermark (or the day's start on its first tick)
    until: datetime  # the tick's now
    overlap: timedelta = timedelta(0)  # re-read before `start`: late commits are not lost
    seen_files: frozenset[str] = frozenset()

    @property
    def since(self) -> datetime:
        return self.start - self.overlap


class RawSource(ConfigurableResource, ABC):
    """A Dagster resource that extracts one UTC day of raw records."""

    _stats: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    @abstractmethod
    def name(self) -> str:
        """Short name written to the `_source` lineage column (e.g. "demo")."""

    @abstractmethod
    def extract_orders(self, day: date) -> Iterator[pl.DataFrame]:
        """Order change records whose updated_at falls in `day` (UTC), as string columns."""

    def extract_orders_increment(self, day: date, increment: Increment) -> Iterator[pl.DataFrame]:
        """Only what is new for the open `day` (see `Increment`). A source that cannot read
        increments keeps the default: the raw asset then re-extracts the day in full."""
        raise NotImplementedError(f"source {self.name!r} has no incremental extraction")

    @property
    def incremental_by_files(self) -> bool:
        """True for a source whose increments are files not read yet (landing)."""
        return False

    def extract_events(self, day: date) -> Iterator[pl.DataFrame]:
        """Clickstream events of `day` (UTC), as string columns."""
        raise NotImplementedError(f"source {self.name!r} does not provide events yet")

    def last_extract_stats(self) -> dict[str, Any]:
        """Counters of the most recent extract call (rows extracted, rows in the overlap,
        pages, retries, files…), JSON-serialisable and free of secrets; the raw assets put
        them in materialization metadata. Sources record them with `_record_stats`."""
        return dict(self._stats)

    def _record_stats(self, **stats: Any) -> None:
        self._stats = dict(stats)
