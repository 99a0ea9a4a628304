"""The relay's own SMTP engine (``leakguard.relay.smtpd``, issue 11): the end of DATA, dot
unstuffing, limits and pipelining, driven byte by byte through a fake transport so that
every way a client's bytes can be split into reads is covered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard.relay.smtpd import (
    DataReader,
    Envelope,
    ServerSettings,
    Session,
    SmtpServerProtocol,
)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.writes = 0
        self.closed = False
        self.paused = False

    def write(self, data: Any) -> None:
        self.out += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class _Handler:
    def __init__(self) -> None:
        self.mails: list[bytes] = []

    def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        return "250 2.1.0 Sender OK"

    def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert envelope.content is not None
        self.mails.append(envelope.content)
        return "250 2.0.0 OK"

    async def handle_PROXY(
        self, server: Any, session: Session, envelope: Envelope, proxy_data: Any
    ) -> bool:
        return True

    async def handle_exception(self, error: Exception) -> str:
        return "451 4.3.0 Local error; please try again later"


async def _session(
    chunks: list[bytes], **kw: Any
) -> tuple[_Handler, _Transport, SmtpServerProtocol]:
    handler = _Handler()
    proto = SmtpServerProtocol(handler, ServerSettings(hostname="relay.test", **kw))
    tr = _Transport()
    proto.connection_made(tr)
    for c in chunks:
        proto.data_received(c)
        for _ in range(5):
            await asyncio.sleep(0)
    for _ in range(10):
        await asyncio.sleep(0)
    return handler, tr, proto


ENVELOPE = b"EHLO c\r\nMAIL FROM:<a@x.jp>\r\nRCPT TO:<b@y.jp>\r\nDATA\r\n"


def _reference(stream: bytes) -> bytes | None:
    """The message as RFC 5321 defines it: lines up to the line ".", each leading dot
    removed; None when the stream has no end."""
    out = []
    pos = 0
    while True:
        end = stream.find(b"\r\n", pos)
        if end < 0:
            return None
        line = stream[pos : end + 2]
        pos = end + 2
        if line == b".\r\n":
            return b"".join(out)
        out.append(line[1:] if line.startswith(b".") else line)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return [p for p in pieces if p]


_LINE = (
    st.lists(
        st.sampled_from([b"text", b".", b"..", b"\n", b"\r", b".\n", b"\n.\n", b"\r.", b" "]),
        max_size=6,
    )
    .map(b"".join)
    .filter(lambda b: b"\r\n" not in b)
)  # one line: no CRLF inside


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(_LINE, max_size=12), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_data_ends_only_at_crlf_dot_crlf_however_the_reads_fall(
    lines: list[bytes], cuts: list[int]
) -> None:
    """A client dot-stuffs its lines (RFC 5321 §4.5.2); the relay gets them back exactly,
    however the stream is cut into reads."""
    stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
    want = b"".join(ln + b"\r\n" for ln in lines)
    stream = stuffed + b".\r\n"
    assert _reference(stream) == want
    chunks = _split(ENVELOPE + stream + b"QUIT\r\n", cuts)
    handler, tr, _ = asyncio.run(_session(chunks))
    assert handler.mails == [want]
    assert tr.out.endswith(b"250 2.0.0 OK\r\n221 Bye\r\n")


@pytest.mark.parametrize(
    "smuggle",
    [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n\x00.\r\n"],
)
def test_other_line_ends_never_end_data(smuggle: bytes) -> None:
    """SMTP smuggling: a second mail hidden behind an end-of-data only some servers see."""
    stream = (
        b"Subject: one\r\n\r\nbody"
        + smuggle
        + b"MAIL FROM:<evil@x.jp>\r\nRCPT TO:<victim@y.jp>\r\nDATA\r\nsmuggled\r\n.\r\n"
    )
    handler, tr, _ = asyncio.run(_session([ENVELOPE + stream + b"QUIT\r\n"]))
    assert len(handler.mails) == 1
    assert b"smuggled" in handler.mails[0] and b"MAIL FROM:<evil" in handler.mails[0]
    assert tr.out.count(b"354") == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
def test_data_reader_matches_the_reference_on_any_bytes(data: bytes, cuts: list[int]) -> None:
    """Any bytes, cut anywhere: the reader ends where the reference ends, with its message
    and the same bytes after it."""
    stream = data + b"\r\n.\r\nafter"
    want = _reference(stream)
    assert want is not None
    first = stream.find(b"\r\n.\r\n")  # the first end (maybe inside ``data``)
    end = 3 if stream.startswith(b".\r\n") else first + 5
    reader = DataReader(0)
    rest = None
    for piece in _split(stream, cuts):
        assert rest is None
        rest = reader.feed(piece)
        if rest is not None:
            break
    assert rest is not None
    assert reader.message() == want
    assert stream[end:].startswith(rest)


def test_an_empty_message_and_pipelined_transactions_after_it() -> None:
    two = ENVELOPE + b".\r\nMAIL FROM:<a@x.jp>\r\nRCPT TO:<c@y.jp>\r\nDATA\r\n..dot\r\n.\r\n"
    handler, tr, _ = asyncio.run(_session([two + b"QUIT\r\n"]))
    assert handler.mails == [b"", b".dot\r\n"]
    # everything up to the first 354 in one write, then one write a step
    assert tr.out.count(b"354") == 2 and tr.out.endswith(b"221 Bye\r\n")


def test_over_the_size_limit_552_and_the_next_mail_goes_through() -> None:
    big = b"x" * 998 + b"\r\n"
    stream = ENVELOPE + big * 30 + b".\r\n" + ENVELOPE[8:] + b"small\r\n.\r\nQUIT\r\n"
    handler, tr, _ = asyncio.run(
        _session(_split(stream, list(range(0, 40000, 777))), data_size_limit=10_000)
    )
    assert b"552 Error: Too much mail data" in tr.out
    assert handler.mails == [b"small\r\n"]


def test_replies_to_pipelined_commands_go_in_one_write() -> None:
    _h1, tr, _ = asyncio.run(_session([b"EHLO c\r\n"]))
    before = tr.writes
    _h, tr2, _p = asyncio.run(
        _session([b"EHLO c\r\nMAIL FROM:<a@x.jp>\r\n" + b"RCPT TO:<b@y.jp>\r\n" * 10 + b"DATA\r\n"])
    )
    assert before == 2  # greeting, EHLO
    assert tr2.writes == 2  # greeting, then EHLO+MAIL+10 RCPT+354 together
    assert tr2.out.count(b"250 2.1.5") == 10 and tr2.out.endswith(
        b"354 End data with <CR><LF>.<CR><LF>\r\n"
    )
    assert b"250-PIPELINING\r\n" in tr2.out


def test_a_command_line_without_end_is_dropped_not_kept() -> None:
    _h, tr, proto = asyncio.run(_session([b"NOOP " + b"a" * 70000, b"b" * 70000, b"\r\nNOOP\r\n"]))
    assert tr.out.endswith(b"500 Command line too long\r\n250 OK\r\n")
    assert len(proto._in) == 0


def test_a_client_that_never_reads_is_paused_not_buffered_without_end() -> None:
    handler = _Handler()

    async def run() -> tuple[_Transport, SmtpServerProtocol]:
        proto = SmtpServerProtocol(handler, ServerSettings(hostname="relay.test"))
        tr = _Transport()
        proto.connection_made(tr)
        proto.pause_writing()
        for _ in range(100):
            proto.data_received(b"NOOP\r\n" * 1000)
        return tr, proto

    tr, _proto = asyncio.run(run())
    assert tr.paused


def test_unknown_commands_five_times_ends_the_connection() -> None:
    _h, tr, _ = asyncio.run(_session([b"FOO\r\n" * 6]))
    assert tr.out.count(b'500 Error: command "FOO" not recognized') == 4
    assert b"502 5.5.1 Too many unrecognized commands, goodbye." in tr.out and tr.closed


def test_call_limits_421() -> None:
    _h, tr, _ = asyncio.run(_session([b"NOOP\r\n" * 4], call_limits={"NOOP": 3, "*": 100}))
    assert tr.out.endswith(b"421 4.7.0 NOOP sent too many times\r\n") and tr.closed


def test_starttls_throws_away_what_was_pipelined_after_it() -> None:
    """RFC 3207 §5: a command injected in plain text after STARTTLS must not run."""
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)

    async def run() -> tuple[_Handler, _Transport]:
        handler = _Handler()
        proto = SmtpServerProtocol(
            handler, ServerSettings(hostname="relay.test", tls_context=ctx, require_starttls=True)
        )
        tr = _Transport()
        proto.connection_made(tr)
        loop = asyncio.get_running_loop()
        started: list[bool] = []

        async def fake_start_tls(*a: Any, **k: Any) -> Any:
            started.append(True)
            return None  # handshake failed: the connection ends

        loop.start_tls = fake_start_tls  # type: ignore[method-assign]
        proto.data_received(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@x.jp>\r\n")
        for _ in range(10):
            await asyncio.sleep(0)
        assert started
        return handler, tr

    _handler, tr = asyncio.run(run())
    assert b"220 Ready to start TLS" in tr.out
    assert b"Sender OK" not in tr.out and b"530" not in tr.out.split(b"220 Ready")[1]


def test_a_command_pipelined_behind_the_end_of_data_is_no_sign_the_reply_was_read() -> None:
    """Retry recognition (issue 12): a client that sent ".CRLF QUIT" in one write and lost
    the connection may never have seen the 250; only a command sent after it shows that."""

    class Counting(SmtpServerProtocol):
        seen = 0

        def on_command(self) -> None:
            Counting.seen += 1

    async def run() -> tuple[int, int]:
        proto = Counting(_Handler(), ServerSettings(hostname="relay.test"))
        proto.connection_made(_Transport())
        proto.data_received(ENVELOPE + b"text\r\n.\r\nNOOP\r\n")
        for _ in range(10):
            await asyncio.sleep(0)
        behind = Counting.seen
        proto.data_received(b"NOOP\r\n")
        return behind, Counting.seen

    behind, after = asyncio.run(run())
    assert behind == 4  # EHLO, MAIL, RCPT, DATA; not the NOOP that came with the end of data
    assert after == 5  # a NOOP sent after the 250


def test_a_garbage_proxy_header_is_reported_and_closed() -> None:
    reasons: list[str] = []

    class Recording(SmtpServerProtocol):
        def on_proxy_refused(self, reason: str) -> None:
            reasons.append(reason)

    async def run() -> _Transport:
        proto = Recording(_Handler(), ServerSettings(hostname="relay.test", proxy_timeout=5.0))
        tr = _Transport()
        proto.connection_made(tr)
        proto.data_received(b"HELLO there\r\nEHLO x\r\n")
        for _ in range(20):
            await asyncio.sleep(0)
        return tr

    tr = asyncio.run(run())
    assert tr.closed and b"220" not in tr.out  # no greeting, nothing answered
    assert reasons and "signature" in reasons[0].lower()
