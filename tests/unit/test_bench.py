"""The bench's memory figure is the kernel's high-water mark, not a sample."""

from __future__ import annotations

import mmap
import sys
import time

import psutil
import pytest

from workers.bench import high_water_mb


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_high_water_mark_keeps_a_peak_that_is_gone() -> None:
    me = psutil.Process()
    # Mapped directly, not through malloc: a process that has kept freed heap for reuse (the
    # extract tests' `keep_freed_memory`) would serve a bytearray from pages already resident
    # and keep them after `del`, and neither the peak nor the RSS would move.
    block = mmap.mmap(-1, 80 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1  # touched: each page becomes resident
    peak_while_held = high_water_mb(me)
    block.close()
    now = me.memory_info().rss / 1e6
    assert high_water_mb(me) >= peak_while_held - 1  # the kernel syncs RSS counters lazily
    assert high_water_mb(me) - now > 60  # the 80 MB were returned, the peak still counts them


def test_rss_by_tenth_gives_the_shape_of_the_run() -> None:
    from workers.bench import rss_by_tenth, rss_growth

    warm_then_flat = [100.0 + min(i, 20) for i in range(100)]  # rises for 20 samples, then flat
    shape = rss_by_tenth({"extract": warm_then_flat, "short": [1.0, 2.0]})
    assert set(shape) == {"extract"}  # fewer than ten samples: no shape
    assert shape["extract"][0] == 104.5 and shape["extract"][1] == 114.5
    assert shape["extract"][2:] == [120.0] * 8
    assert rss_growth({"extract": warm_then_flat})["extract"] == 14.8  # the warm-up counts


def test_parallel_extraction_reports_a_process_that_dies_instead_of_waiting() -> None:
    from workers.bench import parallel_seconds

    # No watchlist: each spawned process fails while building its gazetteer, before it is ready.
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with code 1"):
        parallel_seconds(None, [], [], k=2, size=16)
    assert time.monotonic() - started < 120
