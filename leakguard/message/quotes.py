"""Quoted and forwarded material: find the quoted messages inside a mail's text.

Placeholder signature; the full implementation replaces the body.
"""

from __future__ import annotations

from collections.abc import Sequence

from leakguard.types import Message, QuotedBlock, TextPart


def extract_quotes(
    text_parts: Sequence[TextPart], attached: Sequence[Message]
) -> tuple[QuotedBlock, ...]:
    return ()
