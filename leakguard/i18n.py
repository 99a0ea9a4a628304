"""Language selection for text shown to people (Japanese and English)."""

from __future__ import annotations

import os


def normalize_lang(value: str | None, default: str = "en") -> str:
    """Map ``ja_JP.UTF-8``, ``ja``, ``en_US`` ... to ``"ja"`` or ``"en"``."""
    if not value:
        return default
    v = value.strip().lower()
    if v.startswith("ja"):
        return "ja"
    if v.startswith("en") or v in ("c", "posix", "c.utf-8"):
        return "en"
    return default


def lang_from_env(default: str = "en") -> str:
    """The user's language from ``LEAKGUARD_LANG``, ``LC_ALL``, ``LC_MESSAGES`` or ``LANG``."""
    for var in ("LEAKGUARD_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        val = os.environ.get(var)
        if val:
            return normalize_lang(val, default)
    return default
