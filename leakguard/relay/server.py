"""The SMTP front: aiosmtpd handler, a thin ``SMTP`` subclass, and the listeners.

Listeners (DESIGN §4):
- ``submission``: STARTTLS required before anything else, then AUTH (PLAIN/LOGIN) required.
- ``smtps``: implicit TLS, AUTH required (aiosmtpd issue #281: ``auth_require_tls`` is
  turned off on this listener only, because the whole connection is already TLS).
- ``plain``: no TLS, no AUTH; only clients in ``trusted_networks`` may relay, and their
  envelope sender is the identity (an MTA in front has authenticated its users).

Never an open relay: an unauthenticated client outside the trusted networks gets
``530 5.7.0`` (AUTH listeners) or ``550 5.7.1`` (plain listener) at MAIL FROM.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import ipaddress
import re
import socket
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, AnyStr

import aiosmtpd.smtp
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session, syntax

from leakguard.metrics import Metrics
from leakguard.relay import replies
from leakguard.relay.actions import Relay, Transaction
from leakguard.relay.auth import (
    PEER_SOFT_AFTER,
    SOFT_AFTER,
    SOFT_MAX_DELAY,
    Authenticator,
    Throttle,
)

# Generous for real MTAs reusing a connection, tight for commands only abusers repeat.
_CALL_LIMITS = {
    "AUTH": 6,
    "STARTTLS": 3,
    "EHLO": 10,
    "HELO": 10,
    "NOOP": 100,
    "VRFY": 5,
    "EXPN": 5,
    "HELP": 10,
    "RSET": 1000,
    "*": 100000,
}


# How long a connection on a PROXY-protocol listener may take to send its PROXY header.
PROXY_TIMEOUT = 10.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _in_networks(peer: Any, networks: Sequence[Network]) -> bool:
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in n for n in networks)


# RFC 5322 atext (ASCII): a plain ``<local@domain>`` whose parts are dot-atoms.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE_ADDR = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*)>")

# Replies that are written at once even when the client has pipelined more commands: the
# greeting and STARTTLS's go-ahead (the TLS handshake follows), 3xx (the client waits for
# them: DATA's 354, AUTH's 334), and the replies after which the connection is closed.
_FLUSH_NOW = frozenset({b"220", b"221", b"421", b"502"})
_PIPELINE_BUFFER_MAX = 16384  # bytes of replies held back at most


class _MembersCache:
    """``inspect`` as aiosmtpd's ``SMTP.__init__`` sees it, with ``getmembers`` cached.

    ``SMTP.__init__`` runs ``inspect.getmembers`` over the new protocol object and its
    handler on every connection (about 150 attributes each, properties included) only to
    find the methods whose names start with ``auth_``. The names depend on the class, not
    the connection, so they are looked up once per class; the members returned are the
    object's own (bound) attributes, fetched by name, as ``getmembers`` would. Everything
    else is the real ``inspect``."""

    def __init__(self) -> None:
        self._names: dict[type, tuple[str, ...]] = {}

    def getmembers(self, obj: Any, predicate: Any = None) -> list[tuple[str, Any]]:
        if predicate is not None:
            return inspect.getmembers(obj, predicate)
        cls = type(obj)
        names = self._names.get(cls)
        if names is None:
            names = tuple(n for n, _ in inspect.getmembers(obj) if n.startswith("auth_"))
            self._names[cls] = names
        # only the ``auth_*`` members: the one caller filters on that prefix
        return [(n, getattr(obj, n)) for n in names]

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)


if getattr(aiosmtpd.smtp, "inspect", None) is inspect:  # installed once, on import
    aiosmtpd.smtp.inspect = _MembersCache()  # type: ignore[assignment,attr-defined]


@dataclass
class ListenerRuntime:
    name: str
    kind: str  # plain | submission | smtps
    trusted_networks: Sequence[Network]
    max_connections: int = 100
    active: int = 0
    draining: bool = False
    peers: set[Any] = field(default_factory=set)
    # PROXY protocol: every connection starts with a PROXY header (v1 or v2) naming the
    # real client, accepted only from these addresses (the load balancers)
    proxy_protocol: bool = False
    proxy_trusted: Sequence[Network] = ()
    gauge: Any = None  # the open-connections gauge (inc/dec: works in multiprocess mode too)

    def trusts(self, peer: Any) -> bool:
        return _in_networks(peer, self.trusted_networks)

    def trusts_proxy(self, peer: Any) -> bool:
        return _in_networks(peer, self.proxy_trusted)


class LeakguardSMTP(SMTP):
    """aiosmtpd's SMTP with: the LOGIN challenge text, line length and connection limits,
    PIPELINING (RFC 2920) with replies written together, and a fast address parser.

    Replies: aiosmtpd writes and drains every reply line on its own (one system call per
    line, one per EHLO keyword). Here a reply is held back only while the client has
    already sent the next complete command line (pipelining), and everything held is
    written in one write as soon as the input runs dry, before any reply the client waits
    for (3xx, the greeting, STARTTLS's 220) and before the connection is closed (221, 421,
    502). The EHLO reply is one write. Reading and parsing commands is aiosmtpd's, unchanged
    (no new path into DATA: no smuggling).
    """

    # aiosmtpd sends "User Name\x00"/"Password\x00", which Outlook and Go's net/smtp reject
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(
        self, handler: RelayHandler, *, line_length_limit: int = 65536, **kwargs: Any
    ) -> None:
        self.line_length_limit = line_length_limit  # read by SMTP.__init__ (StreamReader)
        self._lg_listener = handler.listener
        self._lg_counted = False
        self._lg_relay = handler.relay
        # (retry key, decision id) of mail sent on whose 250 the client has not yet shown it
        # read: cleared by the next command (_reset_timeout); left when the connection ends
        # first, the transaction is one a client may retry (connection_lost)
        self._lg_unanswered: list[tuple[tuple[str, ...], str]] = []
        self._lg_gone = False  # the connection ended (a retry may join its transaction)
        self._lg_out = bytearray()  # replies not yet written (pipelining)
        self._lg_collect = False  # inside EHLO: gather the lines, write once
        super().__init__(handler, **kwargs)

    # ------------------------------------------------------------------ replies

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            response = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        else:
            response = bytes(status)
        self._lg_out += response
        self._lg_out += b"\r\n"
        if self._lg_collect:
            return
        await self._lg_reply_done(response[:3])

    async def _lg_reply_done(self, code: bytes) -> None:
        """Write what is held back, unless the client has pipelined another command."""
        if (
            code[:1] in (b"2", b"4", b"5")
            and code not in _FLUSH_NOW
            and len(self._lg_out) < _PIPELINE_BUFFER_MAX
            and b"\n" in getattr(self._reader, "_buffer", b"")
        ):
            return  # the next command is already here: answer it in the same write
        await self._lg_flush()

    async def _lg_flush(self) -> None:
        if not self._lg_out:
            return
        out = bytes(self._lg_out)
        self._lg_out.clear()
        self._writer.write(out)
        transport = self._writer.transport
        if transport.is_closing() or transport.get_write_buffer_size():
            await self._writer.drain()  # the client reads slowly: wait for it

    async def smtp_EHLO(self, hostname: str) -> None:
        """aiosmtpd's EHLO, plus PIPELINING, written in one write."""
        self._lg_collect = True
        start = len(self._lg_out)
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._lg_collect = False
        reply = bytes(self._lg_out[start:])
        if reply.startswith(b"250-"):
            # before the last line ("250 HELP")
            last = reply.rfind(b"\r\n", 0, len(reply) - 2) + 2
            self._lg_out[start + last : start + last] = b"250-PIPELINING\r\n"
        await self._lg_reply_done(reply[:3])

    # ------------------------------------------------------------------ addresses

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's parser (``email._header_value_parser``, ~76 µs a call) is kept for
        anything unusual; a plain ``<local@domain>`` of dot-atoms, followed by nothing or
        by spaces and parameters, is read directly with the same result (a test compares
        the two)."""
        m = _PLAIN_ANGLE_ADDR.match(arg) if arg else None
        if m is not None:
            rest = arg[m.end() :].lstrip(" \t")
            if not rest.startswith("("):  # a comment after the address: the full parser
                addr = m.group(1)
                if self.local_part_limit and addr.rfind("@") > self.local_part_limit:
                    return None, None
                return addr, rest
        result: tuple[str | None, str | None] = super()._getaddr(arg)
        return result

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd calls this before every valid command: a command after a transaction's
        250 shows the client read that reply, so that transaction is finished and the same
        bytes sent again later are new mail, not a retry."""
        super()._reset_timeout(duration)
        if self._lg_unanswered:
            self._lg_unanswered = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None and not self._lg_counted:
            self._lg_counted = True
            self._lg_listener.active += 1
            self._lg_listener.peers.add(self)
            if self._lg_listener.gauge is not None:
                self._lg_listener.gauge.inc()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._lg_gone = True
        if self._lg_unanswered:
            # the connection ended after a 250 and before any other command: the client
            # may not have read it and may send the same transaction again (Relay.abandoned)
            done, self._lg_unanswered = self._lg_unanswered, []
            for key, decision_id in done:
                self._lg_relay.abandoned(key, decision_id)
        if self._lg_counted:
            self._lg_counted = False
            self._lg_listener.active -= 1
            self._lg_listener.peers.discard(self)
            if self._lg_listener.gauge is not None:
                self._lg_listener.gauge.dec()
        super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, reading into one buffer.

        aiosmtpd keeps one bytearray per line and joins them at the end: a 25 MB base64 mail
        becomes 340,000 small objects (about the size of the mail again in overhead) plus
        the joined copy. Here lines go straight into one growing buffer, so the peak is the
        buffer and one immutable copy of it. The protocol is unchanged: only CRLF.CRLF at
        the start of a line ends the data (no SMTP smuggling with bare LF or CR), leading
        dots are unstuffed, and past the size limit the rest is read and discarded before
        the 552. A line has no length limit of its own inside DATA (mail written with bare
        LF line ends is one long "line" here); the message size limit bounds it.
        """
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = self._reader
        limit = self.data_size_limit or 0
        saved_limit: int | None = getattr(reader, "_limit", None)
        if limit and saved_limit is not None and limit + 2 > saved_limit:
            setattr(reader, "_limit", limit + 2)  # noqa: B010 - StreamReader private limit
        buf = bytearray()
        size = 0
        too_much = False
        in_line = False  # the previous read ended inside a line (no CRLF yet)
        lines = 0
        try:
            while self.transport is not None:
                lines += 1
                if lines % 512 == 0:
                    # readuntil() returns at once while data is buffered: without this, a
                    # mail of 250,000 short lines would hold the loop (every session, the
                    # web) for the whole upload.
                    await asyncio.sleep(0)
                try:
                    line = await reader.readuntil(b"\r\n")
                except asyncio.CancelledError:
                    self._writer.close()
                    raise
                except asyncio.LimitOverrunError as exc:
                    line = await reader.read(exc.consumed)  # one line over the size limit
                if not in_line and line == b".\r\n":
                    break
                size += len(line)
                if limit and size > limit and not too_much:
                    too_much = True
                    buf = bytearray()  # discard at once; keep reading to the end
                if not too_much:
                    if not in_line and line.startswith(b"."):
                        buf += memoryview(line)[1:]
                    else:
                        buf += line
                in_line = not line.endswith(b"\r\n")
        finally:
            if saved_limit is not None:
                setattr(reader, "_limit", saved_limit)  # noqa: B010
        if too_much:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        original_content = bytes(buf)
        del buf
        self.envelope.content = original_content
        self.envelope.original_content = original_content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    async def _handle_client(self) -> None:
        lst = self._lg_listener
        # only a load balancer may say who the client is: anyone else is cut off at once,
        # before a byte is read (no greeting: on these listeners the balancer speaks first)
        if (
            lst.proxy_protocol
            and self.session is not None
            and not lst.trusts_proxy(self.session.peer)
        ):
            self.event_handler.log.warning(
                "proxy_refused",
                peer=_peer_host(self.session.peer),
                listener=lst.name,
                reason="not a trusted proxy",
            )
            if self.transport is not None:
                self.transport.close()
            return
        if lst.draining or lst.active > lst.max_connections:
            await self.push(replies.SHUTTING_DOWN if lst.draining else replies.TOO_BUSY)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()


class RelayHandler:
    """aiosmtpd hooks for one listener."""

    def __init__(
        self,
        relay: Relay,
        listener: ListenerRuntime,
        *,
        authenticator: Authenticator | None,
        throttle: Throttle,
        metrics: Metrics,
        max_recipients: int,
        log: Any,
    ) -> None:
        self.relay = relay
        self.listener = listener
        self.authenticator = authenticator
        self.throttle = throttle
        self.metrics = metrics
        self.max_recipients = max_recipients
        self.log = log

    # ------------------------------------------------------------------ PROXY protocol

    async def handle_PROXY(
        self, server: SMTP, session: Session, envelope: Envelope, proxy_data: Any
    ) -> bool:
        """A valid PROXY header from a trusted load balancer (checked on connection): from
        here on the session's peer is the real client, for the trusted-network check, the
        AUTH throttle and every log line. A header without an address (v2 LOCAL, v1
        UNKNOWN: the balancer's own health checks) keeps the balancer's address."""
        src = getattr(proxy_data, "src_addr", None)
        if src is not None and not isinstance(src, str | bytes):
            real = (str(src), int(getattr(proxy_data, "src_port", 0) or 0))
            self.log.debug(
                "proxy_client",
                proxy=_peer_host(session.peer),
                peer=real[0],
                listener=self.listener.name,
            )
            session.peer = real  # type: ignore[assignment]  # aiosmtpd types it str; a tuple at runtime
        return True

    # ------------------------------------------------------------------ AUTH (async)

    fail_delay = 0.5  # after a failed login (slows guessing); tests set 0
    soft_delay_unit = 0.5  # per-login slow-down step (doubles), capped at SOFT_MAX_DELAY

    def login_delay(self, login_key: str, peer_key: str = "") -> float:
        """Seconds to wait before checking a login that keeps failing (from anywhere), or an
        attempt from a client address that keeps failing (for any login)."""
        by_login = self.throttle.delay(login_key, SOFT_AFTER, self.soft_delay_unit, SOFT_MAX_DELAY)
        by_peer = (
            self.throttle.delay(peer_key, PEER_SOFT_AFTER, self.soft_delay_unit, SOFT_MAX_DELAY)
            if peer_key
            else 0.0
        )
        return max(by_login, by_peer)

    async def _check(
        self, server: SMTP, mechanism: str, login: bytes, password: bytes
    ) -> AuthResult:
        peer = _peer_host(server.session.peer if server.session else None)
        name = login.decode("utf-8", "replace").strip()
        if self.authenticator is None:
            return AuthResult(success=False, handled=False)
        # A hard limit only for this login from this client, reserved before any await (the
        # attempt counts as a failure until it succeeds). Failures for the login from
        # elsewhere, or from this client for other logins, only slow attempts down.
        pair, peer_key, login_key = f"lp:{name.lower()}|{peer}", f"p:{peer}", f"u:{name.lower()}"
        if not self.throttle.reserve(pair):
            self.metrics.auth_failures.inc()
            await asyncio.sleep(self.fail_delay * 2)
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 Too many failed logins; try again later",
            )
        delay = self.login_delay(login_key, peer_key)
        if delay:
            await asyncio.sleep(delay)
        principal = await self.authenticator.authenticate(name, password.decode("utf-8", "replace"))
        if principal is None:
            self.throttle.failed(peer_key, login_key)  # the pair was counted on reserve
            self.metrics.auth_failures.inc()
            self.log.info(
                "auth_failed",
                user=name[:200],
                peer=peer,
                mechanism=mechanism,
                listener=self.listener.name,
            )
            await asyncio.sleep(self.fail_delay)  # slow down guessing
            return AuthResult(success=False, handled=False)
        self.throttle.succeeded(pair, login_key)
        self.log.info(
            "auth_ok", user=principal, peer=peer, mechanism=mechanism, listener=self.listener.name
        )
        return AuthResult(success=True, auth_data=principal)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._check(server, "PLAIN", parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth(LeakguardSMTP.AuthLoginUsernameChallenge)
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        password = await server.challenge_auth(LeakguardSMTP.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check(server, "LOGIN", login, password)

    # ------------------------------------------------------------------ transaction

    def _principal(self, session: Session) -> str | None:
        if session.authenticated and isinstance(session.auth_data, str):
            return session.auth_data
        return None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        problem = replies.envelope_address_problem(address, smtputf8=bool(envelope.smtp_utf8))
        if problem is not None:
            return problem
        principal = self._principal(session)
        if principal is not None:
            if not self.relay.may_send_as(principal, address):
                self.metrics.relay_denied.inc()
                self.log.info(
                    "sender_refused",
                    user=principal,
                    mail_from=address[:320],
                    peer=_peer_host(session.peer),
                )
                return replies.SENDER_NOT_OWNED.format(addr=replies.ascii_text(address))
        elif not (self.listener.kind == "plain" and self.listener.trusts(session.peer)):
            self.metrics.relay_denied.inc()
            self.log.info(
                "relay_denied",
                peer=_peer_host(session.peer),
                mail_from=address[:320],
                listener=self.listener.name,
            )
            return replies.AUTH_REQUIRED if self.listener.kind != "plain" else replies.RELAY_DENIED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        addr = address.strip()
        problem = replies.envelope_address_problem(addr, smtputf8=bool(envelope.smtp_utf8))
        if problem is not None:
            return problem
        local, at, domain = addr.rpartition("@")
        if not at or not local or not domain or any(ch.isspace() for ch in addr) or len(addr) > 320:
            return replies.BAD_ADDRESS
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return replies.TOO_MANY_RCPTS
        envelope.rcpt_tos.append(addr)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if not isinstance(raw, bytes) or not envelope.rcpt_tos:
            return replies.NO_RCPTS
        principal = self._principal(session)
        mail_from = envelope.mail_from or ""
        tx = Transaction(
            raw=raw,
            mail_from=mail_from,
            rcpts=tuple(envelope.rcpt_tos),
            auth_user=principal if principal is not None else (mail_from or None),
            authenticated=principal is not None,
            smtputf8=bool(envelope.smtp_utf8),
            eightbit="BODY=8BITMIME" in (o.upper() for o in envelope.mail_options),
            peer=_peer_host(session.peer),
            listener=self.listener.name,
        )
        receipt = getattr(server, "_lg_unanswered", None)
        return await self.relay.process(
            tx, receipt, gone=lambda: bool(getattr(server, "_lg_gone", False))
        )

    async def handle_exception(self, error: Exception) -> str:
        self.log.error("smtp_exception", error=repr(error)[:500], listener=self.listener.name)
        return replies.LOCAL_ERROR


def _peer_host(peer: Any) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def server_tls_context(
    cert_file: str, key_file: str, min_version: str = "TLSv1.2"
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if min_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    )
    return ctx


@dataclass
class ListenerSpec:
    name: str
    kind: str
    host: str
    port: int
    trusted_networks: Sequence[str]
    max_connections: int
    proxy_protocol: bool = False
    proxy_trusted: Sequence[str] = ()


async def start_listener(
    spec: ListenerSpec,
    *,
    relay: Relay,
    hostname: str,
    tls_context: ssl.SSLContext | None,
    authenticator: Authenticator | None,
    throttle: Throttle,
    metrics: Metrics,
    log: Any,
    data_size_limit: int,
    max_recipients: int,
    idle_timeout: float,
    line_length_limit: int,
    sock: socket.socket | None = None,
) -> tuple[asyncio.Server, ListenerRuntime]:
    """Bind one listener in the running loop (``loop.create_server``, not a Controller).

    ``sock``: a listening socket bound already (``serve --workers``: the parent binds it
    before forking and every worker accepts on it); else host and port are bound here."""
    loop = asyncio.get_running_loop()
    runtime = ListenerRuntime(
        name=spec.name,
        kind=spec.kind,
        trusted_networks=[ipaddress.ip_network(n, strict=False) for n in spec.trusted_networks],
        max_connections=spec.max_connections,
        proxy_protocol=spec.proxy_protocol,
        proxy_trusted=[ipaddress.ip_network(n, strict=False) for n in spec.proxy_trusted],
    )
    if spec.proxy_protocol and spec.kind == "smtps":
        raise ValueError(
            f"listener {spec.name}: proxy_protocol needs a plain or submission listener"
        )
    handler = RelayHandler(
        relay,
        runtime,
        authenticator=authenticator,
        throttle=throttle,
        metrics=metrics,
        max_recipients=max_recipients,
        log=log,
    )
    if spec.kind in ("submission", "smtps") and tls_context is None:
        raise ValueError(f"listener {spec.name}: {spec.kind} needs tls.cert_file and tls.key_file")
    exclude = [] if authenticator is not None else ["PLAIN", "LOGIN"]

    def factory() -> LeakguardSMTP:
        common: dict[str, Any] = dict(
            hostname=hostname,
            ident="leakguard ESMTP",
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=idle_timeout,
            command_call_limit=_CALL_LIMITS,
            auth_exclude_mechanism=exclude,
            line_length_limit=line_length_limit,
            loop=loop,
        )
        if spec.proxy_protocol:
            common["proxy_protocol_timeout"] = PROXY_TIMEOUT
        if spec.kind == "submission":
            return LeakguardSMTP(
                handler,
                tls_context=tls_context,
                require_starttls=True,
                auth_required=True,
                auth_require_tls=True,
                **common,
            )
        if spec.kind == "smtps":
            # the socket is TLS already; aiosmtpd #281 would otherwise refuse AUTH (538)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "AUTH without TLS": not so here
                return LeakguardSMTP(handler, auth_required=True, auth_require_tls=False, **common)
        return LeakguardSMTP(handler, auth_required=False, auth_require_tls=True, **common)

    ssl_ctx = tls_context if spec.kind == "smtps" else None
    if sock is not None:
        server = await loop.create_server(factory, sock=sock, ssl=ssl_ctx)
    else:
        server = await loop.create_server(
            factory, host=spec.host, port=spec.port, ssl=ssl_ctx, reuse_address=True
        )
    runtime.gauge = metrics.connections.labels(spec.name)
    runtime.gauge.set(runtime.active)
    return server, runtime
