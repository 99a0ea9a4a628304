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

Addressees are found by ``leakguard.detectors.greetings`` (bounded, new text only). A mail
whose first lines hold no honorific costs a few regex searches; names are read (and
cached) only when an addressee was found.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from leakguard.detectors import DetectorResult
from leakguard.detectors.greetings import (
    COMPANY_RE,
    ORG_SUFFIX_RE,
    Addressee,
    find_addressees,
    is_company,
    word_set,
)
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
from leakguard.message.textaddr import is_role_local
from leakguard.organization import Context, registrable_domain
from leakguard.types import Address, Finding, Message

__all__ = ["DETECTOR", "FACT", "Addressee", "detect", "find_addressees", "org_reading"]

DETECTOR = "addressee"
FACT = "addressee_mismatches"

MAX_HISTORY_NAMES = 2000  # contact names looked at per message

# Japanese second-level domains that hold one registration per organisation (JPRS rules):
# their label is the organisation's own choice of name.
_ORG_SLDS = frozenset({"co.jp", "or.jp", "ac.jp", "go.jp", "ed.jp", "gr.jp", "lg.jp"})
# Words of domain labels that say what a business does, not which one it is.
_GENERIC_DOMAIN_WORDS = word_set(
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


# --------------------------------------------------------------------------- organisations


def _org_key(name: str) -> str:
    """Comparison form of an organisation name: NFKC, case-folded, decorations, spaces and
    punctuation removed."""
    t = unicodedata.normalize("NFKC", name[:120]).casefold()
    t = COMPANY_RE.sub("", t)
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
    return is_company(t) or ORG_SUFFIX_RE.search(t) is not None


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
    return _ROLE_NAME_RE.search(d) is not None or ORG_SUFFIX_RE.search(d) is not None


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
                # A configured partner named in the greeting: a recipient at another known
                # partner's domain is a different organisation, whatever else is known.
                key = _org_key(org)
                named = next(
                    (p for p in ctx.org.partners if any(_org_key(n) == key for n in p.names)),
                    None,
                )
                judged: list[_Judged] = []
                for reg, members in by_org.items():
                    partner = ctx.org.partner_of(members[0].domain)
                    if (
                        named is not None
                        and partner is not named
                        and ctx.org.is_partner_domain(members[0].domain)
                    ):
                        shown = ", ".join(partner.names) if partner and partner.names else reg
                        judged.append(_Judged(False, True, shown))
                        continue
                    display = [m.display_name for m in members if m.display_name]
                    hist = history.get(reg, [])
                    names = [*display, *hist]
                    strong = [n for n in names if _is_org_name(n)]
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
