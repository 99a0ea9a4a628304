"""JournalWriter's flush task: a row submitted while the task awaits its last write or the
prune is written by that task (``submit`` saw it running and started none). CI caught rows
left queued until the next mail: the task ended after its prune without looking again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from leakguard.relay.journal import JournalSettings, JournalWriter


@dataclass(frozen=True)
class _Row:
    id: str
    abandoned: bool = False


class _Journal:
    def __init__(self) -> None:
        self.rows: list[str] = []
        self.abandoned_rows: list[str] = []  # written with the mark
        self.marked: list[str] = []  # marked by an UPDATE after they were written
        self.in_prune = asyncio.Event()
        self.go_on = asyncio.Event()
        self.prunes = 0

    async def record(self, batch: list[tuple[Any, Any]]) -> None:
        self.rows += [entry.id for entry, _ in batch]
        self.abandoned_rows += [entry.id for entry, _ in batch if entry.abandoned]

    async def prune(self, now: Any, *, journal_before: Any) -> tuple[int, int]:
        self.prunes += 1
        self.in_prune.set()
        await self.go_on.wait()
        return 0, 0

    async def mark_abandoned(self, ids: list[str]) -> None:
        self.marked += ids


class _Store:
    def __init__(self) -> None:
        self.journal = _Journal()


class _Writer(JournalWriter):
    def build(self, **fields: Any) -> Any:  # type: ignore[override]
        return _Row(fields["decision_id"]), None


def _submit(w: JournalWriter, decision_id: str) -> None:
    w.submit(decision_id=decision_id, raw=b"x")


async def test_a_row_submitted_during_the_prune_is_written_by_the_same_task() -> None:
    store = _Store()
    w = _Writer(
        store, JournalSettings(mode="off", linger=0.0), sealer=None, executor=None, log=None
    )  # type: ignore[arg-type]
    _submit(w, "M-1")
    await asyncio.wait_for(store.journal.in_prune.wait(), 5)
    assert store.journal.rows == ["M-1"]
    _submit(w, "M-2")  # the task is awaiting its prune: submit starts no other
    store.journal.go_on.set()
    task = w._task
    assert task is not None
    await asyncio.wait_for(task, 5)
    assert store.journal.rows == ["M-1", "M-2"]
    assert store.journal.prunes == 1  # not due again


async def test_flush_writes_rows_queued_after_the_task_ended() -> None:
    store = _Store()
    store.journal.go_on.set()
    w = _Writer(
        store, JournalSettings(mode="off", linger=5.0), sealer=None, executor=None, log=None
    )  # type: ignore[arg-type]
    for i in range(3):
        _submit(w, f"M-{i}")
    await asyncio.wait_for(w.flush(), 5)  # no 5 s linger: flush asks for it now
    assert store.journal.rows == ["M-0", "M-1", "M-2"]


async def test_an_abandoned_mark_reaches_the_row_wherever_the_row_is() -> None:
    """Queued or being built: the row is written with the mark; already written (however
    long ago: no memory of written ids is kept): one UPDATE marks it."""
    store = _Store()
    store.journal.go_on.set()
    w = _Writer(
        store,  # type: ignore[arg-type]
        JournalSettings(mode="off", linger=5.0),
        sealer=None,
        executor=None,
        log=None,
    )
    _submit(w, "M-queued")
    w.abandoned("M-queued")  # still queued (the flush lingers)
    await asyncio.wait_for(w.flush(), 5)
    assert store.journal.abandoned_rows == ["M-queued"] and store.journal.marked == []
    for i in range(300):
        _submit(w, f"M-{i}")
    await asyncio.wait_for(w.flush(), 5)
    w.abandoned("M-0")  # written 300 rows ago
    await asyncio.wait_for(w.flush(), 5)
    assert store.journal.marked == ["M-0"]
    assert "M-0" not in store.journal.abandoned_rows
