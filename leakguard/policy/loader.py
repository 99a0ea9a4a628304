"""Load policy and organisation files, with errors that name file, line and column."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from leakguard.organization import (
    Organization,
    Partner,
    Person,
    default_freemail_domains,
    load_directory_csv,
)
from leakguard.policy.model import (
    FACTS,
    Comparison,
    Exceptions,
    OrganizationSpec,
    PersonalDataTest,
    PolicySpec,
    PolicyTestCase,
    Reason,
    Rule,
    Scope,
)

Mark = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True, slots=True)
class Problem:
    """One error at a place in a file: ``message`` in English, ``message_ja`` in Japanese."""

    file: str
    line: int
    column: int
    message: str
    message_ja: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    def text(self, lang: str) -> str:
        """``file:line:column: message`` in ``lang`` ("ja" or "en")."""
        msg = self.message_ja if lang == "ja" and self.message_ja else self.message
        return f"{self.file}:{self.line}:{self.column}: {msg}"


# --------------------------------------------------------------------------- messages in ja

# PyYAML's problems, in plain words: what is wrong and what is expected.
_YAML_PROBLEMS: tuple[tuple[str, str, str], ...] = (
    (
        "mapping values are not allowed here",
        "a ':' where none may be: this line is probably indented wrongly (keys of one mapping "
        "start in the same column), or a value containing ': ' needs quotes",
        "ここに ':' は書けません。この行の字下げがずれている "
        "(同じ階層のキーは同じ桁から始めます) か、': ' を含む値を引用符で囲む必要があります",
    ),
    (
        "expected <block end>",
        "the indentation does not line up with the lines above: keys of one mapping and items "
        "of one list must start in the same column",
        "字下げが上の行とそろっていません。同じ階層のキーやリストの項目は同じ桁から始めてください",
    ),
    (
        "did not find expected key",
        "the indentation does not line up with the lines above: keys of one mapping must "
        "start in the same column",
        "字下げが上の行とそろっていません。同じ階層のキーは同じ桁から始めてください",
    ),
    (
        "did not find expected '-' indicator",
        "list items must line up: every '- ' of one list starts in the same column",
        "リストの項目がそろっていません。同じリストの '- ' は同じ桁から始めてください",
    ),
    (
        "could not find expected ':'",
        "a key without ':' or a line continued by mistake: write 'key: value'",
        "':' のないキーか、誤って続いた行があります。'キー: 値' の形で書いてください",
    ),
    (
        "found character '\\t' that cannot start any token",
        "a tab character: YAML indentation must use spaces",
        "タブ文字があります。YAML の字下げには空白を使ってください",
    ),
    (
        "found unexpected end of stream",
        "the file ends inside a quoted value: a quote is not closed",
        "引用符の中でファイルが終わっています。閉じ引用符がありません",
    ),
    (
        "found undefined alias",
        "an alias (*name) without a matching anchor (&name)",
        "対応するアンカー (&名前) のないエイリアス (*名前) があります",
    ),
    (
        "found unexpected ':'",
        "an unexpected ':': put values containing ':' in quotes",
        "予期しない ':' があります。':' を含む値は引用符で囲んでください",
    ),
)


def _yaml_problem(problem: str) -> tuple[str, str]:
    for needle, en, ja in _YAML_PROBLEMS:
        if needle in problem:
            return f"YAML syntax: {en}", f"YAML の書き方の誤り: {ja}"
    return (
        f"YAML syntax: {problem}; check the indentation and quotes on this line",
        f"YAML の書き方の誤り ({problem})。この行の字下げと引用符を確認してください",
    )


# The validators' own sentences (model.py, durations.py), in Japanese.
_VALUE_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pat), ja)
    for pat, ja in (
        (
            r"^workers must be between 1 and 64, or 'auto'$",
            "workers には 1 から 64 までの数か 'auto' を書いてください",
        ),
        (
            r"^expected at least one of gt, gte, lt, lte, eq, ne$",
            "比較がありません。gt, gte, lt, lte, eq, ne のどれかを書いてください",
        ),
        (
            r"^expected a fact \((.*)\) or all/any/not$",
            "事実 ({0}) か all/any/not を書いてください",
        ),
        (
            r"^expected letters, digits, '-', '_' or '\.' \(at most 64\)$",
            "英字・数字・'-'・'_'・'.' だけで 64 文字以内にしてください",
        ),
        (
            r"^expected supervisor, an email address, or group:<name>$",
            "supervisor、メールアドレス、または group:<名前> を指定してください",
        ),
        (
            r"^approval is only valid with action: hold$",
            "approval は action: hold のときだけ使えます",
        ),
        (r"^delay is only valid with action: delay$", "delay は action: delay のときだけ使えます"),
        (
            r"^offer_bcc is only valid with action: hold$",
            "offer_bcc は action: hold のときだけ使えます",
        ),
        (
            r"^not a domain: (.*) \(expected a domain such as example.jp or \*.example.jp\)$",
            "ドメインではありません: {0} (example.jp や *.example.jp の形で書いてください)",
        ),
        (
            r"^rule id (.*) is used twice(.*)$",
            "ルールID {0} が二度使われています{1}。ルールIDは一つずつ別の名前にしてください",
        ),
        (r"^a duration cannot be negative$", "時間の長さに負の値は使えません"),
        (
            r"^not a duration: (.*) \(expected e.g. 30s, 5m, 72h, 3d\)$",
            "時間の長さではありません: {0} (30s, 5m, 72h, 3d のように書いてください)",
        ),
        (
            r"^expected a mapping such as (.*)$",
            "{0} のようなマッピング (キー: 値) を書いてください",
        ),
        # the service configuration's own checks (leakguard/config.py, web/config.py)
        (r"^expected HOST:PORT, got (.*)$", "HOST:PORT の形で書いてください ({0} になっています)"),
        (r"^not a port number in (.*)$", "{0} のポート番号が正しくありません (0〜65535)"),
        (
            r"^(.*) does not appear to be an IPv4 or IPv6 (network|address)$",
            "{0} は IPv4/IPv6 のネットワークではありません (例: 192.0.2.0/24, ::1/128)",
        ),
        (
            r"^auth.mode 'upstream' with upstream.tls 'none' would send users' passwords .*$",
            "auth.mode 'upstream' と upstream.tls 'none' の組み合わせでは利用者のパスワードが"
            "暗号化されずに上流へ送られます。tls: starttls か implicit にしてください "
            "(auth.allow_plaintext_auth: true はループバックの上流でだけ使えます)",
        ),
        (
            r"^auth.allow_plaintext_auth is only for a loopback upstream, not (.*); use .*$",
            "auth.allow_plaintext_auth はループバックの上流でだけ使えます ({0} は違います)。"
            "upstream.tls を starttls か implicit にしてください",
        ),
        (r"^expected ja or en, got (.*)$", "ja か en を書いてください ({0} になっています)"),
        (
            r"^not a time zone: (.*)$",
            "タイムゾーンではありません: {0} (例: Asia/Tokyo)",
        ),
    )
)

# pydantic error types, in plain words (en, ja); fields come from the error's ctx.
_TYPE_TEXT: dict[str, tuple[str, str]] = {
    "int_parsing": ("expected a whole number", "整数を書いてください"),
    "int_type": ("expected a whole number", "整数を書いてください"),
    "int_from_float": ("expected a whole number", "整数を書いてください"),
    "float_parsing": ("expected a number", "数値を書いてください"),
    "float_type": ("expected a number", "数値を書いてください"),
    "bool_parsing": ("expected true or false", "true か false を書いてください"),
    "bool_type": ("expected true or false", "true か false を書いてください"),
    "string_type": ("expected text (a string)", "文字列を書いてください"),
    "list_type": (
        "expected a list ('- item' lines or [a, b])",
        "リスト ('- 項目' の行か [a, b]) を書いてください",
    ),
    "dict_type": (
        "expected a mapping ('key: value' lines)",
        "マッピング ('キー: 値' の行) を書いてください",
    ),
    "model_type": (
        "expected a mapping ('key: value' lines)",
        "マッピング ('キー: 値' の行) を書いてください",
    ),
    "model_attributes_type": (
        "expected a mapping ('key: value' lines)",
        "マッピング ('キー: 値' の行) を書いてください",
    ),
    "greater_than_equal": ("expected a number ≥ {ge}", "{ge} 以上の数を書いてください"),
    "greater_than": ("expected a number > {gt}", "{gt} より大きい数を書いてください"),
    "less_than_equal": ("expected a number ≤ {le}", "{le} 以下の数を書いてください"),
    "less_than": ("expected a number < {lt}", "{lt} より小さい数を書いてください"),
    "too_short": (
        "expected at least {min_length} item(s)",
        "{min_length} 個以上の項目を書いてください",
    ),
    "too_long": (
        "expected at most {max_length} item(s)",
        "{max_length} 個以下にしてください",
    ),
    "string_too_short": (
        "expected at least {min_length} character(s)",
        "{min_length} 文字以上にしてください",
    ),
    "condition": (
        "expected a mapping such as {visible_external_recipients: {gte: 10}}",
        "{visible_external_recipients: {gte: 10}} のようなマッピングを書いてください",
    ),
}


def value_error_ja(message: str) -> str:
    """A validator's English sentence in Japanese (the English itself when unknown)."""
    for pat, ja in _VALUE_ERRORS:
        m = pat.match(message)
        if m:
            return ja.format(*m.groups())
    return message


def error_text(err: Mapping[str, Any]) -> tuple[str, str]:
    """(en, ja) for one pydantic error that is neither an unknown nor a missing key."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        return (
            f"expected one of {expected}",
            f"次のどれかを書いてください: {expected.replace(' or ', ', ')}",
        )
    if kind in ("value_error", "assertion_error"):
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        msg = msg.removeprefix("Assertion failed, ")
        return msg, value_error_ja(msg)
    if kind in _TYPE_TEXT:
        en, ja = _TYPE_TEXT[kind]
        if kind == "condition":
            return en, ja
        try:
            return en.format(**ctx), ja.format(**ctx)
        except (KeyError, IndexError, ValueError):
            return en, ja
    msg = str(err.get("msg", "invalid value"))
    return msg, f"値が正しくありません ({msg})"


class PolicyError(Exception):
    """A policy or organisation file that cannot be used. ``problems`` lists every error."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Policy:
    """A validated policy ready for evaluation."""

    spec: PolicySpec
    organization: Organization
    path: Path | None = None
    version: str = ""  # short hash of the files it was loaded from
    files: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def rules(self) -> list[Rule]:
        return self.spec.rules


# --------------------------------------------------------------------------- YAML with marks


def _construct(
    node: yaml.Node,
    path: tuple[Any, ...],
    marks: dict[tuple[Any, ...], Mark],
    source: str,
    problems: list[Problem],
) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(
                    Problem(
                        source,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        "expected a plain key (a name), not a list or mapping",
                        "キーには名前を書いてください (リストやマッピングは使えません)",
                    )
                )
                continue
            key = str(key_node.value)  # keys are names; "on"/"yes" stay strings
            if key in out:
                problems.append(
                    Problem(
                        source,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        f"key {key!r} appears twice in this mapping; write each key once",
                        f"キー {key!r} がこのマッピングに二度あります。"
                        "キーは一度だけ書いてください",
                    )
                )
            marks[(*path, key, "__key__")] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            out[key] = _construct(value_node, (*path, key), marks, source, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(v, (*path, i), marks, source, problems) for i, v in enumerate(node.value)
        ]
    # scalars: let the safe constructor resolve the implicit type (int, bool, null, str)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_yaml_with_marks(text: str, source: str) -> tuple[Any, dict[tuple[Any, ...], Mark]]:
    """Parse YAML; return the data and a map from key paths to (line, column)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if "end of stream" in str(exc.problem) and exc.context_mark is not None:
            mark = exc.context_mark  # an unclosed quote: where it was opened
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        en, ja = _yaml_problem(str(exc.problem or exc))
        raise PolicyError([Problem(source, line, col, en, ja)]) from exc
    except yaml.YAMLError as exc:
        en, ja = _yaml_problem(str(exc))
        raise PolicyError([Problem(source, 1, 1, en, ja)]) from exc
    marks: dict[tuple[Any, ...], Mark] = {}
    if node is None:
        return None, marks
    problems: list[Problem] = []
    data = _construct(node, (), marks, source, problems)
    if problems:
        raise PolicyError(problems)
    return data, marks


# --------------------------------------------------------------------------- error mapping

_MODEL_AT: dict[str, type[BaseModel]] = {
    "rules": Rule,
    "description": Reason,
    "scope": Scope,
    "except": Exceptions,
    "organization": OrganizationSpec,
    "tests": PolicyTestCase,
}


def _yaml_path(loc: tuple[Any, ...], data: Any) -> tuple[tuple[Any, ...], list[str], Any]:
    """Keep the parts of a pydantic ``loc`` that exist in the YAML data. Also return the
    synthetic parts (union branch tags) and the YAML value where the first branch tag was
    met (the value the union was trying to validate)."""
    path: list[Any] = []
    tags: list[str] = []
    cur = data
    branch_value: Any = None
    for part in loc:
        in_map = isinstance(cur, dict) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if in_map or in_list:
            path.append(part)
            cur = cur[part]
        else:
            if not tags:
                branch_value = cur
            tags.append(str(part))
    return tuple(path), tags, branch_value


_SCALAR_BRANCHES = {"int", "str", "bool", "float"}


def _wrong_branch(tags: list[str], value: Any) -> bool:
    """An error from the union branch that does not fit the value's shape."""
    if not tags:
        return False
    first = tags[0]
    structured = isinstance(value, dict | list)
    if first in _SCALAR_BRANCHES:
        return structured
    if first in ("facts", "all", "any", "not"):
        return False  # condition discriminator tags, not alternatives
    return not structured


def _allowed_keys(path: tuple[Any, ...], tags: list[str]) -> list[str]:
    if "facts" in tags or "all" in tags or "any" in tags or "not" in tags:
        if path and path[-1] == "personal_data":
            return list(PersonalDataTest.model_fields)
        if path and path[-1] in FACTS:
            return list(Comparison.model_fields)
        return [*FACTS, "personal_data", "all", "any", "not"]
    names = [p for p in path if isinstance(p, str)]
    model: type[BaseModel] = PolicySpec
    if names:
        model = _MODEL_AT.get(names[-1], PolicySpec)
    return [f.alias or n for n, f in model.model_fields.items()]


def _friendly(
    err: Mapping[str, Any], path: tuple[Any, ...], tags: list[str], data: Any
) -> tuple[str, str]:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        key = path[-1] if path else "?"
        allowed = ", ".join(_allowed_keys(path[:-1], tags))
        return (
            f"unknown key {key!r}; expected one of: {allowed}",
            f"不明なキー {key!r} です。使えるキー: {allowed}",
        )
    if kind == "missing":
        missing = err["loc"][-1]
        return (
            f"missing required key {missing!r}",
            f"必須のキー {missing!r} がありません",
        )
    return error_text(err)


def _problems_from_validation(
    exc: ValidationError, data: Any, marks: dict[tuple[Any, ...], Mark], source: str
) -> list[Problem]:
    errors = []
    for err in exc.errors():
        path, tags, branch_value = _yaml_path(tuple(err["loc"]), data)
        errors.append((err, path, tags, branch_value))
    # A union (number or comparison, path or inline mapping) fails in every branch; report
    # the branch that fits the shape of the value written.
    kept = [e for e in errors if not _wrong_branch(e[2], e[3])] or errors
    seen: set[tuple[tuple[Any, ...], str]] = set()
    out: list[Problem] = []
    for err, path, tags, _ in kept:
        en, ja = _friendly(err, path, tags, data)
        if (path, en) in seen:
            continue
        seen.add((path, en))
        path = _item_path(err, path, data)
        if err.get("type") == "extra_forbidden" and (*path, "__key__") in marks:
            line, col = marks[(*path, "__key__")]
        else:
            line, col = _nearest_mark(path, marks)
        where = ".".join(str(p) for p in path)
        out.append(
            Problem(
                source,
                line,
                col,
                f"{where or '(top level)'}: {en}",
                f"{where or '(最上位)'}: {ja}",
            )
        )
    out.sort(key=lambda p: (p.line, p.column))
    return out


def _item_path(err: Mapping[str, Any], path: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """A list validator's error about one item (``not a domain: 'x'``): point at that item."""
    m = re.match(r"^(?:Value error, )?not a domain: '(.*)' \(", str(err.get("msg", "")))
    if not m:
        return path
    cur = data
    for part in path:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return path
    if isinstance(cur, list):
        for i, v in enumerate(cur):
            if isinstance(v, str) and v == m.group(1):
                return (*path, i)
    return path


def _nearest_mark(path: tuple[Any, ...], marks: dict[tuple[Any, ...], Mark]) -> Mark:
    p = path
    while p:
        if p in marks:
            return marks[p]
        p = p[:-1]
    return marks.get((), (1, 1))


# --------------------------------------------------------------------------- loading


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError([not_found(str(path))]) from None
    except OSError as exc:
        raise PolicyError([cannot_read(str(path), exc)]) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError([not_utf8(str(path), line)]) from exc


def not_found(source: str) -> Problem:
    return Problem(
        source,
        1,
        1,
        "file not found; check the path",
        "ファイルがありません。パスを確認してください",
    )


def cannot_read(source: str, exc: OSError) -> Problem:
    return Problem(
        source,
        1,
        1,
        f"cannot read: {exc.strerror}; check the file's permissions",
        f"読めません ({exc.strerror})。ファイルの権限を確認してください",
    )


def not_utf8(source: str, line: int = 1) -> Problem:
    return Problem(
        source,
        line,
        1,
        "not UTF-8 text; save the file as UTF-8",
        "UTF-8 のテキストではありません。UTF-8 で保存してください",
    )


def parse_policy_text(text: str, source: str) -> PolicySpec:
    data, marks = load_yaml_with_marks(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            [
                Problem(
                    source,
                    1,
                    1,
                    "expected a mapping with version, rules, ...",
                    "version, rules などのキーを持つマッピングを書いてください",
                )
            ]
        )
    duplicates = _duplicate_rule_ids(data, marks, source)
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as exc:
        problems = _problems_from_validation(exc, data, marks, source)
        if duplicates:  # reported at the duplicate's own line, not the file's first line
            problems = [p for p in problems if "is used twice" not in p.message] + duplicates
            problems.sort(key=lambda p: (p.line, p.column))
        raise PolicyError(problems) from exc
    if duplicates:
        raise PolicyError(duplicates)
    return spec


def _duplicate_rule_ids(
    data: dict[str, Any], marks: dict[tuple[Any, ...], Mark], source: str
) -> list[Problem]:
    rules = data.get("rules")
    if not isinstance(rules, list):
        return []
    first: dict[str, int] = {}
    out: list[Problem] = []
    for i, rule in enumerate(rules):
        rid = rule.get("id") if isinstance(rule, dict) else None
        if not isinstance(rid, str):
            continue
        if rid in first:
            line, col = marks.get(("rules", i, "id"), _nearest_mark(("rules", i), marks))
            first_line = marks.get(("rules", first[rid], "id"), (0, 0))[0]
            out.append(
                Problem(
                    source,
                    line,
                    col,
                    f"rules.{i}.id: rule id {rid!r} is used twice (first at line {first_line}); "
                    "give every rule its own id",
                    f"rules.{i}.id: ルールID {rid!r} が二度使われています ({first_line} 行目と"
                    "同じ)。ルールIDは一つずつ別の名前にしてください",
                )
            )
        else:
            first[rid] = i
    return out


def parse_organization_text(text: str, source: str) -> OrganizationSpec:
    data, marks = load_yaml_with_marks(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            [
                Problem(
                    source,
                    1,
                    1,
                    "expected a mapping with internal_domains, ...",
                    "internal_domains などのキーを持つマッピングを書いてください",
                )
            ]
        )
    try:
        return OrganizationSpec.model_validate(data)
    except ValidationError as exc:
        wrapped = {"organization": data}
        wrapped_marks = {("organization", *k): v for k, v in marks.items()}
        try:
            PolicySpec.model_validate(wrapped)
        except ValidationError as exc2:
            problems = _problems_from_validation(exc2, wrapped, wrapped_marks, source)
            raise PolicyError(
                [
                    Problem(
                        p.file,
                        p.line,
                        p.column,
                        p.message.removeprefix("organization."),
                        p.message_ja.removeprefix("organization."),
                    )
                    for p in problems
                ]
            ) from exc
        raise  # pragma: no cover


def _directory_problem(source: str, message: str) -> Problem:
    """A directory CSV problem (``FILE:LINE: message`` from ``load_directory_csv``)."""
    line = 1
    m = re.match(r"^.*?:(\d+): (.*)$", message)
    if m:
        line, message = int(m.group(1)), m.group(2)
    ja = message
    m2 = re.match(r"^not an email address: (.*)$", message)
    if m2:
        ja = f"メールアドレスではありません: {m2.group(1)}"
    elif "header row must name" in message:
        ja = "見出し行に少なくとも 'email' 列が必要です"
    return Problem(source, line, 1, message, ja)


def build_organization(
    spec: OrganizationSpec,
    base: Path | None,
    source: str,
    marks_hint: Mark | None = None,
) -> tuple[Organization, list[Path]]:
    people: tuple[Person, ...] = ()
    files: list[Path] = []
    if spec.directory:
        dpath = Path(spec.directory)
        if not dpath.is_absolute() and base is not None:
            dpath = base / dpath
        try:
            people = load_directory_csv(dpath)
        except FileNotFoundError:
            line, col = marks_hint or (1, 1)
            raise PolicyError(
                [
                    Problem(
                        source,
                        line,
                        col,
                        f"organization.directory: file not found: {dpath}; check the path "
                        "(relative paths are read from the policy file's folder)",
                        f"organization.directory: ファイルがありません: {dpath}。パスを確認して"
                        "ください (相対パスはポリシーファイルのフォルダーから読みます)",
                    )
                ]
            ) from None
        except ValueError as exc:
            raise PolicyError([_directory_problem(str(dpath), str(exc))]) from exc
        files.append(dpath)
    org = Organization(
        internal_domains=spec.internal_domains,
        directory=people,
        partner_domains=spec.partner_domains,
        partners=tuple(
            Partner(domain=p.domain, names=tuple(p.names), distribution=p.distribution)
            for p in spec.partners
        ),
        mailing_lists=spec.mailing_lists,
        groups=spec.groups,
        freemail_domains=(
            *(default_freemail_domains() if spec.freemail_defaults else ()),
            *spec.freemail_domains,
        ),
    )
    return org, files


def _mark_of(text: str, source: str, key: tuple[Any, ...]) -> Mark | None:
    """Where ``key`` is written in an already validated file (for errors found later)."""
    try:
        _data, marks = load_yaml_with_marks(text, source)
    except PolicyError:  # pragma: no cover - the text was parsed before
        return None
    return marks.get(key)


def load_organization(path: Path) -> tuple[Organization, list[Path]]:
    text = _read(path)
    spec = parse_organization_text(text, str(path))
    hint = _mark_of(text, str(path), ("directory",)) if spec.directory else None
    org, files = build_organization(spec, path.parent, str(path), hint)
    return org, [path, *files]


def load_policy(path: Path, *, org_path: Path | None = None) -> Policy:
    """Load and validate a policy; ``org_path`` replaces the policy's organisation."""
    path = Path(path)
    text = _read(path)
    spec = parse_policy_text(text, str(path))
    files = [path]
    if org_path is not None:
        org, org_files = load_organization(Path(org_path))
    elif isinstance(spec.organization, str):
        opath = Path(spec.organization)
        if not opath.is_absolute():
            opath = path.parent / opath
        if not opath.is_file():
            line, col = _mark_of(text, str(path), ("organization",)) or (1, 1)
            raise PolicyError(
                [
                    Problem(
                        str(path),
                        line,
                        col,
                        f"organization: file not found: {opath}; check the path (relative "
                        "paths are read from the policy file's folder)",
                        f"organization: ファイルがありません: {opath}。パスを確認してください "
                        "(相対パスはポリシーファイルのフォルダーから読みます)",
                    )
                ]
            )
        org, org_files = load_organization(opath)
    else:
        hint = (
            _mark_of(text, str(path), ("organization", "directory"))
            if spec.organization.directory
            else None
        )
        org, org_files = build_organization(spec.organization, path.parent, str(path), hint)
    files += org_files
    return Policy(
        spec=spec, organization=org, path=path, version=files_version(files), files=tuple(files)
    )


def files_version(files: Sequence[Path]) -> str:
    """Short hash of the policy's files: ``Policy.version``, and what ``/healthz`` compares
    with the files on disk to see that a reload failed or is pending."""
    digest = hashlib.sha256()
    for f in files:
        with contextlib.suppress(OSError):  # the version is informative only
            digest.update(Path(f).read_bytes())
    return digest.hexdigest()[:12]


def iter_rules(policy: Policy) -> Iterator[Rule]:
    yield from policy.spec.rules


def default_policy_path() -> Path:
    """``policies/default.yaml`` of a checkout, else the copy shipped in the package."""
    here = Path(__file__).resolve()
    checkout = here.parents[2] / "policies" / "default.yaml"
    if checkout.is_file():
        return checkout
    return here.parents[1] / "data" / "policies" / "default.yaml"
