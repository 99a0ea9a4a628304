"""The BCC rewrite: take external addresses out of To and Cc, touching nothing else.

Works on the raw bytes. Only the To and Cc fields that lose an address are rebuilt, from
the original text of the addresses that stay (display names, encoded words and comments
kept as written); every other byte — other headers, their folding, the body and its
encodings — is left exactly as received. An emptied To becomes
``To: undisclosed-recipients:;``; an emptied Cc is removed. The envelope is not changed, so
everyone still receives the mail; external recipients simply no longer see each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.utils import getaddresses

_MAX_FIELD = 256 * 1024  # a To/Cc larger than this is left alone (and the mail still flows)
_FOLD_AT = 78


@dataclass(frozen=True, slots=True)
class RewriteResult:
    raw: bytes
    removed: tuple[str, ...]  # addresses taken out of To/Cc

    @property
    def changed(self) -> bool:
        return bool(self.removed)


def header_end(raw: bytes) -> int:
    """Index where the header section ends (start of the blank line), or len(raw)."""
    a = raw.find(b"\r\n\r\n")
    b = raw.find(b"\n\n")
    cands = [i for i in (a, b) if i >= 0]
    if not cands:
        return len(raw)
    i = min(cands)
    # the blank line starts after the last header's line end
    return i + (2 if raw[i : i + 2] == b"\r\n" else 1)


def _fields(head: bytes) -> list[bytes]:
    """Split a header section into fields, each with its continuation lines and line end."""
    lines = head.splitlines(keepends=True)
    out: list[bytes] = []
    for line in lines:
        if out and line[:1] in (b" ", b"\t"):
            out[-1] += line
        else:
            out.append(line)
    return out


def _split_top(value: str) -> list[tuple[str, bool]]:
    """Split an address-list into top-level items: (text, is_group)."""
    items: list[tuple[str, bool]] = []
    buf: list[str] = []
    depth_comment = 0
    in_quote = in_angle = in_group = False
    escape = False
    for ch in value:
        buf.append(ch)
        if escape:
            escape = False
            continue
        if ch == "\\" and (in_quote or depth_comment):
            escape = True
        elif in_quote:
            if ch == '"':
                in_quote = False
        elif depth_comment:
            if ch == "(":
                depth_comment += 1
            elif ch == ")":
                depth_comment -= 1
        elif ch == '"':
            in_quote = True
        elif ch == "(":
            depth_comment = 1
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == ":" and not in_angle and not in_group:
            in_group = True
        elif ch == ";" and in_group and not in_angle:
            in_group = False
            items.append(("".join(buf), True))
            buf = []
        elif ch == "," and not in_angle and not in_group:
            buf.pop()
            items.append(("".join(buf), False))
            buf = []
    rest = "".join(buf)
    if rest.strip():
        items.append((rest, in_group))
    return [(t, g) for t, g in items if t.strip() and t.strip() != ","]


def _strip_comments(text: str) -> str:
    """Remove (nested) comments without recursion (the stdlib parser recurses on them)."""
    out: list[str] = []
    depth = 0
    in_quote = escape = False
    for ch in text:
        if escape:
            escape = False
            if not depth:
                out.append(ch)
            continue
        if ch == "\\" and (in_quote or depth):
            escape = True
            if not depth:
                out.append(ch)
            continue
        if depth:
            depth += 1 if ch == "(" else -1 if ch == ")" else 0
            continue
        if ch == '"':
            in_quote = not in_quote
        elif ch == "(" and not in_quote:
            depth = 1
            out.append(" ")
            continue
        out.append(ch)
    return "".join(out)


def _addr_of(chunk: str) -> str:
    unfolded = _strip_comments(chunk.replace("\r\n", "").replace("\n", ""))
    try:
        pairs = getaddresses([unfolded])
    except Exception:  # hostile syntax: treat as no address (the text stays as written)
        return ""
    return pairs[0][1] if pairs else ""


def _filter_group(text: str, keep: Callable[[str], bool], removed: list[str]) -> str:
    text = text.lstrip(", \t\r\n")
    name, _, members = text.partition(":")
    members = members.rstrip()
    if members.endswith(";"):
        members = members[:-1]
    kept: list[str] = []
    for chunk, _g in _split_top(members):
        addr = _addr_of(chunk)
        if addr and "@" in addr and not keep(addr):
            removed.append(addr)
        else:
            kept.append(chunk.strip())
    return f"{name.strip()}:{' ' + ', '.join(kept) if kept else ''};"


def _rewrite_value(value: str, keep: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """The items that stay (original text, stripped) and the addresses removed."""
    kept: list[str] = []
    removed: list[str] = []
    for chunk, is_group in _split_top(value):
        if is_group:
            before = len(removed)
            rebuilt = _filter_group(chunk, keep, removed)
            kept.append(rebuilt if len(removed) > before else chunk.strip())
            continue
        addr = _addr_of(chunk)
        if addr and "@" in addr and not keep(addr):
            removed.append(addr)
        else:
            kept.append(chunk.strip())
    return kept, removed


def _build(name: str, items: list[str], eol: str) -> str:
    one = f"{name}: {', '.join(items)}"
    if len(items) <= 1 or (len(one) <= _FOLD_AT and "\n" not in one):
        return one + eol
    return f"{name}: " + f",{eol} ".join(items) + eol


def rewrite_recipients(
    raw: bytes,
    is_internal: Callable[[str], bool],
    *,
    record_header: str | None = None,
) -> RewriteResult:
    """Remove external addresses from To/Cc (see module doc).

    ``record_header`` (e.g. ``X-Leakguard-Bcc``) adds one line saying how many addresses
    were moved; it is added only when something changed.
    """
    end = header_end(raw)
    head, rest = raw[:end], raw[end:]
    fields = _fields(head)
    out: list[bytes] = []
    removed_all: list[str] = []
    to_slots: list[int] = []  # indexes in ``out`` of emptied To fields (None placeholders)
    to_kept = False
    for f in fields:
        name_b, colon, _ = f.partition(b":")
        lname = name_b.strip().lower()
        if not colon or lname not in (b"to", b"cc") or len(f) > _MAX_FIELD:
            if lname == b"to":
                to_kept = True
            out.append(f)
            continue
        eol = "\r\n" if f.endswith(b"\r\n") else "\n" if f.endswith(b"\n") else ""
        text = f.decode("utf-8", "surrogateescape")
        name, _, value = text.partition(":")
        value = value[: len(value) - len(eol)] if eol else value
        kept, removed = _rewrite_value(value, is_internal)
        if not removed:
            if lname == b"to":
                to_kept = True
            out.append(f)
            continue
        removed_all += removed
        if kept:
            if lname == b"to":
                to_kept = True
            out.append(_build(name.strip(), kept, eol or "\r\n").encode("utf-8", "surrogateescape"))
        elif lname == b"to":
            to_slots.append(len(out))
            out.append(b"")  # decided below
    if not removed_all:
        return RewriteResult(raw=raw, removed=())
    if to_slots and not to_kept:
        first = to_slots[0]
        eol_b = b"\r\n" if b"\r\n" in head or not head else b"\n"
        out[first] = b"To: undisclosed-recipients:;" + eol_b
    new_head = b"".join(out)
    if record_header:
        eol_b = b"\r\n" if b"\r\n" in head or not head else b"\n"
        n = len(removed_all)
        plural = "s" if n != 1 else ""
        line = f"{record_header}: moved {n} external recipient{plural} from To/Cc to Bcc"
        new_head = line.encode("ascii", "replace") + eol_b + new_head
    return RewriteResult(raw=new_head + rest, removed=tuple(removed_all))


def bcc_rewrite(raw: bytes, is_internal: Callable[[str], bool]) -> bytes:
    """``rewrite_recipients`` returning only the bytes (the form ``HoldService`` takes)."""
    return rewrite_recipients(raw, is_internal).raw
