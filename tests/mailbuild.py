"""Build mail the way real clients and in-house tools write it (tests only).

Encoded words are made by the same algorithms as the software that writes them: PHP's
``mb_encode_mimeheader`` (B encoding, one word per chunk, each ISO-2022-JP chunk closed with
``ESC ( B``), Perl's ``Encode`` MIME-Header (UTF-8 B words of at most 75 octets, split at
character boundaries), Python's ``email.header.Header`` and hand-made Q words.
"""

from __future__ import annotations

import base64
import quopri
from email.header import Header

CHARSET_CODEC = {"iso-2022-jp": "iso2022_jp", "shift_jis": "cp932", "utf-8": "utf-8"}


# What Windows clients do when writing ISO-2022-JP: CP932-only full-width signs become their
# JIS X 0208 counterparts (FULLWIDTH HYPHEN-MINUS -> MINUS SIGN, FULLWIDTH TILDE -> WAVE DASH).
_JIS_MAP = str.maketrans({"\uff0d": "\u2212", "\uff5e": "\u301c"})


def _encode(text: str, charset: str) -> bytes:
    if charset.lower() == "iso-2022-jp":
        text = text.translate(_JIS_MAP)
    return text.encode(CHARSET_CODEC[charset.lower()])


def b_word(text: str, charset: str = "utf-8") -> str:
    """One B encoded word holding ``text``."""
    return f"=?{charset.upper()}?B?{base64.b64encode(_encode(text, charset)).decode()}?="


def q_word(text: str, charset: str = "utf-8") -> str:
    """One Q encoded word holding ``text`` (RFC 2047 §4.2: '_' for space)."""
    raw = quopri.encodestring(_encode(text, charset), header=True).decode("ascii")
    raw = raw.replace("=\n", "").replace("?", "=3F").replace(",", "=2C").replace("@", "=40")
    return f"=?{charset.upper()}?Q?{raw}?="


def php_mb_encode_mimeheader(text: str, charset: str = "ISO-2022-JP", chunk: int = 12) -> str:
    """PHP ``mb_encode_mimeheader``: the whole string, address and commas included, as B
    words of ``chunk`` characters, folded with CRLF + space."""
    pieces = [text[i : i + chunk] for i in range(0, len(text), chunk)]
    return "\r\n ".join(b_word(p, charset) for p in pieces)


def perl_encode_mime_header(text: str) -> str:
    """Perl ``Encode::encode('MIME-Header', ...)``: UTF-8 B words of at most 75 octets."""
    words: list[str] = []
    cur = ""
    for ch in text:
        if len(b_word(cur + ch)) > 75:
            words.append(b_word(cur))
            cur = ""
        cur += ch
    if cur:
        words.append(b_word(cur))
    return "\r\n ".join(words)


def python_header(text: str, charset: str = "iso-2022-jp") -> str:
    """Python ``email.header.Header(text, charset).encode()``."""
    return Header(text, charset).encode(linesep="\r\n")


def build(
    headers: list[tuple[str, str]],
    body: str,
    *,
    charset: str = "utf-8",
    cte: str = "base64",
    content_type: str = "text/plain",
) -> bytes:
    """A single-part mail: ``headers`` written as given (already encoded), ``body`` encoded in
    ``charset`` and ``cte`` (base64, quoted-printable or 7bit)."""
    data = _encode(body.replace("\n", "\r\n"), charset)
    if cte == "base64":
        payload = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif cte == "quoted-printable":
        payload = quopri.encodestring(data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    else:
        payload = data
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f'MIME-Version: 1.0\r\nContent-Type: {content_type}; charset="{charset}"\r\n'
    head += f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    return head.encode("ascii") + payload


def attach_message(outer_headers: list[tuple[str, str]], note: str, inner: bytes) -> bytes:
    """A mail with a short UTF-8 note and ``inner`` attached as message/rfc822."""
    b = "=_lg_boundary_1"
    head = "".join(f"{k}: {v}\r\n" for k, v in outer_headers)
    head += f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
    note_b = base64.encodebytes(note.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        head.encode("ascii")
        + f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n".encode()
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + note_b
        + f"--{b}\r\nContent-Type: message/rfc822\r\n\r\n".encode()
        + inner
        + f"\r\n--{b}--\r\n".encode()
    )
