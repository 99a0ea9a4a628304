"""Filled-in labelled fields of a form: 氏名 / 住所 / 生年月日 / 電話 / メールアドレス / フリガナ,
and Name / Address / Date of birth / Phone / Email.

A *field* is one line ``label: value`` (``氏名：山田 太郎``, ``【住所】東京都…``, ``Name: John
Smith``, ``氏名　山田太郎`` with a wide space, ``| 氏名 | 山田 |``, ``氏名<TAB>山田`` from a
spreadsheet). A *form* is a block of such lines (at most three lines apart) that names a
person (a name field) and holds at least two other kinds of personal fields, one of them an
address, a birth date, a gender, an age or an identifier: a name with a phone number and an
e-mail address is a contact line, not a form about a person.

A header row of labels followed by data rows (CSV, a sheet, a ``|`` table) is read the same
way: every data row is a form.

A field whose value is blacked out (``leakguard.masking.is_masked_value``) is masked. A form
is *unmasked* when at least two of its fields of different kinds are not masked and one of
them is the name, the address or the birth date.

The scan is one multiline regex pass over the text; everything after it works on the few
lines that matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leakguard.masking import is_masked_value
from leakguard.textscan import finditer_lines

MAX_FIELDS = 5000  # per text; past this the rest of the text is not read for fields
_GAP = 3  # lines between two fields of one form

# field type -> labels (Japanese first, then English); every label is matched on NFKC text
_LABELS: dict[str, tuple[str, ...]] = {
    "name": (
        "氏名",
        "氏 名",
        "お名前",
        "名前",
        "申請者氏名",
        "申請者名",
        "申込者氏名",
        "請求者氏名",
        "被保険者氏名",
        "受給者氏名",
        "本人氏名",
        "応募者氏名",
        "患者氏名",
        "児童氏名",
        "世帯主氏名",
        "Full Name",
        "Name",
        "Applicant Name",
        "Applicant's Name",
        "Patient Name",
    ),
    "kana": (
        "フリガナ",
        "ふりがな",
        "氏名カナ",
        "カナ氏名",
        "氏名(カナ)",
        "氏名(フリガナ)",
        "Furigana",
    ),
    "address": (
        "住所",
        "ご住所",
        "現住所",
        "住所地",
        "自宅住所",
        "申請者住所",
        "Home Address",
        "Street Address",
        "Address",
    ),
    "birth_date": (
        "生年月日",
        "誕生日",
        "Date of Birth",
        "Birth Date",
        "Birthdate",
        "DOB",
        "D.O.B.",
    ),
    "phone": (
        "電話番号",
        "電話",
        "TEL",
        "携帯電話番号",
        "携帯電話",
        "携帯番号",
        "携帯",
        "自宅電話",
        "連絡先電話番号",
        "連絡先",
        "Phone Number",
        "Phone",
        "Telephone",
        "Mobile",
        "Cell",
    ),
    "email": ("メールアドレス", "メール", "Eメール", "E-mail Address", "E-mail", "Email", "Mail"),
    "gender": ("性別", "Gender", "Sex"),
    "age": ("年齢", "Age"),
    "id": (
        "個人番号",
        "マイナンバー",
        "基礎年金番号",
        "被保険者番号",
        "口座番号",
        "免許証番号",
        "旅券番号",
        "パスポート番号",
        "保険証番号",
        "My Number",
        "Passport No.",
        "Passport Number",
        "Account Number",
    ),
}
_LABEL_TYPE: dict[str, str] = {
    label.casefold(): kind for kind, labels in _LABELS.items() for label in labels
}
# Longest first so that 氏名カナ wins over 氏名 and Home Address over Address.
_ALT = "|".join(re.escape(x) for x in sorted(_LABEL_TYPE, key=len, reverse=True))
_OPEN = r"[【\[(<■□●◆◇・*\-|]"
_CLOSE = r"[】\])>|]"
# An item number before the label (NFKC has made ① "1" and １． "1."): 1. / 1) / (1) / 1 / 1-1.
_NUMBERING = r"(?:\(?[0-9]{1,2}(?:-[0-9]{1,2})?[.)][ \t]*|[0-9]{1,2}[ \t]+)"
# label (optionally numbered, optionally qualified: 氏名(漢字)), then a separator (colon,
# equals, bar, tab, a closing bracket, or spaces) and a value
_FIELD_RE = re.compile(
    rf"^[ \t]*(?:{_OPEN}[ \t]*)?{_NUMBERING}?(?P<label>{_ALT})"
    r"(?P<qual>\([^()\n]{1,10}\))?[ \t]*(?:※?必須)?[ \t]*"
    rf"(?P<sep>{_CLOSE}[ \t]*[:=]?|[:=|\t]|(?=[ \t]))[ \t]*(?P<value>[^\n]*)$",
    re.IGNORECASE | re.MULTILINE,
)
# A header row: three labels or more separated by commas, tabs or bars. The cells are
# split as re.split(r"\s*[,\t|]\s*", line) did, by a scan: that expression tried every
# position of a run of blanks to its end (a line "a,b,c" + 60,000 blanks + "x" took 16 s in
# one split, with the GIL held).
_CELL_SEP_START_RE = re.compile(r"[\s,|]")
_BLANKS_RE = re.compile(r"\s*")


def _split_cells(line: str) -> list[str]:
    r"""``re.split(r"\s*[,\t|]\s*", line)`` in linear time. A separator is the leftmost,
    then greedy, match: a run of blanks followed by a comma or bar (taken with it), else
    the run up to its last tab; then the blanks after it."""
    out: list[str] = []
    start = pos = 0
    n = len(line)
    while (m := _CELL_SEP_START_RE.search(line, pos)) is not None:
        first = m.start()
        run_end = _BLANKS_RE.match(line, first).end()  # type: ignore[union-attr]
        if run_end < n and line[run_end] in ",|":
            sep = run_end
        else:
            sep = line.rfind("\t", first, run_end)
            if sep < 0:  # blanks without a separator: no match starts in them
                pos = run_end
                continue
        end = _BLANKS_RE.match(line, sep + 1).end()  # type: ignore[union-attr]
        out.append(line[start:first])
        start = pos = end
    out.append(line[start:])
    return out


_DIGITS_RE = re.compile(r"\d")
_ADDRESS_JA_RE = re.compile(r"[都道府県市区町村郡]|丁目|番地|\d+-\d+")
_ADDRESS_EN_RE = re.compile(r"\d+\s+\w+|\b(?:street|st\.|road|rd\.|avenue|ave\.|apt)\b", re.I)
_NAME_BAD_RE = re.compile(r"[@/\\=<>{}\[\]]|https?:|\d{2,}|様式|記入|について|ください", re.I)
# A 記入例's sample values (見本 太郎, 山田 太郎(記入例)): not a person's data.
_SAMPLE_RE = re.compile(r"見本|記入例|サンプル|例\)|\(例|^例[:：]|\bsample\b", re.I)
_KANA_QUAL_RE = re.compile(r"カナ|かな|フリガナ|ふりがな|読み|よみ|kana", re.I)
_PLACEHOLDER_RE = re.compile(
    r"^(?:[(（]?(?:必須|任意|required|optional|記入不要|なし|無し|未記入|未定|-)[)）]?|[:：])$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Field:
    line: int  # 1-based line number in the text
    type: str  # name, kana, address, birth_date, phone, email, gender, age, id
    label: str
    value: str
    masked: bool


@dataclass(frozen=True, slots=True)
class Form:
    fields: tuple[Field, ...]
    unmasked: bool

    @property
    def first_line(self) -> int:
        return self.fields[0].line

    @property
    def subject(self) -> str:
        """The unmasked name the form is about ("" when masked or absent)."""
        for f in self.fields:
            if f.type == "name" and not f.masked:
                return f.value
        return ""

    @property
    def subject_kana(self) -> str:
        for f in self.fields:
            if f.type == "kana" and not f.masked:
                return f.value
        return ""


def _plausible(kind: str, value: str) -> bool:
    """Whether ``value`` looks like a filled-in value of a field of ``kind`` (not a heading,
    an instruction or a placeholder). Masked values are plausible: they were filled in."""
    if not value or len(value) > 200 or _PLACEHOLDER_RE.match(value):
        return False
    if kind in ("name", "kana") and _SAMPLE_RE.search(value):
        return False  # 見本 太郎, 山田 太郎(記入例)
    if is_masked_value(value):
        return True
    if kind in ("name", "kana"):
        return len(value) <= 40 and _NAME_BAD_RE.search(value) is None
    if kind == "address":
        return (_ADDRESS_JA_RE.search(value) is not None and not value.isascii()) or (
            value.isascii() and _ADDRESS_EN_RE.search(value) is not None and "@" not in value
        )
    if kind == "phone":
        return len(_DIGITS_RE.findall(value)) >= 9
    if kind == "email":
        return "@" in value
    if kind in ("birth_date", "age", "id"):
        return _DIGITS_RE.search(value) is not None
    if kind == "gender":
        return len(value) <= 10
    return True


# Substrings one of the name labels holds (case as written in practice).
NAME_HINTS = (
    "氏名",
    "氏 名",
    "名前",
    "申請者名",
    "フリガナ",
    "ふりがな",
    "カナ",
    "Name",
    "NAME",
    "name",
    "Furigana",
)
_PERSONAL_CORE = frozenset({"address", "birth_date", "gender", "age", "id"})
_STRONG = frozenset({"name", "kana", "address", "birth_date"})


def _is_form(types: set[str]) -> bool:
    names = types & {"name", "kana"}
    return bool(names) and len(types - {"kana"}) >= 3 and bool(types & _PERSONAL_CORE)


def _unmasked(fields: tuple[Field, ...]) -> bool:
    open_types = {f.type if f.type != "kana" else "name" for f in fields if not f.masked}
    return len(open_types) >= 2 and bool(open_types & _STRONG)


_MOBILE_RE = re.compile(r"^\+?(?:81[- ]?)?0?[789]0[- ]?\d{4}[- ]?\d{4}$")


def _is_roster(types: set[str]) -> bool:
    """A list of people with their contact details (an applicant list, a parents' roster):
    names with phone numbers or mail addresses, one person per row."""
    return "name" in types and bool(types & {"phone", "email"})


def _private_contact(fields: tuple[Field, ...]) -> bool:
    """A row that reads as a private person's record rather than a business contact: a
    mobile number, or the name's reading (フリガナ) together with a mail address."""
    kinds = {f.type for f in fields if not f.masked}
    if any(f.type == "phone" and _MOBILE_RE.match(f.value) for f in fields if not f.masked):
        return True
    return "kana" in kinds and "email" in kinds


def _header_row(line: str) -> list[str] | None:
    cells = [c.strip().strip("\"'") for c in _split_cells(line.strip().strip("|"))]
    if len(cells) < 3:
        return None
    types = [_LABEL_TYPE.get(c.casefold(), "") for c in cells]
    known = {t for t in types if t}
    if sum(1 for t in types if t) < 3 or not (_is_form(known) or _is_roster(known)):
        return None
    return types


def _table_forms(lines: list[str], start: int, types: list[str], skip: set[int]) -> list[Form]:
    """Data rows under a header row (``start`` is the header's 0-based index)."""
    forms: list[Form] = []
    roster: list[Form] = []  # rows that are only a name with private contact details
    for i in range(start + 1, min(len(lines), start + 1 + MAX_FIELDS)):
        row = lines[i].strip()
        if not row:
            break
        cells = [c.strip().strip("\"'") for c in _split_cells(row.strip("|"))]
        if len(cells) != len(types):
            break
        if i + 1 in skip:
            continue
        fields = tuple(
            Field(i + 1, t, "", c, is_masked_value(c))
            for t, c in zip(types, cells, strict=True)
            if t and _plausible(t, c)
        )
        kinds = {f.type for f in fields}
        if _is_form(kinds):
            forms.append(Form(fields, _unmasked(fields)))
        elif _is_roster(kinds) and _private_contact(fields):
            roster.append(Form(fields, _unmasked(fields)))
    # One such row could be a business card; two or more people's private contact details
    # in one table are a roster of personal data.
    return forms + (roster if len(roster) >= 2 else [])


def find_forms(text: str, skip_lines: frozenset[int] | set[int] = frozenset()) -> list[Form]:
    """The forms in ``text`` (NFKC-normalised), fields on ``skip_lines`` (1-based: the
    sender's signature, quoted text the recipients wrote) left out."""
    if not any(h in text for h in NAME_HINTS):
        return []  # every form names its person: no name label, no form (and no scan)
    fields: list[Field] = []
    line_no = 1
    pos = 0
    for m in finditer_lines(_FIELD_RE, text):  # in windows: the GIL is handed over
        line_no += text.count("\n", pos, m.start())
        pos = m.start()
        if line_no in skip_lines:
            continue
        label = m.group("label")
        if not m.group("sep") and label.isascii():
            continue  # "Name of the project ...": English labels need a colon or a bracket
        kind = _LABEL_TYPE.get(label.casefold())
        qual = m.group("qual")
        if kind == "name" and qual and _KANA_QUAL_RE.search(qual):
            kind = "kana"  # 氏名(ふりがな)
        # the value is taken greedily and trimmed here: a lazy value before a trailing
        # pattern backtracks quadratically on a long hostile line
        value = m.group("value")[:1000].strip(" \t　:：|")
        if kind is None or not _plausible(kind, value):
            continue
        fields.append(Field(line_no, kind, label, value, is_masked_value(value)))
        if len(fields) >= MAX_FIELDS:
            break
    forms: list[Form] = []
    group: list[Field] = []

    def close() -> None:
        if group and _is_form({f.type for f in group}):
            fs = tuple(group)
            forms.append(Form(fs, _unmasked(fs)))

    for f in fields:
        if group and f.line - group[-1].line > _GAP:
            close()
            group = []
        group.append(f)
    close()
    # header rows of tables (CSV, sheets): only where a line holds 3+ separators
    if "," in text or "\t" in text or "|" in text:
        lines = text.split("\n")
        for i, line in enumerate(lines[:MAX_FIELDS]):
            if line.count(",") + line.count("\t") + line.count("|") < 2:
                continue
            types = _header_row(line)
            if types is not None:
                forms.extend(_table_forms(lines, i, types, set(skip_lines)))
    return forms
