"""The relay's own thread record (issue 8): who already met, by In-Reply-To/References.

Store (SQLite and PostgreSQL), the engine hook between parse and detect, the acquaintance
rule of ``exposed_external_organizations``, and recording through the relay on pass, Bcc
and held-then-released mail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from replyall_mails import B_REPLY_ID, CLIENTS, FIRST_ID, SENDER, A, B, C
from test_store import _hold, _pg_store

from leakguard.detectors.recipients import already_acquainted, detect
from leakguard.engine import Engine, thread_ids, with_default_envelope
from leakguard.holds.model import HoldState, Via
from leakguard.message import parse_message
from leakguard.organization import Context, Organization, SenderHistory
from leakguard.store import SqlStore, ThreadEntry, open_store, sqlite_url
from leakguard.store.threads import MAX_ADDRESSES, MAX_LOOKUP_IDS, message_id_key
from leakguard.types import Address, QuotedBlock, QuoteKind

ROOT = Path(__file__).resolve().parent.parent
ORG = Organization(internal_domains=["city.example.lg.jp", "*.city.example.lg.jp"])
SINCE = datetime.now(UTC) - timedelta(days=180)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        s = await open_store(sqlite_url(tmp_path / "lg.db"))
        try:
            yield s
        finally:
            await s.close()
    else:
        async for s in _pg_store():
            yield s


# --------------------------------------------------------------------------- store


async def test_record_and_look_up_by_message_id(store: SqlStore) -> None:
    n = await store.record_threads(
        [
            ThreadEntry("<m1@city.example.lg.jp>", (SENDER, A.upper(), B), (SENDER,)),
            ThreadEntry("m2@city.example.lg.jp", (SENDER, C)),
            ThreadEntry("", (SENDER, A)),  # no Message-ID: nothing to find it by
            ThreadEntry("<m3@x>", (SENDER,)),  # one address: nobody met anybody
        ]
    )
    assert n == 2
    groups = await store.thread_groups([" m1@city.example.lg.jp ", "unknown@x"], since=SINCE)
    assert groups == (frozenset({SENDER, A, B}),)  # lower-cased, brackets ignored
    assert await store.thread_groups(["<m2@city.example.lg.jp>"], since=SINCE) == (
        frozenset({SENDER, C}),
    )
    # Message-IDs are case-sensitive: another case is another mail
    assert await store.thread_groups(["M1@city.example.lg.jp"], since=SINCE) == ()
    assert await store.thread_groups([], since=SINCE) == ()


async def test_held_mail_counts_only_once_released(store: SqlStore) -> None:
    for hid, mid in (("H-REL", "r"), ("H-BCC", "b"), ("H-DIS", "d"), ("H-OPEN", "o")):
        raw = f"Subject: {hid}\r\n\r\nx\r\n".encode()
        await store.create_hold(_hold(hid, raw=raw), raw)
        inside = (SENDER, "x@city.example.lg.jp")
        entry = ThreadEntry(f"{mid}@city.example.lg.jp", (*inside, A, B), inside, hold_id=hid)
        await store.record_threads([entry])
    for hid, state in (
        ("H-REL", HoldState.RELEASED),
        ("H-BCC", HoldState.RELEASED_BCC),
        ("H-DIS", HoldState.DISCARDED),
    ):
        done = await store.transition(
            hid, from_states=[HoldState.HELD], to_state=state, actor="t", via=Via.CLI
        )
        assert done is not None
    look = store.thread_groups
    assert await look(["r@city.example.lg.jp"], since=SINCE) == (
        frozenset({SENDER, "x@city.example.lg.jp", A, B}),
    )
    # released as Bcc: only what stayed visible (the externals never saw each other)
    assert await look(["b@city.example.lg.jp"], since=SINCE) == (
        frozenset({SENDER, "x@city.example.lg.jp"}),
    )
    assert await look(["d@city.example.lg.jp"], since=SINCE) == ()  # discarded
    assert await look(["o@city.example.lg.jp"], since=SINCE) == ()  # still held


async def test_retention_and_bounds(store: SqlStore) -> None:
    many = tuple(f"p{i}@org{i}.example" for i in range(MAX_ADDRESSES + 50))
    await store.record_threads([ThreadEntry("big@x", (SENDER, *many))])
    (group,) = await store.thread_groups(["big@x"], since=SINCE)
    assert len(group) == MAX_ADDRESSES and SENDER in group
    # only the last MAX_LOOKUP_IDS ids are looked up
    ids = ["big@x", *(f"filler{i}@x" for i in range(MAX_LOOKUP_IDS))]
    assert await store.thread_groups(ids, since=SINCE) == ()
    assert len(await store.thread_groups(ids[:MAX_LOOKUP_IDS], since=SINCE)) == 1
    # records older than ``since`` do not count, and pruning forgets them
    assert await store.thread_groups(["big@x"], since=datetime.now(UTC) + timedelta(1)) == ()
    assert await store.prune_threads(datetime.now(UTC) - timedelta(days=1)) == 0
    assert await store.prune_threads(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await store.thread_groups(["big@x"], since=SINCE) == ()


def test_message_id_key_is_fixed_size_for_hostile_ids() -> None:
    assert len(message_id_key("<" + "x" * 100000 + "@y>")) == 64
    assert message_id_key("<a@b>") == message_id_key(" a@b ")
    assert message_id_key("\udcff@x") != message_id_key("x@x")  # undecodable: no crash


# --------------------------------------------------------------------------- engine hook


def _msg(raw: bytes):  # type: ignore[no-untyped-def]
    return with_default_envelope(parse_message(raw))


def test_thread_ids_in_reply_to_then_latest_references() -> None:
    raw = CLIENTS["gmail-ja"]()
    assert thread_ids(_msg(raw)) == (B_REPLY_ID, FIRST_ID)
    refs = " ".join(f"<r{i}@x>" for i in range(100))
    raw2 = f"From: {SENDER}\r\nTo: {A}\r\nReferences: {refs}\r\nIn-Reply-To: junk\r\n\r\nx\r\n"
    ids = thread_ids(_msg(raw2.encode()))
    assert ids[0] == "r99@x" and len(ids) == 20  # the latest mails of a long thread
    assert thread_ids(_msg(f"From: {SENDER}\r\nTo: {A}\r\n\r\nx\r\n".encode())) == ()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_files(ROOT / "policies" / "default.yaml")


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_reply_all_passes_with_the_relays_record(engine: Engine, client: str) -> None:
    build = CLIENTS[client]
    seen: list[tuple[str, ...]] = []

    def lookup(ids: tuple[str, ...]) -> tuple[frozenset[str], ...]:
        seen.append(ids)
        return (frozenset({SENDER, A, B}),) if FIRST_ID in ids else ()

    # without the record the reply-all shows two organisations to each other: held
    assert engine.decide(build()).verdict.action == "hold"
    d = engine.decide(build(), thread_lookup=lookup)
    assert d.verdict.action == "pass", d.verdict.rule_ids
    assert seen == [(B_REPLY_ID, FIRST_ID)]
    # a brand-new address in the same reply-all is still a new mix: held
    d = engine.decide(build(extra_cc=(C,)), thread_lookup=lookup)
    assert d.verdict.action == "hold" and "mixed-organizations" in d.verdict.rule_ids


def test_lookup_failure_or_separate_mails_never_let_it_through(engine: Engine) -> None:
    raw = CLIENTS["iphone-ja"]()

    def broken(_ids: tuple[str, ...]) -> tuple[frozenset[str], ...]:
        raise TimeoutError

    assert engine.decide(raw, thread_lookup=broken).verdict.action == "hold"
    assert engine.decide(raw, thread_lookup=lambda _i: None).verdict.action == "hold"
    # A and B each wrote to by the sender, but never together: they have not met
    apart = (frozenset({SENDER, A}), frozenset({SENDER, B}))
    assert engine.decide(raw, thread_lookup=lambda _i: apart).verdict.action == "hold"


# --------------------------------------------------------------------------- acquaintance


def _acq(raw: bytes, history: SenderHistory | None = None) -> bool:
    msg = _msg(raw)
    ctx = Context(org=ORG, history=history or SenderHistory())
    visible = [a for a in msg.visible_recipients if not ORG.is_internal(a)]
    return already_acquainted(msg, visible, ctx)


def _reply(body: str, cc: str = A, charset: str = "utf-8") -> bytes:
    head = (
        f"From: {SENDER}\r\nTo: {B}\r\nCc: {cc}\r\nSubject: Re: x\r\n"
        f"In-Reply-To: <{B_REPLY_ID}>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + body.replace("\n", "\r\n").encode(charset)


NESTED = (
    "了解しました。\n\n"
    f"On Tue, Feb 18, 2025 at 9:00 AM Mari Nakamura <{B}> wrote:\n"
    "> 承知しました。\n>\n"
    f"> 2025年2月17日(月) 10:00 高橋 健一 <{A}>:\n"
    ">> 各位\n>> 資料をお送りします。\n"
)


@pytest.mark.parametrize("charset", ["utf-8", "shift_jis", "iso-2022-jp"])
def test_nested_reply_authors_have_met(charset: str) -> None:
    # B answered A's mail (quoted inside B's): each has seen the other's address
    assert _acq(_reply(NESTED, charset=charset))
    # ... but a third organisation nobody quoted has not
    assert not _acq(_reply(NESTED, cc=f"{A}, {C}", charset=charset))


def test_a_forward_between_the_replies_breaks_the_chain() -> None:
    body = (
        "了解しました。\n\n"
        f"On Tue, Feb 18, 2025 at 9:00 AM Mari Nakamura <{B}> wrote:\n"
        "> 拝見しました。\n>\n"
        "> -----Original Message-----\n"
        f"> From: 佐藤 一也 <{SENDER}>\n> Sent: Monday, February 17, 2025 10:00 AM\n"
        f"> To: {B}\n> Subject: FW: 資料\n>\n"
        f"> 2025年2月17日(月) 10:00 高橋 健一 <{A}>:\n"
        ">> 資料をお送りします。\n"
    )
    # the sender forwarded A's mail to B: A never saw B
    assert not _acq(_reply(body))


def test_top_level_author_alone_is_not_enough() -> None:
    body = (
        f"2025/02/17 18:03、中村 真理 <{B}>のメール:\n\n> 佐藤様、高橋様\n> 図面を確認しました。\n"
    )
    # B wrote to the sender; whether A was on B's mail is unknown: a new mix is held
    assert not _acq(_reply(body))
    assert _acq(_reply(body), SenderHistory(sent_together=(frozenset({A, B, SENDER}),)))


def _with_blocks(raw: bytes, *blocks: QuotedBlock):  # type: ignore[no-untyped-def]
    return dataclasses.replace(_msg(raw), quoted_blocks=blocks)


def test_name_only_authors_match_known_recipients_by_full_name() -> None:
    # "中村 真理 wrote:" quoting "高橋 健一 wrote:" with no address (as Thunderbird writes)
    outer = QuotedBlock(
        kind=QuoteKind.ATTRIBUTION,
        location="text part 1, line 3",
        participants=(Address("", "", "中村 真理"),),
        addresses=(),
        participants_known=False,
        senders=(Address("", "", "中村 真理"),),
    )
    inner = dataclasses.replace(
        outer,
        participants=(Address("", "", "高橋健一"),),
        senders=(Address("", "", "高橋健一"),),
        parent=0,
    )
    raw = (
        f"From: {SENDER}\r\nTo: =?UTF-8?B?5Lit5p2RIOecn+eQhg==?= <{B}>\r\n"
        f"Cc: =?UTF-8?B?6auY5qmLIOWBpeS4gA==?= <{A}>\r\nSubject: Re\r\n\r\nx\r\n"
    ).encode()
    msg = _with_blocks(raw, outer, inner)
    visible = list(msg.visible_recipients)
    assert already_acquainted(msg, visible, Context(org=ORG))
    # with a known history, a name-only author is only taken for an address written to before
    known = SenderHistory(recipients=frozenset({B}), known=True)
    assert not already_acquainted(msg, visible, Context(org=ORG, history=known))
    both = SenderHistory(recipients=frozenset({A, B}), known=True)
    assert already_acquainted(msg, visible, Context(org=ORG, history=both))
    # a surname alone ("高橋") is never a name match
    bare = dataclasses.replace(
        inner, participants=(Address("", "", "高橋"),), senders=(Address("", "", "高橋"),)
    )
    assert not already_acquainted(_with_blocks(raw, outer, bare), visible, Context(org=ORG))
    # the name the sender used for the address before counts too (contact_names)
    plain = (f"From: {SENDER}\r\nTo: {B}\r\nCc: {A}\r\nSubject: Re\r\n\r\nx\r\n").encode()
    msg2 = _with_blocks(plain, outer, inner)
    names = SenderHistory(
        recipients=frozenset({A, B}),
        contact_names={A: ("高橋 健一",), B: ("中村 真理",)},
        known=True,
    )
    assert already_acquainted(msg2, list(msg2.visible_recipients), Context(org=ORG, history=names))
    assert not already_acquainted(msg2, list(msg2.visible_recipients), Context(org=ORG))


def test_exposed_fact_uses_the_record() -> None:
    msg = _msg(CLIENTS["outlook-en"]())
    plain = detect(msg, Context(org=ORG))
    assert plain.facts["exposed_external_organizations"] == 2
    hist = SenderHistory(sent_together=(frozenset({SENDER, A, B}),))
    met = detect(msg, Context(org=ORG, history=hist))
    assert met.facts["exposed_external_organizations"] == 0
    assert met.facts["visible_external_organizations"] == 2  # the contract fact is unchanged


def test_names_only_header_block_outlook_2013() -> None:
    # "From: Nakamura Mari / To: Sato Kazuya; Takahashi Kenichi": names, no addresses
    block = QuotedBlock(
        kind=QuoteKind.HEADER_BLOCK,
        location="text part 1, line 6",
        participants=(
            Address("", "", "Nakamura Mari"),
            Address("", "", "Sato Kazuya"),
            Address("", "", "Takahashi Kenichi"),
        ),
        addresses=(),
        senders=(Address("", "", "Nakamura Mari"),),
    )
    raw = (
        f"From: Sato Kazuya <{SENDER}>\r\nTo: Mari Nakamura <{B}>\r\n"
        f"Cc: Takahashi Kenichi <{A}>\r\nSubject: RE: Drawings\r\n\r\nx\r\n"
    ).encode()
    msg = _with_blocks(raw, block)
    visible = list(msg.visible_recipients)
    assert already_acquainted(msg, visible, Context(org=ORG))
    # a third organisation the block does not name is still new
    raw_c = raw.replace(b"Subject", f"Bcc: x@y\r\nCc: Naoki Kobayashi <{C}>\r\nSubject".encode())
    msg_c = _with_blocks(raw_c, block)
    assert not already_acquainted(msg_c, list(msg_c.visible_recipients), Context(org=ORG))
    # given names alone never identify anybody
    given = dataclasses.replace(
        block, participants=(Address("", "", "Mari"), Address("", "", "Kenichi"))
    )
    assert not already_acquainted(_with_blocks(raw, given), visible, Context(org=ORG))
