"""Finding email addresses in free text (quoted bodies, pasted header lines).

Free text is not an address header: it holds URLs with user info (``https://user@host/``),
SSH remotes (``git@github.com:org/repo``), decorators (``@property``), Message-IDs pasted
from References lines (``<CAF=x$1@mail.gmail.com>``), Content-IDs
(``image001.png@01D9ABCD.5E6F7A80``), Lotus Notes names (``Jane Doe/HOU/ECT@ECT``) and
host-local names (``root@localhost``). None of these is a mailbox anyone can be sent mail
at, so none is reported. What is reported is ``local@domain.tld`` where the domain has at
least two labels and a top-level label that is a known public suffix or at least looks like
one (letters only, not a file extension).

Addresses written for people are read too (see ``docs/addresses.md``): full-width letters
as typed into Japanese web forms (``ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏ．ｊｐ``), encoded words
pasted with raw header lines, and spam-guard spellings (``yamada[at]example.co.jp``,
``yamada (at) example (dot) co (dot) jp``, ``yamada［アット］example.co.jp``,
``info★example.co.jp``, and ``yamada at example.co.jp`` on a label line or in parentheses).

Everything here is linear in the input: one pre-compiled regex pass with bounded
quantifiers and constant work per candidate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from leakguard.message.addresses import make_address
from leakguard.message.headers import decode_rfc2047
from leakguard.types import Address

_PSL_STRICT = PublicSuffixList(accept_unknown=False)

# local part: ASCII atext plus dots; it may not start right after another local-part
# character or '/', so "https://user@host" and "Name/OU/ORG@ORG" never start a match there.
_ADDR_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-/=$&!#*?^`{|}~])"
    r"(?P<local>[A-Za-z0-9_][A-Za-z0-9._%+\-!#$&'*/=?^`{|}~]{0,63})"
    r"[@＠]"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,10}"
    r"(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9\-]{1,59}))"
    r"(?![A-Za-z0-9\-])"
)

# Top-level labels that are file extensions or code, not mail domains (unless the public
# suffix list knows them, which it does for e.g. "zip" and "mov": those are still refused
# here because in mail text they are far more often file names than mail domains).
_NOT_TLDS_SPEC = (
    "png jpg jpeg gif bmp svg webp ico tif tiff heic pdf doc docx xls xlsx ppt pptx txt csv "
    "tsv json xml yaml yml toml ini cfg conf log htm html css js mjs ts tsx jsx py pyc rb go rs "
    "java class jar kt c h cc cpp hpp cs php pl sh bat ps1 exe dll so dylib zip gz tgz bz2 xz "
    "rar lzh lha mov mp3 mp4 wav avi mkv msg eml ics vcf tmp bak old swp md rst tex "
    "local localhost localdomain lan internal home arpa"
)
_NOT_TLDS = frozenset(_NOT_TLDS_SPEC.split())
# Domains that only ever appear in Message-IDs / Content-IDs, never as a mailbox.
_MSGID_DOMAINS = frozenset({"mail.gmail.com", "thyme", "swift.thyme"})
# Header lines whose '@' tokens are identifiers, not mailboxes.
_ID_LINE_RE = re.compile(
    r"^[\s>]*(?:message-id|references|in-reply-to|content-id|thread-index|thread-topic|"
    r"received|return-path|dkim-signature|arc-[a-z-]+|x-[a-z0-9-]+|list-[a-z-]+|"
    r"resent-message-id|authentication-results)\s*:",
    re.IGNORECASE,
)


# Full-width ASCII (U+FF01-U+FF5E) and the ideographic space, one character for one, so
# that spans found in the folded text are spans of the original text.
# The minus sign and hyphen are where JIS (ISO-2022-JP) puts the full-width hyphen-minus.
_WIDTH_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {
    0x3000: 0x20,
    0x2212: 0x2D,
    0x2010: 0x2D,
}


def _has_full_width_address(text: str) -> bool:
    """Whether an address may be written in full width here (a full-width at sign or dot,
    or a full-width letter or digit right before an at sign)."""
    if "＠" in text or "．" in text:
        return True
    at = text.find("@")
    while at > 0:
        if "\uff10" <= text[at - 1] <= "\uff5a":
            return True
        at = text.find("@", at + 1)
    return False


def fold_width(text: str) -> str:
    """``text`` with full-width ASCII letters, digits and signs as ASCII (same length)."""
    if text.isascii():
        return text
    return text.translate(_WIDTH_FOLD)


@dataclass(frozen=True, slots=True)
class AddressSpan:
    """One address found in text: where it is and how it was written."""

    start: int
    end: int
    address: Address


def _plausible_tld(tld: str) -> bool:
    t = tld.lower()
    if t.startswith("xn--"):
        return True
    return t not in _NOT_TLDS


def _looks_like_message_id(local: str, domain: str, text: str, start: int, end: int) -> bool:
    """``<...@...>`` tokens from References / Message-ID lines and Notes / JavaMail ids."""
    d = domain.lower()
    if d in _MSGID_DOMAINS or d.endswith(".thyme") or "javamail" in local.lower():
        return True
    if any(c in local for c in "$=%") and len(local) > 12:
        return True
    bracketed = start > 0 and text[start - 1] == "<" and end < len(text) and text[end] == ">"
    if bracketed and "+" not in local:  # VERP / sub-addresses carry '+', Message-IDs do not
        digits = sum(c.isdigit() for c in local)
        # "<20240101123456.GA1234@host.example.com>", "<1234567.1075855378110.x@host>"
        if len(local) >= 16 and digits * 2 >= len(local):
            return True
        if local.count(".") >= 2 and digits >= 8:
            return True
    return False


def _inside_url(text: str, start: int) -> bool:
    """True when the token around ``start`` is a URL (``scheme://...``)."""
    lo = max(0, start - 256)
    i = start - 1
    while i >= lo:
        c = text[i]
        if c.isspace() or c in "<>\"'()[]":
            break
        i -= 1
    token = text[i + 1 : start]
    return "://" in token or token.lower().startswith(("www.", "http:", "https:", "ftp:"))


def _is_code_remote(text: str, end: int) -> bool:
    """``git@github.com:org/repo`` / ``user@host.example.com:/path``: scp-style remotes."""
    if end < len(text) and text[end] == ":":
        nxt = text[end + 1 : end + 2]
        return bool(nxt) and (nxt.isalnum() or nxt in "/~._-")
    return end < len(text) and text[end] == "/"


def iter_address_spans(text: str) -> Iterator[AddressSpan]:
    """Every plausible mailbox in ``text``, in order, with its character span.

    The display name is not guessed here (see ``parse_loose_address_list``). Full-width
    letters are read as their ASCII forms (spans are those of ``text``).
    """
    if "@" not in text and "＠" not in text:
        return
    if _has_full_width_address(text):
        text = fold_width(text)
    for m in _ADDR_RE.finditer(text):
        local = m.group("local").rstrip(".")
        domain = m.group("domain")
        start, end = m.start(), m.start("local") + len(m.group("local")) + 1 + len(domain)
        if not local or ".." in local:
            continue
        tld = domain.rsplit(".", 1)[-1]
        if not _plausible_tld(tld):
            continue
        if _inside_url(text, start) or _is_code_remote(text, end):
            continue
        if _looks_like_message_id(local, domain, text, start, end):
            continue
        yield AddressSpan(start, end, make_address(f"{local}@{domain}"))


def find_addresses(text: str) -> list[Address]:
    """Plausible mailboxes in free text, de-duplicated case-insensitively, in order.

    Lines that are pasted identifier headers (Message-ID, References, Received, X-...) are
    skipped. Encoded words are decoded first (raw header lines pasted into text) and
    spam-guard spellings are read (``yamada[at]example.co.jp``, see ``spelled_addresses``).
    """
    if not may_hold_address(text):
        return []
    seen: set[str] = set()
    out: list[Address] = []
    for line in text.splitlines():
        if "@" not in line and "＠" not in line:
            if _obfuscation_hint(line):
                for a in spelled_addresses(line):
                    if a.key not in seen:
                        seen.add(a.key)
                        out.append(a)
            elif "=?" in line:
                line = decode_rfc2047(line)
            if "@" not in line and "＠" not in line:
                continue
        elif "=?" in line:
            line = decode_rfc2047(line)
        found = (
            _line_addresses_cached(line) if len(line) <= _CACHE_MAX_LEN else _line_addresses(line)
        )
        for a in found:
            if a.key not in seen:
                seen.add(a.key)
                out.append(a)
    return out


_CACHE_MAX_LEN = 1000  # longer strings are parsed every time (and not kept alive by a cache)


def _line_addresses(line: str) -> tuple[Address, ...]:
    if _ID_LINE_RE.match(line):
        return ()
    found = [span.address for span in iter_address_spans(line)]
    if _obfuscation_hint(line):
        keys = {a.key for a in found}
        found += [a for a in spelled_addresses(line) if a.key not in keys]
    return tuple(found)


# --------------------------------------------------------------------------- spelled out


# Characters and substrings one of which every spam-guard spelling contains: a cheap test
# before the regex. Written out as one expression (no loop): it runs on every quoted line.
def _obfuscation_hint(s: str) -> bool:
    return (
        "★" in s
        or "☆" in s
        or "t]" in s
        or "t)" in s
        or "T]" in s
        or "T)" in s
        or "@)" in s
        or "@]" in s
        or " at " in s
        or " AT " in s
        or "t］" in s
        or "t）" in s
        or "t】" in s
        or "t}" in s
        or "t>" in s
        or "＠）" in s
        or "＠］" in s
        or "ａｔ" in s
        or "ＡＴ" in s
        or "アット" in s
        or "あっと" in s
    )


_AT_WORD = r"(?:at|あっと|アット(?:マーク)?|@)"
_OPEN = r"[\[(<{【（［＜｛〔]"
_CLOSE = r"[\])>}】）］＞｝〕]"
_DOT_SPELLED = rf"(?:\s?{_OPEN}\s?(?i:dot|ドット)\s?{_CLOSE}\s?|\s(?i:dot)\s)"
# local part, then a spelled '@': "[at]", "(at)", "［アット］", "★", or a bare " at "
_SPELLED_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-/=])"
    r"(?P<local>[A-Za-z0-9_][A-Za-z0-9._%+\-]{0,63})"
    rf"(?:\s?{_OPEN}\s?(?i:{_AT_WORD})\s?{_CLOSE}\s?|(?P<star>[★☆])|(?P<bare>\s(?i:at)\s))"
    rf"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{{0,61}}[A-Za-z0-9])?(?:\.|{_DOT_SPELLED})){{1,10}}"
    r"[A-Za-z]{2,24})"
    r"(?![A-Za-z0-9\-@])"
)
_DOT_SPELLED_RE = re.compile(_DOT_SPELLED)
# "E-mail: ...", "メール：...", "Mail (at): ..." - a line labelled as holding an address
_MAIL_LABEL_RE = re.compile(
    r"(?i:e-?mail|mail|address|contact)|メール|アドレス|連絡先|問い?合わ?せ先", re.IGNORECASE
)


def may_hold_address(text: str) -> bool:
    """Cheap test (single-character searches only, so it may run on a whole part): whether
    ``text`` can hold an address ``find_addresses`` reports."""
    return (
        "@" in text
        or "＠" in text
        or "=?" in text
        or "★" in text
        or "☆" in text
        or "]" in text
        or "］" in text
        or "】" in text
        or ")" in text
        or "）" in text
        or "}" in text
        or ":" in text
        or "：" in text
    )


def _bracket_hint(text: str) -> bool:
    """Single-character test for the bracketed and starred spellings (``[at]``, ``［at］``,
    ``【at】``, ``★``): what ``address_keys`` looks for beyond ``@``."""
    return "★" in text or "☆" in text or "]" in text or "］" in text or "】" in text or "}" in text


def spelled_addresses(line: str) -> list[Address]:
    """Addresses spelled out for people in one line of text (spam guards, full width):
    ``yamada[at]example.co.jp``, ``yamada (at) example (dot) co (dot) jp``,
    ``ｙａｍａｄａ［ａｔ］ｅｘａｍｐｌｅ．ｃｏ．ｊｐ``, ``yamada［アット］example.co.jp``,
    ``info★example.co.jp``.

    A bare ``yamada at example.co.jp`` counts only when the line is labelled as an address
    (``E-mail:``, ``メール：``) or the address stands alone in parentheses: in running prose
    ("meet at home.com") it is a sentence. The domain's top-level label must be a known
    public suffix, and not a file extension.
    """
    if len(line) > 4000:
        line = line[:4000]
    text = fold_width(line)
    out: list[Address] = []
    for m in _SPELLED_RE.finditer(text):
        domain = _DOT_SPELLED_RE.sub(".", m.group("domain"))
        local = m.group("local").rstrip(".")
        if not local or ".." in local or ".." in domain:
            continue
        tld = domain.rsplit(".", 1)[-1]
        if not _plausible_tld(tld) or _PSL_STRICT.publicsuffix(domain.lower()) is None:
            continue
        if domain.lower().count(".") < 1:
            continue
        if m.group("bare") is not None:
            first = domain.split(".", 1)[0]
            if first[:1].isdigit() or not any(c.isalpha() for c in first):
                continue
            if not _bare_at_context(text, m.start(), m.end()):
                continue
        if _inside_url(text, m.start()):
            continue
        out.append(make_address(f"{local}@{domain}"))
    return out


def _bare_at_context(text: str, start: int, end: int) -> bool:
    """A bare ``x at y.z`` is an address on an address line (``E-mail:``, ``メール：``) or
    alone in parentheses; in running prose it is a sentence."""
    before = text[max(0, start - 40) : start]
    after = text[end : end + 2]
    in_parens = before.rstrip().endswith(("(", "（", "<", "＜", "[", "【")) and after.lstrip()[
        :1
    ] in (")", "）", ">", "＞", "]", "】")
    labelled = bool(_MAIL_LABEL_RE.search(before)) and (":" in before or "：" in before)
    return in_parens or labelled


_line_addresses_cached = functools.lru_cache(maxsize=8192)(_line_addresses)


_WINDOW_BEFORE = 66  # a local part (64 characters) and the character before it
_WINDOW_AFTER = 700  # a domain of ten labels


def address_keys(text: str) -> set[str]:
    """Keys of every ``local@domain`` token in ``text`` that ``find_addresses`` or
    ``parse_loose_address_list`` could report anywhere, whatever surrounds it.

    No context filter (URL, code remote, Message-ID, identifier line) is applied, only the
    token's own checks, so the result is a superset of what those functions find in the
    same characters: a cheap way to tell whether a text can hold an address another text
    does not. Only windows around each ``@`` are scanned (overlapping windows are merged),
    so the work is linear in the length of the text. Encoded words are decoded, full-width
    forms folded, and the bracketed and starred spellings (``[at]``, ``［アット］``, ``★``)
    included; the parenthesised ``(at)`` and bare `` at `` spellings are not (looking for them
    costs a scan per line, and a text/plain part and its HTML alternative show them alike).
    """
    keys: set[str] = set()
    if _bracket_hint(text):
        for line in text.splitlines():
            if _bracket_hint(line) and _obfuscation_hint(line):
                keys.update(a.key for a in spelled_addresses(line))
    if "=?" in text:
        text = decode_rfc2047(text)
    ats: list[int] = []
    for sign in "@＠":
        at = text.find(sign)
        while at >= 0:
            ats.append(at)
            at = text.find(sign, at + 1)
    if "＠" in text:
        ats.sort()
    n = len(ats)
    i = 0
    while i < n:
        lo = max(0, ats[i] - _WINDOW_BEFORE)
        hi = ats[i] + _WINDOW_AFTER
        i += 1
        while i < n and ats[i] - _WINDOW_BEFORE <= hi:
            hi = ats[i] + _WINDOW_AFTER
            i += 1
        window = text[lo : min(hi, len(text))]
        if _has_full_width_address(window):
            window = fold_width(window)
        for m in _ADDR_RE.finditer(window):
            local = m.group("local").rstrip(".")
            domain = m.group("domain")
            if local and ".." not in local and _plausible_tld(domain.rsplit(".", 1)[-1]):
                keys.add(_key_of(f"{local}@{domain}"))
    return keys


@functools.lru_cache(maxsize=8192)
def _key_of(addr: str) -> str:
    return make_address(addr).key


_QUOTED_RE = re.compile(r'"([^"]{1,120})"')
_NAME_STRIP = " \t\"'<>[](),;:*\u3000\xa0"
_NAME_NOISE_RE = re.compile(r"\[?mailto:\s*$|^\s*(?:on behalf of|の代理で送信|が)\s*", re.I)


def _clean_name(raw: str, bracketed: bool) -> str:
    name = raw
    quoted = _QUOTED_RE.findall(name)
    if quoted and bracketed:
        name = quoted[-1]
    elif ";" in name:
        name = name.rsplit(";", 1)[1]
    if "," in name:
        # "a@x, Name <b@y>" -> "Name"; an unquoted "Last, First <b@y>" keeps its comma
        head, _, tail = name.rpartition(",")
        if not bracketed or not head.strip(_NAME_STRIP):
            name = tail
    # "Name [mailto:" / "Name <mailto:" / leading "on behalf of"
    name = re.sub(r"[\[<(]?\s*mailto:\s*$", "", name, flags=re.I)
    name = _NAME_NOISE_RE.sub("", name)
    name = name.strip(_NAME_STRIP)
    if "@" in name or "＠" in name or len(name) > 120:
        return ""
    return " ".join(name.split())


def parse_loose_address_list(value: str) -> list[Address]:
    """Addresses with display names from a header value written by a mail client.

    See ``_parse_loose``; results for short values are cached (mail repeats its headers).
    Encoded words (raw header lines pasted into text) are decoded first.
    """
    if "=?" in value:
        value = decode_rfc2047(value)
    if "@" not in value and "＠" not in value:
        if _obfuscation_hint(value):
            return spelled_addresses(value)
        return []
    if len(value) <= _CACHE_MAX_LEN:
        return list(_parse_loose_cached(value))
    return list(_parse_loose(value))


def _parse_loose(value: str) -> tuple[Address, ...]:
    """Addresses with display names from a header value written by a mail client.

    Tolerates what clients print into forwarded headers: ``Name <a@b>``, ``"Last, First"
    <a@b>``, unquoted ``Last, First <a@b>``, ``a@b <a@b>``, ``Name [mailto:a@b]``, ``a@b``
    lists separated by ``,`` or ``;``, and Notes names (ignored: they are not SMTP
    addresses). Each address appears once; its display name is the text between the
    previous address and this one.
    """
    if _ID_LINE_RE.match(value):
        return ()
    out: list[Address] = []
    index: dict[str, int] = {}
    prev_end = 0
    for span in iter_address_spans(value):
        before = value[prev_end : span.start]
        bracketed = span.start > 0 and value[span.start - 1] in "<[:"
        name = _clean_name(before, bracketed)
        a = span.address
        key = a.key
        # skip the closing bracket of "<a@b>" / "[mailto:a@b]"
        prev_end = span.end
        while prev_end < len(value) and value[prev_end] in ">]) \t":
            prev_end += 1
        if key in index:
            i = index[key]
            if not out[i].display_name and name:
                out[i] = make_address(a.addr, name)
            continue
        index[key] = len(out)
        out.append(make_address(a.addr, name) if name else a)
    return tuple(out)


_parse_loose_cached = functools.lru_cache(maxsize=8192)(_parse_loose)


# Local parts of mailboxes that send or receive mail for software, not for a person: no-reply
# senders, bounce handlers, mail system roles, newsletter and notification senders, and the
# administrative addresses of mailing lists (RFC 2142 / list manager conventions). Company
# contacts that people answer (info@, sales@, support@, customercare@) are NOT listed here.
_AUTOMATED_LOCAL_RE = re.compile(
    r"(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|mailer[-_.]?daemon|postmaster|"
    r"newsletters?|notifications?|notify|bounces?|listserv|listproc|majordomo|"
    r"e?mail[-_.]?server)"
    r"(?:[-_.][a-z0-9._-]*|\d+)?"
    r"|owner-[a-z0-9._-]+"
    r"|[a-z0-9._-]+-(?:request|owner|subscribe|unsubscribe|bounces?|no-?reply)",
)


def is_automated_local(local: str) -> bool:
    """Whether ``local`` names an automated or mailing-list mailbox rather than a person or a
    desk people write to: ``noreply``, ``no-reply``, ``donotreply``, ``mailer-daemon``,
    ``postmaster``, ``emailserver``, ``newsletter``, ``notifications``, ``bounce…``, list
    ``owner-…`` and
    ``…-request`` / ``…-owner`` / ``…-unsubscribe`` / ``…-bounces`` addresses. A ``+tag``
    (``bounces+1234=user=example.com``) is ignored. Conservative: ``info``, ``sales``,
    ``support`` and other company contacts are not automated.
    """
    base = local.lower().split("+", 1)[0]
    return len(base) <= 64 and _AUTOMATED_LOCAL_RE.fullmatch(base) is not None


# Words that role and desk mailboxes are made of (``customercare``, ``customer.service``,
# ``website``, ``emailserver``, ``info``, ``web-master``): a local part built only from these
# (and digits) names a function, not a person.
_ROLE_WORDS = (
    "accounts|account|admin|administrator|alerts|alert|announcements|announce|auto|billing|"
    "bulletin|care|careers|center|centre|club|community|contact|contactus|customers|customer|"
    "deals|desk|digest|editors|editor|email|enquiries|enquiry|events|feedback|general|hello|"
    "helpdesk|help|hotline|info|information|inquiries|inquiry|jobs|list|mailer|mailing|"
    "mailings|mail|marketing|master|media|members|membership|member|news|newsletters|"
    "newsletter|notices|notice|offers|office|online|orders|order|press|promotions|promo|"
    "reply|reservations|rewards|sales|server|services|service|site|subscriptions|"
    "subscription|subscribe|support|system|team|updates|update|us|webmaster|website|web|www"
)
_ROLE_LOCAL_RE = re.compile(rf"(?:{_ROLE_WORDS})(?:[-_.]?(?:{_ROLE_WORDS}))*[-_.]?\d*")
# Words of display names that name a desk or a publication, not a person.
_ROLE_NAME_RE = re.compile(
    rf"\b(?:{_ROLE_WORDS}|team|staff|department|dept|inc|corp|ltd|llc|co|company)\b|"
    r"事務局|窓口|センター|サポート|カスタマー|お客様|運営|配信|編集部|ニュース|メールマガジン|"
    r"メルマガ|株式会社|有限会社|会社|係|部|課",
    re.IGNORECASE,
)
_NAME_WORD_RE = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’\-]*\.?")
_CJK_NAME_RE = re.compile(
    r"[\u3040-\u30ff\u3400-\u9fff]{1,6}(?:[ \u3000][\u3040-\u30ff\u3400-\u9fff]{1,6})?"
)


def is_role_local(local: str) -> bool:
    """Whether ``local`` names a function rather than a person: an automated mailbox
    (``is_automated_local``) or one made only of desk words (``info``, ``customercare``,
    ``customer.service``, ``website``, ``emailserver``, ``webmaster``, ``support2``).
    ``john.smith``, ``jsmith``, ``sales.tanaka`` are not."""
    base = local.lower().split("+", 1)[0]
    if len(base) > 64:
        return False
    return is_automated_local(base) or _ROLE_LOCAL_RE.fullmatch(base) is not None


def looks_like_person_name(display_name: str) -> bool:
    """Whether a display name reads as a person's name: two to four words of letters
    (``John Smith``, ``Smith, John``, ``Mary J. Blige``) or a short CJK name (``山田 太郎``,
    ``山田太郎``), with no desk or company word (``Customer Service``, ``ABC Team``,
    ``お客様センター``)."""
    name = display_name.strip().strip("\"'")
    if not name or "@" in name or len(name) > 80 or _ROLE_NAME_RE.search(name):
        return False
    if _CJK_NAME_RE.fullmatch(name):
        return len(name.replace(" ", "").replace("\u3000", "")) >= 2
    words = [w for w in re.split(r"[\s,]+", name) if w]
    return 2 <= len(words) <= 4 and all(_NAME_WORD_RE.fullmatch(w) for w in words)


def is_personal_address(addr: Address) -> bool:
    """Whether an address evidently belongs to a person: a local part that is not a role
    (``is_role_local``), or any local part under a display name that looks like a person's
    name (``John Smith <info@small.example>``)."""
    return not is_role_local(addr.local) or looks_like_person_name(addr.display_name)
