"""The interface every raw source implements (demo, api, postgres, landing).

A source yields the day's raw rows as a stream of Polars batches so that no source ever
has to hold a whole day as Python objects. Batches carry the SPEC §3 source columns as
strings (nullable), exactly as received; lineage columns are added by the raw assets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import date

import polars as pl
from dagster import ConfigurableResource


class RawSource(ConfigurableResource, ABC):
    """A Dagster resource that extracts one UTC day of raw records."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Short name written to the `_source` lineage column (e.g. "demo")."""

    @abstractmethod
    def extract_orders(self, day: date) -> Iterator[pl.DataFrame]:
        """Order change records whose updated_at falls in `day` (UTC), as string columns."""

    def extract_events(self, day: date) -> Iterator[pl.DataFrame]:
        """Clickstream events of `day` (UTC), as string columns."""
        raise NotImplementedError(f"source {self.name!r} does not provide events yet")
