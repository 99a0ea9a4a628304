"""``SmtpTransport``: relay raw bytes to the upstream smarthost with aiosmtplib.

aiosmtplib has no connection pool, so this keeps a small one: at most ``pool_size``
connected ``SMTP`` clients, each used by one transaction at a time, reconnected when they
fail or have been idle too long. TLS is explicit (``start_tls=True`` or ``use_tls=True``;
never the opportunistic default that an attacker in the middle can strip).

Never twice: a pooled connection the server dropped while idle is retried once on a fresh
connection, but only when the drop happened before the DATA command (MAIL/RCPT), when the
server cannot have the message. A connection lost (or timed out) after DATA was sent is
*ambiguous*: the server may have queued the message before the final reply was lost. It
is never retried here; it raises ``UpstreamError(ambiguous=True)``, a temporary failure:
the client gets a 4xx (it keeps responsibility and retries later) and a queued delivery
is retried after its backoff. That may deliver one duplicate, the price RFC 5321 §6.1
sets for not losing mail whose acceptance was never confirmed; losing a released or
DSN'd message silently would be worse.

Off the event loop: aiosmtplib prepares DATA (line ends to CRLF, dot-stuffing, the SIZE
count) on the loop, about 10 ms a megabyte, so one 32 MB mail held every SMTP session and
the web for 300 ms. ``prepare_data`` does exactly that preparation, with aiosmtplib's own
functions, in a worker thread and in 256 KiB pieces (the GIL is free between them);
``_Client.sendmail_prepared`` then runs aiosmtplib's transaction (EHLO, SIZE, MAIL, RCPT,
DATA, RSET on errors) and writes the pieces under the protocol's command lock, at the
socket's pace, yielding to the loop between pieces.
End of data stays CRLF.CRLF after exact dot-stuffing: no smuggling.

PIPELINING (RFC 2920, issue 11): when the upstream offers it, MAIL, every RCPT and DATA go
in one write and their replies are read in order, instead of one round trip each (12 for
ten recipients). aiosmtplib reads one reply per command and drops what arrives while a
reply waits to be picked up, so a connection's protocol object is given
``_PipeliningProtocol``, which keeps every byte of a group's replies. The outcome is the
same as command by command: a refused sender raises ``SMTPSenderRefused``, refused
recipients are reported one by one (all refused: ``SMTPRecipientsRefused``), a DATA that
is not answered 354 raises ``SMTPDataError``, 421 closes the connection; the message
itself is sent only after the 354 and with at least one recipient accepted (a server that
says 354 with none accepted gets the connection closed, never the message).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import aiosmtplib
from aiosmtplib.email import parse_address
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    LINE_ENDINGS_REGEX,
    MAX_RESPONSE_LENGTH,
    PERIOD_REGEX,
    SMTPProtocol,
    normalize_message_line_endings,
)

from leakguard.delivery.transport import NO_OPTIONS, Reply, SendOptions, SendResult, UpstreamError

_IDLE_REUSE_SECONDS = 20.0  # servers close idle clients after 30 s .. 5 min
PREPARE_INLINE_BYTES = 256 * 1024  # smaller mail is prepared on the loop (about 2 ms)
PREPARE_PIECE = 256 * 1024  # the GIL is held this long at most (about 2 ms)


@dataclass(frozen=True, slots=True)
class PreparedData:
    """The DATA section as it goes on the wire, in pieces: CRLF line ends, dot-stuffed,
    the last piece ending in ``CRLF.CRLF``; ``size`` is the RFC 1870 SIZE (the length of
    the CRLF-normalised message, before dot-stuffing)."""

    pieces: tuple[bytes | memoryview, ...]
    size: int


def _needs_crlf(raw: bytes, start: int, end: int) -> bool:
    """Whether ``raw[start:end]`` has a line end other than CRLF (three ``count`` passes,
    no copy: most mail has none, and then its bytes go out as they are, issue 11)."""
    crlf = raw.count(b"\r\n", start, end)
    return raw.count(b"\n", start, end) != crlf or raw.count(b"\r", start, end) != crlf


def prepare_data(raw: bytes, piece: int = PREPARE_PIECE) -> PreparedData:
    """aiosmtplib's own DATA preparation (``SMTPProtocol.execute_data_command`` and the SIZE
    of ``SMTP.sendmail``), to run in a worker thread.

    Piece by piece: a regular expression holds the GIL until it returns, so one pass over
    32 MB in a thread would still stop the event loop for its whole length. Pieces end just
    after a LF, so no CRLF is split and every piece starts at a line start (where the
    dot-stuffing pattern ``^\\.`` is anchored, as on the whole message).

    A piece with CRLF line ends and no line starting with a dot is a view of ``raw``, not a
    copy: the relay then holds one copy of a big mail's bytes on its way upstream, not two
    (issue 11: peak memory at most three times the message)."""
    out: list[bytes | memoryview] = []
    view = memoryview(raw)
    size = 0
    start, n = 0, len(raw)
    while start < n:
        end = raw.find(b"\n", min(start + piece, n) - 1) + 1 if start + piece < n else n
        if end <= 0:  # no LF after this point: the rest is one piece
            end = n
        chunk: bytes | memoryview
        if _needs_crlf(raw, start, end) or (end == n and not raw.endswith(b"\r\n")):
            fixed = LINE_ENDINGS_REGEX.sub(b"\r\n", raw[start:end])
            if end == n and not fixed.endswith(b"\r\n"):
                fixed += b"\r\n"  # the message ends with CRLF (normalize_message_line_endings)
            chunk = fixed
        else:
            chunk = view[start:end]
        size += len(chunk)
        if isinstance(chunk, bytes):
            if chunk.startswith(b".") or b"\n." in chunk:
                chunk = PERIOD_REGEX.sub(b"..", chunk)
        elif raw.startswith(b".", start) or raw.find(b"\n.", start, end) >= 0:
            chunk = PERIOD_REGEX.sub(b"..", chunk)
        out.append(chunk)
        start = end
    if not out:
        out.append(normalize_message_line_endings(b""))
        size = len(out[0])
    if len(out[-1]) < piece:
        out[-1] = bytes(out[-1]) + b".\r\n"  # one write for a small mail, not two
    else:
        out.append(b".\r\n")
    return PreparedData(tuple(out), size)


# A plain ``local@domain`` of dot-atoms (a conservative ASCII subset): aiosmtplib's
# ``parse_address`` (``email.utils.parseaddr`` and an injection check, about 30 µs) gives it
# back unchanged, so it is quoted directly (twice per recipient and mail, issue 11).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def checked_address(address: str) -> str:
    """``aiosmtplib.email.parse_address``, fast for plain addresses."""
    if _PLAIN_ADDRESS.fullmatch(address) is not None:
        return address
    return parse_address(address)


def quoted_address(address: str) -> str:
    """``aiosmtplib.email.quote_address``, fast for plain addresses."""
    return f"<{checked_address(address)}>"


def _writes_prepared(protocol: object) -> bool:
    """Whether this aiosmtplib's protocol has what ``_data_prepared`` relies on."""
    return all(
        hasattr(protocol, a)
        for a in ("_command_lock", "_response_pending", "_drain_helper", "write", "read_response")
    )


class _PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol that can also read the replies to a group of commands written
    at once: while ``read_group`` runs, every byte received is kept (aiosmtplib's own
    ``data_received`` drops data that arrives while a parsed reply waits to be read)."""

    _group_waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        waiter = self._group_waiter
        if waiter is None:
            super().data_received(data)
            return
        self._buffer.extend(data)
        if not waiter.done():
            waiter.set_result(None)

    def _fail_group(self, exc: BaseException) -> None:
        waiter = self._group_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
            waiter.exception()  # retrieved: nobody may await it any more

    def eof_received(self) -> bool:
        self._fail_group(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_group(aiosmtplib.SMTPServerDisconnected("Connection lost"))
        super().connection_lost(exc)

    async def read_group(self, count: int, timeout: float | None) -> list[aiosmtplib.SMTPResponse]:
        """The next ``count`` replies, in order (the caller holds the command lock)."""
        replies: list[aiosmtplib.SMTPResponse] = []
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while len(replies) < count:
                    reply = self._read_response_from_buffer()
                    if reply is not None:
                        replies.append(reply)
                        continue
                    if len(self._buffer) > MAX_RESPONSE_LENGTH * (count - len(replies)):
                        raise aiosmtplib.SMTPResponseException(
                            aiosmtplib.SMTPStatus.invalid_response.value, "Response too long"
                        )
                    if self.transport is None or self.transport.is_closing():
                        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
                    self._group_waiter = loop.create_future()
                    await self._group_waiter
                    self._group_waiter = None
        except TimeoutError as exc:
            raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from exc
        finally:
            self._group_waiter = None
            # a server that says more than was asked: dropped, as aiosmtplib drops
            # unsolicited data, so it can never be taken for the reply to a later command
            del self._buffer[:]
        return replies


class _Client(aiosmtplib.SMTP):
    """``aiosmtplib.SMTP`` that remembers whether this transaction reached DATA, can send
    a message prepared off the loop, and pipelines MAIL/RCPT/DATA when offered."""

    data_started = False
    pipelined = False  # this transaction's envelope went as one PIPELINING group

    async def connect(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        response = await super().connect(*args, **kwargs)
        protocol = self.protocol
        if type(protocol) is SMTPProtocol and protocol.transport is not None:
            # the same object, read as the subclass (it adds no state of its own); set
            # again on its transport, which may have looked its methods up (uvloop's does)
            protocol.__class__ = _PipeliningProtocol
            cast(asyncio.Transport, protocol.transport).set_protocol(protocol)
        return response

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True  # from here on, a lost connection is ambiguous
        return await super().data(*args, **kwargs)

    async def sendmail_prepared(
        self,
        sender: str,
        recipients: Sequence[str],
        prepared: PreparedData,
        raw: bytes,
        *,
        mail_options: Sequence[str] = (),
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        """``SMTP.sendmail`` with the DATA bytes prepared beforehand (see the module)."""
        options = list(mail_options)
        encoding = "utf-8" if any(o.lower() == "smtputf8" for o in options) else "ascii"
        checked_address(sender)
        for recipient in recipients:
            checked_address(recipient)
        if self._sendmail_lock is None:
            self._sendmail_lock = asyncio.Lock()
        async with self._sendmail_lock:
            await self._ehlo_or_helo_if_needed()
            if encoding == "utf-8" and not self.supports_extension("smtputf8"):
                raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
            if self.supports_extension("size"):
                options.insert(0, f"size={prepared.size}")
            try:
                if isinstance(self.protocol, _PipeliningProtocol) and self.supports_extension(
                    "pipelining"
                ):
                    self.pipelined = True
                    errors = await self._pipelined_envelope(sender, recipients, options, encoding)
                    response = await self._data_prepared(prepared.pieces, started=True)
                else:
                    await self.mail(sender, options=options, encoding=encoding)
                    errors = await self._send_recipients(recipients, [], encoding=encoding)
                    if _writes_prepared(self.protocol):
                        response = await self._data_prepared(prepared.pieces)
                    else:  # pragma: no cover - another aiosmtplib: its own (on-loop) DATA
                        response = await self.data(raw)
            except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
                with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
                    await self.rset()
                raise
        return errors, response.message

    async def _pipelined_envelope(
        self, sender: str, recipients: Sequence[str], options: Sequence[str], encoding: str
    ) -> dict[str, aiosmtplib.SMTPResponse]:
        """MAIL, the RCPTs and DATA in one write; their replies read in order. Returns the
        refused recipients like ``_send_recipients``; on return the server has said 354."""
        protocol = self.protocol
        if not isinstance(protocol, _PipeliningProtocol) or protocol._command_lock is None:
            raise aiosmtplib.SMTPServerDisconnected("Server not connected")
        commands = [
            b" ".join(
                [b"MAIL", b"FROM:" + quoted_address(sender).encode(encoding)]
                + [o.encode("ascii") for o in options]
            ),
            *(b"RCPT TO:" + quoted_address(r).encode(encoding) for r in recipients),
            b"DATA",
        ]
        for command in commands:
            if COMMAND_INJECTION_REGEX.search(command):
                raise ValueError("Command arg contains a prohibited control character")
        try:
            async with protocol._command_lock:
                protocol.write(b"".join(c + b"\r\n" for c in commands))
                replies = await protocol.read_group(len(commands), self.timeout)
        except BaseException:
            self.close()  # the replies are out of step with the commands
            raise
        mail, *rcpt_replies, data = replies
        if any(r.code == aiosmtplib.SMTPStatus.domain_unavailable for r in replies):
            self.close()  # as aiosmtplib does after a 421
        refused = [
            aiosmtplib.SMTPRecipientRefused(r.code, r.message, rcpt)
            for rcpt, r in zip(recipients, rcpt_replies, strict=True)
            if r.code not in (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward)
        ]
        ok = mail.code == aiosmtplib.SMTPStatus.completed and len(refused) < len(recipients)
        if data.code == aiosmtplib.SMTPStatus.start_input and not ok:
            # 354 without a sender or a recipient: never send the message; a closed
            # connection ends the transaction without one
            self.close()
        if mail.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        if data.code != aiosmtplib.SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(data.code, data.message)
        return {e.recipient: aiosmtplib.SMTPResponse(e.code, e.message) for e in refused}

    async def _data_prepared(
        self, pieces: Sequence[bytes | memoryview], *, started: bool = False
    ) -> aiosmtplib.SMTPResponse:
        """``SMTPProtocol.execute_data_command`` without the preparation, written in pieces
        (``started``: DATA was pipelined and answered 354 already)."""
        self.data_started = True  # from here on, a lost connection is ambiguous
        protocol: Any = self.protocol
        if protocol is None or protocol._command_lock is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        try:
            async with protocol._command_lock:
                if not started:
                    protocol._response_pending = True  # a reply is expected before each send
                    protocol.write(b"DATA\r\n")
                    start = await protocol.read_response(timeout=self.timeout)
                    if start.code != aiosmtplib.SMTPStatus.start_input:
                        raise aiosmtplib.SMTPDataError(start.code, start.message)
                protocol._response_pending = True
                for piece in pieces:
                    protocol.write(piece)
                    try:
                        await protocol._drain_helper()  # the socket's pace, not a buffer
                    except ConnectionError as exc:
                        raise aiosmtplib.SMTPServerDisconnected("Connection lost") from exc
                    await asyncio.sleep(0)  # other sessions between pieces
                response: aiosmtplib.SMTPResponse = await protocol.read_response(
                    timeout=self.timeout
                )
                if response.code != aiosmtplib.SMTPStatus.completed:
                    raise aiosmtplib.SMTPDataError(response.code, response.message)
            return response
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            self.close()
            raise


def _ambiguous(exc: BaseException) -> UpstreamError:
    return UpstreamError(
        451,
        f"4.4.2 upstream connection lost after the message was sent "
        f"(it may have been accepted): {exc}",
        temporary=True,
        ambiguous=True,
    )


class _Conn:
    __slots__ = ("client", "last_used")

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.last_used = 0.0


def client_tls_context(*, verify: bool = True, ca_file: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SmtpTransport:
    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "starttls",
        tls_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
        pool_size: int = 8,
        helo_name: str | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "implicit"):
            raise ValueError(f"unknown upstream TLS mode {tls!r}")
        self.host = host
        self.port = port
        self.tls = tls
        self._tls_context = tls_context
        self._username = username
        self._password = password
        self._timeout = timeout
        self._helo = helo_name
        self._idle: asyncio.LifoQueue[_Conn] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(pool_size)
        self._all: set[_Conn] = set()
        self.connects = 0  # how many TCP connections were opened (pool effectiveness)
        self.pipelined = 0  # how many messages went with MAIL/RCPT/DATA pipelined

    def __repr__(self) -> str:  # never show the password
        return f"SmtpTransport({self.host}:{self.port}, tls={self.tls})"

    def _new_client(self) -> _Client:
        return _Client(
            hostname=self.host,
            port=self.port,
            username=self._username,
            password=self._password,
            local_hostname=self._helo,
            timeout=self._timeout,
            use_tls=self.tls == "implicit",
            start_tls=self.tls == "starttls",  # False for "none": never opportunistic
            tls_context=self._tls_context if self.tls != "none" else None,
        )

    async def _connect(self, conn: _Conn) -> None:
        with contextlib.suppress(Exception):
            if conn.client.is_connected:
                conn.client.close()
        conn.client = self._new_client()
        self.connects += 1
        await conn.client.connect()

    async def send(
        self,
        mail_from: str,
        rcpts: Sequence[str],
        raw: bytes,
        options: SendOptions = NO_OPTIONS,
    ) -> SendResult:
        # line ends and dot-stuffing: in a worker thread for all but small mail
        if len(raw) <= PREPARE_INLINE_BYTES:
            prepared = prepare_data(raw)
        else:
            prepared = await asyncio.to_thread(prepare_data, raw)
        mail_options: list[str] = []
        if options.eightbit:
            mail_options.append("BODY=8BITMIME")
        if options.smtputf8:
            mail_options.append("SMTPUTF8")
        async with self._slots:
            try:
                conn = self._idle.get_nowait()
            except asyncio.QueueEmpty:
                conn = _Conn(self._new_client())
                self._all.add(conn)
            keep = False
            try:
                result = await self._send_on(conn, mail_from, rcpts, raw, prepared, mail_options)
                keep = True
                return result
            except UpstreamError as exc:
                keep = exc.code >= 400 and exc.code != 421 and conn.client.is_connected
                raise
            finally:
                conn.last_used = time.monotonic()
                if keep and conn.client.is_connected:
                    self._idle.put_nowait(conn)
                else:
                    self._all.discard(conn)
                    with contextlib.suppress(Exception):
                        conn.client.close()

    async def _send_on(
        self,
        conn: _Conn,
        mail_from: str,
        rcpts: Sequence[str],
        raw: bytes,
        prepared: PreparedData,
        mail_options: list[str],
    ) -> SendResult:
        # the null reverse-path of bounces (aiosmtpd hands it over as "<>"): aiosmtplib
        # writes MAIL FROM:<> for an empty sender and refuses "<>" itself
        if mail_from.strip() in ("", "<>"):
            mail_from = ""
        reused = conn.client.is_connected
        if reused and time.monotonic() - conn.last_used > _IDLE_REUSE_SECONDS:
            reused = False
        for attempt in (1, 2):
            try:
                if not reused:
                    await self._connect(conn)
                conn.client.data_started = False
                conn.client.pipelined = False
                errors, reply = await conn.client.sendmail_prepared(
                    mail_from, list(rcpts), prepared, raw, mail_options=mail_options
                )
                if conn.client.pipelined:
                    self.pipelined += 1
                refused = {r: Reply(resp.code, resp.message) for r, resp in errors.items()}
                accepted = tuple(r for r in rcpts if r not in refused)
                return SendResult(accepted=accepted, refused=refused, reply=reply)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = {e.recipient: Reply(e.code, e.message) for e in exc.recipients}
                first = exc.recipients[0] if exc.recipients else None
                code = first.code if first else 550
                raise UpstreamError(
                    code,
                    first.message if first else "all recipients refused",
                    temporary=all(r.temporary for r in refused.values()),
                    refused=refused,
                ) from exc
            except aiosmtplib.SMTPNotSupported as exc:
                raise UpstreamError(
                    554, f"5.6.7 upstream cannot take this message: {exc}", temporary=False
                ) from exc
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 421 or isinstance(exc, aiosmtplib.SMTPConnectResponseError):
                    raise UpstreamError(exc.code, exc.message, temporary=True) from exc
                raise UpstreamError(exc.code, exc.message, temporary=400 <= exc.code < 500) from exc
            except aiosmtplib.SMTPServerDisconnected as exc:
                if conn.client.data_started:  # the server may have the message: no retry
                    raise _ambiguous(exc) from exc
                if reused and attempt == 1:
                    # a pooled connection the server dropped while idle: one fresh try
                    reused = False
                    continue
                raise UpstreamError(
                    451, f"4.4.2 upstream disconnected: {exc}", temporary=True
                ) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if conn.client.data_started:  # e.g. no final reply within the timeout
                    raise _ambiguous(exc) from exc
                raise UpstreamError(
                    451, f"4.4.1 upstream unavailable: {exc}", temporary=True
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        for conn in list(self._all):
            with contextlib.suppress(Exception):
                if conn.client.is_connected:
                    await asyncio.wait_for(conn.client.quit(), 2)
            with contextlib.suppress(Exception):
                conn.client.close()
        self._all.clear()


async def try_login(
    host: str,
    port: int,
    *,
    tls: str,
    tls_context: ssl.SSLContext | None,
    username: str,
    password: str,
    timeout: float = 15.0,
) -> bool:
    """Pass-through AUTH: do these credentials open a session on the upstream?"""
    client = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        timeout=timeout,
        use_tls=tls == "implicit",
        start_tls=tls == "starttls",
        tls_context=tls_context if tls != "none" else None,
    )
    try:
        await client.connect()
        await client.login(username, password)
        return True
    except aiosmtplib.SMTPAuthenticationError:
        return False
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.quit()
        with contextlib.suppress(Exception):
            client.close()
