"""Statistics per rule and department, and the audit report, over a seeded store
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from stats_seed import AUDIT, HOSTILE, NOISY, seed
from test_store import store  # noqa: F401  (the sqlite + postgres fixture)

from leakguard.officer.stats import (
    answer_key,
    answer_text,
    audit_report,
    audit_report_text,
    clean,
    compute_stats,
    duration_text,
    pad,
    width,
)
from leakguard.store import SqlStore
from leakguard.store.stats import StatsQueries, meta_key


async def test_per_rule_numbers(store: SqlStore) -> None:  # noqa: F811
    now = await seed(store)
    rep = await compute_stats(StatsQueries(store), now - timedelta(days=30), now)
    rows = {r.key: r for r in rep.rows}
    n = rows[NOISY]
    assert (n.holds, n.released, n.released_bcc, n.discarded, n.expired, n.open) == (
        12,
        8,
        1,
        1,
        0,
        2,
    )
    assert n.closed == 10 and n.release_rate == pytest.approx(0.9) and n.noisy
    lk = rows["lookalike"]
    assert (lk.holds, lk.released, lk.discarded, lk.expired) == (3, 1, 1, 1)
    assert lk.release_rate == pytest.approx(1 / 3) and not lk.noisy
    # released now, created 2 days 10 minutes ago
    assert lk.median_release_seconds == pytest.approx(2 * 86400 + 600, abs=30)
    assert n.median_release_seconds == pytest.approx(86400 + 4.5 * 60, abs=30)
    assert rows["bulk-external"].bcc_rewrites == 4
    assert rows["bad-attach"].rejects == 2
    assert rows["slow"].delays == 1
    # 5 passed + 1 held in the 30 days (the 40-day-old one is outside)
    assert rows[AUDIT].audit_hits == 6 and rows[AUDIT].holds == 0
    assert rows[HOSTILE].open == 1
    assert [r.key for r in rep.noisy] == [NOISY]
    # thresholds are arguments
    rep2 = await compute_stats(
        StatsQueries(store), now - timedelta(days=30), now, noisy_rate=0.3, noisy_min=3
    )
    assert {r.key for r in rep2.noisy} == {NOISY, "lookalike"}
    # the period bounds everything
    rep7 = await compute_stats(StatsQueries(store), now - timedelta(days=6, hours=12), now)
    rows7 = {r.key: r for r in rep7.rows}
    assert rows7[AUDIT].audit_hits == 1 and "bad-attach" in rows7
    rep1 = await compute_stats(StatsQueries(store), now - timedelta(hours=30), now)
    assert {r.key for r in rep1.rows} == {NOISY}


async def test_per_department_and_days(store: SqlStore) -> None:  # noqa: F811
    now = await seed(store)
    tokyo = ZoneInfo("Asia/Tokyo")
    rep = await compute_stats(
        StatsQueries(store), now - timedelta(days=30), now, by="department", tz=tokyo
    )
    rows = {r.key: r for r in rep.rows}
    assert rows["財政課"].holds == 12 and rows["総務課"].holds == 3
    assert rows["総務課"].bcc_rewrites == 4 and rows["総務課"].rejects == 2
    assert rows["総務課"].audit_hits == 4 and rows["財政課"].audit_hits == 2
    assert rows[HOSTILE].holds == 1
    assert not any(r.noisy for r in rep.rows)  # only rules are flagged
    assert len(rep.days) in (30, 31)
    assert sum(d.total for d in rep.days) == 16 + 4 + 2 + 1 + 5
    assert sum(d.counts["hold"] for d in rep.days) == 16
    assert sum(d.counts["bcc"] for d in rep.days) == 4
    last = rep.days[-1].day
    assert last == now.astimezone(tokyo).date()
    js = rep.as_json()
    assert js["by"] == "department" and len(js["days"]) == len(rep.days)  # type: ignore[arg-type]


async def test_audit_report(store: SqlStore) -> None:  # noqa: F811
    now = await seed(store)
    q = StatsQueries(store)
    rep = await audit_report(q, AUDIT, now - timedelta(days=30), now)
    assert rep.total == 6 and rep.action == "hold"
    assert dict(rep.by_department) == {"総務課": 4, "財政課": 2}
    assert dict(rep.answers) == {"sent": 5, "held:released": 1}
    assert rep.reported == 1
    assert len(rep.examples) == 6 and any(e.reported for e in rep.examples)
    text = audit_report_text(rep, "ja")
    assert "別のルールで保留 → 送信" in text and "1234-5678-9012" not in text
    en = audit_report_text(rep, "en")
    assert "held by another rule, then released" in en and "mails it matched: 6" in en
    first = await q.audit_first_hits()
    assert set(first) == {AUDIT}
    assert (now - first[AUDIT]) > timedelta(days=39)
    assert await q.audit_first_hits([]) == {}
    none = await audit_report(q, "nothing", now - timedelta(days=30), now)
    assert none.total == 0 and "no mail" in audit_report_text(none, "en")


async def test_mark_once(store: SqlStore) -> None:  # noqa: F811
    q = StatsQueries(store)
    key = meta_key("audit_report", "r" * 100)
    assert len(key) <= 64
    mail = (b"Subject: x\r\n\r\nx\r\n", "lg@city", ["o@city"])
    assert await q.mark_and_enqueue(key, "now", [mail])
    assert not await q.mark_and_enqueue(key, "again", [mail])
    assert await q.get_mark(key) == "now"
    assert len([d for d in await store.list_deliveries() if d.kind == "notice"]) == 1


def test_text_helpers() -> None:
    assert width("総務課") == 6 and width("abc") == 3
    assert pad("総務", 6) == "総務  " and pad("a", 3, right=True) == "  a"
    assert clean("a\x1b[31mb\u202ec\x07") == "a[31mbc"
    assert duration_text(90, "en") == "1m" and duration_text(3 * 3600 + 120, "ja") == "3時間2分"
    assert duration_text(None, "en") == "-"
    # every answer a mail can get has words in both languages
    for outcome in ("sent", "sent_bcc", "rejected", "failed"):
        assert answer_text(answer_key(outcome, None), "ja") != outcome
    for outcome in ("held", "delayed"):
        for state in ("held", "delayed", "released", "released_bcc", "discarded", "expired"):
            if {outcome, state} == {"held", "delayed"}:  # not a pair that exists
                continue
            key = answer_key(outcome, state)
            assert answer_text(key, "en") != key and answer_text(key, "ja") != key
