"""Build hold notices and confirmations as multipart text + HTML mail (ja/en).

Templates live in ``leakguard/holds/templates`` (Jinja2; autoescape on for HTML). Every
value from the held mail reaches the templates through ``Explanation`` (cleaned, links
defanged) and is escaped by Jinja2 in the HTML part. Notices are marked
``Auto-Submitted: auto-generated`` (RFC 3834) and ask Exchange not to auto-answer them, so
out-of-office replies do not loop; the service never sends a notice about a notice.
"""

from __future__ import annotations

import base64
import email.utils
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from leakguard.holds.explain import Explanation, clean_line
from leakguard.holds.texts import t

_ENV = Environment(
    loader=PackageLoader("leakguard.holds", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,  # package templates: no stat of the file on every render
)

NOTICE_HEADER = "X-Leakguard-Notice"


@dataclass(frozen=True, slots=True)
class Answer:
    """One way to answer a notice: a button (link to the review page) and a reply word."""

    key: str  # "release", "release_bcc", "discard", "discard_mistake"
    label: str
    url: str
    command: str
    primary: bool = False


def command_reply_to(command_address: str, token: str) -> str:
    local, _, domain = command_address.rpartition("@")
    return f"{local}+{token}@{domain}"


def _subject_line(text: str) -> str:
    return clean_line(text, 160)


def render(template: str, **ctx: object) -> str:
    return _ENV.get_template(template).render(**ctx)


# Header values: folded at spaces past this width; non-ASCII ones as RFC 2047 words of at
# most this many UTF-8 bytes (52 base64 characters: with "=?utf-8?b?...?=" and a header
# name such as "Subject: " a line stays within 78 characters).
_FOLD = 78
_WORD_BYTES = 39
_MAX_7BIT_LINE = 998


def _encoded_words(value: str) -> str:
    """``value`` as RFC 2047 base64 words (UTF-8), split between characters, one a line."""
    data = value.encode("utf-8")
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and 0x80 <= data[end] < 0xC0:  # not inside a character
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode("ascii") + "?=")
        start = end
    return "\r\n ".join(words)


_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to"})


def _address_words(value: str) -> str:
    """An address list with non-ASCII display names: each name as RFC 2047 words and the
    address itself as it is (an encoded word must not hold an address: RFC 2047 section 5).
    An address that is not ASCII itself leaves the whole value to ``_encoded_words``."""
    pairs = email.utils.getaddresses([value])
    if not pairs or any(not addr or not addr.isascii() for _, addr in pairs):
        return _encoded_words(value)
    return ",\r\n ".join(email.utils.formataddr(pair, charset="utf-8") for pair in pairs)


def _folded(name: str, value: str) -> str:
    """An ASCII header value folded at spaces so that lines keep to ``_FOLD`` characters
    where a space allows (a longer word stays whole, as compat32 left it)."""
    if len(name) + 2 + len(value) <= _FOLD:
        return value
    lines: list[str] = []
    line = ""
    width = len(name) + 2
    for word in value.split(" "):
        if line and width + len(line) + 1 + len(word) > _FOLD:
            lines.append(line)
            line, width = word, 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def _part(body: str, subtype: str) -> bytes:
    """One text part: 7bit when ASCII (and no line is too long for SMTP), else UTF-8 in
    base64, in 76-character lines (what ``MIMEText`` and ``EmailMessage`` wrote here)."""
    if body.isascii():
        crlf = body.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
        if all(len(x) <= _MAX_7BIT_LINE for x in crlf.split("\r\n")):
            return (
                f'Content-Type: text/{subtype}; charset="us-ascii"\r\n'
                "MIME-Version: 1.0\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + crlf
            ).encode("ascii")
    data = base64.encodebytes(body.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + data


def alternative_mail(headers: Sequence[tuple[str, str]], text: str, html: str) -> bytes:
    """A multipart/alternative mail (text, then HTML) with ``headers``, CRLF line ends.

    Written out directly: the MIME the email package's ``EmailMessage`` (and then its
    compat32 classes) wrote here, without their header registry, generator and per-line
    base64 loop, which took most of a notice's ~3 ms and then ~1 ms (issue 11: each hold
    sends two notices and each Bcc rewrite one). Non-ASCII values become RFC 2047 words
    (UTF-8, base64); long values are folded; a value with CR or LF is refused (no header
    injection), as the SMTP policy refused it."""
    out = []
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains CR or LF")
        if not name.isascii() or not name.replace("-", "").isalnum():
            raise ValueError(f"bad header name {name!r}")
        if value.isascii():
            shown = _folded(name, value)
        elif name.lower() in _ADDRESS_HEADERS:
            shown = _address_words(value)
        else:
            shown = _encoded_words(value)
        out.append(f"{name}: {shown}\r\n")
    parts = [_part(text, "plain"), _part(html, "html")]
    # not a secret (as the email package's own): no getrandom call, which releases the GIL
    # and then waits for it behind the event loop and the decisions
    boundary = f"==============={random.getrandbits(80):020x}=="
    while any(boundary.encode("ascii") in p for p in parts):  # 7bit parts only, in theory
        boundary = f"==============={random.getrandbits(80):020x}=="
    head = (
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
        "MIME-Version: 1.0\r\n" + "".join(out) + "\r\n"
    ).encode("ascii")
    sep = b"--" + boundary.encode("ascii")
    return head + b"".join(sep + b"\r\n" + p + b"\r\n" for p in parts) + sep + b"--\r\n"


def build_mail(
    *,
    kind: str,
    lang: str,
    to: str,
    from_addr: str,
    subject: str,
    template: str,
    context: Mapping[str, object],
    hold_id: str,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
) -> bytes:
    """A multipart/alternative mail rendered from ``<template>.txt.j2`` and ``.html.j2``."""

    def tr(key: str, **fields: object) -> str:
        return t(key, lang, **fields)

    ctx = dict(context)
    ctx.update(t=tr, lang=lang, kind=kind)
    text = render(f"{template}.txt.j2", **ctx)
    html = render(f"{template}.html.j2", **ctx)
    domain = from_addr.rpartition("@")[2] or "localhost"
    headers = [
        ("From", from_addr),
        ("To", to),
        ("Subject", _subject_line(subject)),
        ("Date", email.utils.formatdate(localtime=False)),
        ("Message-ID", email.utils.make_msgid("leakguard", domain=domain)),
    ]
    if reply_to:
        headers.append(("Reply-To", reply_to))
    if in_reply_to:
        headers += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    headers += [
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
        ("Content-Language", lang),
        (NOTICE_HEADER, f"{kind}; hold={hold_id}"),
    ]
    return alternative_mail(headers, text, html)


def notice_context(
    ex: Explanation,
    *,
    answers: Sequence[Answer],
    headline: str,
    review_url: str | None,
    show_reply_help: bool = True,
    extra_lines: Sequence[str] = (),
    report_url: str | None = None,
) -> dict[str, object]:
    return {
        "report_url": report_url,
        "ex": ex,
        "answers": list(answers),
        "headline": headline,
        "review_url": review_url,
        "show_reply_help": show_reply_help,
        "extra_lines": list(extra_lines),
    }
