"""Issue 11, the SMTP front's own costs: PIPELINING (RFC 2920) with replies written
together, the EHLO reply in one write, and the address parser (same result as aiosmtpd's)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard.metrics import Metrics
from leakguard.relay.actions import Transaction
from leakguard.relay.auth import Throttle
from leakguard.relay.server import LeakguardSMTP, ListenerSpec, start_listener
from leakguard.relay.smtpd import ServerSettings, SmtpServerProtocol


class _Log:
    def __getattr__(self, _name: str) -> Any:
        return lambda *a, **k: None


class _Relay:
    """What the plain listener needs of ``Relay``: the transactions it was given."""

    def __init__(self) -> None:
        self.txs: list[Transaction] = []

    def may_send_as(self, principal: str, address: str) -> bool:
        return True

    async def process(self, tx: Transaction, receipt: object = None, gone: object = None) -> str:
        self.txs.append(tx)
        return "250 2.0.0 OK"

    def abandoned(self, key: object, decision_id: str) -> None:
        pass


@pytest.fixture
async def front() -> AsyncIterator[tuple[int, _Relay]]:
    relay = _Relay()
    server, _rt = await start_listener(
        ListenerSpec("plain", "plain", "127.0.0.1", 0, ["127.0.0.0/8"], 100),
        relay=relay,  # type: ignore[arg-type]
        hostname="relay.test",
        tls_context=None,
        authenticator=None,
        throttle=Throttle(),
        metrics=Metrics(),
        log=_Log(),
        data_size_limit=1 << 20,
        max_recipients=100,
        idle_timeout=30,
        line_length_limit=65536,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, relay
    finally:
        server.close()
        await server.wait_closed()


def _reads(port: int, script: list[bytes], expect_lines: int) -> list[bytes]:
    """Send each chunk of ``script`` at once and return the ``recv`` results (one per
    segment the server wrote) until ``expect_lines`` reply lines have arrived."""
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        greeting = s.recv(4096)
        assert greeting.startswith(b"220 ")
        for part in script:
            s.sendall(part)
            got = b""
            want = part.count(b"\r\n") if not part.startswith(b"Subject") else 1
            while got.count(b"\r\n") < want or (got and not _complete(got)):
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
                got += data
                time.sleep(0.05)  # let a second write (if any) arrive as its own segment
        del expect_lines
    return chunks


def _complete(buf: bytes) -> bool:
    last = buf.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1]
    return len(last) >= 4 and last[3:4] == b" "


async def test_ehlo_is_one_write_and_offers_pipelining(front: tuple[int, _Relay]) -> None:
    port, _ = front
    chunks = await asyncio.to_thread(_reads, port, [b"EHLO client.test\r\n"], 1)
    assert len(chunks) == 1, chunks  # one segment: the whole multi-line reply in one write
    lines = chunks[0].decode().split("\r\n")[:-1]
    assert lines[0] == "250-relay.test"
    assert "250-PIPELINING" in lines
    assert lines[-1] == "250 HELP"
    assert all(x.startswith("250-") for x in lines[:-1])


async def test_pipelined_group_is_answered_in_order_in_one_write(
    front: tuple[int, _Relay],
) -> None:
    port, relay = front
    group = (
        b"MAIL FROM:<alice@city.example.lg.jp> BODY=8BITMIME\r\n"
        b"RCPT TO:<bob@partner.example.co.jp>\r\n"
        b"RCPT TO:<not an address>\r\n"
        b"RCPT TO:<carol@city.example.lg.jp>\r\n"
        b"DATA\r\n"
    )
    chunks = await asyncio.to_thread(
        _reads,
        port,
        [b"EHLO c\r\n", group, b"Subject: x\r\n\r\nbody\r\n.\r\n", b"QUIT\r\n"],
        0,
    )
    # EHLO | the five replies of the group in one write | 250 after the data | 221
    replies = [c.decode() for c in chunks]
    assert len(chunks) == 4, replies
    codes = [line[:3] for line in replies[1].split("\r\n")[:-1]]
    assert codes == ["250", "250", "553", "250", "354"], replies[1]
    assert replies[2].startswith("250 2.0.0 OK")
    assert replies[3].startswith("221")
    (tx,) = relay.txs
    assert tx.rcpts == ("bob@partner.example.co.jp", "carol@city.example.lg.jp")
    assert tx.eightbit and tx.raw == b"Subject: x\r\n\r\nbody\r\n"


async def test_unpipelined_client_gets_every_reply_at_once(front: tuple[int, _Relay]) -> None:
    """A reply is held back only while the next command is already here: a client that
    waits for each reply gets it (no deadlock, nothing waits for more input)."""
    port, relay = front
    script = [
        b"HELO c\r\n",
        b"MAIL FROM:<a@city.example.lg.jp>\r\n",
        b"RCPT TO:<b@city.example.lg.jp>\r\n",
        b"DATA\r\n",
        b"Subject: y\r\n\r\n.\r\n",
        b"RSET\r\n",
        b"QUIT\r\n",
    ]
    chunks = await asyncio.to_thread(_reads, port, script, 0)
    assert [c[:3] for c in chunks] == [b"250", b"250", b"250", b"354", b"250", b"250", b"221"]
    assert len(relay.txs) == 1


async def test_pipelined_data_after_data_is_not_a_second_transaction(
    front: tuple[int, _Relay],
) -> None:
    """Smuggling: a client that pipelines the message and a second envelope behind a
    bare-LF "end of data" gets one transaction whose content holds all of it."""
    port, relay = front
    smuggled = (
        b"EHLO c\r\nMAIL FROM:<a@city.example.lg.jp>\r\nRCPT TO:<b@city.example.lg.jp>\r\n"
        b"DATA\r\nSubject: z\r\n\r\nhello\n.\nMAIL FROM:<evil@city.example.lg.jp>\r\n"
        b"RCPT TO:<victim@partner.example.co.jp>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n"
    )

    def talk() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.recv(4096)
            s.sendall(smuggled)
            out = b""
            while b"221" not in out:
                data = s.recv(65536)
                if not data:
                    break
                out += data
            return out

    out = await asyncio.to_thread(talk)
    assert out.count(b"354") == 1 and b"221" in out
    (tx,) = relay.txs
    assert tx.mail_from == "a@city.example.lg.jp"
    assert b"MAIL FROM:<evil" in tx.raw and b"smuggled" in tx.raw


# ---------------------------------------------------------------------- address parser


def _slow(arg: str) -> tuple[str | None, str | None]:
    proto = object.__new__(LeakguardSMTP)
    proto.local_part_limit = 0
    return SMTP._getaddr(proto, arg)


def _fast(arg: str, limit: int = 0) -> tuple[str | None, str | None]:
    proto = object.__new__(SmtpServerProtocol)
    proto.settings = ServerSettings(hostname="relay.test", local_part_limit=limit)
    return proto._getaddr(arg)


_ATOM = st.text("abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=6)
_NOISE = st.text('ab.@<>()[]" \t\\:;,é\x00', max_size=6)


@st.composite
def _commands(draw: st.DrawFn) -> str:
    local = ".".join(draw(st.lists(_ATOM, min_size=1, max_size=3)))
    domain = ".".join(draw(st.lists(_ATOM, min_size=1, max_size=3)))
    addr = f"{local}@{domain}"
    lead = draw(st.sampled_from(["", " ", "\t"]))
    wrap = draw(st.sampled_from(["<{}>", "{}", "<{}", "<<{}>>", "< {} >"]))
    tail = draw(st.sampled_from(["", " ", "  SIZE=100", " BODY=8BITMIME", "(c) X=1", " (c)"]))
    noise = draw(_NOISE)
    where = draw(st.integers(0, 3))
    parts = [lead, wrap.format(addr), tail]
    if where < 3:
        parts.insert(where, noise)
    return "".join(parts)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_commands(), st.text(max_size=40)))
def test_fast_address_parser_equals_aiosmtpd(arg: str) -> None:
    assert _outcome(_fast, arg) == _outcome(_slow, arg)


def _outcome(parse: Any, arg: str) -> object:
    """The result, or the exception's type. aiosmtpd's parser raises IndexError on some
    input (e.g. "0@"): ours calls that malformed, as (None, None)."""
    try:
        return parse(arg)
    except IndexError:
        return None, None
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize(
    "arg",
    [
        "<alice@city.example.lg.jp>",
        "<alice@city.example.lg.jp> SIZE=5120 BODY=8BITMIME",
        "<a.b+c@x.jp>\t SIZE=1",
        "<a@b> (comment) SIZE=1",
        '<"quoted local"@x.jp>',
        "<a@[127.0.0.1]>",
        "<>",
        "<@route:a@b.jp>",
        "alice@x.jp",
        " <alice@x.jp>",
        "<a..b@x.jp>",
        "<.a@x.jp>",
        "<a@x.jp.>",
        "<ａ@x.jp>",
    ],
)
def test_fast_address_parser_on_known_cases(arg: str) -> None:
    assert _fast(arg) == _slow(arg)


def test_fast_address_parser_keeps_the_local_part_limit() -> None:
    assert _fast("<abcdef@x.jp>", limit=5) == (None, None)
    assert _fast("<abcde@x.jp>", limit=5) == ("abcde@x.jp", "")
