"""Which files of a lake partition are read, and what the watermark is (lake_parts.py)."""

from datetime import UTC, datetime

from orders_platform.storage.lake_parts import (
    live_parts,
    part_file_name,
    replacement_name,
    watermark,
)

T = [datetime(2026, 3, 17, h, 15, tzinfo=UTC) for h in range(8, 13)]


def inc(i: int, token: str = "aaaa") -> str:
    return part_file_name(T[i], base=False, token=token)


def base(i: int, token: str = "bbbb") -> str:
    return part_file_name(T[i], base=True, token=token)


def names(parts) -> list[str]:
    return [p.name for p in parts]


def test_increments_are_read_in_window_order_and_set_the_watermark():
    files = [inc(2), inc(0), inc(1), ".part-0.parquet.dead.tmp", "notes.txt"]
    live = live_parts(files)
    assert names(live) == [inc(0), inc(1), inc(2)]
    assert watermark(live) == T[2]
    assert watermark(live_parts([])) is None


def test_newest_base_hides_everything_older_and_counts_later_increments():
    files = ["part-0.parquet", inc(0), inc(1), base(2), inc(2, "cccc"), inc(3)]
    live = live_parts(files)
    # an increment stamped like the base is older than it (the base replaced it)
    assert names(live) == [base(2), inc(3)]
    assert watermark(live) == T[3]
    # part-0 is the oldest base: increments after it are read with it
    assert names(live_parts(["part-0.parquet", inc(0)])) == ["part-0.parquet", inc(0)]


def test_replacement_names():
    assert replacement_name([], None, "t", open_day=False) == "part-0.parquet"
    assert replacement_name(["part-0.parquet"], None, "t", open_day=False) == "part-0.parquet"
    # an open day's replace is a base stamped no older than what it replaces
    assert replacement_name([inc(3)], T[1], "t", open_day=True) == part_file_name(
        T[3], base=True, token="t"
    )
    assert replacement_name([], T[1], "t", open_day=True) == part_file_name(
        T[1], base=True, token="t"
    )
    # a closed day that held parts: first a base newer than all of them (renamed afterwards)
    assert replacement_name([inc(0), inc(4)], None, "t", open_day=False) == part_file_name(
        T[4], base=True, token="t"
    )
