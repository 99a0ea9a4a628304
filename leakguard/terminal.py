"""Text for a terminal: the one way CLI output shows mail-derived text.

Subjects, names, addresses, rule reasons and file names come from hostile mail (or from
whoever named the file). Printed as they are, ``ESC ] 0 ; title BEL`` retitles the
administrator's window, ``ESC [ 2 J`` clears the screen, a C1 ``CSI`` (U+009B) does the same
on terminals that read C1 controls, and the bidi overrides (U+202A..U+202E, U+2066..U+2069)
make ``exe.pdf`` look like ``fdp.exe``. ``for_terminal`` writes every such character as a
visible escape (``\\x1b``, ``\\u202e``); lone surrogates (broken base64) too, so that
printing can never raise ``UnicodeEncodeError``. ``json_for_terminal`` does the same inside
JSON strings (the decoded values are unchanged; only the bytes on the terminal are safe).
The log uses both: the JSON lines and the console renderer (``leakguard.logging``).
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 (tab and newline included: one field never breaks a line or a TSV column), DEL, C1,
# the Arabic letter mark, LRM/RLM, line/paragraph separators, the bidi embeddings,
# overrides and isolates, and lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# In JSON text, json.dumps already escapes C0; the rest is left raw with ensure_ascii=False.
_UNSAFE_JSON = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def _escape_json(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def for_terminal(text: object) -> str:
    """``text`` with every control, bidi-override and lone-surrogate character escaped."""
    return _UNSAFE.sub(_escape, str(text))


def json_for_terminal(value: object, **dumps_kw: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)`` with C1, bidi and surrogates as ``\\uXXXX``:
    the same JSON value, safe to print (also structlog's JSON serializer)."""
    dumps_kw.setdefault("ensure_ascii", False)
    return _UNSAFE_JSON.sub(_escape_json, json.dumps(value, **dumps_kw))


def escape_log_values(_logger: object, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor for the console renderer, which prints str values as they are
    (other values are shown by ``repr``, which escapes controls itself)."""
    return {k: for_terminal(v) if isinstance(v, str) else v for k, v in event_dict.items()}
