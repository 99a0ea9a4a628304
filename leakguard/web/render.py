"""Safe views of a held message for the review page: text, and HTML only sanitised.

The held mail is hostile. The text view is plain text (escaped by Jinja2). The HTML view is
passed through ``nh3`` (ammonia) with a small allow-list: no scripts, no styles, no event
handlers, no ``src`` or ``href`` at all (so no remote content and no clickable links), and
the page's Content-Security-Policy blocks anything that slipped through.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser

import nh3

from leakguard.holds.explain import clean_line

MAX_TEXT = 200_000  # characters shown
MAX_PARTS = 200
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


def _decode(part: EmailMessage) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    for cs in (part.get_content_charset(), "utf-8", "cp932"):
        if not cs:
            continue
        try:
            return payload.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", "replace")


def _html_to_text(html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    try:
        tree = HTMLParser(html[: MAX_TEXT * 5])
        for node in tree.css("script, style, head"):
            node.decompose()
        body = tree.body or tree.root
        return str(body.text(separator="\n")) if body is not None else ""
    except Exception:
        return ""


def message_view(raw: bytes) -> MessageView:
    """Text and sanitised HTML of the first text parts; never raises on hostile input."""
    try:
        msg = BytesParser(policy=email.policy.default).parsebytes(raw[:MAX_PARSE])
    except Exception:
        return MessageView(raw[:MAX_TEXT].decode("utf-8", "replace"), "", (), len(raw) > MAX_TEXT)
    headers: list[tuple[str, str]] = []
    try:
        for k, v in list(msg.items())[:100]:
            if k.lower() in ("from", "to", "cc", "subject", "date", "reply-to", "message-id"):
                headers.append((clean_line(k, 40), clean_line(str(v), 2000)))
    except Exception:
        headers = []
    text: str | None = None
    html: str | None = None
    for i, part in enumerate(msg.walk()):
        if i > MAX_PARTS:
            break
        if part.is_multipart():
            continue
        try:
            disposition = part.get_content_disposition()
            ctype = part.get_content_type()
        except Exception:
            disposition, ctype = "attachment", ""
        if disposition == "attachment":
            continue
        if ctype == "text/plain" and text is None:
            text = _decode(part)
        elif ctype == "text/html" and html is None:
            html = _decode(part)
        if text is not None and html is not None:
            break
    if text is None:
        text = _html_to_text(html) if html else ""
    truncated = len(text) > MAX_TEXT
    return MessageView(
        text=text[:MAX_TEXT],
        html=sanitize_html(html) if html else "",
        headers=tuple(headers),
        truncated=truncated,
    )
