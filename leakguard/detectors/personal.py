"""Personal data in the mail's new text and in its attachments (issue 7 §2), masked evidence.

Facts:

* ``personal_data_items``: unmasked personal-data items (distinct values per kind);
* ``personal_data_kinds``: distinct kinds among them;
* ``unmasked_forms``: filled-in forms about a person whose fields are not blacked out;
* ``personal_data.<kind>``: items per kind (only kinds that were found), for rules scoped
  by kind (``personal_data: {kinds: [my_number, bank_account], gte: 1}``);
* ``addressee_mismatches``: a form about one person (its 氏名) mailed to someone else (see
  ``_data_subject_findings``). Other detectors add to this fact too.

Kinds (the stable ids of ``KINDS``) and their rules are listed in ``docs/personal-data.md``.
Each number candidate is found by one regex pass over the NFKC-normalised text and then
judged by its digits (check digits via python-stdnum), its grouping and the words before
it on its line and the lines just above (labels such as マイナンバー, 口座番号, カード番号;
and words that make it something else: 注文番号, 請求書番号, お問い合わせ番号, Order No.).

What is read: every text part of the mail (an HTML part is skipped when a text/plain
alternative of it exists), attached messages, and every section of ``Message.contents``.
What is left out:

* quoted text that every external recipient has already seen: a line inside a quoted
  block (``Message.quoted_blocks``) whose participants (or those of a block it is nested
  in) include all external recipients. Personal data quoted back to the very people who
  wrote it is not a leak; forwarded material that is news to a recipient still counts;
* the sender's signature (after ``-- `` or a ruled line near the end of the new text,
  holding the sender's address, domain, an organisation name or a TEL/FAX line): an
  organisation's published phone number and address are not a citizen's data;
* corporate numbers (法人番号, ``T`` + 13 digits on invoices) are public: they are
  recognised (so that they are never taken for another kind) and counted under
  ``personal_data.corporate_number`` only, never in ``personal_data_items``.

Full values never leave this module: findings carry ``leakguard.masking.mask`` output.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from stdnum import luhn
from stdnum.jp import cn as jp_cn
from stdnum.jp import in_ as jp_in

from leakguard.detectors import DetectorResult
from leakguard.detectors.forms import NAME_HINTS, Form, find_forms
from leakguard.detectors.japanese import display_name_forms, romaji_skeleton, to_hiragana
from leakguard.masking import mask, redact_text
from leakguard.organization import Context
from leakguard.textscan import finditer_lines
from leakguard.types import Address, Finding, Message, QuotedBlock, QuoteKind

DETECTOR = "personal"
FACT_ITEMS = "personal_data_items"
FACT_KINDS = "personal_data_kinds"
FACT_FORMS = "unmasked_forms"
FACT_MISMATCH = "addressee_mismatches"
KIND_FACT_PREFIX = "personal_data."

KINDS: tuple[str, ...] = (
    "my_number",
    "corporate_number",
    "employment_insurance_number",
    "pension_number",
    "bank_account",
    "credit_card",
    "phone",
    "address",
    "birth_date",
    "passport",
    "driving_licence",
    "form_field",
)
PUBLIC_KINDS = frozenset({"corporate_number"})  # found and counted per kind, never an item

MAX_TEXT_CHARS = 2_000_000  # per text; the head is read
MAX_TOTAL_CHARS = 8_000_000  # per message, all texts together
MAX_CANDIDATES = 20_000  # number candidates per text
MAX_FINDINGS = 200  # findings per message (the facts still count everything)
MAX_ATTACHED_DEPTH = 3
_SIGNATURE_MAX_LINES = 15

# --------------------------------------------------------------------------- patterns

# Dashes people put between digits, in every width and script.
# Dashes people put between digits that NFKC leaves alone (U+2212 is what ISO-2022-JP's
# full-width minus decodes to; ー is the long-vowel mark typed instead of a dash).
_DASHES = "‐‑‒–—―−ー"
_DASH_TABLE = str.maketrans(dict.fromkeys(_DASHES, "-"))
_D = "\\-" + _DASHES  # a dash of any kind, inside a character class
# One pass finds every run of 7 digits or more (after NFKC), groups joined by at most two
# of space, dash or parentheses; its edges are checked in Python (``_edges``), which is
# several times cheaper than lookbehinds tried at every position of the text.
_NUMBER_RE = re.compile(rf"[0-9](?:[ {_D}()]{{0,2}}[0-9]){{6,22}}")
_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SEP_SPLIT_RE = re.compile(r"[ \-()]+")
_NON_DIGIT_RE = re.compile(r"\D")

_ERAS = r"明治|大正|昭和|平成|令和|[MTSHR]\.?"
_DATE = (
    rf"(?:(?:{_ERAS})\s?(?:元|\d{{1,2}})\s?[年./{_D}]\s?\d{{1,2}}\s?[月./{_D}]\s?\d{{1,2}}"
    r"\s?日?"
    rf"|(?:19|20)\d{{2}}\s?[年./{_D}]\s?\d{{1,2}}\s?[月./{_D}]\s?\d{{1,2}}\s?日?"
    rf"|\d{{1,2}}[./{_D}]\d{{1,2}}[./{_D}](?:19|20)\d{{2}}"
    r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2},?\s+(?:19|20)\d{2}"
    r"|\d{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?,?\s+(?:19|20)\d{2})"
)
_BIRTH_RE = re.compile(
    r"(?:生年月日|誕生日|(?<![A-Za-z])(?:date\s+of\s+birth|birth\s?date|d\.?o\.?b\.?|born\s+on)"
    r"(?![A-Za-z]))[^0-9A-Za-z明大昭平令\n]{0,12}(?P<date>" + _DATE + r")",
    re.IGNORECASE,
)
_PASSPORT_RE = re.compile(
    r"(?:旅券番号|旅券No\.?|パスポート番号|パスポートNo\.?|passport\s*(?:no\.?|number|#))"
    r"[^A-Za-z0-9\n]{0,12}(?P<value>[A-Z]{2}\d{7})(?![0-9A-Za-z])",
    re.IGNORECASE,
)
_POSTAL_RE = re.compile(rf"(?P<zip>[0-9]{{3}}[{_D}][0-9]{{4}})(?![0-9{_D}])")
# One pass of plain words tells which keyword patterns can match at all (most mail has
# none of them). Plain-word alternations and literal-led patterns are what Python's regex
# engine scans fast; a character class or groups in the alternation costs ten times more.
_HINT_KIND = {
    **dict.fromkeys(
        ("生年月日", "誕生日", "irth", "IRTH", "DOB", "dob", "Dob", "D.O.B", "d.o.b", "orn on"),
        "birth",
    ),
    **dict.fromkeys(("旅券", "パスポート", "assport", "ASSPORT"), "passport"),
    **dict.fromkeys(("〒", "郵便番号"), "zip"),
    **dict.fromkeys(NAME_HINTS, "form"),  # every form names its person
}
_HINTS_RE = re.compile("|".join(re.escape(w) for w in _HINT_KIND))
# (dash, expression): the dash is looked for first (a search for one character is several
# times cheaper than the expression over a long text without it)
_ZIP_HINT_RES = tuple((d, re.compile(re.escape(d) + "[0-9]{4}")) for d in "-" + _DASHES)
_PREFECTURE = (
    r"北海道|東京都|京都府|大阪府|(?:青森|岩手|宮城|秋田|山形|福島|茨城|栃木|群馬|埼玉|千葉|"
    r"神奈川|新潟|富山|石川|福井|山梨|長野|岐阜|静岡|愛知|三重|滋賀|兵庫|奈良|和歌山|鳥取|"
    r"島根|岡山|広島|山口|徳島|香川|愛媛|高知|福岡|佐賀|長崎|熊本|大分|宮崎|鹿児島|沖縄)県"
)
_ADDRESS_AFTER_RE = re.compile(
    rf"[ \t]*(?P<addr>(?:(?:{_PREFECTURE})[^\s\n]{{0,30}}[市区町村郡][^\n]{{0,40}}|"
    r"[^\s\n]{1,8}[市区町村郡][^\s\n]{0,40}\d[^\n]{0,30}))"
)

# Context words, matched in the window before a number (its line and the lines above).
_CTX = {
    # "my number is ..." in English mail is a phone number: only the capitalised term
    "my_number": re.compile(r"マイナンバー|個人番号|My ?Number|[Ii]ndividual [Nn]umber"),
    "corporate_number": re.compile(
        r"法人番号|corporate\s+number|登録番号|適格請求書|インボイス|registration\s+number",
        re.I,
    ),
    "employment_insurance_number": re.compile(r"被保険者番号|雇用保険", re.I),
    "pension_number": re.compile(r"基礎年金番号|年金番号|年金手帳|pension\s+number", re.I),
    "bank": re.compile(
        r"銀行|信用金庫|信金|信用組合|労働金庫|ろうきん|ゆうちょ|農協|支店|"
        r"\bbank\b|\bbranch\b",
        re.I,
    ),
    "account": re.compile(
        r"口座|普通|当座|貯蓄|預金|\baccount\b|\bacct\b|\ba/c\b|\bsavings\b|\bchecking\b", re.I
    ),
    # An organisation as an account holder: legal-entity forms in kanji, in kana (NFKC has
    # turned half-width kana into full-width: ｶﾌﾞｼｷｶﾞｲｼｬ -> カブシキガイシャ) and in the
    # abbreviations banks print (カ) シャ) ザイ) イ) ガク) ...), and municipal bodies.
    "org_holder": re.compile(
        r"株式会社|有限会社|合同会社|合資会社|合名会社|一般社団|一般財団|公益|財団|社団|"
        r"医療法人|社会福祉法人|学校法人|宗教法人|特定非営利活動法人|NPO法人|独立行政法人|"
        r"国立大学法人|地方独立行政法人|協同組合|組合|連合会|協議会|協会|機構|基金|"
        r"\(株\)|\(有\)|\(同\)|\(医\)|\(福\)|\(学\)|\(特非\)|\(財\)|\(社\)|"
        r"(?:カ|ユ|ド|シャ|ザイ|イ|フク|ガク|トクヒ|ソ|キョウ|レン|ダ|エイ)\)|"
        r"\((?:カ|ユ|ド|シャ|ザイ|イ|フク|ガク|トクヒ)(?![ァ-ヺー])|"
        r"カブシキガイシャ|カブシキカイシャ|ユウゲンガイシャ|ゴウドウガイシャ|イリヨウホウジン|"
        r"イリョウホウジン|シャカイフクシホウジン|ガッコウホウジン|ガツコウホウジン|"
        r"トクテイヒエイリ|ザイダンホウジン|シャダンホウジン|"
        r"会計管理者|出納|役所|役場|市長|町長|村長|区長|知事|教育委員会|水道局|企業局|"
        r"会社(?!員|役員)|(?i:\b(?:Inc|Ltd|LLC)\b|\bCorp|\bCo\.,)",
    ),
    "card": re.compile(
        r"カード|クレジット|card|visa|master|jcb|amex|american\s+express|diners|"
        r"有効期限|expir|\bcvv\b|\bcvc\b",
        re.I,
    ),
    "licence": re.compile(r"免許証|運転免許|免許番号|driv(?:er|ing)'?s?\s+licen[cs]e", re.I),
    "phone": re.compile(
        r"電話|携帯|連絡先|ファックス|内線|直通|"
        r"\b(?:tel|fax|phone|telephone|mobile|cell|keitai)\b",
        re.I,
    ),
}
# Words that make a number something else than personal data.
_NOT_PERSONAL_RE = re.compile(
    r"注文|受注|発注|請求書|請求番号|見積|伝票|管理番号|問い?合わ?せ番号|受付番号|予約番号|"
    r"会員番号|お客様番号|顧客番号|契約番号|追跡|お問合せ番号|配送|品番|型番|製品番号|商品|"
    r"シリアル|JAN|ISBN|ロット|\border\b|\binvoice\b|\btracking\b|\bref\b|reference|"
    r"\bserial\b|\bsku\b|\bpo\b|\bticket\b|\bcase\b|\bconfirmation\b|\bbooking\b",
    re.I,
)
# A municipality or prefecture named alone as the holder (口座名義：さいたま市): the line ends
# with it. Two characters or more before 市区町村 (a surname such as 中村 or 木村 has one).
_MUNICIPAL_HOLDER_RE = re.compile(rf"(?:{_PREFECTURE}|[^\s:：()【】]{{2,10}}[市区町村])")
_TAIL_SPLIT_RE = re.compile(r"[\s:：)】\]]")


def _municipal_holder(line: str) -> bool:
    """Whether the line's last word is a municipality or a prefecture (anchored: one
    fullmatch on the last word, not a search along the line)."""
    tail = _TAIL_SPLIT_RE.split(line.rstrip())[-1]
    return 3 <= len(tail) <= 12 and _MUNICIPAL_HOLDER_RE.fullmatch(tail) is not None


# The label of a labelled line (``勤務先：…``, ``【勤務先】…``, ``[勤務先] …``).
_LINE_LABEL_RE = re.compile(
    r"^\s*(?:【(?P<a>[^】\n]{1,12})】|\[(?P<b>[^\]\n]{1,12})\]|(?P<c>[^\s:：]{1,10})\s*[:：]|"
    r"(?P<d>勤務先|勤め先|会社名|所属|職場|学校名|employer|company)\s)",
    re.I,
)
# Labels under which an organisation's name is the account's holder.
_HOLDER_LABEL_RE = re.compile(
    r"名義|振込先|振込口座|受取人|口座名|受取口座|payee|beneficiary|account\s*(?:name|holder)", re.I
)
# Column headers / section labels of identifiers: a number in a table or a section under one
# of them is judged with that label as its context (a list of 氏名 / 個人番号).
_SECTION_LABEL_RE = re.compile(
    r"(?:マイナンバー|個人番号)(?!カード)|My ?Number|MY ?NUMBER|[Ii]ndividual [Nn]umber|"
    r"基礎年金番号|年金番号|"
    r"被保険者番号|雇用保険|免許証番号|運転免許|カード番号|クレジットカード|口座番号|銀行名|"
    r"金融機関|支店名|[Pp]ension [Nn]umber|[Cc]ard [Nn]umber|[Aa]ccount [Nn]umber"
)
# A number with a label of its own on its line (申請番号 1234…) is not a column's value.
_OWN_LABEL_RE = re.compile(r"番号|コード|[Nn]o\.|\bID\b|#|[:：=]")
_SECTION_MAX_LINES = 2000  # a column header this far above still labels its rows
_SECTION_MAX_LABELS = 8
_DIGITS_AFTER_RE = re.compile(r"[0-9]{2,}")
_DATE_RE = re.compile(_DATE)
_BIRTH_COLUMN_RE = re.compile(r"生年月日|[Dd]ate of [Bb]irth|DOB|[Bb]irth ?[Dd]ate")
_OTHER_DATE_LABEL_RE = re.compile(r"日|[Dd]ate|年月")

# Phone numbers of organisations: toll-free, navigation dial, information lines.
_ORG_PHONE_PREFIXES = ("0120", "0800", "0570", "0180", "0990")

_SIGNATURE_RULE_RE = re.compile(
    r"^(?:-- ?|--|[-=_~*#+・─━＝＿〜※■□◆◇☆★●○]{5,}.*|.*[-=_─━＝]{8,})[ \t]*$"
)
_ORG_WORD_RE = re.compile(
    r"株式会社|有限会社|合同会社|\(株\)|\(有\)|法人|役所|役場|庁|省|大学|学校|病院|"
    r"センター|事務所|協会|組合|事業部|本部|部|課|室|係|"
    r"\b(?:inc|ltd|llc|corp|co|company|corporation|department|dept|division|group|"
    r"university|office)\b",
    re.I,
)
# "勤務先：株式会社ABC" is a field of a form, not the first line of a signature
_LABELLED_RE = re.compile(r"\s*[^\s:：]{1,10}\s*[:：]")
_PERSONAL_LABEL_RE = re.compile(
    r"氏名|お名前|フリガナ|生年月日|個人番号|マイナンバー|口座番号|date of birth|\bdob\b|"
    r"full name|passport",
    re.I,
)
_CONTACT_LINE_RE = re.compile(r"tel|fax|電話|phone|https?:|www\.|@|〒", re.I)

# Consumer mail domains: a recipient there is an individual, not an organisation's staff.
_CONSUMER_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.co.jp",
        "ymail.ne.jp",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "outlook.com",
        "outlook.jp",
        "hotmail.com",
        "hotmail.co.jp",
        "live.jp",
        "live.com",
        "msn.com",
        "aol.com",
        "docomo.ne.jp",
        "ezweb.ne.jp",
        "au.com",
        "softbank.ne.jp",
        "i.softbank.jp",
        "ymobile.ne.jp",
        "rakuten.jp",
        "nifty.com",
        "biglobe.ne.jp",
        "so-net.ne.jp",
        "ocn.ne.jp",
        "plala.or.jp",
    }
)

# --------------------------------------------------------------------------- items


@dataclass(frozen=True, slots=True)
class Where:
    """A place in the mail, language-neutral: ``attachment`` is "" for the mail's own text;
    ``section`` is "page 2", "sheet 名簿", "text part 1", "attached message 1"."""

    attachment: str
    section: str
    line: int

    @property
    def shown_attachment(self) -> str:
        """The attachment's name as shown to people: a file name is mail content too and
        may itself carry an identifier (``個人番号_123456789018.pdf``)."""
        return redact_text(self.attachment) if self.attachment else ""

    def evidence(self) -> dict[str, str]:
        return {
            "attachment": self.shown_attachment,
            "section": redact_text(self.section),
            "line": str(self.line),
        }

    def en(self) -> str:
        att = self.shown_attachment
        if self.section == "subject":
            return f"{att} subject".strip() if att else "subject"
        if not att:
            sec = "" if self.section in ("", "text part 1") else f" ({self.section})"
            return f"body line {self.line}{sec}"
        sec = f", {redact_text(self.section)}" if self.section else ""
        return f"{att}{sec}, line {self.line}"


@dataclass(frozen=True, slots=True)
class Item:
    kind: str
    key: str  # what makes two items the same (digits, normalised value); never shown
    masked: str
    where: Where


# --------------------------------------------------------------------------- text helpers


def normalize(text: str) -> str:
    """NFKC: full-width digits, letters, hyphens and spaces to ASCII. Newlines are kept,
    so line numbers stay those of the original text. The other dashes people write
    between digits (``−``, ``ー``, ``‐``) are accepted by the patterns themselves and
    turned into ``-`` in each value found (``_DASH_TABLE``): one pass less over the text."""
    if text.isascii():
        return text
    if len(text) <= _NORMALIZE_PIECE:
        return unicodedata.normalize("NFKC", text)
    return normalize_pieces(text)


# NFKC of a multi-MB text is one C call that holds the GIL (130 ms for 2.2 MB, mass fuzz):
# normalised in pieces that end just after a newline instead. A newline never composes with
# what follows and blocks reordering, so the pieces give the same text as one call.
_NORMALIZE_PIECE = 64 * 1024


def normalize_pieces(text: str, piece: int = _NORMALIZE_PIECE) -> str:
    """``unicodedata.normalize("NFKC", text)`` in pieces ending after a newline."""
    out: list[str] = []
    start, n = 0, len(text)
    while start < n:
        cut = text.find("\n", start + piece) + 1 if start + piece < n else n
        if cut <= 0:
            cut = n
        out.append(unicodedata.normalize("NFKC", text[start:cut]))
        start = cut
    return "".join(out)


_BLANK_LINE_RE = re.compile(r"\n[ \t\u3000]*(?=\n)")


class _Lines:
    """Line numbers of offsets in one text (built on first use)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: list[int] | None = None
        self._blanks: list[int] | None = None
        self._labels: list[tuple[int, str]] | None = None
        self._label_starts: list[int] = []

    def starts(self) -> list[int]:
        if self._starts is None:
            self._starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        return self._starts

    def number(self, pos: int) -> int:
        return bisect.bisect_right(self.starts(), pos)

    def window(self, pos: int, lines_above: int = 1, limit: int = 160) -> str:
        """The text of the line up to ``pos`` and of ``lines_above`` lines above it."""
        starts = self.starts()
        i = bisect.bisect_right(starts, pos) - 1
        begin = starts[max(0, i - lines_above)]
        return self.text[max(begin, pos - limit) : pos]

    def following(self, pos: int, lines_below: int = 2, limit: int = 200) -> str:
        """The rest of the line from ``pos`` and ``lines_below`` lines under it (bounded:
        never a search to the end of a long line)."""
        starts = self.starts()
        i = bisect.bisect_right(starts, pos) + lines_below
        end = starts[i] - 1 if i < len(starts) else len(self.text)
        return self.text[pos : min(end, pos + limit)]

    def line_end(self, pos: int) -> int:
        """The offset of the newline ending the line of ``pos`` (-1 on the last line)."""
        starts = self.starts()
        i = bisect.bisect_right(starts, pos)
        return starts[i] - 1 if i < len(starts) else -1

    def line_text(self, no: int) -> str:
        """Line ``no`` (1-based)."""
        starts = self.starts()
        end = starts[no] - 1 if no < len(starts) else len(self.text)
        return self.text[starts[no - 1] : end]

    def blank_lines(self) -> list[int]:
        """1-based numbers of the blank lines (built on first use)."""
        if self._blanks is None:
            self._blanks = [self.number(m.start()) + 1 for m in _BLANK_LINE_RE.finditer(self.text)]
        return self._blanks

    def block_start(self, pos: int) -> int:
        """The first line of the block (lines between blank lines) holding ``pos``."""
        no = self.number(pos)
        blanks = self.blank_lines()
        k = bisect.bisect_left(blanks, no)
        first = blanks[k - 1] + 1 if k else 1
        return max(first, no - _SECTION_MAX_LINES)

    def section_labels(self, pos: int) -> str:
        """The identifier labels (column headers) above ``pos`` in its block, nearest
        last: what a number in a table row is under."""
        if self._labels is None:
            self._labels = [
                (m.start(), m.group()) for m in finditer_lines(_SECTION_LABEL_RE, self.text)
            ]  # in windows: the GIL is handed over on a long text
            self._label_starts = [p for p, _ in self._labels]
        if not self._labels:
            return ""
        first = self.starts()[self.block_start(pos) - 1]
        hi = bisect.bisect_left(self._label_starts, self.starts()[self.number(pos) - 1])
        lo = max(bisect.bisect_left(self._label_starts, first), hi - _SECTION_MAX_LABELS)
        return " ".join(w for _, w in self._labels[lo:hi])


def _groups(raw: str) -> list[str]:
    return [g for g in _SEP_SPLIT_RE.split(raw.replace("+81", "")) if g]


def _phone_digits(raw: str, digits: str) -> str:
    """National form of a phone number (``+81 90 ...`` -> ``090...``)."""
    if raw.startswith("+81"):
        rest = digits[2:]
        return rest if rest.startswith("0") else "0" + rest
    return digits


def _is_phone(raw: str, digits: str, before: str) -> bool:
    national = _phone_digits(raw, digits)
    n = len(national)
    if not national.startswith("0") or national.startswith("00"):
        return False
    if national.startswith(_ORG_PHONE_PREFIXES):
        return False
    mobile = national[:3] in ("070", "080", "090", "050")
    if not ((n == 11 and mobile) or (n == 10 and not mobile)):
        return False
    groups = _groups(raw)
    if set(national[-8:]) <= {"0"} or (len(groups) == 3 and set(groups[1] + groups[2]) <= {"0"}):
        return False  # 03-0000-0000, 090-0000-0000: a 記入例's placeholder

    grouped = (
        len(groups) == 3
        and len(groups[-1]) == 4
        and 1 <= len(groups[1]) <= 4
        and (raw.startswith("+81") or groups[0].startswith("0"))
    )
    # with a phone word before it: written in one piece, or in the three groups of a
    # Japanese number (a "0123-456789" in two groups is another country's layout)
    return grouped or (len(groups) in (1, 3) and _CTX["phone"].search(before) is not None)


def _card_iin(digits: str) -> bool:
    n = len(digits)
    p2, p4 = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19
    if 300 <= int(digits[:3]) <= 305 or p2 in (36, 38, 39):
        return 14 <= n <= 19
    if digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649 or p2 == 62:
        return 16 <= n <= 19
    return False


# --------------------------------------------------------------------------- one text


_POSITIVE_KEYS = (
    "my_number",
    "employment_insurance_number",
    "pension_number",
    "licence",
    "card",
    "account",
    "phone",
)


def _is_negative(near: str) -> bool:
    """Whether the words before a number make it something else (注文番号, Order No.). Only
    the word labelling this number counts: a positive label after it (``受付番号：0012
    氏名：… 個人番号：…``) or another number between it and this one (``受付番号0012 山田
    1234-5678-9018``) means the negative word labels something else."""
    matches = list(_NOT_PERSONAL_RE.finditer(near))
    if not matches:
        return False
    last = matches[-1]
    after = near[last.end() :]
    if _DIGITS_AFTER_RE.search(after):
        return False
    return not any(_CTX[k].search(after) for k in _POSITIVE_KEYS)


def _classify(raw: str, digits: str, near: str, wide: str) -> str | None:
    """The kind of one number, from its digits, its grouping and the words before it:
    ``near`` is its own line up to it (or the line above when the number starts its line:
    a label above its value), ``wide`` the three lines above too (a bank form's 銀行名 /
    支店名 / 種別 lines)."""
    if _is_negative(near):
        return None
    return _kind(raw, digits, near, wide)


def _kind(raw: str, digits: str, near: str, wide: str) -> str | None:
    """``_classify`` without the negative words."""
    n = len(digits)
    if n == 12:
        if _CTX["licence"].search(near):
            return "driving_licence"
        if jp_in.is_valid(digits) and not raw.startswith("+") and len(set(digits)) > 2:
            grouped = [len(g) for g in _groups(raw)] == [4, 4, 4]
            if _CTX["my_number"].search(near) or grouped:
                return "my_number"
        if not raw.startswith("+81"):
            return None
    if n == 13 and jp_cn.is_valid(digits) and _CTX["corporate_number"].search(near):
        return "corporate_number"
    if 13 <= n <= 19 and luhn.is_valid(digits) and _card_iin(digits) and _CTX["card"].search(near):
        return "credit_card"
    if n == 11 and _CTX["employment_insurance_number"].search(near):
        return "employment_insurance_number"
    if n == 10 and _CTX["pension_number"].search(near):
        return "pension_number"
    if 10 <= n <= 13 and _is_phone(raw, digits, near):
        return "phone"
    if (
        6 <= n <= 8
        and "-" not in raw
        and _CTX["account"].search(near)
        and _CTX["bank"].search(wide)
    ):
        return "bank_account"
    return None


@dataclass(slots=True)
class _TextScan:
    items: list[Item]
    forms: list[Form]


def _has_digit(text: str) -> bool:
    """Whether ``text`` holds an ASCII digit: ten searches for one character each, about a
    seventh of the CPU of ``re.search("[0-9]")`` over a long text without any (issue 11)."""
    return any(d in text for d in "0123456789")


def _edges(t: str, start: int, end: int) -> str | None:
    """The number at ``t[start:end]`` as written (``+81`` and an opening parenthesis
    included), or None when it is glued to a word or code (``G56-0115094107``,
    ``0312345678-A``, ``ABC1234567``)."""
    prev = t[start - 1] if start else ""
    if prev in _ALNUM:
        return None
    if prev in "-./_" and start >= 2 and t[start - 2] in _ALNUM:
        return None
    nxt = t[end] if end < len(t) else ""
    if nxt in _ALNUM or (nxt in "-./_" and end + 1 < len(t) and t[end + 1] in _ALNUM):
        return None
    raw = t[start:end].translate(_DASH_TABLE)
    if prev == "+":
        return "+" + raw if raw.startswith("81") else None
    if prev == "(" and ")" in raw[:6]:
        return "(" + raw
    return raw


# How a form field's value is masked, by field type.
_FIELD_MASK = {
    "name": "name",
    "kana": "name",
    "address": "address",
    "birth_date": "birth_date",
    "email": "email",
    "phone": "phone",
    "id": "my_number",
}


# Kinds a sender's signature may hold about the sender: contact details. An identifier
# (My Number, card, account, pension number, ...) is never part of a signature.
_CONTACT_KINDS = frozenset({"phone", "address", "form_field"})


def _org_holder(lines: _Lines, start: int, end: int) -> bool:
    """Whether the account at ``t[start:end]`` is held by an organisation: an entity form or
    a municipal body on its own line or on an unlabelled or holder-labelled line (口座名義,
    振込先) among the three lines above and two below. A labelled line of something else
    (``勤務先：株式会社…`` in a person's form) is not the holder."""
    above = lines.window(start, lines_above=3, limit=300).split("\n")
    below = lines.following(end).split("\n")
    own = above[-1] + "\n" + below[0]
    if _CTX["org_holder"].search(own) or _municipal_holder(below[0]):
        return True
    for line in (*above[:-1], *below[1:]):
        m = _LINE_LABEL_RE.match(line)
        label = m.group("a") or m.group("b") or m.group("c") or m.group("d") if m else ""
        if label and not _HOLDER_LABEL_RE.search(label):
            continue
        if _CTX["org_holder"].search(line) or _municipal_holder(line):
            return True
    return False


def _birth_columns(t: str, lines: _Lines) -> Iterator[tuple[int, str]]:
    """Dates in the rows under a 生年月日 column header (a roster, a sheet): (offset, date).
    The header line must hold no other date column (申請日, 受付日) and no date itself."""
    for m in _BIRTH_COLUMN_RE.finditer(t):
        no = lines.number(m.start())
        header = lines.line_text(no)
        if _DATE_RE.search(header) or _OTHER_DATE_LABEL_RE.search(_BIRTH_COLUMN_RE.sub("", header)):
            continue
        starts = lines.starts()
        for row in range(no + 1, min(len(starts), no + _SECTION_MAX_LINES) + 1):
            text = lines.line_text(row)
            if not text.strip():
                break
            d = _DATE_RE.search(text)
            if d is not None:
                yield starts[row - 1] + d.start(), d.group()


def scan_text(
    text: str,
    attachment: str,
    section: str,
    skip_lines: frozenset[int] = frozenset(),
    signature: frozenset[int] = frozenset(),
) -> _TextScan:
    """Every personal-data item in one text (``skip_lines``: 1-based lines to leave out;
    ``signature``: the sender's signature lines, where only contact details are left out)."""
    t = normalize(text[:MAX_TEXT_CHARS])
    lines = _Lines(t)
    items: list[Item] = []
    out = _TextScan(items, [])

    def add(kind: str, key: str, value: str, pos: int) -> None:
        line = lines.number(pos)
        if line in skip_lines or (line in signature and kind in _CONTACT_KINDS):
            return
        items.append(Item(kind, key, mask(kind, value), Where(attachment, section, line)))

    hints: set[str] = set()
    for h in _HINTS_RE.finditer(t):
        hints.add(_HINT_KIND[h.group()])
        if len(hints) == 3 and "zip" not in hints:
            break
    if "zip" not in hints and any(d in t and rx.search(t) for d, rx in _ZIP_HINT_RES):
        hints.add("zip")
    if _has_digit(t):
        for count, m in enumerate(_NUMBER_RE.finditer(t)):
            if count >= MAX_CANDIDATES:
                break
            raw = _edges(t, m.start(), m.end())
            if raw is None:
                continue
            digits = _NON_DIGIT_RE.sub("", raw)
            near = lines.window(m.start(), lines_above=0)
            if not near.strip(" \t:=|[]()【】「」+"):
                near = lines.window(m.start(), lines_above=1)
            wide = lines.window(m.start(), lines_above=3, limit=300)
            kind = _kind(raw, digits, near, wide)
            if kind is None:
                # a row of a table (or a line of a section) under an identifier's header
                labels = "" if _OWN_LABEL_RE.search(near) else lines.section_labels(m.start())
                if labels:
                    kind = _kind(raw, digits, labels, wide + "\n" + labels)
            if kind is None or _is_negative(near):  # the negative words last: the dearest
                continue
            if kind == "bank_account" and _org_holder(lines, m.start(), m.end()):
                continue  # an organisation's account (an invoice's 振込先)
            key = _phone_digits(raw, digits) if kind == "phone" else digits
            add(kind, key, raw, m.start())
        if "birth" in hints:
            for m in _BIRTH_RE.finditer(t):
                date = m.group("date").translate(_DASH_TABLE)
                add("birth_date", _NON_DIGIT_RE.sub("", date) + date[:2], date, m.start("date"))
            for pos, found in _birth_columns(t, lines):
                date = found.translate(_DASH_TABLE)
                add("birth_date", _NON_DIGIT_RE.sub("", date) + date[:2], date, pos)
        if "zip" in hints:
            for count, m in enumerate(_POSTAL_RE.finditer(t)):
                if count >= MAX_CANDIDATES:
                    break  # bounded like the number candidates
                start = m.start()
                if start and (t[start - 1] in _ALNUM or t[start - 1] in _D):
                    continue
                rest = _ADDRESS_AFTER_RE.match(t, m.end())
                if rest is None:
                    # the zip on its own line (bounded: the next line start is looked up,
                    # never searched for along a long line)
                    nxt = lines.line_end(m.end())
                    if nxt < 0 or nxt - m.end() > 40 or t[m.end() : nxt].strip():
                        continue
                    rest = _ADDRESS_AFTER_RE.match(t, nxt + 1)  # zip on its own line
                    if rest is None:
                        continue
                zipcode = m.group("zip").translate(_DASH_TABLE)
                value = f"〒{zipcode} {rest.group('addr')}"
                key = zipcode + rest.group("addr")[:12]
                add("address", key, value, start)
        if "passport" in hints:
            for m in _PASSPORT_RE.finditer(t):
                value = m.group("value").upper()
                add("passport", value, value, m.start("value"))
    out.forms = find_forms(t, skip_lines | signature) if "form" in hints else []
    typed_lines = {i.where.line for i in items}
    for form in out.forms:
        if not form.unmasked:
            continue
        for f in form.fields:
            if f.masked or f.line in typed_lines:
                continue
            shown = mask(_FIELD_MASK.get(f.type, "field"), f.value)
            items.append(
                Item(
                    "form_field",
                    f"{f.type}:{f.value}",
                    f"{f.label}: {shown}",
                    Where(attachment, section, f.line),
                )
            )
    return out


# Kinds whose values text shown to people must not carry in full (``identifier_keys``).
_MASKED_KINDS = frozenset(
    {
        "my_number",
        "employment_insurance_number",
        "pension_number",
        "bank_account",
        "credit_card",
        "phone",
        "passport",
        "driving_licence",
    }
)


def identifier_keys(text: str) -> dict[str, str]:
    """The identifiers this detector finds in ``text``, as {digits (a passport: its
    upper-case value; a phone: its national digits): kind}. For
    ``leakguard.masking.mask_identifiers``, so that what is shown masked is exactly what
    the detector counts."""
    found = scan_text(text[:MAX_TEXT_CHARS], "", "").items
    return {it.key: it.kind for it in found if it.kind in _MASKED_KINDS}


# --------------------------------------------------------------------------- the mail's own text


def _block_line(block: QuotedBlock, where: str) -> int | None:
    """The line a block starts at when it is in the text part ``where`` ("text part 1")."""
    prefix = where + ", line "
    if not block.location.startswith(prefix):
        return None
    try:
        return int(block.location[len(prefix) :])
    except ValueError:
        return None


def _externals(msg: Message, ctx: Context) -> list[Address]:
    seen: set[str] = set()
    out: list[Address] = []
    for a in (*msg.envelope_rcpts, *msg.to, *msg.cc, *msg.bcc):
        if not a.domain or a.key in seen or ctx.org.is_internal(a):
            continue
        if a.key in ctx.sender_aliases or ctx.org.is_mailing_list(a.key):
            continue
        seen.add(a.key)
        out.append(a)
    return out


def _seen_by_all(blocks: Sequence[QuotedBlock], idx: int, externals: Sequence[Address]) -> bool:
    """Whether every external recipient took part in block ``idx`` or one it is nested in."""
    people: set[str] = set()
    cur: int | None = idx
    hops = 0
    while cur is not None and 0 <= cur < len(blocks) and hops < 64:
        people |= {a.key for a in blocks[cur].participants}
        cur = blocks[cur].parent
        hops += 1
    return all(a.key in people for a in externals)


def _known_quoted_lines(
    text: str, where: str, blocks: Sequence[QuotedBlock], externals: Sequence[Address]
) -> set[int]:
    """Lines of a text part that are quoted material every external recipient has seen.

    A header block (a forwarded or Outlook-quoted message) runs to the end of the part; an
    attribution or ``>`` quote covers its ``>`` lines. A line belongs to the last block
    starting at or above it that covers it.
    """
    starts: list[tuple[int, int, bool]] = []  # (line, block index, header block)
    for i, b in enumerate(blocks):
        at = _block_line(b, where)
        if at is not None:
            starts.append((at, i, b.kind == QuoteKind.HEADER_BLOCK))
    if not starts:
        return set()
    seen = {idx: _seen_by_all(blocks, idx, externals) for _, idx, _ in starts}
    if not any(seen.values()):
        return set()  # everything quoted is news to someone: nothing to leave out
    starts.sort()
    known: set[int] = set()
    lines = text.split("\n")
    k = -1
    header_idx: int | None = None
    quote_idx: int | None = None
    for no, line in enumerate(lines, 1):
        while k + 1 < len(starts) and starts[k + 1][0] <= no:
            k += 1
            _, block_idx, header = starts[k]
            if header:
                header_idx, quote_idx = block_idx, None
            else:
                quote_idx = block_idx
        quoted = line.lstrip().startswith((">", "＞"))
        idx = quote_idx if (quoted and quote_idx is not None) else header_idx
        if idx is not None and seen[idx]:
            known.add(no)
    return known


def _quote_start(text: str, where: str, blocks: Sequence[QuotedBlock]) -> int:
    """The first line of quoted material in a part (one past the last line when none)."""
    first = text.count("\n") + 2
    for b in blocks:
        line = _block_line(b, where)
        if line is not None:
            first = min(first, line)
    return first


def signature_lines(text: str, end_line: int, sender: Address | None) -> set[int]:
    """Lines of the sender's signature at the end of the new text (lines before
    ``end_line``): from a ``-- `` or ruled line, or the trailing lines from one naming an
    organisation, when that block is short and shows the sender's address, domain, an
    organisation or a TEL/FAX/URL line."""
    # only the tail of the new text is read: find where line ``end_line`` starts
    stop = len(text)
    total = text.count("\n") + 1
    if end_line <= total:
        stop = 0
        for _ in range(end_line - 1):
            stop = text.find("\n", stop) + 1
    cut = max(0, stop - 3000)
    cut = text.rfind("\n", 0, cut) + 1 if cut else 0
    first_no = text.count("\n", 0, cut)  # lines before the tail
    lines = text[cut:stop].split("\n")
    if stop < len(text) and lines and lines[-1] == "":
        lines.pop()
    while lines and not lines[-1].strip():
        lines.pop()
    n = len(lines)
    if n == 0:
        return set()
    low = max(0, n - _SIGNATURE_MAX_LINES - 1)
    marks: list[str] = []
    if sender is not None:
        marks = [sender.addr.lower(), "@" + sender.domain.lower()] if sender.domain else []
    start: int | None = None
    for i in range(n - 2, low - 1, -1):
        # the lowest rule with text under it: in a ruled box the rule above the block (the
        # one under it ends the text); a form set between rules above stays new text
        rule = lines[i].strip()
        if len(rule) <= 200 and _SIGNATURE_RULE_RE.match(rule):
            start = i
            break
    ruled = start is not None
    if start is None:
        # no rule: the trailing lines from one naming an organisation (never the first line)
        for i in range(max(low, n - 8, 0 if first_no else 1), n):
            line = lines[i]
            if len(line) <= 60 and not _LABELLED_RE.match(line) and _ORG_WORD_RE.search(line):
                start = i
                break
    if start is None:
        return set()
    block = "\n".join(lines[start:]).lower()
    if _PERSONAL_LABEL_RE.search(block):
        return set()  # 氏名 / 生年月日 / 個人番号 ...: a form about a person, not a signature
    contact = _CONTACT_LINE_RE.search(block) is not None
    own = any(m and m in block for m in marks) or _ORG_WORD_RE.search(block) is not None
    if not ((ruled and (own or contact)) or (contact and own)):
        return set()
    return set(range(first_no + start + 1, first_no + n + 1))


_ALT_COMPARE_CHARS = 4000
_WIDE_NUMBER_RE = re.compile(rf"\d(?:[ 　{_D}()（）－]{{0,2}}\d){{6,22}}")


def _carries(plain: str, html: str) -> bool:
    """Whether a plain alternative really carries the HTML's text: at least half its length
    (a stub 「HTML対応のメールソフトでご覧ください。」 is not) and, for a short HTML text (where a
    stub can reach half its length), every long number of the HTML in it too. A long HTML's
    numbers are not compared: that would cost a pass over every HTML part of every mail."""
    if len(plain) * 2 < len(html):
        return False
    if len(html) > _ALT_COMPARE_CHARS:
        return True
    runs = _WIDE_NUMBER_RE.findall(html)  # any script's digits: no NFKC pass
    if not runs:
        return True
    digits_plain = _NON_DIGIT_RE.sub("", normalize(plain))
    return all(_NON_DIGIT_RE.sub("", normalize(r)) in digits_plain for r in runs)


def _alternatives(msg: Message) -> set[int]:
    """Indexes of HTML parts that have a text/plain sibling (same multipart parent) that
    carries the same text (``_carries``)."""
    plain_by_parent: dict[str, list[str]] = {}
    for p in msg.text_parts:
        if p.content_type.lower() == "text/plain" and p.text.strip():
            plain_by_parent.setdefault(p.path.rpartition(".")[0], []).append(p.text)
    out: set[int] = set()
    for i, p in enumerate(msg.text_parts):
        if p.content_type.lower() != "text/html":
            continue
        plains = plain_by_parent.get(p.path.rpartition(".")[0])
        if plains and any(_carries(x, p.text) for x in plains):
            out.add(i)
    return out


_Source = tuple[str, str, str, frozenset[int], frozenset[int]]


def _own_texts(
    msg: Message, ctx: Context, externals: Sequence[Address], depth: int, label: str
) -> Iterator[_Source]:
    """(text, attachment, section, lines to skip, signature lines) for the mail's text, its
    Subject and attached mails."""
    skip_html = _alternatives(msg)
    n_text = n_html = 0
    blocks = msg.quoted_blocks
    for i, part in enumerate(msg.text_parts):
        is_html = part.content_type.lower() == "text/html"
        if is_html:
            n_html += 1
            where = f"HTML part {n_html}"
        else:
            n_text += 1
            where = f"text part {n_text}"
        if i in skip_html or not part.text.strip():
            continue
        skip: set[int] = set()
        signature: set[int] = set()
        if depth == 0 and not is_html:
            skip |= _known_quoted_lines(part.text, where, blocks, externals)
            end = _quote_start(part.text, where, blocks)
            signature = signature_lines(part.text, end, msg.sender) - skip
        yield part.text, label, where, frozenset(skip), frozenset(signature)
    if msg.subject.strip():
        # after the body: an item in both is reported where the body has it
        yield msg.subject[:1000], label, "subject", frozenset(), frozenset()
    if depth >= MAX_ATTACHED_DEPTH:
        return
    for n, att in enumerate(msg.attached_messages, 1):
        name = f"attached message {n}"
        block = next(
            (
                j
                for j, b in enumerate(blocks)
                if b.kind == QuoteKind.ATTACHED_MESSAGE and b.location == name
            ),
            None,
        )
        if (
            depth == 0
            and block is not None
            and externals
            and _seen_by_all(blocks, block, externals)
        ):
            continue
        yield from _own_texts(
            att, ctx, externals, depth + 1, (label + " / " if label else "") + name
        )


# --------------------------------------------------------------------------- data subject


def _person_name_forms(display: str) -> tuple[str, str] | None:
    """(kanji, reading skeleton) of a display name that is evidently one person's full name
    (two words or more, no organisation or role words), else None."""
    if not display or _ORG_WORD_RE.search(display) or "担当" in display or "窓口" in display:
        return None
    for f in display_name_forms(display):
        if f.full and (f.cjk or f.kana or f.romaji):
            reading = romaji_skeleton("".join(f.romaji)) if f.romaji else ""
            return f.cjk or f.kana, reading
    return None


def _subject_forms(form: Form) -> tuple[str, str] | None:
    name = unicodedata.normalize("NFKC", form.subject)
    if not name:
        return None
    forms = display_name_forms(name)
    cjk = next((f.cjk or f.kana for f in forms if f.cjk or f.kana), "")
    reading = ""
    kana = form.subject_kana
    if kana:
        kana_forms = display_name_forms(to_hiragana(unicodedata.normalize("NFKC", kana)))
        reading = next((romaji_skeleton("".join(f.romaji)) for f in kana_forms if f.romaji), "")
    if not reading:
        reading = next(
            (romaji_skeleton("".join(f.romaji)) for f in forms if f.romaji and not f.cjk), ""
        )
    if not cjk and not reading:
        return None
    return cjk, reading


def _same_person(a: tuple[str, str], b: tuple[str, str]) -> bool | None:
    """True/False when comparable, None when the two forms share no script."""
    a_cjk, a_read = a
    b_cjk, b_read = b
    if a_cjk and b_cjk:
        return a_cjk in b_cjk or b_cjk in a_cjk
    if a_read and b_read:
        return a_read == b_read or sorted(a_read) == sorted(b_read)
    return None


def _data_subject_findings(
    forms: Sequence[tuple[Form, Where]], msg: Message, externals: Sequence[Address]
) -> list[Finding]:
    """A form about one person, mailed to individuals none of whom is that person.

    Conservative on purpose: every external recipient must be at a consumer mail domain (a
    private person, not an organisation's staff who handle other people's forms every day)
    with a display name that is a person's full name, comparable with the form's 氏名 (both
    in kanji, or readings through the フリガナ field), and different from it; and the form's
    subject must not be the sender. Anything unknown stays quiet.
    """
    if not externals or not forms:
        return []
    people: list[tuple[Address, tuple[str, str]]] = []
    for a in externals:
        if a.domain not in _CONSUMER_DOMAINS:
            return []
        pf = _person_name_forms(a.display_name)
        if pf is None:
            return []
        people.append((a, pf))
    sender_names = [x for x in (_person_name_forms(f.display_name) for f in msg.from_) if x]
    out: list[Finding] = []
    seen: set[str] = set()
    for form, where in forms:
        subject = _subject_forms(form)
        if subject is None or subject[0] + subject[1] in seen:
            continue
        if any(_same_person(subject, s) is not False for s in sender_names):
            continue
        verdicts = [_same_person(subject, pf) for _, pf in people]
        if any(v is not False for v in verdicts):
            continue
        seen.add(subject[0] + subject[1])
        shown = mask("name", form.subject)
        out.append(
            Finding(
                detector=DETECTOR,
                fact=FACT_MISMATCH,
                addresses=tuple(a.addr for a, _ in people),
                detail=(
                    f"a form about {shown} ({where.en()}) goes to "
                    f"{', '.join(a.addr for a, _ in people)}, who is someone else"
                ),
                evidence={"kind": "data_subject", "masked": shown, **where.evidence()},
            )
        )
    return out


# --------------------------------------------------------------------------- the detector


def _finding(item: Item) -> Finding:
    return Finding(
        detector=DETECTOR,
        fact=FACT_ITEMS,
        addresses=(),
        detail=f"{item.kind.replace('_', ' ')} {item.masked} ({item.where.en()})",
        evidence={"kind": item.kind, "masked": item.masked, **item.where.evidence()},
    )


def detect(msg: Message, ctx: Context) -> DetectorResult:
    externals = _externals(msg, ctx)
    budget = MAX_TOTAL_CHARS
    sources: list[_Source] = list(_own_texts(msg, ctx, externals, 0, ""))
    for content in msg.contents:
        for sec in content.sections:
            sources.append((sec.text, content.name, sec.location, frozenset(), frozenset()))
    items: list[Item] = []
    forms: list[tuple[Form, Where]] = []
    for text, attachment, section, skip, signature in sources:
        if budget <= 0:
            break
        text = text[:budget]
        budget -= len(text)
        scan = scan_text(text, attachment, section, skip, signature)
        items.extend(scan.items)
        forms.extend((f, Where(attachment, section, f.first_line)) for f in scan.forms)

    # one item per distinct value of a kind (an HTML-only duplicate, a number repeated)
    unique: dict[tuple[str, str], Item] = {}
    for it in items:
        unique.setdefault((it.kind, it.key), it)
    per_kind: dict[str, int] = {}
    for kind, _ in unique:
        per_kind[kind] = per_kind.get(kind, 0) + 1
    counted = [it for (kind, _), it in unique.items() if kind not in PUBLIC_KINDS]
    unmasked = [(f, w) for f, w in forms if f.unmasked]
    facts: dict[str, int] = {
        FACT_ITEMS: len(counted),
        FACT_KINDS: len({it.kind for it in counted}),
        FACT_FORMS: len(unmasked),
    }
    for kind, n in per_kind.items():
        facts[KIND_FACT_PREFIX + kind] = n
    findings = [_finding(it) for it in counted[:MAX_FINDINGS]]
    for form, where in unmasked[:MAX_FINDINGS]:
        open_fields = sum(1 for f in form.fields if not f.masked)
        findings.append(
            Finding(
                detector=DETECTOR,
                fact=FACT_FORMS,
                addresses=(),
                detail=(
                    f"a filled-in form about {mask('name', form.subject) or 'a person'} with "
                    f"{open_fields} unmasked field(s) ({where.en()})"
                ),
                evidence={
                    "kind": "form",
                    "masked": mask("name", form.subject) if form.subject else "",
                    "fields": str(open_fields),
                    **where.evidence(),
                },
            )
        )
    mismatches = _data_subject_findings(unmasked, msg, externals)
    if mismatches:
        facts[FACT_MISMATCH] = len(mismatches)
        findings.extend(mismatches)
    return DetectorResult(facts=facts, findings=tuple(findings))
