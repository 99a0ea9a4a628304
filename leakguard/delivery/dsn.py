"""Delivery status notifications (RFC 3464 ``multipart/report``) in Japanese and English.

A DSN is sent with the null envelope sender (``MAIL FROM:<>``), so a DSN that fails is
never answered with another one.

Internationalised mail (RFC 6531 SMTPUTF8, RFC 6533): when the sender or a failed
recipient has a non-ASCII address, the DSN is itself a UTF-8 message (RFC 6532 headers;
it goes out with SMTPUTF8, see ``service.options_for``) whose machine-readable parts are
``message/global-delivery-status`` (``utf-8;`` address type) and ``message/global-headers``.
Otherwise it is plain ASCII-headed RFC 3464. The reporting host is written as an A-label.
Every header line ends in CRLF; the Subject is RFC 2047-encoded by the stdlib header
registry. ``build_dsn`` does not raise on hostile input (addresses, replies, headers).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid

from leakguard.delivery.transport import Reply

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_MAX_HEADERS = 64 * 1024


def _clean(value: str, limit: int = 900) -> str:
    """One header-safe line: no CR/LF or control characters."""
    out = "".join(ch if ch.isprintable() else " " for ch in value)
    return out[:limit]


_SUBJECT = "配信できませんでした / Undelivered Mail"
_NO_ORIGINAL_JA = "元のメールのヘッダーは、読み取りに時間がかかりすぎたため添付していません。"


def ascii_host(value: str) -> str:
    """``value`` as an ASCII DNS name (IDNA A-labels), or ``localhost`` if it is not one."""
    host = _clean(value, 200).strip().rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return "localhost"
    host = "".join(ch for ch in host if ch.isalnum() or ch in ".-_[]:")
    return host or "localhost"


def _subject_line() -> str:
    """The folded, RFC 2047-encoded Subject line (CRLF line ends, no trailing CRLF)."""
    folded = str(SMTP_POLICY.header_factory("Subject", _SUBJECT).fold(policy=SMTP_POLICY))
    return folded.rstrip("\r\n")


def status_of(reply: Reply) -> str:
    m = _STATUS.search(reply.text)
    if m and m.group(1)[0] == str(reply.code)[0]:
        return m.group(1)
    return "4.0.0" if reply.temporary else "5.0.0"


def original_headers(raw: bytes) -> bytes:
    """The header section of ``raw`` (bounded), with CRLF line ends."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw[: end if end >= 0 else len(raw)][:_MAX_HEADERS]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    return b"\r\n".join(lines) + b"\r\n"


def _subject_of(raw: bytes) -> str:
    head = original_headers(raw).decode("utf-8", "replace")
    m = re.search(r"(?im)^subject:[ \t]*(.*(?:\r\n[ \t].*)*)", head)
    if not m:
        return ""
    from email.header import decode_header, make_header

    try:
        return _clean(str(make_header(decode_header(m.group(1).replace("\r\n", "")))), 200)
    except Exception:
        return _clean(m.group(1), 200)


def _ascii_text(value: str) -> str:
    return value.encode("ascii", "replace").decode("ascii")


def build_dsn(
    *,
    original: bytes,
    sender: str,
    failed: Mapping[str, Reply],
    reporting_host: str,
    arrival: datetime | None = None,
    with_original: bool = True,
) -> bytes:
    """A failure report to ``sender`` listing each recipient in ``failed`` and why.

    UTF-8 (RFC 6532/6533) when the sender or a failed recipient is not ASCII, else ASCII
    headers; see the module docstring. ``with_original=False``: the minimal DSN, for when
    reading the original ran past its budget (issue 12): neither its subject nor its
    headers, and a sentence saying so; it never reads ``original``.
    """
    host = ascii_host(reporting_host)
    now = datetime.now(UTC)
    to = _clean(sender, 320)
    rcpts = {_clean(r, 320): rep for r, rep in failed.items()}
    utf8 = not (to.isascii() and all(r.isascii() for r in rcpts))
    subject = _subject_of(original) if with_original else ""
    boundary = "=_leakguard_" + secrets.token_hex(12)
    lines_ja = [
        "次の宛先にメールを届けられませんでした。",
        "",
        *(f"  {r}: {_clean(str(rep), 400)}" for r, rep in rcpts.items()),
        "",
        f"件名: {subject}" if subject else "",
        "宛先を確かめてから、もう一度送ってください。",
        *(
            ()
            if with_original
            else ("元のメールのヘッダーは、読み取りに時間がかかりすぎたため添付していません。",)
        ),
    ]
    lines_en = [
        "Your message could not be delivered to these recipients:",
        "",
        *(f"  {r}: {_clean(str(rep), 400)}" for r, rep in rcpts.items()),
        "",
        f"Subject: {subject}" if subject else "",
        "Please check the addresses and send it again.",
        *(
            ()
            if with_original
            else ("The original's headers are not included: reading them took too long.",)
        ),
    ]
    text = "\r\n".join([*lines_ja, "", "----", "", *lines_en]) + "\r\n"
    b64 = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    per_msg = [
        f"Reporting-MTA: dns; {host}",
        f"Arrival-Date: {format_datetime(arrival or now)}",
    ]
    blocks = ["\r\n".join(per_msg)]
    for rcpt, rep in rcpts.items():
        # RFC 6533 §3: a non-ASCII address is of type utf-8 (raw in the global part)
        addr_type = "rfc822" if rcpt.isascii() else "utf-8"
        diag = _clean(str(rep), 500)
        blocks.append(
            "\r\n".join(
                [
                    f"Final-Recipient: {addr_type}; {rcpt}",
                    "Action: failed",
                    f"Status: {status_of(rep)}",
                    f"Diagnostic-Code: smtp; {diag if utf8 else _ascii_text(diag)}",
                ]
            )
        )
    status_body = ("\r\n\r\n".join(blocks) + "\r\n").encode("utf-8")
    status_type = "message/global-delivery-status" if utf8 else "message/delivery-status"
    headers_type = "message/global-headers" if utf8 else "text/rfc822-headers"
    head = "\r\n".join(
        [
            f"From: Mail Delivery System <MAILER-DAEMON@{host}>",
            f"To: <{to}>",  # RFC 6532 UTF-8 when the sender's address is not ASCII
            _subject_line(),
            f"Date: {format_datetime(now)}",
            f"Message-ID: {make_msgid('dsn', domain=host)}",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        ]
    ).encode("utf-8")
    parts = [
        head + b"\r\n\r\n",
        b"This is a delivery status notification.\r\n\r\n",
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        b64,
        f"--{boundary}\r\n".encode(),
        f"Content-Type: {status_type}\r\n\r\n".encode(),
        status_body,
    ]
    if with_original:
        parts += [
            f"--{boundary}\r\n".encode(),
            f"Content-Type: {headers_type}\r\n\r\n".encode(),
            original_headers(original),
        ]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)
