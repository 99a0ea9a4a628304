"""Hold tokens: random, stored only as SHA-256 hashes, carried in signed expiring links.

A token is 20 bytes of the kernel's random generator (``randomness.random_bytes``) in
lower-case letters and digits (base32, 160 bits) so that it survives mail systems that
change the case of an address's local part when it travels in the notice's Reply-To
(``leakguard-hold+<token>@host``). The store keeps only ``sha256(token)``; the review
link carries the token signed with ``itsdangerous`` (a timestamped signature), so forged or
stale links are refused before the store is asked, and the store's single-use flag does the
rest.
"""

from __future__ import annotations

import base64
import hashlib
import re

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from leakguard.randomness import random_bytes

TOKEN_RE = re.compile(r"^[a-z2-7]{32}$")
_LINK_SALT = "leakguard.hold-link.v1"


def new_token() -> str:
    return base64.b32encode(random_bytes(20)).decode("ascii").lower()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.strip().lower().encode("ascii", "replace")).hexdigest()


def looks_like_token(text: str) -> bool:
    return bool(TOKEN_RE.match(text.strip().lower()))


def new_hold_id() -> str:
    """``H-`` and 10 base32 characters: short enough to quote, too many to guess."""
    return "H-" + base64.b32encode(random_bytes(10)).decode("ascii")[:10]


class LinkSigner:
    """Signs tokens into URL path segments and checks them (signature and age)."""

    def __init__(self, secret: str | bytes, *, max_age_seconds: int) -> None:
        self._s = URLSafeTimedSerializer(secret, salt=_LINK_SALT)
        self.max_age = max_age_seconds

    def sign(self, token: str) -> str:
        return str(self._s.dumps(token))

    def unsign_any_age(self, signed: str) -> str | None:
        """The token inside a genuine link however old it is (to explain a used link)."""
        if len(signed) > 512:
            return None
        try:
            value = self._s.loads(signed)
        except BadSignature:
            return None
        if not isinstance(value, str) or not looks_like_token(value):
            return None
        return value

    def unsign(self, signed: str) -> str | None:
        """The token inside a link, or None when the link is forged, damaged or too old."""
        if len(signed) > 512:
            return None
        try:
            value = self._s.loads(signed, max_age=self.max_age)
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(value, str) or not looks_like_token(value):
            return None
        return value
