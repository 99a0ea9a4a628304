"""Address parsing and normalisation.

``make_address`` is the single place an ``Address`` is built, so every address in the
system has the same canonical form (IDNA A-label domain, decoded display name).
"""

from __future__ import annotations

import unicodedata

from leakguard.organization import to_ascii_domain, to_unicode_domain
from leakguard.types import Address


def make_address(addr: str, display_name: str = "") -> Address:
    """Build an Address from ``local@domain`` text (angle brackets and whitespace stripped)."""
    a = addr.strip().strip("<>").strip()
    if a.lower().startswith("mailto:"):
        a = a[7:]
    local, at, domain = a.rpartition("@")
    if not at:
        local, domain = a, ""
    domain = unicodedata.normalize("NFKC", domain) if not domain.isascii() else domain
    ascii_domain = to_ascii_domain(domain)
    name = " ".join(display_name.split())
    if name.strip("'\"") == a:  # "a@b" <a@b> carries no name
        name = ""
    return Address(
        local=local,
        domain=ascii_domain,
        display_name=name,
        unicode_domain=to_unicode_domain(ascii_domain),
    )
