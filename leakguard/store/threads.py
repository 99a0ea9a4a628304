"""The relay's own record of threads: who has already seen whom (issue 8).

For every mail the relay sends on (pass, Bcc rewrite) or holds (counted only once the hold
is released), it keeps the mail's Message-ID and the addresses that saw each other in it
(From + To + Cc, lower-cased). A later mail whose In-Reply-To/References name such a
Message-ID is among people who have already met: a reply-all with attribution-only quoting
("On Mon, X wrote:") exposes nobody new even though its body shows no header block.

Message-IDs are stored as SHA-256 hashes of their normalised form (no angle brackets or
surrounding white space; case kept, RFC 5322 ids are case-sensitive): the store needs
equality only, and a hash has a fixed size whatever a hostile header holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Addresses kept per mail: enough for any real reply-all; a mass mailing keeps its first
# ones (a subset of people who met is still a set of people who met).
MAX_ADDRESSES = 200
# Message-IDs looked up per mail (In-Reply-To and the last References).
MAX_LOOKUP_IDS = 20
# Groups returned per lookup.
MAX_GROUPS = 50
# Default retention of the record.
RETENTION_DAYS = 180


def message_id_key(message_id: str) -> str:
    """The stored key of a Message-ID: SHA-256 of it without ``<>`` and white space."""
    mid = message_id.strip().strip("<>").strip()
    return hashlib.sha256(mid.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class ThreadEntry:
    """One mail the relay sent on (or held): its Message-ID and who saw whom in it."""

    message_id: str
    addresses: tuple[str, ...]  # From + To + Cc as sent, lower-cased
    # what stays visible after a Bcc rewrite (From + internal To/Cc); for a held mail that
    # may be released as Bcc; for a mail already sent as Bcc it equals ``addresses``
    bcc_addresses: tuple[str, ...] = ()
    hold_id: str | None = None  # a held mail counts only once released


def bounded(addresses: tuple[str, ...] | list[str]) -> list[str]:
    """Lower-cased, de-duplicated, each at most 320 characters, at most ``MAX_ADDRESSES``."""
    out: list[str] = []
    seen: set[str] = set()
    for a in addresses:
        k = a.strip().lower()[:320]
        if k and "@" in k and k not in seen:
            seen.add(k)
            out.append(k)
            if len(out) >= MAX_ADDRESSES:
                break
    return out
