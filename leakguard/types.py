"""Shared runtime types and protocols.

Everything that crosses a step of the flow (parse -> detect -> decide -> act) is defined
here as a frozen dataclass, so each step imports only from this module and the steps before
it. Pydantic is used only at the configuration boundary (policy and service config).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox.

    ``addr`` is the canonical comparison key: ``local@domain`` with the local part as written
    (case kept, but see ``key``) and the domain lower-cased in its IDNA A-label (punycode)
    form, so ``user@例え.jp`` and ``user@xn--r8jz45g.jp`` compare equal.
    """

    local: str
    domain: str  # lower-case, IDNA A-label ("xn--...") form; "" when the address has no domain
    display_name: str = ""  # decoded (RFC 2047), whitespace-collapsed
    unicode_domain: str = ""  # U-label form for display; equals ``domain`` when ASCII

    # ``local@domain``, and its case-insensitive form (the identity used for de-duplication
    # and set membership): computed once, not on every look (the detectors look about 400
    # times a decision; as properties they were an eighth of a held mail's decision CPU)
    addr: str = field(init=False, repr=False, compare=False)
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        addr = f"{self.local}@{self.domain}" if self.domain else self.local
        object.__setattr__(self, "addr", addr)
        object.__setattr__(self, "key", addr.lower())

    def display(self) -> str:
        shown = f"{self.local}@{self.unicode_domain or self.domain}" if self.domain else self.local
        return f"{self.display_name} <{shown}>" if self.display_name else shown

    def __str__(self) -> str:
        return self.addr


# --------------------------------------------------------------------------- message view


class QuoteKind(enum.StrEnum):
    HEADER_BLOCK = (
        "header-block"  # "-----Original Message-----", "From: ... Sent: ...", 差出人/送信日時
    )
    ATTRIBUTION = "attribution"  # "On <date>, X <x@y> wrote:" / "X さんは書きました:"
    GT_QUOTE = "gt-quote"  # ">"-prefixed lines without a recognised attribution
    HTML_QUOTE = "html-quote"  # gmail_quote, Outlook divRplyFwdMsg, <blockquote>
    ATTACHED_MESSAGE = "attached-message"  # message/rfc822 part


@dataclass(frozen=True, slots=True)
class QuotedBlock:
    """One quoted or forwarded message found inside the mail.

    ``participants`` are the From/To/Cc of the quoted message when known (header blocks,
    attached messages; only the author for attributions). ``addresses`` are every address
    that appears anywhere in the block: its header lines and its quoted body text.
    ``parent`` is the index (into ``Message.quoted_blocks``) of the block this one is
    nested in, or None for a block quoted directly by the new mail. A person who took part
    in a block has seen every block nested inside it. ``bulk`` marks a quoted broadcast
    (newsletter, notification) and ``senders`` holds its From/Reply-To/Sender.
    """

    kind: QuoteKind
    location: str  # human-readable: "text part 1, line 34", "attached message 2"
    participants: tuple[Address, ...]
    addresses: tuple[Address, ...]
    parent: int | None = None
    subject: str = ""
    participants_known: bool = True  # False when only the author is known (attribution lines)
    # The quoted message is evidently bulk mail (unsubscribe footer, List-* / Precedence:
    # bulk headers, automated author): a broadcast, not a person's correspondence.
    bulk: bool = False
    # Its From / Reply-To / Sender when known (header lines, attached message headers,
    # attribution authors).
    senders: tuple[Address, ...] = ()
    # The author's name as the quote shows it, without date, time or verb ("木下 健二" from
    # "2025年2月14日(金) 17:32 木下 健二 <k@x>:"), also when no address is shown ("X wrote:",
    # Outlook 2010's "差出人: 山田 太郎"); "" when unknown.
    author: str = ""


@dataclass(frozen=True, slots=True)
class TextPart:
    """Decoded text of one body part; HTML parts are rendered to text."""

    content_type: str  # "text/plain" or "text/html"
    text: str  # for html: the rendered text
    charset: str  # the charset actually used to decode ("" if unknown)
    path: str  # MIME path, e.g. "1.2"
    html: str = ""  # the decoded HTML source for text/html parts, else ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int  # encoded size in bytes (the body is not decoded unless a detector needs it)
    path: str
    disposition: str = ""
    # Where the encoded body lies in the raw bytes of the message that holds this part
    # (``Message.raw`` of the top mail or of the attached message), and how it is encoded, so
    # ``leakguard.extract`` can decode it later without walking the MIME tree again.
    body_start: int = 0
    body_end: int = 0
    transfer_encoding: str = ""  # Content-Transfer-Encoding, lower-case ("" for 7bit)
    charset: str = ""  # the Content-Type charset parameter, if any (CSV, text, calendar)


@dataclass(frozen=True, slots=True)
class TextSection:
    """Text read from one place of an attachment: a page, a sheet, a slide, a member file.

    Lines are numbered from 1 within ``text`` (split on "\n"), so a finding's location is
    ``AttachmentContent.name`` + ``location`` + line.
    """

    location: str  # "page 3", "sheet 名簿", "slide 2", "" for a file without pages
    text: str


@dataclass(frozen=True, slots=True)
class AttachmentContent:
    """What the extractors (``leakguard.extract``) read from one attachment.

    ``status``: "read" (text came out), "unreadable" (no text layer: a scan, an image),
    "encrypted" (password-protected: a fact, not an error), "uninspected" (over the time or
    memory budget, broken, a bomb: counted in ``Message.uninspected_parts`` too) or
    "skipped" (a kind that carries no text we read, e.g. audio).
    """

    name: str  # display name with its container path: "書類.zip/申請書.pdf"
    kind: str  # "pdf", "docx", "xlsx", "pptx", "odt", "ods", "odp", "csv", "text", "zip",
    # "eml", "msg", "tnef", "ics", "image", "other"
    status: str
    sections: tuple[TextSection, ...] = ()
    detail: str = ""  # why it is unreadable / uninspected (English, for logs)


@dataclass(frozen=True, slots=True)
class Message:
    """Immutable view of one mail, built once by ``leakguard.message.parse``."""

    raw: bytes
    subject: str
    message_id: str
    from_: tuple[Address, ...]
    sender_header: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]  # Bcc header if present (rare in transit); envelope is the truth
    envelope_from: Address | None
    envelope_rcpts: tuple[Address, ...]
    text_parts: tuple[TextPart, ...]  # this message's own parts (attached messages hold theirs)
    attachments: tuple[Attachment, ...]
    attached_messages: tuple[Message, ...]
    quoted_blocks: tuple[QuotedBlock, ...]
    headers: tuple[tuple[str, str], ...]  # decoded (name, value) pairs in order
    defects: tuple[str, ...] = ()
    has_undisclosed_group: bool = False  # "undisclosed-recipients:;" or another empty group
    # Parts or subtrees the parser did not read because a size, count or depth limit was
    # reached (recorded in ``defects`` too): the detectors could not see what is in them.
    uninspected_parts: int = 0
    # Text read from attachments (PDF, Office, ODF, CSV, ZIP members, ...), filled in by
    # ``leakguard.extract`` after the MIME walk, off the event loop and within a budget.
    contents: tuple[AttachmentContent, ...] = ()
    # Attendees of text/calendar invitations: people who see each other, like To/Cc.
    calendar_attendees: tuple[Address, ...] = ()
    # UIDs of those invitations (RFC 5545): every update of one meeting carries the same UID,
    # so the relay's thread record knows who was already invited together.
    calendar_uids: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def visible_recipients(self) -> tuple[Address, ...]:
        """To + Cc, de-duplicated case-insensitively, in order of appearance."""
        seen: set[str] = set()
        out: list[Address] = []
        for a in (*self.to, *self.cc):
            if a.domain and a.key not in seen:
                seen.add(a.key)
                out.append(a)
        return tuple(out)

    @property
    def sender(self) -> Address | None:
        """Who sends: envelope sender, else the first From address."""
        if self.envelope_from is not None and self.envelope_from.domain:
            return self.envelope_from
        return self.from_[0] if self.from_ else None

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


# --------------------------------------------------------------------------- findings and facts


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of evidence produced by a detector.

    ``fact`` names the fact of DESIGN §2 the finding counts towards. ``addresses`` are the
    recipient (or quoted) addresses concerned. ``detail`` is a short English sentence for
    logs and ``leakguard check``; ``evidence`` carries machine-readable specifics that the
    notice and the review page render in the user's language (e.g. ``similar_to``,
    ``location``, ``domain``, ``resembles``, ``score``).
    """

    detector: str
    fact: str
    addresses: tuple[str, ...]
    detail: str
    evidence: Mapping[str, str] = field(default_factory=dict)


Facts = Mapping[str, int]

# --------------------------------------------------------------------------- decisions


class Action(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - an action name, not a password
    BCC = "bcc"
    DELAY = "delay"
    HOLD = "hold"
    REJECT = "reject"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {
    Action.PASS: 0,
    Action.BCC: 1,
    Action.DELAY: 2,
    Action.HOLD: 3,
    Action.REJECT: 4,
}


@dataclass(frozen=True, slots=True)
class Localized:
    """A text in Japanese and English."""

    ja: str
    en: str

    def get(self, lang: str) -> str:
        return self.ja if lang.lower().startswith("ja") else self.en


@dataclass(frozen=True, slots=True)
class RuleMatch:
    rule_id: str
    action: Action
    reason: Localized
    mode: Literal["enforce", "audit"] = "enforce"
    approval: str | None = None  # "supervisor", an address, or "group:<name>"
    delay_seconds: int | None = None
    findings: tuple[Finding, ...] = ()  # the findings behind the facts this rule tested


@dataclass(frozen=True, slots=True)
class Verdict:
    """The policy engine's decision for one message. The relay executes it."""

    action: Action
    rules: tuple[RuleMatch, ...]  # enforced rules that matched, most protective first
    audit_rules: tuple[RuleMatch, ...]  # audit-mode rules that matched (logged, not acted on)
    facts: Facts
    findings: tuple[Finding, ...]
    offer_bcc: bool = False  # a hold that also matched a bcc rule offers "release as Bcc"
    approval: str | None = None
    delay_seconds: int | None = None
    policy_version: str = ""

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.rule_id for r in self.rules)
