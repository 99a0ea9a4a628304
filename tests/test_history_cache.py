"""``SqlStore.sender_history`` from memory (issue 11): never behind this process's own
writes, at most ``ttl`` seconds behind another process's, bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from leakguard.store import open_store, sqlite_url
from leakguard.store.history_cache import HistoryCache


async def test_reads_are_cached_and_own_writes_are_seen_at_once(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "lg.db"))
    try:
        cache = store.history_cache
        assert await store.sender_history("alice@x.jp") == (frozenset(), {})
        misses = cache.misses
        assert await store.sender_history("Alice@X.jp ") == (frozenset(), {})
        assert cache.misses == misses and cache.hits >= 1
        await store.record_sent("alice@x.jp", [("bob@partner.jp", "Bob")])
        rcpts, names = await store.sender_history("alice@x.jp")
        assert rcpts == {"bob@partner.jp"} and names == {"bob@partner.jp": ("Bob",)}
        # other senders' entries survive a write
        await store.sender_history("carol@x.jp")
        hits = cache.hits
        await store.record_sent("alice@x.jp", [("dave@partner.jp", "")])
        assert await store.sender_history("carol@x.jp") == (frozenset(), {})
        assert cache.hits == hits + 1
        assert (await store.sender_history("alice@x.jp"))[0] == {
            "bob@partner.jp",
            "dave@partner.jp",
        }
    finally:
        await store.close()


async def test_another_process_write_is_seen_within_the_ttl(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "lg.db")
    a, b = await open_store(url), await open_store(url)
    try:
        a.history_cache.ttl = 0.3
        assert await a.sender_history("alice@x.jp") == (frozenset(), {})
        await b.record_sent("alice@x.jp", [("bob@partner.jp", "")])
        # stale, but only by missing a recipient (the history only grows)
        assert await a.sender_history("alice@x.jp") == (frozenset(), {})
        await asyncio.sleep(0.35)
        # past the TTL: the old entry is served once more while one fresh read runs
        assert await a.sender_history("alice@x.jp") == (frozenset(), {})
        await asyncio.gather(*a._history_reads.values())
        assert (await a.sender_history("alice@x.jp"))[0] == {"bob@partner.jp"}
    finally:
        await a.close()
        await b.close()


def test_a_read_that_overlapped_a_write_is_not_kept() -> None:
    cache = HistoryCache()
    gen = cache.generation  # the read starts
    cache.invalidate(["alice@x.jp"])  # a write for the sender commits meanwhile
    cache.put("alice@x.jp", (frozenset({"old@x.jp"}), {}), generation=gen)
    assert cache.get("alice@x.jp") is None
    cache.put("alice@x.jp", (frozenset({"new@x.jp"}), {}), generation=cache.generation)
    assert cache.get("alice@x.jp") == (frozenset({"new@x.jp"}), {})


def test_bounded_least_recently_used_first() -> None:
    cache = HistoryCache(max_senders=2, max_rows=10)
    cache.put("a", (frozenset({"1"}), {}), generation=0)
    cache.put("b", (frozenset({"1"}), {}), generation=0)
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", (frozenset({"1"}), {}), generation=0)
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2
    big = frozenset(str(i) for i in range(20))
    cache.put("d", (big, {}), generation=0)  # larger than the whole cache: not kept
    assert cache.get("d") is None
    cache.put("e", (frozenset(str(i) for i in range(7)), {}), generation=0)
    # rows bound: the least recently used ("c") goes
    assert cache.get("c") is None and cache.get("e") is not None and len(cache) == 2


async def test_counts_add_up_in_one_batch_and_across_batches(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from leakguard.store import schema as t

    store = await open_store(sqlite_url(tmp_path / "lg.db"))
    try:
        await store.record_sent_many(
            [("a@x.jp", [("b@y.jp", "B"), ("c@y.jp", "")]), ("A@x.jp", [("B@y.jp", "B")])]
        )
        await store.record_sent_many([("a@x.jp", [("b@y.jp", "B")])])
        async with store._read() as conn:
            rows = (
                await conn.execute(
                    sa.select(t.sent_history.c.rcpt, t.sent_history.c.count).order_by(
                        t.sent_history.c.rcpt
                    )
                )
            ).all()
        assert [tuple(r) for r in rows] == [("b@y.jp", 3), ("c@y.jp", 1)]
    finally:
        await store.close()


def test_a_write_of_another_sender_does_not_spoil_a_read() -> None:
    cache = HistoryCache()
    gen = cache.generation  # the read of alice starts
    cache.merge([("bob@x.jp", "c@partner.jp", "")])  # bob's mail is recorded meanwhile
    cache.put("alice@x.jp", (frozenset({"a@partner.jp"}), {}), generation=gen)
    assert cache.get("alice@x.jp") == (frozenset({"a@partner.jp"}), {})
    gen = cache.generation
    cache.merge([("alice@x.jp", "d@partner.jp", "")])  # alice's own: the read may be older
    cache.put("alice@x.jp", (frozenset({"old@x.jp"}), {}), generation=gen)
    assert cache.get("alice@x.jp") == (frozenset({"a@partner.jp", "d@partner.jp"}), {})


def test_merge_adds_to_a_cached_sender_and_leaves_readers_their_copy() -> None:
    cache = HistoryCache()
    before = (frozenset({"bob@partner.jp"}), {"bob@partner.jp": ("Bob",)})
    cache.put("alice@x.jp", before, generation=cache.generation)
    held = cache.get("alice@x.jp")
    cache.merge(
        [
            ("alice@x.jp", "bob@partner.jp", "Robert"),
            ("alice@x.jp", "eve@partner.jp", ""),
            ("zed@x.jp", "q@partner.jp", "Q"),  # not cached: stays uncached
        ]
    )
    rcpts, names = cache.get("alice@x.jp") or (frozenset(), {})
    assert rcpts == {"bob@partner.jp", "eve@partner.jp"}
    assert names == {"bob@partner.jp": ("Robert", "Bob")}  # newest first, as a read orders
    assert held == before and held[1] == {"bob@partner.jp": ("Bob",)}  # not changed in place
    assert cache.get("zed@x.jp") is None


async def test_a_busy_sender_is_read_once_and_matches_the_table(tmp_path: Path) -> None:
    """A sender with a long history whose mail keeps being recorded: the history is read
    from the table once, then kept up to date from the writes; what it serves is what a
    fresh read of the table gives."""
    url = sqlite_url(tmp_path / "lg.db")
    store = await open_store(url)
    try:
        await store.record_sent_many(
            [("alice@x.jp", [(f"r{i}@partner{i % 7}.jp", f"R {i % 3}") for i in range(3000)])]
        )
        await store.sender_history("alice@x.jp")
        misses = store.history_cache.misses
        for j in range(20):
            await store.record_sent_many(
                [("alice@x.jp", [(f"n{j}@new.jp", f"N{j}"), ("r1@partner1.jp", f"Renamed {j}")])]
            )
            await store.sender_history("alice@x.jp")
        assert store.history_cache.misses == misses  # served from memory every time
        cached = await store.sender_history("alice@x.jp")
        fresh = await open_store(url)
        try:
            assert await fresh.sender_history("alice@x.jp") == cached
        finally:
            await fresh.close()
    finally:
        await store.close()


async def test_concurrent_misses_share_one_read(tmp_path: Path) -> None:
    """Twenty sessions of one sender at once: one read of the table, not twenty."""
    store = await open_store(sqlite_url(tmp_path / "lg.db"))
    try:
        await store.record_sent("alice@x.jp", [("bob@partner.jp", "Bob")])
        store.history_cache = HistoryCache()  # nothing cached
        reads = 0
        real = store._run_read

        async def counting(body):  # type: ignore[no-untyped-def]
            nonlocal reads
            reads += 1
            return await real(body)

        store._run_read = counting  # type: ignore[method-assign]
        got = await asyncio.gather(*(store.sender_history("alice@x.jp") for _ in range(20)))
        assert reads == 1
        assert all(g == (frozenset({"bob@partner.jp"}), {"bob@partner.jp": ("Bob",)}) for g in got)
    finally:
        await store.close()


def test_merges_stay_within_the_bound() -> None:
    cache = HistoryCache(max_rows=10)
    cache.put("a", (frozenset({"1"}), {}), generation=0)
    cache.put("b", (frozenset({"1"}), {}), generation=0)
    cache.merge([("b", str(i), "") for i in range(2, 12)])  # b grows past the bound
    assert cache.get("a") is None and cache.get("b") is None  # the oldest went, then b too
    assert cache._rows == 0
