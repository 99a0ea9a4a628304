"""How the previous-release store fixtures were made (run once, at commit df55b47).

``fixtures/store-df55b47.sqlite`` and ``fixtures/store-df55b47.pg.sql`` were written by
leakguard as of commit df55b47 (the last release without Alembic migrations) with this
script: a held mail with its transitions and a link token, a released one, a queued and a
finished delivery, and sender history. The upgrade tests open them with today's code.

    git worktree add /tmp/lg-df55b47 df55b47 && cd /tmp/lg-df55b47
    python tests/deploy/make_legacy_store.py sqlite OUT.sqlite
    python tests/deploy/make_legacy_store.py postgresql postgresql://127.0.0.1/DB
    pg_dump --no-owner --no-privileges --inserts DB > OUT.pg.sql
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leakguard.holds.model import HoldRecord, HoldState, TokenRecord, Via
from leakguard.store import open_store, sha256_hex, sqlite_url

# fixed instants so the fixtures are reproducible (and far in the future: nothing expires)
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
HELD_RAW = (
    "From: 山田 太郎 <yamada@city.example.lg.jp>\r\n"
    "To: bob@partner.example.co.jp\r\n"
    "Subject: =?UTF-8?B?6KaL56mN5pu4?=\r\n"
    "Message-ID: <legacy-1@city.example.lg.jp>\r\n"
    "Date: Fri, 20 Nov 2026 18:30:00 +0900\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=UTF-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n"
    "お見積書をお送りします。\r\n"
).encode()
QUEUED_RAW = b"From: a@city.example.lg.jp\r\nTo: c@example.com\r\nSubject: queued\r\n\r\nhi\r\n"


def _hold(hold_id: str, raw: bytes, state: HoldState) -> HoldRecord:
    return HoldRecord(
        id=hold_id,
        state=state,
        created_at=T0,
        expires_at=T0 + timedelta(days=3650),
        due_at=None,
        escalate_at=None,
        message_sha256=sha256_hex(raw),
        mail_from="yamada@city.example.lg.jp",
        rcpts=("bob@partner.example.co.jp",),
        auth_user="yamada@city.example.lg.jp",
        subject="見積書",
        action="hold",
        rules=("lookalike",),
        verdict_json='{"action": "hold"}',
        approvers=(),
        offer_bcc=True,
        language="ja",
    )


async def main(kind: str, where: str) -> None:
    url = sqlite_url(Path(where)) if kind == "sqlite" else where
    store = await open_store(url)
    await store.create_hold(_hold("H-LEGACY01", HELD_RAW, HoldState.HELD), HELD_RAW)
    await store.add_token(
        TokenRecord(
            token_hash="a" * 64,
            hold_id="H-LEGACY01",
            actor="yamada@city.example.lg.jp",
            expires_at=T0 + timedelta(days=3650),
            used_at=None,
        )
    )
    other = HELD_RAW.replace(b"legacy-1", b"legacy-2")
    await store.create_hold(_hold("H-LEGACY02", other, HoldState.HELD), other)
    await store.transition(
        "H-LEGACY02",
        from_states=(HoldState.HELD,),
        to_state=HoldState.RELEASED,
        actor="yamada@city.example.lg.jp",
        via=Via.WEB,
        deliver=(other, "yamada@city.example.lg.jp", ["bob@partner.example.co.jp"]),
    )
    await store.enqueue_delivery(
        QUEUED_RAW, "a@city.example.lg.jp", ["c@example.com"], not_before=T0
    )
    await store.record_sent("yamada@city.example.lg.jp", [("bob@partner.example.co.jp", "Bob")])
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
