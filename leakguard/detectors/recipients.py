"""Recipients and organisations: who can see whom, and who is new.

Facts: ``visible_external_recipients``, ``visible_external_organizations``,
``exposed_external_organizations`` (the same, but 0 when every two visible external
recipients have already met: in a quoted message of the thread, in a mail of the thread the
relay itself sent, or as authors of nested quoted replies; see ``already_acquainted``),
``visible_external_groups``, ``bcc_rewrite_exposed``, ``external_recipients``,
``external_organizations``, ``first_time_external_recipients``, ``recipients``,
``message_size`` (``attachments`` is counted by the attachments detector).

Who sees whom:

* "Visible" recipients are To, Cc and the attendees of a calendar invitation
  (``Message.calendar_attendees``): an invitation shows every attendee to every other.
* An organisation is ``Organization.organization_of_address``: the registrable domain, except
  that every free-mail / mobile-carrier address (``gmail.com``, ``docomo.ne.jp``; the list
  is organisation data) is a person of its own, and every address at a partner marked
  ``distribution: true`` is that partner.
* ``visible_external_groups`` counts visible external recipients with all the addresses of
  one distribution partner as one group (an education board writing to its 14 principals
  at one school network is that network's internal distribution).
* ``bcc_rewrite_exposed`` counts visible external recipients whose address the mail itself
  still shows (its text, quoted or forwarded headers and bodies, attached messages,
  attachment text, the invitation's attendee list): moving them to Bcc would not hide them.
  It is 0 with fewer than two visible external recipients, and 0 for a reply-all in a
  thread where one of them wrote to them all (a quoted message from one of them lists
  every one), unless a quoted ``Bcc:`` line lists one of them (Bcc recipients never saw
  each other). The sender's own earlier mail to them all does not count: it may never
  have been delivered (held, then re-sent as a forward).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator

from leakguard.detectors import DetectorResult
from leakguard.detectors.japanese import NameForms, display_name_forms, romaji_skeleton
from leakguard.message.textaddr import address_keys
from leakguard.organization import Context
from leakguard.types import Address, Finding, Message, QuotedBlock, QuoteKind


def is_external(addr: Address, ctx: Context) -> bool:
    """External: has a domain, is not internal, not a configured mailing list and not the
    sender's own outside mailbox (``ctx.sender_aliases``)."""
    return (
        bool(addr.domain)
        and not ctx.org.is_internal(addr)
        and not ctx.org.is_mailing_list(addr)
        and addr.key not in ctx.sender_aliases
    )


def envelope_recipients(msg: Message) -> tuple[Address, ...]:
    """The envelope recipients, or (no envelope) every header recipient."""
    if msg.envelope_rcpts:
        return msg.envelope_rcpts
    seen: set[str] = set()
    out: list[Address] = []
    for a in (*msg.to, *msg.cc, *msg.bcc):
        if a.domain and a.key not in seen:
            seen.add(a.key)
            out.append(a)
    return tuple(out)


# Above this many visible external recipients nobody is taken as acquainted (the pairwise
# check is quadratic; a mailing that large is judged as one anyway).
MAX_ACQUAINTED = 100
_REPLY_KINDS = (QuoteKind.ATTRIBUTION, QuoteKind.HTML_QUOTE)


def _name_keys(name: str) -> frozenset[str]:
    """Comparable keys of a full name (kanji of four or more characters or two words, or
    romaji words in any order); a surname alone gives none."""
    keys: set[str] = set()
    for f in _name_forms(name[:200]):
        if f.cjk and (f.full or len(f.cjk) >= 4):
            keys.add("cjk:" + f.cjk)
        if f.kana and f.full:
            keys.add("kana:" + f.kana)
        words = sorted(romaji_skeleton(r) for r in f.romaji if len(r) >= 2)
        if f.full and len(words) >= 2 and all(words):
            keys.add("romaji:" + " ".join(words))
    return frozenset(keys)


@functools.lru_cache(maxsize=4096)
def _name_forms(name: str) -> tuple[NameForms, ...]:
    return display_name_forms(name)


def _authors_index(
    visible_ext: list[Address], ctx: Context | None
) -> Callable[[Address], int | None]:
    """Which visible external recipient (index) an attribution's author is: the same
    address, or, for an author known by name only ("山田太郎 wrote:"), the recipient with
    that full name (its display name here or a name the sender used for it before). A
    name-only author is only taken for a recipient the sender wrote to before when the
    sender's history is known: never for a brand-new address."""
    by_key = {a.key: i for i, a in enumerate(visible_ext)}
    by_name: dict[str, int] = {}
    history = ctx.history if ctx is not None else None
    for i, a in enumerate(visible_ext):
        if history is not None and history.known and a.key not in history.recipients:
            continue
        names = [a.display_name] if a.display_name else []
        if history is not None:
            names.extend(history.contact_names.get(a.key, ())[:10])
        for n in names:
            for k in _name_keys(n):
                by_name.setdefault(k, i)

    def find(author: Address) -> int | None:
        if author.domain:
            return by_key.get(author.key)
        if not author.display_name or not by_name:
            return None
        for k in _name_keys(author.display_name):
            if k in by_name:
                return by_name[k]
        return None

    return find


def already_acquainted(
    msg: Message, visible_ext: list[Address], ctx: Context | None = None
) -> bool:
    """True when every two visible external recipients have already met, so that a reply-all
    among them exposes nobody new. Two people have met when

    * both took part (From/To/Cc) in one quoted message whose participants are known (a
      quoted header block, an attached message; a participant named without an address
      is the recipient with that full name, as for attribution authors below);
    * both were in one mail of this thread that the relay itself sent on (its own record,
      looked up by In-Reply-To/References before the detectors run:
      ``ctx.history.sent_together``); a held mail counts once released, as Bcc only with
      what stayed visible;
    * one wrote a reply quoted here with an attribution line ("On Mon, X <x@y> wrote:",
      「… 山田太郎 <…>:」) and the other wrote the message that reply quotes, also under an
      attribution: X answered Y's mail, so each has seen the other's address. Only directly
      nested replies count (a forward between them breaks the chain: the later author may
      have had it from the sender).

    Where unsure (a recipient nobody quoted and the record does not know), they have not
    met: a brand-new mix of organisations is still exposed.
    """
    n = len(visible_ext)
    if n < 2 or n > MAX_ACQUAINTED:
        return False
    index = {a.key: i for i, a in enumerate(visible_ext)}
    met: set[tuple[int, int]] = set()

    def meet(members: Iterable[int]) -> None:
        found = sorted(set(members))
        for x, i in enumerate(found):
            for j in found[x + 1 :]:
                met.add((i, j))

    blocks = msg.quoted_blocks
    author_of = _authors_index(visible_ext, ctx)
    for block in blocks:
        if block.participants_known:
            # a names-only header block (Outlook 2010/2013: "To: Sato Kazuya; Takahashi
            # Kenichi") names its participants by full name
            found = (author_of(p) for p in block.participants)
            meet(i for i in found if i is not None)
    if ctx is not None:
        for group in ctx.history.sent_together:
            meet(index[k] for k in group if k in index)
    if any(b.kind in _REPLY_KINDS and not b.participants_known for b in blocks):

        def authors(b: QuotedBlock) -> set[int]:
            out: set[int] = set()
            for a in (*b.senders, *b.participants):
                i = author_of(a)
                if i is not None:
                    out.add(i)
            return out

        for block in blocks:
            if block.kind not in _REPLY_KINDS or block.participants_known:
                continue
            if block.parent is None or not 0 <= block.parent < len(blocks):
                continue
            parent = blocks[block.parent]
            if parent.kind not in _REPLY_KINDS or parent.participants_known:
                continue
            theirs = authors(parent)
            for i in authors(block):
                for j in theirs:
                    if i != j:
                        met.add((min(i, j), max(i, j)))
    return len(met) == n * (n - 1) // 2


def visible_external(msg: Message, ctx: Context) -> list[Address]:
    """External To/Cc recipients and calendar attendees, de-duplicated, in order (the same
    test as ``is_external``, each address's key computed once)."""
    org = ctx.org
    seen: set[str] = set()
    out: list[Address] = []
    for a in (*msg.to, *msg.cc, *msg.calendar_attendees):
        if not a.domain:
            continue
        k = a.key
        if k in seen:
            continue
        seen.add(k)
        if (
            not org.is_internal_domain(a.domain)
            and k not in org.mailing_lists
            and k not in ctx.sender_aliases
        ):
            out.append(a)
    return out


def recipient_groups(addrs: list[Address], ctx: Context) -> int:
    """Recipients, with every address at one distribution partner counted once."""
    if not ctx.org.has_distribution_partners:
        return len(addrs)
    groups: set[str] = set()
    for a in addrs:
        dist = ctx.org.distribution_partner_of(a.domain)
        groups.add(f"partner:{dist.domain}" if dist is not None else a.key)
    return len(groups)


# A quoted or pasted ``Bcc:`` header line (Outlook writes one when its user forwards a mail
# they sent in Bcc); localised names as in leakguard.message.quotes.
_BCC_LINE_RE = re.compile(
    r"^[ \t>|]{0,20}(?:bcc|cci|ccn|cco|bkopie|密件抄送|密送|숨은 참조)"
    r"[ \t]{0,4}[:：](.{0,100000})$",
    re.IGNORECASE | re.MULTILINE,
)
_MAX_MESSAGES = 256  # attached messages walked for listed addresses


def _messages(msg: Message) -> Iterator[Message]:
    """The mail and every message attached in it (depth-first, bounded)."""
    stack = [msg]
    n = 0
    while stack and n < _MAX_MESSAGES:
        m = stack.pop()
        n += 1
        yield m
        stack.extend(m.attached_messages)


def listed_in_mail(msg: Message, keys: set[str]) -> tuple[set[str], set[str]]:
    """Which of ``keys`` the mail itself shows (text, quoted headers and bodies, attached
    messages, attachment text, invitation attendees), and which of them a quoted ``Bcc:``
    line or an attached message's Bcc lists."""
    listed: set[str] = set()
    on_bcc: set[str] = set()
    for blk in msg.quoted_blocks:
        listed.update(a.key for a in blk.addresses if a.key in keys)
    listed.update(a.key for a in msg.calendar_attendees if a.key in keys)
    texts: list[str] = []
    for i, m in enumerate(_messages(msg)):
        texts.extend(p.text for p in m.text_parts)
        if i:  # an attached message's own headers are shown by every client
            heads = (*m.from_, *m.to, *m.cc, *m.reply_to)
            listed.update(a.key for a in heads if a.key in keys)
            bcc = {a.key for a in m.bcc if a.key in keys}
            listed |= bcc
            on_bcc |= bcc
    for content in msg.contents:
        texts.extend(sec.text for sec in content.sections)
    for text in texts:
        if "@" not in text and "＠" not in text:
            continue
        listed |= address_keys(text) & keys
        if "cc" in text.lower() or "密" in text or "참조" in text:
            for line in _BCC_LINE_RE.finditer(text):
                on_bcc |= address_keys(line.group(1)) & keys
    return listed, on_bcc


def _met_in_their_own_thread(msg: Message, keys: set[str]) -> bool:
    """Every recipient in ``keys`` took part in one quoted message that one of them wrote.

    Stricter than ``already_acquainted``: the sender's own earlier mail to them all is no
    proof that it reached them (it may have been held and discarded, and is now being
    re-sent as a forward); a reply from one of them is."""
    for block in msg.quoted_blocks:
        if not block.participants_known or not any(a.key in keys for a in block.senders):
            continue
        if keys <= {p.key for p in block.participants}:
            return True
    return False


def detect(msg: Message, ctx: Context) -> DetectorResult:
    org = ctx.org
    visible_ext = visible_external(msg, ctx)
    visible_orgs = sorted({org.organization_of_address(a) for a in visible_ext})
    groups = recipient_groups(visible_ext, ctx)
    acquainted = already_acquainted(msg, visible_ext, ctx)
    rcpts = envelope_recipients(msg)
    ext = [a for a in rcpts if is_external(a, ctx)]
    ext_orgs = sorted({org.organization_of_address(a) for a in ext})
    findings: list[Finding] = []
    if visible_ext:
        findings.append(
            Finding(
                detector="recipients",
                fact="visible_external_recipients",
                addresses=tuple(a.addr for a in visible_ext),
                detail=f"{len(visible_ext)} external address(es) visible in To/Cc",
                evidence={"count": str(len(visible_ext)), "groups": str(groups)},
            )
        )
    if len(visible_orgs) >= 2:
        findings.append(
            Finding(
                detector="recipients",
                fact="visible_external_organizations",
                addresses=tuple(a.addr for a in visible_ext),
                detail=(
                    f"{len(visible_orgs)} external organisations can see each other: "
                    + ", ".join(visible_orgs)
                ),
                evidence={
                    "organizations": ", ".join(visible_orgs),
                    "already_acquainted": "yes" if acquainted else "no",
                },
            )
        )
    exposed: list[Address] = []
    if len(visible_ext) >= 2:
        keys = {a.key for a in visible_ext}
        listed, on_bcc = listed_in_mail(msg, keys)
        if listed and (on_bcc or not _met_in_their_own_thread(msg, keys)):
            exposed = [a for a in visible_ext if a.key in listed]
    if exposed:
        findings.append(
            Finding(
                detector="recipients",
                fact="bcc_rewrite_exposed",
                addresses=tuple(a.addr for a in exposed),
                detail=(
                    f"{len(exposed)} visible external address(es) are also listed in the mail "
                    "itself (text, quoted headers, attachments or invitation): moving them to "
                    "Bcc would not hide them"
                ),
                evidence={"count": str(len(exposed))},
            )
        )
    first_time: list[Address] = []
    if ctx.history.known:
        first_time = [a for a in ext if a.key not in ctx.history.recipients]
        if first_time:
            findings.append(
                Finding(
                    detector="recipients",
                    fact="first_time_external_recipients",
                    addresses=tuple(a.addr for a in first_time),
                    detail=f"{len(first_time)} external recipient(s) never written to before",
                )
            )
    own = sorted({a.key for a in (*rcpts, *msg.visible_recipients) if a.key in ctx.sender_aliases})
    if own:
        findings.append(
            Finding(
                detector="recipients",
                fact="own_external_addresses",
                addresses=tuple(own),
                detail=f"{len(own)} recipient(s) look like the sender's own outside mailbox",
            )
        )
    if msg.uninspected_parts:
        findings.append(
            Finding(
                detector="recipients",
                fact="uninspected_parts",
                addresses=(),
                detail=(
                    f"{msg.uninspected_parts} part(s) too large, too many or too deeply nested "
                    "to be checked"
                ),
                evidence={"defects": "; ".join(msg.defects[:5])},
            )
        )
    facts = {
        "own_external_addresses": len(own),
        "visible_external_recipients": len(visible_ext),
        "visible_external_organizations": len(visible_orgs),
        "exposed_external_organizations": 0 if acquainted else len(visible_orgs),
        "visible_external_groups": groups,
        "bcc_rewrite_exposed": len(exposed),
        "external_recipients": len(ext),
        "external_organizations": len(ext_orgs),
        "first_time_external_recipients": len(first_time),
        "recipients": len(rcpts),
        "uninspected_parts": msg.uninspected_parts,
        "message_size": msg.size,
    }
    return DetectorResult(facts=facts, findings=tuple(findings))
