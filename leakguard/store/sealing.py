"""Sealing retained mail (issue 9): AES-256-GCM with the decision id as associated data.

A sealed blob is ``b"LG1" + nonce(12) + ciphertext+tag``. The associated data binds a blob
to its decision, so a blob copied onto another row does not open. The key is 32 bytes
(``retention.key``, env ``LEAKGUARD_RETENTION_KEY`` as base64, or a file kept in the data
directory); losing it makes retained mail unreadable, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_MAGIC = b"LG1"


class SealError(ValueError):
    """A sealed blob that does not open with this key (wrong key, damaged, moved)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def decode_key(text: str) -> bytes:
    """A key written as base64 (url-safe or standard) or 64 hex digits."""
    s = text.strip()
    raw: bytes | None = None
    if len(s) == 64:
        try:
            raw = bytes.fromhex(s)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise ValueError("a retention key is 32 bytes, written as base64 or 64 hex digits")
    return raw


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii")


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a retention key is 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, raw: bytes, *, aad: str) -> bytearray:
        """The sealed blob, encrypted straight into its final buffer: for a 25 MB mail,
        ``magic + nonce + encrypt(...)`` held the ciphertext and the joined copy at once
        (one more copy of the mail at the relay's peak). Drivers take a bytearray as a blob."""
        nonce = os.urandom(12)
        head = len(_MAGIC) + len(nonce)
        blob = bytearray(head + len(raw) + 16)
        blob[: len(_MAGIC)] = _MAGIC
        blob[len(_MAGIC) : head] = nonce
        self._aead.encrypt_into(nonce, raw, aad.encode("utf-8"), memoryview(blob)[head:])
        return blob

    def open(self, blob: bytes | bytearray, *, aad: str) -> bytes:
        if len(blob) < len(_MAGIC) + 12 + 16 or not blob.startswith(_MAGIC):
            raise SealError("not a sealed message")
        nonce = blob[len(_MAGIC) : len(_MAGIC) + 12]
        try:
            body = memoryview(blob)[len(_MAGIC) + 12 :]  # no copy of a 25 MB ciphertext
            return self._aead.decrypt(nonce, body, aad.encode("utf-8"))
        except InvalidTag:
            raise SealError("the retained message does not open with this key") from None

    def __repr__(self) -> str:  # never the key
        return "Sealer(<key>)"
