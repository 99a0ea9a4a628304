"""Header blocks: splitting, unfolding, raw 8-bit decoding and RFC 2047 encoded words.

The stdlib's header registry (``email.policy.default``) is correct but slow, and its
``decode_header`` raises on broken base64 and knows nothing of Japanese charset fallbacks, so
the few rules that matter are applied here directly:

* encoded words are recognised even without surrounding whitespace (``件名=?ISO-2022-JP?B?..?=``),
* whitespace between adjacent encoded words is dropped,
* adjacent words in the same charset are joined *as bytes* before decoding, so a multibyte
  character (or an ISO-2022-JP escape sequence) split across two words decodes correctly,
* charsets go through :mod:`leakguard.message.charsets` (cp932 for Shift_JIS, ISO-2022-JP
  with CP932 extensions, detection for bogus labels), base64 padding is repaired.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from leakguard.message.charsets import decode_bytes, decode_header_bytes

ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_B64_JUNK_RE = re.compile(rb"[^A-Za-z0-9+/]")
_HEADER_NAME_RE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
# Mail with LF or CRLF line ends (everything that crosses SMTP): a bare CR is not a line
# break, exactly as for the MTAs downstream, so "\r\r" cannot end the header section early.
_LINE_RE = re.compile(rb"([^\n]*?)\r?(\n)|([^\n]+)$")
# CR-only files (old Mac mail, some archives): CR is the line break.
_LINE_CR_RE = re.compile(rb"([^\r]*)(\r)?")
_CR_ONLY_PROBE = 64 * 1024
_BLANK_WINDOW = 1024 * 1024  # bytes scanned per bytes.find (while the GIL is held)
MAX_HEADERS = 2000  # per entity; more are ignored (recorded as a defect)


def _b64(data: str) -> bytes:
    raw = _B64_JUNK_RE.sub(b"", data.encode("ascii", "ignore"))
    if len(raw) % 4 == 1:
        raw = raw[:-1]
    raw += b"=" * (-len(raw) % 4)
    try:
        return binascii.a2b_base64(raw)
    except (binascii.Error, ValueError):  # pragma: no cover - input is cleaned above
        return b""


def _q(data: str) -> bytes:
    return binascii.a2b_qp(data.encode("utf-8", "replace"), header=True)


def decode_rfc2047(value: str, defects: list[str] | None = None) -> str:
    """Decode every RFC 2047 encoded word in ``value``; other text is kept as it is."""
    if "=?" not in value:
        return value
    # Pieces: (charset, [bytes...]) for runs of encoded words, (None, [text]) for plain text.
    pieces: list[tuple[str | None, list[bytes] | list[str]]] = []
    pos = 0
    for m in ENCODED_WORD_RE.finditer(value):
        between = value[pos : m.start()]
        last_cs = pieces[-1][0] if pieces else None
        if between and not (between.isspace() and last_cs is not None):
            pieces.append((None, [between]))
            last_cs = None
        charset = m.group(1)
        data = _b64(m.group(3)) if m.group(2) in "bB" else _q(m.group(3))
        if last_cs is not None and last_cs.lower() == charset.lower():
            pieces[-1][1].append(data)  # type: ignore[arg-type]
        else:
            pieces.append((charset, [data]))
        pos = m.end()
    if pos == 0:
        return value
    if pos < len(value):
        pieces.append((None, [value[pos:]]))
    out: list[str] = []
    for charset, chunks in pieces:
        if charset is None:
            out.append("".join(chunks))  # type: ignore[arg-type]
            continue
        decoded = decode_bytes(b"".join(chunks), charset)  # type: ignore[arg-type]
        if decoded.defect and defects is not None:
            defects.append(f"encoded-word: {decoded.defect}")
        out.append(decoded.text)
    return "".join(out)


def collapse_ws(text: str) -> str:
    return " ".join(text.split())


@dataclass(slots=True)
class HeaderBlock:
    """The headers of one entity: names as written, values unfolded and 8-bit decoded.

    Values are *not* RFC 2047 decoded here (address lists need the encoded form to split
    safely); ``decoded()`` gives the display form.
    """

    fields: list[tuple[str, str]]
    body_start: int  # offset of the body in the buffer the block was read from
    defects: list[str]
    truncated: bool = False  # more than MAX_HEADERS fields: the rest was not read
    # A bare CR inside a CRLF/LF header section: MTAs keep it inside the line, but some
    # mail clients break the line there, so they may show header fields nobody checked.
    ambiguous: bool = False

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.fields if k.lower() == lname]

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.fields:
            if k.lower() == lname:
                return v
        return None

    def decoded(self) -> list[tuple[str, str]]:
        return [(k, decode_rfc2047(v, self.defects).strip()) for k, v in self.fields]


def cr_only(buf: bytes, start: int, end: int) -> bool:
    """True for an entity whose lines end in a bare CR (no LF in its first 64 KiB)."""
    probe = min(end, start + _CR_ONLY_PROBE)
    return buf.find(b"\n", start, probe) < 0 and buf.find(b"\r", start, probe) >= 0


def find_blank_line(buf: bytes, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """The first match of ``\\r?\\n\\r?\\n`` in ``buf[start:end]`` as (start, end), or None.

    With ``bytes.find`` in 1 MiB windows rather than a regular expression: both hold the
    GIL while they run, and on a 7 MB header section (250,000 folded lines) the regex held
    it for tens of milliseconds in a worker thread, stalling the event loop. The windows
    also stop the search for one form (LF LF) at the first match of the other (LF CRLF)."""
    stop = len(buf) if end is None else end
    pos = start
    while pos < stop:
        wend = min(stop, pos + _BLANK_WINDOW)
        # every match that starts before wend: LF CR LF ends by wend + 2, LF LF by wend + 1,
        # and a LF LF counts only when it starts before the LF CR LF found
        lf_crlf = buf.find(b"\n\r\n", pos, min(stop, wend + 2))
        lf_lf = buf.find(b"\n\n", pos, min(stop, wend + 1 if lf_crlf < 0 else lf_crlf + 1))
        if lf_lf >= 0:
            first, after = lf_lf, lf_lf + 2
        elif lf_crlf >= 0:
            first, after = lf_crlf, lf_crlf + 3
        else:
            pos = wend
            continue
        if first > start and buf[first - 1] == 0x0D:  # the first line break was CRLF
            first -= 1
        return first, after
    return None


def _header_end(buf: bytes, start: int, end: int, cr: bool) -> tuple[int, int]:
    """(end of the header block, start of the body) within ``buf[start:end]``."""
    if buf.startswith(b"\r\n", start):
        return start, start + 2
    if buf.startswith(b"\n", start) or (cr and buf.startswith(b"\r", start)):
        return start, start + 1
    if cr:
        at = buf.find(b"\r\r", start, end)
        blank = (at, at + 2) if at >= 0 else None
    else:
        blank = find_blank_line(buf, start, end)
    if blank is None:
        return end, end
    # The first line break ends the last header line; the rest is the blank line.
    first_break = 2 if buf.startswith(b"\r\n", blank[0]) else 1
    return blank[0] + first_break, blank[1]


def parse_header_block(buf: bytes, start: int = 0, end: int | None = None) -> HeaderBlock:
    """Read the header block of the entity ``buf[start:end]``. Never raises."""
    stop = len(buf) if end is None else end
    cr = cr_only(buf, start, stop)
    hend, body_start = _header_end(buf, start, stop, cr)
    defects: list[str] = []
    truncated = False
    fields: list[tuple[bytes, list[bytes]]] = []
    for lm in (_LINE_CR_RE if cr else _LINE_RE).finditer(buf, start, hend):
        line = lm.group(1) if lm.group(1) is not None else (lm.group(3) or b"")
        if not cr and lm.group(3) is not None:
            line = line.rstrip(b"\r")
        if not line:
            if not lm.group(2):
                break
            continue
        if line[:1] in (b" ", b"\t"):
            if fields:
                fields[-1][1].append(line)
            else:
                defects.append("header block starts with a continuation line")
            continue
        m = _HEADER_NAME_RE.match(line)
        if m is None:
            if lm.start() == start and line.startswith(b"From "):
                continue  # mbox separator
            if fields and fields[-1][1][-1].rstrip().endswith(b";") and b"=" in line:
                # An unindented parameter line ("Content-Type: x;\nboundary=...").
                fields[-1][1].append(b" " + line)
                defects.append("unindented header continuation line")
                continue
            # Not a header: the body starts here (as in the stdlib parser).
            defects.append("malformed header line ends the header block")
            body_start = lm.start()
            break
        if len(fields) >= MAX_HEADERS:
            defects.append(f"more than {MAX_HEADERS} header fields; rest ignored")
            truncated = True
            break
        fields.append((m.group(0)[:-1].rstrip(b" \t"), [line[m.end() :]]))
    out: list[tuple[str, str]] = []
    for raw_name, parts in fields:
        name = raw_name.decode("ascii", "replace")
        decoded = decode_header_bytes(b"".join(parts))
        if decoded.charset != "us-ascii":
            defects.append(f"8-bit header {name} decoded as {decoded.charset}")
        out.append((name, decoded.text.strip()))
    ambiguous = False
    if not cr:
        bare = re.search(rb"\r(?!\n)", buf[start:hend])
        if bare is not None:
            ambiguous = True
            defects.append("bare CR inside the header section (line ends are ambiguous)")
    return HeaderBlock(out, body_start, defects, truncated, ambiguous)
