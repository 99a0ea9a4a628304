"""Lookalike domains: recipient domains that resemble, but are not, a known domain.

Fact ``lookalike_domains`` (DESIGN §2): the number of distinct recipient domains that look
like an internal or partner domain (``ctx.org.known_domains``) without being one or a
subdomain of one. Techniques, each reported by name in the evidence:

* ``homoglyph``: Unicode look-alike letters (Cyrillic ``а``/``о``/``е``, Greek ``ο``, dotless
  ``ı``, accented letters), also inside punycode ``xn--`` domains. The skeleton uses the
  Unicode confusables table shipped by ``confusable-homoglyphs``.
* ``confusable letters``: ASCII sequences that read alike: ``rn``/``m``, ``vv``/``w``,
  ``cl``/``d``, ``l``/``1``/``i``, ``0``/``o``.
* ``suffix swap``: the same name under another public suffix (``.co.jp``/``.jp``/``.com``/
  ``.ne.jp``/``.or.jp``/``.lg.jp``...), or a known domain with a suffix appended
  (``partner.co.jp.com``).
* ``embedded domain``: a known domain as the start of another (``partner.co.jp.evil.example``).
* ``hyphen`` / ``dot``: hyphens or dots added or dropped (``city-example`` / ``cityexample``,
  ``partnerco.jp``).
* ``edit distance``: added, dropped, swapped or changed letters, few enough relative to the
  length of the name (none for names of three letters or fewer, one up to nine letters, two
  from ten), with ``rapidfuzz``'s optimal string alignment distance.

Known-domain targets are prepared once per organisation (``org.cache["lookalike.index"]``)
and verdicts per domain are cached there (bounded).
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field

from confusable_homoglyphs import confusables
from publicsuffixlist import PublicSuffixList
from rapidfuzz import process
from rapidfuzz.distance import OSA

from leakguard.detectors import DetectorResult
from leakguard.organization import (
    Context,
    Organization,
    registrable_domain,
    to_ascii_domain,
    to_unicode_domain,
)
from leakguard.types import Address, Finding, Message

DETECTOR = "lookalike"
FACT = "lookalike_domains"
INDEX_KEY = "lookalike.index"
RESULT_CACHE_SIZE = 20000
MAX_DOMAIN_CHARS = 253
MAX_RECIPIENTS = 1000

_PSL_STRICT = PublicSuffixList(accept_unknown=False)  # tells real suffixes from typos

# ASCII look-alike sequences, folded in this order on both sides.
# ASCII look-alikes: single characters first, then sequences, the same on both sides.
_ASCII_CHARS = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l"})
_ASCII_SEQUENCES: tuple[tuple[str, str], ...] = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def max_edits(length: int) -> int:
    """Edits tolerated in a domain name of ``length`` characters (without its suffix)."""
    if length <= 3:
        return 0
    if length <= 9:
        return 1
    return 2


# --------------------------------------------------------------------------- skeletons


@functools.lru_cache(maxsize=4096)
def _char_skeleton(ch: str) -> str:
    if ch.isascii():
        return ch
    folded = unicodedata.normalize("NFKC", ch).casefold()
    if folded.isascii():
        return folded
    for c in folded:
        for glyph in confusables.confusables_data.get(c, ()):
            g = str(glyph.get("c", ""))
            if g and g.isascii() and g.isalnum():
                return g.lower()
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c)
    )
    return plain if plain.isascii() and plain else folded


def latin_skeleton(domain: str) -> str:
    """``раrtnеr.co.jp`` (Cyrillic р, а, е) -> ``partner.co.jp``; ASCII is kept as it is."""
    d = domain[:MAX_DOMAIN_CHARS].lower()
    if d.isascii():
        return d
    return "".join(_char_skeleton(c) for c in d)


def ascii_confusable_skeleton(text: str) -> str:
    """``rnodern`` / ``modem`` -> ``modem``; ``c1inic`` / ``dinic`` -> ``dlnlc``."""
    text = text.translate(_ASCII_CHARS)
    for a, b in _ASCII_SEQUENCES:
        text = text.replace(a, b)
    return text


@functools.lru_cache(maxsize=16384)
def _split_suffix(domain: str) -> tuple[str, str]:
    """(name, public suffix): ``mail.partner.co.jp`` -> (``mail.partner``, ``co.jp``)."""
    if "." not in domain:
        return domain, ""
    try:
        suffix = _PSL_STRICT.publicsuffix(domain) or domain.rpartition(".")[2]
    except Exception:  # odd characters in hostile input
        suffix = domain.rpartition(".")[2]
    if suffix == domain:
        return domain, ""
    return domain[: -len(suffix) - 1], suffix


def _flat(text: str) -> str:
    return text.replace(".", "").replace("-", "")


@functools.lru_cache(maxsize=4096)
def _is_real_suffix(suffix: str) -> bool:
    if not suffix:
        return False
    try:
        return bool(_PSL_STRICT.is_public(suffix))
    except Exception:
        return False


# --------------------------------------------------------------------------- index


@dataclass(frozen=True, slots=True)
class Target:
    domain: str  # the known domain as configured (A-label), or its registrable domain
    shown: str  # U-label form, for display
    label: str  # last label before the public suffix ("partner")
    stem: str  # everything before the public suffix ("city.example")
    suffix: str  # public suffix ("co.jp")
    conf: str  # ASCII-confusable skeleton of ``domain``
    conf_label: str  # ... of ``label``


@dataclass(frozen=True, slots=True)
class LookalikeMatch:
    domain: str  # the recipient domain (A-label)
    resembles: str  # the known domain it resembles (U-label form for display)
    technique: str
    score: int


def _multimap(pairs: list[tuple[str, Target]]) -> dict[str, list[Target]]:
    out: dict[str, list[Target]] = {}
    for key, t in pairs:
        if key:
            out.setdefault(key, []).append(t)
    return out


@dataclass
class LookalikeIndex:
    """Known-domain targets with look-up tables, so a recipient domain is compared with a
    few candidates rather than with every known domain."""

    targets: tuple[Target, ...]
    registrables: frozenset[str]
    results: OrderedDict[str, LookalikeMatch | None] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    by_domain: dict[str, list[Target]] = field(default_factory=dict)
    by_conf: dict[str, list[Target]] = field(default_factory=dict)
    by_stem: dict[str, list[Target]] = field(default_factory=dict)
    by_flat_stem: dict[str, list[Target]] = field(default_factory=dict)
    by_flat: dict[str, list[Target]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    conf_labels: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ts = self.targets
        self.by_domain = _multimap([(t.domain, t) for t in ts])
        self.by_conf = _multimap([(t.conf, t) for t in ts])
        self.by_stem = _multimap([(t.stem, t) for t in ts])
        self.by_flat_stem = _multimap([(_flat(t.stem), t) for t in ts])
        self.by_flat = _multimap([(_flat(t.domain), t) for t in ts])
        self.labels = [t.label for t in ts]
        self.conf_labels = [t.conf_label for t in ts]
        self.domains = [t.domain for t in ts]


def build_index(org: Organization) -> LookalikeIndex:
    seen: set[str] = set()
    targets: list[Target] = []
    regs: set[str] = set()
    for known in org.known_domains:
        d = to_ascii_domain(known)
        if not d:
            continue
        reg = registrable_domain(d)
        regs.add(reg)
        for cand in (d, reg):
            if cand in seen:
                continue
            seen.add(cand)
            stem, suffix = _split_suffix(cand)
            label = stem.rpartition(".")[2]
            targets.append(
                Target(
                    domain=cand,
                    shown=to_unicode_domain(cand),
                    label=label,
                    stem=stem,
                    suffix=suffix,
                    conf=ascii_confusable_skeleton(cand),
                    conf_label=ascii_confusable_skeleton(label),
                )
            )
    return LookalikeIndex(targets=tuple(targets), registrables=frozenset(regs))


def lookalike_index(org: Organization) -> LookalikeIndex:
    return org.cached(INDEX_KEY, build_index)


# --------------------------------------------------------------------------- judging


@dataclass(frozen=True, slots=True)
class _Probe:
    """The recipient domain's skeletons, computed once and compared with each candidate."""

    full: str
    reg: str
    homoglyph: bool
    conf_full: str
    conf_reg: str
    cands: tuple[tuple[str, str, str], ...]  # (domain, stem, suffix) for reg and full
    label: str
    suffix: str

    @classmethod
    def of(cls, full: str, reg: str, homoglyph: bool) -> _Probe:
        cands = tuple((c, *_split_suffix(c)) for c in dict.fromkeys((reg, full)))
        stem, suffix = _split_suffix(reg)
        return cls(
            full=full,
            reg=reg,
            homoglyph=homoglyph,
            conf_full=ascii_confusable_skeleton(full),
            conf_reg=ascii_confusable_skeleton(reg),
            cands=cands,
            label=stem.rpartition(".")[2],
            suffix=suffix,
        )


def _candidates(p: _Probe, idx: LookalikeIndex) -> list[Target]:
    found: dict[int, Target] = {}

    def add(targets: list[Target] | None) -> None:
        for t in targets or ():
            found[id(t)] = t

    for key in (p.reg, p.full):
        add(idx.by_domain.get(key))
    for key in (p.conf_reg, p.conf_full):
        add(idx.by_conf.get(key))
    labels = p.full.split(".")
    for i in range(1, min(len(labels), 8)):  # partner.co.jp.evil.example
        add(idx.by_domain.get(".".join(labels[:i])))
    for cand, stem, _suffix in p.cands:
        add(idx.by_stem.get(stem))
        add(idx.by_flat_stem.get(_flat(stem)))
        add(idx.by_flat.get(_flat(cand)))
    if p.label:
        for query, choices in (
            (p.label, idx.labels),
            (ascii_confusable_skeleton(p.label), idx.conf_labels),
        ):
            for _c, _d, pos in process.extract(
                query, choices, scorer=OSA.distance, score_cutoff=2, limit=None
            ):
                found[id(idx.targets[pos])] = idx.targets[pos]
    for _c, _d, pos in process.extract(
        p.full, idx.domains, scorer=OSA.distance, score_cutoff=1, limit=None
    ):
        found[id(idx.targets[pos])] = idx.targets[pos]
    return list(found.values())


def _compare(p: _Probe, t: Target) -> tuple[str, int] | None:
    """Technique and score when the probed domain resembles target ``t``."""
    full, reg = p.full, p.reg
    if reg == t.domain or full == t.domain:
        return ("homoglyph", 100) if p.homoglyph else None
    if t.conf in (p.conf_reg, p.conf_full):
        return ("homoglyph" if p.homoglyph else "confusable letters"), 95
    if full.startswith(t.domain + "."):
        # partner.co.jp.com, gmail.com.com: a suffix appended; partner.co.jp.evil.example:
        # the known domain used as a subdomain of another one.
        rest = full[len(t.domain) + 1 :]
        return ("suffix swap" if _is_real_suffix(rest) else "embedded domain"), 90
    tech = "homoglyph" if p.homoglyph else None
    for cand, stem, suffix in p.cands:
        kind = ""
        if stem == t.stem and suffix != t.suffix:
            # The same name under another suffix; a suffix that is no public suffix at all
            # is a typo of one (gmail.con, yahoo.c0m).
            kind = "suffix swap" if _is_real_suffix(suffix) else "edit distance"
        elif _flat(stem) == _flat(t.stem) or _flat(cand) == _flat(t.domain):
            kind = "hyphen" if cand.count("-") != t.domain.count("-") else "dot"
        if kind:
            return tech or kind, 90
    # Edit distance between names (last label before the suffix) with the same, a real
    # swapped, or a mistyped suffix.
    label, suffix = p.label, p.suffix
    if not label or not t.label:
        return None
    k = max_edits(len(t.label))
    if k == 0:
        return None
    if len(full) > len(t.domain) - 2 and OSA.distance(full, t.domain, score_cutoff=1) <= 1:
        # One edit anywhere, also where the suffix no longer parses (partner.co.jpn).
        return tech or "edit distance", round(OSA.normalized_similarity(full, t.domain) * 100)
    if suffix == t.suffix:
        budget = k
    elif len(t.label) >= 5 and (
        (_is_real_suffix(suffix) and _is_real_suffix(t.suffix))
        or OSA.distance(suffix, t.suffix, score_cutoff=1) <= 1
    ):
        budget = 1
    else:
        return None
    d = min(
        OSA.distance(label, t.label, score_cutoff=budget + 1),
        OSA.distance(ascii_confusable_skeleton(label), t.conf_label, score_cutoff=budget + 1),
    )
    if 0 < d <= budget:
        return tech or "edit distance", round(OSA.normalized_similarity(reg, t.domain) * 100)
    return None


def assess_domain(domain: str, org: Organization) -> LookalikeMatch | None:
    """Whether a recipient domain resembles a known domain without being one."""
    d = to_ascii_domain(unicodedata.normalize("NFKC", domain[:MAX_DOMAIN_CHARS]))
    if not d:
        return None
    idx = lookalike_index(org)
    if not idx.targets:
        return None
    with idx.lock:
        if d in idx.results:
            idx.results.move_to_end(d)
            return idx.results[d]
    result = _assess(d, org, idx)
    with idx.lock:
        idx.results[d] = result
        while len(idx.results) > RESULT_CACHE_SIZE:
            idx.results.popitem(last=False)
    return result


def _assess(d: str, org: Organization, idx: LookalikeIndex) -> LookalikeMatch | None:
    reg = registrable_domain(d)
    if reg in idx.registrables or d in idx.registrables:
        return None  # a known domain or a subdomain of one (covers every internal/partner)
    uni_full = to_unicode_domain(d)
    uni_reg = to_unicode_domain(reg)
    homoglyph = not uni_full.isascii()
    full_sk = latin_skeleton(uni_full)
    reg_sk = latin_skeleton(uni_reg)
    if homoglyph:
        # The registrable domain of the skeleton may differ from that of the Unicode form.
        reg_sk = registrable_domain(full_sk) if full_sk.isascii() else reg_sk
    probe = _Probe.of(full_sk, reg_sk, homoglyph)
    best: LookalikeMatch | None = None
    for t in _candidates(probe, idx):
        hit = _compare(probe, t)
        if hit is None:
            continue
        technique, score = hit
        if best is None or (score, len(t.domain)) > (best.score, len(best.resembles)):
            best = LookalikeMatch(domain=d, resembles=t.shown, technique=technique, score=score)
    if best is not None and (org.is_internal_domain(d) or org.is_partner_domain(d)):
        return None  # configured as ours after all (an exact pattern outside the targets)
    return best


# --------------------------------------------------------------------------- detector


def _recipients(msg: Message, ctx: Context) -> list[Address]:
    seen: set[str] = set()
    out: list[Address] = []
    for a in (*msg.visible_recipients, *msg.envelope_rcpts, *msg.bcc):
        if not a.domain or a.key in seen or ctx.org.is_internal(a):
            continue
        seen.add(a.key)
        out.append(a)
        if len(out) >= MAX_RECIPIENTS:
            break
    return out


def detect(msg: Message, ctx: Context) -> DetectorResult:
    by_domain: dict[str, tuple[LookalikeMatch, list[str]]] = {}
    verdicts: dict[str, LookalikeMatch | None] = {}
    for addr in _recipients(msg, ctx):
        if addr.domain not in verdicts:
            verdicts[addr.domain] = assess_domain(addr.domain, ctx.org)
        match = verdicts[addr.domain]
        if match is None:
            continue
        entry = by_domain.setdefault(addr.domain, (match, []))
        entry[1].append(addr.addr)
    findings = []
    for domain, (m, addresses) in by_domain.items():
        shown = to_unicode_domain(domain)
        findings.append(
            Finding(
                detector=DETECTOR,
                fact=FACT,
                addresses=tuple(addresses),
                detail=(
                    f"{shown} resembles the known domain {m.resembles} "
                    f"({m.technique}, score {m.score})"
                ),
                evidence={
                    "domain": shown,
                    "domain_ascii": domain,
                    "resembles": m.resembles,
                    "technique": m.technique,
                    "score": str(m.score),
                },
            )
        )
    return DetectorResult(facts={FACT: len(findings)}, findings=tuple(findings))
