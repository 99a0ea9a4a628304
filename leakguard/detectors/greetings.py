"""Where a mail says whom it is for: greetings, address blocks and destination labels.

Read by the addressee detector (``leakguard.detectors.addressee``), which compares what is
found here with the recipients. Found:

* the greeting / address block at the top of the mail's *new* text (never quoted text):
  「株式会社C 採用ご担当者様」, 「みらい建設株式会社 総務部 山田様」 (also over three lines),
  「山田太郎 様」, 「山田様、佐藤様」, ``Dear Ms Tanaka,``, ``Dear Hiring Team at Acme,``, a
  letter's ``To: … 御中`` / ``Attn:`` line;
* the company named as an application's destination (「応募先：株式会社C」, 「推薦先企業：…」),
  in the new text and in attachment text;
* the addressee line at the top of an attached letter (first lines of its first page or
  sheet: 「株式会社〇〇 御中」, 「〇〇 様」).

Not addressees: 「各位」, 「ご担当者様」 or a department alone, ``Dear All``, a post
(「人事部長殿」, 「横浜市長 様」), several people joined by "and", ``Hi …`` lines, anything
after the first line of prose. The new text ends at the first quote marker (``>``,
separator lines, ``From:`` / 差出人 header lines, attributions); an HTML-only mail is read
again with its ``<blockquote>`` markup when a greeting was seen in its flat rendering.

Work is bounded: the top ``MAX_HEAD_LINES`` lines of the first text part,
``MAX_LABEL_CHARS`` of new text for destination labels and ``MAX_CONTENT_CHARS`` of
attachment text; every regex is anchored or linear. Mail text is hostile: nothing here
raises on any input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from leakguard.message.html import html_hazard
from leakguard.message.quotes import render_html_quotes
from leakguard.types import Message

MAX_HEAD_CHARS = 3000  # of the first text part, searched for the greeting
MAX_HEAD_LINES = 6  # non-blank lines at the top where a greeting may stand
MAX_BLOCK_LINES = 3  # address-block lines above the honorific line
MAX_LINE_CHARS = 80  # longer lines are prose, not an address
MAX_LABEL_CHARS = 20_000  # of new text searched for 応募先 / 推薦先 labels
MAX_CONTENT_CHARS = 50_000  # of attachment text searched for labels, per message
MAX_LETTER_LINES = 12  # first lines of an attached letter searched for its addressee
MAX_ADDRESSEES = 8  # per message
MAX_HTML_CHARS = 2_000_000  # of an HTML-only mail re-rendered with quote markers

# --------------------------------------------------------------------------- vocabulary


def word_set(spec: str) -> frozenset[str]:
    """A word list written as one string (one space between words)."""
    return frozenset(spec.split())


# Honorifics that end an addressee. Longer forms first so 「ご担当者様」 is not read as 「様」.
_HONORIFIC = (
    r"ご担当者様|ご担当者さま|ご担当者殿|ご担当者各位|ご担当様|担当者様|担当者殿|"
    r"御中|各位|様|さま|殿|先生|さん"
)
_GREETING_RE = re.compile(
    rf"^(?P<name>[^、。，．！？!?「」『』:：@＠<>]{{1,60}}?)[ \u3000]*(?P<hon>{_HONORIFIC})"
    r"(?=$|[ \u3000、,，。．:：!！\)）])"
)
_MORE_RE = re.compile(r"[ \u3000]*[、,，・/／][ \u3000]*|[ \u3000]+")
_DEAR_RE = re.compile(
    r"^(?:dear|attn\.?|attention)[ \t]*[:：]?[ \t]+"
    r"(?P<name>[^,:;!<>@\n]{1,80}?)[ \t]*[,:;!]?[ \t]*$",
    re.IGNORECASE,
)
_TO_LINE_RE = re.compile(
    r"^(?:to|宛先|宛名|送付先)[ \t\u3000]*[:：][ \t\u3000]*(?P<rest>.{1,80})$", re.IGNORECASE
)
# Lines that start quoted or forwarded material (or the header block of one): the new text
# ends there.
_QUOTE_START_RE = re.compile(
    r"^(?:[>＞|｜]"
    r"|-{2,}|_{5,}|={5,}|―{3,}|ー{5,}"
    r"|(?:from|sent|date|subject|cc|差出人|送信者|送信日時|日時|件名)[ \t\u3000]*[:：]"
    r"|begin forwarded message|forwarded message"
    r"|on .{4,200}\bwrote:?$"
    r"|.{0,200}(?:wrote|writes|書きました|のメール|のメッセージ)[:：]$"
    r"|\d{4}[/年\-].{0,120}[<＜].{0,120}[>＞][:：]?$)",
    re.IGNORECASE,
)
# Addressees that name nobody in particular.
_GENERIC_NAMES = word_set(
    "皆 皆様 皆さま みな みなさま みんな 各位 関係者 関係各位 お客 お客様 保護者 会員 利用者 "
    "受講者 参加者 応募者 職員 社員 教職員 先生方 皆々 ご一同 一同 担当 ご担当 担当者 ご担当者 "
    "採用担当 採用ご担当 ご関係者 関係者各位 取引先 お取引先 株主 会員各位"
)
_GENERIC_LATIN = word_set(
    """all team colleagues colleague sir sirs madam madame friends friend everyone everybody
    members member customer customers hiring manager managers committee board partners
    partner folks guys reviewers reviewer editor editors recruiter recruiters applicant
    applicants candidate candidates staff users user client clients valued students student
    parents parent residents participants participant sponsors supporters subscriber
    subscribers shareholders investors gentlemen ladies mesdames messrs sales support hr
    human resources department dept admissions office officer officers whom concern it may
    the and or of for to sirs team's group list owner owners administrator admin webmaster
    teacher teachers coach class families family neighbors neighbours community traders
    trader investor investors region division desk santa holders visitors guests attendees
    delegates volunteers employees employee associates associate analysts analyst brokers
    counterparties counterparty vendors vendor suppliers supplier contractors contractor
    agents agent authors author readers reader listeners viewers patrons alumni graduates
    faculty council panel fellows fellow directors director leaders leader coordinators
    coordinator representatives representative mom dad mother father son daughter honey
    darling dear sweetheart buddy pal boss gang western eastern northern southern central
    north south east west citizens citizen taxpayers voters prospective potential future
    new current former respected esteemed distinguished honorable honored participants'
    user's colleague's world everyone's program programme project committee's
    """
)
_LATIN_TITLES = word_set("mr mrs ms miss mx dr prof professor mister sir dame")
# Words of an address block that name a unit inside an organisation, not the organisation.
_DEPT_SUFFIX_RE = re.compile(
    r"(?:部|課|室|係|局|本部|事業部|支店|支社|営業所|出張所|事務所|グループ|チーム|担当|窓口|"
    r"事務局|センター長|部門|推進室|採用|人事|総務|経理|営業|広報|購買|法務|秘書|受付)$"
)
_TITLE_WORDS = word_set(
    "部長 課長 係長 室長 所長 局長 次長 主任 主査 主事 社長 副社長 専務 常務 取締役 "
    "代表取締役 代表 会長 理事長 理事 院長 校長 教頭 園長 支店長 店長 センター長 担当 "
    "課長補佐 部長代理 マネージャー リーダー 教授 准教授 弁護士 税理士 市長 町長 村長 区長 "
    "知事 大臣 議長 委員長 学長 総長 署長 館長 教育長"
)
_TITLES_LONGEST_FIRST = tuple(sorted(_TITLE_WORDS, key=len, reverse=True))
# Company decorations (stripped for comparison; their presence makes a word a company).
COMPANY_RE = re.compile(
    r"\((?:株|有|合|名|資|社|財|一社|一財|公社|公財|独|特非|医|学|福)\)"
    r"|株式会社|有限会社|合同会社|合資会社|合名会社"
    r"|(?:一般|公益)(?:社団|財団)法人|独立行政法人|地方独立行政法人|特定非営利活動法人"
    r"|npo法人|学校法人|医療法人|社会福祉法人|宗教法人|国立大学法人"
    r"|\bco\.?,?\s*ltd\b\.?|\bcorp(?:oration)?\b\.?|\binc\b\.?|\bllc\b|\bltd\b\.?"
    r"|\bk\.k\.|\bgmbh\b|\bplc\b|\bkabushiki\s+kaisha\b",
    re.IGNORECASE,
)
# Endings that make a display name or a 御中 addressee an organisation's name.
ORG_SUFFIX_RE = re.compile(
    r"(?:会社|センター|事務所|大学|学校|学園|銀行|信用金庫|病院|医院|クリニック|協会|組合|財団|"
    r"機構|研究所|商事|商店|工業|建設|設計|不動産|産業|製作所|ホールディングス|グループ|"
    r"市役所|区役所|町役場|村役場|役所|役場|県庁|都庁|府庁|道庁|省|庁|"
    r"\binc\.?|\bcorp\.?|\bcorporation|\bltd\.?|\bllc|\bcompany|\bgroup|\bholdings|"
    r"\buniversity|\bbank|\bagency)$",
    re.IGNORECASE,
)
# Labels naming the organisation an application or a referral goes to.
_DEST_LABEL_RE = re.compile(
    r"^[ \t\u3000・■□◆◇●○※\-]*[【\[［(（]?"
    r"(?P<label>応募先(?:企業|会社|法人)?(?:名)?|応募企業(?:名)?|推薦先(?:企業|会社)?(?:名)?|"
    r"紹介先(?:企業|会社)?(?:名)?|ご応募先)"
    r"[】\]］)）]?[ \t\u3000]*[:：]?[ \t\u3000]*(?P<value>[^\n]{2,60})$",
    re.MULTILINE,
)
_DEST_QUICK_RE = re.compile("応募|推薦先|紹介先")


# --------------------------------------------------------------------------- addressees


@dataclass(frozen=True, slots=True)
class Addressee:
    """One party the mail says it is written for."""

    text: str  # as written (trimmed), for people to read
    where: str  # "text part 1, line 2"
    where_ja: str  # "本文 1, 2 行目"
    source: str  # "greeting", "destination", "letter"
    orgs: tuple[str, ...] = ()  # organisation names as written (decorations kept)
    people: tuple[str, ...] = ()  # person names (honorifics and titles removed)


def _clean(line: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", line).split())


def _tokens(text: str) -> list[str]:
    """Words of an address block, a bare company decoration joined to its neighbour."""
    words = [w for w in re.split(r"[ \u3000]+", text) if w]
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if COMPANY_RE.fullmatch(w) and i + 1 < len(words) and not out:
            out.append(w + words[i + 1])
            i += 2
            continue
        if COMPANY_RE.fullmatch(w) and out:
            out[-1] = out[-1] + w
            i += 1
            continue
        out.append(w)
        i += 1
    return out[:10]


def is_company(word: str) -> bool:
    return COMPANY_RE.search(word) is not None


def _is_dept(word: str) -> bool:
    return not is_company(word) and _DEPT_SUFFIX_RE.search(word) is not None


def _strip_title(word: str) -> str:
    for t in _TITLES_LONGEST_FIRST:
        if word.endswith(t) and len(word) > len(t):
            return word[: -len(t)]
    return word


def _person_ok(name: str) -> bool:
    letters = name.replace(" ", "")
    if not letters or letters in _GENERIC_NAMES or "担当" in letters:
        return False
    if any(c.isdigit() for c in letters):
        return False
    if letters.isascii():
        return letters.replace("-", "").replace("'", "").replace(".", "").isalpha()
    return len(letters) <= 10 and not ORG_SUFFIX_RE.search(letters)


def _parse_block(block: str, hon: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(organisations, people) named by an address block ending with ``hon``."""
    words = _tokens(block)
    orgs = [w for w in words if is_company(w)]
    rest = [w for w in words if not is_company(w)]
    depts = [i for i, w in enumerate(rest) if _is_dept(w) or w in _TITLE_WORDS]
    if not orgs and depts and depts[0] > 0 and hon not in ("各位",):
        # 「みらい建設 総務部 山田様」: the words before the first department name an organisation
        orgs = [" ".join(rest[: depts[0]])]
        rest = rest[depts[0] :]
    if hon == "御中":
        if not orgs and rest and not _is_dept(rest[0]) and rest[0] not in _GENERIC_NAMES:
            orgs = [rest[0]]
        return tuple(orgs), ()
    if hon.endswith("各位") or "担当" in hon:
        if not orgs and len(rest) >= 2 and not _is_dept(rest[0]) and rest[0] not in _GENERIC_NAMES:
            orgs = [rest[0]]
        return tuple(orgs), ()
    person_words = [w for w in rest if not _is_dept(w) and w not in _TITLE_WORDS and w]
    if any(_strip_title(w) != w for w in person_words):
        # 「鈴木部長様」 names a person, but 「人事部長殿」「横浜市長 様」 name a post: a word
        # ending in a title is not read as a name
        return tuple(orgs), ()
    if len(person_words) == 2 and not orgs and ORG_SUFFIX_RE.search(person_words[0]):
        orgs = [person_words[0]]  # 「みらい建設 山田様」
        person_words = person_words[1:]
    if len(person_words) > 2 or not person_words:
        # More words than a name: a phrase, or a company without a decoration. Not a person
        # we can name, but a company written in front of a name still counts.
        return tuple(orgs), ()
    name = " ".join(person_words)
    if not orgs and len(person_words) == 1 and ORG_SUFFIX_RE.search(name):
        return (name,), ()  # 「みらい建設様」: a company addressed with 様
    return tuple(orgs), ((name,) if _person_ok(name) else ())


def _parse_latin(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``Ms Tanaka`` -> person; ``Hiring Team at Acme`` -> organisation ``Acme``."""
    orgs: list[str] = []
    m = re.search(r"\b(?:at|of|from)\s+(.{2,60})$", name)
    if m:
        org = m.group(1).strip(" .")
        if org and org[0].isupper():
            orgs.append(org)
        name = name[: m.start()].strip()
    if is_company(name):
        return (*orgs, name), ()
    words = [w for w in re.split(r"[\s,]+", name) if w]
    lowered = [w.lower().strip(".") for w in words]
    if not words or len(words) > 4 or any(w in _GENERIC_LATIN for w in lowered):
        return tuple(orgs), ()
    if " and " in f" {name.lower()} " or "&" in name or "/" in name:
        return tuple(orgs), ()
    kept = [w for w, lw in zip(words, lowered, strict=True) if lw not in _LATIN_TITLES]
    if not kept or len(kept) > 3:
        return tuple(orgs), ()
    if not all(re.fullmatch(r"[A-Z][A-Za-z'\-]*\.?", w) for w in kept):
        return tuple(orgs), ()
    person = " ".join(kept)
    return tuple(orgs), (person,) if len(person.replace(" ", "")) >= 2 else ()


def _first_text_part(msg: Message) -> tuple[str, str, str, str] | None:
    """(text, where, where in Japanese, HTML source or "") of the part people read first."""
    plain = [p for p in msg.text_parts if p.content_type.lower() == "text/plain"]
    if plain:
        return plain[0].text, "text part 1", "本文 (テキスト) 1", ""
    html = [p for p in msg.text_parts if p.content_type.lower() == "text/html"]
    if html:
        return html[0].text, "HTML part 1", "本文 (HTML) 1", html[0].html[:MAX_HTML_CHARS]
    return None


def _new_text(
    text: str, limit: int, max_lines: int = 1_000_000
) -> tuple[list[tuple[int, str]], int]:
    """(line number, stripped line) of the new text, blank lines dropped, up to ``limit``
    characters, and where the new text ends: where quoted or forwarded material starts."""
    out: list[tuple[int, str]] = []
    pos = 0
    chunk = text[:limit]
    for no, raw in enumerate(chunk.split("\n"), 1):
        start = pos
        pos += len(raw) + 1
        line = raw.strip(" \t\r\u3000\xa0")
        if not line:
            continue
        if _QUOTE_START_RE.match(line) and not _TO_LINE_RE.match(line):
            return out, start
        out.append((no, line))
        if len(out) >= max_lines:
            return out, pos
    return out, len(chunk)


def _greeting(
    lines: list[tuple[int, str]], where: str, where_ja: str, source: str, max_lines: int
) -> Addressee | None:
    """The addressee block among the first ``max_lines`` lines, or None."""
    block: list[str] = []
    for no, line in lines[:max_lines]:
        cleaned = _clean(line)
        if len(cleaned) > MAX_LINE_CHARS * 2:
            return None
        here = f"{where}, line {no}"
        here_ja = f"{where_ja}, {no} 行目"
        m = _DEAR_RE.match(cleaned)
        if m:
            orgs, people = _parse_latin(m.group("name"))
            if orgs or people:
                return Addressee(cleaned[:MAX_LINE_CHARS], here, here_ja, source, orgs, people)
            return None
        to = _TO_LINE_RE.match(cleaned)
        if to:
            cleaned = to.group("rest").strip()
            if "@" in cleaned:
                return None
        g = _GREETING_RE.match(cleaned)
        if g:
            name = g.group("name").strip()
            hon = g.group("hon")
            orgs, people = _parse_block(" ".join((*block, name)), hon)
            end = g.end()
            # 「山田様、佐藤様」: several people greeted on one line
            for _ in range(3):
                more = _MORE_RE.match(cleaned, end)
                g2 = _GREETING_RE.match(cleaned[more.end() :]) if more else None
                if more is None or g2 is None:
                    break
                _, extra = _parse_block(g2.group("name").strip(), g2.group("hon"))
                people = (*people, *extra)
                end = more.end() + g2.end()
            if to and not (orgs or people):
                return None
            if orgs or people:
                shown = " ".join((*block, cleaned[:end]))
                return Addressee(shown[:MAX_LINE_CHARS], here, here_ja, source, orgs, people)
            return None
        if to:
            orgs, people = _parse_latin(cleaned)
            if orgs:
                return Addressee(cleaned[:MAX_LINE_CHARS], here, here_ja, source, orgs, ())
            return None
        # An address-block line above the honorific line: a company or a department.
        if len(cleaned) <= 40 and not re.search(r"[、。!?！？]", cleaned):
            words = _tokens(cleaned)
            if words and all(is_company(w) or _is_dept(w) for w in words):
                block.append(cleaned)
                block = block[-MAX_BLOCK_LINES:]
                continue
        if re.search(r"[。.!?！？]$", cleaned):
            return None  # the prose began: no addressee at the top
        if source == "letter":
            continue  # a letter's date, number or title lines come before its addressee
        if len(cleaned) > 40:
            return None
        block = []
    return None


def _destinations(text: str, where: str, where_ja: str) -> Iterator[Addressee]:
    if not _DEST_QUICK_RE.search(text):
        return
    for m in _DEST_LABEL_RE.finditer(text):
        value = _clean(m.group("value"))
        value = re.sub(rf"[ \u3000]*(?:{_HONORIFIC})$", "", value).strip()
        if not value or value in _GENERIC_NAMES or (_is_dept(value) and not is_company(value)):
            continue
        if value.startswith(("未定", "なし", "－", "-", "同上", "別紙", "下記")):
            continue
        no = text.count("\n", 0, m.start()) + 1
        yield Addressee(
            f"{m.group('label')}：{value}"[:MAX_LINE_CHARS],
            f"{where}, line {no}",
            f"{where_ja}, {no} 行目",
            "destination",
            (value,),
            (),
        )


_LETTER_KINDS = frozenset({"pdf", "docx", "odt", "text", "xlsx", "ods", "pptx", "odp", "doc"})


def find_addressees(msg: Message) -> list[Addressee]:
    """Every addressee the mail names: greeting, destination labels, attached letters."""
    out: list[Addressee] = []
    first = _first_text_part(msg)
    if first is not None:
        text, where, where_ja, html_source = first
        head, _ = _new_text(text, MAX_HEAD_CHARS, MAX_HEAD_LINES)
        g = _greeting(head, where, where_ja, "greeting", MAX_HEAD_LINES)
        if g is not None and html_source:
            # The flat rendering of an HTML-only mail does not mark <blockquote>: read the
            # greeting again from the rendering with quote markers (only when one was seen).
            g = None
            if not html_hazard(html_source):
                try:
                    marked = render_html_quotes(html_source)
                except Exception:  # a broken HTML part: no greeting rather than a crash
                    marked = ""
                head, _ = _new_text(marked, MAX_HEAD_CHARS, MAX_HEAD_LINES)
                g = _greeting(head, where, where_ja, "greeting", MAX_HEAD_LINES)
        if g is not None:
            out.append(g)
        if _DEST_QUICK_RE.search(text, 0, MAX_LABEL_CHARS):
            _, end = _new_text(text, MAX_LABEL_CHARS)
            out.extend(_destinations(text[:end], where, where_ja))
    budget = MAX_CONTENT_CHARS
    for content in msg.contents:
        if content.status != "read" or not content.sections or budget <= 0:
            continue
        name = content.name[:120]
        if content.kind in _LETTER_KINDS:
            sec = content.sections[0]
            lines = [
                (no, cell.strip(" \t\u3000"))
                for no, raw in enumerate(sec.text[:4000].split("\n"), 1)
                for cell in raw.split("\t")
                if cell.strip(" \t\u3000")
            ]
            loc = f"{name} {sec.location}".strip()
            g = _greeting(lines, loc, f"添付 {loc}", "letter", MAX_LETTER_LINES)
            if g is not None:
                out.append(g)
        for sec in content.sections:
            if budget <= 0:
                break
            chunk = sec.text[:budget]
            budget -= len(chunk)
            loc = f"{name} {sec.location}".strip()
            out.extend(_destinations(chunk, loc, f"添付 {loc}"))
        if len(out) >= MAX_ADDRESSEES:
            break
    return out[:MAX_ADDRESSEES]
