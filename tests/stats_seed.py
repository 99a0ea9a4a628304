"""A seeded store for the statistics tests: holds with their outcomes, journal rows,
audit hits and an incident, with known numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leakguard.holds.model import HoldRecord, HoldState, Via
from leakguard.store import SqlStore, sha256_hex
from leakguard.store.journal import DecisionEntry, IncidentRecord

HOSTILE = '<script>alert("x")</script>'
NOISY = "noisy-rule"
AUDIT = "new-rule"


def _hold(i: int, rules: tuple[str, ...], created: datetime, raw: bytes) -> HoldRecord:
    return HoldRecord(
        id=f"H-SEED{i:06d}",
        state=HoldState.HELD,
        created_at=created,
        expires_at=created + timedelta(hours=72),
        due_at=None,
        escalate_at=None,
        message_sha256=sha256_hex(raw),
        mail_from="alice@city.example.lg.jp",
        rcpts=("bob@partner.example.co.jp",),
        auth_user=None,
        subject="s",
        action="hold",
        rules=rules,
        verdict_json="{}",
        approvers=(),
        offer_bcc=False,
        language="ja",
    )


def _entry(i: int, at: datetime, **kw: object) -> DecisionEntry:
    fields: dict[str, object] = dict(
        id=f"M-SEED{i:08d}",
        at=at,
        sender="alice@city.example.lg.jp",
        action="pass",
        outcome="sent",
        rcpts=("x@alpha.example",),
        external_rcpts=1,
        subject="見積 1234-5678-9012",
        department="総務課",
        sha256="0" * 64,
    )
    fields.update(kw)
    return DecisionEntry(**fields)  # type: ignore[arg-type]


async def seed(
    store: SqlStore, now: datetime | None = None, *, hostile: str = HOSTILE, traffic: bool = False
) -> datetime:
    """Seed; returns the ``now`` the numbers are relative to.

    Rules (holds created 1-5 days ago):
      noisy-rule   12 holds (財政課): 8 released, 1 released as Bcc, 1 discarded, 2 open
                   -> closed 10, release rate 0.9: noisy
      lookalike     3 holds (総務課): 1 released after 10 minutes, 1 discarded, 1 expired
      HOSTILE       1 hold, department HOSTILE, still open
    Journal: one row per hold, plus 4 sent_bcc (bulk-external, 総務課), 2 rejected
    (bad-attach, 総務課), 1 delayed (slow), 5 passed with audit rule new-rule (3 総務課,
    2 財政課; one of them reported as an incident), 1 held by lookalike with new-rule too.
    """
    now = now or datetime.now(UTC)
    raw = b"Subject: s\r\n\r\nbody\r\n"
    entries: list[tuple[DecisionEntry, None]] = []
    n = 0

    async def hold(
        rules: tuple[str, ...],
        dept: str,
        ago: timedelta,
        to: HoldState | None,
        audit: tuple[str, ...] = (),
    ) -> None:
        nonlocal n
        n += 1
        created = now - ago
        h = _hold(n, rules, created, raw)
        await store.create_hold(h, raw)
        if to is not None:
            await store.transition(
                h.id, from_states=[HoldState.HELD], to_state=to, actor="a@city", via=Via.WEB
            )
        summary = {"audit_rules": [{"id": a, "action": "hold", "mode": "audit"} for a in audit]}
        entries.append(
            (
                _entry(
                    n,
                    created,
                    action="hold",
                    outcome="held",
                    rules=rules,
                    department=dept,
                    hold_id=h.id,
                    audit_rules=audit,
                    summary=summary,
                ),
                None,
            )
        )

    for i in range(12):
        to = ([HoldState.RELEASED] * 8 + [HoldState.RELEASED_BCC, HoldState.DISCARDED, None, None])[
            i
        ]
        await hold((NOISY,), "財政課", timedelta(days=1, minutes=i), to)
    await hold(
        ("lookalike",), "総務課", timedelta(days=2, minutes=10), HoldState.RELEASED, audit=(AUDIT,)
    )
    await hold(("lookalike",), "総務課", timedelta(days=3), HoldState.DISCARDED)
    await hold(("lookalike",), "総務課", timedelta(days=4), HoldState.EXPIRED)
    await hold((hostile,), hostile if hostile == HOSTILE else "市民課", timedelta(days=5), None)

    def add(ago: timedelta, **kw: object) -> None:
        nonlocal n
        n += 1
        entries.append((_entry(n, now - ago, **kw), None))

    for i in range(4):
        add(timedelta(days=2, hours=i), action="bcc", outcome="sent_bcc", rules=("bulk-external",))
    for i in range(2):
        add(timedelta(days=6, hours=i), action="reject", outcome="rejected", rules=("bad-attach",))
    add(timedelta(days=3), action="delay", outcome="delayed", rules=("slow",))
    audit_summary = {"audit_rules": [{"id": AUDIT, "action": "hold", "mode": "audit"}]}
    for i in range(5):
        add(
            timedelta(days=7 + i),
            audit_rules=(AUDIT,),
            summary=audit_summary,
            department="総務課" if i < 3 else "財政課",
        )
    reported_id = f"M-SEED{n:08d}"
    if traffic:  # ordinary mail every day, for charts that look like a real month
        for day in range(30):
            for k in range(20 + (day * 7) % 13):
                add(
                    timedelta(days=day, minutes=k * 17 + 5),
                    department=("総務課", "財政課", "市民課")[k % 3],
                )
            for k in range(day % 4):
                add(
                    timedelta(days=day, hours=2, minutes=k),
                    action="bcc",
                    outcome="sent_bcc",
                    rules=("bulk-external",),
                    department="市民課",
                )
    # old traffic outside a 7-day window, and a row outside 30 days
    add(timedelta(days=40), audit_rules=(AUDIT,), summary=audit_summary)
    await store.journal.record(entries)
    await store.journal.create_incident(
        IncidentRecord(
            id="I-SEED000001",
            kind="report",
            state="open",
            created_at=now,
            reported_by="alice@city.example.lg.jp",
            via="web",
            decision_id=reported_id,
        )
    )
    return now
