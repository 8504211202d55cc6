"""The bench's memory figure is the kernel's high-water mark, not a sample."""

from __future__ import annotations

import sys

import psutil
import pytest

from workers.bench import high_water_mb


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_high_water_mark_keeps_a_peak_that_is_gone() -> None:
    me = psutil.Process()
    block = bytearray(80 * 1024 * 1024)  # touched: zero-filled pages are written
    for i in range(0, len(block), 4096):
        block[i] = 1
    peak_while_held = high_water_mb(me)
    del block
    now = me.memory_info().rss / 1e6
    assert high_water_mb(me) >= peak_while_held - 1  # the kernel syncs RSS counters lazily
    assert high_water_mb(me) - now > 60  # the 80 MB were returned, the peak still counts them
