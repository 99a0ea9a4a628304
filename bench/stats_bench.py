"""How long the officer's statistics take over a large journal (issue 9).

Seeds ``--rows`` (default 100,000) decision-journal rows spread over 30 days (pass, Bcc,
hold, reject in realistic shares, several rules and departments, audit hits), then times
``compute_stats`` by rule and by department, median of ``--repeat`` runs, on SQLite (a
temporary file) and, with ``--postgres URL`` (an empty database), on PostgreSQL.

    .venv/bin/python bench/stats_bench.py [--rows 100000] [--repeat 3]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leakguard.officer.stats import compute_stats
from leakguard.store import SqlStore, open_store, sqlite_url
from leakguard.store.journal import DecisionEntry
from leakguard.store.stats import StatsQueries

RULES = ["bulk-external", "mixed-organizations", "forwarded-third-party", "similar-to-colleague"]
DEPTS = ["総務課", "市民課", "財政課", "子育て支援課", "国際交流課"]


async def seed(store: SqlStore, rows: int, now: datetime) -> None:
    rnd = random.Random(1)
    batch: list[tuple[DecisionEntry, None]] = []
    for i in range(rows):
        r = rnd.random()
        action, outcome, rules = "pass", "sent", ()
        if r < 0.03:
            action, outcome, rules = "bcc", "sent_bcc", (RULES[0],)
        elif r < 0.045:
            action, outcome, rules = "hold", "held", (rnd.choice(RULES[1:]),)
        elif r < 0.047:
            action, outcome, rules = "reject", "rejected", (RULES[3],)
        audit = ("new-rule",) if rnd.random() < 0.02 else ()
        batch.append(
            (
                DecisionEntry(
                    id=f"M-B{i:011d}",
                    at=now - timedelta(seconds=rnd.uniform(0, 30 * 86400)),
                    sender=f"user{rnd.randrange(300)}@city.example.lg.jp",
                    action=action,
                    outcome=outcome,
                    rules=rules,
                    audit_rules=audit,
                    department=rnd.choice(DEPTS),
                    rcpts=("a@example.com",),
                    external_rcpts=1,
                ),
                None,
            )
        )
        if len(batch) >= 2000:
            await store.journal.record(batch)
            batch = []
    if batch:
        await store.journal.record(batch)


async def measure(url: str, rows: int, repeat: int) -> dict[str, float]:
    store = await open_store(url)
    try:
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        await seed(store, rows, now)
        seeded = time.perf_counter() - t0
        out = {"seed_s": seeded}
        for by in ("rule", "department"):
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                rep = await compute_stats(StatsQueries(store), now - timedelta(days=30), now, by=by)
                times.append(time.perf_counter() - t)
            out[f"by_{by}_s"] = statistics.median(times)
            assert rep.rows, "no rows computed"
        return out
    finally:
        await store.close()


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as d:
        res = await measure(sqlite_url(Path(d) / "stats.db"), args.rows, args.repeat)
        print(f"SQLite, {args.rows:,} rows: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()))
    if args.postgres:
        import asyncpg

        admin = await asyncpg.connect(args.postgres)
        name = f"lg_bench_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
            res = await measure(url, args.rows, args.repeat)
            print(
                f"PostgreSQL, {args.rows:,} rows: "
                + ", ".join(f"{k} {v:.2f}" for k, v in res.items())
            )
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgres", default="")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
