"""``leakguard policy validate|schema|test``: tools for security officers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from leakguard.commands import policy_cases
from leakguard.i18n import lang_from_env
from leakguard.policy import PolicyError, load_policy
from leakguard.policy.model import OrganizationSpec, PolicySpec

_T = {
    "ok": (
        "{file}: 問題ありません (ルール {rules} 件, 社内ドメイン {domains} 件, 名簿 {people} 名)",
        "{file}: OK ({rules} rules, {domains} internal domains, {people} people)",
    ),
    "invalid": ("{file}: {n} 件の誤りがあります", "{file}: {n} problem(s)"),
}


def _t(key: str, lang: str, **kw: Any) -> str:
    ja, en = _T[key]
    return (ja if lang == "ja" else en).format(**kw)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "policy",
        help="validate, export schema, test",
        description="Tools for policy files: validate them, export their JSON Schema, "
        "run their test cases.",
    )
    psub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)

    v = psub.add_parser("validate", help="check policy files; errors name file:line:column")
    v.add_argument("files", nargs="+", type=Path, metavar="FILE", help="policy files")
    v.add_argument("--org", type=Path, help="organisation file; replaces the policy's")
    v.set_defaults(func=run_validate)

    s = psub.add_parser("schema", help="print the JSON Schema of policy files (for editors)")
    s.add_argument("--organization", action="store_true", help="schema of organisation files")
    s.set_defaults(func=run_schema)

    t = psub.add_parser(
        "test",
        help="run test cases: a policy file's tests: list, or directories of .eml cases",
        description="Run policy test cases like unit tests. A policy file runs its tests: "
        "list; a directory runs every .eml file in it (subdirectories too) against --policy, "
        "each with its expected outcome in a sidecar NAME.eml.yaml or in X-Leakguard-Expect "
        "headers. Exit status 1 when a case fails, 2 on usage errors.",
    )
    t.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="policy files, directories of .eml cases, or single .eml cases",
    )
    t.add_argument(
        "--policy",
        type=Path,
        help="policy for directory cases (default: the embedded default policy)",
    )
    t.add_argument("--org", type=Path, help="organisation file; replaces the policy's")
    t.add_argument(
        "-k",
        dest="keyword",
        action="append",
        metavar="SUBSTRING",
        help="run only cases whose path (inside the folder) contains SUBSTRING; repeat for several",
    )
    t.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="processes running cases (default: 1 below 200 cases, else up to 4)",
    )
    t.add_argument("--json", action="store_true", help="one JSON object per line per case")
    t.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML to FILE")
    t.set_defaults(func=run_test)


def run_validate(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    status = 0
    for f in args.files:
        try:
            pol = load_policy(f, org_path=args.org)
        except PolicyError as exc:
            status = 1
            print(_t("invalid", lang, file=f, n=len(exc.problems)), file=sys.stderr)
            for p in exc.problems:
                print(f"  {p.text(lang)}", file=sys.stderr)
            continue
        org = pol.organization
        print(
            _t(
                "ok",
                lang,
                file=f,
                rules=len(pol.rules),
                domains=len(org.internal_domains),
                people=len(org.directory),
            )
        )
    return status


def run_schema(args: argparse.Namespace) -> int:
    model = OrganizationSpec if args.organization else PolicySpec
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "leakguard organisation" if args.organization else "leakguard policy"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


def run_test(args: argparse.Namespace) -> int:
    return policy_cases.run_test(args, lang_from_env())
