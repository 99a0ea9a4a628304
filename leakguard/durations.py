"""Human durations in configuration files: ``90s``, ``5m``, ``72h``, ``3d``, ``1h30m``."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int) -> int:
    """Seconds in ``value``; a bare integer is seconds. Raises ValueError with the reason."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    text = value.strip().lower().replace(" ", "")
    if text.isdigit():
        return int(text)
    pos = 0
    total = 0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {value!r} (expected e.g. 30s, 5m, 72h, 3d)")
    return total


def format_duration(seconds: int, lang: str = "en") -> str:
    """Short human form: ``2 h 5 min`` / ``2時間5分``."""
    seconds = max(0, int(seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    ja = lang.startswith("ja")
    parts: list[str] = []
    for n, en, jp in ((d, "d", "日"), (h, "h", "時間"), (m, "min", "分"), (s, "s", "秒")):
        if n and len(parts) < 2:
            parts.append(f"{n}{jp}" if ja else f"{n} {en}")
    if not parts:
        return "0秒" if ja else "0 s"
    return "".join(parts) if ja else " ".join(parts)
