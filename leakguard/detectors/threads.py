"""Quoted and forwarded threads: third-party addresses that outside recipients would learn.

Fact ``quoted_third_party_addresses`` (DESIGN §2): the number of distinct addresses found
in quoted or forwarded material (``Message.quoted_blocks``) that are

* not the sender (envelope sender, From, Sender, Reply-To) nor one of the sender's own
  outside mailboxes among the recipients (``ctx.sender_aliases``),
* not internal (``ctx.org.is_internal``) and not a configured mailing list,
* not an automated or list mailbox (``noreply@``, ``mailer-daemon@``, ``newsletter@``, list
  ``owner-…@`` / ``…-request@``; see ``leakguard.message.textaddr.is_automated_local``):
  those are not anyone's contact data,
* not, in a quoted bulk message (``QuotedBlock.bulk``: a newsletter, marketing mail or
  automated notice), one of its senders (From/Reply-To/Sender) or a role mailbox
  (``customercare@``, ``website@``, ``info@``; ``textaddr.is_personal_address``): those are
  the sender organisation's published contact points. Personal-looking addresses in its
  body (``john.smith@``, ``John Smith <info@…>``) still count, and the same address found
  in a message that is not bulk counts there,
* not among this message's recipients (envelope, To, Cc, Bcc) nor one of them (or the
  sender) under another address: same registrable domain and evidently the same person
  (``same_person``: the same name tokens in another order or with digits added, one typo
  in a long local part, or the same full display name),
* and news to at least one external recipient: one who did not take part (From/To/Cc) in
  any quoted message where the address appears, nor in any message that quotes it (a
  person who took part in a block has seen every block nested inside it; a participant
  who is a recipient under another address counts as that recipient).

Nothing counts when no recipient is external (mailing lists are not external recipients, and
neither are the sender's own outside mailboxes: nothing the sender forwards is news to them).
One ``Finding`` per address, with its best location (header lines before bodies, plain text
before the HTML alternative that repeats it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from leakguard.detectors import DetectorResult
from leakguard.message.textaddr import is_automated_local, is_personal_address
from leakguard.organization import Context, registrable_domain
from leakguard.types import Address, Finding, Message, QuotedBlock, QuoteKind

FACT = "quoted_third_party_addresses"
DETECTOR = "threads"

_KIND_EN = {
    QuoteKind.HEADER_BLOCK: "forwarded header block",
    QuoteKind.ATTRIBUTION: "reply quote",
    QuoteKind.GT_QUOTE: "'>' quoted text",
    QuoteKind.HTML_QUOTE: "HTML quote",
    QuoteKind.ATTACHED_MESSAGE: "attached message",
}
_KIND_JA = {
    QuoteKind.HEADER_BLOCK: "転送・引用ヘッダー",
    QuoteKind.ATTRIBUTION: "返信の引用",
    QuoteKind.GT_QUOTE: "「>」で引用された本文",
    QuoteKind.HTML_QUOTE: "HTML の引用部分",
    QuoteKind.ATTACHED_MESSAGE: "添付されたメール",
}
# Lower is better when the same address is found in several places.
_KIND_RANK = {
    QuoteKind.HEADER_BLOCK: 0,
    QuoteKind.ATTACHED_MESSAGE: 1,
    QuoteKind.ATTRIBUTION: 2,
    QuoteKind.HTML_QUOTE: 3,
    QuoteKind.GT_QUOTE: 4,
}
_MAX_ANCESTRY = 64
# Same-person comparisons per message (quoted address x known address at its domain); past
# this, addresses are taken as different people (more findings, never fewer).
_MAX_SAME_PERSON_CHECKS = 5000
_MIN_TYPO_LEN = 7  # a one-edit typo is only trusted on local parts this long (letters only)


def location_en(block: QuotedBlock) -> str:
    """``forwarded header block in text part 1, line 34``."""
    return f"{_KIND_EN[block.kind]} in {block.location}"


_LOC_PART_RE = re.compile(r"(text|HTML) part (\d+)(?:, line (\d+))?")
_LOC_ATT_RE = re.compile(r"attached message (\d+)")


def location_ja(block: QuotedBlock) -> str:
    """The Japanese form of ``location_en`` (``テキスト本文 1 の 34 行目の転送・引用ヘッダー``)."""

    def part(m: re.Match[str]) -> str:
        kind = "テキスト本文" if m.group(1) == "text" else "HTML 本文"
        return f"{kind} {m.group(2)}" + (f" の {m.group(3)} 行目" if m.group(3) else "")

    loc = _LOC_PART_RE.sub(part, block.location)
    loc = _LOC_ATT_RE.sub(lambda m: f"添付メール {m.group(1)}", loc)
    return f"{loc}の{_KIND_JA[block.kind]}"


@dataclass(slots=True)
class _Occurrence:
    index: int  # into Message.quoted_blocks
    block: QuotedBlock
    address: Address
    in_participants: bool


def _ancestry(blocks: tuple[QuotedBlock, ...], idx: int) -> list[int]:
    """``idx`` and the blocks it is nested in, innermost first (cycle- and depth-safe)."""
    out: list[int] = []
    seen: set[int] = set()
    cur: int | None = idx
    while cur is not None and cur not in seen and 0 <= cur < len(blocks):
        out.append(cur)
        seen.add(cur)
        if len(out) >= _MAX_ANCESTRY:
            break
        cur = blocks[cur].parent
    return out


def _rank(occ: _Occurrence) -> tuple[int, int, int]:
    loc = occ.block.location
    return (
        0 if occ.in_participants else 1,
        1 if "HTML part" in loc else 0,
        _KIND_RANK.get(occ.block.kind, 9),
    )


_LETTERS_RE = re.compile(r"[^\W\d_]+")
_DIGITS_RE = re.compile(r"\d+")


def _local_form(local: str) -> tuple[tuple[str, ...], str]:
    """(letter tokens, digits) of a local part: ``Eduardo_Alvarez2`` -> (("eduardo",
    "alvarez"), "2"); a ``+tag`` is dropped."""
    base = local.split("+", 1)[0].lower()
    return tuple(_LETTERS_RE.findall(base)), "".join(_DIGITS_RE.findall(base))


def _name_form(display_name: str) -> tuple[str, ...]:
    """Sorted words of a display name that names a person (two words or more), else ()."""
    if not display_name or "@" in display_name:
        return ()
    words = sorted(w.casefold() for w in _LETTERS_RE.findall(display_name))
    return tuple(words) if len(words) >= 2 else ()


def _one_inner_edit(a: str, b: str) -> bool:
    """Two spellings of one long name token, one typo apart: one insertion, deletion,
    substitution or transposition, not in the first two letters nor the last one (where
    initials and name endings sit: ``jsmith`` / ``ksmith``, ``maria`` / ``mario``)."""
    if min(len(a), len(b)) < _MIN_TYPO_LEN or OSA.distance(a, b, score_cutoff=1) != 1:
        return False
    n = min(len(a), len(b))
    pre = 0
    while pre < n and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and a[-1 - suf] == b[-1 - suf]:
        suf += 1
    return pre >= 2 and suf >= 1


def same_person(a: Address, b: Address) -> bool:
    """Whether two addresses are evidently one person's: the same registrable domain and
    the same full display name, or local parts with the same letter tokens (in any order,
    with any separators: ``eduardo_alvarez`` / ``alvarez.eduardo``, ``ojones`` /
    ``ojones01``) or one typo apart in one long token (``sreyerson`` / ``sryerson``,
    ``margaret.smith`` / ``margret.smith``).

    Different people at one company stay different: initials must agree (``sato.k`` /
    ``sato.y``, ``jsmith`` / ``ksmith``, ``john.a.smith`` / ``john.b.smith``), differing
    digits are different mailboxes (``jsmith1`` / ``jsmith2``), and names shorter than
    seven letters get no typo tolerance (``jsmith`` / ``jsmyth``, ``yuki.sato`` /
    ``yuka.sato``).
    """
    if a.key == b.key:
        return True
    if not a.domain or not b.domain:
        return False
    if a.domain != b.domain and registrable_domain(a.domain) != registrable_domain(b.domain):
        return False
    na = _name_form(a.display_name)
    if na and na == _name_form(b.display_name):
        return True
    ta, da = _local_form(a.local)
    tb, db = _local_form(b.local)
    if not ta or not tb or (da and db and da != db):
        return False
    ja, jb = "".join(ta), "".join(tb)
    if len(ja) < 4 or len(jb) < 4:
        return False
    if ja == jb or sorted(ta) == sorted(tb):
        return True
    if len(ta) != len(tb):
        return False
    diff = [(x, y) for x, y in zip(ta, tb, strict=True) if x != y]
    return len(diff) == 1 and _one_inner_edit(*diff[0])


class _Identities:
    """Which quoted address is a known person (a recipient, the sender) under another
    address; each key is decided once, with a bounded number of comparisons."""

    def __init__(self, known: list[Address]) -> None:
        self._by_domain: dict[str, list[Address]] = {}
        for a in known:
            if a.domain:
                self._by_domain.setdefault(registrable_domain(a.domain), []).append(a)
        self._memo: dict[str, str | None] = {}
        self._checks = 0

    def of(self, a: Address) -> str | None:
        """The key of the known address ``a`` evidently is, or None."""
        k = a.key
        if k in self._memo:
            return self._memo[k]
        found: str | None = None
        if a.domain:
            for known in self._by_domain.get(registrable_domain(a.domain), ()):
                if self._checks >= _MAX_SAME_PERSON_CHECKS:
                    break
                self._checks += 1
                if same_person(a, known):
                    found = known.key
                    break
        self._memo[k] = found
        return found


def detect(msg: Message, ctx: Context) -> DetectorResult:
    org = ctx.org
    rcpts: dict[str, Address] = {}
    for a in (*msg.to, *msg.cc, *msg.bcc, *msg.envelope_rcpts):  # display names first
        if a.domain:
            rcpts.setdefault(a.key, a)
    aliases = ctx.sender_aliases
    external = [
        a
        for a in rcpts.values()
        if a.key not in aliases and not org.is_internal(a) and not org.is_mailing_list(a)
    ]
    if not external or not msg.quoted_blocks:
        return DetectorResult(facts={FACT: 0})

    excluded: set[str] = set(rcpts) | aliases
    senders = [*msg.from_, *msg.reply_to]
    for opt in (msg.envelope_from, msg.sender_header):
        if opt is not None:
            senders.append(opt)
    excluded.update(a.key for a in senders)
    # a quoted address that is a recipient or the sender under another address
    identities = _Identities([*rcpts.values(), *senders])

    blocks = msg.quoted_blocks
    # who has seen each block: its participants and those of every block it is nested in
    external_keys = {a.key for a in external}
    block_keys: list[set[str]] = []
    for b in blocks:
        keys = {p.key for p in b.participants}
        for p in b.participants:
            if p.key not in external_keys and not org.is_internal(p):
                same = identities.of(p)
                if same is not None:
                    keys.add(same)
        block_keys.append(keys)
    seen_by: list[frozenset[str]] = []
    for i in range(len(blocks)):
        seen: set[str] = set()
        for j in _ancestry(blocks, i):
            seen |= block_keys[j]
        seen_by.append(frozenset(seen))

    occurrences: dict[str, list[_Occurrence]] = {}
    for i, b in enumerate(blocks):
        pkeys = {p.key for p in b.participants}
        bulk_senders = {a.key for a in b.senders} if b.bulk else set()
        for a in b.addresses:
            k = a.key
            if k in excluded or not a.domain:
                continue
            if b.bulk and (k in bulk_senders or not is_personal_address(a)):
                continue  # a broadcast's own published contact points, here
            occs = occurrences.get(k)
            if occs is None:
                if (
                    org.is_internal(a)
                    or org.is_mailing_list(a)
                    or is_automated_local(a.local)
                    or identities.of(a) is not None
                ):
                    excluded.add(k)  # decided once per address
                    continue
                occs = occurrences[k] = []
            occs.append(_Occurrence(i, b, a, k in pkeys))

    findings: list[Finding] = []
    for k, occs in occurrences.items():
        finding = _finding_for(k, occs, seen_by, external)
        if finding is not None:
            findings.append(finding)
    return DetectorResult(facts={FACT: len(findings)}, findings=tuple(findings))


def _finding_for(
    key: str,
    occs: list[_Occurrence],
    seen_by: list[frozenset[str]],
    external: list[Address],
) -> Finding | None:
    """One finding for one address, or None when every external recipient has seen it."""
    seen: set[str] = set()
    for occ in occs:
        seen |= seen_by[occ.index]
    news_to = [r for r in external if r.key not in seen]
    if not news_to:
        return None
    best = min(occs, key=_rank)
    blk = best.block
    addr = best.address
    shown = addr.display()
    loc_en = location_en(blk)
    loc_ja = location_ja(blk)
    news = ", ".join(r.addr for r in news_to)
    evidence: dict[str, str] = {
        "location": loc_en,
        "location_ja": loc_ja,
        "kind": blk.kind.value,
        "news_to": news,
        "detail_ja": f"{loc_ja}に第三者のアドレス {shown} があり、{news} には初めて知らされます",
    }
    author = next(iter(blk.participants), None) if blk.kind != QuoteKind.GT_QUOTE else None
    if author is not None and author.key != key:
        evidence["quoted_from"] = author.display()
    if blk.subject:
        evidence["quoted_subject"] = blk.subject
    return Finding(
        detector=DETECTOR,
        fact=FACT,
        addresses=(addr.addr,),
        detail=f"Third-party address {shown} appears in the {loc_en}; it is news to {news}",
        evidence=evidence,
    )
