"""Parse once: raw bytes -> immutable ``Message`` view (see ``leakguard.types.Message``).

The MIME structure is scanned directly on the raw bytes by offsets (no copies, no line
splitting): a 5 MB mail with a large attachment costs a few boundary searches, and the
attachment's body is never decoded. Headers go through :mod:`leakguard.message.headers`,
charsets through :mod:`leakguard.message.charsets`, HTML through lexbor
(:mod:`leakguard.message.html`), and Content-Type / Content-Disposition parameters
(RFC 2231 continuations included) through the stdlib's ``email.message.Message``.

Hostile input is bounded: MIME nesting (multipart and attached messages together) stops at
``MAX_DEPTH``, the whole mail at ``MAX_PARTS`` parts, decoded text at ``MAX_TEXT_BYTES`` per
part and ``MAX_TOTAL_TEXT_BYTES`` per mail; each limit reached is recorded in
``Message.defects``. ``parse_message`` never raises.
"""

from __future__ import annotations

import binascii
import email.message
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from leakguard.message import quotes
from leakguard.message.addresses import addresses_in, make_address
from leakguard.message.charsets import decode_bytes
from leakguard.message.headers import HeaderBlock, decode_rfc2047, parse_header_block
from leakguard.message.html import render_html
from leakguard.types import Address, Attachment, Message, TextPart

MAX_DEPTH = 32
MAX_PARTS = 1000
MAX_TEXT_BYTES = 4 * 1024 * 1024  # encoded size of one text part that is still decoded
MAX_TOTAL_TEXT_BYTES = 16 * 1024 * 1024

_TEXT_TYPES = frozenset(("text/plain", "text/html"))
_MESSAGE_TYPES = frozenset(("message/rfc822", "message/global"))
_HEADER_ONLY_TYPES = frozenset(
    ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers")
)
_WS_RUN_RE = re.compile(r"[ \t\r\n]+")
# every byte outside the base64 alphabet, '=' included: deleted with bytes.translate, which
# runs at memory speed whatever the mix (a regex substitution took 320 ms, holding the GIL, on
# 2 MB of random bytes: one match per junk byte)
_B64_JUNK = bytes(
    sorted(
        set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    )
)
_META_CHARSET_RE = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I
)


@dataclass(slots=True)
class _Budget:
    """Limits shared by the whole mail, attached messages included."""

    parts: int = 0
    text_bytes: int = 0
    parts_exceeded: bool = False
    uninspected: int = 0  # parts or subtrees left unread because a limit was reached


@dataclass(slots=True)
class _Collector:
    """What one (possibly attached) message accumulates while its MIME tree is walked."""

    text_parts: list[TextPart] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    attached: list[Message] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    # per text part: (multipart/alternative number, branch) of its nearest such ancestor
    alternative_of: list[tuple[int, int] | None] = field(default_factory=list)


@dataclass(slots=True)
class _Entity:
    """Content-Type and Content-Disposition of one entity, parsed once."""

    ctype: str
    params: email.message.Message
    disposition: str
    cte: str

    @property
    def filename(self) -> str:
        try:
            name = self.params.get_filename()
        except Exception:  # malformed RFC 2231 parameters
            name = None
        if not name:
            return ""
        return " ".join(decode_rfc2047(str(name)).split())

    def param(self, name: str) -> str | None:
        try:
            value = self.params.get_param(name)
        except Exception:
            return None
        if value is None:
            return None
        if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
            return email.utils.collapse_rfc2231_value(value)
        return str(value)


def _entity(hb: HeaderBlock, default_type: str, defects: list[str]) -> _Entity:
    params = email.message.Message()
    ct = hb.get("Content-Type")
    cd = hb.get("Content-Disposition")
    if ct is not None:
        params["Content-Type"] = ct
    if cd is not None:
        params["Content-Disposition"] = cd
    ctype = default_type
    if ct is not None:
        raw_type = ct.split(";", 1)[0].strip().lower()
        if raw_type.count("/") == 1 and all(raw_type.split("/")):
            ctype = raw_type
        else:
            defects.append(f"invalid Content-Type {raw_type[:40]!r}, read as {default_type}")
    disposition = (cd or "").split(";", 1)[0].strip().lower()
    cte = (hb.get("Content-Transfer-Encoding") or "").strip().lower()
    return _Entity(ctype, params, disposition, cte)


# --------------------------------------------------------------------------- multipart


def _split_multipart(
    buf: bytes, start: int, end: int, boundary: bytes, defects: list[str], where: str
) -> list[tuple[int, int]]:
    """Offsets of the body parts between ``--boundary`` delimiter lines."""
    delim = b"--" + boundary
    parts: list[tuple[int, int]] = []
    part_start: int | None = None
    pos = start
    closed = False
    while True:
        i = buf.find(delim, pos, end)
        if i < 0:
            break
        if i != start and buf[i - 1] not in (10, 13):
            pos = i + 1
            continue
        j = i + len(delim)
        is_close = buf.startswith(b"--", j, end)
        k = j + 2 if is_close else j
        while k < end and buf[k] in (32, 9):
            k += 1
        if k < end and buf[k] not in (10, 13) and not is_close:
            pos = i + 1  # a longer string that starts with the boundary
            continue
        if part_start is not None:
            pe = i
            if pe > part_start and buf[pe - 1] == 10:
                pe -= 1
            if pe > part_start and buf[pe - 1] == 13:
                pe -= 1
            parts.append((part_start, pe))
            if len(parts) > MAX_PARTS:
                defects.append(f"{where}: more than {MAX_PARTS} parts; rest ignored")
                return parts[:MAX_PARTS]
        if is_close:
            closed = True
            break
        if k >= end:
            line_end = end
        elif buf[k] == 13 and buf.startswith(b"\r\n", k):
            line_end = k + 2
        else:
            line_end = k + 1
        part_start = line_end
        pos = line_end
    if not closed and part_start is not None:
        parts.append((part_start, end))
        defects.append(f"{where}: missing final boundary")
    return parts


# --------------------------------------------------------------------------- bodies


def _b64decode(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        clean = data.translate(None, _B64_JUNK)
        if len(clean) % 4 == 1:
            clean = clean[:-1]
        clean += b"=" * (-len(clean) % 4)
        try:
            return binascii.a2b_base64(clean)
        except (binascii.Error, ValueError):  # pragma: no cover - cleaned input decodes
            return b""


def decode_transfer_encoding(data: bytes, cte: str) -> bytes:
    """Decode a body's Content-Transfer-Encoding (base64, quoted-printable; others as is)."""
    return _decode_cte(data, cte)


def _decode_cte(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return _b64decode(data)
    if cte == "quoted-printable":
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return binascii.a2b_qp(data)
    return data


def unflow(text: str, *, delsp: bool = False) -> str:
    """Undo RFC 3676 ``format=flowed``: a line ending in a space continues on the next line
    of the same quote depth (Thunderbird and Apple Mail wrap long lines so, which splits a
    number or an address across lines); space-stuffing is removed; with ``DelSp=yes`` the
    soft break's space is deleted. The signature separator "-- " is never a soft break."""
    out: list[str] = []
    buf: list[str] = []
    depth = 0
    for raw in text.split("\n"):
        d = len(raw) - len(raw.lstrip(">"))
        line = raw[d:]
        if line.startswith(" "):
            line = line[1:]
        if buf and d != depth:  # a soft break never joins two quote depths
            out.append(">" * depth + (" " if depth else "") + "".join(buf))
            buf = []
        depth = d
        soft = line.endswith(" ") and line != "-- "
        buf.append(line[:-1] if soft and delsp else line)
        if not soft:
            out.append(">" * depth + (" " if depth else "") + "".join(buf))
            buf = []
    if buf:
        out.append(">" * depth + (" " if depth else "") + "".join(buf))
    return "\n".join(out)


def _newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


@dataclass(slots=True)
class _Walker:
    buf: bytes
    budget: _Budget
    out: _Collector
    alternative: tuple[int, int] | None = None  # see _Collector.alternative_of
    n_alternatives: int = 0

    def entity(
        self, hb: HeaderBlock, start: int, end: int, path: str, depth: int, default: str
    ) -> None:
        budget = self.budget
        budget.parts += 1
        if budget.parts > MAX_PARTS:
            if not budget.parts_exceeded:
                budget.parts_exceeded = True
                budget.uninspected += 1
                self.out.defects.append(f"more than {MAX_PARTS} MIME parts; rest ignored")
            return
        self.out.defects.extend(hb.defects)
        if hb.truncated or hb.ambiguous:
            budget.uninspected += 1  # header fields not read, or read differently elsewhere
        ent = _entity(hb, default, self.out.defects)
        where = f"part {path or '1'}"
        if ent.ctype.startswith("multipart/"):
            self._multipart(ent, start, end, path, depth, where)
        elif ent.ctype in _MESSAGE_TYPES or ent.ctype in _HEADER_ONLY_TYPES:
            self._message(ent, start, end, path or "1", depth)
        elif ent.ctype in _TEXT_TYPES and not self._is_attachment(ent):
            self._text(ent, start, end, path or "1")
        else:
            self._attachment(ent, start, end, path or "1")

    @staticmethod
    def _is_attachment(ent: _Entity) -> bool:
        if ent.disposition == "attachment":
            return True
        return ent.disposition != "inline" and bool(ent.filename)

    def _multipart(
        self, ent: _Entity, start: int, end: int, path: str, depth: int, where: str
    ) -> None:
        if depth >= MAX_DEPTH:
            self.budget.uninspected += 1
            self.out.defects.append(f"{where}: MIME nesting deeper than {MAX_DEPTH}; ignored")
            return
        try:
            boundary = ent.params.get_boundary()
        except Exception:  # malformed parameters
            boundary = None
        parts: list[tuple[int, int]] = []
        if boundary:
            parts = _split_multipart(
                self.buf, start, end, boundary.encode("utf-8", "replace"), self.out.defects, where
            )
        if not parts:
            self.out.defects.append(f"{where}: multipart without boundary, read as text")
            self._text(_Entity("text/plain", ent.params, "", ent.cte), start, end, path or "1")
            return
        child_default = "message/rfc822" if ent.ctype == "multipart/digest" else "text/plain"
        outer = self.alternative
        group = 0
        if ent.ctype == "multipart/alternative":
            self.n_alternatives += 1
            group = self.n_alternatives
        for n, (s, e) in enumerate(parts, 1):
            if self.budget.parts_exceeded:
                break
            if group:
                self.alternative = (group, n)
            child_hb = parse_header_block(self.buf, s, e)
            child_path = f"{path}.{n}" if path else str(n)
            self.entity(child_hb, child_hb.body_start, e, child_path, depth + 1, child_default)
        self.alternative = outer

    def _message(self, ent: _Entity, start: int, end: int, path: str, depth: int) -> None:
        self.out.attachments.append(_attachment(ent, start, end, path))
        if depth >= MAX_DEPTH:
            self.budget.uninspected += 1
            self.out.defects.append(
                f"part {path}: attached message nested deeper than {MAX_DEPTH}; not parsed"
            )
            return
        payload = _decode_cte(self.buf[start:end], ent.cte)
        inner = _parse(payload, depth + 1, self.budget, None, ())
        self.out.attached.append(inner)

    def _text(self, ent: _Entity, start: int, end: int, path: str) -> None:
        size = end - start
        if size > MAX_TEXT_BYTES or self.budget.text_bytes + size > MAX_TOTAL_TEXT_BYTES:
            self.budget.uninspected += 1
            self.out.defects.append(f"part {path}: text too large to inspect ({size} bytes)")
            self._attachment(ent, start, end, path)
            return
        self.budget.text_bytes += size
        data = _decode_cte(self.buf[start:end], ent.cte)
        label = ent.param("charset")
        is_html = ent.ctype == "text/html"
        if label is None and is_html:
            m = _META_CHARSET_RE.search(data, 0, 4096)
            if m is not None:
                label = m.group(1).decode("ascii", "replace")
        decoded = decode_bytes(data, label)
        if decoded.defect:
            self.out.defects.append(f"part {path}: {decoded.defect}")
        text = _newlines(decoded.text)
        if not is_html and (ent.param("format") or "").lower() == "flowed":
            text = unflow(text, delsp=(ent.param("delsp") or "").lower() == "yes")
        html = ""
        if is_html:
            html = text
            text, defect = render_html(html)
            if defect:
                self.out.defects.append(f"part {path}: {defect}")
        self.out.text_parts.append(TextPart(ent.ctype, text, decoded.charset, path, html))
        self.out.alternative_of.append(self.alternative)

    def _attachment(self, ent: _Entity, start: int, end: int, path: str) -> None:
        self.out.attachments.append(_attachment(ent, start, end, path))


def _attachment(ent: _Entity, start: int, end: int, path: str) -> Attachment:
    """An attachment with the offsets of its encoded body, for ``leakguard.extract``."""
    return Attachment(
        ent.filename,
        ent.ctype,
        end - start,
        path,
        ent.disposition,
        body_start=start,
        body_end=end,
        transfer_encoding=ent.cte,
        charset=(ent.param("charset") or "")[:64],
    )


# --------------------------------------------------------------------------- messages


def _plain_alternatives(
    text_parts: Sequence[TextPart], alternative_of: Sequence[tuple[int, int] | None]
) -> dict[int, int]:
    """HTML part index -> index of an earlier text/plain part in another branch of the
    same multipart/alternative (the same content, written as plain text)."""
    out: dict[int, int] = {}
    plain: dict[int, tuple[int, int]] = {}  # alternative number -> (part index, branch)
    for i, (part, alt) in enumerate(zip(text_parts, alternative_of, strict=True)):
        if alt is None:
            continue
        group, branch = alt
        if part.content_type == "text/plain":
            plain.setdefault(group, (i, branch))
        elif part.content_type == "text/html" and group in plain and plain[group][1] != branch:
            out[i] = plain[group][0]
    return out


def _first(addrs: tuple[Address, ...]) -> Address | None:
    return addrs[0] if addrs else None


def _parse(
    raw: bytes,
    depth: int,
    budget: _Budget,
    envelope_from: str | None,
    envelope_rcpts: Sequence[str],
) -> Message:
    hb = parse_header_block(raw, 0, len(raw))
    headers = tuple(hb.decoded())  # before the walk, so its defects are collected
    out = _Collector()
    walker = _Walker(raw, budget, out)
    walker.entity(hb, hb.body_start, len(raw), "", depth, "text/plain")
    defects = out.defects
    subject = _WS_RUN_RE.sub(" ", next((v for k, v in headers if k.lower() == "subject"), ""))
    from_, _ = addresses_in(hb.get_all("From"))
    sender_header = _first(addresses_in(hb.get_all("Sender"))[0])
    reply_to, _ = addresses_in(hb.get_all("Reply-To"))
    to, g_to = addresses_in(hb.get_all("To"))
    cc, g_cc = addresses_in(hb.get_all("Cc"))
    bcc, g_bcc = addresses_in(hb.get_all("Bcc"))
    env_from = None
    if envelope_from is not None and envelope_from.strip().strip("<>").strip():
        env_from = make_address(envelope_from)
    text_parts = tuple(out.text_parts)
    attached = tuple(out.attached)
    try:
        quoted = tuple(
            quotes.extract_quotes(
                text_parts,
                attached,
                plain_alternatives=_plain_alternatives(text_parts, out.alternative_of),
            )
        )
    except Exception as exc:  # another module's bug must not lose the mail
        quoted = ()
        defects.append(f"quote extraction failed: {type(exc).__name__}")
    return Message(
        raw=raw,
        subject=subject,
        message_id=(hb.get("Message-ID") or "").strip(),
        from_=from_,
        sender_header=sender_header,
        reply_to=reply_to,
        to=to,
        cc=cc,
        bcc=bcc,
        envelope_from=env_from,
        envelope_rcpts=tuple(make_address(r) for r in envelope_rcpts if r.strip()),
        text_parts=text_parts,
        attachments=tuple(out.attachments),
        attached_messages=attached,
        quoted_blocks=quoted,
        headers=headers,
        defects=tuple(dict.fromkeys(defects)),
        has_undisclosed_group=g_to or g_cc or g_bcc,
        uninspected_parts=budget.uninspected,
    )


def parse_message(
    raw: bytes,
    *,
    envelope_from: str | None = None,
    envelope_rcpts: Sequence[str] | None = None,
) -> Message:
    """Parse a mail once into the immutable view every detector reads. Never raises.

    ``envelope_rcpts`` given as strings become ``Address`` objects; when None the
    envelope recipients stay empty (the caller decides defaults).
    """
    rcpts = tuple(envelope_rcpts or ())
    try:
        return _parse(raw, 0, _Budget(), envelope_from, rcpts)
    except Exception as exc:  # the relay must never fail on a mail; keep what we can
        return Message(
            raw=raw,
            subject="",
            message_id="",
            from_=(),
            sender_header=None,
            reply_to=(),
            to=(),
            cc=(),
            bcc=(),
            envelope_from=make_address(envelope_from) if envelope_from else None,
            envelope_rcpts=tuple(make_address(r) for r in rcpts if r.strip()),
            text_parts=(),
            attachments=(),
            attached_messages=(),
            quoted_blocks=(),
            headers=(),
            defects=(f"internal-error: {type(exc).__name__}: {exc}"[:200],),
            uninspected_parts=1,  # nothing of the body was read
        )
