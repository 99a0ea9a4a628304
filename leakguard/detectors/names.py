"""Name-similar recipients: external recipients that look like a colleague or a usual contact.

Fact ``name_similar_recipients`` (DESIGN §2): the number of distinct external recipient
addresses whose display name or local part resembles

* a person in the organisation's directory (``ctx.org.directory``), or
* a contact the sender usually writes to (``ctx.history.contact_names``) at *another* address.

Names are compared in kanji, kana and Hepburn romaji forms (see ``japanese``), with
honorifics, company decorations and width differences removed. A surname alone fires only
in the context of the same-surname autocomplete incident (``surname_findings``: a thread
among colleagues, or with a colleague to someone never written to, sent to ONE outsider who
shares a colleague's surname); otherwise a full name, or a surname with the given name's
initial (``k.sato``, ``satok``, ``j.smith``) does. Small romaji typos are tolerated with
``rapidfuzz`` (optimal string alignment distance: one edit for names of 5 to 11 letters,
two from 12 letters), counted per name part even when the name is written as one word: a
part shorter than five letters takes no typo that makes another name (``yukaono`` is not
``yukiono``: ゆか is not ゆき), only a slip that makes no romaji word (``kazuyasatp``).

Which word is the surname: Japanese names read from kana put it first (姓 名); Latin names
say so by an upper-case word ("SATO Kazuya") or a comma ("Smith, John"); otherwise a name
whose words all read as romaji may have either order, and a Western "First Last" name takes
the last word. Initials are accepted only as that surname with the given name's first
letter, never as a given name plus a letter (``john.j``, ``kevinm``), and one-letter words
of a name ("John J Smith") are middle initials: neither name parts nor initials.

The sender is never "a colleague" or "a usual contact": their own directory row, and any
row or contact with the sender's name (directory name or From display name), are left out.
``sender_aliases`` lists the external recipients that are probably the sender's own outside
mailboxes (``jsmith@home-isp.example`` from ``john.smith@``), for the other detectors to
treat as the sender; the sender's names are cached per sender (``org.cache["names.senders"]``).

Indexes are built once per organisation (``org.cache["names.index"]``) and once per sender's
contact list (``org.cache["names.contacts"]``, bounded): candidates are found by exact
look-ups of name parts and by 3-letter prefix / suffix buckets of the concatenated names, so
a recipient is checked against a handful of people, not the whole directory.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

from leakguard.detectors import DetectorResult
from leakguard.detectors.japanese import (
    NameForms,
    display_name_forms,
    initials_of,
    local_part_tokens,
    looks_like_romaji,
    person_forms,
    person_surname_keys,
    recipient_surname_keys,
    romaji_skeleton,
)
from leakguard.organization import Context, Organization, Person
from leakguard.types import Address, Finding, Message

DETECTOR = "names"
FACT = "name_similar_recipients"
INDEX_KEY = "names.index"
CONTACTS_KEY = "names.contacts"
SENDERS_KEY = "names.senders"
SURNAMES_KEY = "names.surnames"
SURNAME_SCORE = 60  # a surname alone, made likely by the context (see ``surname_findings``)
MAX_QUOTED_BLOCKS = 200
CONTACT_CACHE_SIZE = 256
SENDER_CACHE_SIZE = 1024
MAX_RECIPIENTS = 1000  # bound the work on a hostile message
MAX_CONTACT_NAMES = 5000

INITIAL_SCORE = 80  # surname + given-name initial


def max_edits(length: int) -> int:
    """Typos tolerated in a romaji string of ``length`` letters (short names: none)."""
    if length < 5:
        return 0
    if length < 12:
        return 1
    return 2


# --------------------------------------------------------------------------- index


@dataclass(frozen=True, slots=True, eq=False)
class NameEntry:
    """One way of writing one known person (a directory row or a contact's display name)."""

    address: str  # lower-case address of the person or contact
    name: str  # the name as known (directory name column, or the contact's display name)
    source: str  # "directory" | "contacts" | "sender"
    parts: tuple[str, ...] = ()  # romaji skeletons in written order, middle initials left out
    initials: tuple[frozenset[str], ...] = ()
    family: int | None = None  # index of the surname in ``parts`` when known
    keys: frozenset[str] = frozenset()  # the name in comparable form (see ``name_keys``)


@dataclass(frozen=True, slots=True)
class Match:
    entry: NameEntry
    matched_on: str  # "display name" | "local part"
    form: str  # "kanji" | "kana" | "romaji"
    score: int

    def rank(self) -> tuple[int, int, int]:
        return (
            self.score,
            1 if self.entry.source == "directory" else 0,
            1 if self.matched_on == "display name" else 0,
        )


@dataclass
class NameIndex:
    """Look-up tables for a set of known names. Build with ``add``; read-only afterwards."""

    cjk: dict[str, list[NameEntry]] = field(default_factory=dict)
    kana: dict[str, list[NameEntry]] = field(default_factory=dict)
    parts: dict[str, list[tuple[NameEntry, int]]] = field(default_factory=dict)
    # part skeleton -> (the other parts, their entries): "sato" -> (["kazuya", ...], [...])
    others: dict[str, tuple[list[str], list[NameEntry]]] = field(default_factory=dict)
    # (surname skeleton, given-name initial) -> entries: ("sato", "k") -> [佐藤 一也, ...]
    initials: dict[tuple[str, str], list[NameEntry]] = field(default_factory=dict)
    concat_prefix: dict[str, tuple[list[str], list[NameEntry]]] = field(default_factory=dict)
    concat_suffix: dict[str, tuple[list[str], list[NameEntry]]] = field(default_factory=dict)
    size: int = 0

    def add(self, address: str, name: str, source: str, forms: Iterable[NameForms]) -> None:
        for f in forms:
            if not f.full:
                continue  # a surname alone (or an unknown single word) is never a target
            self.size += 1
            # One-letter words are middle initials ("John J Smith", "Regan M. Smith"): they
            # are neither name parts nor initials of a given name.
            kept = [i for i, r in enumerate(f.romaji) if len(r) >= 2]
            words = tuple(f.romaji[i] for i in kept)
            parts = tuple(romaji_skeleton(r) for r in words)
            split = len(parts) >= 2 and all(parts)
            family = kept.index(f.family) if f.family in kept else None
            entry = NameEntry(
                address=address,
                name=name,
                source=source,
                parts=parts if split else (),
                initials=tuple(initials_of(r) for r in words) if split else (),
                family=family if split else None,
                keys=name_keys(f),
            )
            if f.cjk and len(f.cjk) >= 2:
                self.cjk.setdefault(f.cjk, []).append(entry)
            if f.kana and len(f.kana) >= 3:
                self.kana.setdefault(f.kana, []).append(entry)
                if len(f.kana_tokens) >= 2:  # given name written first
                    rev = "".join(reversed(f.kana_tokens))
                    if rev != f.kana:
                        self.kana.setdefault(rev, []).append(entry)
            if split:
                for i, p in enumerate(parts):
                    self.parts.setdefault(p, []).append((entry, i))
                    bucket = self.others.setdefault(p, ([], []))
                    for j, other in enumerate(parts):
                        if j != i:
                            bucket[0].append(other)
                            bucket[1].append(entry)
                for surname, given in _initial_pairs(words, family, f.romaji_from):
                    for letter in entry.initials[given]:
                        self.initials.setdefault((parts[surname], letter), []).append(entry)
            for concat in _concatenations(f.romaji):
                if len(concat) >= 6:
                    for key, table in (
                        (concat[:3], self.concat_prefix),
                        (concat[-3:], self.concat_suffix),
                    ):
                        bucket = table.setdefault(key, ([], []))
                        bucket[0].append(concat)
                        bucket[1].append(entry)


def _initial_pairs(
    words: tuple[str, ...], family: int | None, romaji_from: str
) -> list[tuple[int, int]]:
    """(surname, given name) positions under which ``initial + surname`` forms are filed.

    * Japanese names read from kana (family name known, 姓 名): the surname with the initial of
      every other part (``k.sato``, ``satok`` for 佐藤 一也), as before.
    * Latin names whose writing shows the surname ("SATO Kazuya", "Smith, John"): that
      surname with the initial of the first other part.
    * Latin names whose every word reads as romaji ("Kazuya Sato", "Sato Kazuya"): the order
      is unknown, so either word may be the surname.
    * Other Latin names (Western "First Last"): only the last word with the first word's
      initial (``j.smith``, ``jsmith``, ``smithj``), never a given name plus a letter
      (``john.j``, ``kevinm``), which would match anyone with that given name.
    """
    n = len(words)
    if family is not None:
        if romaji_from == "kana":
            return [(family, j) for j in range(n) if j != family]
        return [(family, next(j for j in range(n) if j != family))]
    if all(looks_like_romaji(w) for w in words):
        return [(i, j) for i in range(n) for j in range(n) if i != j]
    return [(n - 1, 0)]


def name_keys(f: NameForms) -> frozenset[str]:
    """Comparable keys of one full name: its kanji form and its romaji words in any order
    (middle initials left out), so "Cuilla, Martin", "Martin J. Cuilla" and "martin cuilla"
    share a key, as do 佐藤 一也 (read さとう かずや) and "Kazuya Sato"."""
    if not f.full:
        return frozenset()
    keys: set[str] = set()
    if len(f.cjk) >= 2:
        keys.add("cjk:" + f.cjk)
    words = sorted(romaji_skeleton(r) for r in f.romaji if len(r) >= 2)
    if len(words) >= 2 and all(words):
        keys.add("romaji:" + " ".join(words))
    return frozenset(keys)


def _concatenations(romaji: tuple[str, ...]) -> set[str]:
    """Skeletons of the name written as one word, in both orders (``kazuyasato``)."""
    if not romaji:
        return set()
    if len(romaji) == 1:
        return {romaji_skeleton(romaji[0])}
    out = {romaji_skeleton("".join(romaji)), romaji_skeleton("".join(reversed(romaji)))}
    if len(romaji) > 2:  # first and last word only ("Mary Jane Smith" -> "marysmith")
        out.add(romaji_skeleton(romaji[0] + romaji[-1]))
        out.add(romaji_skeleton(romaji[-1] + romaji[0]))
    return out


def _directory_forms(person: Person) -> list[NameForms]:
    forms = list(person_forms(person.name, person.kana))
    if not any(f.romaji for f in forms):
        # No reading at all: a name-like local part of the person's own address
        # ("kazuya.sato@") stands in for the romaji form.
        toks = local_part_tokens(person.email.rpartition("@")[0])
        if len(toks) >= 2 and all(len(t) >= 2 for t in toks):
            forms.append(NameForms(romaji=toks, romaji_from="romaji", full=True))
    return forms


def build_directory_index(org: Organization) -> NameIndex:
    idx = NameIndex()
    for person in org.directory:
        idx.add(person.key, person.name or person.email, "directory", _directory_forms(person))
    return idx


def directory_index(org: Organization) -> NameIndex:
    """The organisation's directory index, built on first use and kept in ``org.cache``."""
    return org.cached(INDEX_KEY, build_directory_index)


@functools.lru_cache(maxsize=65536)
def _contact_forms(name: str) -> tuple[NameForms, ...]:
    # Cached across senders and rebuilds: a contact list changes with every new recipient,
    # and a dictionary reading costs far more than adding a name to an index.
    return display_name_forms(name, dictionary=True)


def build_contacts_index(contact_names: Mapping[str, Iterable[str]]) -> NameIndex:
    idx = NameIndex()
    count = 0
    for address, names in contact_names.items():
        for name in names:
            count += 1
            if count > MAX_CONTACT_NAMES:
                return idx
            if name:
                idx.add(address.lower(), name, "contacts", _contact_forms(name[:200]))
    return idx


def contacts_index(
    org: Organization, sender: str, contact_names: Mapping[str, Iterable[str]]
) -> NameIndex:
    """The sender's contact index, cached per sender while their contact list is unchanged."""
    snapshot = {k: tuple(v) for k, v in contact_names.items()}
    cache: OrderedDict[str, tuple[dict[str, tuple[str, ...]], NameIndex]] = org.cached(
        CONTACTS_KEY, lambda _org: OrderedDict()
    )
    with org.cache_lock:
        hit = cache.get(sender)
        if hit is not None and hit[0] == snapshot:
            cache.move_to_end(sender)
            return hit[1]
    idx = build_contacts_index(snapshot)
    with org.cache_lock:
        cache[sender] = (snapshot, idx)
        cache.move_to_end(sender)
        while len(cache) > CONTACT_CACHE_SIZE:
            cache.popitem(last=False)
    return idx


@dataclass(frozen=True, slots=True)
class SenderNames:
    """Who sends, as the name detector knows them: the sender's addresses (envelope sender,
    From, SMTP AUTH identity), their name keys (directory entries and From display names)
    and a small index of those names for finding the sender's own outside addresses."""

    addresses: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    index: NameIndex = field(default_factory=NameIndex)

    def is_sender(self, entry: NameEntry) -> bool:
        """True when ``entry`` (a colleague or contact) is the sender under another name
        or address: their own directory row, or a row or contact with their name."""
        return entry.address in self.addresses or not self.keys.isdisjoint(entry.keys)


NO_SENDER = SenderNames()


def build_sender_names(
    org: Organization, addresses: Iterable[str], displays: Iterable[str]
) -> SenderNames:
    addrs = frozenset(a for a in addresses if a)
    idx = NameIndex()
    keys: set[str] = set()
    for a in sorted(addrs):
        person = org.person(a)
        if person is not None:
            forms = _directory_forms(person)
            idx.add(person.key, person.name or person.email, "sender", forms)
            keys.update(*(name_keys(f) for f in forms))
    first = min(addrs) if addrs else ""
    for display in displays:
        if display:
            forms = list(_contact_forms(display[:200]))
            idx.add(first, display, "sender", forms)
            keys.update(*(name_keys(f) for f in forms))
    return SenderNames(addresses=addrs, keys=frozenset(keys), index=idx)


def sender_names(msg: Message, ctx: Context) -> SenderNames:
    """The sender's names, cached per (addresses, From display names) in ``org.cache``."""
    addrs = {a.key for a in msg.from_ if a.domain}
    if msg.sender is not None:
        addrs.add(msg.sender.key)
    if ctx.auth_user and "@" in ctx.auth_user:
        addrs.add(ctx.auth_user.strip().lower())
    displays = tuple(dict.fromkeys(a.display_name for a in msg.from_ if a.display_name))[:4]
    if not addrs and not displays:
        return NO_SENDER
    key = (tuple(sorted(addrs))[:8], displays)
    org = ctx.org
    cache: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]], SenderNames] = org.cached(
        SENDERS_KEY, lambda _org: OrderedDict()
    )
    with org.cache_lock:
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
    built = build_sender_names(org, key[0], displays)
    with org.cache_lock:
        cache[key] = built
        while len(cache) > SENDER_CACHE_SIZE:
            cache.popitem(last=False)
    return built


# --------------------------------------------------------------------------- matching


def _similarity(a: str, b: str) -> int:
    return round(OSA.normalized_similarity(a, b) * 100)


def _part_fits(segment: str, part: str) -> bool:
    """One written segment against one name part: equal, within the part's typo allowance
    (none under five letters, see ``max_edits``), or one slip that makes no romaji word
    ("satp" for "sato"). One letter that makes another name ("yuka" for "yuki", "kato" for
    "sato") is another person: short names differ by one letter."""
    if segment == part:
        return True
    dist = OSA.distance(segment, part)
    if dist <= max_edits(len(part)):
        return True
    return dist == 1 and not looks_like_romaji(segment)


def _segments_fit(s: str, parts: tuple[str, ...]) -> bool:
    part, rest = parts[0], parts[1:]
    if not rest:
        return _part_fits(s, part)
    slack = max(1, max_edits(len(part)))
    for cut in range(max(1, len(part) - slack), min(len(s) - 1, len(part) + slack) + 1):
        if _part_fits(s[:cut], part) and _segments_fit(s[cut:], rest):
            return True
    return False


def joined_typo_fits(s: str, parts: tuple[str, ...]) -> bool:
    """Whether ``s`` (a name written as one word, with typos) is the name of ``parts``
    under the same per-part rule as two separate words: each part of the name, in either
    order, within its own typo allowance. Names not split into parts keep the whole-word
    allowance."""
    if len(parts) < 2:
        return True
    orders = [parts, parts[::-1]]
    if len(parts) > 2:
        orders += [(parts[0], parts[-1]), (parts[-1], parts[0])]
    return any(_segments_fit(s, order) for order in orders)


def match_romaji(
    tokens: tuple[str, ...],
    idx: NameIndex,
    exclude: str,
    matched_on: str,
    form: str,
    sender: SenderNames = NO_SENDER,
) -> Match | None:
    """Best match of raw romaji tokens (``("kazuya", "sato")``, ``("ksato",)``) in ``idx``,
    leaving out the ``exclude`` address and the sender's own entries."""
    best: Match | None = None

    best_rank = (-1, -1, -1)

    def consider(entry: NameEntry, score: int) -> None:
        nonlocal best, best_rank
        if entry.address == exclude or score < best_rank[0] or sender.is_sender(entry):
            return
        m = Match(entry, matched_on, form, score)
        rank = m.rank()
        if rank > best_rank:
            best, best_rank = m, rank

    tokens = tuple(t for t in tokens if t)[:8]
    skels = tuple(romaji_skeleton(t) for t in tokens)

    # (a) two words: one is exactly a name part, the other the other part (typos allowed
    # from 5 letters) or its initial.
    for i, si in enumerate(skels):
        if len(tokens[i]) < 2 or si not in idx.others:
            continue
        others, entries = idx.others[si]
        for j, sj in enumerate(skels):
            if j == i or not sj:
                continue
            if len(tokens[j]) == 1:
                for entry in idx.initials.get((si, tokens[j]), ()):
                    consider(entry, INITIAL_SCORE)
                continue
            k = max_edits(len(sj) + 1)
            for other, dist, pos in process.extract(
                sj, others, scorer=OSA.distance, score_cutoff=k, limit=None
            ):
                if dist == 0:
                    consider(entries[pos], 100)
                elif dist <= max_edits(len(other)):
                    consider(entries[pos], _similarity(si + sj, si + other))

    # (b) the name written as one word, whole ("kazuyasato") or with typos ("kazuyastao"),
    # each word alone and all words joined.
    words = {t for t in tokens if len(t) >= 5}
    if len(tokens) >= 2:
        words.add("".join(tokens))
    for w in words:
        s = romaji_skeleton(w)
        if len(s) < 5:
            continue
        k = max_edits(len(s))
        for table, key in ((idx.concat_prefix, s[:3]), (idx.concat_suffix, s[-3:])):
            bucket = table.get(key)
            if not bucket:
                continue
            for _choice, dist, pos in process.extract(
                s, bucket[0], scorer=OSA.distance, score_cutoff=k, limit=None
            ):
                entry = bucket[1][pos]
                if dist and not joined_typo_fits(s, entry.parts):
                    continue  # "yukaono" is Yuka Ono, not Yuki Ono
                consider(entry, 100 if dist == 0 else _similarity(s, bucket[0][pos]))

    # (c) surname + initial written as one word: "ksato", "satok" (not when the word is a
    # name of its own, e.g. "kato").
    for t, s in zip(tokens, skels, strict=True):
        if len(t) < 4:
            continue
        if s in idx.parts and s not in (romaji_skeleton(t[1:]), romaji_skeleton(t[:-1])):
            continue  # a name of its own ("kato"), unless the initial merged ("aaoki")
        for initial, rest in ((t[0], t[1:]), (t[-1], t[:-1])):
            for entry in idx.initials.get((romaji_skeleton(rest), initial), ()):
                consider(entry, INITIAL_SCORE)
    return best


@functools.lru_cache(maxsize=16384)
def _recipient_forms(display_name: str) -> tuple[NameForms, ...]:
    # Shared by ``sender_aliases`` and ``detect`` (the same recipients, one message), and
    # across messages: people write to the same names again and again.
    return display_name_forms(display_name, variants=True)


@functools.lru_cache(maxsize=16384)
def _local_tokens(local: str) -> tuple[str, ...]:
    return local_part_tokens(local)


def match_recipient(
    addr: Address, display_name: str, idx: NameIndex, sender: SenderNames = NO_SENDER
) -> Match | None:
    """The best resemblance of one recipient to a name in ``idx`` (its own address and the
    sender's own entries excluded)."""
    key = addr.key
    best: Match | None = None

    def better(m: Match | None) -> None:
        nonlocal best
        if m is not None and (best is None or m.rank() > best.rank()):
            best = m

    if display_name:
        for f in _recipient_forms(display_name):
            if f.cjk:
                for entry in idx.cjk.get(f.cjk, ()):
                    if entry.address != key and not sender.is_sender(entry):
                        better(Match(entry, "display name", "kanji", 100))
            if f.kana:
                for entry in idx.kana.get(f.kana, ()):
                    if entry.address != key and not sender.is_sender(entry):
                        better(Match(entry, "display name", "kana", 100))
            if f.romaji:
                form = "kana" if f.romaji_from == "kana" else "romaji"
                better(match_romaji(f.romaji, idx, key, "display name", form, sender))
    tokens = _local_tokens(addr.local)
    better(match_romaji(tokens, idx, key, "local part", "romaji", sender))
    return best


# --------------------------------------------------------------------------- detector


def external_recipients(msg: Message, ctx: Context) -> list[tuple[Address, str]]:
    """External recipients (envelope and To/Cc/Bcc), de-duplicated, with a display name."""
    names: dict[str, str] = {}
    for a in (*msg.to, *msg.cc, *msg.bcc):
        if a.display_name and a.key not in names:
            names[a.key] = a.display_name
    seen: set[str] = set()
    out: list[tuple[Address, str]] = []
    for a in (*msg.visible_recipients, *msg.envelope_rcpts, *msg.bcc):
        if not a.domain or a.key in seen or ctx.org.is_internal(a):
            continue
        seen.add(a.key)
        out.append((a, names.get(a.key, "")))
        if len(out) >= MAX_RECIPIENTS:
            break
    return out


def sender_aliases(msg: Message, ctx: Context) -> frozenset[str]:
    """External recipient addresses (envelope and To/Cc) that are probably the sender's own
    outside mailboxes, lower-cased.

    A recipient is one when its display name or local part matches the sender's directory
    entry or the sender's From display name the way ``name_similar_recipients`` matches a
    colleague: the full name (any order, kanji / kana / romaji, small typos) or the surname
    with the given name's initial (``jsmith@home.example`` for John Smith). The sender's own
    address is not listed.
    """
    sender = sender_names(msg, ctx)
    if not sender.index.size:
        return frozenset()
    names: dict[str, str] = {}
    for a in (*msg.to, *msg.cc):
        if a.display_name and a.key not in names:
            names[a.key] = a.display_name
    seen: set[str] = set()
    out: set[str] = set()
    for a in (*msg.envelope_rcpts, *msg.to, *msg.cc):
        key = a.key
        if not a.domain or key in seen or key in sender.addresses or ctx.org.is_internal(a):
            continue
        seen.add(key)
        if match_recipient(a, names.get(key, ""), sender.index) is not None:
            out.add(key)
        if len(seen) >= MAX_RECIPIENTS:
            break
    return frozenset(out)


def _detail(addr: Address, m: Match) -> str:
    who = "a colleague" if m.entry.source == "directory" else "a usual contact"
    shown = f"{addr.local}@{addr.unicode_domain or addr.domain}"
    return (
        f"{shown} resembles {who}, {m.entry.name} <{m.entry.address}> "
        f"({m.matched_on}, {m.form} form, score {m.score})"
    )


def detect(msg: Message, ctx: Context) -> DetectorResult:
    recipients = external_recipients(msg, ctx)
    if not recipients:
        return DetectorResult(facts={FACT: 0})
    directory = directory_index(ctx.org)
    sender = sender_names(msg, ctx)
    contacts: NameIndex | None = None
    if ctx.history.contact_names:
        sender_key = msg.sender.key if msg.sender else ""
        contacts = contacts_index(ctx.org, sender_key, ctx.history.contact_names)
    findings: list[Finding] = []
    for addr, display in recipients:
        if addr.key in ctx.sender_aliases:
            # Named like the sender: the sender's own outside mailbox. When it also looks like
            # another colleague (same initial and surname), the sender is the likelier owner.
            continue
        best = match_recipient(addr, display, directory, sender) if directory.size else None
        if contacts is not None and contacts.size:
            m = match_recipient(addr, display, contacts, sender)
            if m is not None and (best is None or m.rank() > best.rank()):
                best = m
        if best is None:
            continue
        findings.append(
            Finding(
                detector=DETECTOR,
                fact=FACT,
                addresses=(addr.addr,),
                detail=_detail(addr, best),
                evidence={
                    "similar_to": best.entry.address,
                    "similar_name": best.entry.name,
                    "matched_on": best.matched_on,
                    "form": best.form,
                    "score": str(best.score),
                    "source": best.entry.source,
                },
            )
        )
    findings.extend(
        surname_findings(msg, ctx, recipients, {a for f in findings for a in f.addresses})
    )
    return DetectorResult(facts={FACT: len(findings)}, findings=tuple(findings))


# --------------------------------------------------------------------------- surname in context


def build_surname_index(org: Organization) -> dict[str, tuple[Person, ...]]:
    """Directory people by surname key (``cjk:佐藤``, ``kana:さとう``, ``romaji:sato``)."""
    idx: dict[str, list[Person]] = {}
    for p in org.directory:
        for k in person_surname_keys(p.name[:200], p.kana[:200]):
            idx.setdefault(k, []).append(p)
    return {k: tuple(v) for k, v in idx.items()}


@dataclass(frozen=True, slots=True)
class ThreadPeople:
    took_part: frozenset[str]  # internal addresses that wrote or received a quoted message
    internal: bool  # quoted messages exist and every known participant is internal
    quoted: frozenset[str]  # every address found in the quoted material


def thread_people(msg: Message, ctx: Context) -> ThreadPeople:
    took_part: set[str] = set()
    quoted: set[str] = set()
    internal, known = True, False
    for b in msg.quoted_blocks[:MAX_QUOTED_BLOCKS]:
        for a in (*b.participants, *b.senders):
            if not a.domain:
                continue
            known = True
            quoted.add(a.key)
            if ctx.org.is_internal(a):
                took_part.add(a.key)
            else:
                internal = False
        quoted.update(a.key for a in b.addresses if a.domain)
    return ThreadPeople(frozenset(took_part), internal and known, frozenset(quoted))


def surname_findings(
    msg: Message, ctx: Context, recipients: list[tuple[Address, str]], found: set[str]
) -> list[Finding]:
    """The same-surname autocomplete incident: a thread went to ONE outsider who shares
    only a colleague's surname. A surname alone is too common to hold on; it fires only in
    this context:

    * the mail carries quoted messages, the recipient is not in them (not part of the
      conversation) and is not someone the sender already writes to (history);
    * the colleague is not the sender (nor is the surname the sender's own: their own
      outside mailbox is another fact), and
    * either the quoted messages are among colleagues only (an internal thread) and the
      colleague took part in them or works in the sender's department (directory
      ``department``); or the sender has never written to the recipient (history known)
      and the colleague took part in the quoted thread.
    """
    outside = [(a, d) for a, d in recipients if a.key not in ctx.sender_aliases]
    if len(outside) != 1 or not msg.quoted_blocks or not ctx.org.directory:
        return []
    addr, display = outside[0]
    history = ctx.history
    if addr.key in found or (history.known and addr.key in history.recipients):
        return []
    people = thread_people(msg, ctx)
    if addr.key in people.quoted or not (people.internal or (history.known and people.took_part)):
        return []
    keys = recipient_surname_keys(display[:200], addr.local[:200])
    if not keys:
        return []
    org = ctx.org
    sender_addrs = {a.key for a in msg.from_ if a.domain}
    if msg.sender is not None:
        sender_addrs.add(msg.sender.key)
    if ctx.auth_user:
        sender_addrs.add(ctx.auth_user.strip().lower())
    departments: set[str] = set()
    for a in sender_addrs:
        me = org.person(a)
        if me is not None:
            if not keys.isdisjoint(person_surname_keys(me.name[:200], me.kana[:200])):
                return []  # the sender's own surname: their own mailbox, not a colleague
            if me.department:
                departments.add(me.department)
    index = org.cached(SURNAMES_KEY, build_surname_index)
    best: tuple[int, Person, str, str] | None = None
    for k in sorted(keys):
        for p in index.get(k, ()):
            if p.key in sender_addrs:
                continue
            if p.key in people.took_part:
                why, rank = "took part in the quoted thread", 2
            elif people.internal and p.department and p.department in departments:
                why, rank = "works in the sender's department", 1
            else:
                continue
            if best is None or rank > best[0]:
                best = (rank, p, k.partition(":")[0], why)
    if best is None:
        return []
    _rank, person, form, why = best
    context = "internal thread" if people.internal else "recipient never written to"
    shown = f"{addr.local}@{addr.unicode_domain or addr.domain}"
    return [
        Finding(
            detector=DETECTOR,
            fact=FACT,
            addresses=(addr.addr,),
            detail=(
                f"{shown} shares only the surname of a colleague, {person.name} "
                f"<{person.email}>, who {why} ({context}, {form} form)"
            ),
            evidence={
                "similar_to": person.email,
                "similar_name": person.name,
                "matched_on": "surname",
                "form": "kanji" if form == "cjk" else form,
                "score": str(SURNAME_SCORE),
                "source": "directory",
                "context": context,
            },
        )
    ]
