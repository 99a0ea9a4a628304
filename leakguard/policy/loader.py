"""Load policy and organisation files, with errors that name file, line and column."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from leakguard.organization import Organization, Partner, Person, load_directory_csv
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
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


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
                        "expected a plain key",
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
                        f"key {key!r} appears twice in this mapping",
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
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PolicyError(
            [Problem(source, line, col, f"YAML syntax: {exc.problem or exc}")]
        ) from exc
    except yaml.YAMLError as exc:
        raise PolicyError([Problem(source, 1, 1, f"YAML syntax: {exc}")]) from exc
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


def _friendly(err: Mapping[str, Any], path: tuple[Any, ...], tags: list[str], data: Any) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        key = path[-1] if path else "?"
        allowed = _allowed_keys(path[:-1], tags)
        return f"unknown key {key!r}; expected one of: {', '.join(allowed)}"
    if kind == "missing":
        missing = err["loc"][-1]
        return f"missing required key {missing!r}"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}"
    return msg


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
        msg = _friendly(err, path, tags, data)
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        if err.get("type") == "extra_forbidden" and (*path, "__key__") in marks:
            line, col = marks[(*path, "__key__")]
        else:
            line, col = _nearest_mark(path, marks)
        where = ".".join(str(p) for p in path) or "(top level)"
        out.append(Problem(source, line, col, f"{where}: {msg}"))
    out.sort(key=lambda p: (p.line, p.column))
    return out


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
        raise PolicyError([Problem(str(path), 1, 1, "file not found")]) from None
    except OSError as exc:
        raise PolicyError([Problem(str(path), 1, 1, f"cannot read: {exc.strerror}")]) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError([Problem(str(path), line, 1, "not UTF-8 text")]) from exc


def parse_policy_text(text: str, source: str) -> PolicySpec:
    data, marks = load_yaml_with_marks(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError([Problem(source, 1, 1, "expected a mapping with version, rules, ...")])
    try:
        return PolicySpec.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_problems_from_validation(exc, data, marks, source)) from exc


def parse_organization_text(text: str, source: str) -> OrganizationSpec:
    data, marks = load_yaml_with_marks(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError([Problem(source, 1, 1, "expected a mapping with internal_domains, ...")])
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
                    Problem(p.file, p.line, p.column, p.message.removeprefix("organization."))
                    for p in problems
                ]
            ) from exc
        raise  # pragma: no cover


def build_organization(
    spec: OrganizationSpec, base: Path | None, source: str
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
            raise PolicyError(
                [Problem(source, 1, 1, f"directory file not found: {dpath}")]
            ) from None
        except ValueError as exc:
            raise PolicyError([Problem(str(dpath), 1, 1, str(exc))]) from exc
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
    )
    return org, files


def load_organization(path: Path) -> tuple[Organization, list[Path]]:
    spec = parse_organization_text(_read(path), str(path))
    org, files = build_organization(spec, path.parent, str(path))
    return org, [path, *files]


def load_policy(path: Path, *, org_path: Path | None = None) -> Policy:
    """Load and validate a policy; ``org_path`` replaces the policy's organisation."""
    path = Path(path)
    spec = parse_policy_text(_read(path), str(path))
    files = [path]
    if org_path is not None:
        org, org_files = load_organization(Path(org_path))
    elif isinstance(spec.organization, str):
        opath = Path(spec.organization)
        if not opath.is_absolute():
            opath = path.parent / opath
        org, org_files = load_organization(opath)
    else:
        org, org_files = build_organization(spec.organization, path.parent, str(path))
    files += org_files
    digest = hashlib.sha256()
    for f in files:
        with contextlib.suppress(OSError):  # the version is informative only
            digest.update(f.read_bytes())
    return Policy(
        spec=spec, organization=org, path=path, version=digest.hexdigest()[:12], files=tuple(files)
    )


def iter_rules(policy: Policy) -> Iterator[Rule]:
    yield from policy.spec.rules


def default_policy_path() -> Path:
    """``policies/default.yaml`` of a checkout, else the copy shipped in the package."""
    here = Path(__file__).resolve()
    checkout = here.parents[2] / "policies" / "default.yaml"
    if checkout.is_file():
        return checkout
    return here.parents[1] / "data" / "policies" / "default.yaml"
