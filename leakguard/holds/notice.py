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
from email.message import EmailMessage

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
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = from_addr
    msg["To"] = to
    msg["Subject"] = _subject_line(subject)
    msg["Date"] = email.utils.formatdate(localtime=False)
    domain = from_addr.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = email.utils.make_msgid("leakguard", domain=domain)
    if reply_to:
        msg["Reply-To"] = reply_to
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["Content-Language"] = lang
    msg[NOTICE_HEADER] = f"{kind}; hold={hold_id}"
    msg.set_content(
        text, subtype="plain", charset="utf-8", cte="base64" if not text.isascii() else "7bit"
    )
    msg.add_alternative(
        html, subtype="html", charset="utf-8", cte="base64" if not html.isascii() else "7bit"
    )
    return msg.as_bytes()


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
