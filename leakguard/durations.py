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


def format_duration(seconds: float, lang: str = "en") -> str:
    """Short human form with at most two units: ``2 h 5 min`` / ``2時間5分``.

    Rounded (not truncated) to the smaller unit shown, so a 72-hour hold announced a moment
    after it was made reads ``3 d``, not ``2 d 23 h``.
    """
    seconds = max(0, round(seconds))
    units = ((86400, "d", "日"), (3600, "h", "時間"), (60, "min", "分"), (1, "s", "秒"))
    ja = lang.startswith("ja")
    for i, (size, _en, _jp) in enumerate(units):
        if seconds >= size:
            step = units[i + 1][0] if i + 1 < len(units) else 1
            seconds = (seconds + step // 2) // step * step
            break
    parts: list[str] = []
    started = False
    for size, en, jp in units:
        n, seconds = divmod(seconds, size)
        if n:
            started = True
            parts.append(f"{n}{jp}" if ja else f"{n} {en}")
        elif started:
            parts.append("")
        if len(parts) == 2:
            break
    parts = [p for p in parts if p]
    if not parts:
        return "0秒" if ja else "0 s"
    return "".join(parts) if ja else " ".join(parts)
