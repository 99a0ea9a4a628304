"""Safe views of a held message for the review page: text, and HTML only sanitised.

The held mail is hostile. The text view is plain text (escaped by Jinja2). The HTML view is
passed through ``nh3`` (ammonia) with a small allow-list: no scripts, no styles, no event
handlers, no ``src`` or ``href`` at all (so no remote content and no clickable links), and
the page's Content-Security-Policy blocks anything that slipped through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nh3
from markupsafe import Markup, escape

from leakguard.holds.explain import clean_line
from leakguard.masking import mask_identifiers, redact_text
from leakguard.message import parse_message
from leakguard.message.html import html_hazard

MAX_TEXT = 200_000  # characters shown
MAX_PARSE = 30 * 1024 * 1024
MAX_HTML = 2 * 1024 * 1024  # larger HTML is shown as text only

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
    # the full view ran past its budget (issue 12): this is the raw mail's first bytes as
    # plain text, and the page says the mail could not be fully displayed
    incomplete: bool = False


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
    shown_html = ""
    hostile_html = False
    if html is not None and html.html:
        # Markup the sanitiser would take super-linear time on (deep nesting, tag floods,
        # megabytes) is not shown as HTML: the page falls back to plain, truncated text.
        hostile_html = len(html.html) > MAX_HTML or bool(html_hazard(html.html))
        # Markup can split an identifier ("<span>123456</span>789018") where no text mask
        # finds it: a mail whose text holds identifiers is shown as masked text only.
        if not hostile_html and mask_identifiers(html.text[:MAX_TEXT]) == html.text[:MAX_TEXT]:
            shown_html = sanitize_html(_encodable(html.html))
    # Identifiers are shown masked on pages too: long numbers keep their last four digits.
    return MessageView(
        text=_encodable(mask_identifiers(text[:MAX_TEXT])),
        html=_encodable(redact_text(shown_html)),
        headers=tuple((_encodable(k), _encodable(v)) for k, v in headers),
        truncated=len(text) > MAX_TEXT or hostile_html,
    )


FALLBACK_BYTES = 32 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def fallback_view(raw: bytes) -> MessageView:
    """What the review page shows when ``message_view`` ran past its budget: the first
    32 KiB of the mail's source as plain text (decoded leniently, control characters
    dropped, identifiers masked), no HTML, no parsing. Linear and cheap on any input."""
    text = raw[:FALLBACK_BYTES].decode("utf-8", "replace")
    text = _CONTROL.sub("", text.replace("\r\n", "\n"))
    return MessageView(
        text=_encodable(mask_identifiers(text)),
        html="",
        headers=(),
        truncated=True,
        incomplete=True,
    )


def _encodable(text: str) -> str:
    """Text any page, log or terminal can encode: lone surrogates (broken base64, utf-7)
    become U+FFFD instead of raising UnicodeEncodeError at render time."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


# --------------------------------------------------------------------------- addresses

_ADDR = re.compile(r"[^\s<>()\[\],;:\"'@]+@[^\s<>()\[\],;:\"'@]+")
_BREAK_BEFORE = re.compile(r"(?=[.@])")


def _address_markup(addr: str) -> str:
    """``taro.yamada@client.example.co.jp`` as unbreakable pieces with line-break
    opportunities only before ``@`` and dots: a phone never splits a domain label."""
    pieces = [p for p in _BREAK_BEFORE.split(addr) if p]
    return "<wbr>".join(f'<span class="nb">{escape(p)}</span>' for p in pieces)


_NOT_IN_ADDR = frozenset("<>()[],;:\"'@")


def _in_addr(ch: str) -> bool:
    return not ch.isspace() and ch not in _NOT_IN_ADDR


def address_spans(text: str) -> list[tuple[int, int]]:
    """Where ``_ADDR.finditer(text)`` matches, in linear time: each ``@`` grows to the
    characters around it. The expression tried every start and ran to the end of each
    run without ``@`` (quadratic: 1 s for a 20,000-character display name, mass fuzz)."""
    spans: list[tuple[int, int]] = []
    pos, n = 0, len(text)
    while True:
        at = text.find("@", pos)
        if at < 0:
            return spans
        start = at
        while start > pos and _in_addr(text[start - 1]):
            start -= 1
        end = at + 1
        while end < n and _in_addr(text[end]):
            end += 1
        if start < at and end > at + 1:
            spans.append((start, end))
            pos = end
        else:
            pos = at + 1


def wrap_addresses(text: str) -> Markup:
    """Escape ``text`` and mark up every mail address in it with ``_address_markup``."""
    out: list[str] = []
    pos = 0
    for start, end in address_spans(text):
        out.append(str(escape(text[pos:start])))
        out.append(_address_markup(text[start:end]))
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))  # noqa: S704 (every piece escaped above)
