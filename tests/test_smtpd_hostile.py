"""The relay's own SMTP engine (``relay/smtpd.py``, issues 11 and 12) against hostile and
careless clients: real sockets against ``start_listener`` (plain, submission, smtps and
PROXY-protocol listeners), plus byte-at-a-time runs through a fake transport."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trustme
from loops import event_loop_policy  # noqa: F401  (both event loops)
from test_smtpd_protocol import _Handler, _reference, _Transport

from leakguard.metrics import Metrics
from leakguard.relay import replies
from leakguard.relay import server as server_mod
from leakguard.relay import smtpd as smtpd_mod
from leakguard.relay.actions import Transaction
from leakguard.relay.auth import Throttle
from leakguard.relay.server import ListenerRuntime, ListenerSpec, start_listener
from leakguard.relay.smtpd import _PAUSE_AT, ServerSettings, SmtpServerProtocol

USER, PASSWORD = "alice@city.example.lg.jp", "s3cret-pw"
BOB = "bob@partner.example.co.jp"


class _Log:
    """Every log call, to check what is (not) logged."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **kw: Any) -> None:
            self.records.append((level, event, kw))

        return log

    def text(self) -> str:
        return repr(self.records)


class _Relay:
    def __init__(self) -> None:
        self.txs: list[Transaction] = []
        self.gate: asyncio.Event | None = None  # set: process() waits for it
        self.started = asyncio.Event()
        self.fail: Exception | None = None
        self.cancelled = 0

    def may_send_as(self, principal: str, address: str) -> bool:
        return address == principal

    async def process(self, tx: Transaction, receipt: object = None, gone: object = None) -> str:
        self.started.set()
        if self.fail is not None:
            raise self.fail
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.txs.append(tx)
        return "250 2.0.0 OK"

    def abandoned(self, key: object, decision_id: str) -> None:
        pass


class _Users:
    async def authenticate(self, login: str, password: str) -> str | None:
        return USER if (login, password) == (USER, PASSWORD) else None

    def senders_of(self, principal: str) -> tuple[str, ...]:
        return (principal,)


@functools.cache
def _tls() -> tuple[trustme.CA, ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("relay.test").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return ca, server_ctx, client_ctx


class Lg:
    """Listeners of one test, all sharing one fake relay and log."""

    def __init__(self) -> None:
        self.ca, self.server_ctx, self.client_ctx = _tls()
        self.relay = _Relay()
        self.log = _Log()
        self.errors: list[dict[str, Any]] = []
        self.servers: list[asyncio.Server] = []

    async def listen(
        self,
        kind: str = "plain",
        *,
        trusted: tuple[str, ...] = ("127.0.0.0/8",),
        max_connections: int = 100,
        proxy_trusted: tuple[str, ...] | None = None,
        data_size_limit: int = 1 << 20,
        idle_timeout: float = 30,
    ) -> tuple[int, ListenerRuntime]:
        spec = ListenerSpec(
            kind,
            kind,
            "127.0.0.1",
            0,
            list(trusted),
            max_connections,
            proxy_protocol=proxy_trusted is not None,
            proxy_trusted=list(proxy_trusted or ()),
        )
        srv, rt = await start_listener(
            spec,
            relay=self.relay,  # type: ignore[arg-type]
            hostname="relay.test",
            tls_context=self.server_ctx,
            authenticator=_Users(),
            throttle=Throttle(),
            metrics=Metrics(),
            log=self.log,
            data_size_limit=data_size_limit,
            max_recipients=100,
            idle_timeout=idle_timeout,
            line_length_limit=65536,
        )
        self.servers.append(srv)
        return srv.sockets[0].getsockname()[1], rt


@pytest.fixture
async def lg(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Lg]:
    monkeypatch.setattr(server_mod.RelayHandler, "fail_delay", 0.0)
    env = Lg()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: env.errors.append(ctx))
    try:
        yield env
    finally:
        for srv in env.servers:
            srv.close()
        await asyncio.sleep(0.05)
        for srv in env.servers:
            await srv.wait_closed()
    assert not [r for r in env.log.records if r[0] in ("error", "exception", "critical")]
    assert not env.errors, env.errors


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer

    @classmethod
    async def open(
        cls, port: int, *, tls: ssl.SSLContext | None = None, greet: bool = True
    ) -> Client:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname="relay.test" if tls else None
        )
        c = cls(reader, writer)
        if greet:
            code, _ = await c.reply()
            assert code == 220
        return c

    async def reply(self, timeout: float = 5) -> tuple[int, str]:
        """One whole (multi-line) reply; (0, "") when the connection ended."""
        lines = []
        while True:
            try:
                line = await asyncio.wait_for(self.r.readline(), timeout)
            except (ConnectionError, ssl.SSLError):
                line = b""
            if not line.endswith(b"\r\n"):
                return 0, "\n".join(lines)
            text = line[:-2].decode("utf-8", "replace")
            lines.append(text)
            if text[3:4] != "-":
                return int(text[:3]), "\n".join(lines)

    async def send(self, data: bytes) -> None:
        self.w.write(data)
        await self.w.drain()

    async def cmd(self, line: str | bytes) -> tuple[int, str]:
        await self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return await self.reply()

    async def code(self, line: str | bytes) -> int:
        return (await self.cmd(line))[0]

    async def starttls(self, ctx: ssl.SSLContext) -> None:
        assert await self.code("STARTTLS") == 220
        await self.w.start_tls(ctx, server_hostname="relay.test")

    async def closed(self, timeout: float = 5) -> bool:
        """The server ends the connection (with nothing more to read) within ``timeout``."""
        try:
            rest = await asyncio.wait_for(self.r.read(), timeout)
        except (ConnectionError, ssl.SSLError):
            return True
        except TimeoutError:
            return False
        return rest == b""

    async def close(self) -> None:
        self.w.close()
        with contextlib.suppress(Exception):
            await self.w.wait_closed()


def plain_auth(user: str = USER, password: str = PASSWORD) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


async def eventually(cond: Callable[[], bool], timeout: float = 3) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.01)
    return True


async def submission_tls(lg: Lg, port: int) -> Client:
    c = await Client.open(port)
    assert await c.code("EHLO c") == 250
    await c.starttls(lg.client_ctx)
    return c


Step = Callable[[Client], Awaitable[None]]


# ---------------------------------------------------------------------- STARTTLS


async def test_submission_allows_only_noop_ehlo_starttls_quit_before_tls(lg: Lg) -> None:
    port, _ = await lg.listen("submission")
    c = await Client.open(port)
    code, ehlo = await c.cmd("EHLO c")
    assert code == 250 and "STARTTLS" in ehlo and "AUTH" not in ehlo
    assert await c.code("NOOP") == 250
    for line in ("HELO c", "MAIL FROM:<a@b.jp>", "RCPT TO:<a@b.jp>", "DATA", "RSET", "HELP"):
        assert await c.cmd(line) == (530, "530 Must issue a STARTTLS command first")
    assert await c.code("AUTH PLAIN " + plain_auth()) == 530
    assert await c.code("QUIT") == 221
    await c.close()


async def test_plaintext_pipelined_after_starttls_is_thrown_away(lg: Lg) -> None:
    """CVE-2011-0411 class: commands injected in plain text behind STARTTLS must not run
    inside the TLS session."""
    port, rt = await lg.listen("submission")
    c = await Client.open(port)
    assert await c.code("EHLO c") == 250
    await c.send(b"STARTTLS\r\nAUTH PLAIN " + plain_auth().encode() + b"\r\nNOOP\r\n")
    assert (await c.reply())[0] == 220
    await c.w.start_tls(lg.client_ctx, server_hostname="relay.test")
    # a fresh session: the injected AUTH never ran, no reply is waiting for us
    assert await c.cmd("MAIL FROM:<x@y.jp>") == (503, "503 Error: send HELO first")
    code, ehlo = await c.cmd("EHLO c")
    assert code == 250 and "STARTTLS" not in ehlo and "250-AUTH LOGIN PLAIN" in ehlo
    assert await c.code("MAIL FROM:<x@y.jp>") == 530  # still not authenticated
    assert await c.cmd("STARTTLS") == (454, "454 TLS not available")
    await c.close()
    assert await eventually(lambda: rt.active == 0)


async def test_auth_refused_before_tls_where_tls_is_required(lg: Lg) -> None:
    port, _ = await lg.listen("plain")  # no STARTTLS offered on a plain listener
    c = await Client.open(port)
    _code, ehlo = await c.cmd("EHLO c")
    assert "AUTH" not in ehlo and "STARTTLS" not in ehlo
    assert (await c.cmd("AUTH PLAIN " + plain_auth()))[0] == 538
    assert await c.cmd("STARTTLS") == (454, "454 TLS not available")
    await c.close()


@pytest.mark.parametrize(
    "garbage",
    [b"\x16\x03\x01\x00\x05hello", b"GET / HTTP/1.0\r\n\r\n", b""],
    ids=["bad-hello", "http", "hangup"],
)
async def test_failed_starttls_handshake_ends_the_connection_and_its_count(
    lg: Lg, garbage: bytes
) -> None:
    """A handshake that fails (garbage, or the client hangs up) closes the connection and
    gives its slot back: otherwise ``max_connections`` such clients lock the listener."""
    port, rt = await lg.listen("submission", max_connections=2)
    for _ in range(3):
        c = await Client.open(port)
        assert await c.code("EHLO c") == 250
        assert await c.code("STARTTLS") == 220
        if garbage:
            await c.send(garbage)
        else:
            c.w.close()
        assert await c.closed()
        await c.close()
        assert await eventually(lambda: rt.active == 0), rt.active
    ok = await submission_tls(lg, port)
    assert await ok.code("EHLO c") == 250
    await ok.close()


async def test_smtps_implicit_tls_auth_and_relay(lg: Lg) -> None:
    port, rt = await lg.listen("smtps")
    c = await Client.open(port, tls=lg.client_ctx)
    _code, ehlo = await c.cmd("EHLO c")
    assert "STARTTLS" not in ehlo and "250-AUTH LOGIN PLAIN" in ehlo
    assert await c.code(f"MAIL FROM:<{USER}>") == 530
    assert await c.code("AUTH PLAIN " + plain_auth()) == 235
    assert await c.code(f"MAIL FROM:<{USER}>") == 250
    assert await c.code(f"RCPT TO:<{BOB}>") == 250
    assert await c.code("DATA") == 354
    assert await c.code(b"Subject: s\r\n\r\nbody\r\n.") == 250
    assert lg.relay.txs[0].authenticated and lg.relay.txs[0].auth_user == USER
    await c.close()
    # a client that never completes the implicit handshake is not counted either
    _r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"EHLO plaintext\r\n")
    w.close()
    assert await eventually(lambda: rt.active == 0)


async def test_starttls_handshake_timeout_closes_and_gives_the_slot_back(
    lg: Lg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncio does not tell the protocol about a connection lost mid-handshake: a client
    that starts one and stops must still give its listener slot back."""
    monkeypatch.setattr(smtpd_mod, "TLS_HANDSHAKE_TIMEOUT", 0.3)
    port, rt = await lg.listen("submission", max_connections=1)
    c = await Client.open(port)
    assert await c.code("STARTTLS") == 220
    await c.send(b"\x16\x03\x01")  # the start of a ClientHello, and then nothing
    assert await c.closed(3)
    await c.close()
    assert await eventually(lambda: rt.active == 0), rt.active
    assert not rt.peers
    ok = await Client.open(port)  # the one slot is free again
    assert await ok.code("NOOP") == 250
    await ok.close()


# ---------------------------------------------------------------------- idle timeout

TIMEOUT = 0.5


async def test_idle_and_half_sent_data_connections_are_closed_at_the_timeout(lg: Lg) -> None:
    port, rt = await lg.listen(idle_timeout=TIMEOUT)
    loop = asyncio.get_running_loop()
    idle = await Client.open(port)
    t0 = loop.time()
    assert await idle.closed(3)
    assert TIMEOUT * 0.8 < loop.time() - t0 < TIMEOUT + 1
    half = await Client.open(port)
    for line in ("EHLO c", "MAIL FROM:<a@x.jp>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await half.cmd(line))[0] in (250, 354)
    await half.send(b"Subject: half\r\n\r\nand then noth")
    t0 = loop.time()
    assert await half.closed(3)
    assert loop.time() - t0 < TIMEOUT + 1
    assert await eventually(lambda: rt.active == 0)
    assert not lg.relay.txs


@pytest.mark.parametrize("trickle", [b"N", b"\r\n"], ids=["bytes", "empty-lines"])
async def test_trickled_bytes_do_not_keep_a_connection_open(lg: Lg, trickle: bytes) -> None:
    """Slowloris: bytes that never make a valid command (one a while, or empty lines that
    only get 500s) do not re-arm the idle timer (as with aiosmtpd, which re-armed it on
    valid commands only): else ``max_connections`` such clients hold the listener."""
    port, _rt = await lg.listen(idle_timeout=TIMEOUT)
    c = await Client.open(port)
    assert await c.code("EHLO c") == 250
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while loop.time() - t0 < TIMEOUT * 4:
        try:
            await c.send(trickle)
        except ConnectionError:
            break
        if c.r.at_eof():
            break
        await asyncio.sleep(TIMEOUT / 5)
    assert await c.closed(2)
    assert loop.time() - t0 < TIMEOUT * 3
    await c.close()


async def test_after_a_slow_step_the_client_gets_the_whole_timeout(lg: Lg) -> None:
    """A decision longer than the idle timeout: the client then has ``timeout`` for its
    next command from the reply on, not whatever was left of the timer's last round."""
    port, _rt = await lg.listen(idle_timeout=TIMEOUT)
    lg.relay.gate = asyncio.Event()
    c = await Client.open(port)
    for line in ("EHLO c", "MAIL FROM:<a@x.jp>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354)
    await c.send(b"Subject: slow\r\n\r\n.\r\n")
    await asyncio.sleep(TIMEOUT * 1.5)  # the timer looked at the busy connection once
    lg.relay.gate.set()
    assert (await c.reply())[0] == 250
    await asyncio.sleep(TIMEOUT * 0.6)  # well within the timeout after the reply
    assert await c.code("NOOP") == 250
    await c.close()


# ---------------------------------------------------------------------- parity with aiosmtpd


class _SyncHandler:
    """The same minimal handler for both engines (aiosmtpd's hooks are coroutines)."""

    def __init__(self) -> None:
        self.mails: list[bytes] = []

    def mail(self, envelope: Any, address: str, options: list[str]) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return f"250 from {address!a}"

    def rcpt(self, envelope: Any, address: str, options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        return f"250 to {address!a}"

    def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, o: Any) -> str:
        return self.mail(envelope, address, o)

    def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, o: Any) -> str:
        return self.rcpt(envelope, address, o)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope.content)
        return "250 done"

    async def handle_PROXY(self, *a: Any) -> bool:
        return True

    async def handle_exception(self, error: Exception) -> str:
        return "451 hook failed"


class _AsyncHandler(_SyncHandler):
    async def handle_MAIL(  # type: ignore[override]
        self, server: Any, session: Any, envelope: Any, address: str, o: Any
    ) -> str:
        return self.mail(envelope, address, o)

    async def handle_RCPT(  # type: ignore[override]
        self, server: Any, session: Any, envelope: Any, address: str, o: Any
    ) -> str:
        return self.rcpt(envelope, address, o)


PARITY_SCRIPT: list[bytes] = [
    b"HELP",
    b"HELP MAIL",
    b"HELP bogus",
    b"MAIL FROM:<a@x.jp>",
    b"RCPT TO:<b@y.jp>",
    b"DATA",
    b"HELO",
    b"HELO client.test",
    b"HELP MAIL",
    b"MAIL FROM:<a@x.jp> SIZE=100",
    b"AUTH PLAIN",
    b"EHLO",
    b"EHLO client.test",
    b"HELP MAIL",
    b"HELP STARTTLS",
    b"HELP help",
    b"VRFY",
    b"VRFY <a@x.jp>",
    b"EXPN staff",
    b"NOOP whatever",
    b"QUIT now",
    b"RSET now",
    b"RCPT TO:<b@y.jp>",
    b"MAIL",
    b"MAIL TO:<a@x.jp>",
    b"MAIL FROM:",
    b"MAIL FROM:<a@x.jp> BODY=BINARYMIME",
    b"MAIL FROM:<a@x.jp> SMTPUTF8=yes",
    b"MAIL FROM:<a@x.jp> SIZE=big",
    b"MAIL FROM:<a@x.jp> SIZE=99999999999",
    b"MAIL FROM:<a@x.jp> RET=HDRS",
    b"MAIL FROM:<a@x.jp> =x",
    b"MAIL FROM:<a@@x.jp>",
    b"MAIL FROM:a@x.jp",
    b"RSET",
    b"MAIL FROM:<\xe3\x81\x82@x.jp> SMTPUTF8 BODY=8BITMIME",
    b"MAIL FROM:<c@x.jp>",
    b"RCPT",
    b"RCPT TO:<b@y.jp> NOTIFY=NEVER",
    b"RCPT TO:<\xff\xfe@y.jp>",
    b"RCPT TO:<b@y.jp> (comment)",
    b"DATA now",
    b"DATA",
    b"..line\r\n.",
    b"",
    b"\xe3\x81\x82",
    b"BDAT 10 LAST",
    b"MAIL FROM:<a@x.jp> " + b"X" * 600,
    b"NOOP " + b"x" * 600,
    b"STARTTLS",
    b"AUTH",
    b"QUIT",
]


async def _replies(port: int, script: list[bytes]) -> list[str]:
    c = await Client.open(port)
    out = []
    for line in script:
        code, text = await c.cmd(line)
        out.append(text)
        if code in (0, 221):
            break
    await c.close()
    return out


async def test_replies_are_aiosmtpd_s(lg: Lg) -> None:
    """What a client sees, command by command, is what aiosmtpd answered (EHLO offers the
    same extensions; aiosmtpd sends a multi-line reply as separate writes)."""
    from aiosmtpd.smtp import SMTP

    from leakguard.relay.smtpd import ServerSettings, SmtpServerProtocol

    loop = asyncio.get_running_loop()
    ours, theirs = _SyncHandler(), _AsyncHandler()
    settings = ServerSettings(hostname="relay.test", data_size_limit=1 << 20)
    srv1 = await loop.create_server(lambda: SmtpServerProtocol(ours, settings), "127.0.0.1", 0)
    srv2 = await loop.create_server(
        lambda: SMTP(
            theirs,
            hostname="relay.test",
            ident="leakguard ESMTP",
            data_size_limit=1 << 20,
            enable_SMTPUTF8=True,
            auth_require_tls=True,
        ),
        "127.0.0.1",
        0,
    )
    lg.servers += [srv1, srv2]
    got = await _replies(srv1.sockets[0].getsockname()[1], PARITY_SCRIPT)
    want = await _replies(srv2.sockets[0].getsockname()[1], PARITY_SCRIPT)
    assert len(got) == len(PARITY_SCRIPT)
    for line, a, b in zip(PARITY_SCRIPT, got, want, strict=True):
        assert a.replace("\n250-PIPELINING", "") == b, (line, a, b)  # only ours offers it
    assert ours.mails == theirs.mails == [b".line\r\n"]


@pytest.mark.parametrize("addr", ["a@", "0@", '""@'])
async def test_addresses_that_crashed_aiosmtpd_s_parser_are_malformed(lg: Lg, addr: str) -> None:
    """aiosmtpd's address parser raises IndexError on these: as a hook error that was a
    451 (try again) and an error-level log line per command, which anyone, even a client
    the relay does not trust, could repeat 100000 times a connection."""
    port, _ = await lg.listen(trusted=("10.0.0.0/8",))
    c = await Client.open(port)
    assert await c.code("EHLO c") == 250
    for line in (f"MAIL FROM:{addr}", f"VRFY {addr}"):
        assert (await c.cmd(line))[0] in (553, 502), line
    assert await c.code("MAIL FROM:<a@x.jp>") == 550  # not trusted: never an open relay
    assert await c.code(f"RCPT TO:{addr}") == 503
    assert await c.code("NOOP") == 250
    await c.close()


# ---------------------------------------------------------------------- open relay


async def test_never_an_open_relay_on_any_listener(lg: Lg) -> None:
    untrusted, _ = await lg.listen("plain", trusted=("10.0.0.0/8",))
    submission, _ = await lg.listen("submission")
    smtps, _ = await lg.listen("smtps")
    group = (
        f"MAIL FROM:<{USER}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\nSubject: x\r\n\r\nspam\r\n.\r\n"
    ).encode()
    plain = await Client.open(untrusted)
    assert await plain.code("EHLO c") == 250
    await plain.send(group)
    codes = [(await plain.reply())[0] for _ in range(6)]
    # MAIL refused; RCPT, DATA need MAIL; the body lines are then unknown commands
    assert codes[:3] == [550, 503, 503] and all(c >= 500 for c in codes)
    await plain.close()
    sub = await submission_tls(lg, submission)
    tls = await Client.open(smtps, tls=lg.client_ctx)
    for c in (sub, tls):
        assert await c.code("EHLO c") == 250
        await c.send(group)
        codes = [(await c.reply())[0] for _ in range(3)]
        assert codes == [530, 530, 530]
        await c.close()
    assert not lg.relay.txs


async def test_transaction_order_is_enforced(lg: Lg) -> None:
    port, _ = await lg.listen("plain")
    c = await Client.open(port)
    assert await c.cmd("MAIL FROM:<a@x.jp>") == (503, "503 Error: send HELO first")
    assert await c.cmd("RCPT TO:<b@y.jp>") == (503, "503 Error: send HELO first")
    assert await c.code("EHLO c") == 250
    assert await c.cmd("RCPT TO:<b@y.jp>") == (503, "503 Error: need MAIL command")
    assert await c.cmd("DATA") == (503, "503 Error: need RCPT command")
    assert await c.code("MAIL FROM:<a@x.jp>") == 250
    assert await c.cmd("MAIL FROM:<a@x.jp>") == (503, "503 Error: nested MAIL command")
    assert await c.code("RCPT TO:<b@y.jp>") == 250
    assert await c.code("RSET") == 250
    assert await c.cmd("DATA") == (503, "503 Error: need RCPT command")
    assert await c.code("MAIL FROM:<a@x.jp>") == 250
    assert await c.code("RCPT TO:<b@y.jp>") == 250
    assert await c.code("EHLO again") == 250  # EHLO resets the transaction too
    assert await c.code("DATA") == 503
    assert await c.code("HELO c") == 250
    assert await c.code("MAIL FROM:<a@x.jp> BODY=8BITMIME") == 501  # no ESMTP after HELO
    assert await c.code("AUTH PLAIN " + plain_auth()) == 500
    _code, ehlo = await c.cmd("EHLO c")
    assert "CHUNKING" not in ehlo and "BINARYMIME" not in ehlo
    assert (await c.cmd("BDAT 4 LAST"))[0] == 500
    await c.close()
    assert not lg.relay.txs


async def test_envelope_addresses_in_utf8_and_invalid_utf8_reach_the_checks(lg: Lg) -> None:
    port, _ = await lg.listen("plain")
    c = await Client.open(port)
    assert await c.code("EHLO c") == 250
    assert await c.cmd("MAIL FROM:<\xff@x.jp>".encode("latin-1")) == (
        553,
        replies.BAD_ADDRESS_BYTES,
    )
    assert await c.cmd("MAIL FROM:<あ@x.jp>") == (553, replies.NON_ASCII_ADDRESS)
    assert await c.code("MAIL FROM:<あ@x.jp> SMTPUTF8") == 250
    assert await c.cmd(b"RCPT TO:<b\xff@y.jp>") == (553, replies.BAD_ADDRESS_BYTES)
    assert await c.cmd(b"RCPT TO:<b\x01@y.jp>") == (553, replies.BAD_ADDRESS_BYTES)
    assert await c.code("RCPT TO:<い@y.jp>") == 250
    assert await c.code("DATA") == 354
    assert await c.code(b"Subject: u\r\n\r\nx\r\n.") == 250
    (tx,) = lg.relay.txs
    assert tx.smtputf8 and tx.mail_from == "あ@x.jp" and tx.rcpts == ("い@y.jp",)
    await c.close()


# ---------------------------------------------------------------------- AUTH


async def test_auth_plain_and_login_in_every_form(lg: Lg) -> None:
    port, _ = await lg.listen("smtps")
    ways: list[list[tuple[str, int]]] = [
        [("AUTH PLAIN " + plain_auth(), 235)],
        [("AUTH PLAIN", 334), (plain_auth(), 235)],
        [("AUTH LOGIN", 334), (b64(USER), 334), (b64(PASSWORD), 235)],
        [("AUTH LOGIN " + b64(USER), 334), (b64(PASSWORD), 235)],
    ]
    for way in ways:
        c = await Client.open(port, tls=lg.client_ctx)
        assert await c.cmd("AUTH PLAIN " + plain_auth()) == (503, "503 Error: send EHLO first")
        assert await c.code("EHLO c") == 250
        for line, want in way:
            code, text = await c.cmd(line)
            assert code == want, (line, text)
        assert await c.cmd("AUTH PLAIN " + plain_auth()) == (503, "503 Already authenticated")
        assert await c.code(f"MAIL FROM:<{USER}>") == 250
        await c.close()
    c = await Client.open(port, tls=lg.client_ctx)
    assert await c.code("EHLO c") == 250
    assert await c.cmd("AUTH LOGIN") == (334, "334 VXNlcm5hbWU6")  # "Username:"
    assert await c.cmd(b64(USER)) == (334, "334 UGFzc3dvcmQ6")  # "Password:"
    assert await c.cmd("*") == (501, "501 5.7.0 Auth aborted")
    assert await c.cmd("AUTH PLAIN") == (334, "334 ")
    assert await c.cmd("not base64!") == (501, "501 5.5.2 Can't decode base64")
    assert await c.cmd("AUTH PLAIN ====") == (501, "501 5.5.2 Can't decode base64")
    assert await c.cmd("AUTH PLAIN " + b64("no-nuls")) == (501, "501 5.5.2 Can't split auth value")
    assert await c.cmd("AUTH CRAM-MD5") == (504, "504 5.5.4 Unrecognized authentication type")
    assert await c.cmd("AUTH PLAIN a b") == (501, "501 Too many values")
    assert await c.code(f"MAIL FROM:<{USER}>") == 530
    await c.close()
    c = await Client.open(port, tls=lg.client_ctx)
    assert await c.code("EHLO c") == 250
    # the answers pipelined behind AUTH LOGIN are read as its answers
    await c.send(f"AUTH LOGIN\r\n{b64(USER)}\r\n{b64(PASSWORD)}\r\nNOOP\r\n".encode())
    assert [(await c.reply())[0] for _ in range(4)] == [334, 334, 235, 250]
    await c.close()


async def test_wrong_passwords_535_then_throttled_and_never_logged(
    lg: Lg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod.RelayHandler, "soft_delay_unit", 0.0)
    port, _ = await lg.listen("smtps")
    c = await Client.open(port, tls=lg.client_ctx)
    assert await c.code("EHLO c") == 250
    codes = []
    for i in range(6):  # the AUTH call limit
        code, _ = await c.cmd("AUTH PLAIN " + plain_auth(password=f"guess-{PASSWORD}-{i}"))
        codes.append(code)
    assert codes == [535] * 6
    assert await c.cmd("AUTH PLAIN " + plain_auth()) == (421, "421 4.7.0 AUTH sent too many times")
    assert await c.closed()
    for _ in range(2):
        c = await Client.open(port, tls=lg.client_ctx)
        assert await c.code("EHLO c") == 250
        codes.append(await c.code("AUTH LOGIN " + b64(USER)))
        codes.append(await c.code(b64("wrong" + PASSWORD)))
        await c.close()
    c = await Client.open(port, tls=lg.client_ctx)
    assert await c.code("EHLO c") == 250
    # eight failures for this login from this address: even the right password waits
    assert (await c.cmd("AUTH PLAIN " + plain_auth()))[0] == 454
    await c.close()
    logged = lg.log.text()
    assert "auth_failed" in logged
    assert PASSWORD not in logged and plain_auth() not in logged and b64(PASSWORD) not in logged


# ---------------------------------------------------------------------- PROXY protocol

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(src: str) -> bytes:
    return f"PROXY TCP4 {src} 192.0.2.10 40000 25\r\n".encode()


def proxy_v2(src: str) -> bytes:
    body = bytes(int(x) for x in src.split(".")) + bytes([192, 0, 2, 10]) + b"\x9c\x40\x00\x19"
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


async def test_proxy_from_an_untrusted_peer_is_cut_off_without_a_greeting(lg: Lg) -> None:
    port, rt = await lg.listen(proxy_trusted=("192.0.2.0/24",), trusted=("10.1.2.0/24",))
    c = await Client.open(port, greet=False)
    await c.send(proxy_v1("10.1.2.3"))
    assert await c.r.read() == b""
    await c.close()
    assert await eventually(lambda: rt.active == 0)
    assert any(r[1] == "proxy_refused" for r in lg.log.records)


@pytest.mark.parametrize(
    "header",
    [
        b"HELO relay\r\n",
        b"PROXY TCP4 nonsense\r\n",
        V2_SIGNATURE + b"\x21\x11\x00\x03abc",
        b"\x00" * 300,
    ],
)
async def test_a_garbage_proxy_header_closes_without_a_greeting(lg: Lg, header: bytes) -> None:
    port, rt = await lg.listen(proxy_trusted=("127.0.0.0/8",), trusted=("10.1.2.0/24",))
    c = await Client.open(port, greet=False)
    await c.send(header)
    assert await asyncio.wait_for(c.r.read(), 5) == b""
    await c.close()
    assert await eventually(lambda: rt.active == 0)


@pytest.mark.parametrize("make", [proxy_v1, proxy_v2], ids=["v1", "v2"])
async def test_a_proxy_header_split_over_reads_names_the_client(
    lg: Lg, make: Callable[[str], bytes]
) -> None:
    port, _ = await lg.listen(proxy_trusted=("127.0.0.0/8",), trusted=("10.1.2.0/24",))
    header = make("10.1.2.3")
    c = await Client.open(port, greet=False)
    for i in range(0, len(header), 7):
        await c.send(header[i : i + 7])
        await asyncio.sleep(0.01)
    assert (await c.reply())[0] == 220
    for line in ("EHLO c", "MAIL FROM:<a@x.jp>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354), line
    assert await c.code(b"Subject: p\r\n\r\n.") == 250
    assert lg.relay.txs[0].peer == "10.1.2.3"
    await c.close()
    # the header and the first commands in one packet
    c = await Client.open(port, greet=False)
    await c.send(header + b"EHLO c\r\nMAIL FROM:<a@x.jp>\r\n")
    assert [(await c.reply())[0] for _ in range(3)] == [220, 250, 250]
    await c.close()


async def test_proxy_header_timeout_even_when_trickled(
    lg: Lg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod, "PROXY_TIMEOUT", 0.3)
    port, rt = await lg.listen(proxy_trusted=("127.0.0.0/8",), trusted=("10.1.2.0/24",))
    loop = asyncio.get_running_loop()
    silent = await Client.open(port, greet=False)
    t0 = loop.time()
    assert await asyncio.wait_for(silent.r.read(), 5) == b""
    assert loop.time() - t0 < 2
    slow = await Client.open(port, greet=False)
    t0 = loop.time()
    with contextlib.suppress(ConnectionError):
        for byte in proxy_v1("10.1.2.3")[:-2]:
            await slow.send(bytes([byte]))
            await asyncio.sleep(0.05)  # 40 bytes: 2 s in all
            if slow.r.at_eof():
                break
    assert await slow.closed(2)
    assert loop.time() - t0 < 1.5
    for c in (silent, slow):
        await c.close()
    assert await eventually(lambda: rt.active == 0)


async def test_the_proxied_client_stays_after_starttls(lg: Lg) -> None:
    port, _ = await lg.listen(
        "submission", proxy_trusted=("127.0.0.0/8",), trusted=("10.1.2.0/24",)
    )
    c = await Client.open(port, greet=False)
    await c.send(proxy_v2("10.1.2.77"))
    assert (await c.reply())[0] == 220
    assert await c.code("EHLO c") == 250
    await c.starttls(lg.client_ctx)
    assert await c.code("EHLO c") == 250
    assert await c.code("AUTH PLAIN " + plain_auth()) == 235
    for line in (f"MAIL FROM:<{USER}>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354), line
    assert await c.code(b"Subject: p\r\n\r\n.") == 250
    assert lg.relay.txs[0].peer == "10.1.2.77"
    await c.close()
    ok = [r for r in lg.log.records if r[1] == "auth_ok"]
    assert ok and ok[0][2]["peer"] == "10.1.2.77"


# ---------------------------------------------------------------------- resource abuse


def _proto(rt: ListenerRuntime) -> Any:
    (proto,) = rt.peers
    return proto


async def test_a_long_line_without_end_is_dropped_as_it_comes(lg: Lg) -> None:
    port, rt = await lg.listen()
    c = await Client.open(port)
    biggest = 0
    for _ in range(40):  # 2.6 MB without a line end
        await c.send(b"NOOP " + b"x" * 65536)
        biggest = max(biggest, len(_proto(rt)._in))
    await c.send(b"\r\nNOOP\r\n")
    assert await c.cmd("NOOP") == (500, "500 Command line too long")
    assert [(await c.reply())[0] for _ in range(2)] == [250, 250]
    assert biggest <= 65536 + 256 * 1024
    await c.close()


async def test_a_client_that_never_reads_replies_is_paused(lg: Lg) -> None:
    """Commands piped in by a client that never reads a reply: reading pauses, the input
    and output kept for it stay bounded."""
    port, rt = await lg.listen()
    c = await Client.open(port)
    sock = c.w.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + 3
    chunk = b"\r\n" * 32768  # empty lines: "500 Error: bad syntax" each, no call limit
    while loop.time() < end:
        c.w.write(chunk)
        try:
            await asyncio.wait_for(c.w.drain(), 0.3)
        except TimeoutError:
            break  # the relay stopped reading
        sent += len(chunk)
    else:
        pytest.fail("the relay kept reading")
    proto = _proto(rt)
    assert proto._paused
    assert len(proto._in) <= _PAUSE_AT + 256 * 1024
    assert proto.transport.get_write_buffer_size() <= 256 * 1024
    assert sent > 1 << 20
    c.w.transport.abort()
    assert await eventually(lambda: rt.active == 0)


async def test_connection_limit_and_draining_421(lg: Lg) -> None:
    port, rt = await lg.listen(max_connections=2)
    a, b = await Client.open(port), await Client.open(port)
    c = await Client.open(port, greet=False)
    assert await c.reply() == (421, replies.TOO_BUSY)
    assert await c.closed()
    await a.close()
    assert await eventually(lambda: rt.active == 1)
    rt.draining = True
    d = await Client.open(port, greet=False)
    assert await d.reply() == (421, replies.SHUTTING_DOWN)
    assert await b.code("NOOP") == 250  # connections already open go on
    for x in (b, c, d):
        await x.close()
    assert await eventually(lambda: rt.active == 0)


async def test_unknown_commands_and_call_limits_end_the_connection(lg: Lg) -> None:
    port, _ = await lg.listen()
    c = await Client.open(port)
    await c.send(b"FOO\r\nBAR\r\nBAZ\r\nQUX\r\nNOOP\r\nXYZZY\r\nNOOP\r\n")
    got = [await c.reply() for _ in range(6)]
    assert [g[0] for g in got] == [500, 500, 500, 500, 250, 502]
    assert got[-1][1] == "502 5.5.1 Too many unrecognized commands, goodbye."
    assert await c.closed()
    c = await Client.open(port)
    await c.send(b"VRFY <a@x.jp>\r\n" * 6)
    got = [await c.reply() for _ in range(6)]
    assert [g[0] for g in got] == [252] * 5 + [421]
    assert await c.closed()


async def test_a_hook_that_fails_gets_451_and_the_session_goes_on(lg: Lg) -> None:
    port, _ = await lg.listen()
    lg.relay.fail = RuntimeError("boom")
    c = await Client.open(port)
    for line in ("EHLO c", "MAIL FROM:<a@x.jp>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354)
    assert await c.cmd(b"Subject: f\r\n\r\n.") == (451, replies.LOCAL_ERROR)
    lg.relay.fail = None
    assert await c.code("RCPT TO:<x@y.jp>") == 503  # the transaction is gone
    for line in ("MAIL FROM:<a@x.jp>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354)
    assert await c.code(b"Subject: f\r\n\r\n.") == 250
    await c.close()
    errors = [r for r in lg.log.records if r[0] == "error"]
    assert [r[1] for r in errors] == ["smtp_exception"]
    lg.log.records.clear()


async def test_client_gone_in_data_or_during_the_decision(lg: Lg) -> None:
    port, rt = await lg.listen()
    c = await Client.open(port)
    for line in ("EHLO c", "MAIL FROM:<a@x.jp>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354)
    await c.send(b"Subject: gone\r\n\r\nhalf a mess")
    await c.close()
    assert await eventually(lambda: rt.active == 0)
    lg.relay.gate = asyncio.Event()
    c = await Client.open(port)
    for line in ("EHLO c", "MAIL FROM:<a@x.jp>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354)
    await c.send(b"Subject: gone\r\n\r\nbody\r\n.\r\n")
    await asyncio.wait_for(lg.relay.started.wait(), 3)
    # an RST in the middle of the decision (a FIN alone is a half-close, answered: below)
    c.w.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    c.w.transport.abort()
    assert await eventually(lambda: rt.active == 0)
    assert lg.relay.cancelled == 1  # the relay shields its own work from this
    assert not lg.relay.txs


# ---------------------------------------------------------------------- DATA


async def test_the_end_of_data_split_at_every_offset(lg: Lg) -> None:
    """Real sockets, the stream cut in two at every offset around the end of data (and the
    next transaction pipelined behind it)."""
    port, _ = await lg.listen()
    c = await Client.open(port)
    assert await c.code("EHLO c") == 250
    sock = c.w.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tail = b"..a\r\n.\r\nMAIL FROM:<a@x.jp>\r\nRSET\r\n"
    for cut in range(len(tail) + 1):
        await c.send(f"MAIL FROM:<a@x.jp>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n".encode())
        assert [(await c.reply())[0] for _ in range(3)] == [250, 250, 354]
        await c.send(b"x\r\n" + tail[:cut])
        await asyncio.sleep(0.01)
        await c.send(tail[cut:])
        assert [(await c.reply())[0] for _ in range(3)] == [250, 250, 250], cut
    assert [tx.raw for tx in lg.relay.txs] == [b"x\r\n.a\r\n"] * (len(tail) + 1)
    await c.close()


async def test_over_the_size_limit_552_after_the_end_and_memory_stays_bounded(lg: Lg) -> None:
    port, rt = await lg.listen(data_size_limit=100_000)
    c = await Client.open(port)
    for line in ("EHLO c", "MAIL FROM:<a@x.jp> SIZE=100000", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354)
    biggest = 0
    for _ in range(64):  # 4 MB
        await c.send(b"y" * 65534 + b"\r\n")
        reader = _proto(rt)._data
        if reader is not None:
            biggest = max(biggest, reader.out.getbuffer().nbytes + len(reader.pending))
    assert biggest <= 100_000 + 256 * 1024
    await c.send(b".\r\nMAIL FROM:<a@x.jp>\r\nNOOP\r\n")
    assert await c.reply() == (552, "552 Error: Too much mail data")
    assert [(await c.reply())[0] for _ in range(2)] == [250, 250]
    # the transaction begun after the 552 goes through
    await c.send(b"RCPT TO:<b@y.jp>\r\nDATA\r\nmore text\r\n.\r\n")
    assert [(await c.reply())[0] for _ in range(3)] == [250, 354, 250]
    assert await c.cmd("MAIL FROM:<a@x.jp> SIZE=100001") == (
        552,
        "552 Error: message size exceeds fixed maximum message size",
    )
    await c.close()
    assert [tx.raw for tx in lg.relay.txs] == [b"more text\r\n"]


# ---------------------------------------------------------------------- fake transport


async def _fed(chunks: list[bytes], **kw: Any) -> tuple[Any, Any, SmtpServerProtocol]:

    handler = _Handler()
    proto = SmtpServerProtocol(handler, ServerSettings(hostname="relay.test", **kw))
    tr = _Transport()
    proto.connection_made(tr)
    for chunk in chunks:
        proto.data_received(chunk)
        for _ in range(3):
            await asyncio.sleep(0)
    for _ in range(10):
        await asyncio.sleep(0)
    return handler, tr, proto


async def test_many_pipelined_oversized_mails_in_one_read() -> None:
    """Each 552 used to answer what followed it by recursing (three frames a mail): a
    client piping a few hundred oversized mails at the smallest size limit crashed the
    connection with RecursionError."""
    one = b"MAIL FROM:<a@x.jp>\r\nRCPT TO:<b@y.jp>\r\nDATA\r\n" + b"z" * 1100 + b"\r\n.\r\n"
    _h, tr, _p = await _fed([b"EHLO c\r\n" + one * 400 + b"QUIT\r\n"], data_size_limit=1024)
    assert tr.out.count(b"552 Error: Too much mail data") == 400
    assert tr.out.endswith(b"221 Bye\r\n")


@pytest.mark.parametrize(
    "smuggle",
    [
        b"\n.\n",
        b"\r.\r",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n\x00.\r\n",
        b"\r\n.\x00\r\n",
    ],
)
async def test_smuggling_variants_fed_one_byte_at_a_time(smuggle: bytes) -> None:
    body = b"Subject: one\r\n\r\nbody" + smuggle + b"MAIL FROM:<evil@x.jp>\r\nsmuggled\r\n"
    stream = (
        b"EHLO c\r\nMAIL FROM:<a@x.jp>\r\nRCPT TO:<b@y.jp>\r\nDATA\r\n" + body + b".\r\nQUIT\r\n"
    )
    handler, tr, _p = await _fed([bytes([b]) for b in stream])
    assert handler.mails == [_reference(body + b".\r\n")]  # one mail, lines unstuffed
    assert tr.out.count(b"354") == 1 and tr.out.endswith(b"250 2.0.0 OK\r\n221 Bye\r\n")


async def test_an_auth_answer_longer_than_a_line_is_one_501(lg: Lg) -> None:
    """The rest of an over-long answer is neither the next answer nor a command."""
    port, _ = await lg.listen("smtps")
    c = await Client.open(port, tls=lg.client_ctx)
    assert await c.code("EHLO c") == 250
    for mech in ("LOGIN", "PLAIN"):
        assert await c.code("AUTH " + mech) == 334
        await c.send(b"QUFB" * 40000 + b"\r\nNOOP\r\n")
        assert await c.reply() == (501, "501 5.5.2 Can't decode base64")
        assert await c.reply() == (250, "250 OK")
    assert not [r for r in lg.log.records if r[1] == "auth_failed"]
    await c.close()


async def test_a_hook_error_mid_pipeline_keeps_the_replies_in_order() -> None:
    class Failing(_Handler):
        def handle_MAIL(self, server: Any, session: Any, envelope: Any, a: str, o: Any) -> str:
            if a == "boom@x.jp":
                raise RuntimeError("hook bug")
            return super().handle_MAIL(server, session, envelope, a, o)

    proto = SmtpServerProtocol(Failing(), ServerSettings(hostname="relay.test"))
    tr = _Transport()
    proto.connection_made(tr)
    proto.data_received(
        b"EHLO c\r\nMAIL FROM:<boom@x.jp>\r\nNOOP\r\nMAIL FROM:<a@x.jp>\r\nRCPT TO:<b@y.jp>\r\n"
    )
    for _ in range(10):
        await asyncio.sleep(0)
    codes = [line[:3] for line in tr.out.split(b"\r\n")[:-1] if line[3:4] == b" "]
    assert codes == [b"220", b"250", b"451", b"250", b"250", b"250"]


async def test_a_half_closed_client_still_gets_its_replies(lg: Lg) -> None:
    """End of data and QUIT, then shutdown(SHUT_WR) (``nc -N``, some in-house senders): the
    250 for the mail and the 221 are still written, then the connection is closed."""
    port, rt = await lg.listen()
    lg.relay.gate = asyncio.Event()
    c = await Client.open(port)
    for line in ("EHLO c", "MAIL FROM:<a@x.jp>", f"RCPT TO:<{BOB}>", "DATA"):
        assert (await c.cmd(line))[0] in (250, 354)
    await c.send(b"Subject: half-closed\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
    await asyncio.wait_for(lg.relay.started.wait(), 3)
    assert c.w.can_write_eof()
    c.w.write_eof()
    await asyncio.sleep(0.1)  # the EOF arrives while the decision waits
    lg.relay.gate.set()
    assert await c.reply() == (250, "250 2.0.0 OK")
    assert (await c.reply())[0] == 250  # NOOP
    assert (await c.reply())[0] == 221
    assert await c.closed(3)
    assert await eventually(lambda: rt.active == 0)
    assert len(lg.relay.txs) == 1


async def test_a_half_close_with_nothing_pending_closes_at_once(lg: Lg) -> None:
    port, rt = await lg.listen()
    c = await Client.open(port)
    assert await c.code("EHLO c") == 250
    c.w.write_eof()
    assert await c.closed(3)
    assert await eventually(lambda: rt.active == 0)
