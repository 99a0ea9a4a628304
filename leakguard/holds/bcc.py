"""Fallback "release as Bcc" rewrite, used only while ``leakguard.relay.rewrite`` is absent.

The relay's ``rewrite_to_bcc(raw, is_internal)`` is the one implementation; this module
delegates to it when it exists. The fallback keeps the body byte-for-byte and rewrites only
the To and Cc header fields: external addresses are removed (they still get the mail: the
envelope is unchanged), internal ones stay visible, and an emptied To becomes
``undisclosed-recipients:;``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import formataddr, getaddresses

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def default_bcc_rewrite(raw: bytes, is_internal: Callable[[str], bool]) -> bytes:
    try:
        from leakguard.relay.rewrite import rewrite_to_bcc  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return fallback_bcc_rewrite(raw, is_internal)
    out = rewrite_to_bcc(raw, is_internal)
    assert isinstance(out, bytes)
    return out


def _unfold(block: bytes) -> list[bytes]:
    fields: list[bytes] = []
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def fallback_bcc_rewrite(raw: bytes, is_internal: Callable[[str], bool]) -> bytes:
    m = _HEADER_END.search(raw)
    head, rest = (raw[: m.start()], raw[m.start() :]) if m else (raw, b"")
    nl = b"\r\n" if b"\r\n" in head[:2000] or not head else b"\n"
    out: list[bytes] = []
    saw_to = False
    for field in _unfold(head):
        name = field.split(b":", 1)[0].strip().lower()
        if name not in (b"to", b"cc"):
            out.append(field)
            continue
        value = field.split(b":", 1)[1].decode("utf-8", "replace") if b":" in field else ""
        value = " ".join(value.split())
        kept = [(n, a) for n, a in getaddresses([value]) if a and "@" in a and is_internal(a)]
        if name == b"to":
            saw_to = True
        if kept:
            text = ", ".join(formataddr((n, a)) for n, a in kept)
            label = b"To" if name == b"to" else b"Cc"
            out.append(label + b": " + text.encode("utf-8") + nl)
        elif name == b"to":
            out.append(b"To: undisclosed-recipients:;" + nl)
    if not saw_to:
        out.append(b"To: undisclosed-recipients:;" + nl)
    new_head = b"".join(out)
    if new_head.endswith(nl):
        new_head = new_head[: -len(nl)]
    return new_head + rest
