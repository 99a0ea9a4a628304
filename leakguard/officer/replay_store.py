"""Replaying what the relay decided (issue 9): the retained-mail source of ``leakguard
replay --since``.

The journal gives each mail's envelope and the verdict the relay recorded (the old side of
the diff); the retained mail gives its bytes, opened with the retention key in the parent
process (AES-GCM opens gigabytes a second) and handed to the workers as bytes. A mail that
was journaled but not retained (``mode: hashed``, expired, too large) is reported as not
replayable, never silently dropped.

The store is read by a background thread with its own event loop, a batch ahead of the
workers, so the parent's (synchronous) iteration never loads the whole period.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from leakguard.officer.replay_sources import Outcome, ReadError, ReplayItem
from leakguard.store import open_store
from leakguard.store.journal import DecisionEntry, Retained
from leakguard.store.sealing import Sealer, SealError

BATCH = 500


@dataclass(frozen=True, slots=True)
class BytesLocator:
    """Mail bytes already read (and opened) by the parent."""

    raw: bytes

    def read(self) -> bytes:
        return self.raw


@dataclass(frozen=True, slots=True)
class NotRetained:
    """A journaled mail whose bytes were not kept; reading it says why."""

    reason: str

    def read(self) -> bytes:
        raise ReadError(self.reason)


class StoreSource:
    """Every decision of ``[since, until)`` in the store, oldest first."""

    def __init__(
        self, store_url: str, *, since: datetime, until: datetime, key: bytes | None
    ) -> None:
        self.store_url = store_url
        self.since = since
        self.until = until
        self.sealer = Sealer(key) if key is not None else None
        self.name = f"store {since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M}"
        self._count: int | None = None

    def count(self) -> int | None:
        if self._count is None:

            async def go() -> int:
                store = await open_store(self.store_url, create=False)
                try:
                    return await store.journal.count(self.since, self.until)
                finally:
                    await store.close()

            self._count = asyncio.run(go())
        return self._count

    def items(self) -> Iterator[ReplayItem]:
        for entry, kept in self._rows():
            yield ReplayItem(
                ref=entry.id,
                locator=self._locator(entry, kept),
                sender=entry.sender,
                rcpts=entry.rcpts,
                # the journal keeps rules in policy order, a replayed verdict sorted: compare
                # sets, or an unchanged policy would report changes
                old=Outcome(
                    action=entry.action,
                    rules=tuple(sorted(entry.rules)),
                    audit_rules=tuple(sorted(entry.audit_rules)),
                ),
            )

    def _locator(self, entry: DecisionEntry, kept: Retained | None) -> BytesLocator | NotRetained:
        if kept is None:
            return NotRetained("not retained (expired, or retention is off)")
        if kept.sealed is None:
            return NotRetained(f"only its hash was kept (retention mode {kept.mode})")
        if self.sealer is None:
            return NotRetained("no retention key to open it")
        try:
            return BytesLocator(self.sealer.open(kept.sealed, aad=entry.id))
        except SealError as exc:
            return NotRetained(str(exc))

    def _rows(self) -> Iterator[tuple[DecisionEntry, Retained | None]]:
        q: queue.Queue[list[tuple[DecisionEntry, Retained | None]] | BaseException | None] = (
            queue.Queue(maxsize=4)
        )
        stop = threading.Event()

        async def produce() -> None:
            store = await open_store(self.store_url, create=False)
            try:
                async for batch in store.journal.iter_range(self.since, self.until, batch=BATCH):
                    kept = await store.journal.retained_many([d.id for d in batch])
                    rows = [(d, kept.get(d.id)) for d in batch]
                    while not stop.is_set():
                        try:
                            q.put(rows, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            finally:
                await store.close()

        def run() -> None:
            try:
                asyncio.run(produce())
            except BaseException as exc:  # handed to the consumer
                q.put(exc)
                return
            q.put(None)

        th = threading.Thread(target=run, name="leakguard-replay-store", daemon=True)
        th.start()
        try:
            while True:
                got = q.get()
                if got is None:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield from got
        finally:
            stop.set()
            th.join(timeout=5)
