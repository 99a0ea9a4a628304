"""Process-level settings for ``leakguard serve`` (issue 11): the garbage collector.

Once the engine is built (policy, organisation indexes, directory, public suffix list: hundreds of
thousands of long-lived objects), ``gc.freeze()`` moves everything alive into the
permanent generation, so no later collection walks it again (a full collection over them
took 60–96 ms, a stall for every connection). Worker processes forked afterwards also
keep those pages shared (a collection writes to every object it visits). Generation 0 is
collected every 50,000 allocations instead of 700: one SMTP transaction allocates
thousands of short-lived objects, and most die by reference counting anyway; reference
cycles are still collected, only less often.

The event loop stays asyncio's: under uvloop 0.23 a stop (SIGTERM) took 20 s instead of
0.3 s with the same service, for no measured gain large enough to chase it
(docs/design-notes.md, "Speed").
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)


def settle_heap() -> None:
    """Called by ``leakguard serve`` once the engine is built, before the event loop runs:
    freeze what start-up built, tune generation 0."""
    gc.collect()  # start-up's garbage, before it would be frozen with the rest
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
