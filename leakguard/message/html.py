"""HTML body parts rendered to plain text with lexbor (selectolax).

The rendering is what a reader sees, close enough for detectors: scripts, styles and the
head are dropped; block elements and ``<br>`` become line breaks; ``<pre>`` keeps its lines;
whitespace is collapsed as a browser would; entities are decoded by the parser.
The HTML source itself is kept by the caller (``TextPart.html``) for the quote extractor.
"""

from __future__ import annotations

import bisect
import html as html_lib
import re

from selectolax.lexbor import LexborHTMLParser

MAX_HTML_CHARS = 8_000_000  # larger HTML is cut (recorded by the caller as a defect)

# Private-use markers survive lexbor's text extraction: a hard break (<br>, lines of <pre>)
# and a soft one (block boundary: one line break however many blocks open or close there).
_BR = "\ue000"
_BLK = "\ue001"
_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "blockquote",
        "li",
        "dt",
        "dd",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "table",
        "ul",
        "ol",
        "dl",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "address",
        "form",
        "fieldset",
        "legend",
        "figure",
        "figcaption",
        "main",
        "center",
        "caption",
        "details",
        "summary",
    ]
)
_CELL_TAGS = frozenset(("td", "th"))
_PRE_SELECTOR = "pre, textarea, plaintext, xmp, listing"
_MAX_PRE = 200
_PRE_PRESENT_RE = re.compile(r"<(?:pre|textarea|plaintext|xmp|listing)\b", re.IGNORECASE)
_DROP_PRESENT_RE = re.compile(
    r"<(?:script|style|title|noscript|template|object|iframe)\b|<head\b[^>]*>\s*[^\s<]",
    re.IGNORECASE,
)
_DROP_TAGS = ["script", "style", "head", "title", "noscript", "template", "object", "iframe"]
_SOFT_RUN_RE = re.compile(r"\ue001[ \ue001]*")
_IDEOGRAPHIC = "\ue002"  # U+3000 is protected from str.split()
_MANY_BREAKS_RE = re.compile(r"\n{3,}")
_MARKERS_IN_SOURCE = str.maketrans({_BR: " ", _BLK: " ", _IDEOGRAPHIC: " "})

# Markup that makes HTML tree construction super-linear (measured with lexbor: 4,000 nested
# <div> take ~17 ms, 8,000 ~70 ms; 2,000 unclosed <a><b><i><u><s> ~22 ms; one tag with 4,000
# distinct attributes ~26 ms). Documents under _CHEAP_TAGS tags cannot get there; larger ones
# are checked, and hostile ones are rendered by the flat fallback instead.
_CHEAP_TAGS = 3000
_MAX_TAGS = 100_000
_MAX_CONTAINER_DEPTH = 300
_MAX_UNCLOSED_FORMATTING = 300
_MAX_ATTRIBUTES = 256
_LONG_TAG_RE = re.compile(r"<[a-zA-Z][^<>]{1000,}")
_CONTAINER_RE = re.compile(
    r"<(/?)(?:div|blockquote|ul|ol|dl|li|dd|dt|table|section|article|center|form|fieldset)\b",
    re.IGNORECASE,
)
_FORMATTING_RE = re.compile(
    r"<(/?)(a|b|i|u|s|em|strong|font|big|small|tt|strike|nobr|code)\b", re.IGNORECASE
)
# The fallback's tag patterns are applied by ``_sub_tags``/``_drop_elements``, which give
# the results of ``<[^>]*>``, ``<\s*/?\s*(?:br|...)\b[^>]*>`` and
# ``<(script|...)\b[^>]*>.*?</\1\s*>`` in linear time: as regular expressions they scan
# to the end of the text from every ``<`` that has no ``>`` or no closing tag after it
# (issue 12 mass fuzz: 10,000 unclosed ``<script>`` in 780 KB ran for minutes, holding the
# GIL; 100,000 bare ``<`` took 4.5 s).
_TAG_START_RE = re.compile(r"<")
_FALLBACK_BREAK_START_RE = re.compile(
    r"<\s*/?\s*(?:br|p|div|blockquote|li|tr|h[1-6]|table|pre|hr)\b", re.IGNORECASE
)
_FALLBACK_DROP_START_RE = re.compile(r"<(script|style|head|title)\b", re.IGNORECASE)
_FALLBACK_DROP_END_RE = re.compile(r"</(script|style|head|title)\s*>", re.IGNORECASE)


def html_hazard(html: str) -> str:
    """Why ``html`` should not be given to the tree builder ("" when it is safe)."""
    for m in _LONG_TAG_RE.finditer(html):
        if len(m.group(0).split(None, _MAX_ATTRIBUTES)) > _MAX_ATTRIBUTES:
            return "a tag with hundreds of attributes"
    tags = html.count("<")
    if tags <= _CHEAP_TAGS:
        return ""
    if tags > _MAX_TAGS:
        return f"more than {_MAX_TAGS} tags"
    depth = 0
    for m in _CONTAINER_RE.finditer(html):
        if m.group(1):
            depth = depth - 1 if depth else 0
        else:
            depth += 1
            if depth > _MAX_CONTAINER_DEPTH:
                return f"block nesting deeper than {_MAX_CONTAINER_DEPTH}"
    unclosed: dict[str, int] = {}
    for close, name in _FORMATTING_RE.findall(html):
        key = name.lower()
        unclosed[key] = unclosed.get(key, 0) + (-1 if close else 1)
    if sum(max(v, 0) for v in unclosed.values()) > _MAX_UNCLOSED_FORMATTING:
        return "hundreds of unclosed formatting tags"
    return ""


def _sub_tags(start: re.Pattern[str], text: str, repl: str) -> str:
    r"""``re.sub(start.pattern + "[^>]*>", repl, text)`` in linear time: each tag runs from a
    match of ``start`` (which holds no ``>``) to the next ``>``; once no ``>`` follows,
    nothing further can match."""
    out: list[str] = []
    pos = 0
    gt = -1
    for m in start.finditer(text):
        if m.start() < pos:
            continue  # inside a tag already replaced
        if gt < m.end():
            gt = text.find(">", m.end())
            if gt < 0:
                break
        out.append(text[pos : m.start()])
        out.append(repl)
        pos = gt + 1
    out.append(text[pos:])
    return "".join(out)


def _drop_elements(text: str, repl: str) -> str:
    r"""``re.sub(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>", repl, text, flags=re.I |
    re.S)`` in linear time: closing tags are found once, and each opening tag looks up the
    first closing tag of its name after it."""
    ends: dict[str, tuple[list[int], list[int]]] = {}
    for m in _FALLBACK_DROP_END_RE.finditer(text):
        starts, stops = ends.setdefault(m.group(1).lower(), ([], []))
        starts.append(m.start())
        stops.append(m.end())
    if not ends:
        return text
    out: list[str] = []
    pos = 0
    gt = -1
    for m in _FALLBACK_DROP_START_RE.finditer(text):
        if m.start() < pos:
            continue  # inside an element already dropped
        if gt < m.end():
            gt = text.find(">", m.end())
            if gt < 0:
                break
        found = ends.get(m.group(1).lower())
        if found is None:
            continue
        k = bisect.bisect_left(found[0], gt + 1)
        if k == len(found[0]):
            continue  # never closed: the opening tag stays (as the expression leaves it)
        out.append(text[pos : m.start()])
        out.append(repl)
        pos = found[1][k]
    out.append(text[pos:])
    return "".join(out)


def _fallback_text(html: str) -> str:
    """Flat rendering for hostile markup: tags removed, breaks kept, entities decoded."""
    text = _drop_elements(html, " ")
    text = _sub_tags(_FALLBACK_BREAK_START_RE, text, _BLK)
    text = _sub_tags(_TAG_START_RE, text, " ")
    return _layout(html_lib.unescape(text))


def render_html(html: str) -> tuple[str, str]:
    """(visible text, defect) of an HTML document or fragment. Never raises."""
    if not html.strip():
        return "", ""
    defect = ""
    if len(html) > MAX_HTML_CHARS:
        defect = f"html longer than {MAX_HTML_CHARS} characters cut"
    source = html[:MAX_HTML_CHARS]
    if _BR in source or _BLK in source or _IDEOGRAPHIC in source:
        source = source.translate(_MARKERS_IN_SOURCE)
    hazard = html_hazard(source)
    if hazard:
        return _fallback_text(source), f"html with {hazard} rendered without structure"
    return _render_tree(source), defect


def html_to_text(html: str) -> str:
    """Visible text of an HTML document or fragment. Never raises on hostile markup."""
    return render_html(html)[0]


def _render_tree(source: str) -> str:
    try:
        tree = LexborHTMLParser(source)
    except Exception:  # pragma: no cover - lexbor accepts any text; defensive for the relay
        return _fallback_text(source)
    if _DROP_PRESENT_RE.search(source):
        tree.strip_tags(_DROP_TAGS)
    root = tree.body if tree.body is not None else tree.root
    if root is None:
        return ""
    # Preformatted text keeps its lines; replace each (outermost first) by marked text.
    for _ in range(_MAX_PRE if _PRE_PRESENT_RE.search(source) else 0):
        pre = root.css_first(_PRE_SELECTOR)
        if pre is None:
            break
        pre_text = pre.text(deep=True).replace("\r\n", "\n").replace("\r", "\n")
        pre.replace_with(_BLK + pre_text.replace("\n", _BR) + _BLK)
    blocks = []
    breaks = []
    cells = []
    for node in root.traverse():
        tag = node.tag
        if tag in _BLOCK_TAGS:
            blocks.append(node)
        elif tag == "br":
            breaks.append(node)
        elif tag in _CELL_TAGS:
            cells.append(node)
    for node in breaks:
        node.replace_with(_BR)
    for node in cells:
        node.insert_after(" ")
    for node in blocks:
        if node.prev is not None:
            node.insert_before(_BLK)
        node.insert_after(_BLK)
    return _layout(root.text(deep=True))


def _layout(marked: str) -> str:
    """Markers to line breaks, whitespace collapsed as a browser does (ideographic space kept)."""
    text = " ".join(marked.replace("\u3000", _IDEOGRAPHIC).split())
    text = _SOFT_RUN_RE.sub(_BLK, text.replace(" " + _BLK, _BLK))
    text = text.replace(" " + _BR, _BR).replace(_BR + " ", _BR).replace(_BR, "\n")
    text = text.replace("\n" + _BLK, "\n").removeprefix(_BLK).replace(_BLK, "\n")
    if "\n\n\n" in text:
        text = _MANY_BREAKS_RE.sub("\n\n", text)
    return text.replace(_IDEOGRAPHIC, "\u3000").strip()
