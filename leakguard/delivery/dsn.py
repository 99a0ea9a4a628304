"""Delivery status notifications (RFC 3464 ``multipart/report``) in Japanese and English.

A DSN is sent with the null envelope sender (``MAIL FROM:<>``), so a DSN that fails is
never answered with another one.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, make_msgid

from leakguard.delivery.transport import Reply

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_MAX_HEADERS = 64 * 1024


def _clean(value: str, limit: int = 900) -> str:
    """One header-safe line: no CR/LF or control characters."""
    out = "".join(ch if ch.isprintable() else " " for ch in value)
    return out[:limit]


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


def build_dsn(
    *,
    original: bytes,
    sender: str,
    failed: Mapping[str, Reply],
    reporting_host: str,
    arrival: datetime | None = None,
) -> bytes:
    """A failure report to ``sender`` listing each recipient in ``failed`` and why."""
    host = _clean(reporting_host, 200) or "localhost"
    now = datetime.now(UTC)
    subject = _subject_of(original)
    boundary = "=_leakguard_" + secrets.token_hex(12)
    lines_ja = [
        "次の宛先にメールを届けられませんでした。",
        "",
        *(f"  {_clean(r, 320)}: {_clean(str(rep), 400)}" for r, rep in failed.items()),
        "",
        f"件名: {subject}" if subject else "",
        "宛先を確かめてから、もう一度送ってください。",
    ]
    lines_en = [
        "Your message could not be delivered to these recipients:",
        "",
        *(f"  {_clean(r, 320)}: {_clean(str(rep), 400)}" for r, rep in failed.items()),
        "",
        f"Subject: {subject}" if subject else "",
        "Please check the addresses and send it again.",
    ]
    text = "\r\n".join([*lines_ja, "", "----", "", *lines_en]) + "\r\n"
    b64 = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    per_msg = [
        f"Reporting-MTA: dns; {host}",
        f"Arrival-Date: {format_datetime(arrival or now)}",
    ]
    blocks = ["\r\n".join(per_msg)]
    for rcpt, rep in failed.items():
        blocks.append(
            "\r\n".join(
                [
                    f"Final-Recipient: rfc822; {_clean(rcpt, 320)}",
                    "Action: failed",
                    f"Status: {status_of(rep)}",
                    f"Diagnostic-Code: smtp; {_clean(str(rep), 500)}",
                ]
            )
        )
    status_body = ("\r\n\r\n".join(blocks) + "\r\n").encode("utf-8")
    subj = Header("配信できませんでした / Undelivered Mail", "utf-8").encode()
    head = "\r\n".join(
        [
            f"From: Mail Delivery System <MAILER-DAEMON@{host}>",
            f"To: <{_clean(sender, 320)}>",
            f"Subject: {subj}",
            f"Date: {format_datetime(now)}",
            f"Message-ID: {make_msgid('dsn', domain=host)}",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        ]
    ).encode("ascii")
    parts = [
        head + b"\r\n\r\n",
        b"This is a delivery status notification.\r\n\r\n",
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        b64,
        f"--{boundary}\r\n".encode(),
        b"Content-Type: message/delivery-status\r\n\r\n",
        status_body,
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/rfc822-headers\r\n\r\n",
        original_headers(original),
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)
