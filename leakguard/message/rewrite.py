"""The BCC rewrite: take external addresses out of To and Cc, touching nothing else.

Works on the raw bytes. Only the To and Cc fields that lose an address are rebuilt, from
the original text of the addresses that stay (display names, encoded words and comments
kept as written); every other byte — other headers, their folding, the body and its
encodings — is left exactly as received. An emptied To becomes
``To: undisclosed-recipients:;``; an emptied Cc is removed. The envelope is not changed, so
everyone still receives the mail; external recipients simply no longer see each other.

Addresses hidden inside encoded words (an in-house tool's ``=?ISO-2022-JP?B?...?=`` holding
``名前 <a@x>, 名前 <b@y>``) are addresses like any other: the shared parser reads them, so
they are moved too, and the internal ones of such a field are written back as
``name <addr>``.

One parser: which addresses a field holds is decided by
``leakguard.message.addresses.parse_address_list`` — the parser the detectors used to reach
the ``bcc`` verdict — never by a second one. The rewrite fails closed: the result is parsed
again (``parse_header_block`` + the same address parser, as ``parse_message`` does) and if
an external address is still visible in To/Cc — or a field is too large to rewrite item by
item — every To/Cc field is rebuilt from its internal addresses only (an emptied To becomes
``undisclosed-recipients:;``). If even that leaves one visible (the two field splitters
disagree on hostile bytes), ``RewriteResult.visible`` names it and the caller must not
deliver (``Relay._bcc`` refuses the mail).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formataddr

from leakguard.message.addresses import (
    addresses_in,
    hidden_by_encoded_words,
    parse_address_list,
)
from leakguard.message.headers import parse_header_block
from leakguard.types import Address

_MAX_FIELD = 256 * 1024  # a To/Cc larger than this is rebuilt from its internal addresses
_FOLD_AT = 78


@dataclass(frozen=True, slots=True)
class RewriteResult:
    raw: bytes
    removed: tuple[str, ...]  # addresses taken out of To/Cc
    # external addresses still visible in To/Cc after the rewrite (re-parsed). Non-empty
    # only when even the fallback could not hide them: such a result must not be delivered.
    visible: tuple[str, ...] = ()

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
    """Split a header section into fields, each with its continuation lines and line end.

    Only LF ends a line (a bare CR does not), as for ``parse_header_block`` and the MTAs.
    """
    lines = [ln + b"\n" for ln in head.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    out: list[list[bytes]] = []  # joined once at the end: += on bytes is quadratic
    for line in lines:
        if out and line[:1] in (b" ", b"\t"):
            out[-1].append(line)
        else:
            out.append([line])
    return [b"".join(parts) for parts in out]


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


def _format(a: Address) -> str:
    """One address written back (display name RFC 2047-encoded when not ASCII)."""
    return formataddr((a.display_name, a.addr), charset="utf-8")


def _split_item(
    chunk: str, keep: Callable[[str], bool], removed: list[str]
) -> tuple[str | None, set[str]]:
    """One top-level item: its text to keep (None: drop it) and the keys it held.

    An item the shared parser reads as several addresses (``a@x b@y``, no comma) is rebuilt
    from its internal addresses when any of them is external.
    """
    addrs, _ = parse_address_list(chunk.replace("\r\n", " ").replace("\n", " "))
    keys = {a.key for a in addrs}
    ext = [a for a in addrs if not keep(a.addr)]
    if not ext:
        return chunk.strip(), keys
    removed += [a.addr for a in ext]
    stay = [_format(a) for a in addrs if keep(a.addr)]
    return (", ".join(stay) if stay else None), keys


def _filter_group(
    text: str, keep: Callable[[str], bool], removed: list[str]
) -> tuple[str, set[str]]:
    text = text.lstrip(", \t\r\n")
    name, _, members = text.partition(":")
    members = members.rstrip()
    if members.endswith(";"):
        members = members[:-1]
    kept: list[str] = []
    keys: set[str] = set()
    for chunk, _g in _split_top(members):
        item, held = _split_item(chunk, keep, removed)
        keys |= held
        if item is not None:
            kept.append(item)
    return f"{name.strip()}:{' ' + ', '.join(kept) if kept else ''};", keys


def _rewrite_value(value: str, keep: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """The items that stay (original text, stripped) and the addresses removed.

    Falls back to ``_safe_value`` when the item split does not account for every external
    address the shared parser finds in the whole value, and when encoded words hide
    addresses (``=?ISO-2022-JP?B?...?=`` holding ``名前 <a@x>, 名前 <b@y>``, see
    ``docs/addresses.md``): the original text of such a field cannot be split item by item,
    so what stays is written back from the parse, one ``name <addr>`` per address.
    """
    if hidden_by_encoded_words(value.replace("\r\n", " ").replace("\n", " ")) is not None:
        return _safe_value(value, keep)
    kept: list[str] = []
    removed: list[str] = []
    seen: set[str] = set()
    for chunk, is_group in _split_top(value):
        if is_group:
            before = len(removed)
            rebuilt, held = _filter_group(chunk, keep, removed)
            seen |= held
            kept.append(rebuilt if len(removed) > before else chunk.strip())
            continue
        item, held = _split_item(chunk, keep, removed)
        seen |= held
        if item is not None:
            kept.append(item)
    whole, _ = parse_address_list(value.replace("\r\n", " ").replace("\n", " "))
    if any(not keep(a.addr) and a.key not in seen for a in whole):
        return _safe_value(value, keep)
    return kept, removed


def _safe_value(value: str, keep: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """The fail-closed form: only the internal addresses, rebuilt from the parse."""
    addrs, _ = parse_address_list(value.replace("\r\n", " ").replace("\n", " "))
    kept = [_format(a) for a in addrs if keep(a.addr)]
    removed = [a.addr for a in addrs if not keep(a.addr)]
    return kept, removed


def visible_external(raw: bytes, is_internal: Callable[[str], bool]) -> list[str]:
    """External addresses a reader of ``raw`` sees in To/Cc, parsed as the detectors do."""
    hb = parse_header_block(raw)
    addrs, _ = addresses_in([*hb.get_all("To"), *hb.get_all("Cc")])
    out: list[str] = []
    for a in addrs:
        if not is_internal(a.addr) and a.addr not in out:
            out.append(a.addr)
    return out


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
    res = _rewrite(raw, is_internal, record_header, safe=False)
    left = visible_external(res.raw, is_internal)
    if not left:
        return res
    res = _rewrite(raw, is_internal, record_header, safe=True)
    left = visible_external(res.raw, is_internal)
    return RewriteResult(raw=res.raw, removed=res.removed, visible=tuple(left))


def _rewrite(
    raw: bytes, is_internal: Callable[[str], bool], record_header: str | None, *, safe: bool
) -> RewriteResult:
    end = header_end(raw)
    head, rest = raw[:end], raw[end:]
    fields = _fields(head)
    out: list[bytes] = []
    removed_all: list[str] = []
    to_slots: list[int] = []  # indexes in ``out`` of emptied To fields (None placeholders)
    to_kept = False
    rebuilt = False
    for f in fields:
        name_b, colon, _ = f.partition(b":")
        lname = name_b.strip().lower()
        if not colon or lname not in (b"to", b"cc"):
            out.append(f)
            continue
        eol = "\r\n" if f.endswith(b"\r\n") else "\n" if f.endswith(b"\n") else ""
        text = f.decode("utf-8", "surrogateescape")
        name, _, value = text.partition(":")
        value = value[: len(value) - len(eol)] if eol else value
        if safe or len(f) > _MAX_FIELD:
            kept, removed = _safe_value(value, is_internal)
            changed = bool(removed) or safe
        else:
            kept, removed = _rewrite_value(value, is_internal)
            changed = bool(removed)
        if not changed:
            if lname == b"to":
                to_kept = True
            out.append(f)
            continue
        rebuilt = True
        removed_all += removed
        if kept:
            if lname == b"to":
                to_kept = True
            out.append(_build(name.strip(), kept, eol or "\r\n").encode("utf-8", "surrogateescape"))
        elif lname == b"to":
            to_slots.append(len(out))
            out.append(b"")  # decided below
    if not rebuilt:
        return RewriteResult(raw=raw, removed=())
    if to_slots and not to_kept:
        first = to_slots[0]
        eol_b = b"\r\n" if b"\r\n" in head or not head else b"\n"
        out[first] = b"To: undisclosed-recipients:;" + eol_b
    new_head = b"".join(out)
    if record_header and removed_all:
        eol_b = b"\r\n" if b"\r\n" in head or not head else b"\n"
        n = len(removed_all)
        plural = "s" if n != 1 else ""
        line = f"{record_header}: moved {n} external recipient{plural} from To/Cc to Bcc"
        new_head = line.encode("ascii", "replace") + eol_b + new_head
    return RewriteResult(raw=new_head + rest, removed=tuple(removed_all))


def bcc_rewrite(raw: bytes, is_internal: Callable[[str], bool]) -> bytes:
    """``rewrite_recipients`` returning only the bytes (the form ``HoldService`` takes)."""
    return rewrite_recipients(raw, is_internal).raw
