"""``leakguard serve`` freezes its start-up heap and collects generation 0 less often."""

from __future__ import annotations

import gc

from leakguard import runtime


def test_settle_heap_freezes_and_sets_thresholds() -> None:
    before = gc.get_threshold()
    keep = [object() for _ in range(1000)]
    try:
        runtime.settle_heap()
        assert gc.get_freeze_count() >= len(keep)
        assert gc.get_threshold() == runtime.GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
