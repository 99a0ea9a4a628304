"""Reply commands that mean what the person wrote.

A reply to a hold notice executes a command only when the reply's *new* text (outside quotes
and signatures) is an unambiguous command: the command word (or a plain polite form of it)
alone on its line, optionally followed by a signature. Anything else around the command — a
negation (「送信　しないでください」), a condition ("OK, but wait until I have checked"), a
question, or any other sentence — makes the reply one that asks back; it never releases.

The same reading applies to senders and approvers. This module is pure: the caller runs it
off the event loop (``HoldService.handle_reply``).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

from leakguard.holds.model import HoldState
from leakguard.message.html import html_hazard, render_html
from leakguard.message.parse import parse_message
from leakguard.types import Message

MAX_REPLY_BYTES = 4 * 1024 * 1024  # a reply larger than this is read from its first 4 MiB
MAX_NEW_TEXT = 4000  # new text longer than this is never a bare command
MAX_LINES = 400


class Decision(enum.StrEnum):
    RELEASE = "release"
    RELEASE_BCC = "release_bcc"
    DISCARD = "discard"

    @property
    def to_state(self) -> HoldState:
        return {
            Decision.RELEASE: HoldState.RELEASED,
            Decision.RELEASE_BCC: HoldState.RELEASED_BCC,
            Decision.DISCARD: HoldState.DISCARDED,
        }[self]


class Report(enum.StrEnum):
    """Commands that report a mistake rather than answer the hold (issue 9).

    ``REPORT`` (「報告」, "report") files a report about the mail, open or closed;
    ``MISTAKE`` (「誤送信」, "mistake") discards an open hold as "this was a mistake" and,
    on a hold that is closed already (the mail went out), files a report like ``REPORT``.
    """

    REPORT = "report"
    MISTAKE = "mistake"


class Unclear(enum.StrEnum):
    """Why a reply with text in it was not read as a command (logged; the person is asked
    back with the valid commands)."""

    NONE = ""  # no new text at all
    NEGATION = "negation"
    CONDITION = "condition"
    QUESTION = "question"
    OTHER_TEXT = "other_text"
    SEVERAL = "several_commands"
    BUDGET = "budget"  # reading the reply ran past its budget (issue 12): never a command


@dataclass(frozen=True, slots=True)
class Reading:
    decision: Decision | None
    unclear: Unclear = Unclear.NONE
    line: str = ""  # the (normalised, shortened) line that decided, for logs
    report: Report | None = None  # a report command (then ``decision`` is None)
    note: str = ""  # the text the person wrote after a report command

    @property
    def asks_back(self) -> bool:
        return self.decision is None and self.report is None and self.unclear != Unclear.NONE


def normalize(text: str) -> str:
    """NFKC, case-folded, inner whitespace collapsed, trimmed of closing punctuation (but an
    ellipsis, "OK…", is hesitation: it stays, and the line is then no plain command)."""
    s = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    if s.endswith(("...", "…", "・・")):
        return s
    return s.strip(" \t。．.!！、,")


_VOCABULARY: dict[Decision, tuple[str, ...]] = {
    Decision.RELEASE: (
        "release", "send", "send now", "send it", "ok", "okay", "yes", "approve", "approved",
        "release please", "please release", "please release it", "release it", "please send",
        "yes, release", "yes release",
        "送信", "送信する", "送信します", "送信して", "送信してください", "送信して下さい",
        "送信お願いします", "送信をお願いします", "送信でお願いします", "送信願います",
        "今すぐ送信", "承認", "承認する", "承認します", "承認いたします", "はい",
    ),
    Decision.RELEASE_BCC: (
        "bcc", "release bcc", "release-bcc", "release as bcc", "send as bcc", "send bcc",
        "bcc please", "please bcc", "release as bcc please",
        "bccで送信", "bcc送信", "bccで送信する", "bccで送信します", "bccで送信してください",
        "bccで送信して下さい", "bccでお願いします", "bcc でお願いします",
    ),
    Decision.DISCARD: (
        "discard", "cancel", "withdraw", "delete", "discard it", "cancel it",
        "discard please", "please discard", "cancel please", "please cancel",
        "破棄", "破棄する", "破棄します", "破棄してください", "破棄して下さい",
        "破棄でお願いします",
        "取消", "取り消し", "取消し", "取り消す", "取り消します", "取り消してください",
        "キャンセル", "キャンセルします", "キャンセルしてください", "中止", "中止します",
        "取り下げ", "取下げ", "取り下げます",
    ),
}  # fmt: skip
_COMMANDS: dict[str, Decision] = {
    normalize(w): d for d, words in _VOCABULARY.items() for w in words
}
# Report commands: the word (or a plain form of it) first on its line, then nothing, or a
# separator and the person's note ("報告: 宛先を間違えました", "report\nwrong company").
_REPORT_VOCABULARY: dict[Report, tuple[str, ...]] = {
    Report.REPORT: (
        "報告", "報告する", "報告します", "報告してください", "報告します。",
        "誤送信を報告", "誤送信を報告する", "誤送信を報告します", "誤送信の報告",
        "report", "report it", "report this", "report a mistake", "report mistake",
        "report it please", "please report", "please report it",
    ),
    Report.MISTAKE: (
        "誤送信", "誤送信です", "誤送信でした", "誤送信しました", "誤送信のため破棄",
        "誤送信のため破棄してください", "破棄 (誤送信でした)", "破棄(誤送信でした)",
        "破棄 (誤送信)", "破棄(誤送信)",
        "mistake", "a mistake", "it was a mistake", "this was a mistake", "sent by mistake",
        "discard - this was a mistake", "discard, it was a mistake", "discard as a mistake",
        "discard as mistake",
    ),
}  # fmt: skip
_REPORTS: dict[str, Report] = {
    normalize(w): r for r, words in _REPORT_VOCABULARY.items() for w in words
}
# The longest word first, so that "誤送信を報告" is not read as "誤送信" + note "を報告".
_REPORT_HEAD_RE = re.compile(
    "^(?P<word>"
    + "|".join(re.escape(w) for w in sorted(_REPORTS, key=len, reverse=True))
    + r")(?:$|(?P<sep>\s*[:：]\s*|\s+|\s*[。．.、,]\s*)(?P<rest>.*)$)",
    re.S,
)
MAX_NOTE = 2000
_SENTENCE_END_RE = re.compile(r"[。．.!！?？\n]")
# Command words inside a longer line: their presence without an exact match asks back.
_COMMAND_WORD_RE = re.compile(
    r"送信|承認|破棄|取り?消|取り?下げ|キャンセル|中止|報告|\b(?:release|send|approve|discard"
    r"|cancel|withdraw|bcc|ok|okay|yes|report|mistake)\b",
    re.I,
)
_NEGATION_RE = re.compile(
    r"ない|ません|不要|待っ|待ち|待て|まって|やめ|止め|ストップ|だめ|ダメ|いいえ|否|保留"
    r"|\b(?:not|don'?t|do not|no|nothing|never|wait|hold|stop|nope)\b",
    re.I,
)
_CONDITION_RE = re.compile(
    r"たら|れば|なら|まで|後で|あとで|確認|ただし|但し|けど|けれど|が、"
    r"|\b(?:but|if|until|unless|after|before|once|when|later|check|however)\b",
    re.I,
)
_QUESTION_RE = re.compile(r"[?？]|でしょうか|ますか|ですか|かな")
# Conditions that make a report command conditional ("report later", 「報告 後で」); a note
# may well say what was checked (確認), so the wider ``_CONDITION_RE`` is not used there.
_CONDITION_NOTE_RE = re.compile(
    r"たら|れば|なら|まで|後で|あとで|ただし|但し"
    r"|\b(?:if|until|unless|later|once|tomorrow|after)\b",
    re.I,
)

# Quoted lines (skipped: a person may write below or between them) and where a quoted
# original starts that runs to the end (header blocks of Outlook, Notes, Becky!, ...).
_GT_RE = re.compile(r"^[>＞|]")
_ATTRIBUTION_RE = re.compile(
    r"^(?:on\b.{0,200}\bwrote\s*:?\s*$"
    r"|.{0,200}(?:wrote|書きました|のメール|のメッセージ|からのメール)\s*[:：]\s*$)",
    re.I,
)
_QUOTE_START_RE = re.compile(
    r"^(?:-{2,}\s*(?:original message|forwarded message|元のメッセージ|転送されたメッセージ)"
    r"|_{5,}\s*$"
    r"|(?:from|差出人|送信者|送信元)\s*[:：])",
    re.I,
)
# Signature delimiters ("-- ", lines of rules) and the signatures mobile clients append.
# A delimiter line is made of rule characters only ("-- ", "-----", "━━━"); a line that only
# starts with them ("・・・しないで", "*** 待って ***") is text.
_SIG_DELIM_RE = re.compile(r"^(?:--\s?|[-―─━＿_=＝*＊~〜]{3,})$")
# What mobile clients append, exactly (nothing else on the line).
_MOBILE_SIG_RE = re.compile(
    r"^(?:sent from my (?:iphone|ipad|android(?: phone| device)?|mobile(?: device)?|phone"
    r"|smartphone|galaxy(?: \w+)?|xperia(?: \w+)?|blackberry)"
    r"|get outlook for (?:ios|android)"
    r"|(?:my )?(?:iphone|ipad|android|galaxy|xperia|outlook|gmail) ?(?:から送信|より送信))$",
    re.I,
)
# A signature line looks like a name, a unit, a phone number or an address, not a sentence.
_JA_SENTENCE_RE = re.compile(r"(?:ます|です|ください|下さい|ません|でした|ました|たい|。)")
_EN_FUNCTION_WORDS = frozenset((
    "the", "a", "an", "is", "are", "was", "were", "be", "it", "this", "that", "i", "you", "we",
    "please", "but", "not", "and", "or", "to", "of", "for", "with", "in", "on", "at", "as", "so",
    "do", "does", "did", "have", "has", "can", "will", "would", "should",
))  # fmt: skip
_WORD_RE = re.compile(r"[a-z']+")
# Outlook (desktop, OWA, mobile) puts the quoted original AFTER these, as siblings.
_HTML_CUT_FROM = ("div#divRplyFwdMsg", "div#appendonsend", "hr#stopSpelling")
# Quotes that clients mark as quotes; a bare <blockquote> is the writer's own indentation.
_HTML_QUOTES = (
    "blockquote[type=cite]",
    "blockquote.gmail_quote",
    "div.gmail_quote",
    "div.gmail_extra",
    "div.moz-cite-prefix",
    "div.yahoo_quoted",
    "div#mail-editor-reference-message-container",
)


_HIRAGANA_RE = re.compile(r"[\u3041-\u309f]")
_LATIN_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_NAME_CONNECTORS = frozenset(("of", "and", "the", "for", "de", "du", "van", "von", "at", "in"))


def _sentence_like(line: str) -> bool:
    """Not a signature line: a signature holds names, units, phone numbers, addresses and
    links; anything that reads as a sentence or a phrase is something the person wrote."""
    if _JA_SENTENCE_RE.search(line):
        return True
    words = _WORD_RE.findall(line.casefold())
    if len(words) >= 3 and sum(w in _EN_FUNCTION_WORDS for w in words) >= 2:
        return True
    if "@" in line or "http" in line or "www." in line or any(ch.isdigit() for ch in line):
        return False  # contact details
    latin = _LATIN_WORD_RE.findall(line)
    if any(not w[0].isupper() and w.lower() not in _NAME_CONNECTORS for w in latin):
        return True  # "Scratch that": lower-case words are prose, names are capitalised
    hira = len(_HIRAGANA_RE.findall(line))
    return hira > 0 and hira / max(1, len(line.replace(" ", ""))) >= 0.3


def _classify(line: str) -> Unclear:
    if _NEGATION_RE.search(line):
        return Unclear.NEGATION
    if _CONDITION_RE.search(line):
        return Unclear.CONDITION
    if _QUESTION_RE.search(line):
        return Unclear.QUESTION
    return Unclear.OTHER_TEXT


def _new_lines(text: str) -> list[str]:
    """The lines a person typed: quoted (``>``) lines and their attribution are skipped, and
    reading stops where a quoted original's header block starts."""
    lines = [x.strip() for x in text[: MAX_NEW_TEXT * 4].splitlines()[:MAX_LINES]]
    out: list[str] = []
    for i, line in enumerate(lines):
        if not line:
            out.append(line)
            continue
        norm = unicodedata.normalize("NFKC", line)
        if _GT_RE.match(norm):
            continue
        if _ATTRIBUTION_RE.match(norm):
            following = next((x for x in lines[i + 1 :] if x), "")
            if _GT_RE.match(unicodedata.normalize("NFKC", following)):
                continue  # the attribution of a ">" quote: someone may answer below it
            # Without a ">" quote under it, "…のメール：" / "… wrote:" is something the person
            # wrote (or a quote we cannot tell from it): it is read, and asks back.
        if _QUOTE_START_RE.match(norm):
            break
        out.append(line)
    return out


def read_command(text: str) -> Reading:
    """Read a reply's new text (plain text). Pure and bounded."""
    lines = _new_lines(text)
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        return Reading(None)
    if sum(len(x) for x in lines) > MAX_NEW_TEXT:
        return Reading(None, Unclear.OTHER_TEXT)
    first = normalize(lines[0])
    decision = _COMMANDS.get(first)
    if decision is None:
        report = _read_report(lines)
        if report is not None:
            return report
        return Reading(None, _classify(first), first[:80])
    # The rest must be a signature: after a delimiter, a mobile client's line, or a block
    # after a blank line that holds no sentence, command, negation, condition or question.
    rest = lines[1:]
    # Text right under the command (same paragraph) is part of what they wrote, unless it is
    # a delimiter or a mobile signature.
    if (
        rest
        and rest[0]
        and not (_SIG_DELIM_RE.match(rest[0]) or _MOBILE_SIG_RE.match(normalize(rest[0])))
    ):
        return Reading(None, _classify(normalize(rest[0])), normalize(rest[0])[:80])
    for line in rest:
        if not line:
            continue
        if _SIG_DELIM_RE.match(line):
            break  # everything after a delimiter is the signature
        norm = normalize(line)
        if _MOBILE_SIG_RE.match(norm):
            continue
        if _COMMANDS.get(norm) is not None or _COMMAND_WORD_RE.search(norm):
            return Reading(None, Unclear.SEVERAL, norm[:80])
        for rx, why in (
            (_NEGATION_RE, Unclear.NEGATION),
            (_CONDITION_RE, Unclear.CONDITION),
            (_QUESTION_RE, Unclear.QUESTION),
        ):
            if rx.search(norm):
                return Reading(None, why, norm[:80])
        if _sentence_like(line):
            return Reading(None, Unclear.OTHER_TEXT, norm[:80])
    return Reading(decision, Unclear.NONE, first[:80])


def _note_lines(lines: list[str]) -> list[str]:
    """The note under a report command: up to a signature delimiter; a mobile client's
    signature line is left out. Blank lines at either end are dropped."""
    out: list[str] = []
    for line in lines:
        if line and _SIG_DELIM_RE.match(line):
            break
        if line and _MOBILE_SIG_RE.match(normalize(line)):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return out


def _read_report(lines: list[str]) -> Reading | None:
    """A report command on the first line, with an optional note after it; None when the
    first line is no report command at all (then it is read as any other text).

    The same strictness as the other commands: the word must stand on its own (「報告しないで」
    is no report), and a negation, condition or question in the first sentence of the note
    (「報告 しないで」, "report later", "report?") asks back. Another command on a line of
    its own in the note ("誤送信\n送信") asks back too.
    """
    head = unicodedata.normalize("NFKC", lines[0]).strip()
    first = " ".join(head.casefold().split())
    m = _REPORT_HEAD_RE.match(first)
    if m is None:
        return None
    word = normalize(m.group("word"))
    kind = _REPORTS[word]
    rest_of_line = (m.group("rest") or "").strip()
    if rest_of_line and m.group("sep") is not None and _QUESTION_RE.match(rest_of_line):
        return Reading(None, Unclear.QUESTION, first[:80])
    # the note as written (not case-folded): the part of the first line after the word
    cut = len(head) - len(rest_of_line) if rest_of_line else len(head)
    note = _note_lines(([head[cut:].strip()] if rest_of_line else []) + lines[1:])
    first_sentence = ""
    for line in note:
        if line:
            first_sentence = _SENTENCE_END_RE.split(normalize(line) + "\n", maxsplit=1)[0]
            break
    if not first_sentence and note:
        first_sentence = normalize(note[0])
    for rx, why in (
        (_NEGATION_RE, Unclear.NEGATION),
        (_CONDITION_NOTE_RE, Unclear.CONDITION),
        (_QUESTION_RE, Unclear.QUESTION),
    ):
        if first_sentence and rx.search(first_sentence):
            return Reading(None, why, first[:80])
    if note and normalize(note[0]).endswith(("?", "？")):
        return Reading(None, Unclear.QUESTION, first[:80])
    for line in note:
        norm = normalize(line)
        if norm and (norm in _COMMANDS or norm in _REPORTS):
            return Reading(None, Unclear.SEVERAL, norm[:80])
    text = "\n".join(note).strip()
    return Reading(None, Unclear.NONE, word[:80], report=kind, note=text[:MAX_NOTE])


def _html_new_text(html: str) -> str:
    """HTML rendered to text without the quoted original (blockquote, gmail_quote, ...).

    Markup the tree builder would take super-linear time on (deep nesting, tag floods) is
    not read at all: such a reply has no command (the person is told so)."""
    if len(html) > MAX_REPLY_BYTES or html_hazard(html):
        return ""
    try:
        tree = LexborHTMLParser(html)
        for selector in _HTML_CUT_FROM:
            for node in tree.css(selector)[:1]:
                doomed = [node]
                sibling = node.next
                while sibling is not None and len(doomed) < 10_000:
                    doomed.append(sibling)
                    sibling = sibling.next
                for n in doomed:
                    n.decompose()
        for selector in _HTML_QUOTES:
            for node in tree.css(selector)[:1000]:
                node.decompose()
        body = tree.body
        cleaned = body.html if body is not None else ""
    except Exception:  # a parser failure: read nothing rather than the quote
        return ""
    text, _ = render_html(cleaned or "")
    return text


def reply_text(msg: Message) -> str:
    """The text a person typed: every text/plain part of the reply in order (Apple Mail splits
    one reply into several around an inline image), else its HTML parts rendered without
    their quoted original. Attached messages and attachments are not read."""
    plain = [p.text for p in msg.text_parts if p.content_type == "text/plain"]
    if plain:
        return "\n".join(plain)
    return "\n".join(
        _html_new_text(p.html) for p in msg.text_parts if p.content_type == "text/html"
    )


def read_reply(raw: bytes) -> tuple[Reading, Message]:
    """Parse a reply (bounded) and read its command. Never raises on hostile input."""
    msg = parse_message(raw[:MAX_REPLY_BYTES])
    try:
        reading = read_command(reply_text(msg))
    except Exception:  # pragma: no cover - defensive: a bug here must not release
        reading = Reading(None, Unclear.OTHER_TEXT)
    return reading, msg
