"""Mail carried in other containers, and calendar invitations.

- ``.eml`` sent as ``application/octet-stream``: parsed with ``parse_message`` (the one
  parser); its own attachments are read like any other.
- Outlook ``.msg``: an OLE compound file of MAPI properties, read with olefile (BSD). The
  properties used are few and documented ([MS-OXMSG]): transport headers, subject, body,
  sender, the recipient table and the attachment table. extract-msg would do this too but is
  GPL-3.0, which this Apache-2.0 project cannot ship.
- ``winmail.dat`` (TNEF): tnefparse.
- ``text/calendar`` / ``.ics``: icalendar; ATTENDEE and ORGANIZER become
  ``Message.calendar_attendees``, SUMMARY/LOCATION/DESCRIPTION become text.

``.msg`` and TNEF headers and bodies are written out as RFC 5322 bytes (``Output.messages``)
and parsed by the engine into ``Message.attached_messages``, so the thread detector sees
their From/To/Cc and quotes exactly as it sees a forwarded message/rfc822 part.
"""

from __future__ import annotations

import email.header
import email.utils
import re
from collections.abc import Iterable, Iterator

from leakguard.extract.formats import (
    Limits,
    Output,
    Sections,
    Uninspected,
    Unreadable,
    add_message,
    dispatch,
    position,
)
from leakguard.message.charsets import decode_bytes
from leakguard.message.parse import decode_transfer_encoding, parse_message
from leakguard.types import Attachment, AttachmentContent, Message

_MAX_HEADER_CHARS = 64 * 1024
_HEADER_DROP = re.compile(r"(content-|mime-version)", re.I)


def _body_text(msg: Message) -> str:
    """The message's own text: plain parts, or the rendered HTML when there is no plain."""
    plain = [p.text for p in msg.text_parts if p.content_type == "text/plain"]
    if plain:
        return "\n".join(plain)
    return "\n".join(p.text for p in msg.text_parts)


def _oversized_body(att: Attachment) -> bool:
    """A body text part the parser listed as an attachment only because it was too large
    to read (it already counted it in ``uninspected_parts``): not read twice."""
    return (
        att.content_type in ("text/plain", "text/html")
        and not att.filename
        and att.disposition != "attachment"
    )


def walk_attachments(msg: Message, prefix: str = "") -> Iterator[tuple[str, Message, int]]:
    """(display name, holder message, index into holder.attachments) of every attachment
    to read, attached messages (message/rfc822) included; those parts themselves are not
    yielded, their attachments are (named ``<attached message>/<file>``)."""
    for i, att in enumerate(msg.attachments):
        if att.content_type in ("message/rfc822", "message/global") or att.content_type.endswith(
            "-headers"
        ):
            continue
        if _oversized_body(att):
            continue
        label = att.filename or f"part {att.path} ({att.content_type})"
        yield f"{prefix}{label}", msg, i
    rfc822 = [a for a in msg.attachments if a.content_type in ("message/rfc822", "message/global")]
    for n_msg, inner in enumerate(msg.attached_messages, 1):
        label = rfc822[n_msg - 1].filename if n_msg <= len(rfc822) else ""
        name = label or inner.subject[:60] or f"attached message {n_msg}"
        yield from walk_attachments(inner, f"{prefix}{name}/")


def eml(out: Output, name: str, data: bytes, limits: Limits, depth: int, secs: Sections) -> None:
    if len(out.messages) >= limits.max_messages:  # before parsing it
        raise Uninspected(f"more than {limits.max_messages} mails in one attachment")
    msg = parse_message(data)
    if not msg.headers:
        raise Uninspected("not a mail message")
    add_message(out, name, data, limits)
    _mail_text(msg, secs)
    _inner_attachments(out, name, msg, limits, depth)


def _mail_text(msg: Message, secs: Sections) -> None:
    head = [f"{k}: {v}" for k, v in msg.headers if k.lower() in ("from", "to", "cc", "subject")]
    secs.add("headers", "\n".join(head))
    secs.add("body", _body_text(msg))


def _inner_attachments(out: Output, name: str, msg: Message, limits: Limits, depth: int) -> None:
    if depth >= limits.max_depth:
        if msg.attachments:
            raise Uninspected(f"mail nested deeper than {limits.max_depth}")
        return
    for label, holder, i in walk_attachments(msg):
        att = holder.attachments[i]
        body = decode_transfer_encoding(
            holder.raw[att.body_start : att.body_end], att.transfer_encoding
        )
        dispatch(out, f"{name}/{label}", att.content_type, body, limits, depth + 1, att.charset)


# --------------------------------------------------------------------------- RFC 5322 out


def _header(name: str, value: str) -> str:
    value = " ".join(value.split())
    if value.isascii():
        return f"{name}: {value}"
    return f"{name}: {email.header.Header(value, 'utf-8', header_name=name).encode()}"


def _addr_header(name: str, pairs: Iterable[tuple[str, str]]) -> str | None:
    items = []
    for display, addr in pairs:
        addr = addr.strip()
        if not addr:
            continue
        items.append(email.utils.formataddr((display.strip(), addr), charset="utf-8"))
    return f"{name}: {', '.join(items)}" if items else None


def build_rfc5322(
    *,
    headers: str = "",
    subject: str = "",
    from_: Iterable[tuple[str, str]] = (),
    to: Iterable[tuple[str, str]] = (),
    cc: Iterable[tuple[str, str]] = (),
    body: str = "",
) -> bytes:
    """Bytes of a mail for ``parse_message``: the container's own transport headers when it
    kept them (a received mail saved from Outlook), else headers written from its properties.
    The body is always written as UTF-8 text/plain."""
    lines: list[str] = []
    if headers.strip():
        unfolded = re.sub(r"\r?\n[ \t]+", " ", headers[:_MAX_HEADER_CHARS].strip())
        for line in unfolded.splitlines():
            if ":" in line and not _HEADER_DROP.match(line):
                lines.append(line.rstrip())
    else:
        for hname, pairs in (("From", from_), ("To", to), ("Cc", cc)):
            h = _addr_header(hname, pairs)
            if h:
                lines.append(h)
        if subject:
            lines.append(_header("Subject", subject))
    lines += [
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    text = body.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return ("\r\n".join(lines) + "\r\n\r\n" + text).encode("utf-8", "replace")


# --------------------------------------------------------------------------- Outlook .msg

_RECIP = "__recip_version1.0_#"
_ATTACH = "__attach_version1.0_#"
_PR_RECIPIENT_TYPE = 0x0C150003


class _MsgReader:
    def __init__(self, ole: object, prefix: tuple[str, ...]) -> None:
        self.ole = ole
        self.prefix = prefix

    def _stream(self, *path: str, limit: int = 16 * 1024 * 1024) -> bytes | None:
        full = [*self.prefix, *path]
        ole = self.ole
        if not ole.exists("/".join(full)):  # type: ignore[attr-defined]
            return None
        if ole.get_size("/".join(full)) > limit:  # type: ignore[attr-defined]
            raise Uninspected("Outlook property larger than the limit")
        with ole.openstream(full) as fh:  # type: ignore[attr-defined]
            data: bytes = fh.read(limit + 1)
        return data

    def text(self, prop: str, *sub: str) -> str:
        uni = self._stream(*sub, f"__substg1.0_{prop}001F")
        if uni is not None:
            return uni.decode("utf-16-le", "replace").rstrip("\x00")
        ansi = self._stream(*sub, f"__substg1.0_{prop}001E")
        if ansi is not None:
            return decode_bytes(ansi.rstrip(b"\x00"), None).text
        return ""

    def binary(self, prop: str, *sub: str, limit: int) -> bytes | None:
        return self._stream(*sub, f"__substg1.0_{prop}0102", limit=limit)

    def storages(self, kind: str) -> list[str]:
        depth = len(self.prefix)
        seen: set[str] = set()
        for entry in self.ole.listdir(streams=True, storages=True):  # type: ignore[attr-defined]
            if (
                len(entry) > depth
                and tuple(entry[:depth]) == self.prefix
                and entry[depth].startswith(kind)
            ):
                seen.add(entry[depth])
        return sorted(seen)

    def recipient_type(self, storage: str) -> int:
        props = self._stream(storage, "__properties_version1.0") or b""
        for off in range(8, len(props) - 15, 16):
            if int.from_bytes(props[off : off + 4], "little") == _PR_RECIPIENT_TYPE:
                return int.from_bytes(props[off + 8 : off + 12], "little")
        return 1


def msg(out: Output, name: str, data: bytes, limits: Limits, depth: int, secs: Sections) -> None:
    import olefile

    try:
        ole = olefile.OleFileIO(data)
    except Exception as exc:
        raise Uninspected(f"broken Outlook file: {type(exc).__name__}") from None
    try:
        _msg_object(out, name, _MsgReader(ole, ()), limits, depth, secs)
    finally:
        ole.close()


def _msg_object(
    out: Output, name: str, r: _MsgReader, limits: Limits, depth: int, secs: Sections
) -> None:
    body = r.text("1000")
    if not body:
        html = r.binary("1013", limit=limits.max_xml_bytes)
        if html:
            from leakguard.message.html import render_html

            body = render_html(decode_bytes(html, None).text)[0]
    to: list[tuple[str, str]] = []
    cc: list[tuple[str, str]] = []
    for storage in r.storages(_RECIP):
        addr = r.text("39FE", storage) or r.text("3003", storage)
        if "@" not in addr:
            continue
        pair = (r.text("3001", storage), addr)
        (cc if r.recipient_type(storage) == 2 else to).append(pair)
    sender = r.text("5D01") or r.text("0C1F") or r.text("0065")
    raw = build_rfc5322(
        headers=r.text("007D"),
        subject=r.text("0037"),
        from_=[(r.text("0C1A") or r.text("0042"), sender)] if "@" in sender else [],
        to=to,
        cc=cc,
        body=body,
    )
    add_message(out, name, raw, limits)
    _mail_text(parse_message(raw), secs)
    storages = r.storages(_ATTACH)
    if storages and depth >= limits.max_depth:
        raise Uninspected(f"mail nested deeper than {limits.max_depth}")
    for n, storage in enumerate(storages, 1):
        fname = r.text("3707", storage) or r.text("3704", storage) or f"attachment {n}"
        embedded = (*r.prefix, storage, "__substg1.0_3701000D")
        if r.ole.exists("/".join(embedded)):  # type: ignore[attr-defined]
            inner = Sections(limits, out)
            sub = f"{name}/{fname}"
            try:
                _msg_object(out, sub, _MsgReader(r.ole, embedded), limits, depth + 1, inner)
                status, detail = ("uninspected", "text limit") if inner.truncated else ("read", "")
            except Uninspected as exc:
                status, detail = "uninspected", str(exc)
            entry = AttachmentContent(sub, "msg", status, tuple(inner.items), detail)
            out.contents.insert(position(out, sub), entry)  # before its own attachments
            continue
        blob = r.binary("3701", storage, limit=limits.max_uncompressed)
        if blob is None:
            continue
        ctype = r.text("370E", storage) or "application/octet-stream"
        dispatch(out, f"{name}/{fname}", ctype, blob, limits, depth + 1)


# --------------------------------------------------------------------------- TNEF


def tnef(out: Output, name: str, data: bytes, limits: Limits, depth: int, secs: Sections) -> None:
    from tnefparse import TNEF

    try:
        t = TNEF(data, do_checksum=False)
    except Exception as exc:
        raise Uninspected(f"broken TNEF: {type(exc).__name__}") from None
    subject = ""
    for prop in t.msgprops:
        if prop.name == TNEF.ATTSUBJECT and isinstance(prop.data, str):
            subject = prop.data
    body = t.body
    if isinstance(body, bytes):
        body = decode_bytes(body.rstrip(b"\x00"), None).text
    if not body and t.htmlbody:
        from leakguard.message.html import render_html

        html = t.htmlbody
        if isinstance(html, bytes):
            html = decode_bytes(html, None).text
        body = render_html(html)[0]
    if not (subject or body or t.attachments or t.has_body()):
        raise Uninspected("TNEF stream without a subject, body or attachment")
    raw = build_rfc5322(subject=subject, body=body or "")
    add_message(out, name, raw, limits)
    _mail_text(parse_message(raw), secs)
    if t.attachments and depth >= limits.max_depth:
        raise Uninspected(f"container nested deeper than {limits.max_depth}")
    for n, att in enumerate(t.attachments, 1):
        try:
            fname = att.long_filename() or att.name
        except Exception:  # tnefparse decodes an ANSI (e.g. CP932) title as UTF-8
            fname = getattr(att, "_name", b"")
        if isinstance(fname, bytes):
            fname = decode_bytes(fname.rstrip(b"\x00"), None).text
        fname = str(fname).strip("\x00").strip() or f"attachment {n}"
        if att.data:
            dispatch(
                out, f"{name}/{fname}", "application/octet-stream", att.data, limits, depth + 1
            )
    if not body and t.has_body():
        raise Unreadable("the body is RTF only (not read); attachments were read")


# --------------------------------------------------------------------------- calendar


def _cal_addr(value: object) -> tuple[str, str] | None:
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if "@" not in text:
        return None
    params = getattr(value, "params", {})
    cn = params.get("CN", "") if hasattr(params, "get") else ""
    return text, str(cn or "").strip('"')


def ics(out: Output, data: bytes, charset: str, secs: Sections) -> None:
    from icalendar import Calendar

    text = decode_bytes(data, charset or "utf-8").text
    try:
        cal = Calendar.from_ical(text)
    except Exception as exc:
        raise Uninspected(f"broken calendar: {type(exc).__name__}") from None
    n = 0
    for comp in cal.walk():
        if comp.name not in ("VEVENT", "VTODO", "VJOURNAL"):
            continue
        n += 1
        uid = str(comp.get("UID") or "").strip()
        if uid and len(out.uids) < 50:
            out.uids.append(uid[:300])
        for prop in ("ORGANIZER", "ATTENDEE"):
            values = comp.get(prop)
            if values is None:
                continue
            for v in values if isinstance(values, list) else [values]:
                pair = _cal_addr(v)
                if pair is not None:
                    out.attendees.append(pair)
        lines = [str(comp.get(p)) for p in ("SUMMARY", "LOCATION", "DESCRIPTION") if comp.get(p)]
        secs.add(f"event {n}", "\n".join(lines))
