"""Masking: the one way every output shows a personal-data item.

A full identifier (My Number, account, card number, ...) exists only inside the decision and
in the stored message. Findings' ``detail`` and ``evidence``, notices, pages, logs, metrics
and ``leakguard check`` only ever see what ``mask`` returns, and text shown to people (the
first lines of a held mail, the review page) goes through ``redact_text`` first.

Also here: how a value that someone already blacked out is recognised (``is_masked_value``):
runs of ■ ● ＊ × X #, and the words マスキング済 / 非開示 / 黒塗り / redacted ...
"""

from __future__ import annotations

import re
import unicodedata

# --------------------------------------------------------------------------- recognising masks

# Two or more blackout characters in a row (■■, ＊＊, ●●, ××), three X/x or ? in a row
# (XXXX, xxx-xxxx), or a word that says the value was withheld.
_MASK_RUN = r"[■□▪▫●○◯◆◇▲△★☆＊*×✕✖＃#█▓▒░]{2,}|[Xx]{3,}|[?？]{3,}|[-‐－ー―_＿]{3,}"
_MASK_WORDS = (
    r"マスキング|マスク済|黒塗り|非開示|不開示|非公開|伏せ字|伏字|墨消し|省略|削除済|記載省略|"
    r"非表示|秘匿|\bredacted\b|\bmasked\b|\bwithheld\b|\bremoved\b|\bconfidential\b|\bn/a\b"
)
MASK_RE = re.compile(rf"(?:{_MASK_RUN}|{_MASK_WORDS})", re.IGNORECASE)

_DIGIT_RE = re.compile(r"\d")


def is_masked_value(value: str) -> bool:
    """Whether a field's value was blacked out or replaced: ``■■■``, ``＊＊＊``,
    ``***-****-1234``, ``山田 ●●``, ``XXXX``, ``（マスキング済）``, ``非開示``.

    A value counts as masked when it holds a mask run or a withholding word anywhere: a
    partly masked name (``山田 ●●``) or number (``***-****-1234``) no longer identifies the
    person on its own.
    """
    return MASK_RE.search(unicodedata.normalize("NFKC", value)) is not None


# --------------------------------------------------------------------------- masking values


def _keep_last_digits(value: str, keep: int, *, keep_first: int = 0) -> str:
    """Replace every digit with ``*`` except the first ``keep_first`` and the last ``keep``
    ones; separators stay where they were (``090-1234-5678`` -> ``090-****-5678``)."""
    positions = [m.start() for m in _DIGIT_RE.finditer(value)]
    n = len(positions)
    # never show more than half of the digits, whatever was asked
    budget = n // 2
    keep = min(keep, budget)
    keep_first = min(keep_first, max(0, budget - keep))
    shown = set(positions[:keep_first]) | set(positions[n - keep :] if keep else ())
    chars = list(value)
    for p in positions:
        if p not in shown:
            chars[p] = "*"
    return "".join(chars)


def _mask_phone(value: str) -> str:
    """``090-1234-5678`` -> ``090-****-5678``: the area or mobile prefix (the first group,
    or three digits) and the last four digits; the subscriber's middle is starred."""
    positions = [m.start() for m in _DIGIT_RE.finditer(value)]
    first_group = re.match(r"\+?\d+", value)
    head = len(_DIGIT_RE.findall(first_group.group(0))) if first_group else 3
    if head > 5 or head >= len(positions) - 4:
        head = min(3, max(0, len(positions) - 8))
    shown = set(positions[:head]) | set(positions[-4:])
    return "".join("*" if i in set(positions) - shown else c for i, c in enumerate(value))


def _mask_name(value: str) -> str:
    """``山田 太郎`` -> ``山田 **``; ``山田太郎`` -> ``山*``; ``John Smith`` -> ``J*** S****``."""
    words = value.split()
    if len(words) >= 2 and not value.isascii():
        return words[0] + " " + " ".join("*" * min(len(w), 4) for w in words[1:])
    if value.isascii():
        return " ".join(w[:1] + "*" * min(len(w) - 1, 6) for w in words)
    return value[:1] + "*" * min(len(value) - 1, 6)


_PREF_CITY_RE = re.compile(
    r"^(.{2,3}?[都道府県])?(.{1,6}?[市区郡町村])?",
)
_POSTAL_RE = re.compile(r"(\d{3})[-‐－ー―]?(\d{4})")


def _mask_address(value: str) -> str:
    """``〒123-4567 東京都千代田区丸の内1-2-3`` -> ``〒123-**** 東京都千代田区…``: the postal
    code's first three digits and the prefecture and city only."""
    v = " ".join(value.split())
    postal = _POSTAL_RE.search(v)
    head = ""
    rest = v
    if postal is not None:
        head = f"〒{postal.group(1)}-**** "
        rest = v[postal.end() :].strip(" 　")
    m = _PREF_CITY_RE.match(rest)
    kept = (m.group(0) if m else "") or ""
    if not kept:
        # Latin address: keep nothing but the last word (the country or state)
        words = rest.replace(",", " ").split()
        kept = words[-1] if rest.isascii() and len(words) > 2 else ""
    return (head + kept + "…").strip()


def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _mask_date(value: str) -> str:
    """Birth dates keep the era or century only: ``昭和60年4月1日`` -> ``昭和**年*月*日``."""
    return _DIGIT_RE.sub("*", value)


def mask(kind: str, value: str) -> str:
    """The masked form of one item of ``kind``, safe to show anywhere.

    Digits of identifiers are starred except the last four (card numbers also keep their
    first four, the issuer's range, as on receipts); at most a third of the digits of any
    number are shown. Names keep the family name, addresses the prefecture and city, dates
    nothing but their era.
    """
    v = unicodedata.normalize("NFKC", value).strip()
    if kind == "credit_card":
        return _keep_last_digits(v, 4, keep_first=4)
    if kind in ("my_number", "corporate_number", "bank_account", "driving_licence"):
        return _keep_last_digits(v, 4)
    if kind in ("employment_insurance_number", "pension_number"):
        return _keep_last_digits(v, 3)
    if kind == "phone":
        return _mask_phone(v)
    if kind == "passport":
        return v[:2] + "*****" + v[-2:] if len(v) >= 9 else "*" * len(v)
    if kind == "address":
        return _mask_address(v)
    if kind == "birth_date":
        return _mask_date(v)
    if kind == "email":
        return _mask_email(v)
    if kind == "name":
        return _mask_name(v)
    # anything else (a form field we cannot type): its first character only
    return (v[:1] + "*" * min(max(len(v) - 1, 2), 8)) if v else ""


# --------------------------------------------------------------------------- text shown to people

# What people put between the digits of one number: a space (either width) or a dash of any
# kind, with spaces around it (``1234 - 5678``).
_SEP = r"(?:[ 　]{0,2}[\-‐‑‒–—―−－ー][ 　]{0,2}|[ 　]{1,2})"
_D09 = "0-9０-９"
# Runs of digits long enough to be an identifier (10 digits or more, with the separators
# people write): shown to people only with their last four digits.
_LONG_NUMBER_RE = re.compile(rf"(?<![{_D09}])[{_D09}](?:{_SEP}?[{_D09}]){{9,22}}(?![{_D09}])")
# Every run of 6 digits or more (a bank account has 7): checked against what the detector found.
_NUMBER_RE = re.compile(rf"(?<![{_D09}])[{_D09}](?:{_SEP}?[{_D09}]){{5,22}}(?![{_D09}])")
_PASSPORT_RE = re.compile(
    rf"(?<![A-Za-zＡ-Ｚａ-ｚ{_D09}])[A-Za-zＡ-Ｚａ-ｚ]{{2}}[ 　]?[{_D09}]{{7}}(?![{_D09}])"
)
_NON_DIGIT_RE = re.compile(r"[^0-9]")


def redact_text(text: str) -> str:
    """``text`` with every long number (10+ digits; split by spaces or dashes, in either
    width) masked to its last four digits: for text shown to people (first lines, the review
    page) where an identifier may sit. Phone numbers lose their middle too; dates, amounts
    and short codes stay."""
    if not any(c.isdigit() for c in text):
        return text
    return _LONG_NUMBER_RE.sub(lambda m: _keep_last_digits(m.group(0), 4), text)


def mask_identifiers(text: str) -> str:
    """``text`` with every identifier the personal-data detector finds in it masked (My
    Number, card, bank account (7 digits), pension and insurance numbers, passport, phone,
    licence), plus every long number as ``redact_text`` does. The detector's own scan
    decides (``leakguard.detectors.personal.identifier_keys``), so the page shows masked
    exactly what the decision counted. Numbers keep their last four digits (never more than
    half), passports their first and last two characters. One detector pass and two regex
    passes: cheap enough for a page view."""
    if not any(c.isdigit() for c in text):
        return text
    # imported here: the detector imports this module for ``mask``
    from leakguard.detectors.personal import identifier_keys

    found = identifier_keys(text)

    def number(m: re.Match[str]) -> str:
        raw = m.group(0)
        digits = _NON_DIGIT_RE.sub("", unicodedata.normalize("NFKC", raw))
        kind = found.get(digits) or found.get("0" + digits[2:] if digits[:2] == "81" else "")
        if kind == "phone":
            return _mask_phone(raw)
        if kind is not None or len(digits) >= 10:
            return _keep_last_digits(raw, 4)
        return raw

    out = _NUMBER_RE.sub(number, text)
    if any(k == "passport" for k in found.values()):

        def passport(m: re.Match[str]) -> str:
            value = unicodedata.normalize("NFKC", m.group(0)).replace(" ", "").upper()
            return mask("passport", value) if found.get(value) == "passport" else m.group(0)

        out = _PASSPORT_RE.sub(passport, out)
    return out
