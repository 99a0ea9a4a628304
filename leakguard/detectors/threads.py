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
* not a mailing list's posting address (``is_list_address``: a quoted ``List-Post``,
  list-style local parts and list hosts), nor a government desk (``is_government_domain``
  and ``is_desk_address``),
* not, in a quoted broadcast or official notice (``_is_notice``: bulk, or a notice subject
  such as 周知依頼 / お知らせ / 開催案内), a desk, role or event mailbox (``jimukyoku@``,
  ``entry@``, ``sponsor@``, ``子育て支援課 <…>``) or any government address. A private
  company's role address in an ordinary thread still counts,
* and news to at least one external recipient: one who did not take part (From/To/Cc) in
  any quoted message where the address appears, nor in any message that quotes it (a
  person who took part in a block has seen every block nested inside it; a participant
  who is a recipient under another address counts as that recipient), and who is not a
  colleague of the quoted person in a thread written from their organisation
  (``_workplace``: the same exact mail domain as the address and as an author of every
  quoted message carrying it; never at a free-mail domain).

Fact ``forwards_to_own_mailbox``: 1 when a recipient is the sender's own outside mailbox
(``ctx.sender_aliases``) and the mail carries other people's data: a document attachment,
or quoted third parties computed as if that mailbox were an outsider's (two or more, or one
that is not on the author's side of the quoted mail: the sender's own correspondent writing
to the sender does not count).

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
from leakguard.message.textaddr import (
    is_automated_local,
    is_personal_address,
    looks_like_person_name,
)
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


_GOV_DOMAIN_RE = re.compile(
    r"(?:^|\.)(?:go\.jp|lg\.jp|(?:pref|city|town|vill)\.[a-z0-9-]{1,40}\.jp)$"
)
# Desk and event mailboxes written in romaji (総務, 広報, 事務局, 企画課, 受付, 問い合わせ,
# entry, sponsor ...), with an optional section suffix (-ka 課, -kakari 係, -shitsu 室) and
# digits; together with ``is_role_local``'s English desk words.
_DESK_WORDS = (
    "jimukyoku|jimu|koho|kouhou|kohou|soumu|somu|shomu|syomu|kikaku|zaisei|jinji|keiri|"
    "kyoiku|kyouiku|gakumu|kyomu|kyoumu|bosai|bousai|kenko|kenkou|fukushi|kankyo|kankyou|"
    "shimin|kokusai|tokei|toukei|chosa|chousa|kanri|uketsuke|madoguchi|sodan|soudan|"
    "toiawase|otoiawase|hisho|nyushi|renkei|suishin|seisaku|shinko|shinkou|kaigi|jigyo|"
    "jigyou|hojo|hojokin|shinsei|kenshu|kensyu|sangaku|kyodo|kyoudou|"
    "entry|entries|sponsor|sponsors|secretariat|registration|register|regist|apply|"
    "application|applications|moshikomi|boshu|event|seminar|conference|symposium|"
    "office|staff|contact|info|press|pr|public|kouhou|ka|kakari|shitsu|sitsu|kyoku|center"
)
_DESK_WORD_SET = frozenset(_DESK_WORDS.split("|"))
_DESK_WORD_SIZES = tuple(sorted({len(w) for w in _DESK_WORD_SET}))
_DESK_SPLIT_RE = re.compile(r"[-_.]")
_DESK_TAIL_RE = re.compile(r"[-_.]?\d*$")


def _made_of_desk_words(local: str) -> bool:
    """``soumu-ka``, ``jimukyoku``, ``kikaku.kakari2``: separator-joined tokens, each a
    concatenation of desk words, with optional trailing digits. Linear: one dynamic-
    programming pass per token (no regex backtracking over ambiguous splits)."""
    base = _DESK_TAIL_RE.sub("", local, count=1)
    if not base:
        return False
    for token in _DESK_SPLIT_RE.split(base):
        n = len(token)
        if not n:
            return False
        ok = [True] + [False] * n
        for start in range(n):
            if not ok[start]:
                continue
            for size in _DESK_WORD_SIZES:
                end = start + size
                if end <= n and not ok[end] and token[start:end] in _DESK_WORD_SET:
                    ok[end] = True
        if not ok[n]:
            return False
    return True


# A display name that is a section or a desk, not a person: 子育て支援課, 総務部 人事課,
# 研修事務局, 相談窓口, お客様センター (no parentheses: 山田 太郎(総務課) is a person).
_DESK_NAME_RE = re.compile(
    r"[^()（）<>@]{0,30}(?:課|係|室|事務局|窓口|センター|担当|本部|委員会|協議会|局|部|"
    r"[Oo]ffice|[Dd]esk|[Ss]ecretariat)"
)
_GOV_CODE_LOCAL_RE = re.compile(r"[a-z]{1,3}[-_]?\d{3,8}")  # a0012345@pref...lg.jp
# Posting addresses of mailing lists: list-style local parts and list hosts.
_LIST_LOCAL_RE = re.compile(
    r"[a-z0-9._-]{1,60}[-_.](?:ml|list|lists|users|devel|dev|announce|discuss|talk|members|"
    r"all|group|forum)|(?:ml|list)[-_.][a-z0-9._-]{1,60}"
)
_LIST_HOST_RE = re.compile(r"^(?:lists?|ml|listserv|mailman|groups)\.")
_LIST_DOMAINS = frozenset({"googlegroups.com", "groups.io", "freeml.com", "yahoogroups.com"})
_MAILTO_RE = re.compile(r"mailto:([^>?,\s]{3,254})", re.IGNORECASE)
# Subjects of official notices and announcements (周知依頼, お知らせ, 開催案内, 募集,
# 〜について(通知) ...). A plain ご案内 is not one: sales threads use it too.
_NOTICE_RE = re.compile(
    r"周知|お知らせ|お報せ|開催|募集|公募|説明会|セミナー|研修会|シンポジウム|イベント|告知|広報|"
    r"[（(](?:通知|依頼|事務連絡)[)）]|"
    r"\b(?:announcement|invitation|call for|webinar|seminar|newsletter)s?\b",
    re.IGNORECASE,
)
_MAX_MESSAGES = 256  # attached messages read for List-Post headers
OWN_FACT = "forwards_to_own_mailbox"


def is_government_domain(domain: str) -> bool:
    """A Japanese government domain: ``*.go.jp``, ``*.lg.jp``, ``pref.X.jp``, ``city.X.jp``."""
    return _GOV_DOMAIN_RE.search(domain.lower()) is not None


def is_desk_address(addr: Address) -> bool:
    """A desk, role or event mailbox rather than a person: English role words
    (``is_personal_address`` is False: ``info@``, ``contact@``, ``support@``) or romaji desk
    words (``jimukyoku@``, ``koho@``, ``soumu-ka@``, ``entry@``, ``sponsor@``) or a section's
    display name (``子育て支援課 <kosodate@…>``), unless the display name is a person's
    (``山田 太郎 <info@…>``)."""
    if not is_personal_address(addr):
        return True
    base = addr.local.lower().split("+", 1)[0]
    if len(base) > 64 or looks_like_person_name(addr.display_name):
        return False
    if _made_of_desk_words(base):
        return True
    name = addr.display_name.strip().strip("\"'")
    if name and len(name) <= 40 and _DESK_NAME_RE.fullmatch(name) is not None:
        return True
    return is_government_domain(addr.domain) and _GOV_CODE_LOCAL_RE.fullmatch(base) is not None


def is_list_address(addr: Address, list_posts: frozenset[str] = frozenset()) -> bool:
    """The posting address of a mailing list: named by a quoted message's ``List-Post``,
    a list-style local part (``xxx-ml@``, ``ml-xxx@``, ``xxx-users@``, ``xxx-announce@``,
    ``xxx-all@``) or a list host (``lists.example.org``, ``googlegroups.com``)."""
    if addr.key in list_posts:
        return True
    local = addr.local.lower()
    if len(local) <= 64 and _LIST_LOCAL_RE.fullmatch(local) is not None:
        return True
    return (
        _LIST_HOST_RE.match(addr.domain) is not None
        or registrable_domain(addr.domain) in _LIST_DOMAINS
    )


def _list_posts(msg: Message) -> frozenset[str]:
    """``List-Post`` addresses of the mail and its attached messages (bounded walk)."""
    out: set[str] = set()
    stack = [msg]
    n = 0
    while stack and n < _MAX_MESSAGES:
        m = stack.pop()
        n += 1
        value = m.header("List-Post")
        if value:
            out.update(x.lower() for x in _MAILTO_RE.findall(value[:2000]))
        stack.extend(m.attached_messages)
    return frozenset(out)


def _is_notice(block: QuotedBlock, msg: Message) -> bool:
    """A quoted broadcast or official notice: bulk mail, or a notice subject (its own, or the
    forwarding mail's when the block has none)."""
    if block.bulk:
        return True
    subject = block.subject or msg.subject
    return bool(subject) and _NOTICE_RE.search(subject[:500]) is not None


def _carries_files(msg: Message) -> list[str]:
    """Attachments that are documents, not inline pictures of a signature or layout."""
    out: list[str] = []
    for a in msg.attachments:
        inline = a.disposition.lower() == "inline"
        if inline and a.content_type.lower().startswith("image/"):
            continue
        out.append(a.filename or a.content_type)
    return out


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
    own = [a for a in rcpts.values() if a.key in aliases]
    findings: list[Finding] = []
    if external and msg.quoted_blocks:
        findings = [f for f, _ in _third_parties(msg, ctx, rcpts, external)]
    facts = {FACT: len(findings), OWN_FACT: 0}
    if own:
        # The sender's own outside mailbox is the sender: nothing is news to it. But the mail
        # leaves the organisation all the same; what it carries is judged as if that mailbox
        # were an outsider's. One correspondent's own mail to the sender (a friend, a
        # recruiter, a shop naming its own desk) is the sender's correspondence; other
        # people's data is a document, two outsiders' addresses, or an outsider in someone
        # else's mail (Cc, body).
        found = _third_parties(msg, ctx, rcpts, own) if msg.quoted_blocks else []
        carried = [f for f, _ in found]
        others = len(found) >= 2 or any(not author_side for _, author_side in found)
        files = _carries_files(msg)
        if others or files:
            facts[OWN_FACT] = 1
            people = [f.addresses[0] for f in carried]
            evidence = {"third_parties": str(len(people)), "attachments": str(len(files))}
            if people:
                evidence["third_party_addresses"] = ", ".join(people[:8])
            if files:
                evidence["attachment_names"] = ", ".join(files[:8])
            findings.append(
                Finding(
                    detector=DETECTOR,
                    fact=OWN_FACT,
                    addresses=tuple(a.addr for a in own),
                    detail=(
                        f"Sent to the sender's own outside mailbox with {len(people)} "
                        f"third-party address(es) and {len(files)} attachment(s)"
                    ),
                    evidence=evidence,
                )
            )
    return DetectorResult(facts=facts, findings=tuple(findings))


def _third_parties(
    msg: Message, ctx: Context, rcpts: dict[str, Address], external: list[Address]
) -> list[tuple[Finding, bool]]:
    """One finding per quoted third-party address that is news to one of ``external``, and
    whether it is on the author's side of every quoted mail it appears in: the author
    (From/Reply-To) or an address at the author's workplace (``_workplace``)."""
    org = ctx.org
    aliases = ctx.sender_aliases
    excluded: set[str] = set(rcpts) | aliases
    senders = [*msg.from_, *msg.reply_to]
    for opt in (msg.envelope_from, msg.sender_header):
        if opt is not None:
            senders.append(opt)
    excluded.update(a.key for a in senders)
    # a quoted address that is a recipient or the sender under another address
    identities = _Identities([*rcpts.values(), *senders])
    list_posts = _list_posts(msg)

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
    desks: dict[str, bool] = {}  # key -> a desk or government address (decided once)
    for i, b in enumerate(blocks):
        pkeys = {p.key for p in b.participants}
        bulk_senders = {a.key for a in b.senders} if b.bulk else set()
        notice: bool | None = None
        for a in b.addresses:
            k = a.key
            if k in excluded or not a.domain:
                continue
            if b.bulk and (k in bulk_senders or not is_personal_address(a)):
                continue  # a broadcast's own published contact points, here
            if notice is None:
                notice = _is_notice(b, msg)
            if notice:
                desk = desks.get(k)
                if desk is None:
                    desk = desks[k] = is_government_domain(a.domain) or is_desk_address(a)
                if desk:
                    continue  # a notice's published desks and its official contacts
            occs = occurrences.get(k)
            if occs is None:
                if (
                    org.is_internal(a)
                    or org.is_mailing_list(a)
                    or is_automated_local(a.local)
                    or is_list_address(a, list_posts)
                    or (is_government_domain(a.domain) and is_desk_address(a))
                    or identities.of(a) is not None
                ):
                    excluded.add(k)  # decided once per address
                    continue
                occs = occurrences[k] = []
            occs.append(_Occurrence(i, b, a, k in pkeys))

    rcpt_orgs = {r.key: _workplace(r, ctx) for r in external}
    # computed once: a quote bomb has thousands of quoted addresses and a mail can have
    # thousands of recipients (issue 12 fuzz: 6,100 x 1,600 took 20 s in ``Address.key``)
    ext = _Externals([(r, r.key) for r in external], ", ".join(r.addr for r in external), rcpt_orgs)
    findings: list[tuple[Finding, bool]] = []
    for k, occs in occurrences.items():
        finding = _finding_for(k, occs, seen_by, ext, ctx)
        if finding is not None:
            where = _workplace(occs[0].address, ctx)
            author_side = all(
                any(a.key == k or _workplace(a, ctx) == where for a in o.block.senders)
                for o in occs
            )
            findings.append((finding, author_side))
    return findings


def _workplace(addr: Address, ctx: Context) -> str:
    """Where an address works, for "a colleague of the quoted person": its exact mail domain
    (stricter than the registrable domain, which shared hosts and holding companies span),
    the partner for a distribution partner, and the address itself for free-mail."""
    if ctx.org.is_freemail_domain(addr.domain):
        return addr.key
    dist = ctx.org.distribution_partner_of(addr.domain)
    return f"partner:{dist.domain}" if dist is not None else addr.domain


@dataclass(frozen=True, slots=True)
class _Externals:
    """The external recipients with their keys, all of them listed (the common ``news_to``,
    one shared string), and each one's workplace."""

    keyed: list[tuple[Address, str]]
    all_listed: str
    orgs: dict[str, str]


def _finding_for(
    key: str,
    occs: list[_Occurrence],
    seen_by: list[frozenset[str]],
    ext: _Externals,
    ctx: Context,
) -> Finding | None:
    """One finding for one address, or None when every external recipient has seen it or is
    a colleague of the quoted person (``_workplace``; never at a free-mail domain, where
    every address is a person of its own) in a thread written from their organisation."""
    seen: set[str] = set()
    for occ in occs:
        seen |= seen_by[occ.index]
    quoted_org = _workplace(occs[0].address, ctx)
    # Written from the quoted person's own organisation (they or a colleague authored every
    # quoted message that carries the address): their colleagues among the recipients can
    # reach them anyway. A mail of ours addressed to them and re-sent to a colleague of theirs
    # is not covered: that is the wrong-person send the check is for.
    own_org_thread = all(
        any(_workplace(a, ctx) == quoted_org for a in occ.block.senders) for occ in occs
    )
    news_to = [
        r
        for r, rk in ext.keyed
        if rk not in seen and not (own_org_thread and ext.orgs[rk] == quoted_org)
    ]
    if not news_to:
        return None
    best = min(occs, key=_rank)
    blk = best.block
    addr = best.address
    shown = addr.display()
    loc_en = location_en(blk)
    loc_ja = location_ja(blk)
    news = ext.all_listed if len(news_to) == len(ext.keyed) else ", ".join(r.addr for r in news_to)
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
