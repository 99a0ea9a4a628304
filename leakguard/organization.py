"""The organisation a detector judges against, and the per-message detection context.

Pure data with cached lookups: internal domains (with ``*.`` wildcards), the people
directory, partner domains and mailing lists. Loading from files lives in
``leakguard.policy.loader``; this module does no I/O except ``load_directory_csv``.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import io
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from publicsuffixlist import PublicSuffixList

from leakguard.types import Address

_PSL = PublicSuffixList()
T = TypeVar("T")


def to_ascii_domain(domain: str) -> str:
    """Lower-case IDNA A-label form of a domain; leaves undecodable input lower-cased."""
    d = domain.strip().strip(".").lower()
    if not d or d.isascii():
        return d
    try:
        return d.encode("idna").decode("ascii")
    except UnicodeError:
        return d


def to_unicode_domain(domain: str) -> str:
    if "xn--" not in domain:
        return domain
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return domain


@functools.lru_cache(maxsize=65536)
def registrable_domain(domain: str) -> str:
    """The organisation a domain belongs to: its registrable domain (eTLD+1).

    ``a.example.co.jp`` and ``b.example.co.jp`` give ``example.co.jp``. A bare public suffix
    or an unknown single label is returned unchanged.
    """
    d = to_ascii_domain(domain)
    if not d:
        return d
    try:
        reg = _PSL.privatesuffix(d)
    except Exception:  # pragma: no cover - defensive; the library raises on odd input
        reg = None
    return reg or d


def _domain_pattern(d: str) -> str:
    return ("*." + to_ascii_domain(d[2:])) if d.startswith("*.") else to_ascii_domain(d)


def domain_matches(domain: str, pattern: str) -> bool:
    """``pattern`` is ``example.jp`` (exact) or ``*.example.jp`` (any subdomain, not itself)."""
    if pattern.startswith("*."):
        return fnmatch.fnmatchcase(domain, pattern)
    return domain == pattern


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str = ""
    kana: str = ""
    department: str = ""
    supervisor: str = ""
    language: str = ""  # optional per-user language override ("ja" / "en")

    @property
    def key(self) -> str:
        return self.email.lower()


def load_directory_csv(path: Path) -> tuple[Person, ...]:
    """Read ``email,name,kana,department,supervisor[,language]`` (header row required).

    Raises ``ValueError`` naming the file and line for malformed rows.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp932")
    return parse_directory_csv(text, str(path))


def parse_directory_csv(text: str, source: str = "<directory>") -> tuple[Person, ...]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ValueError(f"{source}:1: the header row must name at least the column 'email'")
    people: list[Person] = []
    for row in reader:
        norm = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        email = norm.get("email", "")
        if not email:
            continue
        if "@" not in email:
            raise ValueError(f"{source}:{reader.line_num}: not an email address: {email!r}")
        people.append(
            Person(
                email=email,
                name=norm.get("name", ""),
                kana=norm.get("kana", ""),
                department=norm.get("department", ""),
                supervisor=norm.get("supervisor", ""),
                language=norm.get("language", ""),
            )
        )
    return tuple(people)


@dataclass(frozen=True, slots=True)
class Partner:
    """A partner organisation from the organisation file (``partners:``)."""

    domain: str  # as configured: example.jp or *.example.jp
    names: tuple[str, ...] = ()  # 株式会社みらい建設, みらい建設, ...
    distribution: bool = False  # one organisation's internal distribution (not moved to Bcc)


_FREEMAIL_FILE = Path(__file__).resolve().parent / "data" / "freemail_domains.txt"


def parse_domain_list(text: str) -> tuple[str, ...]:
    """Domains one a line (``example.jp`` or ``*.example.jp``); ``#`` starts a comment."""
    out: list[str] = []
    for line in text.splitlines():
        d = line.split("#", 1)[0].strip()
        if d:
            out.append(_domain_pattern(d))
    return tuple(dict.fromkeys(out))


@functools.lru_cache(maxsize=1)
def default_freemail_domains() -> tuple[str, ...]:
    """The shipped list of consumer free-mail, mobile-carrier and consumer-ISP domains
    (``leakguard/data/freemail_domains.txt``): every address there is a private person."""
    return parse_domain_list(_FREEMAIL_FILE.read_text(encoding="utf-8"))


class Organization:
    """The organisation's view of the world. Immutable after construction; lookups cached."""

    def __init__(
        self,
        internal_domains: Iterable[str] = (),
        directory: Iterable[Person] = (),
        partner_domains: Iterable[str] = (),
        mailing_lists: Iterable[str] = (),
        partners: Iterable[Partner] = (),
        groups: Mapping[str, Iterable[str]] | None = None,
        freemail_domains: Iterable[str] | None = None,
    ) -> None:
        self.internal_domains: tuple[str, ...] = tuple(
            ("*." + to_ascii_domain(d[2:])) if d.startswith("*.") else to_ascii_domain(d)
            for d in internal_domains
        )
        self.directory: tuple[Person, ...] = tuple(directory)
        self.partners: tuple[Partner, ...] = tuple(
            Partner(_domain_pattern(p.domain), p.names, p.distribution) for p in partners
        )
        self.partner_domains: tuple[str, ...] = tuple(
            dict.fromkeys(
                (
                    *(_domain_pattern(d) for d in partner_domains),
                    *(p.domain for p in self.partners),
                )
            )
        )
        self.mailing_lists: frozenset[str] = frozenset(m.strip().lower() for m in mailing_lists)
        self.groups: dict[str, frozenset[str]] = {
            name: frozenset(m.strip().lower() for m in members)
            for name, members in (groups or {}).items()
        }
        # None: the shipped list (``default_freemail_domains``); the loader passes the
        # organisation file's ``freemail_domains`` (with or without the shipped list).
        self.freemail_domains: tuple[str, ...] = (
            default_freemail_domains()
            if freemail_domains is None
            else tuple(dict.fromkeys(_domain_pattern(d) for d in freemail_domains))
        )
        self._freemail_exact: frozenset[str] = frozenset(
            d for d in self.freemail_domains if not d.startswith("*.")
        )
        self._freemail_wild: tuple[str, ...] = tuple(
            d for d in self.freemail_domains if d.startswith("*.")
        )
        self._freemail_cache: dict[str, bool] = {}
        self.has_distribution_partners = any(p.distribution for p in self.partners)
        self._distribution_cache: dict[str, Partner | None] = {}
        self._people: dict[str, Person] = {p.key: p for p in self.directory}
        self._internal_cache: dict[str, bool] = {}
        self._partner_cache: dict[str, bool] = {}
        # Detectors keep their prepared indexes (name tables, domain skeletons) here, built
        # once per organisation rather than once per message; see ``cached``.
        self.cache: dict[str, Any] = {}
        self.cache_lock = threading.RLock()

    def cached(self, key: str, build: Callable[[Organization], T]) -> T:
        """The value cached under ``key``, built by ``build(self)`` once (thread-safe: the
        relay decides in worker threads)."""
        value = self.cache.get(key)
        if value is None:
            with self.cache_lock:
                value = self.cache.get(key)
                if value is None:
                    value = build(self)
                    self.cache[key] = value
        return cast(T, value)

    # -- domains
    def is_internal_domain(self, domain: str) -> bool:
        hit = self._internal_cache.get(domain)
        if hit is None:
            hit = any(domain_matches(domain, p) for p in self.internal_domains)
            self._internal_cache[domain] = hit
        return hit

    def is_internal(self, addr: Address | str) -> bool:
        domain = addr.domain if isinstance(addr, Address) else addr.rpartition("@")[2].lower()
        return bool(domain) and self.is_internal_domain(domain)

    def is_partner_domain(self, domain: str) -> bool:
        hit = self._partner_cache.get(domain)
        if hit is None:
            reg = registrable_domain(domain)
            hit = any(
                domain_matches(domain, p) or (not p.startswith("*.") and reg == p)
                for p in self.partner_domains
            )
            self._partner_cache[domain] = hit
        return hit

    def partner_of(self, domain: str) -> Partner | None:
        """The configured partner (``partners:``) a domain belongs to, if any."""
        reg = registrable_domain(domain)
        for p in self.partners:
            if domain_matches(domain, p.domain) or (
                not p.domain.startswith("*.") and reg == p.domain
            ):
                return p
        return None

    def is_mailing_list(self, addr: Address | str) -> bool:
        key = addr.key if isinstance(addr, Address) else addr.lower()
        return key in self.mailing_lists

    def organization_of(self, domain: str) -> str:
        return registrable_domain(domain)

    def is_freemail_domain(self, domain: str) -> bool:
        """A consumer free-mail, mobile-carrier or consumer-ISP domain (``gmail.com``,
        ``docomo.ne.jp``, ``*.ocn.ne.jp``): its addresses are private persons."""
        hit = self._freemail_cache.get(domain)
        if hit is None:
            d = to_ascii_domain(domain)
            hit = d in self._freemail_exact or any(
                domain_matches(d, p) for p in self._freemail_wild
            )
            if len(self._freemail_cache) < 65536:
                self._freemail_cache[domain] = hit
        return hit

    def distribution_partner_of(self, domain: str) -> Partner | None:
        """The partner marked ``distribution: true`` a domain belongs to, if any."""
        if not self.has_distribution_partners:
            return None
        if domain in self._distribution_cache:
            return self._distribution_cache[domain]
        p = self.partner_of(domain)
        hit = p if p is not None and p.distribution else None
        if len(self._distribution_cache) < 65536:
            self._distribution_cache[domain] = hit
        return hit

    def organization_of_address(self, addr: Address) -> str:
        """The organisation an address stands for, as a comparable key.

        * a free-mail or carrier address is a person of its own: the address itself;
        * an address at a distribution partner (``partners: [{distribution: true}]``) is
          that partner: its configured domain (without ``*.``), whatever the subdomain;
        * otherwise the registrable domain (``a.example.co.jp`` -> ``example.co.jp``).
        """
        if self.is_freemail_domain(addr.domain):
            return addr.key
        dist = self.distribution_partner_of(addr.domain)
        if dist is not None:
            return dist.domain.removeprefix("*.")
        return registrable_domain(addr.domain)

    @property
    def known_domains(self) -> tuple[str, ...]:
        """Internal and partner domains without wildcards (lookalike targets)."""
        out: list[str] = []
        for d in (*self.internal_domains, *self.partner_domains):
            d = d[2:] if d.startswith("*.") else d
            if d not in out:
                out.append(d)
        return tuple(out)

    # -- people
    def person(self, email: str) -> Person | None:
        return self._people.get(email.lower())

    def supervisor_of(self, email: str) -> str | None:
        p = self.person(email)
        return p.supervisor or None if p else None

    def in_group(self, email: str, group: str) -> bool:
        return email.lower() in self.groups.get(group, frozenset())


@dataclass(frozen=True, slots=True)
class SenderHistory:
    """What the relay has seen this sender send before (from its own history)."""

    recipients: frozenset[str] = frozenset()  # lower-cased addresses written to before
    # address -> display names used for it (the sender's usual contacts)
    contact_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    known: bool = False  # False when the relay has no history at all (first-time fact off)
    # The relay's own record of the thread this mail belongs to: for each earlier mail whose
    # Message-ID is in this mail's In-Reply-To/References, the lower-cased addresses that were
    # sent together in it (From, To, Cc). People in one group have already met.
    sent_together: tuple[frozenset[str], ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    org: Organization
    history: SenderHistory = SenderHistory()
    auth_user: str | None = None
    # External recipient addresses that are probably the sender's own outside mailboxes
    # (lower-cased); resolved once per message before the detectors run.
    sender_aliases: frozenset[str] = frozenset()
