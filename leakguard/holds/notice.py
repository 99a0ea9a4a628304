"""Build hold notices and confirmations as multipart text + HTML mail (ja/en).

Templates live in ``leakguard/holds/templates`` (Jinja2; autoescape on for HTML). Every
value from the held mail reaches the templates through ``Explanation`` (cleaned, links
defanged) and is escaped by Jinja2 in the HTML part. Notices are marked
``Auto-Submitted: auto-generated`` (RFC 3834) and ask Exchange not to auto-answer them, so
out-of-office replies do not loop; the service never sends a notice about a notice.
"""

from __future__ import annotations

import email.policy
import email.utils
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.charset import BASE64, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any, cast

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


_UTF8 = Charset("utf-8")
_UTF8.header_encoding = BASE64
_CRLF = email.policy.compat32.clone(linesep="\r\n")


def _part(body: str, subtype: str) -> MIMEText:
    # 7bit when ASCII, else UTF-8 in base64 (what EmailMessage.set_content did here)
    return MIMEText(body, subtype, "us-ascii" if body.isascii() else "utf-8")


def alternative_mail(headers: Sequence[tuple[str, str]], text: str, html: str) -> bytes:
    """A multipart/alternative mail (text, then HTML) with ``headers``, CRLF line ends.

    Built with the email package's compat32 classes: the same MIME as ``EmailMessage``
    with the SMTP policy, without its header registry, which parsed every header value
    and took most of the ~3 ms a notice cost (issue 11: each hold and each Bcc rewrite
    sends one or more). Non-ASCII values become RFC 2047 words; a value with CR or LF is
    refused (no header injection), as the SMTP policy refused it."""
    msg = MIMEMultipart("alternative", policy=email.policy.compat32)
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains CR or LF")
        # typeshed has str only; compat32 takes a Header (RFC 2047 words, folded)
        cast(Any, msg)[name] = value if value.isascii() else Header(value, _UTF8, header_name=name)
    msg.attach(_part(text, "plain"))
    msg.attach(_part(html, "html"))
    return msg.as_bytes(policy=_CRLF)


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
