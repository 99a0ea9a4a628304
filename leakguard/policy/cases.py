"""Policy test cases as files: ``.eml`` mails with the outcome they must get.

A case is one ``.eml`` file. Its expected outcome comes, in this order, from

- a sidecar ``NAME.eml.yaml`` (or ``NAME.yaml``) next to it::

      expect: hold                   # pass | bcc | hold | delay | reject
      rules: [forwarded-third-party] # optional: must match
      not_rules: [bulk-external]     # optional: must not match
      sender: me@city.example.lg.jp  # optional envelope
      rcpt: [a@x.example]
      description: a forwarded thread carries a customer's address

- or test headers in the mail itself (``X-Leakguard-Expect: hold``,
  ``X-Leakguard-Expect-Rules: a, b``, ``X-Leakguard-Expect-Not-Rules:``,
  ``X-Leakguard-Sender:``, ``X-Leakguard-Rcpt:`` repeatable). These header fields, and only
  they, are cut out of the bytes (byte for byte) before the engine decides.

A case without either is an error, never skipped. This module reads cases and compares a
verdict with an expectation; running the engine is the command's business.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leakguard.policy.loader import PolicyError, Problem, error_text, load_yaml_with_marks
from leakguard.policy.model import ActionName

ACTIONS = ("pass", "bcc", "hold", "delay", "reject")
SIDECAR_SUFFIXES = (".eml.yaml", ".yaml")  # NAME.eml.yaml first, then NAME.yaml
MAX_SIDECAR_BYTES = 1024 * 1024
MAX_HEADER_SECTION = 1024 * 1024  # test headers are looked for in the first MiB of a mail

H_EXPECT = "x-leakguard-expect"
H_RULES = "x-leakguard-expect-rules"
H_NOT_RULES = "x-leakguard-expect-not-rules"
H_SENDER = "x-leakguard-sender"
H_RCPT = "x-leakguard-rcpt"
TEST_HEADERS = frozenset({H_EXPECT, H_RULES, H_NOT_RULES, H_SENDER, H_RCPT})
_SINGLE = (H_EXPECT, H_RULES, H_NOT_RULES, H_SENDER)  # may appear once


class CaseSpec(BaseModel):
    """A sidecar file: the outcome one mail must get."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expect: ActionName = Field(description="the action the policy must take")
    rules: list[str] = Field(default_factory=list, description="rule ids that must match")
    not_rules: list[str] = Field(default_factory=list, description="rule ids that must not match")
    sender: str | None = Field(None, description="envelope sender (default: From)")
    rcpt: list[str] | None = Field(
        None, min_length=1, description="envelope recipients (default: To + Cc + Bcc)"
    )
    description: str | None = Field(None, description="what the case is about")


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a case must get. ``rcpt`` None: the mail's own To + Cc + Bcc."""

    expect: str
    rules: tuple[str, ...] = ()
    not_rules: tuple[str, ...] = ()
    sender: str | None = None
    rcpt: tuple[str, ...] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class CaseInput:
    """A case read from disk: the bytes the engine sees and the expectation, or problems."""

    raw: bytes
    expectation: Expectation | None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a verdict compares with an expectation."""

    action_ok: bool
    missing: tuple[str, ...]  # rules that had to match and did not
    unexpected: tuple[str, ...]  # rules that matched and must not
    unknown: tuple[str, ...]  # expected rule ids the policy does not have

    @property
    def ok(self) -> bool:
        return self.action_ok and not (self.missing or self.unexpected or self.unknown)


# --------------------------------------------------------------------------- discovery


def is_case_file(path: Path) -> bool:
    return path.suffix.lower() == ".eml" and path.is_file()


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root``, symbolic links to directories not followed, hidden ones left."""
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if not f.startswith("."):
                yield Path(top) / f


def discover(root: Path) -> list[Path]:
    """The ``.eml`` files under ``root`` (recursively), sorted by their relative path."""
    found = [p for p in _walk(root) if is_case_file(p)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def orphan_sidecars(root: Path) -> list[Path]:
    """``*.eml.yaml`` files under ``root`` whose mail does not exist (a renamed case)."""
    out = [
        p
        for p in _walk(root)
        if p.name.lower().endswith(".eml.yaml")
        and not p.with_name(p.name[: -len(".yaml")]).is_file()
    ]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def sidecars_of(mail: Path) -> list[Path]:
    """The sidecar files that exist for ``mail`` (``NAME.eml.yaml``, ``NAME.yaml``)."""
    names = [mail.name + ".yaml", mail.stem + ".yaml"]
    return [mail.with_name(n) for n in names if mail.with_name(n).is_file()]


# --------------------------------------------------------------------------- test headers

_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def _lines(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each line of ``data``, the end including its line break."""
    pos = 0
    n = len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        yield pos, end
        pos = end


def split_test_headers(raw: bytes) -> tuple[bytes, list[tuple[str, str, int]]]:
    """Cut the test header fields out of ``raw``.

    Returns the mail without them (every other byte unchanged) and the fields removed as
    (lower-case name, unfolded value, line number). Only the header section is looked at:
    the lines before the first empty line (within ``MAX_HEADER_SECTION``).
    """
    head_end = min(len(raw), MAX_HEADER_SECTION)
    fields: list[tuple[str, str, int]] = []
    cuts: list[tuple[int, int]] = []
    current: tuple[str, int, int, int] | None = None  # name, start, end, line
    for no, (start, end) in enumerate(_lines(raw[:head_end]), 1):
        line = raw[start:end]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and current is not None:
            current = (current[0], current[1], end, current[3])
            continue
        if current is not None:
            _close_field(raw, current, fields, cuts)
            current = None
        m = _FIELD_NAME.match(line)
        if m:
            name = m.group(1).decode("ascii").lower()
            if name in TEST_HEADERS or name.startswith(H_EXPECT):
                current = (name, start, end, no)
    if current is not None:
        _close_field(raw, current, fields, cuts)
    if not cuts:
        return raw, fields
    out = bytearray()
    pos = 0
    for start, end in cuts:
        out += raw[pos:start]
        pos = end
    out += raw[pos:]
    return bytes(out), fields


def _close_field(
    raw: bytes,
    current: tuple[str, int, int, int],
    fields: list[tuple[str, str, int]],
    cuts: list[tuple[int, int]],
) -> None:
    name, start, end, line = current
    text = raw[start:end].decode("utf-8", "replace")
    value = text.split(":", 1)[1] if ":" in text else ""
    value = re.sub(r"\r?\n[ \t]", " ", value).strip()
    fields.append((name, value, line))
    cuts.append((start, end))


def _id_list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in re.split(r"[,\s]+", value) if v))


def expectation_from_headers(
    fields: list[tuple[str, str, int]], source: str
) -> tuple[Expectation | None, list[Problem]]:
    """The expectation written in test headers (None, [] when there are none)."""
    if not fields:
        return None, []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    values: dict[str, str] = {}
    rcpts: list[str] = []
    for name, value, line in fields:
        label = _header_label(name)
        if name not in TEST_HEADERS:
            known = ", ".join(_header_label(h) for h in sorted(TEST_HEADERS))
            problems.append(
                Problem(
                    source,
                    line,
                    1,
                    f"unknown test header {label}; expected one of: {known}",
                    f"不明なテスト用ヘッダー {label} です。使えるヘッダー: {known}",
                )
            )
            continue
        if name == H_RCPT:
            rcpts.extend(a for a in _id_list(value))
            continue
        if name in seen:
            problems.append(
                Problem(
                    source,
                    line,
                    1,
                    f"{label} appears twice (first on line {seen[name]}); write it once",
                    f"{label} が二度あります (最初は {seen[name]} 行目)。一度だけ書いてください",
                )
            )
            continue
        seen[name] = line
        values[name] = value
    expect = values.get(H_EXPECT)
    if expect is None and not problems:
        problems.append(
            Problem(
                source,
                fields[0][2],
                1,
                "test headers without X-Leakguard-Expect: add X-Leakguard-Expect: "
                "pass|bcc|hold|delay|reject",
                "X-Leakguard-Expect のないテスト用ヘッダーです。X-Leakguard-Expect: "
                "pass|bcc|hold|delay|reject を加えてください",
            )
        )
    elif expect is not None and expect.lower() not in ACTIONS:
        problems.append(
            Problem(
                source,
                seen[H_EXPECT],
                1,
                f"X-Leakguard-Expect: expected one of {', '.join(ACTIONS)}, got {expect[:60]!r}",
                f"X-Leakguard-Expect: 次のどれかを書いてください: {', '.join(ACTIONS)} "
                f"({expect[:60]!r} になっています)",
            )
        )
    if rcpts == [] and any(n == H_RCPT for n, _v, _l in fields):
        line = next(ln for n, _v, ln in fields if n == H_RCPT)
        problems.append(
            Problem(
                source,
                line,
                1,
                "X-Leakguard-Rcpt is empty: write an address",
                "X-Leakguard-Rcpt が空です。アドレスを書いてください",
            )
        )
    if problems or expect is None:
        return None, problems
    rules = _id_list(values.get(H_RULES, ""))
    not_rules = _id_list(values.get(H_NOT_RULES, ""))
    problems.extend(_contradictions(rules, not_rules, source, seen.get(H_NOT_RULES, 1), 1))
    if problems:
        return None, problems
    return (
        Expectation(
            expect=expect.lower(),
            rules=rules,
            not_rules=not_rules,
            sender=values.get(H_SENDER) or None,
            rcpt=tuple(rcpts) or None,
        ),
        [],
    )


def _header_label(name: str) -> str:
    return "-".join(w.capitalize() for w in name.split("-"))


def _contradictions(
    rules: Iterable[str], not_rules: Iterable[str], source: str, line: int, column: int
) -> list[Problem]:
    both = [r for r in rules if r in set(not_rules)]
    if not both:
        return []
    ids = ", ".join(both)
    return [
        Problem(
            source,
            line,
            column,
            f"rule(s) both expected and not expected: {ids}",
            f"一致すべきルールと一致してはならないルールの両方に書かれています: {ids}",
        )
    ]


# --------------------------------------------------------------------------- sidecars


def load_sidecar(path: Path) -> Expectation:
    """The expectation of a sidecar file; PolicyError (file:line:column, ja/en) if invalid."""
    source = str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise PolicyError(
            [
                Problem(
                    source,
                    1,
                    1,
                    f"cannot read: {exc.strerror}",
                    f"読めません: {exc.strerror}",
                )
            ]
        ) from exc
    if len(data) > MAX_SIDECAR_BYTES:
        raise PolicyError([Problem(source, 1, 1, "larger than 1 MiB", "1 MiB を超えています")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(
            [
                Problem(
                    source,
                    line,
                    1,
                    "not UTF-8 text: save the file as UTF-8",
                    "UTF-8 のテキストではありません。UTF-8 で保存してください",
                )
            ]
        ) from exc
    alias = _first_alias(text)
    if alias is not None:
        raise PolicyError(
            [
                Problem(
                    source,
                    alias[0],
                    alias[1],
                    "aliases (*name) are not allowed in a sidecar: write the values out",
                    "サイドカーではエイリアス (*名前) は使えません。値をそのまま書いてください",
                )
            ]
        )
    obj, marks = load_yaml_with_marks(text, source)
    if not isinstance(obj, dict):
        raise PolicyError(
            [
                Problem(
                    source,
                    1,
                    1,
                    "expected a mapping such as 'expect: hold' (keys: "
                    + ", ".join(CaseSpec.model_fields)
                    + ")",
                    "'expect: hold' のようなマッピングを書いてください (キー: "
                    + ", ".join(CaseSpec.model_fields)
                    + ")",
                )
            ]
        )
    try:
        spec = CaseSpec.model_validate(obj)
    except ValidationError as exc:
        raise PolicyError(_problems(exc, marks, source)) from exc
    line, col = marks.get(("not_rules",), (1, 1))
    contradictions = _contradictions(spec.rules, spec.not_rules, source, line, col)
    if contradictions:
        raise PolicyError(contradictions)
    return Expectation(
        expect=spec.expect,
        rules=tuple(dict.fromkeys(spec.rules)),
        not_rules=tuple(dict.fromkeys(spec.not_rules)),
        sender=spec.sender,
        rcpt=tuple(spec.rcpt) if spec.rcpt is not None else None,
        description=spec.description or "",
    )


def _first_alias(text: str) -> tuple[int, int] | None:
    """Where the first alias is: aliases can make a small file expand without bound."""
    if "*" not in text:
        return None
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                return (mark.line + 1, mark.column + 1) if mark else (1, 1)
    except yaml.YAMLError:
        return None  # reported with its place by the loader
    return None


def _problems(
    exc: ValidationError, marks: dict[tuple[Any, ...], tuple[int, int]], source: str
) -> list[Problem]:
    out: list[Problem] = []
    allowed = ", ".join(CaseSpec.model_fields)
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        kind = err.get("type")
        if kind == "extra_forbidden":
            key = str(loc[-1])
            en = f"unknown key {key!r}; expected one of: {allowed}"
            ja = f"不明なキー {key!r} です。使えるキー: {allowed}"
            line, col = marks.get((*loc, "__key__"), marks.get(loc, (1, 1)))
            out.append(Problem(source, line, col, en, ja))
            continue
        if kind == "missing":
            en = f"missing required key {loc[-1]!r} (pass, bcc, hold, delay or reject)"
            ja = f"必須のキー {loc[-1]!r} がありません (pass, bcc, hold, delay, reject)"
        else:
            en, ja = error_text(err)
        p = loc
        while p and p not in marks:
            p = p[:-1]
        line, col = marks.get(p, (1, 1))
        out.append(Problem(source, line, col, f"{where}: {en}", f"{where}: {ja}"))
    out.sort(key=lambda p: (p.line, p.column))
    return out


# --------------------------------------------------------------------------- one case


def read_case(mail: Path) -> CaseInput:
    """Read one case: its bytes without test headers and its expectation (or problems)."""
    source = str(mail)
    try:
        raw = mail.read_bytes()
    except OSError as exc:
        err = exc.strerror or str(exc)
        return CaseInput(
            b"",
            None,
            (Problem(source, 1, 1, f"cannot read: {err}", f"読めません: {err}"),),
        )
    stripped, fields = split_test_headers(raw)
    sidecars = sidecars_of(mail)
    if len(sidecars) > 1:
        names = ", ".join(p.name for p in sidecars)
        return CaseInput(
            stripped,
            None,
            (
                Problem(
                    source,
                    1,
                    1,
                    f"two sidecar files ({names}); keep one",
                    f"サイドカーファイルが2つあります ({names})。1つにしてください",
                ),
            ),
        )
    if sidecars and fields:
        return CaseInput(
            stripped,
            None,
            (
                Problem(
                    source,
                    fields[0][2],
                    1,
                    f"both a sidecar ({sidecars[0].name}) and X-Leakguard-* test headers; "
                    "write the expectation in one place",
                    f"サイドカー ({sidecars[0].name}) と X-Leakguard-* のテスト用ヘッダーの"
                    "両方があります。期待する結果は一か所に書いてください",
                ),
            ),
        )
    if sidecars:
        try:
            return CaseInput(stripped, load_sidecar(sidecars[0]))
        except PolicyError as exc:
            return CaseInput(stripped, None, tuple(exc.problems))
    expectation, problems = expectation_from_headers(fields, source)
    if expectation is None and not problems:
        problems = [
            Problem(
                source,
                1,
                1,
                f"no expected outcome: write {mail.name}.yaml (expect: hold ...) or an "
                "X-Leakguard-Expect header",
                f"期待する結果がありません。{mail.name}.yaml (expect: hold など) か "
                "X-Leakguard-Expect ヘッダーを書いてください",
            )
        ]
    return CaseInput(stripped, expectation, tuple(problems))


def compare(
    expectation: Expectation, action: str, matched: Iterable[str], known: Iterable[str]
) -> Outcome:
    """Compare a verdict (its action and every matched rule id) with an expectation."""
    got = set(matched)
    rule_ids = set(known)
    return Outcome(
        action_ok=action == expectation.expect,
        missing=tuple(r for r in expectation.rules if r not in got and r in rule_ids),
        unexpected=tuple(r for r in expectation.not_rules if r in got),
        unknown=tuple(r for r in (*expectation.rules, *expectation.not_rules) if r not in rule_ids),
    )
