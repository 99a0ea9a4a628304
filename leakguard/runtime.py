"""Process-level settings for ``leakguard serve`` (issue 11): the event loop and the
garbage collector.

- **Event loop.** uvloop (libuv) when it is installed: the loop's own work per SMTP
  command (selector, transports, callbacks) is about half of asyncio's. Without it, or
  with ``LEAKGUARD_EVENT_LOOP=asyncio``, the standard loop.
- **Garbage collector.** After start-up (policy, organisation indexes, directory, public
  suffix list: hundreds of thousands of long-lived objects), ``gc.freeze()`` moves
  everything alive into the permanent generation, so no later collection walks it again
  (a full collection over them took 60–96 ms, a stall for every connection). Worker
  processes forked afterwards also keep those pages shared (a collection writes to every
  object it visits). Generation 0 is collected every 50,000 allocations instead of 700:
  one SMTP transaction allocates thousands of short-lived objects, and most die by
  reference counting anyway; reference cycles still get collected, only less often.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

GC_THRESHOLDS = (50_000, 20, 100)


def event_loop_name() -> str:
    """``uvloop`` or ``asyncio``: what ``run`` will use."""
    if os.environ.get("LEAKGUARD_EVENT_LOOP", "").strip().lower() == "asyncio":
        return "asyncio"
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed (see the module)."""
    if event_loop_name() == "uvloop":
        uvloop = importlib.import_module("uvloop")  # optional: not a dependency
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def settle_heap() -> None:
    """Called once the service is started: freeze what start-up built, tune generation 0."""
    gc.collect()  # start-up's garbage, before it would be frozen with the rest
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
