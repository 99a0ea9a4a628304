"""Name normalisation for Japanese and Western personal names.

Pure helpers shared by the name detector: width and case folding, removal of honorifics,
job titles and company decorations, script splitting (kanji / kana / Latin), kana to Hepburn
romaji with ``jaconv``, and a *romaji skeleton* that makes the usual spelling variants of
one reading compare equal (``satou`` / ``satoh`` / ``sato`` / ``satô``, ``ohno`` / ``oono`` /
``ono``, ``shi`` / ``si``, ``tsu`` / ``tu``, ``chi`` / ``ti``, ``fu`` / ``hu``, ``ji`` / ``zi``,
``homma`` / ``honma``).

Readings of kanji names come from the directory's kana column. Only when a name has no kana
(a directory row without it, a display name the sender used) a dictionary reading is tried,
with Janome (Apache-2.0, bundled IPADIC) when it is installed (the ``ja`` extra); without it
kanji names are compared as kanji only.

Everything here accepts hostile input: work is bounded by ``MAX_NAME_CHARS``.
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

import jaconv

MAX_NAME_CHARS = 200  # display names are cut to this many characters before any work
MAX_TOKENS = 12

# --------------------------------------------------------------------------- decorations

# Honorifics and job titles written after a name ("佐藤様", "佐藤部長", "佐藤 一也 様").
_CJK_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        {
            "様",
            "さま",
            "サマ",
            "さん",
            "サン",
            "殿",
            "どの",
            "先生",
            "御中",
            "氏",
            "君",
            "くん",
            "ちゃん",
            "宛",
            "宛て",
            "部長",
            "課長",
            "係長",
            "室長",
            "所長",
            "局長",
            "次長",
            "主任",
            "主査",
            "主事",
            "社長",
            "副社長",
            "専務",
            "常務",
            "取締役",
            "会長",
            "理事長",
            "担当",
            "ご担当者",
            "担当者",
        },
        key=len,
        reverse=True,
    )
)

# Latin honorific / title tokens (compared after folding, without dots).
_LATIN_HONORIFICS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "madam",
        "san",
        "sama",
        "sensei",
        "dono",
        "kun",
        "chan",
        "shi",
    }
)

# Company and organisation decorations. Replaced by a segment separator so that
# "ABC商事(株) 佐藤様" yields the segments "ABC商事" and "佐藤".
_COMPANY_RE = re.compile(
    r"\((?:株|有|合|名|資|社|財|一社|一財|公社|公財|独|特非|医|学|福)\)"
    r"|株式会社|有限会社|合同会社|合資会社|合名会社"
    r"|(?:一般|公益)(?:社団|財団)法人|独立行政法人|地方独立行政法人|特定非営利活動法人"
    r"|npo法人|学校法人|医療法人|社会福祉法人|宗教法人"
    r"|\bco\.?,?\s*ltd\b\.?|\bcorp(?:oration)?\b\.?|\binc\b\.?|\bllc\b|\bltd\b\.?"
    r"|\bk\.k\.|\bgmbh\b|\bplc\b|\bkabushiki\s+kaisha\b",
    re.IGNORECASE,
)

# Characters that separate segments of a display name: brackets, slashes, bars, at-signs.
_SEGMENT_RE = re.compile(r"[()\[\]{}<>「」『』【】〔〕《》〈〉/|\\@:;\"]+|\s[-–—]\s")

# Kanji variants (異体字) common in names, folded to the usual form. NFKC leaves these alone.
_ITAIJI = str.maketrans(
    {
        "髙": "高",
        "﨑": "崎",
        "嵜": "崎",
        "邊": "辺",
        "邉": "辺",
        "齋": "斎",
        "齊": "斎",
        "斉": "斎",
        "澤": "沢",
        "濱": "浜",
        "濵": "浜",
        "櫻": "桜",
        "廣": "広",
        "國": "国",
        "眞": "真",
        "瀨": "瀬",
        "德": "徳",
        "惠": "恵",
        "壽": "寿",
        "藪": "薮",
        "龍": "竜",
        "冨": "富",
        "槇": "槙",
        "曾": "曽",
        "實": "実",
        "榮": "栄",
        "彌": "弥",
        "條": "条",
        "淺": "浅",
        "靜": "静",
        "縣": "県",
    }
)


def fold_width(text: str) -> str:
    """NFKC (full-width Latin and half-width kana folded) and case-folded, spaces collapsed."""
    t = unicodedata.normalize("NFKC", text[:MAX_NAME_CHARS]).casefold()
    return " ".join(t.split())


# --------------------------------------------------------------------------- scripts


def _is_ideograph(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x3134F
        or ch in "々〆ヶ"
    )


def _is_kana(ch: str) -> bool:
    o = ord(ch)
    return 0x3041 <= o <= 0x309F or 0x30A0 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def has_ideograph(text: str) -> bool:
    return any(_is_ideograph(c) for c in text)


def is_kana_text(text: str) -> bool:
    stripped = [c for c in text if not c.isspace() and c not in "・ー=＝"]
    return bool(stripped) and all(_is_kana(c) for c in stripped)


def to_hiragana(text: str) -> str:
    return str(jaconv.kata2hira(unicodedata.normalize("NFKC", text)))


def kana_to_romaji(kana: str) -> str:
    """Hepburn romaji of hiragana or katakana text (``さとう かずや`` -> ``satou kazuya``)."""
    return str(jaconv.kana2alphabet(to_hiragana(kana[:MAX_NAME_CHARS])))


# --------------------------------------------------------------------------- romaji skeleton

_OH_RE = re.compile(r"oh(?![aiueo])")
_M_RE = re.compile(r"m(?=[bmp])")
_REPEAT_VOWEL_RE = re.compile(r"([aiueo])\1+")
_NON_LETTER_RE = re.compile(r"[^a-z]+")


def ascii_letters(text: str) -> str:
    """Lower-case ASCII letters of ``text`` with diacritics removed (``Satô`` -> ``sato``)."""
    decomposed = unicodedata.normalize("NFKD", text[:MAX_NAME_CHARS].casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_LETTER_RE.sub("", plain)


@functools.lru_cache(maxsize=65536)
def romaji_skeleton(text: str) -> str:
    """A spelling-insensitive key for a romanised (Japanese) name.

    Hepburn, Kunrei and passport spellings of the same reading give the same key:
    ``satou``/``satoh``/``satoo``/``satô`` -> ``sato``; ``ohno``/``oono`` -> ``ono``;
    ``shinichi``/``siniti`` -> ``siniti``; ``homma``/``honma`` -> ``honma``. The key is only
    ever compared with other keys, never shown.
    """
    s = ascii_letters(text)
    if not s:
        return s
    s = _OH_RE.sub("o", s)  # satoh, ohno (but not ohashi)
    s = s.replace("tch", "cch").replace("cch", "tch")
    s = s.replace("shi", "si").replace("sh", "sy")
    s = s.replace("chi", "ti").replace("ch", "ty")
    s = s.replace("tsu", "tu").replace("fu", "hu")
    s = s.replace("ji", "zi").replace("j", "zy").replace("yy", "y")
    s = _M_RE.sub("n", s)  # homma/honma, sampei/sanpei, namba/nanba
    s = s.replace("ou", "o")
    s = _REPEAT_VOWEL_RE.sub(r"\1", s)  # oo, uu, aa, ii, ee
    return s


# One Hepburn / Kunrei syllable (with an optional doubled consonant before it), a syllabic
# "n", "m" before b/m/p (homma) or the long-vowel "h" after "o" (satoh, ohno).
_ROMAJI_WORD_RE = re.compile(
    r"(?:(?:[kstpc](?=[kstpc]))?"
    r"(?:ky|gy|sh|sy|zy|ch|ty|ts|ny|hy|by|py|my|ry|j|[kgsztdnhbpmyrwf])?[aiueo]"
    r"|n|m(?=[bmp])|(?<=o)h(?![aiueo]))+"
)


@functools.lru_cache(maxsize=65536)
def looks_like_romaji(word: str) -> bool:
    """True when ``word`` can be read as romanised Japanese (``kazuya``, ``satoh``, ``ohno``;
    not ``smith``, ``kevin``, ``michael``). Short Western names can pass (``anna``, ``kate``):
    the answer only decides whether a name's word order is unknown, never a match.
    """
    letters = ascii_letters(word)
    return len(letters) >= 2 and _ROMAJI_WORD_RE.fullmatch(letters) is not None


def initials_of(raw: str) -> frozenset[str]:
    """Letters a given-name initial may be written with (raw and skeleton first letters)."""
    letters = ascii_letters(raw)
    skel = romaji_skeleton(raw)
    return frozenset(x[0] for x in (letters, skel) if x)


# --------------------------------------------------------------------------- display names


def _strip_cjk_suffixes(token: str) -> str:
    changed = True
    while changed and token:
        changed = False
        for suf in _CJK_SUFFIXES:
            if token.endswith(suf):
                token = token[: -len(suf)]
                changed = True
                break
    return token


def _split_tokens(segment: str) -> list[str]:
    # Spaces, dots, commas, underscores and the katakana middle dot separate tokens
    # ("k.sato", "Sato, Kazuya", "ジョン・スミス"); so does a hyphen next to a Latin letter
    # ("sato-san") but not the katakana long-vowel mark.
    parts = re.split(r"[\s._,、・=＝+]+|(?<=[A-Za-z])-|-(?=[A-Za-z])", segment)
    return [p for p in parts if p][:MAX_TOKENS]


@dataclass(frozen=True, slots=True)
class NameForms:
    """One name in the forms the detector compares.

    ``cjk`` is the kanji (or mixed kanji/kana) form with spaces removed; ``kana`` the
    hiragana form with spaces removed; ``romaji`` the romanised tokens in written order
    (raw lower-case ASCII letters, not yet skeletonised) and ``romaji_from`` says whether
    they were written in Latin letters ("romaji") or converted from kana ("kana").
    ``family`` is the index of the surname in ``romaji`` when known. ``full`` is True when
    the name is known to hold more than a surname.
    """

    cjk: str = ""
    kana: str = ""
    kana_tokens: tuple[str, ...] = ()
    romaji: tuple[str, ...] = ()
    romaji_from: str = ""
    family: int | None = None
    full: bool = False


def name_segments(display_name: str) -> list[str]:
    """Segments of a display name (NFKC, case kept), company decorations and brackets removed.

    ``"ABC商事(株) 佐藤様"`` -> ``["ABC商事", "佐藤様"]``; ``"Sato Kazuya (Partner)"`` ->
    ``["Sato Kazuya", "Partner"]``.
    """
    text = unicodedata.normalize("NFKC", display_name[:MAX_NAME_CHARS]).translate(_ITAIJI)
    text = _COMPANY_RE.sub(" | ", text)
    segs = [" ".join(s.split()) for s in _SEGMENT_RE.split(text)]
    return [s for s in segs if s][:MAX_TOKENS]


def _latin_name(tokens: list[str]) -> tuple[tuple[str, ...], int | None]:
    """Romaji tokens of Latin words, honorifics dropped, and the surname when the writing
    shows it ("SATO Kazuya": the only upper-case word; "Smith, John": the word before a comma).
    """
    words: list[tuple[str, str]] = []  # (as written, letters)
    for tok in tokens:
        letters = ascii_letters(tok)
        if not letters or letters in _LATIN_HONORIFICS:
            continue
        words.append((tok, letters))
    family: int | None = None
    if len(words) >= 2:
        upper = [i for i, (w, letters) in enumerate(words) if w.isupper() and len(letters) > 1]
        if len(upper) == 1 and any(not w.isupper() for w, _ in words):
            family = upper[0]
    return tuple(letters for _, letters in words), family


def display_name_forms(
    display_name: str, *, dictionary: bool = False, variants: bool = False
) -> tuple[NameForms, ...]:
    """Every name form found in a display name.

    ``"(株)ABC 佐藤 一也 様"`` gives a CJK form ``佐藤一也`` (and the Latin token ``abc``);
    ``"SATO Kazuya (Partner)"`` gives romaji ``("sato", "kazuya")`` with the surname first.
    With ``dictionary=True`` kanji names without kana get a dictionary reading when one is
    available (index building only: it is slow). With ``variants=True`` every run of up to
    three words of a kanji/kana name is a form of its own as well (for look-ups of a
    recipient's name next to an undecorated company name).
    """
    out: list[NameForms] = []
    for seg in name_segments(display_name):
        comma_family = bool(re.match(r"^[A-Za-z][A-Za-z'-]*\s*,\s*[A-Za-z]", seg))
        tokens = _split_tokens(seg)
        cjk_tokens: list[str] = []
        latin_tokens: list[str] = []
        for tok in tokens:
            if any(_is_ideograph(c) or _is_kana(c) for c in tok):
                cleaned = _strip_cjk_suffixes(tok)
                if cleaned:
                    cjk_tokens.append(cleaned)
            elif any(_is_latin(c) for c in tok):
                latin_tokens.append(tok)
        if cjk_tokens:
            out.append(_cjk_forms(cjk_tokens, dictionary=dictionary))
            if variants and len(cjk_tokens) > 1:
                # "ABC商事 佐藤 一也": the name may be any run of the words.
                n = len(cjk_tokens)
                for size in range(min(n - 1, 3), 0, -1):
                    for start in range(n - size + 1):
                        out.append(_cjk_forms(cjk_tokens[start : start + size], dictionary=False))
        latin, family = _latin_name(latin_tokens)
        if latin:
            if comma_family and len(latin) >= 2:
                family = 0
            out.append(
                NameForms(romaji=latin, romaji_from="romaji", family=family, full=len(latin) >= 2)
            )
    return tuple(out)


def _cjk_forms(tokens: list[str], *, dictionary: bool) -> NameForms:
    joined = "".join(tokens)
    if is_kana_text(joined):
        kana_tokens = tuple(to_hiragana(t) for t in tokens)
        romaji = tuple(_kana_token_romaji(t) for t in kana_tokens)
        romaji = tuple(r for r in romaji if r)
        return NameForms(
            kana="".join(kana_tokens),
            kana_tokens=kana_tokens,
            romaji=romaji,
            romaji_from="kana",
            family=0 if len(romaji) >= 2 else None,
            full=len(kana_tokens) >= 2,
        )
    forms = NameForms(cjk=joined, full=len(tokens) >= 2)
    if dictionary and not dictionary_available() and len(joined) >= 4:
        # Without a dictionary a four-character kanji name is taken as a full name: very
        # few surnames are that long.
        forms = NameForms(cjk=joined, full=True)
    if dictionary:
        read = dictionary_reading(tokens)
        if read is not None:
            kana_tokens, full = read
            romaji = tuple(r for r in (_kana_token_romaji(t) for t in kana_tokens) if r)
            return NameForms(
                cjk=joined,
                kana="".join(kana_tokens),
                kana_tokens=kana_tokens,
                romaji=romaji,
                romaji_from="kana",
                family=0 if len(romaji) >= 2 else None,
                full=forms.full or full,
            )
    return forms


def _kana_token_romaji(kana: str) -> str:
    return ascii_letters(kana_to_romaji(kana).replace("-", ""))


def person_forms(name: str, kana: str = "", *, dictionary: bool = True) -> tuple[NameForms, ...]:
    """Forms of a directory person from the ``name`` and ``kana`` columns.

    The kana column (family name first, e.g. ``さとう かずや``) gives the reading; without it a
    dictionary reading is tried for kanji names. A Latin name ("John Smith") is used as
    written, its last word taken as the surname unless the writing says otherwise.
    """
    forms = list(display_name_forms(name, dictionary=False))
    kana_norm = " ".join(to_hiragana(fold_width(kana)).replace("・", " ").split())
    if kana_norm and is_kana_text(kana_norm):
        kana_tokens = tuple(_strip_cjk_suffixes(t) for t in kana_norm.split())
        kana_tokens = tuple(t for t in kana_tokens if t)
        romaji = tuple(r for r in (_kana_token_romaji(t) for t in kana_tokens) if r)
        name_full = any(f.full for f in forms)
        full = len(kana_tokens) >= 2 or name_full
        cjk = next((f.cjk for f in forms if f.cjk), "")
        forms = [f for f in forms if not f.cjk and not f.kana]  # replaced by the richer form
        forms.insert(
            0,
            NameForms(
                cjk=cjk,
                kana="".join(kana_tokens),
                kana_tokens=kana_tokens,
                romaji=romaji,
                romaji_from="kana",
                family=0 if len(romaji) >= 2 else None,
                full=full,
            ),
        )
    elif dictionary:
        forms = [
            _cjk_forms(_cjk_tokens_of(name), dictionary=True) if f.cjk and not f.kana else f
            for f in forms
        ]
    # Latin names keep ``family`` as the writing shows it (None when it does not say: both
    # words may then be the surname for initial matching).
    return tuple(forms)


def _cjk_tokens_of(name: str) -> list[str]:
    for seg in name_segments(name):
        toks = [
            _strip_cjk_suffixes(t)
            for t in _split_tokens(seg)
            if any(_is_ideograph(c) or _is_kana(c) for c in t)
        ]
        toks = [t for t in toks if t]
        if toks:
            return toks
    return []


def local_part_tokens(local: str) -> tuple[str, ...]:
    """Name-like tokens of an address local part: ``Kazuya_Sato123+tag`` -> (kazuya, sato)."""
    text = unicodedata.normalize("NFKD", local[:MAX_NAME_CHARS].casefold()).split("+", 1)[0]
    text = "".join(c for c in text if not unicodedata.combining(c))
    return tuple(t for t in re.split(r"[^a-z]+", text) if t)[:MAX_TOKENS]


# --------------------------------------------------------------------------- dictionary reading

_TOKENIZER: Any = None
_TOKENIZER_LOCK = threading.Lock()
_TOKENIZER_FAILED = False


def _tokenizer() -> Any:
    global _TOKENIZER, _TOKENIZER_FAILED
    if _TOKENIZER is not None or _TOKENIZER_FAILED:
        return _TOKENIZER
    with _TOKENIZER_LOCK:
        if _TOKENIZER is None and not _TOKENIZER_FAILED:
            try:
                module = importlib.import_module("janome.tokenizer")
                _TOKENIZER = module.Tokenizer()
            except Exception:  # not installed, or its dictionary failed to load
                _TOKENIZER_FAILED = True
    return _TOKENIZER


def dictionary_available() -> bool:
    return _tokenizer() is not None


@functools.lru_cache(maxsize=16384)
def _read_token(text: str) -> tuple[str, bool, bool] | None:
    """Katakana reading of one kanji string, and whether it holds a surname / a given name."""
    tk = _tokenizer()
    if tk is None or not text:
        return None
    reading: list[str] = []
    family = given = False
    for m in tk.tokenize(text[:40]):
        r = m.reading if isinstance(m.reading, str) else "*"
        if r == "*":
            if is_kana_text(m.surface):
                r = m.surface
            else:
                return None
        reading.append(r)
        pos = str(m.part_of_speech)
        family = family or "人名,姓" in pos
        given = given or "人名,名" in pos
    return "".join(reading), family, given


def dictionary_reading(tokens: list[str]) -> tuple[tuple[str, ...], bool] | None:
    """Hiragana reading tokens of a kanji name and whether it is a full name, or None.

    ``["佐藤", "一也"]`` -> ``(("さとう", "かずや"), True)``; ``["佐藤一也"]`` is split by the
    dictionary's surname / given-name tags when it has them.
    """
    if not tokens or len("".join(tokens)) > 20:
        return None
    tk = _tokenizer()
    if tk is None:
        return None
    if len(tokens) >= 2:
        out: list[str] = []
        for t in tokens:
            r = _read_token(t)
            if r is None:
                return None
            out.append(to_hiragana(r[0]))
        return tuple(out), True
    # One token: split by the dictionary's tags (姓 then 名).
    morphs = list(tk.tokenize(tokens[0]))
    if not morphs:
        return None
    readings: list[str] = []
    tags: list[str] = []
    for m in morphs:
        reading = m.reading if isinstance(m.reading, str) else "*"
        if reading == "*":
            if not is_kana_text(m.surface):
                return None
            reading = m.surface
        readings.append(to_hiragana(reading))
        pos = str(m.part_of_speech)
        tags.append("family" if "人名,姓" in pos else "given" if "人名,名" in pos else "")
    if len(morphs) >= 2 and tags[0] == "family" and any(t == "given" for t in tags[1:]):
        return (readings[0], "".join(readings[1:])), True
    return ("".join(readings),), False


# --------------------------------------------------------------------------- surnames


def _romaji_key(word: str) -> str:
    s = romaji_skeleton(word)
    return "romaji:" + s if len(s) >= 2 else ""


@functools.lru_cache(maxsize=16384)
def person_surname_keys(name: str, kana: str = "") -> frozenset[str]:
    """Comparable keys of a directory person's surname (``cjk:佐藤``, ``kana:さとう``,
    ``romaji:sato``): the first word of a spaced kanji/kana name and of its reading, or a
    Latin name's surname (the upper-case word, the word before a comma, else the last).
    A name written without a space gives no kanji key (its surname is not known)."""
    keys: set[str] = set()
    cjk = _cjk_tokens_of(name)
    if len(cjk) >= 2:
        if is_kana_text(cjk[0]):
            keys.add("kana:" + to_hiragana(cjk[0]))
            keys.add(_romaji_key(kana_to_romaji(cjk[0])))
        else:
            keys.add("cjk:" + cjk[0])
    reading = [t for t in to_hiragana(kana[:MAX_NAME_CHARS]).split() if t]
    if len(reading) >= 2:
        keys.add("kana:" + reading[0])
        keys.add(_romaji_key(kana_to_romaji(reading[0])))
    if not cjk:
        for f in display_name_forms(name):
            if len(f.romaji) >= 2:
                family = f.family if f.family is not None else len(f.romaji) - 1
                keys.add(_romaji_key(f.romaji[family]))
    keys.discard("")
    return frozenset(keys)


@functools.lru_cache(maxsize=16384)
def recipient_surname_keys(display_name: str, local: str) -> frozenset[str]:
    """Keys of every word of a recipient's display name and local part that may be a
    surname (``佐藤様`` -> ``cjk:佐藤``; ``Sato-san`` / ``h.satoh@`` -> ``romaji:sato``;
    ``サトウ`` -> ``kana:さとう``, ``romaji:sato``). Words of one or two letters are left out."""
    keys: set[str] = set()
    for tok in _cjk_tokens_of(display_name)[:4]:
        if is_kana_text(tok):
            keys.add("kana:" + to_hiragana(tok))
            keys.add(_romaji_key(kana_to_romaji(tok)))
        elif len(tok) >= 1:
            keys.add("cjk:" + tok)
    for f in display_name_forms(display_name):
        if f.romaji_from == "romaji":
            for w in f.romaji[:4]:
                if len(w) >= 3:
                    keys.add(_romaji_key(w))
    for w in local_part_tokens(local)[:4]:
        if len(w) >= 3:
            keys.add(_romaji_key(w))
    keys.discard("")
    return frozenset(keys)


@functools.lru_cache(maxsize=4096)
def reading_words(text: str) -> tuple[str, ...] | None:
    """Hiragana readings of the words of a short kanji/kana text, by the dictionary.

    ``ミドリ設計`` -> ``("みどり", "せっけい")``; None when there is no dictionary or a word
    has no reading. Used for organisation names (compared with the romaji of a domain).
    """
    if not text or len(text) > 40:
        return None
    tk = _tokenizer()
    if tk is None:
        return None
    out: list[str] = []
    for m in tk.tokenize(text):
        reading = m.reading if isinstance(m.reading, str) else "*"
        if reading == "*":
            if not is_kana_text(m.surface):
                return None
            reading = m.surface
        out.append(to_hiragana(reading))
    return tuple(out) or None
