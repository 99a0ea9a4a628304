"""What a message submission agent adds (RFC 6409 §8): ``Date`` and ``Message-ID``.

A mail client that leaves them out (scripts, some in-house tools, printers) expects the
submission server to add them; without them recipients' servers score the mail as spam and
replies cannot thread. The fields are *prepended*: every byte of the message as submitted
stays as it was, so hashes, signatures over the body and the hold's stored original are
unaffected beyond the added lines.
"""

from __future__ import annotations

import email.utils
from datetime import datetime

from leakguard.message.headers import parse_header_block


def missing_fields(raw: bytes, hostname: str, now: datetime | None = None) -> list[bytes]:
    """The ``Date`` / ``Message-ID`` lines (without line ends) ``raw`` lacks."""
    hb = parse_header_block(raw)
    if hb.truncated:  # more fields than we read: cannot tell, add nothing
        return []
    out: list[bytes] = []
    if hb.get("Date") is None:
        when = (now or datetime.now()).astimezone()
        out.append(b"Date: " + email.utils.format_datetime(when).encode("ascii"))
    if hb.get("Message-ID") is None:
        domain = hostname if hostname and "." in hostname else "leakguard.invalid"
        out.append(b"Message-ID: " + email.utils.make_msgid(domain=domain).encode("ascii"))
    return out


def complete_submission(raw: bytes, hostname: str, now: datetime | None = None) -> bytes:
    """``raw`` with the missing ``Date`` and ``Message-ID`` prepended (same line ends)."""
    lines = missing_fields(raw, hostname, now)
    if not lines:
        return raw
    head_end = raw.find(b"\n")
    eol = b"\r\n" if head_end <= 0 or raw[head_end - 1 : head_end] == b"\r" else b"\n"
    return b"".join(line + eol for line in lines) + raw
