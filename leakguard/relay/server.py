"""The SMTP front: the relay's handler, its connection class and the listeners.

The SMTP protocol itself is ``leakguard.relay.smtpd`` (aiosmtpd's behaviour and hook
pattern on a faster engine, issue 11); this module decides who may relay and hands each
transaction to ``Relay.process``.

Listeners (DESIGN §4):
- ``submission``: STARTTLS required before anything else, then AUTH (PLAIN/LOGIN) required.
- ``smtps``: implicit TLS, AUTH required (the whole connection is TLS already).
- ``plain``: no TLS, no AUTH; only clients in ``trusted_networks`` may relay, and their
  envelope sender is the identity (an MTA in front has authenticated its users).

Never an open relay: an unauthenticated client outside the trusted networks gets
``530 5.7.0`` (AUTH listeners) or ``550 5.7.1`` (plain listener) at MAIL FROM.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from leakguard.metrics import Metrics
from leakguard.relay import replies, smtpd
from leakguard.relay.actions import Relay, Transaction
from leakguard.relay.auth import (
    PEER_SOFT_AFTER,
    SOFT_AFTER,
    SOFT_MAX_DELAY,
    Authenticator,
    Throttle,
)
from leakguard.relay.balance import BalancedServer, WorkerLoad
from leakguard.relay.smtpd import (
    AuthResult,
    Envelope,
    ServerSettings,
    Session,
    SmtpServerProtocol,
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


_SPACE = re.compile(r"\s")  # the characters str.isspace() finds (SRE uses the same table)


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
    # ``serve --workers N``: this worker's open connections on the board its siblings read
    # (relay/balance.py); None in a single process
    load: WorkerLoad | None = None

    def trusts(self, peer: Any) -> bool:
        return _in_networks(peer, self.trusted_networks)

    def trusts_proxy(self, peer: Any) -> bool:
        return _in_networks(peer, self.proxy_trusted)


class LeakguardSMTP(SmtpServerProtocol):
    """The relay's SMTP connection (``smtpd.SmtpServerProtocol``) with the listener's
    accounting and checks before the greeting, and retry bookkeeping."""

    # aiosmtpd sent "User Name\x00"/"Password\x00", which Outlook and Go's net/smtp reject
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, handler: RelayHandler, settings: ServerSettings) -> None:
        super().__init__(handler, settings)
        self._lg_listener = handler.listener
        self._lg_log = handler.log
        self._lg_counted = False
        self._lg_relay = handler.relay
        # (retry key, decision id) of mail sent on whose 250 the client has not yet shown it
        # read: cleared by the next command (on_command); left when the connection ends
        # first, the transaction is one a client may retry (on_lost)
        self._lg_unanswered: list[tuple[tuple[str, ...], str]] = []
        self._lg_gone = False  # the connection ended (a retry may join its transaction)

    def on_connect(self) -> str | None:
        lst = self._lg_listener
        self._lg_counted = True
        lst.active += 1
        lst.peers.add(self)
        if lst.gauge is not None:
            lst.gauge.inc()
        if lst.load is not None:
            lst.load.opened()
        # only a load balancer may say who the client is: anyone else is cut off at once,
        # before a byte is read (no greeting: on these listeners the balancer speaks first)
        if lst.proxy_protocol and not lst.trusts_proxy(self.session.peer):
            self._lg_log.warning(
                "proxy_refused",
                peer=_peer_host(self.session.peer),
                listener=lst.name,
                reason="not a trusted proxy",
            )
            return ""
        if lst.draining or lst.active > lst.max_connections:
            return replies.SHUTTING_DOWN if lst.draining else replies.TOO_BUSY
        return None

    def on_proxy_refused(self, reason: str) -> None:
        self._lg_log.warning(
            "proxy_refused",
            peer=_peer_host(self.session.peer),
            listener=self._lg_listener.name,
            reason=reason[:200],
        )

    def on_command(self) -> None:
        """A command after a transaction's 250 shows the client read that reply, so that
        transaction is finished and the same bytes sent again later are new mail, not a
        retry."""
        if self._lg_unanswered:
            self._lg_unanswered = []

    def on_eof(self) -> None:
        # a half-close: the reply is still written, but the client can send nothing more
        # here, so the same transaction on another connection is a retry that may join
        self._lg_gone = True

    def on_lost(self) -> None:
        self._lg_gone = True
        if self._lg_unanswered:
            # the connection ended after a 250 and before any other command: the client
            # may not have read it and may send the same transaction again (Relay.abandoned)
            done, self._lg_unanswered = self._lg_unanswered, []
            for key, decision_id in done:
                self._lg_relay.abandoned(key, decision_id)
        if self._lg_counted:
            self._lg_counted = False
            lst = self._lg_listener
            lst.active -= 1
            lst.peers.discard(self)
            if lst.gauge is not None:
                lst.gauge.dec()
            if lst.load is not None:
                lst.load.closed()


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
        self, server: Any, session: Session, envelope: Envelope, proxy_data: Any
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
            session.peer = real
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
        self, server: LeakguardSMTP, mechanism: str, login: bytes, password: bytes
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

    async def auth_PLAIN(self, server: LeakguardSMTP, args: list[str]) -> AuthResult:
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

    async def auth_LOGIN(self, server: LeakguardSMTP, args: list[str]) -> AuthResult:
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

    def handle_MAIL(
        self,
        server: LeakguardSMTP,
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

    def handle_RCPT(
        self,
        server: LeakguardSMTP,
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
        if not at or not local or not domain or _SPACE.search(addr) is not None or len(addr) > 320:
            return replies.BAD_ADDRESS
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return replies.TOO_MANY_RCPTS
        envelope.rcpt_tos.append(addr)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RCPT_OK

    async def handle_DATA(self, server: LeakguardSMTP, session: Session, envelope: Envelope) -> str:
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
        return await self.relay.process(tx, server._lg_unanswered, gone=lambda: server._lg_gone)

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
    load: WorkerLoad | None = None,
) -> tuple[asyncio.Server | BalancedServer, ListenerRuntime]:
    """Bind one listener in the running loop (``loop.create_server``, not a Controller).

    ``sock``: a listening socket bound already (``serve --workers``: the parent binds it
    before forking and every worker accepts on it); else host and port are bound here.
    ``load`` (with ``sock``): this worker's place on the workers' load board; the worker
    then accepts through ``balance.BalancedServer``, which leaves new connections to a less
    loaded sibling."""
    loop = asyncio.get_running_loop()
    runtime = ListenerRuntime(
        name=spec.name,
        kind=spec.kind,
        trusted_networks=[ipaddress.ip_network(n, strict=False) for n in spec.trusted_networks],
        max_connections=spec.max_connections,
        proxy_protocol=spec.proxy_protocol,
        proxy_trusted=[ipaddress.ip_network(n, strict=False) for n in spec.proxy_trusted],
        load=load if sock is not None else None,
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
    mechanisms = ("LOGIN", "PLAIN") if authenticator is not None else ()
    common: dict[str, Any] = dict(
        hostname=hostname,
        ident="leakguard ESMTP",
        data_size_limit=data_size_limit,
        timeout=idle_timeout,
        call_limits=_CALL_LIMITS,
        line_length_limit=line_length_limit,
        auth_mechanisms=mechanisms,
        proxy_timeout=PROXY_TIMEOUT if spec.proxy_protocol else None,
    )
    if spec.kind == "submission":
        settings = ServerSettings(
            tls_context=tls_context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            **common,
        )
    elif spec.kind == "smtps":
        # the socket is TLS already
        settings = ServerSettings(auth_required=True, auth_require_tls=False, **common)
    else:
        settings = ServerSettings(auth_required=False, auth_require_tls=True, **common)

    def factory() -> LeakguardSMTP:
        return LeakguardSMTP(handler, settings)

    ssl_ctx = tls_context if spec.kind == "smtps" else None
    tls_kw: dict[str, Any] = (
        {"ssl": ssl_ctx, "ssl_handshake_timeout": smtpd.TLS_HANDSHAKE_TIMEOUT} if ssl_ctx else {}
    )
    server: asyncio.Server | BalancedServer
    if sock is not None and runtime.load is not None:
        server = BalancedServer(
            sock,
            factory,
            runtime.load,
            ssl=ssl_ctx,
            ssl_handshake_timeout=smtpd.TLS_HANDSHAKE_TIMEOUT,
            log=log,
        )
        server.start()
    elif sock is not None:
        server = await loop.create_server(factory, sock=sock, **tls_kw)
    else:
        server = await loop.create_server(
            factory, host=spec.host, port=spec.port, reuse_address=True, **tls_kw
        )
    runtime.gauge = metrics.connections.labels(spec.name)
    runtime.gauge.set(runtime.active)
    return server, runtime
