"""Quoted and forwarded material: find the quoted messages inside a mail's text.

``extract_quotes`` turns a mail's text parts and attached messages into ``QuotedBlock``
values (see ``leakguard.types``): one block per quoted message, with the people who took
part in it (its From/To/Cc when the quote shows them), every address that appears in it,
and the block it is nested in.

What is recognised, in plain text and in HTML (rendered with ``>`` markers for
``<blockquote>`` and quote containers):

* header blocks, with or without a separator line: Outlook ``-----Original Message-----`` /
  ``-----元のメッセージ-----`` and the bare ``From: / Sent: / To: / Cc: / Subject:`` form
  (差出人 / 送信日時 / 宛先 / CC / 件名), Gmail ``---------- Forwarded message ---------`` /
  ``転送されたメッセージ``, Thunderbird ``-------- Forwarded Message --------`` /
  ``転送メッセージ``, Apple Mail ``Begin forwarded message:``, Outlook Express / Becky!
  ``----- Original Message -----``, Yahoo's one-line form, Lotus Notes ``Forwarded by
  Name/OU/ORG on ...`` with its ``Name <addr> on <date>`` author line, and the labels of
  about 25 languages;
* attributions: ``On ... X <x@y> wrote:`` (also wrapped over up to three lines), ``X さんは
  書きました:``, ``2024年1月1日(月) 10:00 山田太郎 <t@x>:`` and the verbs of other
  languages;
* ``>``-quoted blocks, one level of nesting per ``>``;
* attached message/rfc822 parts (their headers, bodies and own quotes).

Nesting follows the thread: a quoted message that appears inside another one (deeper
``>`` level, or a later header block in the same forwarded text) is its child, so the
people who took part in the outer message are known to have seen the inner one.

Mail text is hostile: the work is linear in the size of the text (each line is looked at
once per quote level, with a fixed cap on levels and on blocks), no regex here can
backtrack beyond a bounded window, and text without any ``@`` is skipped at once.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from leakguard.message.html import html_hazard
from leakguard.message.textaddr import (
    address_keys,
    find_addresses,
    is_automated_local,
    may_hold_address,
    parse_loose_address_list,
)
from leakguard.types import Address, Message, QuotedBlock, QuoteKind, TextPart

MAX_QUOTE_LEVELS = 24  # '>' levels analysed separately; deeper lines are merged into the last
MAX_BLOCKS = 1000  # per message (attached messages included)
MAX_ATTACHED_DEPTH = 8  # message/rfc822 nesting analysed when the parser left it to us
MAX_TEXT_CHARS = 8_000_000  # per part; beyond that only the head is analysed
_MAX_HEADER_LINES = 40  # header lines (incl. continuations) in one quoted header block

# --------------------------------------------------------------------------- vocabulary


def _words(spec: str) -> tuple[str, ...]:
    """``"a|b c|d"`` -> ``("a", "b c", "d")`` (labels may contain spaces)."""
    return tuple(w.strip() for w in spec.split("|") if w.strip())


# Header labels printed by mail clients into forwarded / quoted messages, by field.
_LABELS: dict[str, tuple[str, ...]] = {
    "from": _words(
        "from|sender|sent by|von|absender|de|de la|da|mittente|van|afzender|från|avsändare|fra|"
        "afsender|avsender|lähettäjä|od|nadawca|odesílatel|odosielateľ|feladó|от|"
        "отправитель|від|від кого|kimden|gönderen|saatja|šalje|pošiljatelj|expeditor|"
        "expeditorul|remitente|expéditeur|remetente|差出人|送信者|送信元|発信者|発信元|"
        "发件人|寄件者|寄件人|보낸 사람"
    ),
    "to": _words(
        "to|an|empfänger|à|a|pour|destinataire|para|destinatario|destinatário|aan|till|"
        "mottagare|til|modtager|mottaker|vastaanottaja|do|adresat|pre|komu|príjemca|"
        "címzett|кому|kime|adressaat|prima|către|destinatarul|宛先|送信先|受信者|收件人|"
        "收件者|받는 사람"
    ),
    "cc": _words(
        "cc|kopie|kopie (cc)|kopia|kópia|kopi|kopio|másolat|másolatot kap|копия|копія|"
        "bilgi|koopia|kopija|dw|copie|copie à|copia|cópia|cc/ccn|抄送|副本|参照|참조"
    ),
    "bcc": _words("bcc|cci|ccn|cco|bkopie|ukryta kopia|skrytá kopie|密件抄送|密送|숨은 참조"),
    "date": _words(
        "date|datum|fecha|data|dato|päivämäärä|päiväys|dátum|дата|tarih|kuupäev|dată|sent|"
        "sent at|gesendet|envoyé|enviado|enviada|inviato|verzonden|skickat|sendt|lähetetty|"
        "wysłano|odesláno|odoslané|elküldve|trimis|отправлено|надіслано|gönderildi|"
        "gönderilme tarihi|poslano|saadetud|日付|日時|送信日時|送信日|日期|发送时间|發送時間|"
        "날짜|보낸 날짜"
    ),
    "subject": _words(
        "subject|betreff|objet|sujet|asunto|oggetto|onderwerp|ämne|emne|aihe|temat|předmět|"
        "predmet|tárgy|subiect|subiectul|тема|konu|teema|naslov|assunto|件名|主题|主旨|제목"
    ),
    "reply-to": _words("reply-to|reply to|antwort an|répondre à|responder a|rispondi a|返信先"),
}
_FIELD_OF: dict[str, str] = {lab: f for f, labs in _LABELS.items() for lab in labs}
_PARTICIPANT_FIELDS = frozenset({"from", "to", "cc", "bcc"})
_ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc", "reply-to"})

_LABEL_ALT = "|".join(re.escape(lab) for lab in sorted(_FIELD_OF, key=len, reverse=True))
_WS = r"[ \t\u3000\xa0]"
_HDR_RE = re.compile(
    rf"^{_WS}{{0,8}}[*_]{{0,2}}(?P<label>{_LABEL_ALT}){_WS}{{0,3}}[*_]{{0,2}}{_WS}{{0,3}}[:：]"
    rf"[*_]{{0,2}}{_WS}*(?P<value>.*)$",
    re.IGNORECASE,
)
# "X on behalf of Y" / "X が Y の代理で送信" as a line of its own
_BEHALF_RE = re.compile(r"\bon behalf of\b|の代理で送信", re.IGNORECASE)

_SEP_PHRASES = _words(
    "original message|forwarded message|forwarded by|message transféré|message d'origine|"
    "mensaje original|mensaje reenviado|ursprüngliche nachricht|weitergeleitete nachricht|"
    "messaggio originale|messaggio inoltrato|oorspronkelijk bericht|doorgestuurd bericht|"
    "mensagem original|mensagem encaminhada|originalmeddelande|vidarebefordrat meddelande|"
    "oprindelig meddelelse|videresendt meddelelse|opprinnelig melding|videresendt melding|"
    "alkuperäinen viesti|välitetty viesti|wiadomość oryginalna|przekazana wiadomość|"
    "původní zpráva|přeposlaná zpráva|pôvodná správa|preposlaná správa|eredeti üzenet|"
    "továbbított üzenet|mesaj original|mesaj redirecționat|исходное сообщение|"
    "пересылаемое сообщение|пересланное сообщение|оригінальне повідомлення|"
    "переслане повідомлення|orijinal ileti|iletilmiş ileti|izvorna poruka|"
    "proslijeđena poruka|algne kiri|edastatud kiri|元のメッセージ|転送メッセージ|"
    "転送されたメッセージ|オリジナルメッセージ|原始邮件|转发的邮件|原始郵件|轉寄的郵件|"
    "begin forwarded message|začátek přeposílané zprávy|začiatok preposlanej správy|"
    "započni proslijeđenu poruku|välitetty viesti alkaa|vidarebefordrat mejl|"
    "továbbított levél kezdete|start på videresendt besked|início da mensagem encaminhada|"
    "inizio messaggio inoltrato|inicio del mensaje reenviado|début du message réexpédié|"
    "begin doorgestuurd bericht|anfang der weitergeleiteten nachricht|ileti başlangıcı|"
    "i̇leti başlangıcı|începe mesajul redirecționat|początek przekazywanej wiadomości|"
    "начало переадресованного сообщения"
)
_SEP_PHRASE_ALT = "|".join(re.escape(p) for p in sorted(set(_SEP_PHRASES), key=len, reverse=True))
# Labels written one after the other on a single line (Yahoo): "...corp>Sent: ...Subject:".
# Case-sensitive, capitalised as clients print them, not preceded by a lower-case letter.
_INLINE_LABEL_RE = re.compile(
    r"(?<![a-zà-ÿа-я])(?P<label>"
    + "|".join(
        re.escape(form)
        for lab in sorted(_FIELD_OF, key=len, reverse=True)
        if lab[:1].isalpha() and lab[:1].lower() != lab[:1].upper() and len(lab) > 1
        for form in {lab[:1].upper() + lab[1:], lab.upper() if len(lab) <= 3 else lab}
        if form[:1].isupper()
    )
    + r")[ \t]?:"
)


def _split_inline_headers(text: str) -> list[tuple[str, str]]:
    """``From: a <a@x>To: b@y Subject: s`` -> ``[("from", "a <a@x>"), ("to", ...), ...]``."""
    hits = [m for m in _INLINE_LABEL_RE.finditer(text)][:16]
    out: list[tuple[str, str]] = []
    for n, m in enumerate(hits):
        end = hits[n + 1].start() if n + 1 < len(hits) else len(text)
        out.append((_FIELD_OF[m.group("label").lower()], text[m.end() : end].strip()))
    return out


# "-----Original Message-----", "---------- Forwarded message ---------",
# "----- Forwarded Message ----- From: ..." (Yahoo, all on one line),
# "---------------------- Forwarded by Name/OU/ORG on 01/02/2001 ..." (Notes, may wrap),
# "________________________________" (Outlook), "Begin forwarded message:" (Apple).
_SEP_DASHED_RE = re.compile(
    rf"^{_WS}{{0,8}}[-=_*]{{2,40}}{_WS}*(?P<title>[^-=_*\s][^\n]{{0,150}}?){_WS}*"
    rf"(?:[-=_*]{{2,}}{_WS}*(?P<rest>.*))?$"
)
_SEP_RULE_RE = re.compile(rf"^{_WS}{{0,8}}(?:_{{10,}}|-{{10,}}|={{10,}}){_WS}*$")
_SEP_PHRASE_RE = re.compile(
    rf"^{_WS}{{0,8}}(?:{_SEP_PHRASE_ALT}){_WS}*[:：]?{_WS}*$", re.IGNORECASE
)
_SEP_TITLE_RE = re.compile(rf"(?:{_SEP_PHRASE_ALT})", re.IGNORECASE)

# Attribution verbs ("... wrote:") of the languages clients write them in.
_ATTR_VERB_RE = re.compile(
    r"(?:\b(?:wrote|writes|schrieb|a écrit|escribió|ha scritto|skrev|schreef|geschreven|"
    r"napisał\(a\)|napisał|napisała|escreveu|написал\(а\)|написал|написала|написав\(ла\)|"
    r"kirjoitti|yazdı|írta|napsal\(a\)|napsal|napísal\(a\)|napísal|a scris|kirjutas|"
    r"je napisao|je napisala)\b|さんは書きました|が書きました|は書きました|書きました|"
    r"のメール|からのメール|のメッセージ|写道|寫道)",
    re.IGNORECASE,
)
_DATEISH_RE = re.compile(r"\d{1,4}[/.\-年]\d{1,2}|\d{1,2}:\d{2}")
# Telephone numbers (03-1234-5678, 090-1234-5678, 0120-123-456, 045(123)4567, +81-3-...):
# never a date, whatever _DATEISH_RE would say of "090-12".
_PHONE_RE = re.compile(
    r"(?<![\d/.:])(?:\+\d{1,3}[-\s]?)?\(?0?\d{1,4}\)?[-\s(（)）‐－ー−]{1,2}\d{1,4}[-\s)）‐－ー−]{1,2}"
    r"\d{3,4}(?![\d/]|[:：]\d)"
)
_RAW_HDR_RE = re.compile(r"^[A-Za-z][A-Za-z0-9\-]{1,40}:[ \t]")
_NOTES_DATE_RE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b")
_QPREFIX_RE = re.compile(r"[ \t]{0,12}((?:[>＞][ \t]?)+)")
_ID_HDR_LINE_RE = re.compile(
    r"^\s*(?:message-id|references|in-reply-to|content-id|thread-index|x-[a-z0-9-]+)\s*:",
    re.IGNORECASE,
)

# Footers and notices of bulk mail (newsletters, marketing, automated notices): a quoted
# message holding one is a broadcast. Looked for only in blocks that hold addresses.
_BULK_TEXT_RE = re.compile(
    r"unsubscri|opt[- ]?out\b|to be removed from|remove yourself from|"
    r"(?:no longer|do not|don't) (?:wish|want) to receive|"
    r"you (?:are receiving|received|have received) this (?:e-?mail|message|newsletter)|"
    r"you (?:registered|subscribed|signed up)\b|you are subscribed as|"
    r"would like to receive e-?mail|update your (?:personal |e-?mail )?preferences|"
    r"prevent future (?:transmissions|e-?mails|mailings)|"
    r"配信停止|配信解除|購読解除|購読の解除|配信を希望されない|メールマガジン|メルマガ|送信専用",
)
# Substrings one of which every match of _BULK_TEXT_RE contains: checked first (cheap).
_BULK_ANCHORS = (
    "unsubscri",
    "opt",
    "removed from",
    "yourself from",
    "to receive",
    "this e",
    "this message",
    "this newsletter",
    "you registered",
    "you subscribed",
    "you signed up",
    "subscribed as",
    "preferences",
    "prevent future",
    "配信",
    "購読",
    "メールマガジン",
    "メルマガ",
    "送信専用",
)
_BULK_SCAN_CHARS = 200_000  # per block
_BULK_HEAD_CHARS = 2_000  # of a quoted message's own text, searched for bulk notices
_BULK_TAIL_CHARS = 4_000
_PRECEDENCE_BULK = frozenset({"bulk", "list", "junk"})


def is_bulk_text(text: str) -> bool:
    """Whether ``text`` carries a bulk-mail footer or notice (``unsubscribe``, ``to be
    removed from this list``, ``opt out``, ``配信停止``, ``メールマガジン``, ...)."""
    low = text[:_BULK_SCAN_CHARS].lower()
    if not any(k in low for k in _BULK_ANCHORS):
        return False
    return _BULK_TEXT_RE.search(low) is not None


def _bulk_headers(headers: Sequence[tuple[str, str]]) -> bool:
    """``List-Unsubscribe`` / ``List-Id`` / ``Precedence: bulk|list|junk``."""
    for name, value in headers:
        n = name.lower()
        if n in ("list-unsubscribe", "list-id"):
            return True
        if n == "precedence" and value.strip().lower() in _PRECEDENCE_BULK:
            return True
    return False


# --------------------------------------------------------------------------- web forms

# Labels of web-form notifications (Contact Form 7, Google Forms, kintone, CMS inquiry
# forms, 電子申請): "お名前：山田 花子", "【メールアドレス】", "E-mail: ...". Grouped by what the
# field holds; a block of such lines is a citizen's (or customer's) personal data.
_FORM_LABELS: dict[str, tuple[str, ...]] = {
    "name": _words(
        "お名前|名前|氏名|ご氏名|お名前（漢字）|フリガナ|ふりがな|お名前（フリガナ）|"
        "お名前（ふりがな）|カナ|氏名（カナ）|申請者氏名|代表者氏名|ご担当者名|担当者名|"
        "name|your name|full name|your-name"
    ),
    "contact": _words(
        "メールアドレス|メール|eメール|e-mail|email|e-mail address|email address|"
        "your email|your-email|mail|電話番号|電話|tel|携帯電話|携帯電話番号|携帯番号|"
        "ご連絡先|連絡先|連絡先電話番号|日中の連絡先|phone|telephone|phone number|fax|"
        "your-tel"
    ),
    "address": _words("ご住所|住所|郵便番号|〒|所在地|address|postal code|zip"),
    "content": _words(
        "お問い合わせ内容|お問合せ内容|お問い合せ内容|問い合わせ内容|問合せ内容|"
        "ご相談内容|相談内容|ご質問|ご質問内容|ご意見|ご意見・ご要望|ご要望|ご用件|用件|"
        "内容|お問い合わせ種別|お問い合わせ項目|お問い合わせ区分|本文|申請内容|"
        "message|your message|your-message|inquiry|comments|comment"
    ),
    "other": _words(
        "会社名|貴社名|御社名|法人名|団体名|学校名|部署名|所属|生年月日|年齢|性別|ご職業|"
        "職業|company|organization|送信日時|受付番号|受付日時"
    ),
}
_FORM_GROUP_OF = {lab: g for g, labs in _FORM_LABELS.items() for lab in labs}
_FORM_LABEL_ALT = "|".join(re.escape(lab) for lab in sorted(_FORM_GROUP_OF, key=len, reverse=True))
# "お名前：山田", "■メールアドレス：x", "【お名前】山田", "E-mail (required): x", "電話番号" alone
_FORM_LINE_RE = re.compile(
    rf"^{_WS}{{0,8}}[【■□●○◆◇・*＊\[［<＜]?{_WS}?(?P<label>{_FORM_LABEL_ALT})"
    rf"{_WS}?(?:[（(][^）)\n]{{0,12}}[）)])?{_WS}?[】\]］>＞]?{_WS}?"
    rf"(?:[*＊※]?必須)?{_WS}?(?P<sep>[:：]|(?<=[】\]］>＞]))?{_WS}*(?P<value>.*)$",
    re.IGNORECASE,
)
# Footers and phrases of form notifications (checked when the labels alone are few).
_FORM_PHRASE_RE = re.compile(
    r"送信専用|フォームから|フォームより|お問い合わせがありました|お問い合わせを受け付け|"
    r"以下の内容で|下記の内容で|送信されました|新しい回答|回答が送信|受け付けました|"
    r"contact form|form submission|new submission|new response|"
    r"was submitted|has been submitted",
    re.IGNORECASE,
)
_FORM_MIN_LINES = 3
# A notification that says it came from a web form (Contact Form 7's default footer: 「この
# メールは … のお問い合わせフォームから送信されました」, whose template writes the person as
# 「差出人: 山田 太郎 <addr>」, not as a form label).
_FORM_SENT_RE = re.compile(
    r"フォーム(?:から|より)(?:の)?(?:送信|お問い合わせ|投稿)|contact form|form submission",
    re.IGNORECASE,
)
_CONTACT_VALUE_RE = re.compile(r"@|＠|\b0\d{1,4}-\d{1,4}-\d{3,4}\b")


def form_label(text: str) -> str | None:
    """The group (``name``, ``contact``, ``address``, ``content``, ``other``) of a web-form
    label line (``お名前：山田 花子``, ``【メールアドレス】``, ``TEL: 03-...``), else None.

    A label alone on its line counts only when it is bracketed or marked (``【お名前】``,
    ``■電話番号``) or is the whole line (Google Forms puts the answer on the next line).
    """
    if len(text) > 300:
        return None
    m = _FORM_LINE_RE.match(text)
    if m is None:
        return None
    value = m.group("value").strip()
    label = m.group("label")
    if m.group("sep") is None and value:
        # "名前のない..." / "mail me": a sentence that starts with a label word. A Japanese
        # label, a space and a value is a form rendered from an HTML table row.
        spaced = text[m.start("value") - 1 : m.start("value")].isspace()
        if label.isascii() or not spaced or len(label) < 2:
            return None
    return _FORM_GROUP_OF[m.group("label").lower()]


def is_form_text(lines: Sequence[str]) -> bool:
    """Whether ``lines`` hold a web-form notification: at least three label lines naming
    a person and a way to reach them (name + mail/phone), or two such lines next to a form
    footer (``送信専用``, ``フォームから``, "form submission"). Signatures (``TEL:`` /
    ``E-mail:`` without a name label) and newsletters are not forms."""
    groups: set[str] = set()
    count = 0
    phrase = False
    sent_by_form = False
    contact = False
    for text in lines:
        g = form_label(text)
        if g is not None:
            groups.add(g)
            count += 1
        elif not phrase and _FORM_PHRASE_RE.search(text):
            phrase = True
        if not sent_by_form and _FORM_SENT_RE.search(text):
            sent_by_form = True
        if not contact and _CONTACT_VALUE_RE.search(text):
            contact = True
    if sent_by_form and contact:
        return True  # "sent from the inquiry form" with a person's address or phone in it
    if not ({"name", "contact"} <= groups):
        return False
    return count >= _FORM_MIN_LINES or phrase


# --------------------------------------------------------------------------- author names

_WEEKDAY = (
    r"\b(?:mon(?:day)?|tue(?:s|sday)?|wed(?:nesday)?|thu(?:rs|rsday)?|fri(?:day)?|"
    r"sat(?:urday)?|sun(?:day)?)\b\.?"
)
_MONTH = (
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
_DATE_TOKEN_RE = re.compile(
    r"(?:午前|午後|am|pm)?\s?\d{1,2}[:：]\d{2}(?:[:：]\d{2})?"
    r"(?:\s?(?:am|pm|a\.m\.|p\.m\.))?(?:\s?(?:[+-]\d{4}|gmt|utc|jst|\(jst\)))?"
    r"|\d{2,4}\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日(?:\s?[(（][月火水木金土日][曜日]{0,2}[)）])?"
    r"|\d{1,2}\s?月\s?\d{1,2}\s?日(?:\s?[(（][月火水木金土日][曜日]{0,2}[)）])?"
    r"|\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}(?:\s?[(（][^)）\s]{1,3}[)）])?"
    rf"|{_WEEKDAY}(?:,|(?=\s\d)|(?=\s{_MONTH}))|\d{{1,2}}\s{_MONTH}\s\d{{2,4}},?"
    rf"|{_MONTH}\s\d{{1,2}}(?:st|nd|rd|th)?,?"
    r"(?:\s\d{4},?)?|\b\d{4},",
    re.IGNORECASE,
)
_ATTR_LEAD_RE = re.compile(
    r"^(?:on|am|le|el|il|op|em|den|dne|w dniu|at|um|à|a las|alle|om|kl\.?|于|於|に)\s+|^[,、，]",
    re.IGNORECASE,
)
_ATTR_TAIL_RE = re.compile(
    r"(?:\s*(?:wrote|writes|schrieb|a écrit|escribió|ha scritto|skrev|schreef|escreveu|"
    r"さんは書きました|さんが書きました|が書きました|は書きました|書きました|"
    r"からのメール|のメール|のメッセージ|さんから|写道|寫道)(?:\s+(?:on|am|le)\b.*)?)\s*[:：]?\s*$",
    re.IGNORECASE,
)
_NOTES_NAME_RE = re.compile(r"(?:/[^\s/@<>]{1,40}){1,6}@[^\s<>]{1,40}")
_WROTE_RE = re.compile(r"\bwrote\b|書きました|schrieb|a écrit", re.IGNORECASE)
_NAME_JUNK = " \t\u3000,、，。.:：;-–—'\"()（）[]<>＜＞「」"


def author_name(text: str) -> str:
    """The author's name in an attribution or its display name, without the date, the time
    and the verb: ``2025年2月14日(金) 17:32 木下 健二`` -> ``木下 健二``,
    ``On Fri, Feb 14, 2025 at 5:32 PM Kinoshita Kenji`` -> ``Kinoshita Kenji``,
    ``2025/02/14 17:32、木下 健二 のメッセージ:`` -> ``木下 健二``."""
    s = " ".join(text.split())[:300]
    s = re.sub(
        r"[<＜\[(（]\s*(?:mailto:)?[^<>\[\]()（）＜＞\s]*[@＠][^<>\[\]()（）＜＞]*[>＞\])）]",
        " ",
        s,
    )
    s = _ATTR_TAIL_RE.sub("", s)
    tokens = list(_DATE_TOKEN_RE.finditer(s))
    if tokens:
        after = s[tokens[-1].end() :].strip(_NAME_JUNK)
        after = _ATTR_LEAD_RE.sub("", after).strip(_NAME_JUNK)
        s = after or _ATTR_TAIL_RE.sub("", s[: tokens[0].start()].strip(_NAME_JUNK))
    s = _ATTR_LEAD_RE.sub("", s.strip(_NAME_JUNK)).strip(_NAME_JUNK)
    s = _ATTR_TAIL_RE.sub("", s).strip(_NAME_JUNK)
    if "@" in s or "＠" in s or len(s) > 80:
        return ""
    return s


def _named(addrs: list[Address]) -> list[Address]:
    """Attribution authors with their display names cleaned (see ``author_name``)."""
    out: list[Address] = []
    for a in addrs:
        name = author_name(a.display_name) if a.display_name else ""
        out.append(a if name == a.display_name else replace(a, display_name=name))
    return out


# --------------------------------------------------------------------------- builder


@dataclass(slots=True)
class _Block:
    kind: QuoteKind
    location: str
    parent: int | None
    participants_known: bool = True
    subject: str = ""
    participants: list[Address] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    senders: list[Address] = field(default_factory=list)
    bulk: bool = False
    author: str = ""  # the author's name as the quote shows it (see QuotedBlock.author)
    # (start, end, level) line ranges of its own text, in the part it was found in
    spans: list[tuple[int, int, int]] = field(default_factory=list)
    _pkeys: set[str] = field(default_factory=set)
    _akeys: set[str] = field(default_factory=set)

    def add_addresses(self, addrs: Sequence[Address]) -> None:
        for a in addrs:
            if a.domain and a.key not in self._akeys:
                self._akeys.add(a.key)
                self.addresses.append(a)

    def add_participants(self, addrs: Sequence[Address]) -> None:
        for a in addrs:
            if a.domain and a.key not in self._pkeys:
                self._pkeys.add(a.key)
                self.participants.append(a)
        self.add_addresses(addrs)

    def freeze(self) -> QuotedBlock:
        return QuotedBlock(
            kind=self.kind,
            location=self.location,
            participants=tuple(self.participants),
            addresses=tuple(self.addresses),
            parent=self.parent,
            subject=self.subject,
            participants_known=self.participants_known,
            bulk=self.bulk,
            senders=tuple(self.senders),
            author=self.author,
        )

    def automated_author(self) -> bool:
        return any(is_automated_local(a.local) for a in self.senders)


class _Collector:
    def __init__(self) -> None:
        self.blocks: list[_Block] = []

    @property
    def full(self) -> bool:
        return len(self.blocks) >= MAX_BLOCKS

    def new(
        self,
        kind: QuoteKind,
        location: str,
        parent: int | None,
        participants_known: bool = True,
    ) -> int:
        if self.full:
            # Out of budget: keep counting addresses, in the enclosing block (or the last).
            return parent if parent is not None else len(self.blocks) - 1
        self.blocks.append(_Block(kind, location, parent, participants_known))
        return len(self.blocks) - 1


@dataclass(slots=True)
class _Line:
    depth: int  # number of '>' quote markers
    text: str  # the line without its quote markers
    no: int  # 1-based line number in the part
    blank: bool  # nothing but whitespace
    marker: bool  # could start a header block or an attribution (colon, dashes, ...)


def _split_lines(text: str) -> list[_Line]:
    """Lines with their quote depth and whether they could start a header block or an
    attribution (dashes or a rule, a colon near the start or at the end, "on behalf of")."""
    out: list[_Line] = []
    append = out.append
    qprefix_match = _QPREFIX_RE.match
    for no, raw in enumerate(text.splitlines(), 1):
        depth = 0
        head = raw[:16]
        if ">" in head or "＞" in head:
            m = qprefix_match(raw)
            if m:
                prefix = m.group(1)
                depth = min(prefix.count(">") + prefix.count("＞"), MAX_QUOTE_LEVELS)
                raw = raw[m.end() :]
        s = raw.strip()
        if not s:
            append(_Line(depth, raw, no, True, False))
            continue
        head = raw[:64]
        marker = (
            s[0] in "-=_*"
            or ":" in head
            or "：" in head
            or s[-1] in ":："
            or "behalf" in raw
            or "代理" in raw
        )
        append(_Line(depth, raw, no, False, marker))
    return out


def _line_may_hold_address(s: str) -> bool:
    """``may_hold_address`` for a line that is not a marker line, inlined (it runs on every
    quoted line). Without ':' near its start such a line holds no address label, so a bare
    ``x at y.z`` there would need parentheses."""
    return (
        "@" in s
        or "＠" in s
        or "=?" in s
        or ")" in s
        or "]" in s
        or "）" in s
        or "］" in s
        or "】" in s
        or "★" in s
        or "☆" in s
        or "}" in s
    )


def _blank(line: _Line) -> bool:
    return line.blank


# --------------------------------------------------------------------------- line tests


def _header_field(text: str) -> tuple[str, str] | None:
    """``(field, value)`` when ``text`` is a header line such as ``From: x`` / ``件名：y``."""
    head = text[:48]
    if ":" not in head and "：" not in head:
        return None
    m = _HDR_RE.match(text)
    if m is None:
        return None
    return _FIELD_OF[m.group("label").lower()], m.group("value")


def _separator(text: str) -> tuple[bool, str]:
    """Whether the line is a forward / original-message separator, and any header text
    that follows it on the same line (Yahoo writes the whole header block on one line)."""
    s = text.strip()
    if not s or len(s) > 4000:
        return False, ""
    c = s[0]
    if c in "-=_*":
        if _SEP_RULE_RE.match(text):
            return True, ""
        m = _SEP_DASHED_RE.match(text)
        if m:
            title = m.group("title")
            if _SEP_TITLE_RE.search(title) or (m.group("rest") is not None and len(title) < 60):
                return True, (m.group("rest") or "").strip()
        return False, ""
    if (s[-1] in ":：" or len(s) < 60) and _SEP_PHRASE_RE.match(text):
        return True, ""
    return False, ""


def _attribution(text: str) -> tuple[list[Address], str] | None:
    """Authors and the author's name when ``text`` is an attribution line (``On ... X <x@y>
    wrote:``, ``2025年2月17日(月) 10:00 山田太郎 <t@x>:``). Names carry no date or verb."""
    s = text.strip()
    if len(s) > 400 or not s.endswith((":", "：")):
        return None
    if _header_field(s) is not None or form_label(s) is not None:
        return None
    addrs = parse_loose_address_list(s)
    # "090-1234-5678" is a telephone number, not a date
    dateish = addrs and _DATEISH_RE.search(_PHONE_RE.sub(" ", s)) is not None
    if _ATTR_VERB_RE.search(s) or dateish:
        named = _named(addrs)
        name = next((a.display_name for a in named if a.display_name), "")
        if not addrs and (_DATE_TOKEN_RE.search(s) or _WROTE_RE.search(s)):
            name = author_name(s)  # "以下のメール:" names nobody
        return named, name
    return None


def _looks_like_notes_author(text: str) -> bool:
    """``"Name" <a@b> on 01/02/2001 10:00 AM`` / ``01/07/2002 10:18 AM`` above a Notes header."""
    s = text.strip()
    return bool(s) and len(s) <= 200 and bool(_NOTES_DATE_RE.search(s) or "@" in s)


# --------------------------------------------------------------------------- analysis


@dataclass(slots=True)
class _Header:
    end: int  # index after the last header line
    first: int  # index of the first line of the block (separator or first header line)
    fields: dict[str, list[Address]]
    subject: str
    all_addresses: list[Address]
    author: str = ""  # From's name, also when the header shows no address (Outlook 2010)


class _TextAnalyser:
    def __init__(self, col: _Collector, lines: list[_Line], where: str, html: bool) -> None:
        self.col = col
        self.lines = lines
        self.where = where
        self.html = html
        self.scanned_to = 0

    def _loc(self, i: int) -> str:
        return f"{self.where}, line {self.lines[i].no}"

    def _quote_kind(self) -> QuoteKind:
        return QuoteKind.HTML_QUOTE if self.html else QuoteKind.GT_QUOTE

    def _attr_kind(self) -> QuoteKind:
        return QuoteKind.HTML_QUOTE if self.html else QuoteKind.ATTRIBUTION

    # -- headers

    def _header_at(self, i: int, end: int, level: int) -> _Header | None:
        """A quoted header block starting at line ``i`` (separator, author or header line).

        Sets ``self.scanned_to`` to the line where the scan stopped, so that a failed
        attempt is not repeated from every line inside it (which would be quadratic).
        Addresses are parsed only once the block is accepted.
        """
        lines = self.lines
        line = lines[i]
        self.scanned_to = i + 1
        if line.depth != level:
            return None
        is_sep, rest = _separator(line.text)
        if not is_sep and _header_field(line.text) is None and not _BEHALF_RE.search(line.text):
            return None
        # (field, value) pairs; field "" = other header lines whose addresses still count
        raw: list[tuple[str, str]] = []
        keys: set[str] = set()
        author_lines: list[int] = []
        j = i
        if is_sep:
            j = i + 1
            hf_rest = _header_field(rest) if rest else None
            if hf_rest is not None:
                # Yahoo: "----- Forwarded Message ----- From: ...To: ...Subject: ..."
                for pair in _split_inline_headers(rest):
                    raw.append(pair)
                    keys.add(pair[0])
            else:
                # a wrapped separator ("... Forwarded by Name on 01/07/2002\n11:30 AM ----")
                if j < end and lines[j].depth == level and lines[j].text.rstrip().endswith("--"):
                    j += 1
                blanks = 0
                while j < end and lines[j].depth == level and _blank(lines[j]) and blanks < 4:
                    j += 1
                    blanks += 1
                # Notes: up to two author lines ("Name <a@b> on 10/12/2000 01:12 PM")
                k = j
                while (
                    k < end
                    and k - j < 2
                    and lines[k].depth == level
                    and not _blank(lines[k])
                    and _header_field(lines[k].text) is None
                    and _looks_like_notes_author(lines[k].text)
                ):
                    k += 1
                if j < k < end and _header_field(lines[k].text) is not None:
                    author_lines = list(range(j, k))
                    j = k
        start_j = j
        last_field = ""
        count = unknown = 0
        while j < end and count < _MAX_HEADER_LINES:
            ln = lines[j]
            if _blank(ln):
                # Notes leaves blank lines between "cc:" and "Subject:"; double-spaced
                # quoting puts a bare ">" between every two header lines
                k = j + 1
                while k < end and k - j <= 2 and _blank(lines[k]):
                    k += 1
                if (
                    keys
                    and k < end
                    and k - j <= 2
                    and lines[k].depth == level
                    and _header_field(lines[k].text) is not None
                ):
                    j = k
                    continue
                break
            if ln.depth != level:
                break
            text = ln.text
            hf = _header_field(text)
            if hf is not None:
                raw.append(hf)
                keys.add(hf[0])
                last_field = hf[0]
            elif keys and unknown < 8 and _RAW_HDR_RE.match(text):
                # other header lines pasted with the block (Full-name:, Message-ID:, ...)
                if not _ID_HDR_LINE_RE.match(text):
                    raw.append(("", text))
                unknown += 1
                last_field = ""
            elif j == start_j and _BEHALF_RE.search(text) and "@" in text:
                # "X <x@a> が Y <y@a> の代理で送信" standing above the header lines
                raw.append(("from", text))
                keys.add("from")
                last_field = "from"
            elif last_field in _ADDRESS_FIELDS and j > start_j and self._continues(text, j):
                raw.append((last_field, text))
            elif not (last_field == "subject" and j > start_j and text[:1] in " \t"):
                break
            j += 1
            count += 1
        self.scanned_to = max(j, i + 1)
        if not keys:
            return None
        if not is_sep:
            # Notes replies: "Name\n01/07/2002 10:18 AM\nTo: ...\ncc: ...\nSubject: ..."
            if "from" not in keys:
                k = i - 1
                while (
                    k >= 0
                    and i - k <= 2
                    and lines[k].depth == level
                    and not _blank(lines[k])
                    and _looks_like_notes_author(lines[k].text)
                ):
                    author_lines.insert(0, k)
                    k -= 1
            core = keys & {"to", "cc", "subject", "date"}
            ok = ("from" in keys and len(keys) >= 2) or (
                len(core) >= 2 and bool(keys & {"to", "cc"}) and (len(keys) >= 3 or author_lines)
            )
            if not ok:
                return None
        fields: dict[str, list[Address]] = {}
        all_addrs: list[Address] = []
        subject = ""
        for k in author_lines:
            addrs = parse_loose_address_list(lines[k].text)
            fields.setdefault("from", []).extend(addrs)
            all_addrs.extend(addrs)
        for name, value in raw:
            if name == "subject" and not subject:
                subject = value.strip()
            if not may_hold_address(value):
                continue
            addrs = parse_loose_address_list(value)
            if name in _ADDRESS_FIELDS:
                fields.setdefault(name, []).extend(addrs)
            all_addrs.extend(addrs)
        first = author_lines[0] if author_lines and author_lines[0] < i else i
        author = next((a.display_name for a in fields.get("from", []) if a.display_name), "")
        if not author and not fields.get("from"):
            value = next((v for name, v in raw if name == "from"), "")
            if not value and author_lines:
                value = lines[author_lines[0]].text  # Notes: "Name" above the date line
            if value and len(value) <= 200:
                # Lotus Notes names: "Jane Doe/HOU/ECT@ECT" is Jane Doe
                author = author_name(_NOTES_NAME_RE.sub("", value))
        return _Header(j, first, fields, subject, all_addrs, author)

    def _continues(self, text: str, j: int) -> bool:
        """A wrapped To/Cc line: indented, holding an address, or after a trailing ,/;."""
        if text[:1] in " \t":
            return True
        if "@" in text and _header_field(text) is None and len(text) < 400:
            return True
        prev = self.lines[j - 1].text.rstrip()
        return prev.endswith((",", ";"))

    # -- main loop

    def analyse(
        self, start: int, end: int, level: int, parent: int | None, owner: int | None
    ) -> None:
        lines = self.lines
        col = self.col
        cur_parent = parent
        i = start
        # (line index, authors, author's name)
        pending_attr: tuple[int, list[Address], str] | None = None
        no_header_before = start  # lines before this were scanned by a failed header attempt
        span_start = start  # where the current owner's own text started

        def own(b: int, at: int) -> None:
            nonlocal owner, span_start
            if owner is not None and at > span_start:
                col.blocks[owner].spans.append((span_start, at, level))
            owner = b
            span_start = at

        while i < end:
            ln = lines[i]
            if ln.depth > level:
                j, last_q = i, i
                while j < end:
                    if lines[j].depth > level:
                        last_q = j
                    elif not _blank(lines[j]):
                        break
                    j += 1
                self._run(i, last_q + 1, level, cur_parent, pending_attr)
                pending_attr = None
                i = last_q + 1
                continue
            text = ln.text
            if ln.blank:
                i += 1
                continue
            # only lines with a colon, a dash rule or an "on behalf" can start a header block
            # or an attribution (which may wrap over three lines, the last ending in ':')
            maybe = ln.marker
            if not maybe:
                for k in range(i + 1, i + 3 if i + 3 < end else end):
                    nxt = lines[k]
                    if nxt.marker and nxt.depth == level:
                        maybe = True
                        break
            if not maybe:
                if owner is not None and _line_may_hold_address(text):
                    col.blocks[owner].add_addresses(find_addresses(text))
                i += 1
                continue
            hdr = None
            if i >= no_header_before and not col.full:
                hdr = self._header_at(i, end, level)
                if hdr is None:
                    no_header_before = self.scanned_to
            if hdr is not None:
                pending_attr = None
                b = col.new(QuoteKind.HEADER_BLOCK, self._loc(hdr.first), cur_parent)
                blk = col.blocks[b]
                for f in ("from", "to", "cc", "bcc"):
                    blk.add_participants(hdr.fields.get(f, []))
                blk.add_addresses(hdr.all_addresses)
                if hdr.subject and not blk.subject:
                    blk.subject = hdr.subject[:200]
                blk.author = hdr.author
                blk.senders.extend(hdr.fields.get("from", []))
                blk.senders.extend(hdr.fields.get("reply-to", []))
                cur_parent = b
                own(b, hdr.first)
                i = hdr.end
                continue
            attr = None if col.full else self._attribution_at(i, end, level)
            if attr is not None:
                a_end, authors, name = attr
                k = a_end
                while k < end and lines[k].depth == level and _blank(lines[k]):
                    k += 1
                if k < end and lines[k].depth > level:
                    pending_attr = (i, authors, name)
                    i = k
                    continue
                if authors:
                    # "On ... X <x@y> wrote:" followed by unmarked (indented) text: the rest
                    # of this level is the quoted message.
                    b = col.new(self._attr_kind(), self._loc(i), cur_parent, False)
                    col.blocks[b].add_participants(authors)
                    col.blocks[b].senders.extend(authors)
                    col.blocks[b].author = name
                    cur_parent = b
                    own(b, i)
                    i = a_end
                    continue
            if owner is not None and may_hold_address(text) and not _ID_HDR_LINE_RE.match(text):
                col.blocks[owner].add_addresses(find_addresses(text))
            i += 1
        if owner is not None and end > span_start:
            col.blocks[owner].spans.append((span_start, end, level))

    def _attribution_at(
        self, i: int, end: int, level: int
    ) -> tuple[int, list[Address], str] | None:
        """An attribution starting at line i, spanning up to three lines: (end, authors,
        author's name). Lines of a web form (``メールアドレス：...``) are never one."""
        lines = self.lines
        parts: list[str] = []
        for k in range(i, min(i + 3, end)):
            ln = lines[k]
            if ln.depth != level or _blank(ln):
                return None
            if k > i and ln.marker and form_label(ln.text) is not None:
                return None
            if k == i and form_label(ln.text) is not None:
                return None
            parts.append(ln.text.strip())
            if ln.text.rstrip().endswith((":", "：")):
                found = _attribution(" ".join(parts))
                return (k + 1, *found) if found is not None else None
            if k > i and _header_field(ln.text) is not None:
                return None
        return None

    def _run(
        self,
        start: int,
        end: int,
        level: int,
        parent: int | None,
        attr: tuple[int, list[Address], str] | None,
    ) -> None:
        """A run of lines quoted one level deeper than ``level``."""
        lines = self.lines
        inner = level + 1
        k = start
        while k < end and _blank(lines[k]):
            k += 1
        if attr is None and k < end and lines[k].depth == inner:
            # Apple Mail puts the attribution inside the quote: "> On ..., X wrote:"
            found = self._attribution_at(k, end, inner)
            if found is not None:
                attr = (k, found[1], found[2])
                k = found[0]
                start = k
            elif self._header_at(k, end, inner) is not None:
                # "> -----Original Message-----": the header block is the quoted message
                self.analyse(start, end, inner, parent, None)
                return
        if attr is None and not any(
            lines[n].depth == inner and not lines[n].blank for n in range(start, end)
        ):
            # ">> text" with nothing at the ">" level: no empty wrapper block
            self.analyse(start, end, inner, parent, None)
            return
        if attr is not None:
            b = self.col.new(self._attr_kind(), self._loc(attr[0]), parent, False)
            self.col.blocks[b].add_participants(attr[1])
            self.col.blocks[b].senders.extend(attr[1])
            self.col.blocks[b].author = attr[2]
        else:
            b = self.col.new(self._quote_kind(), self._loc(k if k < end else start), parent, False)
        self.analyse(start, end, inner, b, b)


# --------------------------------------------------------------------------- HTML

_SKIP_TAGS = frozenset(
    ("script", "style", "head", "title", "template", "noscript", "svg", "-comment")
)
_BLOCK_TAGS = frozenset(
    _words(
        "p|div|br|tr|li|ul|ol|dl|dt|dd|h1|h2|h3|h4|h5|h6|table|tbody|thead|tfoot|pre|"
        "section|article|header|footer|hr|blockquote|center|address|form|fieldset"
    )
)
_OUTLOOK_BORDER_RE = re.compile(r"border-top\s*:\s*solid\s*#(?:e1e1e1|b5c4df)", re.IGNORECASE)
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-forward-container", "protonmail_quote")
_RULE = "________________________________"


def _is_quote_container(tag: str, attrs: dict[str, str | None]) -> bool:
    if tag == "blockquote":
        return True
    if tag != "div":
        return False
    cls = attrs.get("class") or ""
    return any(c in cls for c in _QUOTE_CLASSES)


def _is_outlook_header_div(tag: str, attrs: dict[str, str | None]) -> bool:
    if tag != "div":
        return False
    ident = (attrs.get("id") or "").lower()
    if ident in ("divrplyfwdmsg", "appendonsend") or ident.startswith("divrplyfwdmsg"):
        return True
    return bool(_OUTLOOK_BORDER_RE.search(attrs.get("style") or ""))


def render_html_quotes(html: str) -> str:
    """Render HTML to text, marking quoted content with ``>`` as a mail client would.

    ``<blockquote>`` and quote containers (``div.gmail_quote``, ``div.yahoo_quoted``,
    ``div.moz-forward-container``) add one level of ``>`` unless they hold a
    ``<blockquote>`` themselves (Gmail nests one inside its container); the Outlook reply
    header (``div#divRplyFwdMsg``, ``div#appendonsend``, ``border-top:solid #E1E1E1``) and
    ``<hr>`` start with a separator line. ``mailto:`` links whose text is a name keep their
    address (``Name <a@b>``). The walk is iterative: deep HTML cannot exhaust the stack.
    """
    from selectolax.lexbor import LexborHTMLParser, LexborNode  # only paid for HTML parts

    root = LexborHTMLParser(html).root
    if root is None:
        return ""
    out: list[str] = []
    line: list[str] = []
    depth = 0
    pre = 0

    def newline() -> None:
        if line:
            text = " ".join("".join(line).split())
            line.clear()
            if text:
                out.append("> " * min(depth, MAX_QUOTE_LEVELS) + text)

    # entries: a node to enter, a str of literal text, or (tag, quote levels added) to leave
    stack: list[LexborNode | str | tuple[str, int]] = [root]
    pop = stack.pop
    push = stack.append
    while stack:
        item = pop()
        if isinstance(item, str):
            line.append(item)
            continue
        if isinstance(item, tuple):
            tag, added = item
            if tag in _BLOCK_TAGS:
                newline()
            if tag == "pre":
                pre -= 1
            depth -= added
            continue
        node = item
        tag = node.tag or ""
        if tag == "-text":
            t = node.text_content or ""
            if pre and "\n" in t:
                for n, piece in enumerate(t.split("\n")):
                    if n:
                        newline()
                    line.append(piece)
            elif "\n" in t or "\r" in t:
                line.append(t.replace("\n", " ").replace("\r", " "))
            else:
                line.append(t)
            continue
        if tag in _SKIP_TAGS or not node.is_element_node:
            continue
        if "@" in tag:
            # an unescaped "<jane@example.com>" parsed as an element: keep it as text
            line.append(f" <{tag}> ")
        if tag in _BLOCK_TAGS:
            newline()
        elif tag in ("td", "th") and line:
            line.append(" ")  # "<th>お名前</th><td>山田</td>" reads "お名前 山田"
        inc = 0
        if tag == "div":
            attrs = node.attributes
            if _is_outlook_header_div(tag, attrs):
                newline()
                out.append("> " * min(depth, MAX_QUOTE_LEVELS) + _RULE)
            if _is_quote_container(tag, attrs) and node.css_first("blockquote") is None:
                inc = 1
        elif tag == "blockquote":
            inc = 1
        elif tag == "hr":
            newline()
            out.append("> " * min(depth, MAX_QUOTE_LEVELS) + _RULE)
        elif tag == "pre":
            pre += 1
        elif tag == "a":
            href = (node.attributes.get("href") or "").strip()
            if href[:7].lower() == "mailto:":
                addr = href[7:].split("?", 1)[0].strip()
                label = node.text(deep=True)
                if addr and addr.lower() not in label.lower():
                    # "<a href=mailto:x@y>Name</a>" renders as "Name <x@y>"
                    push(f" <{addr}>")
        depth += inc
        push((tag, inc))
        children = list(node.iter(include_text=True))
        children.reverse()
        stack.extend(children)
    newline()
    return "\n".join(out)


# --------------------------------------------------------------------------- entry points


def _analyse_text(col: _Collector, text: str, where: str, html: bool) -> None:
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
    lines = _split_lines(text)
    first = len(col.blocks)
    _TextAnalyser(col, lines, where, html).analyse(0, len(lines), 0, None, None)
    for blk in col.blocks[first:]:
        # only blocks holding addresses can have any to excuse; their own text only
        if blk.addresses and not blk.bulk and blk.spans:
            # a forwarded web-form notification ("送信専用", from no-reply@) is a person's
            # data, not a broadcast
            blk.bulk = (blk.automated_author() or _spans_bulk(lines, blk.spans)) and not (
                _spans_form(lines, blk.spans)
            )
        blk.spans = []


def _spans_form(lines: list[_Line], spans: list[tuple[int, int, int]]) -> bool:
    own: list[str] = []
    for start, end, level in spans:
        own.extend(ln.text for ln in lines[start:end] if ln.depth == level and not ln.blank)
        if len(own) > 400:
            break
    return is_form_text(own[:400])


def _spans_bulk(lines: list[_Line], spans: list[tuple[int, int, int]]) -> bool:
    parts: list[str] = []
    size = 0
    for start, end, level in spans:
        for ln in lines[start:end]:
            if ln.depth == level and not ln.blank:
                parts.append(ln.text)
                size += len(ln.text)
        if size > _BULK_SCAN_CHARS:
            break
    text = "\n".join(parts)
    if len(text) > _BULK_HEAD_CHARS + _BULK_TAIL_CHARS:
        # notices sit at the top or in the footer; a long body is not searched in full
        text = text[:_BULK_HEAD_CHARS] + "\n" + text[-_BULK_TAIL_CHARS:]
    return is_bulk_text(text)


def _add_attached(
    col: _Collector, att: Message, where: str, parent: int | None, depth: int
) -> None:
    if col.full:
        return
    b = col.new(QuoteKind.ATTACHED_MESSAGE, where, parent)
    blk = col.blocks[b]
    blk.add_participants([*att.from_, *att.to, *att.cc, *att.bcc])
    extra = [*att.reply_to]
    if att.sender_header is not None:
        extra.append(att.sender_header)
    blk.add_addresses(extra)
    blk.senders.extend([*att.from_, *extra])
    blk.subject = att.subject[:200]
    for part in att.text_parts:
        if may_hold_address(part.text):
            blk.add_addresses(find_addresses(part.text[:MAX_TEXT_CHARS]))
    if blk.addresses:
        blk.bulk = (
            _bulk_headers(att.headers)
            or blk.automated_author()
            or any(
                is_bulk_text(p.text[:_BULK_HEAD_CHARS]) or is_bulk_text(p.text[-_BULK_TAIL_CHARS:])
                for p in att.text_parts
            )
        ) and not any(
            is_form_text(p.text[: _BULK_HEAD_CHARS * 4].splitlines()) for p in att.text_parts
        )
    inner = att.quoted_blocks
    if not inner and depth < MAX_ATTACHED_DEPTH and (att.text_parts or att.attached_messages):
        inner = _extract(att.text_parts, att.attached_messages, depth + 1)
    offset = len(col.blocks)
    for qb in inner:
        if col.full:
            break
        col.blocks.append(
            _Block(
                kind=qb.kind,
                location=f"{where}: {qb.location}",
                parent=b if qb.parent is None else offset + qb.parent,
                participants_known=qb.participants_known,
                subject=qb.subject,
                participants=list(qb.participants),
                addresses=list(qb.addresses),
                senders=list(qb.senders),
                bulk=qb.bulk,
            )
        )


# Text without any address is analysed only for the authors of its quotes. The quote
# prefix is atomic: it cannot give back the blanks that [^\n]{0,200} also matches, which
# made a line of N blanks cost N * 200 steps (mass fuzz case 10638: 390,000 blanks, 2.7 s
# in one search with the GIL held). The longest prefix is the only one that can match.
_AUTHOR_HINT_RE = re.compile(
    r"^(?>[ \t]*(?:[>＞][ \t]?)*)[^\n]{0,200}(?:wrote|書きました|のメール|のメッセージ|"
    r"schrieb|a écrit)[ \t]*[:：][ \t]*$|^(?>[ \t]*(?:[>＞][ \t]?)*)(?:差出人|From)[ \t]*[:：]",
    re.MULTILINE | re.IGNORECASE,
)

# The words every match of _AUTHOR_HINT_RE holds: the Japanese ones as they are, the others
# as ``str.lower``/ASCII projections find them ("a écrit" loses its é), and the characters
# other than ASCII letters and É that IGNORECASE takes for one of their letters.
_AUTHOR_HINT_JA = ("書きました", "のメール", "のメッセージ", "差出人")
_AUTHOR_HINT_ASCII = ("wrote", "schrieb", "a crit", "a écrit", "from")
_AUTHOR_HINT_FOLDS = ("İ", "ı", "ſ")


def _hint_lines(text: str, words: Sequence[str], hay: str) -> bool:
    """Whether a line of ``text`` holding one of ``words`` (found in ``hay``: ``text`` or
    a lowered copy of the same length) matches ``_AUTHOR_HINT_RE`` from its start."""
    for word in words:
        pos = hay.find(word)
        while pos >= 0:
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            if end < 0:
                end = len(text)
            if _AUTHOR_HINT_RE.match(text, start, end) is not None:
                return True
            pos = hay.find(word, end)
    return False


def _author_hint(text: str) -> bool:
    """``_AUTHOR_HINT_RE.search(text) is not None``, in linear time where it can be.

    The expression tries every line start with ``[^\n]{0,200}`` and eight alternatives
    under IGNORECASE: 24 ms for a 300,000-character part without any of its words, most of
    the CPU of a 500 KB mail (issue 11). A match lies on one line and holds one of its
    words, so only lines holding one are given to the expression (``match`` from the line's
    start to its end: ``^`` and ``$`` are that line's). The English, German and French words
    are looked for in ASCII text lowered, or as a filter in the ASCII letters of other text
    (where, when one is there, the expression runs as before)."""
    if _hint_lines(text, _AUTHOR_HINT_JA, text):
        return True
    if text.isascii():
        return _hint_lines(text, _AUTHOR_HINT_ASCII, text.lower())
    if any(ch in text for ch in _AUTHOR_HINT_FOLDS):
        return _AUTHOR_HINT_RE.search(text) is not None
    letters = text.encode("ascii", "ignore").lower()
    if any(w.encode() in letters for w in _AUTHOR_HINT_ASCII if w.isascii()):
        return _AUTHOR_HINT_RE.search(text) is not None
    return False


# Markup that starts quoted material in HTML (see render_html_quotes)
_HTML_QUOTE_START_RE = re.compile(
    r"<blockquote\b|<hr\b|gmail_quote|yahoo_quoted|moz-forward-container|protonmail_quote|"
    r"divrplyfwdmsg|appendonsend|border-top",
    re.IGNORECASE,
)


@dataclass(slots=True)
class _PlainSeen:
    """Addresses of one analysed text/plain part: in its quoted blocks, and elsewhere."""

    quoted: set[str]
    other: set[str]


def _repeats_plain(part: TextPart, plain: _PlainSeen) -> bool:
    """Whether analysing the HTML ``part`` could only repeat what its text/plain alternative
    showed: each address it holds is in a block found in the plain part, or (the sender's
    signature, a name in the new text) is outside the plain part's blocks and appears in
    the HTML only before its first quote markup.

    Addresses are looked for in the HTML source with its entities decoded (text,
    ``mailto:`` links, ``<a@b>`` written unescaped) and in the rendered text (text joined
    across inline tags), token by token with no context filter: a superset of what
    analysing the rendered quotes could find.
    """
    src = part.html[:MAX_TEXT_CHARS]
    if "&" in src:
        src = html_lib.unescape(src)
    src_keys = address_keys(src)
    extra = (src_keys | address_keys(part.text)) - plain.quoted
    if not extra:
        return True
    if not extra <= plain.other or not extra <= src_keys:
        return False
    m = _HTML_QUOTE_START_RE.search(src)
    return m is None or not (address_keys(src[m.start() :]) & extra)


def _extract(
    text_parts: Sequence[TextPart],
    attached: Sequence[Message],
    depth: int,
    plain_alternatives: Mapping[int, int] | None = None,
) -> tuple[QuotedBlock, ...]:
    col = _Collector()
    n_text = n_html = 0
    # text/plain part index -> the addresses it showed (when its analysis was complete)
    plain_seen: dict[int, _PlainSeen] = {}
    for index, part in enumerate(text_parts):
        is_html = part.content_type.lower() == "text/html"
        if is_html:
            n_html += 1
            src = part.html
            if src:
                if not may_hold_address(src):
                    continue
                alt = plain_alternatives.get(index) if plain_alternatives else None
                seen = plain_seen.get(alt) if alt is not None else None
                if seen is not None and _repeats_plain(part, seen):
                    # the text/plain alternative showed every address this part holds:
                    # its blocks already carry them (the detector prefers plain locations)
                    continue
                src = src[:MAX_TEXT_CHARS]
                if html_hazard(src):
                    # the parser rendered it flat for the same reason (a defect of the
                    # message): its text is analysed instead of walking hostile markup again
                    text = part.text
                else:
                    try:
                        text = render_html_quotes(src)
                    except Exception:  # a broken HTML part must not lose the rest of the mail
                        text = part.text
            else:
                text = part.text
            where = f"HTML part {n_html}"
        else:
            n_text += 1
            text = part.text
            where = f"text part {n_text}"
        if is_html and not may_hold_address(text):
            continue
        if not may_hold_address(text) and not _author_hint(text[:MAX_TEXT_CHARS]):
            # nothing to find but authors' names (attribution-only quoting without any
            # address, Outlook 2010's names-only headers): analysed only when one may be here
            plain_seen[index] = _PlainSeen(set(), set())
            continue
        first = len(col.blocks)
        _analyse_text(col, text, where, is_html)
        if not is_html and not col.full:
            quoted = {k for b in col.blocks[first:] for k in b._akeys}
            plain_seen[index] = _PlainSeen(quoted, address_keys(text) - quoted)
    for n, att in enumerate(attached, 1):
        _add_attached(col, att, f"attached message {n}", None, depth)
    return tuple(b.freeze() for b in col.blocks)


def extract_quotes(
    text_parts: Sequence[TextPart],
    attached: Sequence[Message],
    *,
    plain_alternatives: Mapping[int, int] | None = None,
) -> tuple[QuotedBlock, ...]:
    """The quoted and forwarded messages inside a mail, outermost first.

    ``text_parts`` are the mail's own decoded parts (HTML parts carry their source in
    ``html``); ``attached`` its message/rfc822 parts, each already parsed (their own
    ``quoted_blocks`` are reused, re-indexed, with ``parent`` pointing at the attached
    message's block).

    ``plain_alternatives`` maps the index of an HTML part to that of an earlier text/plain
    part of the same multipart/alternative. Such an HTML part is not analysed when it can
    only repeat its plain alternative: every address it holds is in a block found in the
    plain part, or outside the plain part's blocks and, in the HTML, before any quote
    markup (see ``_repeats_plain``). When it holds any other address (a truncated plain
    part, a quote the plain part lost) it is analysed in full, as HTML-only mails are.

    HTML that ``leakguard.message.html.html_hazard`` refuses to give the tree builder (deep
    nesting, tens of thousands of tags, hundreds of attributes) is not walked for quote
    markup: the part's flat rendering (``TextPart.text``, made by the parser for the same
    reason) is analysed instead, so header blocks and attributions are still found but
    ``<blockquote>`` levels are not.
    """
    return _extract(text_parts, attached, 0, plain_alternatives)
