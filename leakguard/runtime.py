"""Process-level settings for ``leakguard serve`` (issue 11): the garbage collector.

Once the engine is built (policy, organisation indexes, directory, public suffix list: hundreds of
thousands of long-lived objects), ``gc.freeze()`` moves everything alive into the
permanent generation, so no later collection walks it again (a full collection over them
took 60–96 ms, a stall for every connection). Worker processes forked afterwards also
keep those pages shared (a collection writes to every object it visits). Generation 0 is
collected every 50,000 allocations instead of 700: one SMTP transaction allocates
thousands of short-lived objects, and most die by reference counting anyway; reference
cycles are still collected, only less often.

The event loop is uvloop's by default (``event_loop`` in the configuration; ``run``
below): with the relay's own SMTP engine, an ``asyncio.Protocol``, it costs about 15 %
less CPU a mail than asyncio's loop (docs/design-notes.md, "uvloop, measured again").
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

GC_THRESHOLDS = (50_000, 20, 100)

# glibc's malloc: blocks from this size up come from mmap and go back to the system when
# freed. By default the threshold *rises* to the size of any such block that is freed (up
# to 32 MiB), so after the first big mail a 25 MB DATA buffer, once freed, stays in the
# heap of the thread that freed it, where the store's and the upstream's worker threads
# (their own arenas) cannot reuse it: one more resident copy of the mail for the rest of
# the transaction. A fixed threshold keeps big buffers in mmap (measured with
# bench/relay/memory.py: held path 4.08x -> 3.1x the mail). Mail of a few KB never
# reaches it.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20


def settle_heap() -> None:
    """Called by ``leakguard serve`` once the engine is built, before the event loop runs:
    freeze what start-up built, tune generation 0."""
    gc.collect()  # start-up's garbage, before it would be frozen with the rest
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    fix_mmap_threshold()


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc's mmap threshold (see ``M_MMAP_THRESHOLD`` above). False where the C
    library is not glibc (musl, macOS): nothing to tune there, nothing changes."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


# How long a thread that computes (a decision, a notice, the store's thread building a
# sender's history) keeps the GIL while the event loop waits for it: Python's default is
# 5 ms, and each SMTP reply of every other session could wait that long behind it. At 1 ms,
# paced at 390 mails a second after a sender had collected 25,000 recipients (the store's
# thread rebuilding that history every few seconds), the added latency was p50 +1.8 ms and
# p99 +10 ms (median of six runs, alternated) against +3.3 and +16 ms, throughput the same
# within noise (docs/design-notes.md, stop 18).
GIL_SWITCH_INTERVAL = 0.001


def run(main: Coroutine[Any, Any, T], event_loop: str = "uvloop") -> T:
    """``asyncio.run(main)`` on the configured event loop: uvloop's when asked for and
    installed, else asyncio's. The GIL is handed over every ``GIL_SWITCH_INTERVAL``."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
