"""Calendar invitations and the relay's own thread record (issue 8): attendees invited
together before (the same event UID, as every update of a meeting carries) have met; a first
invitation to several outside organisations still exposes them to each other."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from leakguard.engine import Engine, calendar_thread_id, thread_ids
from leakguard.policy.loader import default_policy_path
from leakguard.relay.actions import Relay, RelaySettings

ROOT = Path(__file__).resolve().parents[1]
INVITE = (ROOT / "examples" / "calendar-invite-ja.eml").read_bytes()


def test_invitation_uid_is_a_thread_id_and_updates_pass() -> None:
    engine = Engine.from_files(default_policy_path())
    try:
        first = engine.decide(INVITE)
        msg = first.message
        assert msg.calendar_uids, "the extractor reads the event's UID"
        assert calendar_thread_id(msg.calendar_uids[0]) in thread_ids(msg)
        assert "mixed-organizations" in first.verdict.rule_ids  # a new mix: held

        met = frozenset(
            a.key for a in (*msg.from_, *msg.visible_recipients, *msg.calendar_attendees)
        )
        asked: list[Sequence[str]] = []

        def lookup(ids: Sequence[str]) -> tuple[frozenset[str], ...]:
            asked.append(ids)
            return (met,) if calendar_thread_id(msg.calendar_uids[0]) in ids else ()

        update = engine.decide(INVITE, thread_lookup=lookup)
        assert asked and "mixed-organizations" not in update.verdict.rule_ids
    finally:
        engine.close()


async def test_relay_records_an_invitation_under_its_uid() -> None:
    engine = Engine.from_files(default_policy_path())
    try:
        msg = engine.decide(INVITE).message
    finally:
        engine.close()

    async def flush() -> None:
        return None

    relay = SimpleNamespace(
        settings=RelaySettings(),
        org=engine.policy.organization,
        _threads=[],
        _threads_task=None,
        _flush_threads=flush,
    )
    Relay.remember_thread(relay, msg, visible=True)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    keys = {e.message_id for e in relay._threads}
    assert calendar_thread_id(msg.calendar_uids[0]) in keys
    entry = next(e for e in relay._threads if e.message_id.startswith("ical-uid:"))
    for a in msg.calendar_attendees:
        assert a.key in entry.addresses
