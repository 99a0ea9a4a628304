"""Addressee mismatches: the mail says it is for one party and goes to another.

Fact ``addressee_mismatches`` (issue 7 §3): the number of addressees written in the mail
that name an organisation other than every external recipient's, or a person who is not
among the recipients. Where the mail says whom it is for:

* the greeting / address block at the top of the mail's *new* text (never quoted text):
  「株式会社C 採用ご担当者様」, 「みらい建設株式会社 総務部 山田様」, 「山田太郎 様」,
  ``Dear Ms Tanaka,``, ``Dear Hiring Team at Acme,``, a letter's ``To: … 様`` / ``Attn:`` line;
* the company named as an application's destination (「応募先：株式会社C」, 「推薦先企業：…」),
  in the new text and in attachment text;
* the addressee line at the top of an attached letter (first lines of its first page:
  「株式会社〇〇 御中」, 「〇〇 様」).

Who receives it: the envelope recipients with the display names of To/Cc. An
organisation's names come from the organisation file (``partners[*].names``), recipients'
display names, the names the sender used before for addresses of the same organisation
(``ctx.history.contact_names``) and the domain itself read as romaji (``mirai-kensetsu``
is みらい建設; ``hikari-sekkei`` is not ミドリ設計).

The detector stays quiet when unsure. Any evidence may show a match; only evidence that
really names the organisation may show a mismatch: a partner's configured names, a display
name written as a company (株式会社…, …センター, ``Acme Inc.``), or a ``.co.jp``-style domain
(one per organisation in Japan) whose label reads as romaji, compared with a reading of
the whole addressee. A person is a mismatch only when every recipient has a name that can
be compared and none is that person; a recipient without a name, a desk or list address,
or a name in a script the greeting cannot be compared with keeps the detector quiet.

Work is bounded: the top few lines of the first text part, ``MAX_LABEL_CHARS`` of new text
for destination labels and ``MAX_CONTENT_CHARS`` of attachment text, all regexes anchored
and linear. A mail whose first lines hold no honorific costs a few regex searches.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from leakguard.detectors import DetectorResult
from leakguard.detectors.japanese import (
    NameForms,
    display_name_forms,
    fold_width,
    is_kana_text,
    kana_to_romaji,
    local_part_tokens,
    looks_like_romaji,
    person_forms,
    reading_words,
    romaji_skeleton,
)
from leakguard.detectors.recipients import envelope_recipients, is_external
from leakguard.message.html import html_hazard
from leakguard.message.quotes import render_html_quotes
from leakguard.message.textaddr import is_role_local
from leakguard.organization import Context, registrable_domain
from leakguard.types import Address, Finding, Message

DETECTOR = "addressee"
FACT = "addressee_mismatches"

MAX_HEAD_CHARS = 3000  # of the first text part, searched for the greeting
MAX_HEAD_LINES = 6  # non-blank lines at the top where a greeting may stand
MAX_BLOCK_LINES = 3  # address-block lines above the honorific line
MAX_LINE_CHARS = 80  # longer lines are prose, not an address
MAX_LABEL_CHARS = 20_000  # of new text searched for 応募先 / 推薦先 labels
MAX_CONTENT_CHARS = 50_000  # of attachment text searched for labels, per message
MAX_LETTER_LINES = 12  # first lines of an attached letter searched for its addressee
MAX_ADDRESSEES = 8  # per message
MAX_HTML_CHARS = 2_000_000  # of an HTML-only mail re-rendered with quote markers
MAX_HISTORY_NAMES = 2000  # contact names looked at per message

# --------------------------------------------------------------------------- vocabulary


def _words(spec: str) -> frozenset[str]:
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
_GENERIC_NAMES = _words(
    "皆 皆様 皆さま みな みなさま みんな 各位 関係者 関係各位 お客 お客様 保護者 会員 利用者 "
    "受講者 参加者 応募者 職員 社員 教職員 先生方 皆々 ご一同 一同 担当 ご担当 担当者 ご担当者 "
    "採用担当 採用ご担当 ご関係者 関係者各位 取引先 お取引先 株主 会員各位"
)
_GENERIC_LATIN = _words(
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
_LATIN_TITLES = _words("mr mrs ms miss mx dr prof professor mister sir dame")
# Words of an address block that name a unit inside an organisation, not the organisation.
_DEPT_SUFFIX_RE = re.compile(
    r"(?:部|課|室|係|局|本部|事業部|支店|支社|営業所|出張所|事務所|グループ|チーム|担当|窓口|"
    r"事務局|センター長|部門|推進室|採用|人事|総務|経理|営業|広報|購買|法務|秘書|受付)$"
)
_TITLE_WORDS = _words(
    "部長 課長 係長 室長 所長 局長 次長 主任 主査 主事 社長 副社長 専務 常務 取締役 "
    "代表取締役 代表 会長 理事長 理事 院長 校長 教頭 園長 支店長 店長 センター長 担当 "
    "課長補佐 部長代理 マネージャー リーダー 教授 准教授 弁護士 税理士 市長 町長 村長 区長 "
    "知事 大臣 議長 委員長 学長 総長 署長 館長 教育長"
)
_TITLES_LONGEST_FIRST = tuple(sorted(_TITLE_WORDS, key=len, reverse=True))
# Company decorations (stripped for comparison; their presence makes a word a company).
_COMPANY_RE = re.compile(
    r"\((?:株|有|合|名|資|社|財|一社|一財|公社|公財|独|特非|医|学|福)\)"
    r"|株式会社|有限会社|合同会社|合資会社|合名会社"
    r"|(?:一般|公益)(?:社団|財団)法人|独立行政法人|地方独立行政法人|特定非営利活動法人"
    r"|npo法人|学校法人|医療法人|社会福祉法人|宗教法人|国立大学法人"
    r"|\bco\.?,?\s*ltd\b\.?|\bcorp(?:oration)?\b\.?|\binc\b\.?|\bllc\b|\bltd\b\.?"
    r"|\bk\.k\.|\bgmbh\b|\bplc\b|\bkabushiki\s+kaisha\b",
    re.IGNORECASE,
)
# Endings that make a display name or a 御中 addressee an organisation's name.
_ORG_SUFFIX_RE = re.compile(
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
# Japanese second-level domains that hold one registration per organisation (JPRS rules):
# their label is the organisation's own choice of name.
_ORG_SLDS = frozenset({"co.jp", "or.jp", "ac.jp", "go.jp", "ed.jp", "gr.jp", "lg.jp"})
# Words of domain labels that say what a business does, not which one it is.
_GENERIC_DOMAIN_WORDS = _words(
    """kensetsu sekkei shoji shouji sangyo sangyou kogyo kougyou denki group grp hd holdings
    hldgs corp co inc japan jp nihon nippon nipon system systems sys net soft tech bank
    kaihatsu komuten koumuten fudosan fudousan jinzai unyu butsuryu seiyaku shokai shoukai
    service services design lab labs works consulting partners office global the web"""
)
# English given names and their usual short forms (one group per line).
_NICKNAMES = tuple(
    frozenset(g.split())
    for g in """robert bob rob bobby robbie
    william bill will billy liam
    james jim jimmy jamie
    michael mike mick mikey
    richard rick dick rich ricky
    elizabeth liz beth betty eliza lisa
    margaret peggy maggie meg
    katherine catherine kathryn kate kathy katie cathy
    edward ed ted eddie ned
    thomas tom tommy
    jennifer jen jenny
    christopher chris
    christine chris chrissy
    stephen steven steve
    daniel dan danny
    joseph joe joey
    anthony tony
    andrew andy drew
    charles charlie chuck
    patrick pat
    patricia pat patty trish
    susan sue susie
    deborah debbie deb
    gregory greg
    jeffrey jeff geoffrey
    matthew matt
    nicholas nick
    benjamin ben
    samuel sam
    alexander alex
    timothy tim
    kenneth ken kenny
    lawrence larry
    ronald ron
    donald don
    gerald jerry gerry
    jonathan jon
    john jack johnny
    vincent vince
    frederick fred
    albert al
    douglas doug
    theodore ted teddy
    victoria vicky
    rebecca becky
    pamela pam
    sandra sandy
    barbara barb""".splitlines()
)


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
        if _COMPANY_RE.fullmatch(w) and i + 1 < len(words) and not out:
            out.append(w + words[i + 1])
            i += 2
            continue
        if _COMPANY_RE.fullmatch(w) and out:
            out[-1] = out[-1] + w
            i += 1
            continue
        out.append(w)
        i += 1
    return out[:10]


def _is_company(word: str) -> bool:
    return _COMPANY_RE.search(word) is not None


def _is_dept(word: str) -> bool:
    return not _is_company(word) and _DEPT_SUFFIX_RE.search(word) is not None


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
    return len(letters) <= 10 and not _ORG_SUFFIX_RE.search(letters)


def _parse_block(block: str, hon: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(organisations, people) named by an address block ending with ``hon``."""
    words = _tokens(block)
    orgs = [w for w in words if _is_company(w)]
    rest = [w for w in words if not _is_company(w)]
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
    if len(person_words) == 2 and not orgs and _ORG_SUFFIX_RE.search(person_words[0]):
        orgs = [person_words[0]]  # 「みらい建設 山田様」
        person_words = person_words[1:]
    if len(person_words) > 2 or not person_words:
        # More words than a name: a phrase, or a company without a decoration. Not a person
        # we can name, but a company written in front of a name still counts.
        return tuple(orgs), ()
    name = " ".join(person_words)
    if not orgs and len(person_words) == 1 and _ORG_SUFFIX_RE.search(name):
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
    if _is_company(name):
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
            if words and all(_is_company(w) or _is_dept(w) for w in words):
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
        if not value or value in _GENERIC_NAMES or (_is_dept(value) and not _is_company(value)):
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


# --------------------------------------------------------------------------- organisations


def _org_key(name: str) -> str:
    """Comparison form of an organisation name: NFKC, case-folded, decorations, spaces and
    punctuation removed."""
    t = unicodedata.normalize("NFKC", name[:120]).casefold()
    t = _COMPANY_RE.sub("", t)
    t = re.sub(r"(?:御中|各位|様)$", "", t)
    return re.sub(r"[\s・\-_.,&'’()（）「」【】\[\]〔〕<>]+", "", t)


def _split_scripts(text: str) -> list[str]:
    runs: list[str] = []
    kind = ""
    for ch in text:
        k = "kana" if is_kana_text(ch) else "latin" if ch.isascii() and ch.isalnum() else "other"
        if runs and k == kind:
            runs[-1] += ch
        else:
            runs.append(ch)
            kind = k
    return [r for r in runs if r.strip()]


@functools.lru_cache(maxsize=4096)
def org_reading(name: str) -> tuple[str, ...] | None:
    """Romaji skeletons of the words of an organisation name, or None when a word cannot
    be read. Kana and Latin runs are read as written; kanji by the dictionary."""
    key = _org_key(name)
    if not key:
        return None
    words: list[str] = []
    for run in _split_scripts(key):
        if run.isascii():
            if run.isalpha():
                words.append(romaji_skeleton(run))
            continue
        if is_kana_text(run):
            words.append(romaji_skeleton(kana_to_romaji(run).replace("-", "")))
            continue
        read = reading_words(run)
        if read is None:
            return None
        words.append(romaji_skeleton("".join(kana_to_romaji(r) for r in read)))
    words = [w for w in words if w]
    return tuple(words) or None


def _names_match(a: str, b: str) -> bool:
    ka, kb = _org_key(a), _org_key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    short, long_ = sorted((ka, kb), key=len)
    min_len = 3 if short.isascii() else 2
    if len(short) >= min_len and short in long_:
        return True
    prefix = 0
    for x, y in zip(ka, kb, strict=False):
        if x != y:
            break
        prefix += 1
    if prefix >= (4 if ka.isascii() else 3):
        return True
    ra, rb = org_reading(a), org_reading(b)
    if ra and rb:
        ja, jb = "".join(ra), "".join(rb)
        short, long_ = sorted((ja, jb), key=len)
        return len(short) >= 4 and short in long_
    return False


def _domain_match(org: str, domain: str) -> bool | None:
    """Whether the domain reads as the organisation's name: True, False, or None (cannot
    say: the organisation cannot be read, or the label is not romaji)."""
    reg = registrable_domain(domain)
    label, _, suffix = reg.partition(".")
    pieces = [romaji_skeleton(p) for p in re.split(r"[-\d]+", label) if p]
    whole = "".join(pieces)
    words = org_reading(org)
    if words is None or not whole:
        # The domain may still show a match for a Latin name (Acme -> acme.example).
        key = _org_key(org)
        if key.isascii() and len(key) >= 3 and key in label.replace("-", ""):
            return True
        return None
    joined = "".join(words)
    first = words[0]
    if len(first) >= 3 and first in whole:
        return True
    if (
        pieces
        and len(pieces[0]) >= 3
        and pieces[0] not in _GENERIC_DOMAIN_WORDS
        and pieces[0] in joined
    ):
        return True
    if len(joined) >= 3 and joined in whole:
        return True
    if suffix not in _ORG_SLDS:
        return None
    raw_pieces = [p for p in re.split(r"[-\d]+", label) if p]
    if not raw_pieces or not all(looks_like_romaji(p) for p in raw_pieces):
        return None
    key = _org_key(org)
    runs = _split_scripts(key)
    if not runs or not (runs[0].isascii() or is_kana_text(runs[0])):
        # the distinctive word is kanji: a dictionary reading may be wrong (大和 is Daiwa
        # as well as Yamato), so it may show a match but never a difference
        return None
    if _KATAKANA_ONLY_RE.fullmatch(key):
        # a name all in katakana is often a foreign word whose own spelling the domain uses
        # (シャトレーゼ is chateraise, not "syatoreze"): no difference either
        return None
    return False


_KATAKANA_ONLY_RE = re.compile(r"[\u30a0-\u30ff\u31f0-\u31ff]+")


def _is_org_name(name: str) -> bool:
    t = unicodedata.normalize("NFKC", name).strip()
    return _is_company(t) or _ORG_SUFFIX_RE.search(t) is not None


@dataclass(frozen=True, slots=True)
class _Judged:
    match: bool
    mismatch: bool  # known names, none of them this organisation
    compared: str  # the names it was compared with


def _judge_org(
    org: str, domain: str, names: list[str], strong: list[str], partner_names: Iterable[str]
) -> _Judged:
    partner = list(partner_names)
    evidence = [*partner, *strong]
    if any(_names_match(org, n) for n in (*partner, *names)):
        return _Judged(True, False, "")
    by_domain = _domain_match(org, domain)
    if by_domain:
        return _Judged(True, False, "")
    shown = ", ".join(dict.fromkeys(evidence))
    if evidence:
        return _Judged(False, True, shown or domain)
    if by_domain is False:
        return _Judged(False, True, registrable_domain(domain))
    return _Judged(False, False, "")


def _history_names_by_org(ctx: Context, orgs: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    seen = 0
    for address, names in ctx.history.contact_names.items():
        seen += 1
        if seen > MAX_HISTORY_NAMES:
            break
        domain = address.rpartition("@")[2].lower()
        if not domain:
            continue
        reg = registrable_domain(domain)
        if reg in orgs:
            out.setdefault(reg, []).extend(n for n in names[:4] if n)
    return out


# --------------------------------------------------------------------------- people


@functools.lru_cache(maxsize=8192)
def _person_forms(name: str, kana: str, *, dictionary: bool) -> tuple[NameForms, ...]:
    return person_forms(name, kana, dictionary=dictionary)


@functools.lru_cache(maxsize=8192)
def _forms_of_name(name: str, *, dictionary: bool) -> tuple[NameForms, ...]:
    return display_name_forms(name, dictionary=dictionary)


def _given_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) >= 3 and len(b) >= 3 and (a.startswith(b) or b.startswith(a)):
        return True
    return any(a in g and b in g for g in _NICKNAMES)


def _person_match(p: NameForms, r: NameForms) -> bool | None:
    """True (same person), False (comparable, different), None (cannot compare)."""
    comparable = False
    if p.cjk and r.cjk:
        comparable = True
        if p.cjk in r.cjk or r.cjk in p.cjk:
            return True
    if p.kana and r.kana:
        comparable = True
        if p.kana in r.kana or r.kana in p.kana:
            return True
    if p.romaji and r.romaji:
        comparable = True
        ps = [romaji_skeleton(x) for x in p.romaji]
        rs = [romaji_skeleton(x) for x in r.romaji]
        if any(_given_equal(a, b) for a in ps for b in rs if a and b):
            return True
        joined = "".join(rs)
        if any(len(a) >= 4 and a in joined for a in ps):
            return True
    return False if comparable else None


def _local_matches(p: NameForms, local: str) -> bool:
    toks = [romaji_skeleton(t) for t in local_part_tokens(local)]
    joined = "".join(toks)
    for x in p.romaji:
        s = romaji_skeleton(x)
        if len(s) >= 3 and (s in joined or any(_given_equal(s, t) for t in toks if t)):
            return True
    return False


_ROLE_NAME_RE = re.compile(
    r"事務局|窓口|センター|担当|チーム|デスク|受付|株式会社|有限会社|\(株\)|法人|"
    r"(?:総務|人事|営業|経理|財務|企画|開発|技術|製造|品質|広報|法務|購買|調達|管理|業務|"
    r"事業|情報システム|システム|採用|教務|学務|庶務|会計|税務|福祉|環境|土木|市民|健康|"
    r"保険|教育|秘書|国際|研究|施工|工事|物流|販売)(?:部|課|室|局|係)"
    r"|\b(?:desk|team|office|support|info|sales|services?|recruit(?:ing|ment)?|hiring|"
    r"cent(?:er|re)|dept|department|list|group|inc|corp|ltd|llc|co|company|admin)\b",
)


@functools.lru_cache(maxsize=4096)
def _role_name(display: str) -> bool:
    """A display name of a desk, a list or a company rather than a person."""
    d = fold_width(display)
    return _ROLE_NAME_RE.search(d) is not None or _ORG_SUFFIX_RE.search(d) is not None


def _judge_person(
    person: str, rcpts: list[Address], names_of: dict[str, list[tuple[str, str]]], ctx: Context
) -> tuple[bool, str]:
    """(mismatch, the recipients' names compared with)."""
    # Dictionary readings of kanji names may show a match; only the forms as written (and a
    # directory's kana column) may show a difference: a name has several readings.
    for r in rcpts:
        if ctx.org.is_mailing_list(r) or is_role_local(r.local) or not names_of.get(r.key):
            return False, ""  # a list or a desk, or someone we cannot name: may be this person
    # 「ひかり 山田様」 may be a company and a surname, 「山田 太郎様」 a full name: each word is
    # tried on its own too, so any word that names a recipient is a match.
    words = person.split()
    parts = (person, *words) if len(words) > 1 else (person,)
    pforms = tuple(f for w in parts for f in _forms_of_name(w, dictionary=True))
    pplain = tuple(f for w in parts for f in _forms_of_name(w, dictionary=False))
    if not pforms:
        return False, ""
    compared: list[str] = []
    for r in rcpts:
        if ctx.org.is_mailing_list(r) or is_role_local(r.local):
            return False, ""
        if any(_local_matches(p, r.local) for p in pforms):
            return False, ""
        names = names_of.get(r.key, [])
        if not names:
            return False, ""  # someone we cannot name may be this person
        for name, kana in names:
            if not kana and _role_name(name):
                return False, ""  # a desk's or a company's name: the person may be behind it
            if kana:
                rforms = _person_forms(name, kana, dictionary=True)
                rplain = _person_forms(name, kana, dictionary=False)
            else:
                rforms = _forms_of_name(name, dictionary=True)
                rplain = _forms_of_name(name, dictionary=False)
            if any(_person_match(p, rf) is True for p in pforms for rf in rforms):
                return False, ""
            if not any(_person_match(p, rf) is False for p in pplain for rf in rplain):
                return False, ""  # cannot be compared (kanji against romaji): quiet
        compared.append(names[0][0])
    return bool(compared), ", ".join(dict.fromkeys(compared))


# --------------------------------------------------------------------------- detector


def _recipients(msg: Message) -> list[Address]:
    shown: dict[str, Address] = {}
    for a in (*msg.to, *msg.cc, *msg.bcc):
        if a.domain and (a.key not in shown or not shown[a.key].display_name):
            shown[a.key] = a
    out: dict[str, Address] = {}
    for a in (*envelope_recipients(msg), *msg.visible_recipients):
        out.setdefault(a.key, shown.get(a.key, a))
    return list(out.values())


def detect(msg: Message, ctx: Context) -> DetectorResult:
    addressees = find_addressees(msg)
    if not addressees:
        return DetectorResult(facts={FACT: 0})
    rcpts = [a for a in _recipients(msg) if a.key not in ctx.sender_aliases]
    external = [a for a in rcpts if is_external(a, ctx)]
    if not rcpts:
        return DetectorResult(facts={FACT: 0})
    findings: list[Finding] = []
    by_org: dict[str, list[Address]] = {}
    for a in external:
        by_org.setdefault(registrable_domain(a.domain), []).append(a)
    history: dict[str, list[str]] | None = None
    names_of: dict[str, list[tuple[str, str]]] | None = None
    for ad in addressees:
        mismatch_org = ""
        compared = ""
        if ad.orgs and by_org:
            if history is None:
                history = _history_names_by_org(ctx, set(by_org))
            for org in ad.orgs:
                judged: list[_Judged] = []
                for reg, members in by_org.items():
                    display = [m.display_name for m in members if m.display_name]
                    hist = history.get(reg, [])
                    names = [*display, *hist]
                    strong = [n for n in names if _is_org_name(n)]
                    partner = ctx.org.partner_of(members[0].domain)
                    judged.append(
                        _judge_org(
                            org, members[0].domain, names, strong, partner.names if partner else ()
                        )
                    )
                if judged and all(j.mismatch for j in judged):
                    mismatch_org = org
                    compared = "; ".join(j.compared for j in judged)
                    break
        if mismatch_org:
            findings.append(_finding(ad, "organization", mismatch_org, compared, external))
            continue
        if ad.people and external:
            if names_of is None:
                names_of = _names_of(rcpts, ctx)
            results = [_judge_person(p, rcpts, names_of, ctx) for p in ad.people]
            if results and all(m for m, _ in results):
                findings.append(_finding(ad, "person", " / ".join(ad.people), results[0][1], rcpts))
    return DetectorResult(facts={FACT: len(findings)}, findings=tuple(findings))


def _names_of(rcpts: list[Address], ctx: Context) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rcpts:
        names: list[tuple[str, str]] = []
        person = ctx.org.person(r.addr)
        if person is not None and person.name:
            names.append((person.name, person.kana))
        if r.display_name:
            names.append((r.display_name, ""))
        for n in ctx.history.contact_names.get(r.key, ())[:4]:
            if n:
                names.append((n, ""))
        out[r.key] = names
    return out


def _finding(
    ad: Addressee, kind: str, named: str, compared: str, recipients: list[Address]
) -> Finding:
    what = "organisation" if kind == "organization" else "person"
    return Finding(
        detector=DETECTOR,
        fact=FACT,
        addresses=tuple(a.addr for a in recipients),
        detail=(
            f"the mail is addressed to the {what} {named!r} ({ad.where}), "
            f"but its recipients are {compared or 'someone else'}"
        ),
        evidence={
            "kind": kind,
            "source": ad.source,
            "addressee": ad.text,
            "named": named,
            "compared_with": compared,
            "location": ad.where,
            "location_ja": ad.where_ja,
        },
    )
