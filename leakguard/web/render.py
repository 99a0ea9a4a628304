"""Safe views of a held message for the review page: text, and HTML only sanitised.

The held mail is hostile. The text view is plain text (escaped by Jinja2). The HTML view is
passed through ``nh3`` (ammonia) with a small allow-list: no scripts, no styles, no event
handlers, no ``src`` or ``href`` at all (so no remote content and no clickable links), and
the page's Content-Security-Policy blocks anything that slipped through.
"""

from __future__ import annotations

from dataclasses import dataclass

import nh3

from leakguard.holds.explain import clean_line
from leakguard.masking import redact_text
from leakguard.message import parse_message

MAX_TEXT = 200_000  # characters shown
MAX_PARSE = 30 * 1024 * 1024

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt",
    "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ATTRS: dict[str, set[str]] = {
    "*": {"title", "lang", "dir"},
    "img": {"alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
}


@dataclass(frozen=True, slots=True)
class MessageView:
    text: str
    html: str  # sanitised; "" when the mail has no HTML part
    headers: tuple[tuple[str, str], ...]
    truncated: bool


def sanitize_html(html: str) -> str:
    cleaned = nh3.clean(
        html[: MAX_TEXT * 5],
        tags=_TAGS,
        clean_content_tags={
            "script",
            "style",
            "title",
            "head",
            "noscript",
            "template",
            "iframe",
            "object",
            "embed",
            "svg",
            "math",
        },
        attributes=_ATTRS,
        url_schemes=set(),
        link_rel=None,
        strip_comments=True,
    )
    return str(cleaned)


_SHOWN_HEADERS = ("from", "to", "cc", "subject", "date", "reply-to", "message-id")


def message_view(raw: bytes) -> MessageView:
    """Text and sanitised HTML of the first text parts; never raises on hostile input.

    Uses the relay's own parser (``leakguard.message``), so Japanese charsets, RFC 2047 and
    HTML rendering are handled exactly as when the mail was checked.
    """
    msg = parse_message(raw[:MAX_PARSE])
    headers = tuple(
        (clean_line(k, 40), clean_line(v, 2000))
        for k, v in msg.headers[:100]
        if k.lower() in _SHOWN_HEADERS
    )
    plain = next((p for p in msg.text_parts if p.content_type == "text/plain"), None)
    html = next((p for p in msg.text_parts if p.content_type == "text/html"), None)
    text = plain.text if plain is not None else (html.text if html is not None else "")
    # Identifiers are shown masked on pages too: long numbers keep their last four digits.
    return MessageView(
        text=redact_text(text[:MAX_TEXT]),
        html=redact_text(sanitize_html(html.html)) if html is not None and html.html else "",
        headers=headers,
        truncated=len(text) > MAX_TEXT,
    )
