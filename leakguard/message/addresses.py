"""Address parsing and normalisation.

``make_address`` is the single place an ``Address`` is built, so every address in the
system has the same canonical form (IDNA A-label domain, decoded display name).

``parse_address_list`` reads RFC 5322 address lists and, because the quote extractor feeds
it header lines found in body text, also what mail clients print there::

    "Doe, John" <j@x.com>; 山田 太郎 <t.yamada@example.co.jp>
    John Doe [mailto:j@x.com]
    j@x.com (John Doe)
    山田 ＜t@x.jp＞、佐藤 ＜s@x.jp＞
    undisclosed-recipients:;
    =?ISO-2022-JP?B?...?=          (encoded word hiding "山田 <t@x.jp>, 佐藤 <s@y.jp>")

The last form is invalid (RFC 2047 §5 forbids encoded words in addr-specs) but written by
PHP's ``mb_encode_mimeheader``, Perl's ``Encode`` MIME-Header and in-house tools, and every
mail client shows the addresses it hides. So when the decoded value holds an ``@`` the raw
value did not show, the decoded value is parsed too and its addresses are added (see
``docs/addresses.md``).

It never raises; anything that is not an address is skipped.
"""

from __future__ import annotations

import re
import unicodedata

from leakguard.message.headers import ENCODED_WORD_RE, collapse_ws, decode_rfc2047
from leakguard.organization import to_ascii_domain, to_unicode_domain
from leakguard.types import Address

MAX_ADDRESSES = 10_000  # per list; a hostile header cannot make the parse quadratic
MAX_VALUE_CHARS = 1_000_000


def make_address(addr: str, display_name: str = "") -> Address:
    """Build an Address from ``local@domain`` text (angle brackets and whitespace stripped)."""
    a = addr.strip().strip("<>").strip()
    if a.lower().startswith("mailto:"):
        a = a[7:]
    local, at, domain = a.rpartition("@")
    if not at:
        local, domain = a, ""
    domain = unicodedata.normalize("NFKC", domain) if not domain.isascii() else domain
    ascii_domain = to_ascii_domain(domain)
    name = " ".join(display_name.split())
    if name.strip("'\"") == a:  # "a@b" <a@b> carries no name
        name = ""
    return Address(
        local=local,
        domain=ascii_domain,
        display_name=name,
        unicode_domain=to_unicode_domain(ascii_domain),
    )


# Full-width and CJK brackets that Japanese clients print around addresses.
_WIDTH_MAP = str.maketrans({"＜": "<", "＞": ">", "〈": "<", "〉": ">", "［": "[", "］": "]"})

_TOKEN_RE = re.compile(
    r"""
      (?P<q>"(?:[^"\\]|\\.)*"?)                          # quoted string (maybe unterminated)
    | (?P<sq>'[^'<>@,;]*,[^'<>@;]*'(?=\s*[<\[]))          # Outlook's 'Doe, John' <j@x.com>
    | (?P<c>\()                                           # comment: nesting handled in code
    | (?P<a><[^<>]*>|<[^<>,;、，；\s]*)                    # angle address (maybe unterminated)
    | (?P<b>\[[^\[\]]*\]?)                                # [mailto:x] or a domain literal
    | (?P<sep>[,、，])                                      # list separators
    | (?P<semi>[;；])                                      # group end, or Outlook's separator
    | (?P<colon>:)                                        # group start
    | (?P<ws>\s+)
    | (?P<ew>=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)               # encoded word (may hold ':' etc.)
    | (?P<mailto>(?i:mailto):[^\s"(<\[,;、，；>\])]+)     # bare mailto: URI
    | (?P<w>[^\s"(<\[,;:、，；>\])]+)                      # atom / addr-spec text
    | (?P<x>.)                                            # stray '>', ']' or ')'
    """,
    re.VERBOSE | re.DOTALL,
)
_ADDR_TRIM = "\"'`.,;:!?()[]{}<>「」『』【】（）＜＞"
_LOCAL_OK_RE = re.compile(r"^[^\s@<>()\[\]\\,;:\"]+$")
_QUOTED_LOCAL_RE = re.compile(r'^"(?:[^"\\\r\n]|\\.)+"$')
_DOMAIN_OK_RE = re.compile(r"^(?:[^\s@<>()\[\]\\,;:\"'/=?]+|\[[^\[\]\s]+\])$")


def _read_comment(text: str, pos: int) -> tuple[str, int]:
    """Comment starting at ``text[pos] == '('``; returns (inner text, end). Bounded, nested."""
    depth = 0
    i = pos
    out: list[str] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
            continue
        if ch == "(":
            depth += 1
            if depth > 1:
                out.append(ch)
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return "".join(out), i + 1
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out), n


def _unquote(q: str) -> str:
    inner = q[1:-1] if len(q) >= 2 and q.endswith('"') else q[1:]
    return re.sub(r"\\(.)", r"\1", inner)


_INNER_COMMENT_RE = re.compile(r"\([^()]*\)|\s+")


def clean_addr_spec(spec: str) -> str | None:
    """``local@domain`` from a token, or None when it is not an address."""
    s = spec.strip()
    if "(" in s and '"' not in s:
        # RFC 5322 CFWS inside an addr-spec: <a(comment)@x.example> is a@x.example
        s = _INNER_COMMENT_RE.sub("", s)
    if s.lower().startswith("mailto:"):
        s = s[7:]
        s = s.split("?", 1)[0]  # mailto:x@y?subject=...
    if ":" in s and "@" in s:  # obsolete route <@a,@b:user@host>
        s = s.rsplit(":", 1)[1]
    trim = _ADDR_TRIM
    if "@[" in s:  # domain literal
        trim = trim.replace("]", "")
    if '"@' in s:  # quoted local part
        trim = trim.replace('"', "")
    s = s.strip().strip(trim)
    local, at, domain = s.rpartition("@")
    if not at or not local or not domain:
        return None
    local = local.strip()
    domain = domain.strip().rstrip(".")
    if not (_LOCAL_OK_RE.match(local) or _QUOTED_LOCAL_RE.match(local)):
        return None
    if not _DOMAIN_OK_RE.match(domain):
        return None
    return f"{local}@{domain}"


class _Mailbox:
    __slots__ = ("angles", "comments", "prefix", "words")

    def __init__(self) -> None:
        self.words: list[tuple[int, str]] = []  # (index, text) name words and addr-spec words
        self.angles: list[tuple[int, str]] = []
        self.comments: list[str] = []
        self.prefix: list[str] = []  # name words carried over a comma (see parse_address_list)

    def empty(self) -> bool:
        return not (self.words or self.angles)

    def has_address(self) -> bool:
        return bool(self.angles) or any("@" in w for _, w in self.words)


def _name_text(parts: list[str]) -> str:
    name = collapse_ws(decode_rfc2047(" ".join(parts)))
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        name = name[1:-1].strip()  # Outlook's 'Doe, John'
    return name


def _finish(box: _Mailbox, out: list[Address]) -> int:
    """Append the mailbox's address(es) to ``out``; returns how many were added."""
    added = 0
    if box.angles:
        first_idx = box.angles[0][0]
        name_words = [w for i, w in box.words if i < first_idx]
        name = _name_text(name_words) if name_words else ""
        if name and box.prefix:
            name = ", ".join([*(_name_text([p]) for p in box.prefix), name])
        if not name and box.comments:
            name = _name_text(box.comments)
        seen: set[str] = set()
        for _, inner in box.angles:
            spec = clean_addr_spec(inner)
            if spec is None or spec.lower() in seen:
                continue
            seen.add(spec.lower())
            out.append(make_address(spec, name))
            added += 1
        if added:
            return added
    specs = [(i, clean_addr_spec(w)) for i, w in box.words if "@" in w]
    found = [(i, s) for i, s in specs if s is not None]
    if not found:
        return 0
    if len(found) == 1:
        idx, spec = found[0]
        before = [w for i, w in box.words if i < idx and "@" not in w]
        name = _name_text(box.comments) if box.comments else _name_text(before)
        out.append(make_address(spec, name))
        return 1
    for _, spec in found:
        out.append(make_address(spec))
    return len(found)


def hidden_by_encoded_words(value: str) -> str | None:
    """The decoded form of ``value`` when its encoded words hide an ``@`` (an address, or
    part of one, inside ``=?charset?B|Q?...?=``), else None."""
    if "=?" not in value:
        return None
    plain = ENCODED_WORD_RE.sub(" ", value)
    if plain == value:
        return None
    decoded = decode_rfc2047(value)
    shown = plain.count("@") + plain.count("＠")
    if decoded.count("@") + decoded.count("＠") <= shown:
        return None
    return decoded


def parse_address_list(value: str) -> tuple[list[Address], bool]:
    """Addresses in a header value, and whether it contained an empty group.

    ``value`` may be raw (encoded words are decoded in display names) or already decoded.
    Addresses hidden inside encoded words are read from the decoded value and added after
    the ones the raw value shows (each address once).
    """
    value = value[:MAX_VALUE_CHARS]
    out, empty_group = _parse_address_list(value)
    decoded = hidden_by_encoded_words(value)
    if decoded is None:
        return out, empty_group
    more, _ = _parse_address_list(decoded.replace("\r", " ").replace("\n", " "))
    seen = {a.key for a in out}
    for a in more:
        if a.key not in seen and len(out) < MAX_ADDRESSES:
            seen.add(a.key)
            out.append(a)
    return out, empty_group


def _parse_address_list(value: str) -> tuple[list[Address], bool]:
    text = value.translate(_WIDTH_MAP)
    out: list[Address] = []
    empty_group = False
    in_group = False
    group_count = 0
    box = _Mailbox()
    idx = 0
    pos = 0
    quoted_end = -1
    # Words of one addr-spec split by CFWS: "a(b)@x.example", "a @ x.example" (RFC 5322
    # allows comments and folding whitespace between its atoms; mail clients show one
    # address, so the checks must see it too).
    word_end = -1  # end of the last word token while only comments/whitespace follow it
    gap_ws = False
    n = len(text)
    while pos < n and len(out) < MAX_ADDRESSES:
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # pragma: no cover - the last alternative matches any character
            break
        kind = m.lastgroup
        tok = m.group(0)
        pos = m.end()
        idx += 1
        if kind == "c":
            inner, pos = _read_comment(text, m.start())
            if inner.strip():
                box.comments.append(inner)
            continue  # a comment does not end the word run (see word_end)
        if kind == "ws":
            gap_ws = True
            continue
        glue = word_end >= 0 and kind in ("w", "ew", "mailto") and bool(box.words)
        if glue:
            prev = box.words[-1][1]
            at_edge = prev.endswith("@") or tok.startswith("@")
            glue = (at_edge or not gap_ws) and not (tok.startswith("@") and "@" in prev)
            glue = glue and not (prev.endswith("@") and "@" in tok)
        word_end = -1
        gap_ws = False
        if glue:
            j, w = box.words[-1]
            box.words[-1] = (j, w + tok)
            word_end = pos
            continue
        if kind == "q":
            box.words.append((idx, _unquote(tok)))
            quoted_end = pos
        elif kind == "sq":
            box.words.append((idx, tok[1:-1]))
        elif kind == "a":
            box.angles.append((idx, tok[1:-1] if tok.endswith(">") else tok[1:]))
        elif kind == "b":
            inner = tok[1:-1] if tok.endswith("]") else tok[1:]
            if box.words and box.words[-1][1].endswith("@"):  # user@[1.2.3.4]
                j, w = box.words[-1]
                box.words[-1] = (j, w + tok)
            elif "@" in inner:  # John Doe [mailto:j@x.com]
                box.angles.append((idx, inner))
            elif inner.strip():
                box.words.append((idx, tok))
        elif kind == "sep":
            added = _finish(box, out)
            group_count += added
            # "Doe, John <j@x.com>" (unquoted, as Outlook prints it in quoted headers):
            # words without an address carry over as the start of the next display name.
            words = " ".join(w for _, w in box.words)
            carry = [] if added or box.angles or not words else [*box.prefix, words]
            box = _Mailbox()
            if carry:
                box.prefix = carry
        elif kind == "semi":
            group_count += _finish(box, out)
            box = _Mailbox()
            if in_group:
                if group_count == 0:
                    empty_group = True
                in_group = False
        elif kind == "colon":
            if not in_group and not box.has_address():
                in_group = True  # "name:" starts a group; its name is not an address
                group_count = 0
                box = _Mailbox()
            # a colon elsewhere is noise
        elif kind in ("w", "ew", "mailto"):
            if tok[0] == "@" and quoted_end == m.start() and box.words:
                # "john doe"@example.com: a quoted local part
                j, w = box.words[-1]
                box.words[-1] = (j, '"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' + tok)
            else:
                box.words.append((idx, tok))
            word_end = pos
        # stray closing brackets separate words and are otherwise ignored
    if len(out) < MAX_ADDRESSES:
        group_count += _finish(box, out)
    if in_group and group_count == 0:
        empty_group = True
    return out[:MAX_ADDRESSES], empty_group


def addresses_in(values: list[str]) -> tuple[tuple[Address, ...], bool]:
    """All addresses of several header values (e.g. two To: lines), in order."""
    out: list[Address] = []
    empty = False
    for v in values:
        addrs, e = parse_address_list(v)
        out.extend(addrs)
        empty = empty or e
    return tuple(out), empty


__all__ = [
    "addresses_in",
    "clean_addr_spec",
    "hidden_by_encoded_words",
    "make_address",
    "parse_address_list",
]
